//! A document as served: its bytes in each content coding, each with its own
//! strong ETag, plus the header values every response for it repeats.
//!
//! Compression never sits between a build and serving it. A representation
//! is published with its identity bytes only; the compressed variants are
//! made afterwards, off the publishing path (see `compress`), and each is set
//! exactly once, complete with its own ETag. A request picks among the
//! variants present at that instant, so a client never waits for compression
//! and never gets bytes that do not match the ETag sent with them. Small
//! documents are kept identity-only: below [`COMPRESS_MIN_BYTES`] the saving
//! does not pay for a client's decompression.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderValue;

use super::body::{Body, BodyStore};
use crate::builder::{Document, ETag};

/// Documents smaller than this are served identity-only.
pub const COMPRESS_MIN_BYTES: usize = 1024;

/// gzip level. Measured on real feeds (BENCHMARKS.md, "Compression levels"):
/// level 6 gives files within 0.5 % of level 9's in 10 % less time; below 6
/// they grow by a tenth or more.
const GZIP_LEVEL: u32 = 6;

/// Brotli quality for documents up to [`BROTLI_FAST_ABOVE`]. Brotli is made in
/// the background, never before a document is served, so the better ratio of
/// quality 9 (8 % smaller than gzip 6 on a 200 KB feed, 18 ms) is affordable;
/// quality 11 is 16 times slower again for 8 % more.
const BROTLI_QUALITY: u32 = 9;
/// Above this size quality 7 (twice as fast, 7 % larger) keeps the backlog short.
const BROTLI_FAST_ABOVE: usize = 1024 * 1024;
/// Brotli's window bounds (`lgwin`): 2^10 to 2^22 bytes.
const BROTLI_MIN_LGWIN: u32 = 10;
const BROTLI_MAX_LGWIN: u32 = 22;

/// A content coding we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The bytes as built, uncompressed.
    Identity,
    /// `gzip`.
    Gzip,
    /// Brotli (`br`).
    Brotli,
}

impl Encoding {
    /// The `Content-Encoding` token; `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Brotli => Some("br"),
        }
    }

    /// The coding's name for logs and the access log: its token, or `identity`.
    pub fn name(self) -> &'static str {
        self.token().unwrap_or("identity")
    }

    /// The compressed codings, in the order they are made.
    pub const COMPRESSED: [Encoding; 2] = [Encoding::Gzip, Encoding::Brotli];
}

/// One encoding of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The content coding of `body`.
    pub encoding: Encoding,
    /// The bytes sent, already encoded.
    pub body: Body,
    /// The strong ETag of exactly these bytes.
    pub etag: ETag,
    /// `etag` as a header value, made once so a response does not copy it.
    /// Always present for tags we make; `None` would leave the header out.
    pub etag_header: Option<HeaderValue>,
}

impl Variant {
    /// Tags `bytes` and keeps them (in `store` when large, see [`Body::keep`]).
    pub fn new(encoding: Encoding, bytes: Bytes, store: Option<&Arc<BodyStore>>) -> Self {
        let etag = ETag::of(&bytes);
        Self::tagged(encoding, Body::keep(bytes, store), etag)
    }

    /// A variant whose ETag the caller computed from exactly `body`'s bytes.
    pub fn tagged(encoding: Encoding, body: Body, etag: ETag) -> Self {
        Self {
            etag_header: HeaderValue::from_str(etag.as_str()).ok(),
            etag,
            encoding,
            body,
        }
    }
}

/// A published document: its variants and the headers they share.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    /// The `Content-Type` header value, as the builder gave it.
    pub content_type: &'static str,
    /// When the document's content last changed; sent as `Last-Modified`.
    pub last_modified: DateTime<Utc>,
    /// The `Cache-Control` header value.
    pub cache_control: String,
    /// `Last-Modified` (an IMF-fixdate) and `cache_control` as header values,
    /// made once. Always present for values we make; `None` would leave the
    /// header out.
    pub last_modified_header: Option<HeaderValue>,
    /// `cache_control` as a header value; see `last_modified_header`.
    pub cache_control_header: Option<HeaderValue>,
    /// The uncompressed variant, always present.
    pub identity: Variant,
    /// Set once each, when made (see the module's documentation).
    gzip: OnceLock<Variant>,
    brotli: OnceLock<Variant>,
}

impl Representation {
    /// A document with its identity bytes only; the compressed variants are
    /// pending until [`Representation::compress`] makes them. Keeps a large
    /// body in `store` (a write to the page cache: call it off the async
    /// runtime).
    pub fn new(
        body: Bytes,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        cache_control: String,
        store: Option<&Arc<BodyStore>>,
    ) -> Self {
        Self::from_variants(
            Variant::new(Encoding::Identity, body, store),
            [None, None],
            content_type,
            last_modified,
            cache_control,
        )
    }

