//! The article store: where validated articles are kept and how feeds query them.
//!
//! This module owns the [`ArticleStore`] trait that the import path, the feed
//! builder's caller and the scheduler talk to, the store-wide [`Revision`]
//! counter, and the choice of backend from `[store].url`. A backend keeps
//! articles exactly as validated and answers "newest N matching a filter" and
//! "what changed since revision R" from indexes. It also keeps each pulled
//! source's fetch state ([`SourceState`]) for the `source` task, so validators
//! and back-off survive a restart, and the WebSub hub's subscriptions and
//! pending deliveries (`websub`). It never validates, renders or schedules
//! anything, and it never sees the config beyond its URL.

mod codec;
pub mod postgres;
mod sql;
pub mod sqlite;
pub mod websub;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;

use crate::article::{Article, ArticleFilter, ArticleId, Status};

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use websub::{Delivery, DeliveryKind, Subscription, WebSubCounts, WebSubStore};

/// A point in the store's history. Every write that changes an article takes
/// the next revision, store-wide, so "has anything changed since R" is one
/// comparison and "what changed" one indexed range query. Revision 0 is the
/// empty store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub i64);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// An article as kept, with the revision of its last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArticle {
    /// The article itself, as last written.
    pub article: Article,
    /// The store-wide revision of the article's last insert or change.
    pub revision: Revision,
    /// When the store saw a published article turn `withdrawn` (the
    /// store's own clock, kept by both backends); `None` for any other
    /// status, and for an article withdrawn before it was ever published.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// An article's place in feed order: newer articles have greater keys
/// (publish time, then id), and feeds list them greatest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ArticleKey {
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Its id, ordering articles published at the same instant.
    pub id: ArticleId,
}

impl ArticleKey {
    /// The key of `article`.
    pub fn of(article: &Article) -> Self {
        Self {
            published_at: article.published_at,
            id: article.id.clone(),
        }
    }
}

/// One walk down a feed's articles in feed order (newest first): those of
/// `status`, at most `limit`, within a key range. A feed's document is the
/// walk from the top; an archive page, a walk between two keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Walk {
    /// Which articles: `Published`, or `Withdrawn` for tombstones (only
    /// those withdrawn after being published).
    pub status: Status,
    /// Stops after this many.
    pub limit: u32,
    /// Only articles newer than this key.
    pub after: Option<ArticleKey>,
    /// Only articles older than this key, or this one too when the flag is
    /// set.
    pub before: Option<(ArticleKey, bool)>,
    /// Reads only each article's key, not the article.
    pub keys_only: bool,
}

impl Walk {
    /// The newest `limit` articles of `status`.
    pub fn newest(status: Status, limit: u32) -> Self {
        Self {
            status,
            limit,
            after: None,
            before: None,
            keys_only: false,
        }
    }
}

/// One complete page of a feed's archive (RFC 5005): the articles of the
/// feed newer than the previous page's `newest` and up to this one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivePage {
    /// Its number: 1 is the oldest page.
    pub page: u32,
    /// The key of its newest article when it was sealed.
    pub newest: ArticleKey,
}

/// What an upsert did to one article.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The article was new; it now holds this revision.
    Inserted(Revision),
    /// The article existed with other content; its new revision.
    Updated(Revision),
    /// Identical content was already stored; nothing was written.
    Unchanged,
}

/// What the `source` task remembers about one pulled upstream feed, kept in
/// the store so it survives a restart. The store keeps it as given (a JSON
/// document per source name) and never interprets it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SourceState {
    /// The URL this state applies to; a source file naming another URL starts
    /// afresh.
    pub url: String,
    /// The upstream's `ETag` from its last `200`, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The upstream's `Last-Modified` from its last `200`, sent back as
    /// `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// When a fetch last succeeded (a `200` imported, or a `304`).
    pub last_success: Option<DateTime<Utc>>,
    /// The last fetch's HTTP status, if it got one.
    pub last_status: Option<u16>,
    /// Why fetching fails, while it does.
    pub last_error: Option<String>,
    /// When the current run of failures began.
    pub error_since: Option<DateTime<Utc>>,
    /// Failures in a row, for the back-off.
    pub failures: u32,
    /// No fetch before this time (`Retry-After`, back-off, `max-age`).
    pub not_before: Option<DateTime<Utc>>,
    /// The upstream answered `410 Gone`: no more fetches until the URL changes.
    pub gone: bool,
}

