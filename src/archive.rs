//! RFC 5005 archived feeds: a feed's articles that have left its newest-N
//! window, in fixed-size pages that keep their contents as stories arrive.
//!
//! A page's bounds are feed-order keys kept in the store
//! (`ArticleStore::archive_pages`): page N holds the feed's articles newer
//! than page N−1's newest key and up to its own, so a story published now
//! never shifts an old page, and an edit or withdrawal inside a page changes
//! that page alone. Pages are sealed when a feed is rebuilt ([`seal`]): once
//! at least a page's worth of articles has left the window beyond the last
//! sealed page, the page ends at that many articles. What has left the
//! window but fills no page yet is the open page, numbered after the sealed
//! ones; it exists (empty, if need be) as soon as the feed has an archive,
//! so a sealed page's `next-archive` link never changes. The subscription
//! document's `prev-archive` points at the open page.
//!
//! Pages are built from the store when asked for ([`ArchivePages`], the
//! server's [`ArchiveEndpoint`]) and kept in a small cache keyed by the
//! store's revision, so an old page of a feed of a million articles costs an
//! index walk once and nothing while the store does not change, and no
//! feed's archive is held in memory. This module never writes an article
//! and never decides which feeds exist (the configuration does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::watch;

use crate::article::{ArticleFilter, Status};
use crate::builder::{self, FeedMeta, Paging, Tombstone, Window};
use crate::config::{Config, FeedSpec, Format};
use crate::publish::Representation;
use crate::server::{ArchiveAnswer, ArchiveEndpoint};
use crate::store::{ArchivePage, ArticleKey, ArticleStore, Revision, StoreError, Walk};

/// `Cache-Control` of a sealed page: its contents only change if a story in
/// it is edited or withdrawn, and then its ETag tells a revalidating reader.
pub const SEALED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The most articles one page is read with: a page grows past its size only
/// when stories are backdated into it.
const PAGE_READ_LIMIT: u32 = 100_000;

/// The scope a feed's sealed pages belong to: its filter and page size.
/// Pages sealed under another scope (the admin changed either) are dropped
/// and the archive starts afresh.
pub fn scope(filter: &ArticleFilter, page_size: u32) -> String {
    format!(
        "v1 size={page_size} sections={} tags={} authors={}",
        filter.sections.join(","),
        filter.tags.join(","),
        filter.authors.join(",")
    )
}

/// The archive of one feed as the store holds it now: how many pages are
/// sealed, and the bounds of those a request needs (never all of them: a
/// feed of a million articles has ten thousand).
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveIndex {
    /// How many pages are sealed (numbered 1 to this).
    pub sealed: u32,
    /// Some sealed pages' bounds, oldest first.
    pub bounds: Vec<ArchivePage>,
    /// The oldest article the feed lists: the open page ends just before it.
    /// `None` while the feed lists fewer than its limit (nothing has left it).
    pub window_oldest: Option<ArticleKey>,
}

impl ArchiveIndex {
    /// The open page's number: after the sealed ones.
    pub fn open_page(&self) -> u32 {
        self.sealed.saturating_add(1)
    }

    /// Whether the feed has an archive at all: something has left its
    /// window, or pages were sealed before.
    pub fn exists(&self) -> bool {
        self.sealed > 0 || self.window_oldest.is_some()
    }

    /// The newest key of sealed page `page`, if its bounds were read.
    fn bound(&self, page: u32) -> Option<&ArticleKey> {
        self.bounds
            .iter()
            .find(|p| p.page == page)
            .map(|p| &p.newest)
    }

    /// The subscription document's place: `prev-archive` is the open page.
    pub fn subscription_paging(&self) -> Paging {
        if self.exists() {
            Paging::Subscription {
                newest_page: self.open_page(),
            }
        } else {
            Paging::None
        }
    }

