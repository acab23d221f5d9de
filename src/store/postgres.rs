//! The PostgreSQL article store, for publishers running several replicas (or
//! whose CMS writes articles straight into the database).
//!
//! Owns the PostgreSQL schema (`migrations/postgres/`, which is also the
//! documented interface for direct writes), the batched upsert that bumps the
//! store revision only on real changes, the indexed newest-N queries, and the
//! LISTEN connection that tells replicas about writes as they commit. Same
//! contract as the SQLite store: the generic suite in `tests/store.rs` runs on
//! both. It never renders, schedules or validates articles.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;
use tracing::{info, warn};

use super::{
    ArticleStore, COLUMNS, ConnectOptions, Revision, RowDecoder, StoreError, StoredArticle,
    Upserted, col, content_hash, json, keys, redact,
};
use crate::article::{Article, ArticleFilter, ArticleId, Status, match_key};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel the `articles_notify` trigger notifies at every commit that
/// wrote articles.
pub const CHANNEL: &str = "feedsmith_articles";

/// Articles per INSERT statement (bound as arrays, so no parameter limit).
const INSERT_ROWS: usize = 1_000;

#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Bumped whenever a notification arrives or the LISTEN connection was
    /// re-established (changes may have been missed meanwhile).
    changes: watch::Receiver<u64>,
    /// Set while the LISTEN connection is down (see `notification_fault`).
    listen_fault: watch::Receiver<Option<String>>,
}

impl PostgresStore {
    /// [`PostgresStore::open_with`] the default options.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, ConnectOptions::default()).await
    }

    /// Connects, applies pending migrations (under PostgreSQL's advisory lock,
    /// so replicas starting together take turns) and starts listening. Keeps
    /// up to `options.pool_size` connections for queries, plus one for LISTEN.
    pub async fn open_with(url: &str, options: ConnectOptions) -> Result<Self, StoreError> {
        let shown = redact(url);
        let connect = PgConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            url: shown.clone(),
            source,
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect.clone())
            .await
            .map_err(|source| StoreError::Open {
                url: shown.clone(),
                source,
            })?;
        // The LISTEN connection is held for good: a pool of its own, so it
        // never takes one the queries need.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(connect);
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                source,
            })?;
        let listener = subscribe(&listen_pool)
            .await
            .map_err(|source| StoreError::Open {
                url: shown.clone(),
                source,
            })?;
        let (tx, changes) = watch::channel(0);
        let (fault_tx, listen_fault) = watch::channel(None);
        tokio::spawn(listen(listen_pool, listener, tx, fault_tx, shown));
        Ok(Self {
            pool,
            changes,
            listen_fault,
        })
    }

    /// Checks the database can be reached, without changing it. `Ok(false)`
    /// means feedsmith's tables are not there yet (the first start creates them).
    pub async fn probe(url: &str) -> Result<bool, StoreError> {
        let shown = redact(url);
        let open = |source| StoreError::Open {
            url: shown.clone(),
            source,
        };
        let options = PgConnectOptions::from_str(url).map_err(open)?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(open)?;
        let found: Result<Option<String>, _> =
            sqlx::query_scalar("SELECT to_regclass('store_state')::text")
                .fetch_one(&pool)
                .await;
        pool.close().await;
        found.map(|t| t.is_some()).map_err(open)
    }

    /// The pool, for tests that inspect query plans.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// PostgreSQL's plan for the newest-N query of `filter`, one line per
    /// node, to show which indexes a feed's query uses.
    pub async fn explain_newest(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<String, StoreError> {
        let (sql, binds) = newest_query(filter, limit);
        let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("EXPLAIN {sql}")));
        for bind in binds {
            query = match bind {
                Bind::Text(s) => query.bind(s),
                Bind::Texts(v) => query.bind(v),
                Bind::Int(n) => query.bind(n),
            };
        }
        let lines = query
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::query("explaining a feed's query"))?;
        Ok(lines.join("\n"))
    }
}

