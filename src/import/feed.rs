//! RSS 2.0 and Atom 1.0 documents read into the article import shape.
//!
//! This module owns telling a feed from other XML by its root element,
//! parsing it with the `rss` and `atom_syndication` crates, and mapping each
//! item or entry to a [`RawArticle`] as the README's mapping table says,
//! including the stable article id derived from the upstream guid. It is pure:
//! it reads no files and touches no store (that is `import`'s job), and it does
//! not validate articles (that is `article`'s): what a feed gets wrong about an
//! item is left for validation to report, except what only the feed can say
//! (a pubDate that is no RFC 822 date), which is returned beside the article.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset};
use lol_html::html_content::ContentType;
use lol_html::{RewriteStrSettings, doc_comments, element, rewrite_str};
use quick_xml::events::Event;
use sha2::{Digest, Sha256};

use crate::article::{
    ArticleId, RawArticle, RawAuthor, RawImage, RawRelated, RawSource, parse_http_url,
};

/// The Media RSS namespace (`media:content`, `media:credit`, ...).
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";
/// The DCMI terms namespace (`dcterms:modified`).
const DCTERMS_NS: &str = "http://purl.org/dc/terms/";
/// Longest readable part of a derived id; the hash after it keeps it unique.
const SLUG_LEN: usize = 64;
/// Hex digits of the guid's SHA-256 in a derived id (64 bits).
const HASH_LEN: usize = 16;

/// The two feed formats `import` reads, told apart by the root element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// An `<rss>` document (RSS 2.0).
    Rss,
    /// A `<feed>` document (Atom 1.0).
    Atom,
}

impl FeedKind {
    /// What one upstream article is called in this format, for positions.
    fn item_name(self) -> &'static str {
        match self {
            FeedKind::Rss => "item",
            FeedKind::Atom => "entry",
        }
    }

    /// What the upstream identifier is called in this format.
    fn id_name(self) -> &'static str {
        match self {
            FeedKind::Rss => "guid",
            FeedKind::Atom => "id",
        }
    }
}

/// Why a document could not be read as a feed at all.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The bytes are not well-formed XML before the root element is reached.
    #[error("not XML at line {line}: {message}")]
    NotXml {
        /// 1-based line where the XML parser stopped.
        line: usize,
        /// The XML parser's description of the problem.
        message: String,
    },
    /// The document has no root element.
    #[error("no root element; expected an RSS 2.0 <rss> or an Atom 1.0 <feed>")]
    NoRoot,
    /// The root element is not one of a feed.
    #[error("not an RSS 2.0 or Atom 1.0 feed: the root element is <{0}>")]
    NotAFeed(String),
    /// The root says RSS but the `rss` crate cannot read the document.
    #[error("not a valid RSS 2.0 feed: {0}")]
    Rss(#[source] rss::Error),
    /// The root says Atom but the `atom_syndication` crate cannot read the document.
    #[error("not a valid Atom 1.0 feed: {0}")]
    Atom(#[source] atom_syndication::Error),
    /// The document could not be read for another reason, said in full.
    #[error("{0}")]
    Unreadable(String),
}

/// One item or entry of a feed, mapped but not yet validated.
#[derive(Debug)]
pub struct FeedItem {
    /// Where it is, such as `item 3 at line 41 (guid "x")`, for rejections.
    pub position: String,
    /// The article in the JSON import shape, for `RawArticle::validate`.
    pub raw: RawArticle,
    /// What the feed itself gets wrong about the item (such as a pubDate that
    /// is no date), each as `field: message`; validation adds its own.
    pub problems: Vec<String>,
}

/// What is needed besides the document to map its items.
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedContext<'a> {
    /// The authority of the `tag:` URIs this service writes as guids (the host
    /// of `base_url`). An item whose guid is such a URI is one of our own
    /// articles, and keeps its id, so importing our own feeds is a fixed point.
    pub own_tag_authority: Option<&'a str>,
    /// What the importer says every item's credit and section are, whatever
    /// the feed says (a pulled source's `name`, `section` and `rights`).
    pub overrides: Option<&'a FeedOverrides>,
}

/// Values written into every item of a feed instead of what the feed says:
/// a pulled source's file sets them (README, "Pulled sources").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedOverrides {
    /// The article's source name (instead of the feed's title).
    pub source_name: Option<String>,
    /// The article's section (instead of its first category).
    pub section: Option<String>,
    /// The article's source rights (instead of the item's or the feed's).
    pub rights: Option<String>,
}

impl FeedOverrides {
    /// Writes these values over what `raw` was mapped with. A source credit is
    /// made when there was none, keeping the mapped URL when there was.
    pub fn apply(&self, raw: &mut RawArticle) {
        if let Some(section) = &self.section {
            raw.section = Some(section.clone());
        }
        if self.source_name.is_none() && self.rights.is_none() {
            return;
        }
        let credit = raw.source.get_or_insert(RawSource {
            name: None,
            rights: None,
            url: None,
        });
        if let Some(name) = &self.source_name {
            credit.name = Some(name.clone());
        }
        if let Some(rights) = &self.rights {
            credit.rights = Some(rights.clone());
        }
    }
}

