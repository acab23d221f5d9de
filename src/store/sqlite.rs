//! The embedded SQLite article store (sqlx, WAL mode).
//!
//! Owns the SQLite schema (`migrations/sqlite/`), the upsert that bumps the
//! store revision only on real changes, and the indexed newest-N queries. It
//! runs every statement through sqlx's async driver, so callers on the runtime
//! never block on disk.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::{
    ArticleStore, COLUMNS, Revision, RowDecoder, SqliteLocation, StoreError, StoredArticle,
    Upserted, col, content_hash, distinct_id_chunks, json, keys,
};
use crate::article::{Article, ArticleFilter, ArticleId, Status, match_key};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

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
impl ArticleStore for SqliteStore {
    async fn upsert(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        let mut outcomes = Vec::with_capacity(articles.len());
        if articles.is_empty() {
            return Ok(outcomes);
        }
        // IMMEDIATE takes the write lock now, so two importers never both read
        // the same revision and then collide.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::query("starting an import transaction"))?;
        let start: i64 = sqlx::query_scalar("SELECT revision FROM store_state WHERE singleton = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::query("reading the store revision"))?;
        let mut revision = start;
        for chunk in distinct_id_chunks(articles, LOOKUP_CHUNK) {
            let stored = stored_hashes(&mut tx, chunk).await?;
            let mut changed = Vec::new();
            for article in chunk {
                let hash = content_hash(article);
                let existed = match stored.get(article.id.as_str()) {
                    Some(old) if *old == hash => {
                        outcomes.push(Upserted::Unchanged);
                        continue;
                    }
                    Some(_) => true,
                    None => false,
                };
                revision += 1;
                outcomes.push(if existed {
                    Upserted::Updated(Revision(revision))
                } else {
                    Upserted::Inserted(Revision(revision))
                });
                changed.push(Change {
                    article,
                    hash,
                    revision,
                    existed,
                });
            }
            write_changes(&mut tx, &changed).await?;
        }
        if revision != start {
            sqlx::query("UPDATE store_state SET revision = ? WHERE singleton = 1")
                .bind(revision)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::query("advancing the store revision"))?;
        }
        tx.commit()
            .await
            .map_err(StoreError::query("committing an import transaction"))?;
        Ok(outcomes)
    }

    async fn get(&self, id: &ArticleId) -> Result<Option<StoredArticle>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM articles WHERE id = ?");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::query("reading an article"))?;
        row.map(|r| decode(&r)).transpose()
    }

    async fn newest(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let (sql, binds) = newest_query(filter, limit);
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for bind in binds {
            query = match bind {
                Bind::Text(s) => query.bind(s),
                Bind::Int(n) => query.bind(n),
            };
        }
        super::collect_rows(
            query.fetch(&self.pool),
            limit,
            "selecting a feed's articles",
            decode,
        )
        .await
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        let r: i64 = sqlx::query_scalar("SELECT revision FROM store_state WHERE singleton = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(StoreError::query("reading the store revision"))?;
        Ok(Revision(r))
    }

    async fn changed_since(
        &self,
        since: Revision,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM articles WHERE revision > ? ORDER BY revision LIMIT ?");
        let query = sqlx::query(AssertSqlSafe(sql))
            .bind(since.0)
            .bind(i64::from(limit));
        super::collect_rows(
            query.fetch(&self.pool),
            limit,
            "listing changed articles",
            decode,
        )
        .await
    }
}

/// Ids looked up per statement, well under SQLite's bound-parameter limit.
const LOOKUP_CHUNK: usize = 500;
/// Articles per multi-row INSERT: 17 parameters each.
const INSERT_ROWS: usize = 100;
/// Filter rows per multi-row INSERT: 4 parameters each.
const FILTER_ROWS: usize = 1_000;

/// One article that differs from what is stored, with the revision it takes.
struct Change<'a> {
    article: &'a Article,
    hash: Vec<u8>,
    revision: i64,
    existed: bool,
}

