//! Publishing: the set of documents being served, and the output folder.
//!
//! This module owns what readers get. A published document carries its bytes
//! in every encoding worth sending (identity, gzip, brotli), each with its own
//! strong ETag, made once and never per request: identity when the document is
//! published, the compressed variants just after, in the background
//! (`compress`). Large bodies live in an unlinked file, not on the heap
//! (`body`). The whole set lives behind an `ArcSwap`: a request takes a
//! snapshot without locking, and a new set replaces the old one in a single
//! swap, so a reader never sees RSS from one build and Atom from another. The
//! output folder follows behind (`writer`). It never builds documents or
//! queries the store; it is handed finished ones.

mod body;
mod compress;
mod output;
mod streamed;
mod variant;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

pub use body::{Body, BodyStore, Region, SENDFILE_MIN_BYTES, StoreUsage};
pub use compress::{Compressor, Done};
pub use output::{
    Loaded, MANIFEST, PublishError, TempCleanup, Wanted, document_path, load, prepare, save,
    write_atomically, write_documents,
};
pub use streamed::StreamedFiles;
pub use variant::{COMPRESS_MIN_BYTES, Encoding, Representation, Variant};
pub use writer::{OutputWriter, Report};

use crate::config::{FeedName, Format};

/// One feed as served: its documents by format.
pub type PublishedFeed = BTreeMap<Format, Arc<Representation>>;

/// Everything served at one moment. Replaced whole, never edited in place
/// (a clone shares every document): a new set is a clone, edited through the
/// methods below, which keep a feed's name in at most one of `feeds`,
/// `pending` and `gone`, then published.
#[derive(Debug, Default, Clone)]
pub struct PublishedSet {
    /// The feeds served, by name: each with a document for every format it is
    /// configured with (never some formats only).
    feeds: BTreeMap<FeedName, PublishedFeed>,
    /// Each served feed's HTML page for people (`/feeds/{name}`), once
    /// built from the store (the output folder does not keep pages).
    pages: BTreeMap<FeedName, Arc<Representation>>,
    /// The HTML index at `/`.
    index: Option<Arc<Representation>>,
    /// The OPML subscription list at `/feeds.opml`.
    opml: Option<Arc<Representation>>,
    /// When this set was published (for `/healthz`, never inside a document).
    published_at: Option<DateTime<Utc>>,
    /// Feeds removed from the configuration while running: `410 Gone`, so
    /// readers unsubscribe instead of retrying a sudden 404.
    gone: BTreeSet<FeedName>,
    /// Configured feeds with nothing to serve yet (the store has not been
    /// reached since start-up): `503` with `Retry-After`.
    pending: BTreeSet<FeedName>,
}

impl PublishedSet {
    /// What start-up serves: `feeds` read back from the output folder, and a
    /// `503` for every other name in `configured` until its first build.
    pub fn starting(
        feeds: BTreeMap<FeedName, PublishedFeed>,
        configured: impl IntoIterator<Item = FeedName>,
    ) -> Self {
        let pending = configured
            .into_iter()
            .filter(|name| !feeds.contains_key(name))
            .collect();
        Self {
            feeds,
            pending,
            ..Self::default()
        }
    }

    /// The feeds served, by name.
    pub fn feeds(&self) -> &BTreeMap<FeedName, PublishedFeed> {
        &self.feeds
    }

    /// The documents `feed` serves, if it is served.
    pub fn feed(&self, feed: &str) -> Option<&PublishedFeed> {
        self.feeds.get(feed)
    }

    /// `feed`'s page for people, once built.
    pub fn page(&self, feed: &str) -> Option<&Arc<Representation>> {
        self.pages.get(feed)
    }

    /// Serves `page` as `name`'s page for people; `false` (and nothing
    /// changes) when `name` is not a served feed.
    pub fn put_page(&mut self, name: &FeedName, page: Arc<Representation>) -> bool {
        if !self.feeds.contains_key(name) {
            return false;
        }
        self.pages.insert(name.clone(), page);
        true
    }

    /// The HTML index page, once built.
    pub fn index(&self) -> Option<&Arc<Representation>> {
        self.index.as_ref()
    }

    /// The OPML subscription list, once built.
    pub fn opml(&self) -> Option<&Arc<Representation>> {
        self.opml.as_ref()
    }

    /// When this set was published, if it was stamped.
    pub fn published_at(&self) -> Option<DateTime<Utc>> {
        self.published_at
    }

    /// Whether `feed` was removed from the configuration while running.
    pub fn is_gone(&self, feed: &str) -> bool {
        self.gone.contains(feed)
    }

    /// Configured feeds with nothing to serve yet.
    pub fn pending(&self) -> &BTreeSet<FeedName> {
        &self.pending
    }

    /// The document `feed` serves in `format`, if the feed is served and has that
    /// format.
    pub fn document(&self, feed: &str, format: Format) -> Option<&Arc<Representation>> {
        self.feeds.get(feed).and_then(|f| f.get(&format))
    }

    /// Serves `feed` as `name`, every format at once. A feed served is no
    /// longer pending, nor gone.
    pub fn put_feed(&mut self, name: FeedName, feed: PublishedFeed) {
        self.pending.remove(&name);
        self.gone.remove(&name);
        self.feeds.insert(name, feed);
    }

