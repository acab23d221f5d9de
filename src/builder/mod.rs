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

use crate::article::{Article, ArticleId, Image, scan_text, strip_forbidden};
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
    /// WebSub hubs advertised in the documents: ours first, then the
    /// external ones; empty while `[websub]` is off.
    pub hubs: Vec<String>,
    /// Where this document sits in the feed's RFC 5005 archive, if it has one.
    pub paging: Paging,
}

/// A document's place in its feed's archive (RFC 5005 §4), which decides
/// its paging links. Pages are numbered from 1, the oldest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Paging {
    /// A feed without an archive (or one with nothing archived yet).
    #[default]
    None,
    /// The subscription document of an archived feed: `prev-archive` is
    /// page `newest_page`.
    Subscription {
        /// The newest archive page.
        newest_page: u32,
    },
    /// Archive page `page`: marked `fh:archive`, linking `current` (the
    /// subscription document), `prev-archive` (the page before, if any)
    /// and `next-archive` (the page after, unless it is the newest).
    Archive {
        /// This page.
        page: u32,
        /// The newest archive page.
        newest_page: u32,
    },
}

/// RFC 5005's namespace for `archive`.
pub const HISTORY_NS: &str = "http://purl.org/syndication/history/1.0";

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
            hubs: hub_urls(config),
            paging: Paging::None,
        }
    }

    /// Archive page `page` of this feed in `format`:
    /// `{base_url}/feeds/{name}/archive/{page}.{ext}`.
    pub fn archive_url(&self, page: u32, format: Format) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!(
            "{base}/feeds/{}/archive/{page}.{}",
            self.name,
            format.extension()
        )
    }

    /// Where this document itself is served: its archive page's URL, or
    /// the feed's.
    pub fn document_url(&self, format: Format) -> String {
        match self.paging {
            Paging::Archive { page, .. } => self.archive_url(page, format),
            _ => self.self_url(format),
        }
    }

    /// The RFC 5005 links of this document in `format`, as (rel, URL).
    pub fn paging_links(&self, format: Format) -> Vec<(&'static str, String)> {
        match self.paging {
            Paging::None => Vec::new(),
            Paging::Subscription { newest_page } => {
                vec![("prev-archive", self.archive_url(newest_page, format))]
            }
            Paging::Archive { page, newest_page } => {
                let mut links = vec![("current", self.self_url(format))];
                if page > 1 {
                    links.push(("prev-archive", self.archive_url(page - 1, format)));
                }
                if page < newest_page {
                    links.push(("next-archive", self.archive_url(page + 1, format)));
                }
                links
            }
        }
    }

    /// The URL this feed is served at in `format`: `{base_url}/feeds/{name}.{ext}`.
    pub fn self_url(&self, format: Format) -> String {
        let base = self.base_url.as_str().trim_end_matches('/');
        format!("{base}/feeds/{}.{}", self.name, format.extension())
    }
}

/// The hubs a feed advertises: `{base_url}/websub`, then `[websub].hubs`;
/// none while WebSub is off.
pub fn hub_urls(config: &Config) -> Vec<String> {
    if !config.websub.enabled {
        return Vec::new();
    }
    let base = config.server.base_url.as_str().trim_end_matches('/');
    std::iter::once(format!("{base}/websub"))
        .chain(config.websub.hubs.iter().map(|h| h.to_string()))
        .collect()
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
    /// The withdrawn articles the Atom document marks as deleted (RFC 6721).
    pub tombstones: &'a [Tombstone],
    /// The feed-level date: the newest `updated_at` or tombstone, or the
    /// epoch for an empty feed.
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
    prepare_with(meta, articles, &[])
}

/// [`prepare`], with the tombstones of withdrawn articles the feed listed.
/// A withdrawal changes the documents, so it counts as an update: the
/// feed-level date (and `Last-Modified`) is the newest of the entries'
/// `updated_at` and the tombstones' `withdrawn_at`.
pub fn prepare_with<'a>(
    meta: &FeedMeta,
    articles: &'a [Article],
    tombstones: &'a [Tombstone],
) -> Prepared<'a> {
    let mut ordered: Vec<&Article> = articles.iter().collect();
    sort_newest_first(&mut ordered);
    let entries: Vec<Entry<'a>> = ordered.into_iter().map(|a| entry(meta, a)).collect();
    let newest = entries.iter().map(|e| e.updated_at).max();
    let updated = newest
        .max(tombstones.iter().map(|t| t.withdrawn_at).max())
        .unwrap_or(EMPTY_FEED_UPDATED);
    let text_bytes = text_bytes(&entries);
    Prepared {
        entries,
        tombstones,
        updated,
        text_bytes,
    }
}

