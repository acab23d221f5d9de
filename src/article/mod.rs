//! The article model: what a newsroom hands us, validated once at the edge.
//!
//! This module owns the typed [`Article`] that every other module trusts, the
//! JSON import shape of `docs/contract.md` §3 ([`RawArticle`]) and the rules
//! that turn one into the other. It does no I/O: reading files is `import`'s
//! job and keeping articles is `store`'s. Everything an article can be wrong
//! about is reported here, naming the field, so nothing downstream has to
//! re-check it.

mod sanitize;
mod time;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use url::Url;

pub use sanitize::{TextScan, has_forbidden, is_xml_char, scan_text, strip_forbidden};
pub use time::{TimeError, parse_time};

/// Longest accepted article id, per `docs/contract.md` §3.
pub const MAX_ID_LEN: usize = 128;

/// A stable article identifier: `[A-Za-z0-9._-]{1,128}`.
///
/// It is the article's identity forever (RSS `guid`, Atom `id`), so it is
/// checked once here and never rewritten.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ArticleId(String);

impl ArticleId {
    /// The id as written, for queries, URIs and messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ArticleId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        if s.len() > MAX_ID_LEN {
            return Err(format!(
                "is {} characters long, at most {MAX_ID_LEN} allowed",
                s.len()
            ));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(format!(
                "contains {bad:?}; only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for ArticleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ArticleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether an article may appear in feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Listed in feeds (the default when an import gives no status).
    #[default]
    Published,
    /// Kept in the store but not yet in any feed.
    Draft,
    /// Taken out of every feed; the replacement for deleting, which the store refuses.
    Withdrawn,
}

impl Status {
    /// The spelling used in the import format and the store's `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Draft => "draft",
            Status::Withdrawn => "withdrawn",
        }
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "published" => Ok(Status::Published),
            "draft" => Ok(Status::Draft),
            "withdrawn" => Ok(Status::Withdrawn),
            other => Err(format!(
                "unknown status {other:?}, expected \"published\", \"draft\" or \"withdrawn\""
            )),
        }
    }
}

/// A byline: who wrote the article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// The name shown in feeds and matched by author filters.
    pub name: String,
    /// Contact address, written into Atom's `author/email`.
    pub email: Option<String>,
    /// The author's page, written into Atom's `author/uri` and JSON Feed.
    pub url: Option<Url>,
}

/// The agency or outlet an article comes from, with its rights line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The agency or outlet's name (RSS `source`, Atom `source/title`).
    pub name: String,
    /// Copyright line for this article (RSS `dc:rights`, Atom `rights`).
    pub rights: Option<String>,
    /// The source's home page.
    pub url: Option<Url>,
}

/// The article's lead image, sent as an enclosure and media element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Absolute URL of the image file.
    pub url: Url,
    /// What the image shows (`media:description`).
    pub caption: Option<String>,
    /// Who took it (`media:credit role="photographer"`).
    pub credit: Option<String>,
    /// Its MIME type, such as `image/jpeg`, for the enclosure.
    pub mime_type: Option<String>,
    /// Its size in bytes, for the enclosure's `length`.
    pub length: Option<u64>,
}

/// A link to an earlier or related story.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Related {
    /// The link text.
    pub title: String,
    /// Absolute URL of the related story.
    pub url: Url,
}

/// A validated article. Times are instants; the site timezone is only needed
/// again when a builder renders them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Stable identity; never changes once imported.
    pub id: ArticleId,
    /// The article's page on the newsroom's site.
    pub url: Url,
    /// Plain-text title.
    pub headline: String,
    /// Plain-text summary.
    pub standfirst: Option<String>,
    /// The body as an HTML fragment, as the newsroom wrote it.
    pub body_html: Option<String>,
    /// Bylines in the order given.
    pub authors: Vec<Author>,
    /// The agency or outlet the story comes from, if not the newsroom's own.
    pub source: Option<Source>,
    /// The desk the story belongs to; section feeds filter on it.
    pub section: Option<String>,
    /// Keywords, first spelling kept when repeated case-insensitively.
    pub tags: Vec<String>,
    /// The lead image, if any.
    pub image: Option<Image>,
    /// Links to related stories.
    pub related: Vec<Related>,
    /// When the article was first published; feeds are ordered by it.
    pub published_at: DateTime<Utc>,
    /// When it last changed; never before `published_at`.
    pub updated_at: DateTime<Utc>,
    /// Whether it may appear in feeds.
    pub status: Status,
}

