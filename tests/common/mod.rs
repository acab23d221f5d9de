//! Helpers shared by the integration tests: articles made through the public
//! validation path, and stores opened on temporary files.
#![allow(dead_code)] // each test binary uses a different subset

pub mod strategies;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use feedsmith::article::{Article, RawArticle, Status, ValidationContext};
use feedsmith::builder::{self, Document, FeedMeta};
use feedsmith::config::{Config, FeedSpec, Format};
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
    /// Where the access log goes unless the test said otherwise.
    pub access_log: PathBuf,
    _dir: TempDir,
}

impl TestServer {
    /// Starts the server; `extra_server` lines are added to `[server]`. The
    /// access log (combined) goes to [`TestServer::access_log`].
    pub async fn start(extra_server: &str) -> Self {
        Self::start_with_access_log(extra_server, "").await
    }

    /// [`TestServer::start`] with `access_log` lines in `[server.access_log]`;
    /// without a `path` among them the log goes to [`TestServer::access_log`].
    pub async fn start_with_access_log(extra_server: &str, access_log: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("access.log");
        let access_log = if access_log.contains("path") {
            access_log.to_owned()
        } else {
            format!("{access_log}\npath = \"{}\"", log_path.display())
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let root = repo_root();
        let config_text = format!(
            "[server]\nlisten = \"{addr}\"\nbase_url = \"http://{addr}\"\n{extra_server}\n\n\
             [server.access_log]\n{access_log}\n\n\
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
                .await
                .expect("serve");
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
            access_log: log_path,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stores `count` articles (`{prefix}-00000`…) whose body is
    /// `body_html`, then republishes: a feed far bigger than socket buffers.
    pub async fn publish_long_articles(&self, prefix: &str, count: usize, body_html: &str) {
        let batch: Vec<_> = (0..count)
            .map(|i| {
                article(
                    &format!("{prefix}-{i:05}"),
                    "2026-10-01T10:00:00Z",
                    serde_json::json!({ "body_html": body_html }),
                )
            })
            .collect();
        self.store.upsert(&batch).await.expect("write");
        self.republish().await;
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

/// A store that can be made to fail on demand, as if the database went away.
pub struct FlakyStore {
    inner: std::sync::Arc<dyn ArticleStore>,
    down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Feed queries (`newest`) answered, to see which feeds were rebuilt.
    queries: std::sync::Arc<std::sync::Mutex<Vec<feedsmith::article::ArticleFilter>>>,
}

impl FlakyStore {
    fn check(&self) -> Result<(), feedsmith::store::StoreError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(feedsmith::store::StoreError::Query {
                doing: "reaching the store (test: made unreachable)",
                source: sqlx::Error::PoolTimedOut,
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl ArticleStore for FlakyStore {
    async fn upsert(
        &self,
        articles: &[Article],
    ) -> Result<Vec<feedsmith::store::Upserted>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.upsert(articles).await
    }
    async fn get(
        &self,
        id: &feedsmith::article::ArticleId,
    ) -> Result<Option<feedsmith::store::StoredArticle>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn newest(
        &self,
        filter: &feedsmith::article::ArticleFilter,
        limit: u32,
    ) -> Result<Vec<feedsmith::store::StoredArticle>, feedsmith::store::StoreError> {
        self.check()?;
        if let Ok(mut q) = self.queries.lock() {
            q.push(filter.clone());
        }
        self.inner.newest(filter, limit).await
    }

    async fn withdrawn(
        &self,
        filter: &feedsmith::article::ArticleFilter,
        limit: u32,
    ) -> Result<Vec<feedsmith::store::StoredArticle>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.withdrawn(filter, limit).await
    }

    async fn walk(
        &self,
        filter: &feedsmith::article::ArticleFilter,
        walk: &feedsmith::store::Walk,
    ) -> Result<Vec<feedsmith::store::StoredArticle>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.walk(filter, walk).await
    }

    async fn walk_keys(
        &self,
        filter: &feedsmith::article::ArticleFilter,
        walk: &feedsmith::store::Walk,
    ) -> Result<Vec<feedsmith::store::ArticleKey>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.walk_keys(filter, walk).await
    }

    async fn archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<feedsmith::store::ArchivePage>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.archive_pages(feed, scope, pages).await
    }

    async fn archive_page_count(
        &self,
        feed: &str,
        scope: &str,
    ) -> Result<u32, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.archive_page_count(feed, scope).await
    }

    async fn seal_archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: &[feedsmith::store::ArchivePage],
    ) -> Result<u32, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.seal_archive_pages(feed, scope, pages).await
    }
    async fn revision(&self) -> Result<feedsmith::store::Revision, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.revision().await
    }
    async fn changed_since(
        &self,
        since: feedsmith::store::Revision,
        limit: u32,
    ) -> Result<Vec<feedsmith::store::StoredArticle>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.changed_since(since, limit).await
    }
    async fn source_states(
        &self,
    ) -> Result<Vec<(String, feedsmith::store::SourceState)>, feedsmith::store::StoreError> {
        self.check()?;
        self.inner.source_states().await
    }
    async fn save_source_state(
        &self,
        name: &str,
        state: &feedsmith::store::SourceState,
    ) -> Result<(), feedsmith::store::StoreError> {
        self.check()?;
        self.inner.save_source_state(name, state).await
    }
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.inner.changes()
    }
    fn notification_fault(&self) -> Option<String> {
        self.inner.notification_fault()
    }
    fn websub(&self) -> Option<&dyn feedsmith::store::WebSubStore> {
        self.inner.websub()
    }
}

