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
//! indentation, so the bytes and ETags are exactly [`super::build`]'s; a
//! chunk out of feed order (a database collating ids differently) stops
//! [`FeedStream`], and its caller falls back to [`super::build`].
//! Each chunk's formats render on threads of their own, so a build uses
//! every core the machine has spare. Still no I/O and no clock here.

use std::thread;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::xml::Xml;
use super::{
    BuildError, Document, EMPTY_FEED_UPDATED, ETag, Entry, FeedMeta, atom, content_type, entry,
    json, rss, text_bytes,
};
use crate::article::{Article, ArticleId};
use crate::config::Format;

/// A finished document whose bytes are held in pieces: the body is `parts`
/// one after the other. The streamed build renders the items of each chunk
/// into a buffer of their own and the header last, so putting them
/// together would copy every byte once more only to write them out again; a
/// vectored write takes them as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamedDocument {
    /// Which of the three formats this is.
    pub format: Format,
    /// The body, in order.
    pub parts: Vec<Bytes>,
    /// The `Content-Type` header value for `format`.
    pub content_type: &'static str,
    /// The strong ETag of the whole body (all parts in order).
    pub etag: ETag,
    /// The newest `updated_at` among the items ([`EMPTY_FEED_UPDATED`] if none).
    pub last_modified: DateTime<Utc>,
}

impl StreamedDocument {
    fn new(format: Format, parts: Vec<Bytes>, last_modified: DateTime<Utc>) -> Self {
        let mut hash = xxhash_rust::xxh3::Xxh3Default::new();
        for part in &parts {
            hash.update(part);
        }
        Self {
            format,
            etag: ETag::from_digest(hash.digest128()),
            parts,
            content_type: content_type(format),
            last_modified,
        }
    }

    /// The body's size in bytes.
    pub fn size(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// The same document with its body in one buffer (a copy of every part
    /// unless there is only one).
    pub fn to_document(&self) -> Document {
        let body = match self.parts.as_slice() {
            [one] => one.clone(),
            parts => Bytes::from(parts.concat()),
        };
        Document {
            format: self.format,
            body,
            content_type: self.content_type,
            etag: self.etag.clone(),
            last_modified: self.last_modified,
        }
    }
}

impl From<Document> for StreamedDocument {
    fn from(doc: Document) -> Self {
        Self {
            format: doc.format,
            parts: vec![doc.body],
            content_type: doc.content_type,
            etag: doc.etag,
            last_modified: doc.last_modified,
        }
    }
}

/// One feed being built from chunks of its articles in feed order (newest
/// `published_at` first, then id descending: the order the store selects
/// in). Give it every chunk with [`push`](Self::push), then take the
/// documents with [`finish`](Self::finish).
///
/// It keeps no article: a chunk can be freed as soon as it is rendered, so
/// the memory of the next ones is reused rather than fresh (in a one-shot
/// process, first touches of fresh pages were up to a third of the time). The
/// price is that articles out of feed order cannot be sorted here: the
/// stream then stops rendering and [`finish`](Self::finish) says so, and
/// the caller builds the feed with [`super::build`] from all its articles.
pub struct FeedStream {
    meta: FeedMeta,
    formats: Vec<Format>,
    /// Per format (in `formats` order), the rendered items of each chunk.
    items: Vec<Vec<Bytes>>,
    /// The newest `updated_at` so far.
    updated: Option<DateTime<Utc>>,
    /// The feed-order key of the last article so far.
    last: Option<(DateTime<Utc>, ArticleId)>,
    /// Whether every article so far came in feed order.
    in_order: bool,
}

impl FeedStream {
    /// A feed with these settings, to be built in `formats`.
    pub fn new(meta: FeedMeta, formats: &[Format]) -> Self {
        Self {
            meta,
            formats: formats.to_vec(),
            items: vec![Vec::new(); formats.len()],
            updated: None,
            last: None,
            in_order: true,
        }
    }