/// A listener on [`CHANNEL`], on the connection of the LISTEN pool.
async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is reported at once; `listen` then starts afresh.
    listener.eager_reconnect(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Forwards notifications until every receiver is gone.
///
/// Any error on the LISTEN connection drops the listener and subscribes
/// afresh (with back-off): a listener whose connection was terminated by the
/// server can report an error and keep the dead connection, so it is never
/// reused. Notifications sent meanwhile are lost, so re-subscribing counts as
/// a change and the scheduler catches up by revision. While it is down,
/// `fault` says why, and the counter moves when that starts and when it ends so
/// the scheduler can show it.
async fn listen(
    pool: PgPool,
    listener: PgListener,
    tx: watch::Sender<u64>,
    fault: watch::Sender<Option<String>>,
    url: String,
) {
    let mut listener = Some(listener);
    let mut failures = 0u32;
    let down = |reason: String| {
        let started = fault.send_if_modified(|f| {
            let started = f.is_none();
            *f = Some(reason);
            started
        });
        if started {
            tx.send_modify(|n| *n += 1);
        }
    };
    loop {
        if tx.is_closed() {
            return;
        }
        let Some(active) = listener.as_mut() else {
            match subscribe(&pool).await {
                Ok(fresh) => {
                    info!(store = %url, "listening for article writes again");
                    listener = Some(fresh);
                    failures = 0;
                    fault.send_replace(None);
                    tx.send_modify(|n| *n += 1);
                }
                Err(e) => {
                    failures += 1;
                    down(format!("cannot listen for article writes: {e}"));
                    tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
                }
            }
            continue;
        };
        // Wake now and then to notice that the store was dropped.
        let reason = match tokio::time::timeout(Duration::from_secs(10), active.try_recv()).await {
            Err(_) => continue,
            Ok(Ok(Some(_))) => {
                tx.send_modify(|n| *n += 1);
                continue;
            }
            Ok(Ok(None)) => "the connection was closed".to_owned(),
            Ok(Err(e)) => e.to_string(),
        };
        warn!(store = %url, %reason, "lost the connection that listens for article writes; reconnecting");
        down(format!(
            "lost the connection that listens for article writes ({reason}); reconnecting"
        ));
        listener = None;
        failures += 1;
        // The first attempt is immediate; repeated losses back off.
        if failures > 1 {
            tokio::time::sleep(Duration::from_secs(1 << failures.min(5))).await;
        }
    }
}

/// One article that differs from what is stored, with the revision it takes.
struct Change<'a> {
    article: &'a Article,
    hash: Vec<u8>,
    revision: i64,
}

