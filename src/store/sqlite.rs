//! The embedded SQLite article store (sqlx, WAL mode).
//!
//! Owns the SQLite schema (`migrations/sqlite/`), the upsert that bumps the
//! store revision only on real changes, and the indexed newest-N queries. It
//! runs every statement through sqlx's async driver, so callers on the runtime
//! never block on disk.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use serde::de::DeserializeOwned;

use super::codec::{
    self, COLUMNS, Change, ColumnDialect, ColumnError, KEY_COLUMNS, UPDATE_COLUMNS, UpsertDialect,
};
use super::sql::{Backend, Bind};
use super::{SqliteLocation, StoreError, Upserted, Walk};
use crate::article::{Article, ArticleFilter};
use query::walk_query;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The article store on one SQLite file (or in memory), through a connection
/// pool. It cannot notify of writes, so the scheduler polls it.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn options(loc: &SqliteLocation) -> SqliteConnectOptions {
    let base = match loc {
        SqliteLocation::File(path) => SqliteConnectOptions::new().filename(path),
        // A named shared-cache memory database, so every pooled connection sees
        // the same data; the name is unique per store.
        SqliteLocation::Memory => SqliteConnectOptions::from_str(&format!(
            "sqlite:file:feedsmith-{}?mode=memory&cache=shared",
            memory_db_number()
        ))
        .unwrap_or_else(|_| SqliteConnectOptions::new().in_memory(true)),
    };
    base.journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        // 16 MiB of page cache per connection (negative means KiB): the
        // index pages feed queries touch stay decoded, and the kernel's page
        // cache holds the rest. It is resident memory, per connection: with
        // 64 MiB, a thousand-feed service had 250 MiB resident once every
        // feed was served, with 16 MiB 145 MiB (BENCHMARKS.md, "Scale").
        // No mmap_size: a mapped file turns a disk read error into SIGBUS,
        // where a failed query keeps the last good feeds served.
        .pragma("cache_size", "-16384")
}

fn memory_db_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1_000_000
}

fn describe(loc: &SqliteLocation) -> String {
    match loc {
        SqliteLocation::File(p) => format!("sqlite://{}", p.display()),
        SqliteLocation::Memory => "sqlite::memory:".to_owned(),
    }
}

impl SqliteStore {
    /// Opens the database, creating the file and its directory if needed, and
    /// applies pending migrations.
    pub async fn open(loc: &SqliteLocation) -> Result<Self, StoreError> {
        let url = describe(loc);
        if let SqliteLocation::File(path) = loc
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| StoreError::Open {
                    url: url.clone(),
                    source: sqlx::Error::Io(e),
                })?;
        }
        let max = match loc {
            // Memory databases must keep one connection alive or they vanish.
            SqliteLocation::Memory => 1,
            SqliteLocation::File(_) => 4,
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .connect_with(options(loc).create_if_missing(true))
            .await
            .map_err(|source| StoreError::Open {
                url: url.clone(),
                source,
            })?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { url, source })?;
        Ok(Self { pool })
    }

    /// Checks an existing database can be read, without creating or changing it.
    pub async fn probe(loc: &SqliteLocation) -> Result<bool, StoreError> {
        let url = describe(loc);
        if let SqliteLocation::File(path) = loc
            && !tokio::fs::try_exists(path).await.unwrap_or(false)
        {
            return Ok(false);
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options(loc).read_only(true).create_if_missing(false))
            .await
            .map_err(|source| StoreError::Open {
                url: url.clone(),
                source,
            })?;
        let found = sqlx::query("SELECT revision FROM store_state")
            .fetch_optional(&pool)
            .await;
        pool.close().await;
        match found {
            Ok(_) => Ok(true),
            Err(source) => Err(StoreError::Open { url, source }),
        }
    }

    /// The pool, for tests that inspect query plans.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[async_trait]
impl Backend for SqliteStore {
    type Row = SqliteRow;

    type Db = sqlx::Sqlite;

    fn rows(&self, sql: String, binds: Vec<Bind>) -> BoxStream<'_, Result<SqliteRow, sqlx::Error>> {
        match bind_all(sqlx::query(AssertSqlSafe(sql)), binds) {
            Ok(query) => query.fetch(&self.pool),
            Err(e) => Box::pin(futures_util::stream::once(async { Err(e) })),
        }
    }

    fn walk_query(filter: &ArticleFilter, walk: &Walk) -> (String, Vec<Bind>) {
        walk_query(filter, walk)
    }

    async fn execute(&self, sql: String, binds: Vec<Bind>) -> Result<(), sqlx::Error> {
        bind_all(sqlx::query(AssertSqlSafe(sql)), binds)?
            .execute(&self.pool)
            .await
            .map(drop)
    }

    async fn write_articles(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        // IMMEDIATE takes the write lock now, so two importers never both read
        // the same revision and then collide.
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::query("starting an import transaction"))?;
        codec::upsert::<sqlx::Sqlite>(tx, articles, LOOKUP_CHUNK).await
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// `query` with `binds` bound in order.
fn bind_all(mut query: SqliteQuery<'_>, binds: Vec<Bind>) -> Result<SqliteQuery<'_>, sqlx::Error> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s),
            Bind::Int(n) => query.bind(n),
            Bind::Time(t) => query.bind(t.timestamp_micros()),
            // The SQLite queries spell lists out as one parameter per value.
            Bind::Texts(_) => {
                return Err(sqlx::Error::Encode(
                    "a list parameter: SQLite has no arrays".into(),
                ));
            }
        };
    }
    Ok(query)
}