/// The import shape of `docs/contract.md` §3, exactly as serde reads it.
/// Unknown fields are refused so a misspelt `updated_at` is an error, not a
/// silently missing date.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArticle {
    /// See [`Article::id`]; required.
    pub id: Option<String>,
    /// See [`Article::url`]; required.
    pub url: Option<String>,
    /// See [`Article::headline`]; required.
    pub headline: Option<String>,
    /// See [`Article::standfirst`].
    pub standfirst: Option<String>,
    /// See [`Article::body_html`].
    pub body_html: Option<String>,
    /// See [`Article::authors`].
    #[serde(default)]
    pub authors: Option<Vec<RawAuthor>>,
    /// See [`Article::source`].
    pub source: Option<RawSource>,
    /// See [`Article::section`].
    pub section: Option<String>,
    /// See [`Article::tags`].
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// See [`Article::image`].
    pub image: Option<RawImage>,
    /// See [`Article::related`].
    #[serde(default)]
    pub related: Option<Vec<RawRelated>>,
    /// RFC 3339, or without an offset to be read in the site's timezone; required.
    pub published_at: Option<String>,
    /// As `published_at`; defaults to it.
    pub updated_at: Option<String>,
    /// `published`, `draft` or `withdrawn`; defaults to `published`.
    pub status: Option<String>,
}

/// An author as the import file gives it, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthor {
    /// Required and not blank.
    pub name: Option<String>,
    /// Must look like an address when given.
    pub email: Option<String>,
    /// An absolute `http(s)` URL when given.
    pub url: Option<String>,
}

/// A source as the import file gives it, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Required and not blank.
    pub name: Option<String>,
    /// Free text.
    pub rights: Option<String>,
    /// An absolute `http(s)` URL when given.
    pub url: Option<String>,
}

/// An image as the import file gives it, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Required; an absolute `http(s)` URL.
    pub url: Option<String>,
    /// Free text.
    pub caption: Option<String>,
    /// Free text.
    pub credit: Option<String>,
    /// Must look like `type/subtype` when given.
    pub mime_type: Option<String>,
    /// Size in bytes.
    pub length: Option<u64>,
}

/// A related link as the import file gives it, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRelated {
    /// Required and not blank.
    pub title: Option<String>,
    /// Required; an absolute `http(s)` URL.
    pub url: Option<String>,
}

/// One thing wrong with one field of an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field, such as `authors[1].email`.
    pub field: String,
    /// What is wrong with it, lower case, as shown to the person importing.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A validated article and how many characters XML 1.0 forbids were removed from it.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The article, ready to store.
    pub article: Article,
    /// How many forbidden characters were removed, for the import summary.
    pub removed_chars: usize,
}

/// Everything needed to interpret a raw article.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext {
    /// Zone for times written without an offset.
    pub timezone: Tz,
}

/// Collects field errors and removed-character counts while one article is checked.
struct Checker {
    errors: Vec<FieldError>,
    removed: usize,
}

impl Checker {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Text as stored: exactly as given except for characters XML 1.0 cannot carry.
    fn text(&mut self, value: String) -> String {
        let (clean, removed) = strip_forbidden(value);
        self.removed += removed;
        clean
    }

    fn required_text(&mut self, field: &str, value: Option<String>) -> Option<String> {
        match value {
            None => {
                self.error(field, "is required");
                None
            }
            Some(v) => {
                let v = self.text(v);
                if v.trim().is_empty() {
                    self.error(field, "must not be empty");
                    None
                } else {
                    Some(v)
                }
            }
        }
    }

    /// Optional text; an empty or all-blank string means "not given".
    fn optional_text(&mut self, value: Option<String>) -> Option<String> {
        value.map(|v| self.text(v)).filter(|v| !v.trim().is_empty())
    }