/// Which feed format `bytes` is, by its root element (the XML declaration,
/// comments, processing instructions and a doctype may come first).
pub fn sniff(bytes: &[u8]) -> Result<FeedKind, FeedError> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => {
                let local = e.local_name();
                let name = String::from_utf8_lossy(local.as_ref()).into_owned();
                return match name.as_str() {
                    "rss" => Ok(FeedKind::Rss),
                    "feed" => Ok(FeedKind::Atom),
                    _ => Err(FeedError::NotAFeed(name)),
                };
            }
            Ok(Event::Eof) => return Err(FeedError::NoRoot),
            Ok(Event::Text(t)) if !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(FeedError::NotXml {
                    line: line_of(bytes, at),
                    message: "text before the root element".to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(at);
                return Err(FeedError::NotXml {
                    line: line_of(bytes, at),
                    message: e.to_string(),
                });
            }
        }
        buf.clear();
    }
}

/// Parses a feed document and maps every item or entry, in document order.
pub fn read_feed(bytes: &[u8], ctx: FeedContext<'_>) -> Result<Vec<FeedItem>, FeedError> {
    let kind = sniff(bytes)?;
    let mapped = match kind {
        FeedKind::Rss => {
            let channel = rss::Channel::read_from(bytes).map_err(FeedError::Rss)?;
            map_rss(&channel, ctx)
        }
        FeedKind::Atom => {
            let feed = atom_syndication::Feed::read_from(bytes).map_err(FeedError::Atom)?;
            map_atom(&feed, ctx)
        }
    };
    let lines = item_lines(bytes, kind);
    // Lines are only named when the scan found exactly the parser's items, so
    // a disagreement between the two readers can never misplace one.
    let lines = (lines.len() == mapped.len()).then_some(lines);
    Ok(mapped
        .into_iter()
        .enumerate()
        .map(|(i, (upstream, mut raw, problems))| {
            if let Some(overrides) = ctx.overrides {
                overrides.apply(&mut raw);
            }
            let mut position = format!("{} {}", kind.item_name(), i + 1);
            if let Some(line) = lines.as_ref().and_then(|l| l.get(i)) {
                position.push_str(&format!(" at line {line}"));
            }
            if let Some(id) = upstream {
                let id: String = id.chars().take(140).collect();
                position.push_str(&format!(" ({} {id:?})", kind.id_name()));
            }
            FeedItem {
                position,
                raw,
                problems,
            }
        })
        .collect())
}

/// One mapped item: its upstream identifier, the article, the feed's problems.
pub type Mapped = (Option<String>, RawArticle, Vec<String>);

/// Maps every item of an RSS channel (README, "Importing feeds").
pub fn map_rss(channel: &rss::Channel, ctx: FeedContext<'_>) -> Vec<Mapped> {
    let media = prefixes(&channel.namespaces, MEDIA_NS, "media");
    let dcterms = prefixes(&channel.namespaces, DCTERMS_NS, "dcterms");
    let channel_rights = non_empty(channel.copyright.as_deref()).or_else(|| {
        channel
            .dublin_core_ext
            .as_ref()
            .and_then(|dc| first_non_empty(dc.rights()))
    });
    channel
        .items
        .iter()
        .map(|item| {
            let mut problems = Vec::new();
            let upstream = item
                .guid
                .as_ref()
                .and_then(|g| non_empty(Some(g.value())))
                .or_else(|| non_empty(item.link.as_deref()));
            let dc = item.dublin_core_ext.as_ref();

            let published = match non_empty(item.pub_date.as_deref()) {
                Some(date) => match parse_rfc822(&date) {
                    Some(t) => Some(t.to_rfc3339()),
                    None => {
                        problems.push(format!(
                            "pubDate: {date:?} is not an RFC 822 date such as \"Tue, 10 Feb 2026 16:45:00 +0000\""
                        ));
                        None
                    }
                },
                None => dc.and_then(|dc| first_non_empty(dc.dates())),
            };
            let modified = extension_values(&item.extensions, &dcterms, "modified")
                .into_iter()
                .next();
            let published = published.or_else(|| modified.clone());

            let rights = dc
                .and_then(|dc| first_non_empty(dc.rights()))
                .or_else(|| channel_rights.clone());
            let (source_name, source_url) = match &item.source {
                Some(s) => (
                    non_empty(s.title.as_deref()).or_else(|| non_empty(Some(&channel.title))),
                    non_empty(Some(&s.url)),
                ),
                None => (
                    non_empty(Some(&channel.title)),
                    non_empty(Some(&channel.link)),
                ),
            };

            let mut authors: Vec<RawAuthor> = dc
                .map(|dc| dc.creators())
                .unwrap_or_default()
                .iter()
                .filter_map(|c| non_empty(Some(c)))
                .map(|name| RawAuthor {
                    name: Some(name),
                    email: None,
                    url: None,
                })
                .collect();
            if authors.is_empty()
                && let Some(author) = non_empty(item.author.as_deref())
            {
                authors.push(rss_author(&author));
            }

            let tags: Vec<String> = item
                .categories
                .iter()
                .filter_map(|c| non_empty(Some(&c.name)))
                .collect();

            let image = media_image(
                media
                    .iter()
                    .filter_map(|p| item.extensions.get(p)),
            )
            .or_else(|| {
                let e = item.enclosure.as_ref()?;
                enclosure_image(&e.url, Some(&e.mime_type), Some(&e.length))
            });

            let (body_html, related) = match item.content.as_deref() {
                Some(content) => match split_related(content) {
                    Some((body, related)) => (non_empty(Some(body)), Some(related)),
                    None => (non_empty(Some(content)), None),
                },
                None => (None, None),
            };
            let raw = RawArticle {
                id: upstream.as_deref().map(|u| article_id(u, ctx)),
                url: non_empty(item.link.as_deref()),
                headline: item.title.as_deref().map(|t| t.trim().to_owned()),
                standfirst: item.description.as_deref().map(html_to_text),
                body_html,
                authors: Some(authors),
                source: source(source_name, source_url, rights),
                section: tags.first().cloned(),
                tags: Some(tags),
                image,
                related,
                published_at: published,
                updated_at: modified,
                status: None,
            };
            (upstream, raw, problems)
        })
        .collect()
}