    /// The walk that reads page `page`: from after the page before's newest
    /// key, down to its own (inclusive for a sealed page; for the open one,
    /// to just before the window); `None` for a page that does not exist.
    fn page_walk(&self, page: u32) -> Option<Walk> {
        if !self.exists() || page == 0 || page > self.open_page() {
            return None;
        }
        let after = match page - 1 {
            0 => None,
            before => Some(self.bound(before)?.clone()),
        };
        let sealed = (page <= self.sealed).then(|| self.bound(page)).flatten();
        let before = match (sealed, &self.window_oldest) {
            (Some(newest), _) => (newest.clone(), true),
            (None, Some(oldest)) => (oldest.clone(), false),
            // The feed lists everything it has (stories were withdrawn
            // since pages were sealed): the open page is empty, not the window.
            (None, None) => (after.clone()?, false),
        };
        Some(Walk {
            after,
            before: Some(before),
            ..Walk::newest(Status::Published, PAGE_READ_LIMIT)
        })
    }
}

/// Reads `spec`'s archive and seals the pages that have filled since the
/// last rebuild. `window` is what the feed lists now.
pub async fn seal(
    store: &dyn ArticleStore,
    spec: &FeedSpec,
    page_size: u32,
    window: &Window,
) -> Result<ArchiveIndex, StoreError> {
    let scope = scope(&spec.filter, page_size);
    let feed = spec.name.as_str();
    let mut sealed = store.archive_page_count(feed, &scope).await?;
    let last = store.archive_pages(feed, &scope, sealed..=sealed).await?;
    let full = window.count >= u64::from(spec.limit);
    let window_oldest = window
        .oldest
        .as_ref()
        .filter(|_| full)
        .map(|(published_at, id)| ArticleKey {
            published_at: *published_at,
            id: id.clone(),
        });
    if let Some(oldest) = &window_oldest {
        let walk = Walk {
            after: last.last().map(|p| p.newest.clone()),
            before: Some((oldest.clone(), false)),
            keys_only: true,
            ..Walk::newest(Status::Published, u32::MAX)
        };
        let mut open = store.walk_keys(&spec.filter, &walk).await?;
        let size = page_size.max(1) as usize;
        if open.len() >= size {
            open.reverse();
            let first = sealed;
            let pages: Vec<ArchivePage> = open
                .chunks_exact(size)
                .zip(1u32..)
                .filter_map(|(chunk, n)| {
                    Some(ArchivePage {
                        page: first.checked_add(n)?,
                        newest: chunk.last()?.clone(),
                    })
                })
                .collect();
            sealed = store.seal_archive_pages(feed, &scope, &pages).await?;
        }
    }
    Ok(ArchiveIndex {
        sealed,
        bounds: Vec::new(),
        window_oldest,
    })
}

/// [`seal`], finding the window itself (keys only): for a build that
/// streams the feed's articles and needs its paging before the first.
pub async fn seal_current(
    store: &dyn ArticleStore,
    spec: &FeedSpec,
    page_size: u32,
) -> Result<ArchiveIndex, StoreError> {
    let keys = window_keys(store, spec).await?;
    let window = Window {
        count: keys.len() as u64,
        oldest: keys.last().map(|k| (k.published_at, k.id.clone())),
        newest_update: None,
    };
    seal(store, spec, page_size, &window).await
}

/// The keys of what `spec`'s feed lists now, newest first.
async fn window_keys(
    store: &dyn ArticleStore,
    spec: &FeedSpec,
) -> Result<Vec<ArticleKey>, StoreError> {
    let walk = Walk {
        keys_only: true,
        ..Walk::newest(Status::Published, spec.limit)
    };
    store.walk_keys(&spec.filter, &walk).await
}

/// Reads `spec`'s archive as it stands, with the bounds page `page` needs
/// (its own and the page before's), sealing nothing: a few index steps
/// whatever the size of the archive.
async fn read(
    store: &dyn ArticleStore,
    spec: &FeedSpec,
    page_size: u32,
    page: u32,
) -> Result<ArchiveIndex, StoreError> {
    let scope = scope(&spec.filter, page_size);
    let feed = spec.name.as_str();
    let sealed = store.archive_page_count(feed, &scope).await?;
    let bounds = store
        .archive_pages(feed, &scope, page.saturating_sub(1)..=page)
        .await?;
    let window = window_keys(store, spec).await?;
    let full = window.len() >= spec.limit as usize;
    Ok(ArchiveIndex {
        sealed,
        bounds,
        window_oldest: window.last().cloned().filter(|_| full),
    })
}

