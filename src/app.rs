//! Wiring for the commands: start-up order, not behaviour.
//!
//! This module opens the configured store (seeding an empty one), asks the
//! builder for each feed's documents, hands them to `publish`, and starts the
//! HTTP server with a bound listener and a shutdown signal — so tests run the
//! real service on port 0 and `main.rs` stays a thin CLI.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tracing::info;

use crate::builder::{self, BuildError, Document, FeedMeta};
use crate::config::{Config, FeedName, FeedSpec};
use crate::import::{ImportError, seed_if_empty};
use crate::publish::{self, PublishedSet, Publisher, Representation};
use crate::server::{self, ServerSettings};
use crate::store::{self, ArticleStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The store could not be opened; `at` is where its URL is configured.
    #[error("{at}: {source}")]
    Store {
        at: crate::config::Location,
        #[source]
        source: StoreError,
    },
    #[error("feed {feed}: reading its articles: {source}")]
    Query {
        feed: FeedName,
        #[source]
        source: StoreError,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Publish(#[from] publish::PublishError),
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("seeding the store from {dir}: {source}")]
    Seed {
        dir: String,
        #[source]
        source: ImportError,
    },
}

/// Whether opening the store for a command may seed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seeding {
    /// Service start (`serve`, `build`): an empty store gets `[store].seed_dir`.
    OnFirstStart,
    /// `import`: the admin is loading their own articles; add nothing else.
    Never,
}

/// Opens the configured store and, when `seeding` allows and the store is
/// empty, seeds it from `[store].seed_dir`.
pub async fn open_store(
    config: &Config,
    seeding: Seeding,
) -> Result<Box<dyn ArticleStore>, AppError> {
    let store = store::open(&config.store.url)
        .await
        .map_err(|source| AppError::Store {
            at: config.store.url_at.clone(),
            source,
        })?;
    if let (Seeding::OnFirstStart, Some(dir)) = (seeding, &config.store.seed_dir) {
        let seeded = seed_if_empty(store.as_ref(), dir, config.site.timezone)
            .await
            .map_err(|source| AppError::Seed {
                dir: dir.display().to_string(),
                source,
            })?;
        if let Some(summary) = seeded {
            info!(dir = %dir.display(), %summary, "seeded the empty store");
        }
    }
    Ok(store)
}

/// Queries one feed's articles and builds its documents (off the async threads:
/// a 10 000-item feed is milliseconds of CPU).
pub async fn build_feed(
    config: &Config,
    spec: &FeedSpec,
    store: &dyn ArticleStore,
) -> Result<(usize, Vec<Document>), AppError> {
    let stored = store
        .newest(&spec.filter, spec.limit)
        .await
        .map_err(|source| AppError::Query {
            feed: spec.name.clone(),
            source,
        })?;
    let articles: Vec<_> = stored.into_iter().map(|s| s.article).collect();
    let items = articles.len();
    let meta = FeedMeta::new(config, spec);
    let formats = spec.formats.clone();
    let docs =
        tokio::task::spawn_blocking(move || builder::build(&meta, &articles, &formats)).await??;
    Ok((items, docs))
}

/// What `build` wrote for one feed.
#[derive(Debug, Clone)]
pub struct BuiltFeed {
    pub name: FeedName,
    pub items: usize,
    pub files: Vec<PathBuf>,
}

/// Builds every configured feed once from the store and writes its documents
/// into `out` (`feedsmith build`).
pub async fn build_all(
    config: &Config,
    store: &dyn ArticleStore,
    out: &Path,
) -> Result<Vec<BuiltFeed>, AppError> {
    let mut built = Vec::with_capacity(config.feeds.len());
    for spec in config.feeds.values() {
        let (items, docs) = build_feed(config, spec, store).await?;
        let files = publish::write_documents(out, &spec.name, &docs).await?;
        info!(feed = %spec.name, items, files = files.len(), "built feed");
        built.push(BuiltFeed {
            name: spec.name.clone(),
            items,
            files,
        });
    }
    Ok(built)
}

