//! Helpers shared by the integration tests: articles made through the public
//! validation path, and stores opened on temporary files.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use feedsmith::article::{Article, RawArticle, ValidationContext};
use feedsmith::store::{ArticleStore, SqliteLocation, SqliteStore};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const ZONE: chrono_tz::Tz = chrono_tz::Europe::Dublin;

/// Validates a JSON article the way `import` does; panics with the field errors
/// if the fixture itself is wrong.
pub fn article_from(value: Value) -> Article {
    let raw: RawArticle = serde_json::from_value(value).expect("fixture has the import shape");
    raw.validate(ValidationContext { timezone: ZONE })
        .unwrap_or_else(|e| panic!("fixture is invalid: {e:?}"))
        .article
}

/// A published article with the given id and publish time; `extra` fields
/// override the defaults.
pub fn article(id: &str, published_at: &str, extra: Value) -> Article {
    let mut v = json!({
        "id": id,
        "url": format!("https://news.example.com/{id}"),
        "headline": format!("Headline of {id}"),
        "published_at": published_at,
    });
    if let (Some(base), Value::Object(more)) = (v.as_object_mut(), extra) {
        base.extend(more);
    }
    article_from(v)
}

/// An SQLite store in a fresh temporary folder; keep the `TempDir` alive.
pub async fn sqlite_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&SqliteLocation::File(dir.path().join("articles.db")))
        .await
        .expect("open sqlite store");
    (dir, store)
}

pub fn ids(articles: &[feedsmith::store::StoredArticle]) -> Vec<String> {
    articles.iter().map(|a| a.article.id.to_string()).collect()
}

/// The repository root, where `config/` and `examples/` live.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_owned()
}

/// Boxes a concrete store so suites can be written once against the trait.
pub fn boxed<S: ArticleStore + 'static>(store: S) -> Box<dyn ArticleStore> {
    Box::new(store)
}

/// Every article in `examples/articles`, validated as the import path does,
/// in sorted file order.
pub fn sample_articles() -> Vec<Article> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_root().join("examples/articles"), &mut files);
    files.sort();
    let mut values = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        if f.extension().is_some_and(|x| x == "jsonl") {
            values.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str(l).expect("json line")),
            );
        } else {
            values.push(serde_json::from_str::<Value>(&text).expect("json"));
        }
    }
    values.into_iter().map(article_from).collect()
}

/// The real service on `127.0.0.1:0`, over a temporary SQLite store seeded
/// with the sample articles, with the repository's feed files.
pub struct TestServer {
    pub base: String,
    pub addr: std::net::SocketAddr,
    pub config: feedsmith::config::Config,
    pub store: Box<dyn ArticleStore>,
    pub publisher: std::sync::Arc<feedsmith::publish::Publisher>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
    _dir: TempDir,
}

impl TestServer {
    /// Starts the server; `extra_server` lines are added to `[server]`.
    pub async fn start(extra_server: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let root = repo_root();
        let config_text = format!(
            "[server]\nlisten = \"{addr}\"\nbase_url = \"http://{addr}\"\n{extra_server}\n\n\
             [site]\ntitle = \"Example News & Co\"\ntimezone = \"Europe/Dublin\"\nlanguage = \"en-IE\"\n\n\
             [store]\nurl = \"sqlite://{db}\"\nseed_dir = \"{seed}\"\n\n[output]\ndir = \"{out}\"\n\n[feeds]\ndir = \"{feeds}\"\n",
            db = dir.path().join("articles.db").display(),
            seed = root.join("examples/articles").display(),
            out = dir.path().join("published").display(),
            feeds = root.join("feeds").display(),
        );
        let path = dir.path().join("feedsmith.toml");
        std::fs::write(&path, config_text).expect("write config");
        let config = feedsmith::config::Config::load(&path).expect("test config is valid");
        let store = feedsmith::app::open_store(&config, feedsmith::app::Seeding::OnFirstStart)
            .await
            .expect("open store");
        let set = feedsmith::app::publish_all(&config, store.as_ref(), chrono::Utc::now())
            .await
            .expect("publish");
        let publisher = std::sync::Arc::new(feedsmith::publish::Publisher::new(set));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let config = config.clone();
            let publisher = publisher.clone();
            tokio::spawn(async move {
                feedsmith::app::serve(&config, publisher, listener, async {
                    let _ = rx.await;
                })
                .await;
            })
        };
        Self {
            base: format!("http://{addr}"),
            addr,
            config,
            store,
            publisher,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Rebuilds and publishes every feed, as a scheduled refresh will.
    pub async fn republish(&self) {
        let set =
            feedsmith::app::publish_all(&self.config, self.store.as_ref(), chrono::Utc::now())
                .await
                .expect("publish");
        self.publisher.publish(set);
    }

    /// Signals shutdown and returns the server task to await.
    pub fn shut_down(&mut self) -> tokio::task::JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("server task")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