/// Builds page `page` of `spec`'s archive in `format`; `None` if there is
/// no such page.
pub async fn build_page(
    config: &Config,
    spec: &FeedSpec,
    store: &dyn ArticleStore,
    page: u32,
    format: Format,
) -> Result<Option<Representation>, StoreError> {
    let Some(page_size) = config.archive_page_size(spec) else {
        return Ok(None);
    };
    let index = read(store, spec, page_size, page).await?;
    let Some(walk) = index.page_walk(page) else {
        return Ok(None);
    };
    let articles: Vec<_> = store
        .walk(&spec.filter, &walk)
        .await?
        .into_iter()
        .map(|s| s.article)
        .collect();
    // Every story withdrawn from this page stays marked as deleted here:
    // the page is the record of what the feed once listed.
    let withdrawn = Walk {
        status: Status::Withdrawn,
        ..walk
    };
    let tombstones: Vec<Tombstone> = store
        .walk(&spec.filter, &withdrawn)
        .await?
        .into_iter()
        .filter_map(crate::refresh::tombstone)
        .collect();
    let meta = FeedMeta {
        paging: Paging::Archive {
            page,
            newest_page: index.open_page(),
        },
        ..FeedMeta::new(config, spec)
    };
    let sealed = page <= index.sealed;
    let cache_control = if sealed {
        SEALED_CACHE_CONTROL.to_owned()
    } else {
        crate::refresh::feed_cache_control(config, spec)
    };
    let doc = tokio::task::spawn_blocking(move || {
        builder::build_with(&meta, &articles, &tombstones, &[format])
    })
    .await;
    match doc {
        Ok(Ok(mut docs)) => Ok(docs.pop().map(|d| {
            Representation::new(d.body, d.content_type, d.last_modified, cache_control, None)
        })),
        // A page that cannot be built is as good as absent; the feed's own
        // build reports the same article's problem.
        Ok(Err(e)) => {
            tracing::warn!(feed = %spec.name, page, error = %e, "archive page not built");
            Ok(None)
        }
        Err(e) => {
            tracing::warn!(feed = %spec.name, page, error = %e, "archive page build failed");
            Ok(None)
        }
    }
}

/// How many bytes of built pages [`ArchivePages`] keeps.
const CACHE_BYTES: usize = 32 << 20;

/// The archive pages the server serves: built from the store the
/// scheduler opened, for the configuration it applies, and cached by the
/// store's revision (any write makes every cached page be built again on
/// its next request; an unchanged page has the same bytes and ETag, so
/// readers still get `304`).
pub struct ArchivePages {
    store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
    config: watch::Receiver<Arc<Config>>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    pages: HashMap<(String, u32, Format), Cached>,
    bytes: usize,
    tick: u64,
}

struct Cached {
    revision: Revision,
    rep: Arc<Representation>,
    used: u64,
}

impl ArchivePages {
    /// Pages of the feeds in `config`'s latest version, read from `store`
    /// once it is open.
    pub fn new(
        store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
        config: watch::Receiver<Arc<Config>>,
    ) -> Self {
        Self {
            store,
            config,
            cache: Mutex::new(Cache::default()),
        }
    }

    async fn answer(&self, feed: &str, page: u32, format: Format) -> ArchiveAnswer {
        let config = self.config.borrow().clone();
        let Some(spec) = config
            .feeds
            .iter()
            .find(|(name, _)| name.as_str() == feed)
            .map(|(_, spec)| spec)
        else {
            return ArchiveAnswer::NotFound;
        };
        if config.archive_page_size(spec).is_none() || !spec.formats.contains(&format) {
            return ArchiveAnswer::NotFound;
        }
        let Some(store) = self.store.borrow().clone() else {
            return ArchiveAnswer::Unavailable;
        };
        let revision = match store.revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(feed, page, error = %e, "archive page: store unreadable");
                return ArchiveAnswer::Unavailable;
            }
        };
        let key = (feed.to_owned(), page, format);
        if let Some(rep) = self.cached(&key, revision) {
            return ArchiveAnswer::Page(rep);
        }
        match build_page(&config, spec, store.as_ref(), page, format).await {
            Ok(Some(rep)) => {
                let rep = Arc::new(rep);
                self.keep(key, revision, rep.clone());
                ArchiveAnswer::Page(rep)
            }
            Ok(None) => ArchiveAnswer::NotFound,
            Err(e) => {
                tracing::warn!(feed, page, error = %e, "archive page: store unreadable");
                ArchiveAnswer::Unavailable
            }
        }
    }

    fn cached(
        &self,
        key: &(String, u32, Format),
        revision: Revision,
    ) -> Option<Arc<Representation>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.tick += 1;
        let tick = cache.tick;
        let hit = cache
            .pages
            .get_mut(key)
            .filter(|c| c.revision == revision)?;
        hit.used = tick;
        Some(hit.rep.clone())
    }

    fn keep(&self, key: (String, u32, Format), revision: Revision, rep: Arc<Representation>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.tick += 1;
        let size = rep.identity.body.len();
        let used = cache.tick;
        if let Some(old) = cache.pages.insert(
            key,
            Cached {
                revision,
                rep,
                used,
            },
        ) {
            cache.bytes -= old.rep.identity.body.len();
        }
        cache.bytes += size;
        // Least recently used first, until within budget (a page larger
        // than the whole budget is served but not kept).
        while cache.bytes > CACHE_BYTES {
            let Some(oldest) = cache
                .pages
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = cache.pages.remove(&oldest) {
                cache.bytes -= gone.rep.identity.body.len();
            }
        }
    }
}

