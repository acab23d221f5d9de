//! The feed builder: one feed's settings and articles in, finished documents out.
//!
//! This module owns the mapping of `docs/contract.md` §5, the three
//! serialisations (`rss`, `atom`, `json`) and the feed's HTML page for
//! people (`page`). It is a pure function of its inputs:
//! no clock, no I/O, no store. The same [`FeedMeta`] and the same articles, in
//! any order, always give byte-identical documents and ETags, which is what
//! lets every replica and every rebuild agree. Everything that comes from
//! outside passes through [`Entry::prepare`] once — characters XML 1.0 forbids
//! removed, relative URLs in bodies resolved — so no renderer has to remember
//! to.

mod atom;
mod html;
mod json;
pub mod page;
mod rss;
pub mod site;
mod stream;
mod xml;

pub use stream::{FeedEnds, FeedStream, ItemSink};

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use url::Url;

use std::borrow::Cow;

use crate::article::{Article, Image, scan_text, strip_forbidden};
use crate::config::{Config, FeedName, FeedSpec, Format};

/// The name the documents give as their generator. It is the bare name: RSS
/// writes it followed by the crate version (`feedsmith 0.1.0`) and Atom puts the
/// version in the element's `version` attribute.
pub const GENERATOR: &str = "feedsmith";

/// The feed-level date of a feed with no items: the Unix epoch. A fixed value
/// keeps an empty feed's bytes and ETag stable; readers show no date for it.
pub const EMPTY_FEED_UPDATED: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

/// Everything about one feed that is not its articles.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMeta {
    /// The feed's name: its URL path and file stem.
    pub name: FeedName,
    /// The feed's own title, from its feed file.
    pub title: String,
    /// The feed file's description, else the site's, else empty.
    pub description: String,
    /// The publication's name, used where a format wants the site as author.
    pub site_title: String,
    /// The newsroom's home page: the channel link.
    pub site_url: Url,
    /// Where the service is reached; self links are built under it.
    pub base_url: Url,
    /// Language tag written into the documents, such as `en-IE`.
    pub language: Option<String>,
    /// Copyright line for the feed as a whole.
    pub rights: Option<String>,
    /// Wide logo (RSS `image`, Atom `logo`).
    pub logo: Option<Url>,
    /// Square icon (Atom `icon`, JSON Feed `icon` and `favicon`).
    pub icon: Option<Url>,
    /// The zone every date is written in.
    pub timezone: Tz,
    /// Minutes between refreshes, for RSS `ttl`.
    pub ttl_minutes: u32,
    /// Feed-level categories: the sections and tags the feed selects.
    pub categories: Vec<String>,
    /// The authority part of `tag:` URIs (RFC 4151): the host of `base_url`.
    pub tag_authority: String,
}

impl FeedMeta {
    /// The metadata for `spec` as configured in `config`, with the derived values (TTL,
    /// categories, tag authority) computed once.
    pub fn new(config: &Config, spec: &FeedSpec) -> Self {
        let site = &config.site;
        let ttl_minutes = spec
            .refresh
            .typical_interval(&site.timezone)
            .map_or(60, |d| d.num_minutes().clamp(1, i64::from(u32::MAX)) as u32);
        let mut categories: Vec<String> = Vec::new();
        for c in spec.sections.iter().chain(&spec.tags) {
            if !categories.contains(c) {
                categories.push(c.clone());
            }
        }
        Self {
            name: spec.name.clone(),
            title: spec.title.clone(),
            description: spec
                .description
                .clone()
                .or_else(|| site.description.clone())
                .unwrap_or_else(|| format!("{}: {}", site.title, spec.title)),
            site_title: site.title.clone(),
            site_url: site.url.clone(),
            base_url: config.server.base_url.clone(),
            language: site.language.clone(),
            rights: site.rights.clone(),
            logo: site.logo.clone(),
            icon: site.icon.clone(),
            timezone: site.timezone,
            ttl_minutes,
            categories,
            tag_authority: config
                .server
                .base_url
                .host_str()
                .unwrap_or("localhost")
                .to_owned(),
        }
    }