/// Splits the related-links list our own RSS appends to a body
/// (`builder::html::append_related`, byte for byte) off `content`, and reads
/// it back as related links, so import → build → import of our RSS keeps the
/// body and the links as they were instead of growing the body. `None` when
/// `content` does not end with exactly that list.
fn split_related(content: &str) -> Option<(&str, Vec<RawRelated>)> {
    use quick_xml::escape::unescape;
    const OPEN: &str = "<aside class=\"related\"><h2>Related</h2><ul>";
    const CLOSE: &str = "</ul></aside>";
    let content = content.trim_end();
    let start = content.rfind(OPEN)?;
    let mut rest = content[start + OPEN.len()..].strip_suffix(CLOSE)?;
    let mut related = Vec::new();
    // Escaped as the builder writes them, a URL holds no `">` and a title no
    // `</a></li>`, so the first match ends each.
    while !rest.is_empty() {
        let item = rest.strip_prefix("<li><a href=\"")?;
        let (url, item) = item.split_once("\">")?;
        let (title, item) = item.split_once("</a></li>")?;
        related.push(RawRelated {
            title: Some(unescape(title).ok()?.into_owned()),
            url: Some(unescape(url).ok()?.into_owned()),
        });
        rest = item;
    }
    if related.is_empty() {
        return None;
    }
    Some((&content[..start], related))
}

/// Maps every entry of an Atom feed (README, "Importing feeds").
pub fn map_atom(feed: &atom_syndication::Feed, ctx: FeedContext<'_>) -> Vec<Mapped> {
    use atom_syndication::TextType;

    let media = prefixes(&feed.namespaces, MEDIA_NS, "media");
    let feed_title = non_empty(Some(&text_plain(&feed.title)));
    let feed_link = alternate(&feed.links);
    let feed_rights = feed.rights.as_ref().map(text_plain);
    feed.entries
        .iter()
        .map(|entry| {
            let upstream = non_empty(Some(&entry.id)).or_else(|| alternate(&entry.links));
            // The crate gives a missing <updated> as the Unix epoch; no wire
            // story is dated 1970, so that instant is taken as "not given".
            let updated = Some(entry.updated)
                .filter(|t| t.timestamp() != 0)
                .map(|t| t.to_rfc3339());
            let published = entry
                .published
                .map(|t| t.to_rfc3339())
                .or_else(|| updated.clone());

            let rights = entry
                .rights
                .as_ref()
                .map(text_plain)
                .and_then(|r| non_empty(Some(&r)))
                .or_else(|| feed_rights.clone().and_then(|r| non_empty(Some(&r))));
            let (source_name, source_url) = match &entry.source {
                Some(s) => (
                    non_empty(Some(&text_plain(&s.title))).or_else(|| feed_title.clone()),
                    alternate(&s.links),
                ),
                None => (feed_title.clone(), feed_link.clone()),
            };

            // RFC 4287 §4.2.1: an entry without authors has the feed's.
            let people = if entry.authors.is_empty() {
                &feed.authors
            } else {
                &entry.authors
            };
            let authors: Vec<RawAuthor> = people
                .iter()
                .filter_map(|p| {
                    Some(RawAuthor {
                        name: Some(non_empty(Some(&p.name))?),
                        email: non_empty(p.email.as_deref()).filter(|e| e.contains('@')),
                        // Only a web address is an author URL an article can carry.
                        url: non_empty(p.uri.as_deref()).filter(|u| parse_http_url(u).is_ok()),
                    })
                })
                .collect();

            let tags: Vec<String> = entry
                .categories
                .iter()
                .filter_map(|c| non_empty(Some(&c.term)))
                .collect();

            let image =
                media_image(media.iter().filter_map(|p| entry.extensions.get(p))).or_else(|| {
                    entry
                        .links
                        .iter()
                        .filter(|l| l.rel == "enclosure")
                        .find_map(|l| {
                            enclosure_image(&l.href, l.mime_type.as_deref(), l.length.as_deref())
                                .map(|mut image| {
                                    image.caption =
                                        l.title.as_deref().and_then(|t| non_empty(Some(t)));
                                    image
                                })
                        })
                });

            let related: Vec<RawRelated> = entry
                .links
                .iter()
                .filter(|l| l.rel == "related")
                .map(|l| RawRelated {
                    title: non_empty(l.title.as_deref()).or_else(|| non_empty(Some(&l.href))),
                    url: non_empty(Some(&l.href)),
                })
                .collect();

            let body_html = entry.content.as_ref().and_then(|c| {
                // Out-of-line content (src=) and non-HTML media types are not a body.
                let html = match c.content_type.as_deref() {
                    None | Some("text") => c
                        .value
                        .as_deref()
                        .map(|v| html_escape::encode_text(v).into_owned()),
                    Some("html" | "xhtml" | "text/html" | "application/xhtml+xml") => {
                        c.value.clone()
                    }
                    Some(_) => None,
                };
                non_empty(html.as_deref())
            });
            let headline = match entry.title.r#type {
                TextType::Text => entry.title.value.trim().to_owned(),
                TextType::Html | TextType::Xhtml => html_to_text(&entry.title.value),
            };

            // A summary that only repeats the title of an entry with no
            // content says nothing more (our own Atom writes one so the entry
            // is not empty): it is no standfirst.
            let standfirst = entry
                .summary
                .as_ref()
                .map(text_plain)
                .filter(|s| body_html.is_some() || s.trim() != headline);
            let raw = RawArticle {
                id: upstream.as_deref().map(|u| article_id(u, ctx)),
                url: alternate(&entry.links),
                headline: Some(headline),
                standfirst,
                body_html,
                authors: Some(authors),
                source: source(source_name, source_url, rights),
                section: tags.first().cloned(),
                tags: Some(tags),
                image,
                related: Some(related),
                published_at: published,
                updated_at: updated,
                status: None,
            };
            (upstream, raw, Vec::new())
        })
        .collect()
}