/// Opens the configured store wrapped in a [`FlakyStore`]; while `down` is
/// set, opening fails too.
pub struct FlakyOpener {
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub queries: std::sync::Arc<std::sync::Mutex<Vec<feedsmith::article::ArticleFilter>>>,
}

#[async_trait::async_trait]
impl feedsmith::scheduler::StoreOpener for FlakyOpener {
    async fn open(
        &self,
        config: &feedsmith::config::Config,
    ) -> Result<std::sync::Arc<dyn ArticleStore>, feedsmith::scheduler::OpenError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("test: store made unreachable".into());
        }
        let inner = feedsmith::app::ConfiguredStore.open(config).await?;
        Ok(std::sync::Arc::new(FlakyStore {
            inner,
            down: self.down.clone(),
            queries: self.queries.clone(),
        }))
    }
}

/// The whole service (`app::run_with`: scheduler, reloads, server) on
/// `127.0.0.1:0`, in a folder of its own: config, a copy of the repository's
/// feed files, SQLite store and output folder. Restartable on the same folder.
pub struct Service {
    pub dir: std::sync::Arc<TempDir>,
    pub base: String,
    pub down: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The filter of every feed query the service made, in order.
    pub queries: std::sync::Arc<std::sync::Mutex<Vec<feedsmith::article::ArticleFilter>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What a test wants different from the defaults.
#[derive(Clone)]
pub struct ServiceOptions {
    /// `[schedule]` lines.
    pub schedule: String,
    /// `[store].url`; default a file in the service folder.
    pub store_url: Option<String>,
    /// Start with the store unreachable.
    pub down: bool,
    /// More feed files, as (file name, contents).
    pub extra_feeds: Vec<(String, String)>,
    /// More `[store]` lines.
    pub store_extra: String,
    /// What reads a changed configuration; default `Config::load`.
    pub loader: Option<feedsmith::reloader::Loader>,
    /// Source files, as (file name, contents), in `dir/sources`; `None`
    /// makes no sources folder at all.
    pub sources: Option<Vec<(String, String)>>,
    /// More tables at the end of the main config file (`[websub]`, `[metrics]`
    /// and the like).
    pub main_extra: String,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            schedule: "refresh = \"* * * * * *\"".into(),
            store_url: None,
            down: false,
            extra_feeds: Vec::new(),
            store_extra: String::new(),
            loader: None,
            sources: None,
            main_extra: String::new(),
        }
    }
}

