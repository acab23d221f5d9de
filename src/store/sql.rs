//! The [`ArticleStore`] operations written once over SQL, for both backends.
//!
//! A backend implements [`Backend`]: how it binds parameters and runs a
//! statement, its newest-N query (where the two databases' indexes and SQL
//! really differ), its upsert transaction and its change notifications. The
//! reads that are the same text in both dialects but for the parameter
//! markers (one article, changes since a revision, the store revision) and the
//! decoding of their rows live here, so the two stores cannot drift apart.
//! This module never opens a connection or knows which database it talks to.

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use tokio::sync::watch;

use super::codec::{self, COLUMNS, UpsertDialect};
use super::{
    ArchivePage, ArticleKey, ArticleStore, Revision, SourceState, StoreError, StoredArticle,
    Upserted, Walk,
};
use crate::article::{Article, ArticleFilter, ArticleId, Status};

/// A value bound to a statement parameter.
pub enum Bind {
    Text(String),
    /// A list, for PostgreSQL's array parameters; SQLite's queries use none.
    Texts(Vec<String>),
    Int(i64),
    /// A time column's value (SQLite: microseconds; PostgreSQL: timestamptz).
    Time(chrono::DateTime<chrono::Utc>),
}

/// What a database provides for [`ArticleStore`]. Every method is the
/// backend's own part; the store operations themselves are the blanket
/// [`ArticleStore`] implementation below.
#[async_trait]
pub trait Backend: Send + Sync {
    /// One row of a query, readable column by column.
    type Row: codec::ArticleRow + Send;

    /// The database, for its SQL dialect.
    type Db: UpsertDialect;

    /// The rows `sql` selects with `binds`, as the database produces them.
    fn rows(&self, sql: String, binds: Vec<Bind>) -> BoxStream<'_, Result<Self::Row, sqlx::Error>>;

    /// The statement of `walk` over `filter`'s articles (see
    /// [`ArticleStore::newest`], [`ArticleStore::withdrawn`] and
    /// [`ArticleStore::walk`]).
    fn walk_query(filter: &ArticleFilter, walk: &Walk) -> (String, Vec<Bind>);

    /// Runs one statement that returns no rows (the source state's upsert).
    async fn execute(&self, sql: String, binds: Vec<Bind>) -> Result<(), sqlx::Error>;

    /// [`ArticleStore::upsert`] of a non-empty batch, in one transaction.
    async fn write_articles(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError>;

    /// See [`ArticleStore::changes`].
    fn notifications(&self) -> Option<watch::Receiver<u64>> {
        None
    }

    /// See [`ArticleStore::notification_fault`].
    fn listen_fault(&self) -> Option<String> {
        None
    }
}

/// An archive page number in column `at`.
fn read_page_number(
    row: &impl codec::ArticleRow,
    at: usize,
    doing: &'static str,
) -> Result<u32, StoreError> {
    let unreadable = |e: codec::ColumnError| StoreError::Query {
        doing,
        source: sqlx::Error::Decode(e),
    };
    let n = row.int(at).map_err(unreadable)?;
    u32::try_from(n).map_err(|e| unreadable(e.into()))
}

/// The feed-order key in columns `at` (publish time) and `at + 1` (id).
fn read_key(
    row: &impl codec::ArticleRow,
    at: usize,
    doing: &'static str,
) -> Result<ArticleKey, StoreError> {
    let unreadable = |e: codec::ColumnError| StoreError::Query {
        doing,
        source: sqlx::Error::Decode(e),
    };
    let published_at = row.time(at).map_err(unreadable)?;
    let id = row
        .text(at + 1)
        .map_err(unreadable)?
        .ok_or_else(|| unreadable("an article id is null".into()))?;
    let id = id.parse().map_err(|e: String| unreadable(e.into()))?;
    Ok(ArticleKey { published_at, id })
}

/// What a feed's query is doing, for its errors.
const NEWEST: &str = "selecting a feed's articles";

#[async_trait]
impl<B: Backend> ArticleStore for B {
    async fn upsert(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        if articles.is_empty() {
            return Ok(Vec::new());
        }
        self.write_articles(articles).await
    }