/// A withdrawn article that a feed listed, marked as deleted in the feed's
/// Atom document (RFC 6721 `at:deleted-entry`) so aggregators that fetched
/// it drop it. RSS and JSON Feed have no such element: there the article
/// only leaves the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The article's id (its entry id is the `tag:` URI made of it).
    pub id: ArticleId,
    /// When it was first published (the date in its `tag:` URI).
    pub published_at: DateTime<Utc>,
    /// When the store saw it withdrawn: the tombstone's `when`.
    pub withdrawn_at: DateTime<Utc>,
}

impl Tombstone {
    /// The entry id the article had: what the tombstone's `ref` names.
    pub fn tag(&self, authority: &str) -> String {
        tag(authority, self.published_at, &self.id)
    }
}

/// What [`tombstones_to_show`] needs to know of a feed's listed articles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// How many articles it lists.
    pub count: u64,
    /// The feed-order key (published, id) of the oldest one.
    pub oldest: Option<(DateTime<Utc>, ArticleId)>,
    /// The newest `updated_at` among them.
    pub newest_update: Option<DateTime<Utc>>,
}

impl Window {
    /// The window of these listed articles, in any order.
    pub fn of(listed: &[Article]) -> Self {
        Self {
            count: listed.len() as u64,
            oldest: listed
                .iter()
                .map(|a| (a.published_at, &a.id))
                .min()
                .map(|(at, id)| (at, id.clone())),
            newest_update: listed.iter().map(|a| a.updated_at).max(),
        }
    }
}

/// Which withdrawn articles a feed shows as tombstones, newest withdrawal
/// first (then by id ascending, so the order is fixed).
///
/// `window` sums up what the feed lists now and `limit` is its size: a
/// candidate (withdrawn after being published, from the store's
/// `withdrawn` query) counts as listed before if it sorts within the window
/// (not older than the oldest listed item when the window is full). It is
/// kept for `period` after its withdrawal, measured not from the wall clock
/// but from the feed's own newest event (the newest `updated_at` listed or
/// withdrawal), so the same store contents give the same documents on every
/// replica and at every rebuild; a quiet feed keeps its last tombstones
/// until it moves on.
pub fn tombstones_to_show(
    window: &Window,
    limit: u32,
    candidates: Vec<Tombstone>,
    period: std::time::Duration,
) -> Vec<Tombstone> {
    let Ok(period) = chrono::Duration::from_std(period) else {
        return candidates;
    };
    if period.is_zero() {
        return Vec::new();
    }
    let full = window.count >= u64::from(limit);
    let oldest = window.oldest.as_ref().filter(|_| full);
    let mut within: Vec<Tombstone> = candidates
        .into_iter()
        .filter(|t| {
            oldest
                .as_ref()
                .is_none_or(|(at, id)| (t.published_at, &t.id) >= (*at, id))
        })
        .collect();
    let reference = window
        .newest_update
        .max(within.iter().map(|t| t.withdrawn_at).max());
    if let Some(reference) = reference {
        within.retain(|t| t.withdrawn_at >= reference - period);
    }
    within.sort_by(|a, b| {
        b.withdrawn_at
            .cmp(&a.withdrawn_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    within
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
    build_with(meta, articles, &[], formats)
}

/// [`build`], with the tombstones of withdrawn articles the feed listed
/// ([`tombstones_to_show`]).
pub fn build_with(
    meta: &FeedMeta,
    articles: &[Article],
    tombstones: &[Tombstone],
    formats: &[Format],
) -> Result<Vec<Document>, BuildError> {
    let prepared = prepare_with(meta, articles, tombstones);
    formats
        .iter()
        .map(|&format| build_format(meta, &prepared, format))
        .collect()
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