    fn http_url(&mut self, field: &str, value: &str) -> Option<Url> {
        match parse_http_url(value) {
            Ok(url) => Some(url),
            Err(e) => {
                self.error(field, e);
                None
            }
        }
    }

    fn required_url(&mut self, field: &str, value: Option<String>) -> Option<Url> {
        match value {
            None => {
                self.error(field, "is required");
                None
            }
            Some(v) => self.http_url(field, &v),
        }
    }

    fn optional_url(&mut self, field: &str, value: Option<String>) -> Option<Url> {
        match value.filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(v) => self.http_url(field, &v),
        }
    }
}

/// Parses an absolute `http`/`https` URL, the only kind a feed reader can follow.
pub fn parse_http_url(value: &str) -> Result<Url, String> {
    let url =
        Url::parse(value.trim()).map_err(|e| format!("{value:?} is not an absolute URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        "http" | "https" => Err(format!("{value:?} has no host")),
        other => Err(format!(
            "{value:?} uses scheme {other:?}; only http and https are allowed"
        )),
    }
}

impl RawArticle {
    /// Validates every field, reporting all problems at once.
    pub fn validate(self, ctx: ValidationContext) -> Result<Checked, Vec<FieldError>> {
        let mut c = Checker {
            errors: Vec::new(),
            removed: 0,
        };

        let id = match self.id {
            None => {
                c.error("id", "is required");
                None
            }
            Some(raw) => match raw.parse::<ArticleId>() {
                Ok(id) => Some(id),
                Err(e) => {
                    c.error("id", e);
                    None
                }
            },
        };
        let url = c.required_url("url", self.url);
        let headline = c.required_text("headline", self.headline);
        let standfirst = c.optional_text(self.standfirst);
        let body_html = c.optional_text(self.body_html);

        let mut authors = Vec::new();
        for (i, raw) in self.authors.unwrap_or_default().into_iter().enumerate() {
            let name = c.required_text(&format!("authors[{i}].name"), raw.name);
            let email = c.optional_text(raw.email);
            if let Some(email) = &email
                && !looks_like_email(email)
            {
                c.error(
                    format!("authors[{i}].email"),
                    format!("{email:?} is not an email address"),
                );
            }
            let url = c.optional_url(&format!("authors[{i}].url"), raw.url);
            if let Some(name) = name {
                authors.push(Author { name, email, url });
            }
        }

        let source = match self.source {
            None => None,
            Some(raw) => {
                let name = c.required_text("source.name", raw.name);
                let rights = c.optional_text(raw.rights);
                let url = c.optional_url("source.url", raw.url);
                name.map(|name| Source { name, rights, url })
            }
        };

        let section = c.optional_text(self.section);

        let mut tags: Vec<String> = Vec::new();
        for (i, tag) in self.tags.unwrap_or_default().into_iter().enumerate() {
            let tag = c.text(tag);
            if tag.trim().is_empty() {
                c.error(format!("tags[{i}]"), "must not be empty");
            } else if !tags.iter().any(|t| match_key(t) == match_key(&tag)) {
                // A repeated tag would be a repeated <category>; keep the first spelling.
                tags.push(tag);
            }
        }

        let image = match self.image {
            None => None,
            Some(raw) => {
                let url = c.required_url("image.url", raw.url);
                let caption = c.optional_text(raw.caption);
                let credit = c.optional_text(raw.credit);
                let mime_type = c.optional_text(raw.mime_type);
                if let Some(m) = &mime_type
                    && !looks_like_mime(m)
                {
                    c.error(
                        "image.mime_type",
                        format!("{m:?} is not a media type such as \"image/jpeg\""),
                    );
                }
                url.map(|url| Image {
                    url,
                    caption,
                    credit,
                    mime_type,
                    length: raw.length,
                })
            }
        };

        let mut related = Vec::new();
        for (i, raw) in self.related.unwrap_or_default().into_iter().enumerate() {
            let title = c.required_text(&format!("related[{i}].title"), raw.title);
            let url = c.required_url(&format!("related[{i}].url"), raw.url);
            if let (Some(title), Some(url)) = (title, url) {
                related.push(Related { title, url });
            }
        }

        let published_at = match self.published_at {
            None => {
                c.error("published_at", "is required");
                None
            }
            Some(raw) => match parse_time(&raw, ctx.timezone) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.error("published_at", e.to_string());
                    None
                }
            },
        };
        let updated_at = match self.updated_at.filter(|s| !s.trim().is_empty()) {
            None => published_at,
            Some(raw) => match parse_time(&raw, ctx.timezone) {
                Ok(t) => Some(t),
                Err(e) => {
                    c.error("updated_at", e.to_string());
                    None
                }
            },
        };
        if let (Some(p), Some(u)) = (published_at, updated_at)
            && u < p
        {
            c.error(
                "updated_at",
                format!(
                    "{} is before published_at {}",
                    u.to_rfc3339(),
                    p.to_rfc3339()
                ),
            );
        }

        let status = match self.status {
            None => Some(Status::Published),
            Some(s) => match s.parse::<Status>() {
                Ok(s) => Some(s),
                Err(e) => {
                    c.error("status", e);
                    None
                }
            },
        };

        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        match (id, url, headline, published_at, updated_at, status) {
            (
                Some(id),
                Some(url),
                Some(headline),
                Some(published_at),
                Some(updated_at),
                Some(status),
            ) => Ok(Checked {
                article: Article {
                    id,
                    url,
                    headline,
                    standfirst,
                    body_html,
                    authors,
                    source,
                    section,
                    tags,
                    image,
                    related,
                    published_at,
                    updated_at,
                    status,
                },
                removed_chars: c.removed,
            }),
            // Every `None` above recorded an error, so this arm is unreachable in
            // practice; it stays an error rather than a panic.
            _ => Err(vec![FieldError {
                field: "article".into(),
                message: "is incomplete".into(),
            }]),
        }
    }
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| c.is_whitespace() || c == '<' || c == '>')
        }
        None => false,
    }
}