async fn stored_hashes(
    tx: &mut sqlx::SqliteConnection,
    chunk: &[Article],
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let sql = format!(
        "SELECT id, content_hash FROM articles WHERE id IN ({})",
        placeholders(chunk.len())
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for a in chunk {
        q = q.bind(a.id.as_str());
    }
    let rows = q
        .fetch_all(&mut *tx)
        .await
        .map_err(StoreError::query("looking up stored articles"))?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("content_hash")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::query("looking up stored articles"))
}

async fn write_changes(
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
             ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, status = excluded.status, \
             published_at = excluded.published_at, updated_at = excluded.updated_at, \
             section = excluded.section, section_key = excluded.section_key, url = excluded.url, \
             headline = excluded.headline, standfirst = excluded.standfirst, \
             body_html = excluded.body_html, authors = excluded.authors, source = excluded.source, \
             tags = excluded.tags, image = excluded.image, related = excluded.related, \
             content_hash = excluded.content_hash"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for c in rows {
            let a = c.article;
            q = q
                .bind(a.id.as_str())
                .bind(c.revision)
                .bind(a.status.as_str())
                .bind(micros(a.published_at))
                .bind(micros(a.updated_at))
                .bind(a.section.as_deref())
                .bind(a.section.as_deref().map(match_key))
                .bind(a.url.as_str())
                .bind(a.headline.as_str())
                .bind(a.standfirst.as_deref())
                .bind(a.body_html.as_deref())
                .bind(json(&a.authors))
                .bind(a.source.as_ref().map(json))
                .bind(json(&a.tags))
                .bind(a.image.as_ref().map(json))
                .bind(json(&a.related))
                .bind(c.hash.as_slice());
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

/// A table holding one row per (article, match key) so feeds can filter on it.
struct FilterTable {
    table: &'static str,
    column: &'static str,
    keys: fn(&Article) -> Vec<String>,
}

const TAGS: FilterTable = FilterTable {
    table: "article_tags",
    column: "tag_key",
    keys: |a| keys(a.tags.iter().map(String::as_str)),
};

const AUTHORS: FilterTable = FilterTable {
    table: "article_authors",
    column: "author_key",
    keys: |a| keys(a.authors.iter().map(|x| x.name.as_str())),
};

enum Bind {
    Text(String),
    Int(i64),
}

/// Builds the newest-N query for `filter`.
///
/// One filter list "drives": for each of its values, a subquery walks that
/// value's index newest-first and stops after `limit` matches, checking the
/// other filters by primary-key lookups. The union of those candidates (at most
/// values × limit ids) is then sorted. So a feed costs about `limit` index steps
/// per value however large the store is, and no query scans a table.
fn newest_query(filter: &ArticleFilter, limit: u32) -> (String, Vec<Bind>) {
    let limit = i64::from(limit);
    let mut binds = Vec::new();
    let published = Status::Published.as_str();

    // `EXISTS` checks for the lists that do not drive, against an article id expression.
    let exists = |binds: &mut Vec<Bind>, id_expr: &str, t: &FilterTable, values: &[String]| {
        if values.is_empty() {
            return String::new();
        }
        binds.extend(values.iter().cloned().map(Bind::Text));
        format!(
            " AND EXISTS (SELECT 1 FROM {} f WHERE f.article_id = {id_expr} AND f.{} IN ({}))",
            t.table,
            t.column,
            placeholders(values.len())
        )
    };

    let mut subqueries = Vec::new();
    if !filter.sections.is_empty() {
        for section in &filter.sections {
            binds.push(Bind::Text(published.to_owned()));
            binds.push(Bind::Text(section.clone()));
            let mut sql = String::from(
                "SELECT a.id FROM articles a WHERE a.status = ? AND a.section_key = ?",
            );
            sql += &exists(&mut binds, "a.id", &TAGS, &filter.tags);
            sql += &exists(&mut binds, "a.id", &AUTHORS, &filter.authors);
            sql += " ORDER BY a.published_at DESC, a.id DESC LIMIT ?";
            binds.push(Bind::Int(limit));
            subqueries.push(sql);
        }
    } else if !filter.tags.is_empty() || !filter.authors.is_empty() {
        // Tags drive when given (authors, if any, are checked per row); else authors.
        let (driver, values, others): (&FilterTable, &[String], &[String]) =
            if !filter.tags.is_empty() {
                (&TAGS, &filter.tags, &filter.authors)
            } else {
                (&AUTHORS, &filter.authors, &[])
            };
        for value in values {
            binds.push(Bind::Text(value.clone()));
            binds.push(Bind::Text(published.to_owned()));
            let mut sql = format!(
                "SELECT d.article_id AS id FROM {} d WHERE d.{} = ? AND d.status = ?",
                driver.table, driver.column
            );
            sql += &exists(&mut binds, "d.article_id", &AUTHORS, others);
            sql += " ORDER BY d.published_at DESC, d.article_id DESC LIMIT ?";
            binds.push(Bind::Int(limit));
            subqueries.push(sql);
        }
    } else {
        binds.push(Bind::Text(published.to_owned()));
        binds.push(Bind::Int(limit));
        return (
            format!(
                "SELECT {COLUMNS} FROM articles WHERE status = ? \
                 ORDER BY published_at DESC, id DESC LIMIT ?"
            ),
            binds,
        );
    }
    let candidates = subqueries
        .iter()
        .map(|s| format!("SELECT id FROM ({s})"))
        .collect::<Vec<_>>()
        .join(" UNION ");
    binds.push(Bind::Int(limit));
    (
        format!(
            "SELECT {COLUMNS} FROM articles WHERE id IN ({candidates}) \
             ORDER BY published_at DESC, id DESC LIMIT ?"
        ),
        binds,
    )
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// One row of [`COLUMNS`], read by position straight into a [`StoredArticle`]
/// (see [`RowDecoder`]). Text the article keeps is copied once from the row;
/// URLs and JSON columns are parsed from text borrowed from it.
fn decode(row: &SqliteRow) -> Result<StoredArticle, StoreError> {
    let id: &str = row
        .try_get(col::ID)
        .map_err(StoreError::query("decoding an article"))?;
    let d = RowDecoder::new(id);
    let text = |i: usize| -> Result<Option<&str>, StoreError> {
        row.try_get::<Option<&str>, _>(i)
            .map_err(|e| d.corrupt(i, e))
    };
    let owned = |i: usize| -> Result<Option<String>, StoreError> {
        row.try_get::<Option<String>, _>(i)
            .map_err(|e| d.corrupt(i, e))
    };
    let time = |i: usize| -> Result<DateTime<Utc>, StoreError> {
        let us: i64 = row.try_get(i).map_err(|e| d.corrupt(i, e))?;
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| d.corrupt(i, format!("{us} is out of range")))
    };
    let article = Article {
        id: d.id()?,
        url: d.url(col::URL, d.required(col::URL, text(col::URL)?)?)?,
        headline: d.required(col::HEADLINE, owned(col::HEADLINE)?)?,
        standfirst: owned(col::STANDFIRST)?,
        body_html: owned(col::BODY_HTML)?,
        authors: d.required(col::AUTHORS, d.json(col::AUTHORS, text(col::AUTHORS)?)?)?,
        source: d.json(col::SOURCE, text(col::SOURCE)?)?.flatten(),
        section: owned(col::SECTION)?,
        tags: d.required(col::TAGS, d.json(col::TAGS, text(col::TAGS)?)?)?,
        image: d.json(col::IMAGE, text(col::IMAGE)?)?.flatten(),
        related: d.required(col::RELATED, d.json(col::RELATED, text(col::RELATED)?)?)?,
        published_at: time(col::PUBLISHED_AT)?,
        updated_at: time(col::UPDATED_AT)?,
        status: d.status(d.required(col::STATUS, text(col::STATUS)?)?)?,
    };
    let revision: i64 = row
        .try_get(col::REVISION)
        .map_err(|e| d.corrupt(col::REVISION, e))?;
    Ok(StoredArticle {
        article,
        revision: Revision(revision),
    })
}

#[cfg(test)]
mod tests;
