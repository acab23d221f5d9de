//! Wiring for the commands: opening the configured store and seeding it.
//!
//! This module owns start-up order, not behaviour: it asks `store` to open the
//! configured backend and `import` to seed an empty one. The HTTP server and
//! the scheduler will be started from here too, so `main.rs` stays a thin CLI.

use std::path::{Path, PathBuf};

use tracing::info;

use crate::builder::{self, BuildError, FeedMeta};
use crate::config::{Config, FeedName};
use crate::import::{ImportError, seed_if_empty};
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
    Publish(#[from] crate::publish::PublishError),
    #[error("build task failed: {0}")]
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
        // Large feeds take milliseconds of CPU; keep them off the async threads.
        let docs = tokio::task::spawn_blocking(move || builder::build(&meta, &articles, &formats))
            .await??;
        let files = crate::publish::write_documents(out, &spec.name, &docs).await?;
        info!(feed = %spec.name, items, files = files.len(), "built feed");
        built.push(BuiltFeed {
            name: spec.name.clone(),
            items,
            files,
        });
    }
    Ok(built)
}
