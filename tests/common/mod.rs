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
