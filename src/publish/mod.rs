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
pub use variant::{COMPRESS_MIN_BYTES, Encoding, Representation, Variant};
pub use writer::{OutputWriter, Report};

use crate::config::{FeedName, Format};

/// One feed as served: its documents by format.
pub type PublishedFeed = BTreeMap<Format, Arc<Representation>>;

/// Everything served at one moment. Replaced whole, never edited in place
/// (a clone shares every document).
#[derive(Debug, Default, Clone)]
pub struct PublishedSet {
    pub feeds: BTreeMap<FeedName, PublishedFeed>,
    /// The HTML index at `/`.
    pub index: Option<Arc<Representation>>,
    /// The OPML subscription list at `/feeds.opml`.
    pub opml: Option<Arc<Representation>>,
    /// When this set was published (for `/healthz`, never inside a document).
    pub published_at: Option<DateTime<Utc>>,
    /// Feeds removed from the configuration while running: `410 Gone`, so
    /// readers unsubscribe instead of retrying a sudden 404.
    pub gone: BTreeSet<FeedName>,
    /// Configured feeds with nothing to serve yet (the store has not been
    /// reached since start-up): `503` with `Retry-After`.
    pub pending: BTreeSet<FeedName>,
}

impl PublishedSet {
    pub fn document(&self, feed: &str, format: Format) -> Option<&Arc<Representation>> {
        self.feeds.get(feed).and_then(|f| f.get(&format))
    }
}

/// The current [`PublishedSet`], readable from any number of requests at once.
#[derive(Debug, Default)]
pub struct Publisher {
    current: ArcSwap<PublishedSet>,
}

impl Publisher {
    pub fn new(set: PublishedSet) -> Self {
        Self {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// A consistent snapshot; cheap enough to take per request.
    pub fn snapshot(&self) -> Arc<PublishedSet> {
        self.current.load_full()
    }

    /// Replaces everything served, atomically.
    pub fn publish(&self, set: PublishedSet) {
        self.current.store(Arc::new(set));
    }

    /// [`Publisher::publish`] for a set the caller also keeps.
    pub fn publish_arc(&self, set: Arc<PublishedSet>) {
        self.current.store(set);
    }
}

/// What publishing uses besides the set itself: where large bodies go, who
/// makes the compressed variants, who writes the output folder.
#[derive(Debug)]
pub struct Pipeline {
    pub store: Option<Arc<BodyStore>>,
    pub compressor: Compressor,
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
