//! The PostgreSQL article store, for publishers running several replicas (or
//! whose CMS writes articles straight into the database).
//!
//! Owns the PostgreSQL schema (`migrations/postgres/`, which is also the
//! documented interface for direct writes), the batched upsert that bumps the
//! store revision only on real changes, the indexed newest-N queries, and the
//! LISTEN connection that tells replicas about writes as they commit. Same
//! contract as the SQLite store: the generic suite in `tests/store.rs` runs on
//! both. It never renders, schedules or validates articles.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;

use serde::de::DeserializeOwned;

use super::codec::{
    self, COLUMNS, Change, ColumnDialect, ColumnError, KEY_COLUMNS, UPDATE_COLUMNS, UpsertDialect,
    json_text,
};
use super::sql::{Backend, Bind};
use super::{ConnectOptions, StoreError, Upserted, Walk, redact};
use crate::article::{Article, ArticleFilter, Status};
use listen::{listen, subscribe};
use query::{newest_query, walk_query};

mod listen;
mod query;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The channel the `articles_notify` trigger notifies at every commit that
/// wrote articles.
pub const CHANNEL: &str = "feedsmith_articles";

/// Articles per INSERT statement (bound as arrays, so no parameter limit).
const INSERT_ROWS: usize = 1_000;

/// The article store on PostgreSQL: a connection pool plus a LISTEN connection
/// that learns of commits as they happen (LISTEN/NOTIFY), so replicas need not
/// wait for a poll.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Bumped whenever a notification arrives or the LISTEN connection was
    /// re-established (changes may have been missed meanwhile); `None` when
    /// opened without listening (`ConnectOptions::listen`).
    changes: Option<watch::Receiver<u64>>,
    /// Set while the LISTEN connection is down (see `notification_fault`).
    listen_fault: watch::Receiver<Option<String>>,
}

impl PostgresStore {
    /// [`PostgresStore::open_with`] the default options.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, ConnectOptions::default()).await
    }

    /// Connects, applies pending migrations (under PostgreSQL's advisory lock,
    /// so replicas starting together take turns) and, if `options.listen`,
    /// starts listening. Keeps up to `options.pool_size` connections for
    /// queries, plus one for LISTEN.
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
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                url: shown.clone(),
                source,
            })?;
        if !options.listen {
            // Nothing sends: the fault stays `None`, and `notifications`
            // says there are none, so nobody waits for one.
            let (_, listen_fault) = watch::channel(None);
            return Ok(Self {
                pool,
                changes: None,
                listen_fault,
            });
        }
        // The LISTEN connection is held for good: a pool of its own, so it
        // never takes one the queries need.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(connect);
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
            changes: Some(changes),
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
        let (sql, binds) = newest_query(filter, limit, Status::Published);
        let explaining = StoreError::query("explaining a feed's query");
        let rows = bind_all(sqlx::query(AssertSqlSafe(format!("EXPLAIN {sql}"))), binds)
            .fetch_all(&self.pool)
            .await
            .map_err(explaining)?;
        let lines = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StoreError::query("explaining a feed's query"))?;
        Ok(lines.join("\n"))
    }
}

#[async_trait]
impl Backend for PostgresStore {
    type Row = PgRow;

    type Db = sqlx::Postgres;

    fn rows(&self, sql: String, binds: Vec<Bind>) -> BoxStream<'_, Result<PgRow, sqlx::Error>> {
        bind_all(sqlx::query(AssertSqlSafe(sql)), binds).fetch(&self.pool)
    }

    fn walk_query(filter: &ArticleFilter, walk: &Walk) -> (String, Vec<Bind>) {
        walk_query(filter, walk)
    }

    async fn execute(&self, sql: String, binds: Vec<Bind>) -> Result<(), sqlx::Error> {
        bind_all(sqlx::query(AssertSqlSafe(sql)), binds)
            .execute(&self.pool)
            .await
            .map(drop)
    }

    async fn write_articles(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
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
        codec::upsert::<sqlx::Postgres>(tx, articles, INSERT_ROWS).await
    }

    fn notifications(&self) -> Option<watch::Receiver<u64>> {
        self.changes.clone()
    }

    fn listen_fault(&self) -> Option<String> {
        self.listen_fault.borrow().clone()
    }
}

/// `query` with `binds` bound in order.
fn bind_all(
    mut query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for bind in binds {
        query = match bind {
            Bind::Text(s) => query.bind(s),
            Bind::Texts(v) => query.bind(v),
            Bind::Int(n) => query.bind(n),
            Bind::Time(t) => query.bind(t),
        };
    }
    query
}

#[async_trait]
impl UpsertDialect for sqlx::Postgres {
    const NUMBERED_PARAMS: bool = true;
    // Locking the counter row makes concurrent writers take turns, so
    // revisions commit in order.
    const LOCK_REVISION: &'static str = " FOR UPDATE";
    // A claim skips rows another replica's claim holds instead of waiting
    // for them.
    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    async fn write(tx: &mut sqlx::PgConnection, changes: &[Change<'_>]) -> Result<(), StoreError> {
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
        for change in changes {
            let c = change.columns();
            // Arrays of arrays must be rectangular in PostgreSQL: pass JSON.
            tag_keys.push(json_text(&codec::tag_keys(change.article)));
            author_keys.push(json_text(&codec::author_keys(change.article)));
            id.push(c.id);
            revision.push(c.revision);
            status.push(c.status);
            published_at.push(c.published_at);
            updated_at.push(c.updated_at);
            section.push(c.section);
            section_key.push(c.section_key);
            url.push(c.url);
            headline.push(c.headline);
            standfirst.push(c.standfirst);
            body_html.push(c.body_html);
            authors.push(c.authors);
            source.push(c.source);
            tags.push(c.tags);
            image.push(c.image);
            related.push(c.related);
            hash.push(c.hash);
        }
        sqlx::query(AssertSqlSafe(format!(
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
             ON CONFLICT (id) DO UPDATE SET {UPDATE_COLUMNS}, \
                 tag_keys = excluded.tag_keys, author_keys = excluded.author_keys"
        )))
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

/// PostgreSQL's side of decoding: times are `timestamptz`, JSON columns
/// `jsonb` deserialised from their bytes.
impl ColumnDialect for sqlx::Postgres {
    fn time(row: &PgRow, column: usize) -> Result<DateTime<Utc>, ColumnError> {
        Ok(row.try_get(column)?)
    }

    fn opt_time(row: &PgRow, column: usize) -> Result<Option<DateTime<Utc>>, ColumnError> {
        Ok(row.try_get(column)?)
    }

    fn json<T: DeserializeOwned>(row: &PgRow, column: usize) -> Result<Option<T>, ColumnError> {
        let value: Option<Json<T>> = row.try_get(column)?;
        Ok(value.map(|Json(v)| v))
    }
}