/// The article id for an upstream identifier: stable (a pure function of the
/// identifier), unique per identifier, and within `[A-Za-z0-9._-]{1,128}`.
///
/// A `tag:` URI this service wrote (`tag:{own authority},{date}:{id}`) gives
/// back the id in it. Any other identifier becomes a readable slug of it plus
/// 16 hex digits of its SHA-256, so two identifiers that slug alike stay apart
/// and no upstream id can take the name of a newsroom's own article.
pub fn article_id(upstream: &str, ctx: FeedContext<'_>) -> String {
    let upstream = upstream.trim();
    if let Some(own) = ctx.own_tag_authority
        && let Some(id) = own_tag_id(upstream, own)
    {
        return id.to_owned();
    }
    let readable = ["https://", "http://", "urn:", "tag:"]
        .iter()
        .find_map(|scheme| {
            upstream
                .get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &upstream[scheme.len()..])
        })
        .unwrap_or(upstream);
    let mut slug = String::new();
    for c in readable.chars() {
        if slug.len() >= SLUG_LEN {
            break;
        }
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches(|c| c == '-' || c == '.');
    let digest = Sha256::digest(upstream.as_bytes());
    let hash: String = digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(HASH_LEN)
        .collect();
    if slug.is_empty() {
        format!("item-{hash}")
    } else {
        format!("{slug}-{hash}")
    }
}

/// The article id in a `tag:` URI this service wrote, if `uri` is one.
fn own_tag_id<'u>(uri: &'u str, own_authority: &str) -> Option<&'u str> {
    let rest = uri.strip_prefix("tag:")?;
    let (authority, rest) = rest.split_once(',')?;
    let (_date, id) = rest.split_once(':')?;
    (authority == own_authority && ArticleId::from_str(id).is_ok()).then_some(id)
}

/// A date as RSS writes it (RFC 822/2822), or RFC 3339 as some feeds do.
fn parse_rfc822(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc2822(s.trim())
        .or_else(|_| DateTime::parse_from_rfc3339(s.trim()))
        .ok()
}

/// The trimmed text, if there is any.
fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn first_non_empty(values: &[String]) -> Option<String> {
    values.iter().find_map(|v| non_empty(Some(v)))
}

/// The source block, when there is anything to say; a rights line with no
/// name leaves the name missing, for validation to report.
fn source(name: Option<String>, url: Option<String>, rights: Option<String>) -> Option<RawSource> {
    if name.is_none() && rights.is_none() {
        return None;
    }
    Some(RawSource {
        name,
        rights,
        // A channel link that is no web address does not cost the item its credit.
        url: url.filter(|u| parse_http_url(u).is_ok()),
    })
}

/// An RSS `<author>`: `jdoe@example.com (Jane Doe)` by the spec, often just a name.
fn rss_author(author: &str) -> RawAuthor {
    if let Some((email, rest)) = author.split_once('(')
        && let Some(name) = non_empty(rest.strip_suffix(')'))
        && email.trim().contains('@')
        && !email.trim().contains(char::is_whitespace)
    {
        return RawAuthor {
            name: Some(name),
            email: Some(email.trim().to_owned()),
            url: None,
        };
    }
    RawAuthor {
        name: Some(author.trim().to_owned()),
        email: None,
        url: None,
    }
}

/// The link with `rel="alternate"` (the default relation), else the first.
fn alternate(links: &[atom_syndication::Link]) -> Option<String> {
    links
        .iter()
        .find(|l| l.rel == "alternate" || l.rel.is_empty())
        .or_else(|| links.first())
        .and_then(|l| non_empty(Some(&l.href)))
}

/// An Atom text construct as plain text.
fn text_plain(text: &atom_syndication::Text) -> String {
    match text.r#type {
        atom_syndication::TextType::Text => text.value.trim().to_owned(),
        _ => html_to_text(&text.value),
    }
}

/// The document prefixes bound to `namespace`, else the usual one.
fn prefixes(namespaces: &BTreeMap<String, String>, namespace: &str, usual: &str) -> Vec<String> {
    let bound: Vec<String> = namespaces
        .iter()
        .filter(|(_, uri)| uri.trim_end_matches('/') == namespace.trim_end_matches('/'))
        .map(|(prefix, _)| prefix.clone())
        .collect();
    if bound.is_empty() {
        vec![usual.to_owned()]
    } else {
        bound
    }
}