    /// Whether every article so far came in feed order, so the documents
    /// are being rendered as they come.
    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Renders the next articles of the feed, in every format (each on a
    /// thread of its own when the system gives one). A chunk that does not
    /// continue the feed order stops the rendering for good
    /// ([`in_order`](Self::in_order) turns false).
    pub fn push(&mut self, chunk: &[Article]) -> Result<(), BuildError> {
        let (Some(head), Some(tail)) = (chunk.first(), chunk.last()) else {
            return Ok(());
        };
        let continues = self
            .last
            .as_ref()
            .is_none_or(|(at, id)| (at, id) > (&head.published_at, &head.id));
        if self.in_order && !(continues && chunk.windows(2).all(|w| comes_before(&w[0], &w[1]))) {
            self.in_order = false;
            // What was rendered is of no use any more; free it now.
            self.items = Vec::new();
        }
        if !self.in_order {
            return Ok(());
        }
        self.last = Some((tail.published_at, tail.id.clone()));
        let newest = chunk.iter().map(|a| a.updated_at).max();
        self.updated = self.updated.max(newest);
        let first = self.items.first().is_none_or(Vec::is_empty);
        let entries: Vec<Entry<'_>> = chunk.iter().map(|a| entry(&self.meta, a)).collect();
        let meta = &self.meta;
        let rendered = on_threads(&self.formats, |&format| {
            render_items(meta, format, &entries, first)
        });
        for (parts, items) in self.items.iter_mut().zip(rendered) {
            parts.push(Bytes::from(items?));
        }
        Ok(())
    }

    /// The documents, one per format in the order given to
    /// [`new`](Self::new): byte for byte what [`super::build`] makes of the
    /// same articles. `None` if they did not all come in feed order: build
    /// the feed with [`super::build`] instead.
    pub fn finish(self) -> Result<Option<Vec<StreamedDocument>>, BuildError> {
        if !self.in_order {
            return Ok(None);
        }
        let updated = self.updated.unwrap_or(EMPTY_FEED_UPDATED);
        let meta = &self.meta;
        let jobs: Vec<(Format, Vec<Bytes>)> =
            self.formats.iter().copied().zip(self.items).collect();
        // Hashing 40-odd MB per document (10 000 items) is worth a thread each too.
        on_threads(&jobs, |(format, items)| {
            let (head, foot) = head_and_foot(meta, *format, updated)?;
            let mut parts = Vec::with_capacity(items.len() + 2);
            parts.push(Bytes::from(head));
            parts.extend(items.iter().cloned());
            parts.push(Bytes::from(foot));
            Ok(StreamedDocument::new(*format, parts, updated))
        })
        .into_iter()
        .collect::<Result<Vec<StreamedDocument>, BuildError>>()
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
/// document; `first` when they start the feed (JSON puts a comma before
/// every other item).
fn render_items(
    meta: &FeedMeta,
    format: Format,
    entries: &[Entry<'_>],
    first: bool,
) -> Result<Vec<u8>, BuildError> {
    let failed = |message: String| BuildError::Write {
        feed: meta.name.clone(),
        format,
        message,
    };
    // The same per-item allowance as the whole-slice renders.
    let bytes = text_bytes(entries) + entries.len() * 2048;
    match format {
        Format::Rss => {
            let mut x = rss::item_writer(bytes).map_err(|e| failed(e.to_string()))?;
            for e in entries {
                rss::write_item(&mut x, meta, e).map_err(|e| failed(e.to_string()))?;
            }
            Ok(x.finish())
        }
        Format::Atom => {
            let mut x =
                Xml::nested(bytes, &atom::ENTRY_PARENTS).map_err(|e| failed(e.to_string()))?;
            for e in entries {
                atom::write_entry(&mut x, meta, e).map_err(|e| failed(e.to_string()))?;
            }
            Ok(x.finish())
        }
        Format::Json => {
            let mut out = Vec::with_capacity(bytes);
            for (i, e) in entries.iter().enumerate() {
                json::write_item(&mut out, meta, e, first && i == 0)
                    .map_err(|e| failed(e.to_string()))?;
            }
            Ok(out)
        }
    }
}

/// What comes before the items and after them in `format`, for a feed whose
/// newest item was updated at `updated`.
fn head_and_foot(
    meta: &FeedMeta,
    format: Format,
    updated: DateTime<Utc>,
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
            atom::write_head(&mut head, meta, updated).map_err(|e| failed(e.to_string()))?;
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