/// `Cache-Control` for a feed: readers use `max-age` as their poll interval, so
/// it follows the feed's refresh schedule unless `server.cache_max_age` is set.
pub fn feed_cache_control(config: &Config, spec: &FeedSpec) -> String {
    let max_age = config.server.cache_max_age.map_or_else(
        || {
            spec.refresh
                .typical_interval(&config.site.timezone)
                .map_or(300, |d| d.num_seconds().max(1))
        },
        |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
    );
    format!(
        "public, max-age={max_age}, stale-if-error={}",
        config.server.stale_if_error.as_secs()
    )
}

/// Builds every feed, the index and the OPML list into a set ready to serve,
/// writing the feed documents to the output folder on the way.
pub async fn publish_all(
    config: &Config,
    store: &dyn ArticleStore,
    now: DateTime<Utc>,
) -> Result<PublishedSet, AppError> {
    let mut set = PublishedSet {
        published_at: Some(now),
        ..PublishedSet::default()
    };
    for spec in config.feeds.values() {
        let (items, docs) = build_feed(config, spec, store).await?;
        publish::write_documents(&config.output_dir, &spec.name, &docs).await?;
        let cache_control = feed_cache_control(config, spec);
        let dir = config.output_dir.clone();
        let feed = spec.name.clone();
        let documents = tokio::task::spawn_blocking(move || {
            docs.iter()
                .map(|d| {
                    let mut rep = publish::represent(d, cache_control.clone());
                    if let Err(e) = rep.attach_files(&dir) {
                        // Served by copying instead: slower, still correct.
                        tracing::warn!(%feed, dir = %dir.display(), error = %e, "no file for zero-copy sending");
                    }
                    (d.format, Arc::new(rep))
                })
                .collect()
        })
        .await?;
        info!(feed = %spec.name, items, "published feed");
        set.feeds.insert(spec.name.clone(), documents);
    }
    // The index and OPML change only with the feed list: a short max-age is plenty.
    let site_cache = format!(
        "public, max-age=300, stale-if-error={}",
        config.server.stale_if_error.as_secs()
    );
    let (index, opml) = (
        builder::site::index_html(config),
        builder::site::opml(config),
    );
    let epoch = builder::EMPTY_FEED_UPDATED;
    let (index, opml) = tokio::task::spawn_blocking(move || {
        (
            Representation::new(
                Bytes::from(index),
                "text/html; charset=utf-8",
                epoch,
                site_cache.clone(),
            ),
            Representation::new(
                Bytes::from(opml),
                "text/x-opml; charset=utf-8",
                epoch,
                site_cache,
            ),
        )
    })
    .await?;
    set.index = Some(Arc::new(index));
    set.opml = Some(Arc::new(opml));
    Ok(set)
}

/// The server's limits from the configuration.
pub fn server_settings(config: &Config) -> ServerSettings {
    ServerSettings {
        header_read_timeout: config.server.header_timeout,
        max_connections: config.server.max_connections,
        shutdown_grace: config.server.shutdown_grace,
        ..ServerSettings::default()
    }
}

/// Runs the service on an already-bound listener until `shutdown` completes:
/// opens (and seeds) the store, builds and publishes every feed, then serves.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    let store = open_store(&config, Seeding::OnFirstStart).await?;
    let set = publish_all(&config, store.as_ref(), Utc::now()).await?;
    let publisher = Arc::new(Publisher::new(set));
    serve(&config, publisher, listener, shutdown).await;
    Ok(())
}

/// Serves whatever `publisher` holds — which its owner may replace at any
/// time — until `shutdown` completes.
pub async fn serve(
    config: &Config,
    publisher: Arc<Publisher>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, feeds = publisher.snapshot().feeds.len(), "serving");
    }
    let health = health_reporter(publisher.clone());
    server::serve(
        listener,
        publisher,
        health,
        server_settings(config),
        shutdown,
    )
    .await;
}

/// `/healthz`: what a load balancer or an admin needs to know. (The scheduler
/// issue adds store polls and degraded states.)
fn health_reporter(publisher: Arc<Publisher>) -> Arc<dyn Fn() -> Bytes + Send + Sync> {
    Arc::new(move || {
        let set = publisher.snapshot();
        let published_at = set.published_at.map(|t| t.to_rfc3339());
        let body = serde_json::json!({
            "status": "ok",
            "config_generation": 1,
            "feeds": set.feeds.len(),
            "published_at": published_at,
            "last_store_poll": published_at,
            "errors": [],
        });
        Bytes::from(body.to_string())
    })
}