    /// Prepares a built document for serving: keeps its bytes (a large body
    /// in `store`: call from `spawn_blocking`) and attaches its caching
    /// policy. Its compressed variants are pending (see
    /// [`Compressor`](super::Compressor)).
    pub fn from_document(
        doc: &Document,
        cache_control: String,
        store: Option<&Arc<BodyStore>>,
    ) -> Self {
        Self::new(
            doc.body.clone(),
            doc.content_type,
            doc.last_modified,
            cache_control,
            store,
        )
    }

    /// [`Representation::new`] with every variant made at once, for small
    /// documents made rarely (the index page) and for tools and tests.
    /// CPU-heavy for large bodies.
    pub fn compressed_now(
        body: Bytes,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        cache_control: String,
        store: Option<&Arc<BodyStore>>,
    ) -> Self {
        let rep = Self::new(body, content_type, last_modified, cache_control, store);
        for encoding in Encoding::COMPRESSED {
            // Reading an identity body just written cannot fail but for a
            // broken disk; the variant is then missing, and identity is served.
            let _ = rep.compress(encoding, store);
        }
        rep
    }

    /// A representation from variants made earlier (read back from the
    /// output folder). A compressed variant given here is not made again.
    pub fn from_variants(
        identity: Variant,
        [gzip, brotli]: [Option<Variant>; 2],
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        cache_control: String,
    ) -> Self {
        let set = |v: Option<Variant>| {
            let cell = OnceLock::new();
            if let Some(v) = v {
                let _ = cell.set(v);
            }
            cell
        };
        Self {
            content_type,
            last_modified,
            last_modified_header: HeaderValue::from_str(&http_date(last_modified)).ok(),
            cache_control_header: HeaderValue::from_str(&cache_control).ok(),
            cache_control,
            identity,
            gzip: set(gzip),
            brotli: set(brotli),
        }
    }

    /// Whether the document is large enough to be sent compressed.
    pub fn compressible(&self) -> bool {
        self.identity.body.len() >= COMPRESS_MIN_BYTES
    }

    fn cell(&self, encoding: Encoding) -> Option<&OnceLock<Variant>> {
        match encoding {
            Encoding::Identity => None,
            Encoding::Gzip => Some(&self.gzip),
            Encoding::Brotli => Some(&self.brotli),
        }
    }

    /// The compressed codings still to be made, in the order to make them.
    pub fn pending(&self) -> impl Iterator<Item = Encoding> + '_ {
        Encoding::COMPRESSED
            .into_iter()
            .filter(|&e| self.compressible() && self.cell(e).is_some_and(|c| c.get().is_none()))
    }

    /// Makes the `encoding` variant if it is pending: reads the identity
    /// bytes, compresses them, keeps the result (in `store` when large) and
    /// publishes it. Blocking and CPU-heavy. `Ok(false)` if there was nothing
    /// to do (made already, or the document is too small).
    pub fn compress(
        &self,
        encoding: Encoding,
        store: Option<&Arc<BodyStore>>,
    ) -> std::io::Result<bool> {
        let Some(cell) = self.cell(encoding) else {
            return Ok(false);
        };
        if !self.compressible() || cell.get().is_some() {
            return Ok(false);
        }
        let identity = self.identity.body.read()?;
        let started = std::time::Instant::now();
        let bytes = match encoding {
            Encoding::Gzip => gzip(&identity),
            _ => brotli(&identity),
        };
        crate::metrics::global().compressed(encoding.name(), started.elapsed());
        drop(identity);
        // Two callers may race to make the same variant; both make the same
        // bytes, and the first one set is kept.
        Ok(cell.set(Variant::new(encoding, bytes, store)).is_ok())
    }

    /// The variant in `encoding`; `None` for a compressed one not made yet.
    pub fn variant(&self, encoding: Encoding) -> Option<&Variant> {
        match encoding {
            Encoding::Identity => Some(&self.identity),
            Encoding::Gzip => self.gzip.get(),
            Encoding::Brotli => self.brotli.get(),
        }
    }

    /// The gzip variant, once made.
    pub fn gzip(&self) -> Option<&Variant> {
        self.gzip.get()
    }

    /// The Brotli variant, once made.
    pub fn brotli(&self) -> Option<&Variant> {
        self.brotli.get()
    }

    /// Every variant present now, identity first.
    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        std::iter::once(&self.identity)
            .chain(self.gzip.get())
            .chain(self.brotli.get())
    }
}