#[async_trait]
impl ArticleStore for PostgresStore {
    async fn upsert(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        let mut outcomes = Vec::with_capacity(articles.len());
        if articles.is_empty() {
            return Ok(outcomes);
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(StoreError::query("starting an import transaction"))?;
        // The triggers leave revisions, keys and filter rows to us for this
        // transaction (migration 0002 says why the value is not 'on').
        sqlx::query("SET LOCAL feedsmith.writer = 'with-filter-rows'")
            .execute(&mut *tx)
            .await
            .map_err(StoreError::query("starting an import transaction"))?;
        // Locking the counter row makes concurrent writers take turns, so
        // revisions commit in order.
        let start: i64 =
            sqlx::query_scalar("SELECT revision FROM store_state WHERE singleton = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::query("reading the store revision"))?;
        let mut revision = start;
        for chunk in super::distinct_id_chunks(articles, INSERT_ROWS) {
            let ids: Vec<&str> = chunk.iter().map(|a| a.id.as_str()).collect();
            let rows = sqlx::query("SELECT id, content_hash FROM articles WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::query("looking up stored articles"))?;
            let mut stored: HashMap<String, Option<Vec<u8>>> = HashMap::with_capacity(rows.len());
            for r in rows {
                let id: String = r
                    .try_get("id")
                    .map_err(StoreError::query("looking up stored articles"))?;
                let hash: Option<Vec<u8>> = r
                    .try_get("content_hash")
                    .map_err(StoreError::query("looking up stored articles"))?;
                stored.insert(id, hash);
            }
            let mut changed = Vec::new();
            for article in chunk {
                let hash = content_hash(article);
                let existed = match stored.get(article.id.as_str()) {
                    Some(Some(old)) if *old == hash => {
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
                });
            }
            write_changes(&mut tx, &changed).await?;
        }
        if revision != start {
            sqlx::query("UPDATE store_state SET revision = $1 WHERE singleton = 1")
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
        let sql = format!("SELECT {COLUMNS} FROM articles WHERE id = $1");
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
                Bind::Texts(v) => query.bind(v),
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
        let sql = format!(
            "SELECT {COLUMNS} FROM articles WHERE revision > $1 ORDER BY revision LIMIT $2"
        );
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

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        Some(self.changes.clone())
    }

    fn notification_fault(&self) -> Option<String> {
        self.listen_fault.borrow().clone()
    }
}

async fn write_changes(
    tx: &mut sqlx::PgConnection,
    changes: &[Change<'_>],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    // One statement per batch: every column bound as an array and unnested.
    let mut id = Vec::with_capacity(changes.len());
    let mut revision = Vec::with_capacity(changes.len());
    let mut status = Vec::with_capacity(changes.len());
    let mut published_at = Vec::with_capacity(changes.len());
    let mut updated_at = Vec::with_capacity(changes.len());
    let mut section = Vec::with_capacity(changes.len());
    let mut section_key = Vec::with_capacity(changes.len());
    let mut url = Vec::with_capacity(changes.len());
    let mut headline = Vec::with_capacity(changes.len());
    let mut standfirst = Vec::with_capacity(changes.len());
    let mut body_html = Vec::with_capacity(changes.len());
    let mut authors = Vec::with_capacity(changes.len());
    let mut source = Vec::with_capacity(changes.len());
    let mut tags = Vec::with_capacity(changes.len());
    let mut image = Vec::with_capacity(changes.len());
    let mut related = Vec::with_capacity(changes.len());
    let mut tag_keys = Vec::with_capacity(changes.len());
    let mut author_keys = Vec::with_capacity(changes.len());
    let mut hash = Vec::with_capacity(changes.len());
    for c in changes {
        let a = c.article;
        id.push(a.id.as_str());
        revision.push(c.revision);
        status.push(a.status.as_str());
        published_at.push(a.published_at);
        updated_at.push(a.updated_at);
        section.push(a.section.as_deref());
        section_key.push(a.section.as_deref().map(match_key));
        url.push(a.url.as_str());
        headline.push(a.headline.as_str());
        standfirst.push(a.standfirst.as_deref());
        body_html.push(a.body_html.as_deref());
        authors.push(json(&a.authors));
        source.push(a.source.as_ref().map(json));
        tags.push(json(&a.tags));
        image.push(a.image.as_ref().map(json));
        related.push(json(&a.related));
        // Arrays of arrays must be rectangular in PostgreSQL: pass JSON.
        tag_keys.push(json(&keys(a.tags.iter().map(String::as_str))));
        author_keys.push(json(&keys(a.authors.iter().map(|x| x.name.as_str()))));
        hash.push(c.hash.as_slice());
    }
    sqlx::query(
        "INSERT INTO articles (id, revision, status, published_at, updated_at, section, section_key, \
         url, headline, standfirst, body_html, authors, source, tags, image, related, tag_keys, \
         author_keys, content_hash) \
         SELECT id, revision, status, published_at, updated_at, section, section_key, url, headline, \
                standfirst, body_html, authors::jsonb, source::jsonb, tags::jsonb, image::jsonb, \
                related::jsonb, \
                ARRAY(SELECT jsonb_array_elements_text(tag_keys::jsonb)), \
                ARRAY(SELECT jsonb_array_elements_text(author_keys::jsonb)), content_hash \
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::timestamptz[], \
                     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
                     $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
                     $18::text[], $19::bytea[]) \
              AS t(id, revision, status, published_at, updated_at, section, section_key, url, \
                   headline, standfirst, body_html, authors, source, tags, image, related, \
                   tag_keys, author_keys, content_hash) \
         ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, status = excluded.status, \
             published_at = excluded.published_at, updated_at = excluded.updated_at, \
             section = excluded.section, section_key = excluded.section_key, url = excluded.url, \
             headline = excluded.headline, standfirst = excluded.standfirst, \
             body_html = excluded.body_html, authors = excluded.authors, source = excluded.source, \
             tags = excluded.tags, image = excluded.image, related = excluded.related, \
             tag_keys = excluded.tag_keys, author_keys = excluded.author_keys, \
             content_hash = excluded.content_hash",
    )
    .bind(id)
    .bind(revision)
    .bind(status)
    .bind(published_at)
    .bind(updated_at)
    .bind(section)
    .bind(section_key)
    .bind(url)
    .bind(headline)
    .bind(standfirst)
    .bind(body_html)
    .bind(authors)
    .bind(source)
    .bind(tags)
    .bind(image)
    .bind(related)
    .bind(tag_keys)
    .bind(author_keys)
    .bind(hash)
    .execute(&mut *tx)
    .await
    .map_err(StoreError::query("writing articles"))?;
    write_filter_rows(tx, changes).await
}

/// Rewrites the tag and author rows of the changed articles from the keys
/// just stored, in one round trip (the `articles_filter_rows` trigger leaves
/// this to us).
async fn write_filter_rows(
    tx: &mut sqlx::PgConnection,
    changes: &[Change<'_>],
) -> Result<(), StoreError> {
    let ids: Vec<&str> = changes.iter().map(|c| c.article.id.as_str()).collect();
    sqlx::query("SELECT feedsmith_refresh_filter_rows($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::query("writing filter rows"))?;
    Ok(())
}

enum Bind {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

/// Builds the newest-N query for `filter`.
///
/// One filter list drives, as in the SQLite store. Sections: one subquery per
/// section walks `articles_section_newest` newest-first and stops after
/// `limit` rows, checking tags and authors on each row's key arrays. Tags (or
/// else authors): for each value, a lateral subquery walks that value's
/// `article_tags_newest` (`article_authors_newest`) rows newest-first and
/// stops after `limit` matches, checking authors against `article_authors`.
/// The candidates, at most values × limit, are then sorted. So a feed costs
/// about `limit` index steps per value however large the store is.
fn newest_query(filter: &ArticleFilter, limit: u32) -> (String, Vec<Bind>) {
    let limit = i64::from(limit);
    let mut binds = vec![
        Bind::Text(Status::Published.as_str().to_owned()),
        Bind::Int(limit),
    ];
    let mut bind = |b: Bind| {
        binds.push(b);
        binds.len()
    };
    if !filter.sections.is_empty() {
        let mut conditions = String::new();
        if !filter.tags.is_empty() {
            let n = bind(Bind::Texts(filter.tags.clone()));
            conditions += &format!(" AND tag_keys && ${n}::text[]");
        }
        if !filter.authors.is_empty() {
            let n = bind(Bind::Texts(filter.authors.clone()));
            conditions += &format!(" AND author_keys && ${n}::text[]");
        }
        let mut parts = Vec::with_capacity(filter.sections.len());
        for section in &filter.sections {
            let n = bind(Bind::Text(section.clone()));
            parts.push(format!(
                "(SELECT {COLUMNS} FROM articles WHERE status = $1 AND section_key = ${n}{conditions} \
                 ORDER BY published_at DESC, id DESC LIMIT $2)"
            ));
        }
        return (
            format!(
                "SELECT * FROM ({}) AS candidates ORDER BY published_at DESC, id DESC LIMIT $2",
                parts.join(" UNION ALL ")
            ),
            binds,
        );
    }
    let (table, column, values, others) = if !filter.tags.is_empty() {
        (
            "article_tags",
            "tag_key",
            &filter.tags[..],
            &filter.authors[..],
        )
    } else if !filter.authors.is_empty() {
        (
            "article_authors",
            "author_key",
            &filter.authors[..],
            &[][..],
        )
    } else {
        return (
            format!(
                "SELECT {COLUMNS} FROM articles WHERE status = $1 \
                 ORDER BY published_at DESC, id DESC LIMIT $2"
            ),
            binds,
        );
    };
    let driving = bind(Bind::Texts(values.to_vec()));
    let mut check = String::new();
    if !others.is_empty() {
        let n = bind(Bind::Texts(others.to_vec()));
        check = format!(
            " AND EXISTS (SELECT 1 FROM article_authors f \
             WHERE f.article_id = d.article_id AND f.author_key = ANY(${n}::text[]))"
        );
    }
    (
        format!(
            "SELECT {COLUMNS} FROM articles WHERE status = $1 AND id IN ( \
                 SELECT d.article_id FROM unnest(${driving}::text[]) AS v(key) \
                 CROSS JOIN LATERAL (SELECT d.article_id FROM {table} d \
                     WHERE d.{column} = v.key AND d.status = $1{check} \
                     ORDER BY d.published_at DESC, d.article_id DESC LIMIT $2) AS d) \
             ORDER BY published_at DESC, id DESC LIMIT $2"
        ),
        binds,
    )
}

/// One row of [`COLUMNS`], read by position straight into a [`StoredArticle`]
/// (see [`RowDecoder`]): text the article keeps is copied once from the row,
/// URLs parsed from borrowed text and the JSONB columns deserialised from
/// their bytes into their types.
fn decode(row: &PgRow) -> Result<StoredArticle, StoreError> {
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
    fn json_column<T: serde::de::DeserializeOwned>(
        row: &PgRow,
        d: &RowDecoder<'_>,
        i: usize,
    ) -> Result<Option<T>, StoreError> {
        row.try_get::<Option<Json<T>>, _>(i)
            .map(|v| v.map(|Json(v)| v))
            .map_err(|e| d.corrupt(i, e))
    }
    let time = |i: usize| -> Result<DateTime<Utc>, StoreError> {
        row.try_get(i).map_err(|e| d.corrupt(i, e))
    };
    let article = Article {
        id: d.id()?,
        url: d.url(col::URL, d.required(col::URL, text(col::URL)?)?)?,
        headline: d.required(col::HEADLINE, owned(col::HEADLINE)?)?,
        standfirst: owned(col::STANDFIRST)?,
        body_html: owned(col::BODY_HTML)?,
        authors: d.required(col::AUTHORS, json_column(row, &d, col::AUTHORS)?)?,
        source: json_column::<Option<_>>(row, &d, col::SOURCE)?.flatten(),
        section: owned(col::SECTION)?,
        tags: d.required(col::TAGS, json_column(row, &d, col::TAGS)?)?,
        image: json_column::<Option<_>>(row, &d, col::IMAGE)?.flatten(),
        related: d.required(col::RELATED, json_column(row, &d, col::RELATED)?)?,
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
