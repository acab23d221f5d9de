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
use super::{ArticleStore, Revision, SourceState, StoreError, StoredArticle, Upserted};
use crate::article::{Article, ArticleFilter, ArticleId, Status};

/// A value bound to a statement parameter.
pub enum Bind {
    Text(String),
    /// A list, for PostgreSQL's array parameters; SQLite's queries use none.
    Texts(Vec<String>),
    Int(i64),
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

    /// The newest-N statement for `filter` among articles of `status` (see
    /// [`ArticleStore::newest`] and [`ArticleStore::withdrawn`]).
    fn newest_query(filter: &ArticleFilter, limit: u32, status: Status) -> (String, Vec<Bind>);

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
        let (sql, binds) = B::newest_query(filter, limit, Status::Published);
        codec::collect_rows(self.rows(sql, binds), limit, NEWEST).await
    }

    async fn withdrawn(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        let (sql, binds) = B::newest_query(filter, limit, Status::Withdrawn);
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
        let (sql, binds) = B::newest_query(filter, limit, Status::Published);
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