fn looks_like_mime(s: &str) -> bool {
    let token = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    match s.split_once('/') {
        Some((top, sub)) => token(top) && token(sub),
        None => false,
    }
}

/// The form in which sections, tags and author names are compared when a feed
/// filters on them: trimmed and lower-cased, so `"World"`, `"world"` and
/// `" World "` select the same articles.
pub fn match_key(s: &str) -> String {
    s.trim().to_lowercase()
}

/// What a feed selects: an article must match every non-empty list, and within
/// one list any value. Values are held as [`match_key`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ArticleFilter {
    /// Sections to match, any of them; empty means every section.
    pub sections: Vec<String>,
    /// Tags to match, any of them; empty means no tag filter.
    pub tags: Vec<String>,
    /// Author names to match, any of them; empty means no author filter.
    pub authors: Vec<String>,
}

impl ArticleFilter {
    /// Builds a filter from admin-written values, normalising and de-duplicating them.
    pub fn new(sections: &[String], tags: &[String], authors: &[String]) -> Self {
        fn keys(values: &[String]) -> Vec<String> {
            let mut out: Vec<String> = values.iter().map(|v| match_key(v)).collect();
            out.sort();
            out.dedup();
            out
        }
        Self {
            sections: keys(sections),
            tags: keys(tags),
            authors: keys(authors),
        }
    }

    /// Whether a published article belongs in a feed with this filter. The store
    /// answers the same question with indexes; this is for deciding which feeds a
    /// changed article touches.
    pub fn matches(&self, article: &Article) -> bool {
        let section_ok = self.sections.is_empty()
            || article
                .section
                .as_deref()
                .is_some_and(|s| self.sections.contains(&match_key(s)));
        let tags_ok = self.tags.is_empty()
            || article
                .tags
                .iter()
                .any(|t| self.tags.contains(&match_key(t)));
        let authors_ok = self.authors.is_empty()
            || article
                .authors
                .iter()
                .any(|a| self.authors.contains(&match_key(&a.name)));
        section_ok && tags_ok && authors_ok
    }
}

#[cfg(test)]
mod tests;