    /// The URL this feed is served at in `format`: `{base_url}/feeds/{name}.{ext}`.
    pub fn self_url(&self, format: Format) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}/feeds/{}.{}", self.name, format.extension())
    }
}

/// A strong HTTP entity tag: `"` + the 128-bit XXH3 hash (`xxh3_128`, seed 0)
/// of the exact bytes served, as 32 lower-case hex digits, + `"`. Specified
/// rather than `DefaultHasher` so every replica and every release computes the
/// same tag; XXH3 rather than SHA-256 because tagging a 45 MB feed with SHA-256
/// cost a seventh of its build time, and an ETag needs no collision resistance
/// against an attacker (the bytes are our own).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// The tag of exactly these bytes.
    pub fn of(bytes: &[u8]) -> Self {
        Self::from_digest(xxhash_rust::xxh3::xxh3_128(bytes))
    }

    /// The tag of bytes whose 128-bit XXH3 is `digest` (hashed in pieces by
    /// a caller that never holds them whole).
    pub fn from_digest(digest: u128) -> Self {
        Self(format!("\"{digest:032x}\""))
    }

    /// The tag with its quotes, as sent in the `ETag` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One finished document: the exact bytes to serve and what the server needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Which of the three formats this is.
    pub format: Format,
    /// The exact bytes to send, uncompressed.
    pub body: Bytes,
    /// The `Content-Type` header value for `format`.
    pub content_type: &'static str,
    /// The strong ETag of `body`.
    pub etag: ETag,
    /// The newest `updated_at` among the items ([`EMPTY_FEED_UPDATED`] if none).
    pub last_modified: DateTime<Utc>,
}

impl Document {
    fn new(format: Format, body: Vec<u8>, last_modified: DateTime<Utc>) -> Self {
        Self {
            format,
            etag: ETag::of(&body),
            body: Bytes::from(body),
            content_type: content_type(format),
            last_modified,
        }
    }
}

/// The `Content-Type` a document of `format` is served with.
pub fn content_type(format: Format) -> &'static str {
    match format {
        Format::Rss => "application/rss+xml; charset=utf-8",
        Format::Atom => "application/atom+xml; charset=utf-8",
        Format::Json => "application/feed+json; charset=utf-8",
    }
}

/// Why a document could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The serialiser failed on this feed and format.
    #[error("feed {feed}: writing {format:?}: {message}")]
    Write {
        /// The feed being built.
        feed: FeedName,
        /// The document that failed.
        format: Format,
        /// The serialiser's own words.
        message: String,
    },
    /// The [`ItemSink`] a streamed build handed its items to refused them.
    #[error("feed {feed}: handing on {format:?} items: {source}")]
    Sink {
        /// The feed being built.
        feed: FeedName,
        /// The document whose items were refused.
        format: Format,
        /// The sink's reason.
        source: std::io::Error,
    },
}