impl Service {
    pub async fn start(options: ServiceOptions) -> Self {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("temp dir"));
        copy_feeds(dir.path(), &options);
        Self::start_in(dir, options).await
    }

    /// Starts (again) in `dir`, keeping its store, feeds and output folder.
    pub async fn start_in(dir: std::sync::Arc<TempDir>, options: ServiceOptions) -> Self {
        // The service's log, shown with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("feedsmith=debug,feedsmith::access=warn")
            .with_test_writer()
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = write_config(dir.path(), addr, &options);
        let down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(options.down));
        let queries = std::sync::Arc::default();
        let opener = std::sync::Arc::new(FlakyOpener {
            down: down.clone(),
            queries: std::sync::Arc::clone(&queries),
        });
        let loader = options
            .loader
            .clone()
            .unwrap_or_else(feedsmith::reloader::config_loader);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            if let Err(e) = feedsmith::app::run_with(config, opener, loader, listener, stop).await {
                panic!("service failed: {e}");
            }
        });
        Self {
            dir,
            base: format!("http://{addr}"),
            down,
            queries,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A second connection to the service's store, as a CMS would write.
    pub async fn writer(&self) -> SqliteStore {
        SqliteStore::open(&SqliteLocation::File(self.path("articles.db")))
            .await
            .expect("open the service's store")
    }

    pub async fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        let r = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("request");
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, etag, r.bytes().await.expect("body").to_vec())
    }

    pub async fn etag(&self, path: &str) -> String {
        self.get(path).await.1
    }

    pub async fn health(&self) -> Value {
        let (_, _, body) = self.get("/healthz").await;
        serde_json::from_slice(&body).expect("healthz is JSON")
    }

    /// Polls `check` until it returns `Some`, or fails the test with `what`
    /// after `secs` seconds.
    pub async fn wait_for<T, F, Fut>(&self, secs: u64, what: &str, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to `secs`) until the first refresh has published
    /// `/feeds/latest.rss`, and returns its ETag.
    pub async fn first_refresh(&self, secs: u64) -> String {
        self.wait_for(secs, "the first refresh", || async {
            let (status, etag, _) = self.get("/feeds/latest.rss").await;
            (status == 200).then_some(etag)
        })
        .await
    }

    /// Waits until `path` is served with an ETag other than `old`.
    pub async fn wait_for_new_etag(&self, path: &str, old: &str) -> String {
        self.wait_for(15, &format!("a new ETag on {path}"), || async {
            let (status, etag, _) = self.get(path).await;
            (status == 200 && etag != old).then_some(etag)
        })
        .await
    }

    /// Stops the service and waits until it has.
    pub async fn stop(mut self) -> std::sync::Arc<TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("service task");
        }
        self.dir.clone()
    }
}

/// Copies the repository's feed files, and `options`' extra ones, into
/// `dir/feeds`.
pub fn copy_feeds(dir: &Path, options: &ServiceOptions) {
    let feeds = dir.join("feeds");
    std::fs::create_dir_all(&feeds).expect("feeds dir");
    for entry in std::fs::read_dir(repo_root().join("feeds")).expect("repo feeds") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, feeds.join(path.file_name().expect("name"))).expect("copy");
    }
    for (name, text) in &options.extra_feeds {
        std::fs::write(feeds.join(name), text).expect("extra feed");
    }
    if let Some(sources) = &options.sources {
        let dir = dir.join("sources");
        std::fs::create_dir_all(&dir).expect("sources dir");
        for (name, text) in sources {
            std::fs::write(dir.join(name), text).expect("source file");
        }
    }
}

/// Writes the [`Service`] configuration for `dir` (store, output folder
/// `dir/published` and feeds all inside it) and loads it.
pub fn write_config(
    dir: &Path,
    addr: std::net::SocketAddr,
    options: &ServiceOptions,
) -> feedsmith::config::Config {
    let store_url = options
        .store_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("articles.db").display()));
    let text = format!(
        "[server]\nlisten = \"{addr}\"\nbase_url = \"http://news.example.com\"\n\n\
         [server.access_log]\npath = \"{access_log}\"\n\n\
         [site]\ntitle = \"Example News\"\ntimezone = \"Europe/Dublin\"\n\n\
         [store]\nurl = \"{store_url}\"\nseed_dir = \"{seed}\"\n{store_extra}\n\n\
         [output]\ndir = \"{out}\"\n\n[schedule]\n{schedule}\n\n[feeds]\ndir = \"{feeds}\"\n\n\
         [sources]\ndir = \"{sources}\"\n\n{main_extra}\n",
        seed = repo_root().join("examples/articles").display(),
        out = dir.join("published").display(),
        access_log = dir.join("access.log").display(),
        schedule = options.schedule,
        store_extra = options.store_extra,
        feeds = dir.join("feeds").display(),
        sources = dir.join("sources").display(),
        main_extra = options.main_extra,
    );
    let path = dir.join("feedsmith.toml");
    std::fs::write(&path, text).expect("write config");
    feedsmith::config::Config::load(&path).expect("test config is valid")
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The environment variable naming the PostgreSQL server the tests may use.
pub const POSTGRES_ENV: &str = "FEEDSMITH_TEST_POSTGRES_URL";