/// The values of extension elements `name` under any of `prefixes`.
fn extension_values(
    map: &rss::extension::ExtensionMap,
    prefixes: &[String],
    name: &str,
) -> Vec<String> {
    prefixes
        .iter()
        .filter_map(|p| map.get(p)?.get(name))
        .flatten()
        .filter_map(|e| non_empty(e.value()))
        .collect()
}

/// Both crates' extension elements, as far as Media RSS needs them.
trait MediaExt {
    fn attr(&self, name: &str) -> Option<&str>;
    fn text(&self) -> Option<&str>;
    fn child(&self, name: &str) -> Option<&Self>;
}

/// An element's children by local name, from either crate.
type Children<'a, E> = &'a BTreeMap<String, Vec<E>>;

/// Both crates' extension elements have the same fields but are distinct types.
macro_rules! media_ext {
    ($($extension:ty),*) => {$(
        impl MediaExt for $extension {
            fn attr(&self, name: &str) -> Option<&str> {
                self.attrs.get(name).map(String::as_str)
            }
            fn text(&self) -> Option<&str> {
                self.value.as_deref()
            }
            fn child(&self, name: &str) -> Option<&Self> {
                self.children.get(name)?.first()
            }
        }
    )*};
}

media_ext!(
    rss::extension::Extension,
    atom_syndication::extension::Extension
);

/// The image from Media RSS elements: the first image `media:content`
/// (directly or in a `media:group`), else the first `media:thumbnail`; its
/// caption and credit from its own `media:description` / `media:credit`, else
/// the item's.
fn media_image<'a, E: MediaExt + 'a>(
    maps: impl Iterator<Item = Children<'a, E>>,
) -> Option<RawImage> {
    let maps: Vec<Children<'a, E>> = maps.collect();
    let all =
        |name: &str| -> Vec<&'a E> { maps.iter().filter_map(|m| m.get(name)).flatten().collect() };
    let is_image = |e: &E| match (e.attr("medium"), e.attr("type")) {
        (Some(medium), _) => medium == "image",
        (None, Some(mime)) => mime.starts_with("image/"),
        (None, None) => true,
    };
    let grouped: Vec<&'a E> = all("group")
        .into_iter()
        .filter_map(|g| g.child("content"))
        .collect();
    let item_text = |name: &str| all(name).into_iter().find_map(|e| non_empty(e.text()));
    let (element, mime, length) = match all("content")
        .into_iter()
        .chain(grouped)
        .find(|e| is_image(e) && e.attr("url").is_some())
    {
        Some(e) => (
            e,
            e.attr("type").and_then(|t| non_empty(Some(t))),
            e.attr("fileSize").and_then(|l| l.trim().parse().ok()),
        ),
        None => (
            all("thumbnail")
                .into_iter()
                .find(|e| e.attr("url").is_some())?,
            None,
            None,
        ),
    };
    Some(RawImage {
        url: non_empty(element.attr("url")),
        caption: element
            .child("description")
            .and_then(|d| non_empty(d.text()))
            .or_else(|| item_text("description")),
        credit: element
            .child("credit")
            .and_then(|c| non_empty(c.text()))
            .or_else(|| item_text("credit")),
        mime_type: mime,
        length,
    })
}

/// An image from an enclosure, if its type says it is one. A length of 0 is
/// how feeds say "unknown".
fn enclosure_image(url: &str, mime: Option<&str>, length: Option<&str>) -> Option<RawImage> {
    let mime = non_empty(mime)?;
    if !mime.starts_with("image/") {
        return None;
    }
    Some(RawImage {
        url: non_empty(Some(url)),
        caption: None,
        credit: None,
        mime_type: Some(mime),
        length: length
            .and_then(|l| l.trim().parse::<u64>().ok())
            .filter(|&l| l > 0),
    })
}