    /// `name` was removed from the configuration: its documents go and its
    /// URLs answer `410 Gone`.
    pub fn retire(&mut self, name: &FeedName) {
        self.feeds.remove(name);
        self.pages.remove(name);
        self.pending.remove(name);
        self.gone.insert(name.clone());
    }

    /// `name` was added to the configuration: no longer gone, and `503` until
    /// its first build is served.
    pub fn admit(&mut self, name: &FeedName) {
        self.gone.remove(name);
        if !self.feeds.contains_key(name) {
            self.pending.insert(name.clone());
        }
    }

    /// Replaces the index page and the OPML list (they change together, with
    /// the feed list).
    pub fn set_site(&mut self, index: Representation, opml: Representation) {
        self.index = Some(Arc::new(index));
        self.opml = Some(Arc::new(opml));
    }

    /// Serves `rep` as `feed`'s document in `format`, keeping its other
    /// formats; `false` (and nothing changes) when `feed` is not served.
    pub fn replace_document(
        &mut self,
        feed: &str,
        format: Format,
        rep: Arc<Representation>,
    ) -> bool {
        match self.feeds.get_mut(feed) {
            Some(docs) => {
                docs.insert(format, rep);
                true
            }
            None => false,
        }
    }

    /// Records when this set was published, for `/healthz`.
    pub fn stamp(&mut self, at: DateTime<Utc>) {
        self.published_at = Some(at);
    }
}

/// The current [`PublishedSet`], readable from any number of requests at once.
#[derive(Debug)]
pub struct Publisher {
    current: ArcSwap<PublishedSet>,
    /// Bumped on every publish, for whoever follows changes (the WebSub
    /// deliverer) without the publisher knowing who.
    published: tokio::sync::watch::Sender<u64>,
}

impl Default for Publisher {
    fn default() -> Self {
        Self::new(PublishedSet::default())
    }
}

impl Publisher {
    /// A publisher serving `set` until the first [`Publisher::publish`].
    pub fn new(set: PublishedSet) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
            published: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever a new set is published; read it with [`Publisher::snapshot`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// A consistent snapshot; cheap enough to take per request.
    pub fn snapshot(&self) -> Arc<PublishedSet> {
        self.current.load_full()
    }

    /// Replaces everything served, atomically.
    pub fn publish(&self, set: PublishedSet) {
        self.publish_arc(Arc::new(set));
    }

    /// [`Publisher::publish`] for a set the caller also keeps.
    pub fn publish_arc(&self, set: Arc<PublishedSet>) {
        self.current.store(set);
        self.published.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// What publishing uses besides the set itself: where large bodies go, who
/// makes the compressed variants, who writes the output folder.
#[derive(Debug)]
pub struct Pipeline {
    /// Where bodies of at least `SENDFILE_MIN_BYTES` are kept; `None` keeps every
    /// body on the heap.
    pub store: Option<Arc<BodyStore>>,
    /// Makes the gzip and Brotli variants.
    pub compressor: Compressor,
    /// Saves documents into the output folder.
    pub writer: OutputWriter,
}

impl Pipeline {
    /// The running service's pipeline: the body store in `dir` (on the heap
    /// if it cannot be made there), a compressor per core, and a writer
    /// task that saves what `publisher` serves. Call inside a runtime.
    pub fn start(dir: &std::path::Path, publisher: Arc<Publisher>, report: Report) -> Self {
        let store = match BodyStore::create(dir) {
            Ok(store) => Some(store),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e,
                    "cannot make the body store; keeping document bodies in memory");
                None
            }
        };
        let writer = OutputWriter::start(publisher, report);
        let ready = writer.clone();
        let compressor = Compressor::per_core(
            store.clone(),
            Box::new(move |feed: &FeedName| ready.variants_ready(feed)),
        );
        Self {
            store,
            compressor,
            writer,
        }
    }

    /// Queues the compressed variants of every document of `feed`.
    pub fn compress(&self, feed: &FeedName, docs: &PublishedFeed) {
        for rep in docs.values() {
            self.compressor.submit(Some(feed.clone()), rep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(set: &PublishedSet) -> [Vec<&str>; 3] {
        [
            set.feeds.keys().map(FeedName::as_str).collect(),
            set.pending.iter().map(FeedName::as_str).collect(),
            set.gone.iter().map(FeedName::as_str).collect(),
        ]
    }

    #[test]
    fn a_feed_is_served_pending_or_gone_never_two_at_once() {
        let name = |s: &str| s.parse::<FeedName>().expect("feed name");
        let (world, sport) = (name("world"), name("sport"));
        let loaded = BTreeMap::from([(world.clone(), PublishedFeed::new())]);
        let mut set = PublishedSet::starting(loaded, [world.clone(), sport.clone()]);
        assert_eq!(names(&set), [vec!["world"], vec!["sport"], vec![]]);

        set.retire(&world);
        assert_eq!(names(&set), [vec![], vec!["sport"], vec!["world"]]);
        set.admit(&world);
        assert_eq!(names(&set), [vec![], vec!["sport", "world"], vec![]]);
        set.put_feed(world.clone(), PublishedFeed::new());
        assert_eq!(names(&set), [vec!["world"], vec!["sport"], vec![]]);
        set.admit(&world);
        assert_eq!(
            names(&set),
            [vec!["world"], vec!["sport"], vec![]],
            "a feed already served is not pending again"
        );
        set.retire(&sport);
        set.put_feed(sport, PublishedFeed::new());
        assert_eq!(names(&set), [vec!["sport", "world"], vec![], vec![]]);
    }
}