/// Which backend `[store].url` names.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite::memory:`.
    Sqlite(SqliteLocation),
    /// `postgres://…` (any URL sqlx's PostgreSQL driver accepts).
    Postgres(String),
}

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file, relative to the working directory; created if missing.
    File(PathBuf),
    /// A private in-memory database, gone when the store is dropped (for tests).
    Memory,
}

impl FromStr for StoreUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sqlite::memory:" || s == "sqlite://:memory:" {
            return Ok(StoreUrl::Sqlite(SqliteLocation::Memory));
        }
        if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(format!("store url {s:?} names no database file"));
            }
            return Ok(StoreUrl::Sqlite(SqliteLocation::File(PathBuf::from(path))));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(s.to_owned()));
        }
        Err(format!(
            "store url {:?} is neither sqlite://PATH nor postgres://…",
            redact(s)
        ))
    }
}

/// Hides a password in a URL so it never reaches a log or an error message.
pub(crate) fn redact(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(loc) => write!(f, "Sqlite({loc:?})"),
            StoreUrl::Postgres(url) => write!(f, "Postgres({:?})", redact(url)),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Sqlite(SqliteLocation::File(p)) => write!(f, "sqlite://{}", p.display()),
            StoreUrl::Sqlite(SqliteLocation::Memory) => f.write_str("sqlite::memory:"),
            StoreUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// Why the article store failed. Messages never carry a password (URLs are
/// redacted).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open store {url}: {source}")]
    Open {
        /// The store URL, password redacted.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the schema migrations failed.
    #[error("cannot migrate store {url}: {source}")]
    Migrate {
        /// The store URL, password redacted.
        url: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed (connection lost, constraint, timeout).
    #[error("store query failed while {doing}: {source}")]
    Query {
        /// What the store was doing, for the message, e.g. "listing a feed's articles".
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A stored row does not decode into an [`Article`].
    #[error("stored article {id} is unreadable: {reason}")]
    Corrupt {
        /// The article's id as stored.
        id: String,
        /// What is wrong with the row.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn query(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Query { doing, source }
    }
}

/// The operations every backend provides. Writes are batched: one call is one
/// transaction, so a crash never leaves half an article (or half a batch).
#[async_trait]
pub trait ArticleStore: Send + Sync {
    /// Inserts or updates each article, in order, in one transaction. Content
    /// identical to what is stored changes nothing and takes no revision.
    async fn upsert(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError>;

    /// One article by id, whatever its status.
    async fn get(&self, id: &ArticleId) -> Result<Option<StoredArticle>, StoreError>;

    /// The newest `limit` published articles matching `filter`, newest first
    /// (`published_at` descending, then id descending).
    async fn newest(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError>;

    /// The withdrawn articles of `filter` that were published before they
    /// were withdrawn, newest published first, at most `limit`: the
    /// candidates for a feed's tombstones.
    async fn withdrawn(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError>;

    /// The articles `walk` selects from those matching `filter`, newest
    /// first (the walk must not be `keys_only`).
    async fn walk(
        &self,
        filter: &ArticleFilter,
        walk: &Walk,
    ) -> Result<Vec<StoredArticle>, StoreError>;

    /// The keys of the articles `walk` selects (as if `keys_only`), newest
    /// first: for sealing archive pages without reading their bodies.
    async fn walk_keys(
        &self,
        filter: &ArticleFilter,
        walk: &Walk,
    ) -> Result<Vec<ArticleKey>, StoreError>;

    /// The sealed archive pages numbered within `pages` of `feed`, made for
    /// `scope` (its filter and page size, spelled by the caller), oldest
    /// first: a primary-key range, however many pages the feed has. Pages
    /// sealed for another scope are not returned.
    async fn archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<ArchivePage>, StoreError>;

    /// How many archive pages `feed` has sealed for `scope` (the number of
    /// the newest: they are numbered from 1 without gaps).
    async fn archive_page_count(&self, feed: &str, scope: &str) -> Result<u32, StoreError>;

    /// Seals `pages` of `feed` for `scope`: each is stored unless a page of
    /// that number already is (another replica sealed it first: its bounds
    /// stand), and the feed's pages of any other scope are dropped first.
    /// Returns how many pages are now sealed for `scope`.
    async fn seal_archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: &[ArchivePage],
    ) -> Result<u32, StoreError>;

    /// [`newest`](Self::newest) one article at a time, each as soon as its
    /// row is read and decoded, in the same order; a consumer can start on
    /// the first before the last has arrived (`feedsmith build` renders them
    /// so). The first error ends it. The default waits for `newest` and
    /// hands out its result, for stores that cannot stream.
    fn newest_stream<'a>(
        &'a self,
        filter: &'a ArticleFilter,
        limit: u32,
    ) -> BoxStream<'a, Result<StoredArticle, StoreError>> {
        use futures_util::{StreamExt, TryStreamExt, stream};
        stream::once(self.newest(filter, limit))
            .map_ok(|all| stream::iter(all.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// The revision of the latest change; `Revision(0)` for an empty store.
    async fn revision(&self) -> Result<Revision, StoreError>;

    /// Up to `limit` articles (any status) changed after `since`, oldest change first.
    async fn changed_since(
        &self,
        since: Revision,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError>;

    /// A counter that moves when the store learns of a write as it commits
    /// (PostgreSQL's LISTEN/NOTIFY), so replicas need not wait for a poll. It
    /// may move without a change and, after a lost connection, stands for
    /// changes it could not see: the revision says what actually changed.
    /// `None` for stores that can only be polled.
    fn changes(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// Every pulled source's saved fetch state, by source name.
    async fn source_states(&self) -> Result<Vec<(String, SourceState)>, StoreError>;

    /// Saves one pulled source's fetch state, replacing what was kept for
    /// `name`. Takes no revision: no article changes.
    async fn save_source_state(&self, name: &str, state: &SourceState) -> Result<(), StoreError>;

    /// Why the store cannot tell about writes right now (its LISTEN
    /// connection is lost and not yet re-established), so writes wait for a
    /// schedule or the watch poll. `changes` moves when this starts and ends.
    fn notification_fault(&self) -> Option<String> {
        None
    }

    /// The WebSub hub's rows, where this store keeps them (both SQL
    /// backends do; a test double may not).
    fn websub(&self) -> Option<&dyn WebSubStore> {
        None
    }
}

/// Opens (creating and migrating if needed) the store `url` names.
pub async fn open(
    url: &StoreUrl,
    options: ConnectOptions,
) -> Result<Box<dyn ArticleStore>, StoreError> {
    match url {
        StoreUrl::Sqlite(loc) => Ok(Box::new(SqliteStore::open(loc).await?)),
        StoreUrl::Postgres(u) => Ok(Box::new(PostgresStore::open_with(u, options).await?)),
    }
}

/// How a replica connects to a PostgreSQL store, beyond its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Connections kept for queries; LISTEN has one more of its own.
    pub pool_size: u32,
    /// Whether to hold a LISTEN connection for write notifications
    /// (PostgreSQL). A running service does; a one-shot command (`build`,
    /// `import`) reads or writes and exits, so it spares the connection and
    /// its set-up.
    pub listen: bool,
}

impl ConnectOptions {
    /// The largest `store.pool_size` accepted: feedsmith runs a handful of
    /// queries at a time, and each connection costs the server memory.
    pub const MAX_POOL_SIZE: u32 = 100;
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            listen: true,
        }
    }
}

/// Checks that the store `url` names can be opened, without creating it.
/// `Ok(false)` means it does not exist yet, which is fine before the first start.
pub async fn probe(url: &StoreUrl) -> Result<bool, StoreError> {
    match url {
        StoreUrl::Sqlite(loc) => SqliteStore::probe(loc).await,
        StoreUrl::Postgres(u) => PostgresStore::probe(u).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_pick_their_backend() {
        assert_eq!(
            "sqlite://data/articles.db".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite(SqliteLocation::File(
                "data/articles.db".into()
            )))
        );
        assert_eq!(
            "sqlite::memory:".parse::<StoreUrl>(),
            Ok(StoreUrl::Sqlite(SqliteLocation::Memory))
        );
        assert!(matches!(
            "postgres://u:secret@db/news".parse::<StoreUrl>(),
            Ok(StoreUrl::Postgres(_))
        ));
        let err = "mysql://u:secret@db/news".parse::<StoreUrl>().unwrap_err();
        assert!(err.contains("neither sqlite"), "{err}");
        assert!(!err.contains("secret"), "password leaked: {err}");
    }

    #[test]
    fn postgres_password_never_shows() {
        let url: StoreUrl = "postgres://u:secret@db/news".parse().expect("valid");
        assert!(!format!("{url:?}").contains("secret"));
        assert!(!url.to_string().contains("secret"));
    }
}