/// The last second an HTTP date can carry (9999-12-31T23:59:59Z); httpdate
/// panics on a later one.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// `Last-Modified` has second precision; sub-second parts are dropped. Times
/// before 1970 are written as 1970 and after 9999 as 9999: only a row a CMS
/// wrote directly, unvalidated, can carry one.
pub fn http_date(t: DateTime<Utc>) -> String {
    let secs = u64::try_from(t.timestamp())
        .unwrap_or(0)
        .min(LAST_HTTP_DATE);
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

fn gzip(body: &[u8]) -> Bytes {
    // mtime 0 and a fixed OS byte keep the output identical on every machine.
    let mut encoder = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::new(GZIP_LEVEL),
        );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

fn brotli(body: &[u8]) -> Bytes {
    let quality = if body.len() <= BROTLI_FAST_ABOVE {
        BROTLI_QUALITY
    } else {
        7
    };
    // A window no larger than the document (2^lgwin bytes, 1 KiB to 4 MiB)
    // compresses it the same and spares each compressing thread most of the
    // 4 MiB ring buffer and its hash tables.
    let mut lgwin = BROTLI_MIN_LGWIN;
    // The window holds 2^lgwin - 16 bytes.
    while lgwin < BROTLI_MAX_LGWIN && (1_usize << lgwin) - 16 < body.len() {
        lgwin += 1;
    }
    let mut out = Vec::with_capacity(body.len() / 5);
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, lgwin);
        let _ = writer.write_all(body);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn rep(body: &[u8]) -> Representation {
        Representation::compressed_now(
            Bytes::copy_from_slice(body),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(1_443_520_200, 500_000_000).expect("time"),
            "public, max-age=300".into(),
            None,
        )
    }

    fn read(v: Option<&Variant>) -> Bytes {
        v.expect("variant").body.read().expect("read")
    }

    #[test]
    fn variants_decompress_to_the_identity_bytes_and_have_their_own_tags() {
        let body = "<item>feed text that repeats</item>".repeat(200);
        let r = rep(body.as_bytes());
        let mut gz = String::new();
        flate2::read::GzDecoder::new(&read(r.gzip())[..])
            .read_to_string(&mut gz)
            .expect("gunzip");
        assert_eq!(gz, body);
        let mut br = String::new();
        brotli::Decompressor::new(&read(r.brotli())[..], 4096)
            .read_to_string(&mut br)
            .expect("unbrotli");
        assert_eq!(br, body);
        let tags: std::collections::HashSet<_> = r.variants().map(|v| v.etag.clone()).collect();
        assert_eq!(tags.len(), 3);
        assert!(read(r.gzip()).len() < body.len() / 5);
    }

    #[test]
    fn compressed_variants_are_pending_until_made_each_once() {
        let dir = tempfile::tempdir().expect("dir");
        let store = BodyStore::create(dir.path()).expect("store");
        let body = Bytes::from("<item>a story, a story</item>".repeat(2000));
        let r = Representation::new(
            body.clone(),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(0, 0).expect("time"),
            "public".into(),
            Some(&store),
        );
        assert!(
            r.identity.body.is_stored(),
            "large identity kept off the heap"
        );
        assert_eq!(r.pending().collect::<Vec<_>>(), Encoding::COMPRESSED);
        assert!(r.variant(Encoding::Brotli).is_none());
        assert_eq!(r.variants().count(), 1);
        assert!(r.compress(Encoding::Gzip, Some(&store)).expect("gzip"));
        assert!(!r.compress(Encoding::Gzip, Some(&store)).expect("again"));
        assert_eq!(r.pending().collect::<Vec<_>>(), vec![Encoding::Brotli]);
        let gz = read(r.gzip());
        assert_eq!(r.gzip().expect("gzip").etag, ETag::of(&gz));
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .expect("gunzip");
        assert_eq!(back, body);
        assert!(r.compress(Encoding::Brotli, None).expect("br"));
        assert_eq!(r.pending().count(), 0);
        assert!(!r.compress(Encoding::Identity, None).expect("identity"));
    }

    #[test]
    fn compression_is_deterministic() {
        let body = "deterministic ".repeat(500);
        assert_eq!(rep(body.as_bytes()), rep(body.as_bytes()));
    }

    #[test]
    fn small_documents_are_identity_only() {
        let r = rep(b"<rss/>");
        assert!(r.gzip().is_none() && r.brotli().is_none());
        assert_eq!(r.variants().count(), 1);
        assert_eq!(r.pending().count(), 0, "nothing to wait for");
    }

    #[test]
    fn dates_past_9999_are_written_as_its_last_second_not_a_panic() {
        let far = DateTime::from_timestamp(400_000_000_000, 0).expect("year 14645");
        assert_eq!(http_date(far), "Fri, 31 Dec 9999 23:59:59 GMT");
        let before = DateTime::from_timestamp(-100, 0).expect("1969");
        assert_eq!(http_date(before), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn last_modified_is_an_imf_fixdate_to_the_second() {
        assert_eq!(
            rep(b"x").last_modified_header,
            Some(HeaderValue::from_static("Tue, 29 Sep 2015 09:50:00 GMT"))
        );
    }
}
