//! Building a feed from its articles as they arrive, in feed order.
//!
//! [`super::build`] needs every article before it writes a byte: the header
//! carries the newest `updated_at` of all items (RSS `lastBuildDate`, Atom
//! `updated`, JSON `_feedsmith.updated`). But nothing else in an item depends
//! on the others, so when the articles come already in feed order (as the
//! store selects them) each chunk's items can be rendered as soon as it
//! arrives, and the header written last and put in front. For a 10 000-item
//! feed that hides the rendering behind the store read (`feedsmith build`,
//! `BENCHMARKS.md`).
//!
//! The items, header and footer are written by the same functions as the
//! whole-slice render (`rss::write_item`, …) on writers primed to the same
//! indentation, so the bytes are exactly [`super::build`]'s; a
//! chunk out of feed order (a database collating ids differently) stops
//! [`FeedStream`], and its caller falls back to [`super::build`].
//! Each chunk's formats render on threads of their own, so a build uses
//! every core the machine has spare. The items are handed on, chunk by
//! chunk, to the caller's [`ItemSink`] (which `feedsmith build` writes
//! straight to disk), so no document is ever whole in memory; the I/O is
//! the caller's, and there is no clock here.

use std::sync::Mutex;
use std::thread;

use chrono::{DateTime, Utc};

use super::xml::Xml;
use super::{
    BuildError, EMPTY_FEED_UPDATED, Entry, FeedMeta, Tombstone, Window, atom, entry, json, rss,
    text_bytes,
};
use crate::article::{Article, ArticleId};
use crate::config::Format;

/// Where a streamed build hands each chunk's rendered items
/// ([`FeedStream::push_to`]): `feedsmith build` writes them
/// straight into the document's file, so the bytes leave memory as they are
/// made. Called on the render threads, so it must be `Sync`; for each
/// document (`slot`: its index in the stream's formats) the calls come one
/// at a time and in feed order.
pub trait ItemSink: Sync {
    /// Takes the next items of the document in `slot`.
    fn items(&self, slot: usize, items: &[u8]) -> std::io::Result<()>;
}

/// What goes around a streamed document's items, once all are known.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEnds {
    /// Which of the three formats this is.
    pub format: Format,
    /// Everything before the first item.
    pub head: Vec<u8>,
    /// Everything after the last item.
    pub foot: Vec<u8>,
    /// The newest `updated_at` among the items ([`EMPTY_FEED_UPDATED`] if none).
    pub last_modified: DateTime<Utc>,
}

/// One feed being built from chunks of its articles in feed order (newest
/// `published_at` first, then id descending: the order the store selects
/// in). Give it every chunk with [`push_to`](Self::push_to), which hands
/// the rendered items on as they are made, then take what goes around them
/// with [`finish_ends`](Self::finish_ends).
///
/// It keeps no article: a chunk can be freed as soon as it is rendered, so
/// the memory of the next ones is reused rather than fresh (in a one-shot
/// process, first touches of fresh pages were up to a third of the time). The
/// price is that articles out of feed order cannot be sorted here: the
/// stream then stops rendering and [`finish_ends`](Self::finish_ends) says so, and
/// the caller builds the feed with [`super::build`] from all its articles.
pub struct FeedStream {
    meta: FeedMeta,
    formats: Vec<Format>,
    /// Per format (in `formats` order), the buffer the next chunk's items
    /// are rendered into: reused from chunk to chunk.
    scratch: Vec<Mutex<Vec<u8>>>,
    /// Whether any item was rendered yet (JSON separates items by commas).
    started: bool,
    /// The newest `updated_at` so far.
    updated: Option<DateTime<Utc>>,
    /// The feed-order key of the last article so far.
    last: Option<(DateTime<Utc>, ArticleId)>,
    /// How many articles so far.
    count: u64,
    /// Whether every article so far came in feed order.
    in_order: bool,
}

impl FeedStream {
    /// A feed with these settings, to be built in `formats`.
    pub fn new(meta: FeedMeta, formats: &[Format]) -> Self {
        Self {
            meta,
            formats: formats.to_vec(),
            scratch: formats.iter().map(|_| Mutex::new(Vec::new())).collect(),
            started: false,
            updated: None,
            last: None,
            count: 0,
            in_order: true,
        }
    }