/// HTML as plain text: markup removed (scripts and styles with their content),
/// entities decoded, blocks and line breaks turned into spaces, runs of white
/// space collapsed.
pub fn html_to_text(html: &str) -> String {
    const BLOCKS: [&str; 16] = [
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "tr",
        "td",
        "hr",
    ];
    let settings = RewriteStrSettings::new()
        .append_element_content_handler(element!("*", |el| {
            let tag = el.tag_name();
            if matches!(tag.as_str(), "script" | "style" | "template") {
                el.remove();
            } else {
                if BLOCKS.contains(&tag.as_str()) {
                    el.before(" ", ContentType::Text);
                    el.after(" ", ContentType::Text);
                }
                el.remove_and_keep_content();
            }
            Ok(())
        }))
        .append_document_content_handler(doc_comments!(|c| {
            c.remove();
            Ok(())
        }));
    // lol_html only fails on memory limits; the text is then decoded as it is
    // rather than lost.
    let stripped = rewrite_str(html, settings).unwrap_or_else(|_| html.to_owned());
    let decoded = html_escape::decode_html_entities(&stripped);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// 1-based line of byte `at`.
fn line_of(bytes: &[u8], at: usize) -> usize {
    memchr::memchr_iter(b'\n', &bytes[..at.min(bytes.len())]).count() + 1
}

/// The line each item (`<rss><channel><item>`) or entry (`<feed><entry>`)
/// starts on, in document order, as far as the XML can be read.
fn item_lines(bytes: &[u8], kind: FeedKind) -> Vec<usize> {
    let (name, depth_of_item): (&[u8], usize) = match kind {
        FeedKind::Rss => (b"item", 3),
        FeedKind::Atom => (b"entry", 2),
    };
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut lines = Vec::new();
    let (mut counted_to, mut line) = (0usize, 1usize);
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let (start, empty) = match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => (Some(e.local_name().as_ref() == name), false),
            Ok(Event::Empty(e)) => (Some(e.local_name().as_ref() == name), true),
            Ok(Event::End(_)) => {
                depth = depth.saturating_sub(1);
                (None, false)
            }
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => (None, false),
        };
        if let Some(is_item) = start {
            if is_item && depth + 1 == depth_of_item {
                let at = at.min(bytes.len());
                line += memchr::memchr_iter(b'\n', &bytes[counted_to.min(at)..at]).count();
                counted_to = at;
                lines.push(line);
            }
            if !empty {
                depth += 1;
            }
        }
        buf.clear();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:m="http://search.yahoo.com/mrss/">
  <channel>
    <title>Wire &amp; Co</title>
    <link>https://wire.example.com/</link>
    <description>All the news</description>
    <copyright>© Wire, 2026</copyright>
    <item>
      <title>Talks &amp; &lt;more&gt; talks</title>
      <link>https://wire.example.com/a/1</link>
      <guid isPermaLink="false">urn:wire:2026:0001</guid>
      <description><![CDATA[<p>Leaders met &amp; talked &mdash; <b>again</b>.</p><p>Caf&eacute;</p>]]></description>
      <content:encoded><![CDATA[<p>Body</p>]]></content:encoded>
      <pubDate>Tue, 10 Feb 2026 16:45:00 +0100</pubDate>
      <dcterms:modified>2026-02-10T18:00:00Z</dcterms:modified>
      <dc:creator>Jane Doe</dc:creator>
      <dc:creator>John Roe</dc:creator>
      <dc:rights>© AFP, 2026</dc:rights>
      <category>World</category>
      <category>UN</category>
      <m:content url="https://img.example.com/1.jpg" medium="image" type="image/jpeg" fileSize="1234">
        <m:credit role="photographer">Ann Lens</m:credit>
        <m:description>Leaders at the table.</m:description>
      </m:content>
    </item>
    <item>
      <title>Second</title>
      <link>https://wire.example.com/a/2</link>
      <author>desk@wire.example.com (News Desk)</author>
      <pubDate>Wed, 11 Feb 2026 08:00:00 GMT</pubDate>
      <enclosure url="https://img.example.com/2.png" length="0" type="image/png"/>
    </item>
  </channel>
</rss>"#;

    const ATOM: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <id>urn:uuid:feed</id>
  <title type="html">Agency &lt;b&gt;Feed&lt;/b&gt;</title>
  <updated>2026-02-10T10:00:00Z</updated>
  <link rel="self" href="https://agency.example.org/feed.atom"/>
  <link rel="alternate" href="https://agency.example.org/"/>
  <rights>© Agency, 2026</rights>
  <author><name>Feed Author</name></author>
  <entry>
    <id>tag:agency.example.org,2026:story/42</id>
    <title type="html">&lt;em&gt;Breaking&lt;/em&gt;: rates &amp;amp; prices</title>
    <updated>2026-02-10T12:00:00+01:00</updated>
    <published>2026-02-10T09:00:00+01:00</published>
    <link rel="alternate" href="https://agency.example.org/story/42"/>
    <link rel="enclosure" type="image/jpeg" href="https://agency.example.org/42.jpg" length="99" title="A chart"/>
    <link rel="related" href="https://agency.example.org/story/41" title="Earlier"/>
    <author><name>Ann Writer</name><email>ann@agency.example.org</email><uri>mailto:ann@agency.example.org</uri></author>
    <category term="Economy" label="The economy"/>
    <category term="Rates"/>
    <rights type="html">&lt;b&gt;© Reuters&lt;/b&gt;</rights>
    <summary type="html">&lt;p&gt;Rates rose &amp;amp; prices &amp;lt; wages&lt;/p&gt;</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Full <b>story</b></p></div></content>
  </entry>
  <entry>
    <id>urn:uuid:43</id>
    <title>Plain &lt;title&gt;</title>
    <updated>2026-02-11T07:00:00Z</updated>
    <link href="https://agency.example.org/story/43"/>
    <summary>Just text</summary>
    <content type="html">&lt;p&gt;Body 43&lt;/p&gt;</content>
  </entry>
</feed>"#;

    fn rss() -> Vec<FeedItem> {
        read_feed(RSS.as_bytes(), FeedContext::default()).expect("rss reads")
    }

    fn atom() -> Vec<FeedItem> {
        read_feed(ATOM.as_bytes(), FeedContext::default()).expect("atom reads")
    }

    fn authors(raw: &RawArticle) -> Vec<(Option<String>, Option<String>, Option<String>)> {
        raw.authors
            .iter()
            .flatten()
            .map(|a| (a.name.clone(), a.email.clone(), a.url.clone()))
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn the_root_element_says_the_format() {
        assert_eq!(sniff(RSS.as_bytes()).ok(), Some(FeedKind::Rss));
        assert_eq!(sniff(ATOM.as_bytes()).ok(), Some(FeedKind::Atom));
        let e = sniff(b"<?xml version=\"1.0\"?>\n<!-- x -->\n<urlset/>").expect_err("no feed");
        assert_eq!(
            e.to_string(),
            "not an RSS 2.0 or Atom 1.0 feed: the root element is <urlset>"
        );
        assert!(matches!(sniff(b"  \n"), Err(FeedError::NoRoot)));
        assert!(matches!(
            sniff(b"{\"id\": 1}"),
            Err(FeedError::NotXml { line: 1, .. })
        ));
    }

    #[test]
    fn rss_items_map_row_by_row() {
        let items = rss();
        assert_eq!(items.len(), 2);
        let first = &items[0];
        assert!(first.problems.is_empty(), "{:?}", first.problems);
        assert_eq!(
            first.position,
            "item 1 at line 9 (guid \"urn:wire:2026:0001\")"
        );
        let raw = &first.raw;
        assert_eq!(
            raw.id.as_deref(),
            Some(article_id("urn:wire:2026:0001", FeedContext::default()).as_str())
        );
        assert_eq!(
            raw.headline,
            s("Talks & <more> talks"),
            "RSS titles are plain text"
        );
        assert_eq!(raw.url, s("https://wire.example.com/a/1"));
        assert_eq!(raw.standfirst, s("Leaders met & talked — again. Café"));
        assert_eq!(raw.body_html, s("<p>Body</p>"));
        assert_eq!(raw.published_at, s("2026-02-10T16:45:00+01:00"));
        assert_eq!(raw.updated_at, s("2026-02-10T18:00:00Z"));
        assert_eq!(
            authors(raw),
            [(s("Jane Doe"), None, None), (s("John Roe"), None, None)]
        );
        let source = raw.source.as_ref().expect("source");
        assert_eq!(source.name, s("Wire & Co"));
        assert_eq!(source.url, s("https://wire.example.com/"));
        assert_eq!(source.rights, s("© AFP, 2026"), "the item's own rights win");
        assert_eq!(raw.tags, Some(vec!["World".to_owned(), "UN".to_owned()]));
        assert_eq!(raw.section, s("World"));
        let image = raw.image.as_ref().expect("media:content under any prefix");
        assert_eq!(image.url, s("https://img.example.com/1.jpg"));
        assert_eq!(image.credit, s("Ann Lens"));
        assert_eq!(image.caption, s("Leaders at the table."));
        assert_eq!(image.mime_type, s("image/jpeg"));
        assert_eq!(image.length, Some(1234));

        let second = &items[1].raw;
        assert_eq!(
            items[1].position,
            "item 2 at line 27 (guid \"https://wire.example.com/a/2\")"
        );
        assert!(
            second
                .id
                .as_deref()
                .is_some_and(|id| id.starts_with("wire.example.com-a-2-"))
        );
        assert_eq!(
            second.source.as_ref().and_then(|s| s.rights.clone()),
            s("© Wire, 2026"),
            "without its own rights an item has the channel's"
        );
        assert_eq!(
            authors(second),
            [(s("News Desk"), s("desk@wire.example.com"), None)]
        );
        assert_eq!(second.published_at, s("2026-02-11T08:00:00+00:00"));
        assert_eq!(
            second.updated_at, None,
            "validation defaults it to published"
        );
        let image = second.image.as_ref().expect("image enclosure");
        assert_eq!(image.url, s("https://img.example.com/2.png"));
        assert_eq!(image.length, None, "length 0 means unknown");
        assert_eq!(second.section, None);
    }

    #[test]
    fn a_pub_date_that_is_no_date_is_a_problem_of_the_item() {
        let text = RSS.replace("Wed, 11 Feb 2026 08:00:00 GMT", "yesterday");
        let items = read_feed(text.as_bytes(), FeedContext::default()).expect("reads");
        assert!(items[0].problems.is_empty());
        assert_eq!(items[1].problems.len(), 1);
        assert!(items[1].problems[0].starts_with("pubDate: \"yesterday\" is not an RFC 822 date"));
    }

    #[test]
    fn atom_entries_map_row_by_row() {
        let items = atom();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].position,
            "entry 1 at line 10 (id \"tag:agency.example.org,2026:story/42\")"
        );
        let raw = &items[0].raw;
        assert_eq!(
            raw.headline,
            s("Breaking: rates & prices"),
            "an HTML title loses its markup"
        );
        assert_eq!(raw.url, s("https://agency.example.org/story/42"));
        assert_eq!(raw.standfirst, s("Rates rose & prices < wages"));
        assert!(
            raw.body_html
                .as_deref()
                .is_some_and(|b| b.contains("<p>Full <b>story</b></p>")),
            "{:?}",
            raw.body_html
        );
        assert_eq!(raw.published_at, s("2026-02-10T09:00:00+01:00"));
        assert_eq!(raw.updated_at, s("2026-02-10T12:00:00+01:00"));
        assert_eq!(
            authors(raw),
            [(s("Ann Writer"), s("ann@agency.example.org"), None)],
            "a mailto: uri is no web address"
        );
        let source = raw.source.as_ref().expect("source");
        assert_eq!(source.name, s("Agency Feed"));
        assert_eq!(source.url, s("https://agency.example.org/"));
        assert_eq!(source.rights, s("© Reuters"), "entry rights, as plain text");
        assert_eq!(
            raw.tags,
            Some(vec!["Economy".to_owned(), "Rates".to_owned()])
        );
        assert_eq!(raw.section, s("Economy"));
        let image = raw.image.as_ref().expect("enclosure link");
        assert_eq!(image.url, s("https://agency.example.org/42.jpg"));
        assert_eq!(image.caption, s("A chart"));
        assert_eq!(image.length, Some(99));
        let related: Vec<_> = raw
            .related
            .iter()
            .flatten()
            .map(|r| (r.title.clone(), r.url.clone()))
            .collect();
        assert_eq!(
            related,
            [(s("Earlier"), s("https://agency.example.org/story/41"))]
        );

        let second = &items[1].raw;
        assert_eq!(
            second.headline,
            s("Plain <title>"),
            "a text title keeps its characters"
        );
        assert_eq!(
            second.published_at,
            s("2026-02-11T07:00:00+00:00"),
            "no published: updated"
        );
        assert_eq!(second.updated_at, s("2026-02-11T07:00:00+00:00"));
        assert_eq!(
            second.url,
            s("https://agency.example.org/story/43"),
            "a link without rel is alternate"
        );
        assert_eq!(second.body_html, s("<p>Body 43</p>"));
        assert_eq!(
            second.source.as_ref().and_then(|s| s.rights.clone()),
            s("© Agency, 2026"),
            "feed rights when the entry has none"
        );
        assert_eq!(
            authors(second),
            [(s("Feed Author"), None, None)],
            "the feed's authors"
        );
    }

    #[test]
    fn media_rss_in_atom_and_thumbnails_give_images() {
        let text = ATOM.replace(
            "<summary>Just text</summary>",
            r#"<summary>Just text</summary><media:thumbnail url="https://agency.example.org/t.jpg"/><media:credit>Pat Photo</media:credit>"#,
        );
        let items = read_feed(text.as_bytes(), FeedContext::default()).expect("reads");
        let image = items[1].raw.image.as_ref().expect("thumbnail");
        assert_eq!(image.url, s("https://agency.example.org/t.jpg"));
        assert_eq!(image.credit, s("Pat Photo"), "the item-level credit");
    }

    #[test]
    fn ids_are_stable_bounded_and_our_own_come_back() {
        let ctx = FeedContext::default();
        let id = article_id("urn:wire:2026:0001", ctx);
        assert_eq!(id, article_id(" urn:wire:2026:0001 ", ctx), "trimmed");
        assert!(id.starts_with("wire-2026-0001-"), "{id}");
        assert!(id.parse::<ArticleId>().is_ok(), "{id}");
        assert_ne!(
            id,
            article_id("urn:wire:2026:0001/", ctx),
            "slugs alike, ids apart"
        );
        let long = format!("https://e.com/{}", "ä/b".repeat(200));
        let long_id = article_id(&long, ctx);
        assert!(long_id.parse::<ArticleId>().is_ok(), "{long_id}");
        assert!(article_id("ééé", ctx).starts_with("item-"));

        let own = FeedContext {
            own_tag_authority: Some("news.example.com"),
            overrides: None,
        };
        assert_eq!(
            article_id("tag:news.example.com,2015-09-29:world-1", own),
            "world-1"
        );
        assert_ne!(
            article_id("tag:other.example,2015-09-29:world-1", own),
            "world-1"
        );
        assert_ne!(
            article_id("tag:news.example.com,2015-09-29:world-1", ctx),
            "world-1"
        );
    }

    #[test]
    fn html_becomes_plain_text() {
        assert_eq!(
            html_to_text("<p>a&nbsp;&amp;&#x26; b</p><script>x()</script><!-- c --><p>d<br>e</p>"),
            "a && b d e"
        );
        assert_eq!(html_to_text("5% &lt; 10%"), "5% < 10%");
    }

    #[test]
    fn a_broken_feed_is_one_error() {
        let e = read_feed(b"<rss><channel><item>", FeedContext::default()).expect_err("broken");
        assert!(e.to_string().starts_with("not a valid RSS 2.0 feed"), "{e}");
        let e = read_feed(
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>",
            FeedContext::default(),
        )
        .expect_err("broken");
        assert!(
            e.to_string().starts_with("not a valid Atom 1.0 feed"),
            "{e}"
        );
    }

    #[test]
    fn our_related_list_comes_back_as_related_links() {
        let body = "<p>Talks went on.</p>\n<aside class=\"related\"><h2>Related</h2><ul><li><a href=\"https://news.example.com/a?x=1&amp;y=2\">Earlier &amp; &lt;later&gt;</a></li><li><a href=\"https://news.example.com/b\">B</a></li></ul></aside>\n";
        let (rest, related) = split_related(body).expect("our list");
        assert_eq!(rest, "<p>Talks went on.</p>\n");
        let pairs: Vec<(Option<&str>, Option<&str>)> = related
            .iter()
            .map(|r| (r.title.as_deref(), r.url.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    Some("Earlier & <later>"),
                    Some("https://news.example.com/a?x=1&y=2")
                ),
                (Some("B"), Some("https://news.example.com/b")),
            ]
        );
        // Anything else stays body: another aside, text after the list, an empty list.
        for other in [
            "<p>x</p><aside class=\"related\"><h2>See also</h2><ul><li><a href=\"u\">t</a></li></ul></aside>",
            "<aside class=\"related\"><h2>Related</h2><ul><li><a href=\"u\">t</a></li></ul></aside><p>after</p>",
            "<aside class=\"related\"><h2>Related</h2><ul></ul></aside>",
            "<aside class=\"related\"><h2>Related</h2><ul><li><b>t</b></li></ul></aside>",
        ] {
            assert!(split_related(other).is_none(), "{other}");
        }
    }
}