    async fn get(&self, id: &ArticleId) -> Result<Option<StoredArticle>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM articles WHERE id = {}",
            B::Db::param(1)
        );
        let mut found = codec::collect_rows(
            self.rows(sql, vec![Bind::Text(id.as_str().to_owned())]),
            1,
            "reading an article",
        )
        .await?;
        Ok(found.pop())
    }

    async fn newest(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let (sql, binds) = B::walk_query(filter, &Walk::newest(Status::Published, limit));
        codec::collect_rows(self.rows(sql, binds), limit, NEWEST).await
    }

    async fn walk(
        &self,
        filter: &ArticleFilter,
        walk: &Walk,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let walk = Walk {
            keys_only: false,
            ..walk.clone()
        };
        let (sql, binds) = B::walk_query(filter, &walk);
        codec::collect_rows(
            self.rows(sql, binds),
            walk.limit,
            "walking a feed's articles",
        )
        .await
    }

    async fn walk_keys(
        &self,
        filter: &ArticleFilter,
        walk: &Walk,
    ) -> Result<Vec<ArticleKey>, StoreError> {
        use futures_util::TryStreamExt;
        let doing = "walking a feed's article keys";
        let walk = Walk {
            keys_only: true,
            ..walk.clone()
        };
        let (sql, binds) = B::walk_query(filter, &walk);
        let mut rows = self.rows(sql, binds);
        let mut keys = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(StoreError::query(doing))? {
            keys.push(read_key(&row, 0, doing)?);
        }
        Ok(keys)
    }

    async fn archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<ArchivePage>, StoreError> {
        use futures_util::TryStreamExt;
        let doing = "reading a feed's archive pages";
        let p = B::Db::param;
        let sql = format!(
            "SELECT page, newest_published, newest_id FROM archive_pages \
             WHERE feed = {} AND scope = {} AND page BETWEEN {} AND {} ORDER BY page",
            p(1),
            p(2),
            p(3),
            p(4)
        );
        let binds = vec![
            Bind::Text(feed.to_owned()),
            Bind::Text(scope.to_owned()),
            Bind::Int(i64::from(*pages.start())),
            Bind::Int(i64::from(*pages.end())),
        ];
        let mut rows = self.rows(sql, binds);
        let mut found = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(StoreError::query(doing))? {
            found.push(ArchivePage {
                page: read_page_number(&row, 0, doing)?,
                newest: read_key(&row, 1, doing)?,
            });
        }
        Ok(found)
    }

    async fn archive_page_count(&self, feed: &str, scope: &str) -> Result<u32, StoreError> {
        use futures_util::TryStreamExt;
        let doing = "counting a feed's archive pages";
        let p = B::Db::param;
        // `max` over the primary key's prefix: one index step, not a count.
        let sql = format!(
            "SELECT COALESCE(MAX(page), 0) FROM archive_pages WHERE feed = {} AND scope = {}",
            p(1),
            p(2)
        );
        let binds = vec![Bind::Text(feed.to_owned()), Bind::Text(scope.to_owned())];
        match self
            .rows(sql, binds)
            .try_next()
            .await
            .map_err(StoreError::query(doing))?
        {
            Some(row) => read_page_number(&row, 0, doing),
            None => Ok(0),
        }
    }

    async fn seal_archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: &[ArchivePage],
    ) -> Result<u32, StoreError> {
        let doing = "sealing a feed's archive pages";
        let p = B::Db::param;
        self.execute(
            format!(
                "DELETE FROM archive_pages WHERE feed = {} AND scope <> {}",
                p(1),
                p(2)
            ),
            vec![Bind::Text(feed.to_owned()), Bind::Text(scope.to_owned())],
        )
        .await
        .map_err(StoreError::query(doing))?;
        // 5 parameters a row: 100 rows stay far under SQLite's limit.
        for chunk in pages.chunks(100) {
            let mut values = Vec::with_capacity(chunk.len());
            let mut binds = Vec::with_capacity(chunk.len() * 5);
            for (i, page) in chunk.iter().enumerate() {
                let n = i * 5;
                values.push(format!(
                    "({}, {}, {}, {}, {})",
                    p(n + 1),
                    p(n + 2),
                    p(n + 3),
                    p(n + 4),
                    p(n + 5)
                ));
                binds.extend([
                    Bind::Text(feed.to_owned()),
                    Bind::Int(i64::from(page.page)),
                    Bind::Text(scope.to_owned()),
                    Bind::Time(page.newest.published_at),
                    Bind::Text(page.newest.id.as_str().to_owned()),
                ]);
            }
            self.execute(
                format!(
                    "INSERT INTO archive_pages (feed, page, scope, newest_published, newest_id) \
                     VALUES {} ON CONFLICT (feed, page) DO NOTHING",
                    values.join(", ")
                ),
                binds,
            )
            .await
            .map_err(StoreError::query(doing))?;
        }
        self.archive_page_count(feed, scope).await
    }

    async fn withdrawn(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let (sql, binds) = B::walk_query(filter, &Walk::newest(Status::Withdrawn, limit));
        let mut rows = codec::collect_rows(
            self.rows(sql, binds),
            limit,
            "selecting a feed's withdrawn articles",
        )
        .await?;
        // Withdrawn before they were ever published: never listed, never shown.
        rows.retain(|r| r.withdrawn_at.is_some());
        Ok(rows)
    }

    fn newest_stream<'a>(
        &'a self,
        filter: &'a ArticleFilter,
        limit: u32,
    ) -> BoxStream<'a, Result<StoredArticle, StoreError>> {
        use futures_util::StreamExt;
        let (sql, binds) = B::walk_query(filter, &Walk::newest(Status::Published, limit));
        codec::decode_rows(self.rows(sql, binds), NEWEST).boxed()
    }

    async fn revision(&self) -> Result<Revision, StoreError> {
        use codec::ArticleRow;
        use futures_util::TryStreamExt;
        let doing = "reading the store revision";
        let sql = "SELECT revision FROM store_state WHERE singleton = 1";
        let row = self
            .rows(sql.to_owned(), Vec::new())
            .try_next()
            .await
            .map_err(StoreError::query(doing))?
            .ok_or(sqlx::Error::RowNotFound)
            .map_err(StoreError::query(doing))?;
        row.int(0).map(Revision).map_err(|e| StoreError::Query {
            doing,
            source: sqlx::Error::Decode(e),
        })
    }

    async fn changed_since(
        &self,
        since: Revision,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM articles WHERE revision > {} ORDER BY revision LIMIT {}",
            B::Db::param(1),
            B::Db::param(2)
        );
        let binds = vec![Bind::Int(since.0), Bind::Int(i64::from(limit))];
        codec::collect_rows(self.rows(sql, binds), limit, "listing changed articles").await
    }

    async fn source_states(&self) -> Result<Vec<(String, SourceState)>, StoreError> {
        use codec::ArticleRow;
        use futures_util::TryStreamExt;
        let doing = "reading the sources' fetch state";
        let mut rows = self.rows(
            "SELECT name, state FROM source_state ORDER BY name".to_owned(),
            Vec::new(),
        );
        let mut states = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(StoreError::query(doing))? {
            let decode = |e: codec::ColumnError| StoreError::Query {
                doing,
                source: sqlx::Error::Decode(e),
            };
            let name = row.owned_text(0).map_err(decode)?.unwrap_or_default();
            let text = row.owned_text(1).map_err(decode)?.unwrap_or_default();
            // A state this version cannot read is as good as none: the source
            // starts afresh rather than never being fetched again.
            let state = serde_json::from_str(&text).unwrap_or_default();
            states.push((name, state));
        }
        Ok(states)
    }

    async fn save_source_state(&self, name: &str, state: &SourceState) -> Result<(), StoreError> {
        let doing = "saving a source's fetch state";
        let text = serde_json::to_string(state).map_err(|e| StoreError::Query {
            doing,
            source: sqlx::Error::Encode(e.into()),
        })?;
        let sql = format!(
            "INSERT INTO source_state (name, state) VALUES ({}, {}) \
             ON CONFLICT (name) DO UPDATE SET state = excluded.state",
            B::Db::param(1),
            B::Db::param(2)
        );
        self.execute(sql, vec![Bind::Text(name.to_owned()), Bind::Text(text)])
            .await
            .map_err(StoreError::query(doing))
    }

    fn changes(&self) -> Option<watch::Receiver<u64>> {
        self.notifications()
    }

    fn notification_fault(&self) -> Option<String> {
        self.listen_fault()
    }

    fn websub(&self) -> Option<&dyn super::WebSubStore> {
        Some(self)
    }
}