    /// Whether every article so far came in feed order, so the documents
    /// are being rendered as they come.
    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Renders the next articles of the feed, in every format (each on a
    /// thread of its own when the system gives one), and hands each
    /// format's items to `sink` as soon as they are rendered, on the thread
    /// that rendered them; the buffer is then reused for the next chunk. A
    /// chunk that does not continue the feed order stops the rendering for
    /// good ([`in_order`](Self::in_order) turns false).
    pub fn push_to(&mut self, chunk: &[Article], sink: &dyn ItemSink) -> Result<(), BuildError> {
        let feed = self.meta.name.clone();
        let formats = self.formats.clone();
        self.render(chunk, |slot, items| {
            sink.items(slot, items).map_err(|source| BuildError::Sink {
                feed: feed.clone(),
                format: formats[slot],
                source,
            })
        })
        .map(|_| ())
    }

    /// Renders `chunk` into the scratch buffers and calls `then` with each
    /// format's items; false if the chunk broke the feed order (nothing
    /// rendered, now or later).
    fn render(
        &mut self,
        chunk: &[Article],
        then: impl Fn(usize, &[u8]) -> Result<(), BuildError> + Sync,
    ) -> Result<bool, BuildError> {
        let (Some(head), Some(tail)) = (chunk.first(), chunk.last()) else {
            return Ok(self.in_order);
        };
        let continues = self
            .last
            .as_ref()
            .is_none_or(|(at, id)| (at, id) > (&head.published_at, &head.id));
        if self.in_order && !(continues && chunk.windows(2).all(|w| comes_before(&w[0], &w[1]))) {
            self.in_order = false;
            // The buffers are of no use any more; free them now.
            self.scratch = Vec::new();
        }
        if !self.in_order {
            return Ok(false);
        }
        self.last = Some((tail.published_at, tail.id.clone()));
        self.count += chunk.len() as u64;
        let newest = chunk.iter().map(|a| a.updated_at).max();
        self.updated = self.updated.max(newest);
        let first = !std::mem::replace(&mut self.started, true);
        let entries: Vec<Entry<'_>> = chunk.iter().map(|a| entry(&self.meta, a)).collect();
        let meta = &self.meta;
        let jobs: Vec<(usize, Format, &Mutex<Vec<u8>>)> = self
            .formats
            .iter()
            .zip(&self.scratch)
            .enumerate()
            .map(|(slot, (format, buf))| (slot, *format, buf))
            .collect();
        let then = &then;
        on_threads(&jobs, |&(slot, format, buf)| {
            // Each buffer is only ever locked by its own format's thread.
            let mut buf = buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            render_items(meta, format, &entries, first, &mut buf)?;
            then(slot, &buf)
        })
        .into_iter()
        .collect::<Result<Vec<()>, BuildError>>()?;
        Ok(true)
    }

    /// The newest `updated_at` of the items so far.
    pub fn updated(&self) -> Option<DateTime<Utc>> {
        self.updated
    }

    /// What the items so far list, for [`super::tombstones_to_show`].
    pub fn window(&self) -> Window {
        Window {
            count: self.count,
            oldest: self.last.clone(),
            newest_update: self.updated,
        }
    }

    /// The head of each document as it would be if the newest update of
    /// all items were `updated`, in the order of the formats: a sink that
    /// writes the items first can leave this much room in front of them
    /// (the head's length only changes with the digits of `updated`).
    pub fn heads(&self, updated: DateTime<Utc>) -> Result<Vec<Vec<u8>>, BuildError> {
        self.formats
            .iter()
            .map(|&format| head_and_foot(&self.meta, format, updated, &[]).map(|(head, _)| head))
            .collect()
    }

    /// What goes before and after the items handed to a sink by
    /// [`push_to`](Self::push_to), one per format in the order given to
    /// [`new`](Self::new): head, items in the order handed on, foot are
    /// byte for byte what [`super::build`] makes of the same articles.
    /// `None` if they did not all come in feed order (what was handed on is
    /// then of no use): build the feed with [`super::build`] instead.
    /// `tombstones` are the feed's withdrawn articles to mark as deleted
    /// ([`super::tombstones_to_show`]), as [`super::build_with`] takes them.
    pub fn finish_ends(
        self,
        tombstones: &[Tombstone],
    ) -> Result<Option<Vec<FeedEnds>>, BuildError> {
        if !self.in_order {
            return Ok(None);
        }
        let withdrawn = tombstones.iter().map(|t| t.withdrawn_at).max();
        let updated = self.updated.max(withdrawn).unwrap_or(EMPTY_FEED_UPDATED);
        self.formats
            .iter()
            .map(|&format| {
                let (head, foot) = head_and_foot(&self.meta, format, updated, tombstones)?;
                Ok(FeedEnds {
                    format,
                    head,
                    foot,
                    last_modified: updated,
                })
            })
            .collect::<Result<Vec<FeedEnds>, BuildError>>()
            .map(Some)
    }
}

/// Whether `before` may directly precede `after` in feed order: published
/// later, or at the same instant with a greater id (ids are unique, so never
/// equal in one feed).
fn comes_before(before: &Article, after: &Article) -> bool {
    (before.published_at, &before.id) > (after.published_at, &after.id)
}

/// `f` of every input, in order: the first on this thread, each other one
/// on a thread of its own (or on this one, should the system refuse a
/// thread). A panic in any of them is a panic here.
fn on_threads<I: Sync, O: Send>(inputs: &[I], f: impl Fn(&I) -> O + Sync) -> Vec<O> {
    let Some((first, rest)) = inputs.split_first() else {
        return Vec::new();
    };
    let f = &f;
    thread::scope(|scope| {
        let spawned: Vec<Result<_, &I>> = rest
            .iter()
            .map(|input| {
                thread::Builder::new()
                    .name("feedsmith-render".to_owned())
                    .spawn_scoped(scope, move || f(input))
                    .map_err(|_| input)
            })
            .collect();
        let mut out = Vec::with_capacity(inputs.len());
        out.push(f(first));
        for job in spawned {
            out.push(match job {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(input) => f(input),
            });
        }
        out
    })
}

/// The items of `entries` in `format`, as they appear in the whole
/// document, written into `out` (emptied first); `first` when they start
/// the feed (JSON puts a comma before every other item).
fn render_items(
    meta: &FeedMeta,
    format: Format,
    entries: &[Entry<'_>],
    first: bool,
    out: &mut Vec<u8>,
) -> Result<(), BuildError> {
    let failed = |message: String| BuildError::Write {
        feed: meta.name.clone(),
        format,
        message,
    };
    // The same per-item allowance as the whole-slice renders.
    let bytes = text_bytes(entries) + entries.len() * 2048;
    let mut buf = std::mem::take(out);
    buf.clear();
    buf.reserve(bytes);
    *out = match format {
        Format::Rss => {
            let mut x = rss::item_writer_in(buf).map_err(|e| failed(e.to_string()))?;
            for e in entries {
                rss::write_item(&mut x, meta, e).map_err(|e| failed(e.to_string()))?;
            }
            x.finish()
        }
        Format::Atom => {
            let mut x =
                Xml::nested_in(buf, &atom::ENTRY_PARENTS).map_err(|e| failed(e.to_string()))?;
            for e in entries {
                atom::write_entry(&mut x, meta, e).map_err(|e| failed(e.to_string()))?;
            }
            x.finish()
        }
        Format::Json => {
            for (i, e) in entries.iter().enumerate() {
                json::write_item(&mut buf, meta, e, first && i == 0)
                    .map_err(|e| failed(e.to_string()))?;
            }
            buf
        }
    };
    Ok(())
}

/// What comes before the items and after them in `format`, for a feed whose
/// newest item was updated at `updated`.
fn head_and_foot(
    meta: &FeedMeta,
    format: Format,
    updated: DateTime<Utc>,
    tombstones: &[Tombstone],
) -> Result<(Vec<u8>, Vec<u8>), BuildError> {
    let failed = |message: String| BuildError::Write {
        feed: meta.name.clone(),
        format,
        message,
    };
    match format {
        Format::Rss => {
            let mut head = rss::writer(4096);
            rss::write_head(&mut head, meta, updated).map_err(|e| failed(e.to_string()))?;
            let mut foot = rss::item_writer(64).map_err(|e| failed(e.to_string()))?;
            rss::write_foot(&mut foot).map_err(|e| failed(e.to_string()))?;
            Ok((head.finish(), foot.finish()))
        }
        Format::Atom => {
            let mut head = Xml::with_capacity(4096);
            atom::write_head(&mut head, meta, updated, tombstones)
                .map_err(|e| failed(e.to_string()))?;
            let mut foot =
                Xml::nested(64, &atom::ENTRY_PARENTS).map_err(|e| failed(e.to_string()))?;
            atom::write_foot(&mut foot).map_err(|e| failed(e.to_string()))?;
            Ok((head.finish(), foot.finish()))
        }
        Format::Json => {
            let mut head = Vec::with_capacity(4096);
            json::write_head(&mut head, meta, updated).map_err(|e| failed(e.to_string()))?;
            let mut foot = Vec::with_capacity(8);
            json::write_foot(&mut foot);
            Ok((head, foot))
        }
    }
}