/// Ids looked up per statement, well under SQLite's bound-parameter limit.
const LOOKUP_CHUNK: usize = 500;
/// Articles per multi-row INSERT: 17 parameters each.
const INSERT_ROWS: usize = 100;
/// Filter rows per multi-row INSERT: 4 parameters each.
const FILTER_ROWS: usize = 1_000;

#[async_trait]
impl UpsertDialect for sqlx::Sqlite {
    const NUMBERED_PARAMS: bool = false;
    // `BEGIN IMMEDIATE` has taken the write lock already.
    const LOCK_REVISION: &'static str = "";
    // SQLite runs one write at a time: a claim is already exclusive.
    const SKIP_LOCKED: &'static str = "";

    async fn write(
        tx: &mut sqlx::SqliteConnection,
        changes: &[Change<'_>],
    ) -> Result<(), StoreError> {
        for rows in changes.chunks(INSERT_ROWS) {
            let values =
                vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
            let sql = format!(
                "INSERT INTO articles (id, revision, status, published_at, updated_at, section, section_key, \
                 url, headline, standfirst, body_html, authors, source, tags, image, related, content_hash) \
                 VALUES {values} \
                 ON CONFLICT (id) DO UPDATE SET {UPDATE_COLUMNS}"
            );
            let mut q = sqlx::query(AssertSqlSafe(sql));
            for c in rows {
                let c = c.columns();
                q = q
                    .bind(c.id)
                    .bind(c.revision)
                    .bind(c.status)
                    .bind(micros(c.published_at))
                    .bind(micros(c.updated_at))
                    .bind(c.section)
                    .bind(c.section_key)
                    .bind(c.url)
                    .bind(c.headline)
                    .bind(c.standfirst)
                    .bind(c.body_html)
                    .bind(c.authors)
                    .bind(c.source)
                    .bind(c.tags)
                    .bind(c.image)
                    .bind(c.related)
                    .bind(c.hash);
            }
            q.execute(&mut *tx)
                .await
                .map_err(StoreError::query("writing articles"))?;
        }

        let replaced: Vec<&str> = changes
            .iter()
            .filter(|c| c.existed)
            .map(|c| c.article.id.as_str())
            .collect();
        for FilterTable {
            table,
            column,
            keys: keys_of,
        } in [TAGS, AUTHORS]
        {
            for ids in replaced.chunks(LOOKUP_CHUNK) {
                let sql = format!(
                    "DELETE FROM {table} WHERE article_id IN ({})",
                    placeholders(ids.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for id in ids {
                    q = q.bind(*id);
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("replacing filter rows"))?;
            }
            let rows: Vec<(&Article, String)> = changes
                .iter()
                .flat_map(|c| keys_of(c.article).into_iter().map(move |k| (c.article, k)))
                .collect();
            for rows in rows.chunks(FILTER_ROWS) {
                let values = vec!["(?, ?, ?, ?)"; rows.len()].join(", ");
                let sql = format!(
                    "INSERT INTO {table} (article_id, {column}, status, published_at) VALUES {values}"
                );
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for (a, key) in rows {
                    q = q
                        .bind(a.id.as_str())
                        .bind(key.as_str())
                        .bind(a.status.as_str())
                        .bind(micros(a.published_at));
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(StoreError::query("writing filter rows"))?;
            }
        }
        Ok(())
    }
}

/// A table holding one row per (article, match key) so feeds can filter on it.
struct FilterTable {
    table: &'static str,
    column: &'static str,
    keys: fn(&Article) -> Vec<String>,
}

const TAGS: FilterTable = FilterTable {
    table: "article_tags",
    column: "tag_key",
    keys: codec::tag_keys,
};

const AUTHORS: FilterTable = FilterTable {
    table: "article_authors",
    column: "author_key",
    keys: codec::author_keys,
};

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// SQLite's side of decoding: times are stored as microseconds since the
/// epoch, JSON columns as text.
impl ColumnDialect for sqlx::Sqlite {
    fn time(row: &SqliteRow, column: usize) -> Result<DateTime<Utc>, ColumnError> {
        let us: i64 = row.try_get(column)?;
        DateTime::from_timestamp_micros(us).ok_or_else(|| format!("{us} is out of range").into())
    }

    fn opt_time(row: &SqliteRow, column: usize) -> Result<Option<DateTime<Utc>>, ColumnError> {
        let us: Option<i64> = row.try_get(column)?;
        us.map(|us| {
            DateTime::from_timestamp_micros(us)
                .ok_or_else(|| format!("{us} is out of range").into())
        })
        .transpose()
    }

    fn json<T: DeserializeOwned>(row: &SqliteRow, column: usize) -> Result<Option<T>, ColumnError> {
        let text: Option<&str> = row.try_get(column)?;
        Ok(text.map(serde_json::from_str).transpose()?)
    }
}

mod query;
#[cfg(test)]
mod tests;