/// A schema of its own on the test PostgreSQL server, dropped when this is
/// dropped; `url` points a store at it.
pub struct PgScratch {
    admin: String,
    pub schema: String,
    pub url: String,
}

impl PgScratch {
    /// `None` (after saying why) when no test server is configured.
    pub async fn create() -> Option<Self> {
        let Ok(admin) = std::env::var(POSTGRES_ENV) else {
            eprintln!(
                "skipped: {POSTGRES_ENV} is not set, so the PostgreSQL tests do not run \
                 (example: {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test; .ci/run sets it)"
            );
            return None;
        };
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "feedsmith_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_subsec_nanos()
        );
        let pool = sqlx::PgPool::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await
            .expect("create a test schema");
        pool.close().await;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options[search_path]={schema}");
        Some(Self { admin, schema, url })
    }
}

impl Drop for PgScratch {
    fn drop(&mut self) {
        // Drop runs outside async code: a thread with its own runtime does it.
        let (admin, schema) = (self.admin.clone(), self.schema.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {schema} CASCADE"
                )))
                .execute(&pool)
                .await
                .ok()?;
                pool.close().await;
                Some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop test schema {}", self.schema);
        }
    }
}

/// A PostgreSQL store in a fresh schema, or `None` (skipped, said why).
pub async fn postgres_store() -> Option<(PgScratch, feedsmith::store::PostgresStore)> {
    let scratch = PgScratch::create().await?;
    let store = feedsmith::store::PostgresStore::open(&scratch.url)
        .await
        .expect("open the PostgreSQL store");
    Some((scratch, store))
}

/// [`sqlite_store`] in the same shape as [`postgres_store`].
pub async fn sqlite_store_opt() -> Option<(TempDir, SqliteStore)> {
    Some(sqlite_store().await)
}

/// One configured feed built from the sample articles, as `build` would.
pub struct Built {
    /// The feed's configuration.
    pub spec: FeedSpec,
    /// What the builder is told about the feed.
    pub meta: FeedMeta,
    /// The articles in feed order.
    pub articles: Vec<Article>,
    /// Each configured format's document.
    pub docs: BTreeMap<Format, Document>,
}

/// The configuration shipped in `config/feedsmith.toml`.
pub fn shipped_config() -> Config {
    Config::load(&repo_root().join("config/feedsmith.toml")).expect("shipped config")
}

/// Articles in feed order: newest published first, then id descending.
pub fn newest_first(mut v: Vec<Article>) -> Vec<Article> {
    v.sort_by(|a, b| {
        b.published_at
            .cmp(&a.published_at)
            .then_with(|| b.id.cmp(&a.id))
    });
    v
}

/// Every shipped feed built from the sample articles.
pub fn sample_feeds() -> Vec<Built> {
    let config = shipped_config();
    let samples = sample_articles();
    config
        .feeds
        .values()
        .map(|spec| {
            let selected: Vec<Article> = samples
                .iter()
                .filter(|a| a.status == Status::Published && spec.filter.matches(a))
                .cloned()
                .collect();
            let mut articles = newest_first(selected);
            articles.truncate(spec.limit as usize);
            let meta = FeedMeta::new(&config, spec);
            let docs = builder::build(&meta, &articles, &spec.formats)
                .expect("build")
                .into_iter()
                .map(|d| (d.format, d))
                .collect();
            Built {
                spec: spec.clone(),
                meta,
                articles,
                docs,
            }
        })
        .collect()
}

/// A working directory for running the `feedsmith` binary as an admin would:
/// `feedsmith.toml` whose store (`data/articles.db`) and output folder
/// (`published/`) live inside it, and one feed file, `feeds/latest.toml`.
pub struct TempSite {
    /// The directory; removed when the site is dropped.
    pub dir: TempDir,
}