impl ArchiveEndpoint for ArchivePages {
    fn page<'a>(
        &'a self,
        feed: &'a str,
        page: u32,
        format: Format,
    ) -> BoxFuture<'a, ArchiveAnswer> {
        Box::pin(self.answer(feed, page, format))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, hour: u32) -> ArticleKey {
        ArticleKey {
            published_at: format!("2026-01-01T{hour:02}:00:00Z")
                .parse()
                .expect("time"),
            id: id.parse().expect("id"),
        }
    }

    fn index(sealed: &[(&str, u32)], window_oldest: Option<ArticleKey>) -> ArchiveIndex {
        ArchiveIndex {
            sealed: sealed.len() as u32,
            bounds: sealed
                .iter()
                .zip(1..)
                .map(|((id, hour), page)| ArchivePage {
                    page,
                    newest: key(id, *hour),
                })
                .collect(),
            window_oldest,
        }
    }

    #[test]
    fn pages_run_between_their_bounds_and_the_open_page_to_the_window() {
        let i = index(&[("a", 1), ("b", 2)], Some(key("w", 9)));
        assert_eq!(i.open_page(), 3);
        assert_eq!(
            i.subscription_paging(),
            Paging::Subscription { newest_page: 3 }
        );
        let first = i.page_walk(1).expect("page 1");
        assert_eq!(
            (first.after, first.before),
            (None, Some((key("a", 1), true)))
        );
        let second = i.page_walk(2).expect("page 2");
        assert_eq!(
            (second.after, second.before),
            (Some(key("a", 1)), Some((key("b", 2), true)))
        );
        let open = i.page_walk(3).expect("the open page");
        assert_eq!(
            (open.after, open.before),
            (Some(key("b", 2)), Some((key("w", 9), false)))
        );
        assert!(i.page_walk(0).is_none() && i.page_walk(4).is_none());
    }

    #[test]
    fn a_feed_that_lists_everything_has_an_empty_open_page_or_no_archive() {
        let i = index(&[("a", 1)], None);
        let open = i.page_walk(2).expect("the open page");
        assert_eq!(
            (open.after, open.before),
            (Some(key("a", 1)), Some((key("a", 1), false))),
            "an empty range, not the window"
        );
        let none = index(&[], None);
        assert!(!none.exists());
        assert_eq!(none.subscription_paging(), Paging::None);
        assert!(none.page_walk(1).is_none());
        // Something has left the window, no page is complete: page 1 is open.
        let filling = index(&[], Some(key("w", 9)));
        assert_eq!(
            filling.subscription_paging(),
            Paging::Subscription { newest_page: 1 }
        );
        let open = filling.page_walk(1).expect("page 1");
        assert_eq!(
            (open.after, open.before),
            (None, Some((key("w", 9), false)))
        );
    }

    #[test]
    fn scope_changes_with_the_filter_and_the_page_size() {
        let filter = ArticleFilter::new(&["World".into()], &["UN".into()], &[]);
        assert_ne!(scope(&filter, 100), scope(&filter, 50));
        assert_ne!(scope(&filter, 100), scope(&ArticleFilter::default(), 100));
        assert_eq!(scope(&filter, 100), scope(&filter.clone(), 100));
    }
}