/// An article made safe to render: every string free of characters XML 1.0
/// forbids, the body's relative URLs resolved against the article URL, and the
/// identity and dates each format needs computed once. Text that needs no
/// change is borrowed from the article, not copied.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// `tag:{host},{YYYY-MM-DD}:{id}`: RSS `guid`, Atom `id`, JSON `id`.
    pub tag: String,
    /// The article's page (absolute, as validated).
    pub url: &'a str,
    /// Title text, cleaned.
    pub headline: Cow<'a, str>,
    /// Summary text, cleaned; `None` when missing or blank.
    pub standfirst: Option<Cow<'a, str>>,
    /// The body with URLs resolved and, when the article has related links, a
    /// "Related" list appended (RSS and JSON carry related links that way).
    pub content_with_related: Option<Cow<'a, str>>,
    /// How many bytes of `content_with_related` are the body itself (Atom uses
    /// `link rel="related"` instead of the appended list).
    pub body_len: usize,
    /// Bylines, cleaned.
    pub authors: Vec<EntryAuthor<'a>>,
    /// The source, cleaned.
    pub source: Option<EntrySource<'a>>,
    /// The section then the tags, without repeats.
    pub categories: Vec<Cow<'a, str>>,
    /// The section alone, for JSON Feed's extension.
    pub section: Option<Cow<'a, str>>,
    /// The lead image, cleaned.
    pub image: Option<EntryImage<'a>>,
    /// Related links, cleaned (Atom writes them as `link rel="related"`).
    pub related: Vec<EntryLink<'a>>,
    /// First publication, for ordering and `published` / `pubDate`.
    pub published_at: DateTime<Utc>,
    /// Last change, for `updated` / `dcterms:modified`.
    pub updated_at: DateTime<Utc>,
    /// The article id, for JSON Feed's `_feedsmith.article_id`.
    pub id: &'a str,
}

/// A byline ready to render.
#[derive(Debug, Clone)]
pub struct EntryAuthor<'a> {
    /// Cleaned name.
    pub name: Cow<'a, str>,
    /// Cleaned address.
    pub email: Option<Cow<'a, str>>,
    /// The author's page.
    pub url: Option<&'a str>,
}

/// An article's source ready to render.
#[derive(Debug, Clone)]
pub struct EntrySource<'a> {
    /// Cleaned name.
    pub name: Cow<'a, str>,
    /// Cleaned rights line.
    pub rights: Option<Cow<'a, str>>,
    /// The source's page.
    pub url: Option<&'a str>,
}

/// A lead image ready to render.
#[derive(Debug, Clone)]
pub struct EntryImage<'a> {
    /// The image file's URL.
    pub url: &'a str,
    /// Cleaned caption (`media:description`).
    pub caption: Option<Cow<'a, str>>,
    /// Cleaned credit (`media:credit`).
    pub credit: Option<Cow<'a, str>>,
    /// MIME type for the enclosure: as given, or guessed from the URL.
    pub mime_type: &'a str,
    /// Size in bytes, when known.
    pub length: Option<u64>,
}

/// A related link ready to render.
#[derive(Debug, Clone)]
pub struct EntryLink<'a> {
    /// Cleaned link text.
    pub title: Cow<'a, str>,
    /// The linked story's URL.
    pub url: &'a str,
}

/// Text as every format carries it: without characters XML 1.0 forbids, and
/// with CR LF and lone CR as LF. XML parsers turn line ends into LF anyway
/// (XML 1.0 §2.11), even inside CDATA, so doing it here keeps the three formats
/// saying exactly the same thing. Clean text is borrowed.
fn clean(s: &str) -> Cow<'_, str> {
    let scan = scan_text(s);
    if !scan.forbidden && !scan.carriage_return {
        return Cow::Borrowed(s);
    }
    let text = if scan.forbidden {
        strip_forbidden(s.to_owned()).0
    } else {
        s.to_owned()
    };
    Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
}

fn clean_opt(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(clean).filter(|s| !s.trim().is_empty())
}