impl TempSite {
    /// A site whose one feed is `feeds/latest.toml` holding `feed`.
    pub fn with_feed(feed: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let feeds = dir.path().join("feeds");
        std::fs::create_dir(&feeds).expect("feeds dir");
        std::fs::write(feeds.join("latest.toml"), feed).expect("feed file");
        std::fs::write(
            dir.path().join("feedsmith.toml"),
            format!(
                "[server]\nbase_url = \"http://127.0.0.1:8080\"\n\n\
                 [site]\ntitle = \"Example News\"\ntimezone = \"Europe/Dublin\"\n\n\
                 [store]\nurl = \"sqlite://{db}\"\n\n[output]\ndir = \"{out}\"\n\n[feeds]\ndir = \"{feeds}\"\n",
                db = dir.path().join("data/articles.db").display(),
                out = dir.path().join("published").display(),
                feeds = feeds.display()
            ),
        )
        .expect("config");
        Self { dir }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The main config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("feedsmith.toml")
    }

    /// Runs `feedsmith` with this site's config ([`run_feedsmith`]).
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        run_feedsmith(&self.config(), args)
    }

    /// Writes `text` to `name` inside the site, making folders as needed.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("dirs");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// The site's store, opened as the binary opens it.
    pub async fn store(&self) -> SqliteStore {
        SqliteStore::open(&SqliteLocation::File(
            self.dir.path().join("data/articles.db"),
        ))
        .await
        .expect("open store")
    }
}

/// Runs the real `feedsmith` binary with `--config config` and `args`, from
/// the repository root, logging only warnings.
pub fn run_feedsmith(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_feedsmith"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(repo_root())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run feedsmith")
}

/// One request an [`Upstream`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request target, such as `/feed.xml`.
    pub path: String,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What an [`Upstream`] answers.
#[derive(Debug, Clone)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Send no `Content-Length`: the body ends when the connection closes,
    /// so its size is learnt only while reading it.
    pub no_length: bool,
}

impl Scripted {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            no_length: false,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

type Responder = Box<dyn FnMut(&Received) -> Scripted + Send>;

/// A scripted upstream feed server on `127.0.0.1:0` (plain HTTP/1.1, one
/// request per connection): answers each request with what the responder
/// set by [`Upstream::respond`] makes of it, and records every request.
pub struct Upstream {
    pub base: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    responder: std::sync::Arc<std::sync::Mutex<Responder>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let responder: std::sync::Arc<std::sync::Mutex<Responder>> =
            std::sync::Arc::new(std::sync::Mutex::new(Box::new(|_: &Received| {
                Scripted::new(404)
            })));
        let (log, respond) = (received.clone(), responder.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, respond) = (log.clone(), respond.clone());
                tokio::spawn(async move {
                    let _ = serve_one(socket, log, respond).await;
                });
            }
        });
        Self {
            base,
            received,
            responder,
            task,
        }
    }

    /// Answers every request from now on with `f`'s response.
    pub fn respond(&self, f: impl FnMut(&Received) -> Scripted + Send + 'static) {
        *self.responder.lock().expect("responder") = Box::new(f);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// Waits (up to `secs`) until at least `n` requests arrived; returns them.
    pub async fn wait_for_requests(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {n} upstream requests (got {})",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut socket: tokio::net::TcpStream,
    log: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    respond: std::sync::Arc<std::sync::Mutex<Responder>>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let request = Received {
        path,
        headers,
        at: std::time::Instant::now(),
    };
    let response = {
        let mut f = respond.lock().expect("responder");
        (*f)(&request)
    };
    log.lock().expect("log").push(request);
    let mut out = format!(
        "HTTP/1.1 {} Scripted\r\nConnection: close\r\n",
        response.status
    );
    for (name, value) in &response.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !response.no_length {
        out.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
    }
    out.push_str("\r\n");
    socket.write_all(out.as_bytes()).await?;
    socket.write_all(&response.body).await?;
    socket.shutdown().await
}

/// An RSS 2.0 document with one item per (guid, headline), all in 2026.
pub fn rss_feed(items: &[(&str, &str)]) -> String {
    let items: String = items
        .iter()
        .enumerate()
        .map(|(i, (guid, headline))| {
            format!(
                "<item><guid>{guid}</guid><title>{headline}</title>\
                 <link>https://wire.example/{i}</link>\
                 <pubDate>2026-12-0{}T10:00:00Z</pubDate></item>",
                i + 1
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire</title>\
         <link>https://wire.example/</link><description>Wire</description>{items}\
         </channel></rss>"
    )
}
