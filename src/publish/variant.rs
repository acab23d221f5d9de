//! A document as served: its bytes in each content coding, each with its own
//! strong ETag, plus the header values every response for it repeats.
//!
//! Compression happens once, here, when a document is published; requests only
//! pick a variant. Small documents are kept identity-only: below
//! [`COMPRESS_MIN_BYTES`] the saving does not pay for a client's decompression.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::HeaderValue;

use crate::builder::ETag;

/// Documents smaller than this are served identity-only.
pub const COMPRESS_MIN_BYTES: usize = 1024;

/// Brotli quality for documents up to [`BROTLI_FAST_ABOVE`]. Compression sits
/// on the path from a write to the served feed, for every format of every
/// affected feed. Measured on a 220 KB RSS document (2026-12-02): quality 9
/// gives 34.2 KB in 36 ms, quality 11 gives 31.7 KB in 785 ms — 8 % smaller for
/// 20 times the CPU, which at two seconds per feed would defeat the watch poll.
const BROTLI_QUALITY: u32 = 9;
/// Above this size quality 7 keeps publishing fast (about a third of the time).
const BROTLI_FAST_ABOVE: usize = 1024 * 1024;

/// A content coding we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    Identity,
    Gzip,
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

    pub fn name(self) -> &'static str {
        self.token().unwrap_or("identity")
    }
}

/// Bodies at least this large also get a file, so HTTP/1 responses can send
/// them with `sendfile(2)` instead of copying them through user space; smaller
/// ones cost less to write directly.
pub const SENDFILE_MIN_BYTES: usize = 16 * 1024;

/// An open, unlinked file holding exactly a variant's bytes. It lives as long
/// as the variant: a response that is still sending it keeps it open even
/// after a newer version has been published.
#[derive(Debug)]
pub struct BodyFile(pub File);

/// Two variants are equal when their bytes are; the file is only a copy.
impl PartialEq for BodyFile {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One encoding of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub encoding: Encoding,
    pub body: Bytes,
    /// The strong ETag of exactly these bytes.
    pub etag: ETag,
    /// The same bytes in a file, for zero-copy sending (large bodies only).
    pub file: Option<Arc<BodyFile>>,
    /// `etag` as a header value, made once so a response does not copy it.
    /// Always present for tags we make; `None` would leave the header out.
    pub etag_header: Option<HeaderValue>,
}

impl Variant {
    fn new(encoding: Encoding, body: Bytes) -> Self {
        let etag = ETag::of(&body);
        Self {
            etag_header: HeaderValue::from_str(etag.as_str()).ok(),
            etag,
            encoding,
            body,
            file: None,
        }
    }

    /// Whether this variant is large enough for zero-copy sending but has no file yet.
    fn needs_file(&self) -> bool {
        self.body.len() >= SENDFILE_MIN_BYTES && self.file.is_none()
    }

    fn attach_file(&mut self, dir: &Path) -> std::io::Result<()> {
        if !self.needs_file() {
            return Ok(());
        }
        // An unlinked file on the output folder's disk: in the page cache,
        // which sendfile reads faster than a memfd, and gone when closed.
        let mut file = tempfile::tempfile_in(dir)?;
        file.write_all(&self.body)?;
        self.file = Some(Arc::new(BodyFile(file)));
        Ok(())
    }
}

/// A published document: its variants and the headers they share.
#[derive(Debug, Clone, PartialEq)]
pub struct Representation {
    pub content_type: &'static str,
    pub last_modified: DateTime<Utc>,
    pub cache_control: String,
    /// `Last-Modified` (an IMF-fixdate) and `cache_control` as header values,
    /// made once. Always present for values we make; `None` would leave the
    /// header out.
    pub last_modified_header: Option<HeaderValue>,
    pub cache_control_header: Option<HeaderValue>,
    pub identity: Variant,
    pub gzip: Option<Variant>,
    pub brotli: Option<Variant>,
}

impl Representation {
    /// Builds the variants of `body`. CPU-heavy for large bodies: call it off
    /// the async runtime.
    pub fn new(
        body: Bytes,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        cache_control: String,
    ) -> Self {
        Self::with_compressed(body, content_type, last_modified, cache_control, None, None)
    }

    /// Like [`Representation::new`], reusing compressed bytes made earlier for
    /// this very body (as read back from the output folder) instead of
    /// compressing again; a missing one is compressed here.
    pub fn with_compressed(
        body: Bytes,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        cache_control: String,
        gzipped: Option<Bytes>,
        brotlied: Option<Bytes>,
    ) -> Self {
        let (gzip, brotli) = if body.len() >= COMPRESS_MIN_BYTES {
            (
                Some(Variant::new(
                    Encoding::Gzip,
                    gzipped.unwrap_or_else(|| gzip(&body)),
                )),
                Some(Variant::new(
                    Encoding::Brotli,
                    brotlied.unwrap_or_else(|| brotli(&body)),
                )),
            )
        } else {
            (None, None)
        };
        Self {
            content_type,
            last_modified,
            last_modified_header: HeaderValue::from_str(&http_date(last_modified)).ok(),
            cache_control_header: HeaderValue::from_str(&cache_control).ok(),
            cache_control,
            identity: Variant::new(Encoding::Identity, body),
            gzip,
            brotli,
        }
    }