impl<'a> Entry<'a> {
    /// Makes `article` safe to render; see [`Entry`].
    pub fn prepare(article: &'a Article) -> Self {
        let body = clean_opt(&article.body_html).map(|b| html::resolve_urls(b, &article.url));
        let related: Vec<EntryLink<'a>> = article
            .related
            .iter()
            .map(|r| EntryLink {
                title: clean(&r.title),
                url: r.url.as_str(),
            })
            .collect();
        let body_len = body.as_ref().map_or(0, |b| b.len());
        let content_with_related = if related.is_empty() {
            body
        } else {
            let mut content = String::with_capacity(body_len + 64 + related.len() * 160);
            content.push_str(body.as_deref().unwrap_or_default());
            html::append_related(&mut content, &related);
            Some(Cow::Owned(content))
        };
        let section = clean_opt(&article.section);
        let mut categories: Vec<Cow<'a, str>> = Vec::with_capacity(1 + article.tags.len());
        for c in section
            .iter()
            .cloned()
            .chain(article.tags.iter().map(|t| clean(t)))
        {
            if !c.trim().is_empty() && !categories.contains(&c) {
                categories.push(c);
            }
        }
        Self {
            tag: String::new(),
            url: article.url.as_str(),
            headline: clean(&article.headline),
            standfirst: clean_opt(&article.standfirst),
            content_with_related,
            body_len,
            authors: article
                .authors
                .iter()
                .map(|a| EntryAuthor {
                    name: clean(&a.name),
                    email: clean_opt(&a.email),
                    url: a.url.as_ref().map(Url::as_str),
                })
                .collect(),
            source: article.source.as_ref().map(|s| EntrySource {
                name: clean(&s.name),
                rights: clean_opt(&s.rights),
                url: s.url.as_ref().map(Url::as_str),
            }),
            categories,
            section,
            image: article.image.as_ref().map(|i| EntryImage {
                url: i.url.as_str(),
                caption: clean_opt(&i.caption),
                credit: clean_opt(&i.credit),
                mime_type: image_type(i),
                length: i.length,
            }),
            related,
            published_at: article.published_at,
            updated_at: article.updated_at,
            id: article.id.as_str(),
        }
    }

    /// The body alone, for Atom.
    pub fn body(&self) -> Option<&str> {
        self.content_with_related
            .as_deref()
            .map(|c| &c[..self.body_len])
            .filter(|b| !b.is_empty())
    }
}

/// The `tag:` URI (RFC 4151) of an article: the service's host, the UTC date
/// the article was first published, and its id. It never involves the URL,
/// headline or body, so editing those never duplicates the item in a reader.
pub fn tag_uri(authority: &str, article: &Article) -> String {
    tag(authority, article.published_at, &article.id)
}

/// The `tag:` URI standing for the id of a source that has no URL of its
/// own (Atom `source/id`): minted under our authority on the day the entry
/// was first published, as the entry's own id is, with the source's name
/// percent-encoded: stable across rebuilds, the same for every entry of that
/// source published that day.
pub fn source_tag_uri(authority: &str, entry: &Entry<'_>, name: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    tag(authority, entry.published_at, format_args!("source:{name}"))
}

/// `tag:{authority},{UTC date of at}:{specific}` (RFC 4151).
fn tag(authority: &str, at: DateTime<Utc>, specific: impl fmt::Display) -> String {
    use chrono::Datelike;
    let day = writable(at).date_naive();
    format!(
        "tag:{authority},{:04}-{:02}-{:02}:{specific}",
        day.year(),
        day.month(),
        day.day(),
    )
}

/// Feed order: newest first; equal publish times by id, descending — the same
/// order the store selects in, so input order never matters.
fn sort_newest_first(articles: &mut [&Article]) {
    articles.sort_by(|a, b| {
        b.published_at
            .cmp(&a.published_at)
            .then_with(|| b.id.cmp(&a.id))
    });
}

/// The prepared entries of a feed, in feed order, with the feed's last-modified instant.
pub struct Prepared<'a> {
    /// The entries, newest first.
    pub entries: Vec<Entry<'a>>,
    /// The feed-level date: the newest `updated_at`, or the epoch for an empty feed.
    pub updated: DateTime<Utc>,
    /// The sum of the entries' text sizes, to size output buffers once.
    pub text_bytes: usize,
}

/// One article of `meta`'s feed made safe to render, with its `tag:` URI.
fn entry<'a>(meta: &FeedMeta, article: &'a Article) -> Entry<'a> {
    let mut e = Entry::prepare(article);
    e.tag = tag_uri(&meta.tag_authority, article);
    e
}

