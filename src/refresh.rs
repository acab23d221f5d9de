//! One feed's refresh, from the store to a representation ready to serve.
//!
//! This module owns the pipeline every path that publishes shares: query a
//! feed's articles, build its documents and its page for people (the CPU
//! part on a blocking thread),
//! turn them into served representations that keep what an unchanged rebuild
//! already has, and make the site's index and OPML list. `feedsmith build`,
//! start-up ([`initial_set`]) and the scheduler all go through it, so they
//! write the same bytes and ETags. It decides nothing about *when* or *which*
//! feeds refresh (the scheduler does), never swaps what is served (the
//! caller hands its result to the publisher) and never reads the clock.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tracing::{info, warn};

use crate::article::ArticleId;
use crate::builder::{self, BuildError, Document, FeedMeta};
use crate::config::{Config, FeedSpec};
use crate::publish::{self, BodyStore, Pipeline, PublishedFeed, PublishedSet, Representation};
use crate::store::{ArticleStore, StoreError};

/// Why one feed could not be rebuilt. The scheduler keeps the feed's last
/// published documents and reports the fault on `/healthz`.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The store could not list the feed's articles (down, or a row failed to decode).
    #[error("reading its articles: {0}")]
    Query(#[source] StoreError),
    /// The serialiser failed on one of the feed's formats.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The blocking build task panicked or was cancelled.
    #[error("build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A feed's documents fresh from the builder, with the articles they list.
/// (Not `app::BuiltFeed`, which is what `feedsmith build` wrote.)
#[derive(Debug)]
pub struct RenderedFeed {
    /// One document per configured format, in the feed's format order.
    pub docs: Vec<Document>,
    /// The articles the documents list, newest first.
    pub listed: Vec<ArticleId>,
    /// The feed's page for people, from the same articles.
    pub page: builder::page::Page,
}

/// Queries one feed's articles and builds its documents (the CPU part off the
/// async threads: a 10 000-item feed is milliseconds of work). `feedsmith
/// build` runs the same query and the same builder (`app::build_all`, writing
/// each document while the next renders), so both write the same bytes; a
/// test compares them.
pub async fn build_feed(
    config: &Config,
    spec: &FeedSpec,
    store: &dyn ArticleStore,
) -> Result<RenderedFeed, RefreshError> {
    let stored = store
        .newest(&spec.filter, spec.limit)
        .await
        .map_err(RefreshError::Query)?;
    let listed = stored.iter().map(|s| s.article.id.clone()).collect();
    let articles: Vec<_> = stored.into_iter().map(|s| s.article).collect();
    let candidates = withdrawn_candidates(config, spec, store).await?;
    let tombstones = builder::tombstones_to_show(
        &builder::Window::of(&articles),
        spec.limit,
        candidates,
        config.tombstones,
    );
    let mut meta = FeedMeta::new(config, spec);
    if let Some(page_size) = config.archive_page_size(spec) {
        let window = builder::Window::of(&articles);
        let index = crate::archive::seal(store, spec, page_size, &window)
            .await
            .map_err(RefreshError::Query)?;
        meta.paging = index.subscription_paging();
    }
    let formats = spec.formats.clone();
    let (docs, page) = tokio::task::spawn_blocking(move || {
        let docs = builder::build_with(&meta, &articles, &tombstones, &formats)?;
        let page = builder::page::build(&meta, &articles, &formats);
        Ok::<_, BuildError>((docs, page))
    })
    .await??;
    Ok(RenderedFeed { docs, listed, page })
}

/// The `Content-Type` of a feed's page.
pub const PAGE_CONTENT_TYPE: &str = "text/html; charset=utf-8";

/// Turns a feed's built page into a served one, compressed at once (a page
/// lists at most [`builder::page::PAGE_ITEMS`] stories); keeps `previous` when
/// its bytes and caching policy are the same, as [`represent_feed`] does.
/// Blocking.
pub fn represent_page(
    config: &Config,
    spec: &FeedSpec,
    page: &builder::page::Page,
    previous: Option<&Arc<Representation>>,
    store: Option<&Arc<BodyStore>>,
) -> Arc<Representation> {
    let cache_control = feed_cache_control(config, spec);
    let etag = builder::ETag::of(&page.body);
    match previous.filter(|rep| {
        rep.identity.etag == etag
            && rep.cache_control == cache_control
            && rep.last_modified == page.updated
    }) {
        Some(rep) => rep.clone(),
        None => Arc::new(Representation::compressed_now(
            Bytes::from(page.body.clone()),
            PAGE_CONTENT_TYPE,
            page.updated,
            cache_control,
            store,
        )),
    }
}

/// The withdrawn articles that may be `spec`'s tombstones (none asked for
/// when tombstones are off): at most as many as the feed lists, since only
/// those within its window count.
pub async fn withdrawn_candidates(
    config: &Config,
    spec: &FeedSpec,
    store: &dyn ArticleStore,
) -> Result<Vec<builder::Tombstone>, RefreshError> {
    if config.tombstones.is_zero() {
        return Ok(Vec::new());
    }
    let withdrawn = store
        .withdrawn(&spec.filter, spec.limit)
        .await
        .map_err(RefreshError::Query)?;
    Ok(withdrawn.into_iter().filter_map(tombstone).collect())
}

/// The tombstone of a stored article the store saw withdrawn after it was
/// published; `None` for any other.
pub fn tombstone(stored: crate::store::StoredArticle) -> Option<builder::Tombstone> {
    Some(builder::Tombstone {
        withdrawn_at: stored.withdrawn_at?,
        published_at: stored.article.published_at,
        id: stored.article.id,
    })
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

/// Turns built documents into served ones. A document whose bytes and caching
/// policy equal what `previous` serves keeps its existing representation, so an
/// unchanged rebuild costs nothing and keeps its variants. New ones are
/// identity-only until the compressor makes their variants. Blocking (large
/// bodies are written to `store`): call from `spawn_blocking`.
pub fn represent_feed(
    config: &Config,
    spec: &FeedSpec,
    docs: &[Document],
    previous: Option<&PublishedFeed>,
    store: Option<&Arc<BodyStore>>,
) -> PublishedFeed {
    let cache_control = feed_cache_control(config, spec);
    docs.iter()
        .map(|d| {
            let reused = previous.and_then(|p| p.get(&d.format)).filter(|rep| {
                rep.identity.etag == d.etag
                    && rep.cache_control == cache_control
                    && rep.last_modified == d.last_modified
            });
            let rep = match reused {
                Some(rep) => rep.clone(),
                None => Arc::new(Representation::from_document(
                    d,
                    cache_control.clone(),
                    store,
                )),
            };
            (d.format, rep)
        })
        .collect()
}

/// The index page and the OPML list for `config`, compressed at once (they
/// change only with the feed list). Blocking.
pub fn site_documents(
    config: &Config,
    store: Option<&Arc<BodyStore>>,
) -> (Representation, Representation) {
    // They change only with the feed list: a short max-age is plenty.
    let cache = format!(
        "public, max-age=300, stale-if-error={}",
        config.server.stale_if_error.as_secs()
    );
    let epoch = builder::EMPTY_FEED_UPDATED;
    (
        Representation::compressed_now(
            Bytes::from(builder::site::index_html(config)),
            "text/html; charset=utf-8",
            epoch,
            cache.clone(),
            store,
        ),
        Representation::compressed_now(
            Bytes::from(builder::site::opml(config)),
            "text/x-opml; charset=utf-8",
            epoch,
            cache,
            store,
        ),
    )
}

/// What the service serves before it has reached the store: the documents an
/// earlier run left in the output folder (same bytes, same ETags), and `503`
/// for configured feeds that have none. A variant the folder lacks is queued
/// for `pipeline`'s compressor.
pub async fn initial_set(config: &Arc<Config>, pipeline: &Pipeline) -> PublishedSet {
    let dir = config.output_dir.display();
    match publish::prepare(&config.output_dir).await {
        Ok(c) if c.failed > 0 => {
            warn!(removed = c.removed, failed = c.failed, in_use = c.in_use, %dir,
                "could not remove every temporary file a killed run left in the output folder");
        }
        Ok(c) if c.removed > 0 || c.in_use > 0 => {
            // `in_use`: named after a running process (a `feedsmith build`), kept.
            info!(removed = c.removed, in_use = c.in_use, %dir,
                "removed stale temporary files from the output folder");
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "cannot prepare the output folder"),
    }
    let wanted = config
        .feeds
        .values()
        .map(|spec| publish::Wanted {
            name: spec.name.clone(),
            formats: spec.formats.clone(),
            cache_control: feed_cache_control(config, spec),
        })
        .collect();
    let loaded = publish::load(&config.output_dir, wanted, pipeline.store.clone()).await;
    for why in &loaded.skipped {
        warn!(reason = %why, "not serving a document from the output folder");
    }
    if !loaded.feeds.is_empty() {
        info!(
            feeds = loaded.feeds.len(),
            dir = %config.output_dir.display(),
            "serving the previously published feeds until the store is reached"
        );
    }
    for (name, feed) in &loaded.feeds {
        pipeline.compress(name, feed);
    }
    let site_config = config.clone();
    let store = pipeline.store.clone();
    let (index, opml) =
        tokio::task::spawn_blocking(move || site_documents(&site_config, store.as_ref()))
            .await
            .unwrap_or_else(|_| {
                let empty = || {
                    Representation::new(
                        Bytes::new(),
                        "text/plain; charset=utf-8",
                        builder::EMPTY_FEED_UPDATED,
                        "no-store".into(),
                        None,
                    )
                };
                (empty(), empty())
            });
    let mut set = PublishedSet::starting(loaded.feeds, config.feeds.keys().cloned());
    set.set_site(index, opml);
    set
}

/// One feed's rebuild for the scheduler: [`build_feed`], then
/// [`represent_feed`] against what is served now. It owns what it needs, so it
/// can run as a task of its own.
pub(crate) struct Rebuild {
    pub(crate) config: Arc<Config>,
    pub(crate) spec: FeedSpec,
    pub(crate) store: Arc<dyn ArticleStore>,
    pub(crate) previous: Option<PublishedFeed>,
    pub(crate) previous_page: Option<Arc<Representation>>,
    pub(crate) bodies: Option<Arc<BodyStore>>,
}

/// What a [`Rebuild`] made: the feed's documents, its page, and the
/// articles they list.
pub(crate) struct Rebuilt {
    pub(crate) feed: PublishedFeed,
    pub(crate) page: Arc<Representation>,
    pub(crate) listed: HashSet<ArticleId>,
}

impl Rebuild {
    pub(crate) async fn run(self) -> Result<Rebuilt, RefreshError> {
        let built = build_feed(&self.config, &self.spec, self.store.as_ref()).await?;
        let Rebuild {
            config,
            spec,
            previous,
            previous_page,
            bodies,
            ..
        } = self;
        let (feed, page) = tokio::task::spawn_blocking(move || {
            let feed = represent_feed(
                &config,
                &spec,
                &built.docs,
                previous.as_ref(),
                bodies.as_ref(),
            );
            let page = represent_page(
                &config,
                &spec,
                &built.page,
                previous_page.as_ref(),
                bodies.as_ref(),
            );
            (feed, page)
        })
        .await?;
        Ok(Rebuilt {
            feed,
            page,
            listed: built.listed.into_iter().collect(),
        })
    }
}