    pub fn variant(&self, encoding: Encoding) -> Option<&Variant> {
        match encoding {
            Encoding::Identity => Some(&self.identity),
            Encoding::Gzip => self.gzip.as_ref(),
            Encoding::Brotli => self.brotli.as_ref(),
        }
    }

    /// Whether a large variant has no file for zero-copy sending yet (it was
    /// made while the output folder was missing, say).
    pub fn needs_files(&self) -> bool {
        self.variants().any(Variant::needs_file)
    }

    /// Gives every large variant that has none a file in `dir` for zero-copy
    /// sending. Without one a variant is still served, by copying.
    pub fn attach_files(&mut self, dir: &Path) -> std::io::Result<()> {
        self.identity.attach_file(dir)?;
        for v in [self.gzip.as_mut(), self.brotli.as_mut()]
            .into_iter()
            .flatten()
        {
            v.attach_file(dir)?;
        }
        Ok(())
    }

    /// Every variant, identity first.
    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        std::iter::once(&self.identity)
            .chain(self.gzip.as_ref())
            .chain(self.brotli.as_ref())
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
            flate2::Compression::best(),
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
    let mut out = Vec::with_capacity(body.len() / 5);
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 64 * 1024, quality, 22);
        let _ = writer.write_all(body);
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn rep(body: &[u8]) -> Representation {
        Representation::new(
            Bytes::copy_from_slice(body),
            "application/rss+xml; charset=utf-8",
            DateTime::from_timestamp(1_443_520_200, 500_000_000).expect("time"),
            "public, max-age=300".into(),
        )
    }

    #[test]
    fn variants_decompress_to_the_identity_bytes_and_have_their_own_tags() {
        let body = "<item>feed text that repeats</item>".repeat(200);
        let r = rep(body.as_bytes());
        let mut gz = String::new();
        flate2::read::GzDecoder::new(&r.gzip.as_ref().expect("gzip").body[..])
            .read_to_string(&mut gz)
            .expect("gunzip");
        assert_eq!(gz, body);
        let mut br = String::new();
        brotli::Decompressor::new(&r.brotli.as_ref().expect("br").body[..], 4096)
            .read_to_string(&mut br)
            .expect("unbrotli");
        assert_eq!(br, body);
        let tags: std::collections::HashSet<_> = r.variants().map(|v| v.etag.clone()).collect();
        assert_eq!(tags.len(), 3);
        assert!(r.gzip.as_ref().expect("gzip").body.len() < body.len() / 5);
    }

    #[test]
    fn compression_is_deterministic() {
        let body = "deterministic ".repeat(500);
        assert_eq!(rep(body.as_bytes()), rep(body.as_bytes()));
    }

    #[test]
    fn small_documents_are_identity_only() {
        let r = rep(b"<rss/>");
        assert!(r.gzip.is_none() && r.brotli.is_none());
        assert_eq!(r.variants().count(), 1);
    }

    #[test]
    fn large_variants_get_a_file_with_the_same_bytes() {
        let dir = tempfile::tempdir().expect("dir");
        let body = "<item>x</item>".repeat(4000);
        let mut r = rep(body.as_bytes());
        r.attach_files(dir.path()).expect("files");
        let file = r.identity.file.as_ref().expect("identity is large");
        let mut f = &file.0;
        use std::io::Seek;
        f.seek(std::io::SeekFrom::Start(0)).expect("seek");
        let mut read = String::new();
        f.read_to_string(&mut read).expect("read");
        assert_eq!(read, body);
        assert!(
            r.brotli.as_ref().expect("br").file.is_none(),
            "small compressed variant is written directly"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "files are unlinked"
        );
    }

    #[test]
    fn a_variant_without_its_file_gets_one_later_and_keeps_the_others() {
        let root = tempfile::tempdir().expect("dir");
        let missing = root.path().join("published");
        let body = "<item>x</item>".repeat(4000);
        let mut r = rep(body.as_bytes());
        assert!(r.attach_files(&missing).is_err(), "no folder yet");
        assert!(r.needs_files());
        std::fs::create_dir(&missing).expect("create");
        r.attach_files(&missing).expect("files");
        assert!(!r.needs_files());
        let first = r.identity.file.clone().expect("file");
        r.attach_files(&missing).expect("again");
        let again = r.identity.file.as_ref().expect("file");
        assert!(Arc::ptr_eq(&first, again), "an attached file is kept");
        assert!(!rep(b"<rss/>").needs_files(), "small documents need none");
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