/// The entries' text sizes added up, to size output buffers once.
fn text_bytes(entries: &[Entry<'_>]) -> usize {
    entries
        .iter()
        .map(|e| {
            e.content_with_related.as_ref().map_or(0, |c| c.len())
                + e.standfirst.as_ref().map_or(0, |s| s.len())
                + e.headline.len()
        })
        .sum()
}

/// Sorts, sanitises and resolves the articles once for every format.
pub fn prepare<'a>(meta: &FeedMeta, articles: &'a [Article]) -> Prepared<'a> {
    let mut ordered: Vec<&Article> = articles.iter().collect();
    sort_newest_first(&mut ordered);
    let entries: Vec<Entry<'a>> = ordered.into_iter().map(|a| entry(meta, a)).collect();
    let updated = entries
        .iter()
        .map(|e| e.updated_at)
        .max()
        .unwrap_or(EMPTY_FEED_UPDATED);
    let text_bytes = text_bytes(&entries);
    Prepared {
        entries,
        updated,
        text_bytes,
    }
}

/// Builds one format of a feed.
pub fn build_format(
    meta: &FeedMeta,
    prepared: &Prepared<'_>,
    format: Format,
) -> Result<Document, BuildError> {
    let body = match format {
        Format::Rss => rss::render(meta, prepared),
        Format::Atom => atom::render(meta, prepared),
        Format::Json => json::render(meta, prepared),
    }
    .map_err(|message| BuildError::Write {
        feed: meta.name.clone(),
        format,
        message,
    })?;
    Ok(Document::new(format, body, prepared.updated))
}

/// Builds every requested format of a feed from its articles.
pub fn build(
    meta: &FeedMeta,
    articles: &[Article],
    formats: &[Format],
) -> Result<Vec<Document>, BuildError> {
    let mut docs = Vec::with_capacity(formats.len());
    build_each(meta, articles, formats, |doc| {
        docs.push(doc);
        Ok::<_, BuildError>(())
    })?;
    Ok(docs)
}

/// [`build`], handing each document to `done` as soon as it is finished (in
/// `formats` order), so a caller can write one to disk while the next is
/// rendered. Stops at the first error, the builder's or `done`'s.
pub fn build_each<E: From<BuildError>>(
    meta: &FeedMeta,
    articles: &[Article],
    formats: &[Format],
    mut done: impl FnMut(Document) -> Result<(), E>,
) -> Result<(), E> {
    let prepared = prepare(meta, articles);
    for &format in formats {
        done(build_format(meta, &prepared, format)?)?;
    }
    Ok(())
}

/// RFC 3339 in the site's zone, whole seconds unless the time has fractions.
pub(crate) fn rfc3339(t: DateTime<Utc>, zone: Tz) -> String {
    writable(t)
        .with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// RFC 822 (as updated by RFC 1123/2822) with a numeric offset in the site's
/// zone and a two-digit day: `Tue, 29 Sep 2015 12:50:00 +0100`.
pub(crate) fn rfc822(t: DateTime<Utc>, zone: Tz) -> String {
    writable(t)
        .with_timezone(&zone)
        .format("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// `t`, moved into the range every format can write in every zone: years of
/// four digits even a day's offset away (0000-01-02 to 9999-12-30 in UTC).
/// Import refuses times outside 0000–9999, but a CMS writing rows directly is
/// not validated, and chrono would write `+10000-…`, which no reader parses.
pub(crate) fn writable(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = |y, m, d| {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
    };
    match (day(0, 1, 2), day(9999, 12, 31)) {
        (Some(first), Some(last_day)) => t.clamp(first, last_day - chrono::Duration::seconds(1)),
        _ => t,
    }
}

/// The media type of an image: as given, or guessed from the URL's extension.
pub(crate) fn image_type(image: &Image) -> &str {
    if let Some(m) = image.mime_type.as_deref() {
        return m;
    }
    let path = image.url.path().to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
mod tests;
