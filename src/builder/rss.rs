//! RSS 2.0, written with quick-xml directly, with the Media RSS, Dublin Core,
//! DC Terms, `content` and Atom elements feeds need.
//!
//! The `rss` crate was the first writer here. It needs every item as owned
//! strings in maps (one clone of each body, several `BTreeMap`s per item for
//! extensions), has no `media:` module, stores dates as strings and only
//! declares the namespaces it knows it used; at 10 000 items its render alone
//! took about 190 ms, more than the whole budget against feedgen. Writing the
//! elements directly keeps the same output shape: all five namespaces declared
//! once on `<rss>` in a fixed order (even for an empty feed), `description` and
//! `content:encoded` as CDATA, dates as RFC 822 with a numeric offset.
//!
//! Readers take an item's `description` as HTML, so the plain-text standfirst
//! is HTML-escaped before it goes into the CDATA: `5% < 10%` or `<bold>` in a
//! standfirst is shown as written, never read as markup (the W3C validator's
//! `NotHtml`). Plain-text elements write `&` and `<` as `&#x26;` and `&#x3C;`,
//! the RSS Best Practices Profile's sign that their text is not HTML.

use std::io;

use chrono::{DateTime, Utc};

use super::xml::Xml;
use super::{Entry, FeedMeta, GENERATOR, HISTORY_NS, Paging, Prepared, rfc822, rfc3339};
use crate::config::Format;

pub const NAMESPACES: [(&str, &str); 5] = [
    ("xmlns:atom", "http://www.w3.org/2005/Atom"),
    ("xmlns:content", "http://purl.org/rss/1.0/modules/content/"),
    ("xmlns:dc", "http://purl.org/dc/elements/1.1/"),
    ("xmlns:dcterms", "http://purl.org/dc/terms/"),
    ("xmlns:media", "http://search.yahoo.com/mrss/"),
];

/// The elements an item sits inside, for writing items apart from the
/// header (`Xml::nested`).
pub const ITEM_PARENTS: [&str; 2] = ["rss", "channel"];

/// A writer for a whole RSS document: plain text with the profile's
/// hexadecimal references (module docs).
pub fn writer(bytes: usize) -> Xml {
    Xml::with_capacity(bytes).with_hex_char_refs()
}

/// A writer for items written apart from the header, escaping as [`writer`].
pub fn item_writer(bytes: usize) -> io::Result<Xml> {
    Ok(Xml::nested(bytes, &ITEM_PARENTS)?.with_hex_char_refs())
}

/// [`item_writer`] into `buf` (emptied first), reusing its memory.
pub fn item_writer_in(buf: Vec<u8>) -> io::Result<Xml> {
    Ok(Xml::nested_in(buf, &ITEM_PARENTS)?.with_hex_char_refs())
}

pub fn render(meta: &FeedMeta, prepared: &Prepared<'_>) -> Result<Vec<u8>, String> {
    let mut x = writer(4096 + prepared.text_bytes + prepared.entries.len() * 2048);
    write_channel(&mut x, meta, prepared).map_err(|e| e.to_string())?;
    Ok(x.finish())
}

fn write_channel(x: &mut Xml, meta: &FeedMeta, prepared: &Prepared<'_>) -> io::Result<()> {
    write_head(x, meta, prepared.updated)?;
    for e in &prepared.entries {
        write_item(x, meta, e)?;
    }
    write_foot(x)
}

/// Everything before the first item. `updated` (the newest item's
/// `updated_at`) is its only part that depends on the items.
pub fn write_head(x: &mut Xml, meta: &FeedMeta, updated: DateTime<Utc>) -> io::Result<()> {
    let zone = meta.timezone;
    x.declaration()?;
    let mut root = vec![("version", "2.0")];
    root.extend(NAMESPACES);
    let archive = matches!(meta.paging, Paging::Archive { .. });
    if archive {
        root.push(("xmlns:fh", HISTORY_NS));
    }
    x.start("rss", &root)?;
    x.start("channel", &[])?;
    x.text("title", &[], &meta.title)?;
    x.text("link", &[], meta.site_url.as_str())?;
    x.text("description", &[], &meta.description)?;
    if let Some(lang) = &meta.language {
        x.text("language", &[], lang)?;
    }
    if let Some(rights) = &meta.rights {
        x.text("copyright", &[], rights)?;
    }
    x.text("lastBuildDate", &[], &rfc822(updated, zone))?;
    for c in &meta.categories {
        x.text("category", &[], c)?;
    }
    x.text(
        "generator",
        &[],
        &format!("{GENERATOR} {}", env!("CARGO_PKG_VERSION")),
    )?;
    x.text("docs", &[], "https://www.rssboard.org/rss-specification")?;
    x.text("ttl", &[], &meta.ttl_minutes.to_string())?;
    if let Some(logo) = &meta.logo {
        x.start("image", &[])?;
        x.text("url", &[], logo.as_str())?;
        x.text("title", &[], &meta.title)?;
        x.text("link", &[], meta.site_url.as_str())?;
        x.end("image")?;
    }
    x.empty(
        "atom:link",
        &[
            ("href", &meta.document_url(Format::Rss)),
            ("rel", "self"),
            ("type", "application/rss+xml"),
        ],
    )?;
    // RFC 5005 paging, only for archived feeds (so others keep their bytes).
    for (rel, href) in meta.paging_links(Format::Rss) {
        x.empty(
            "atom:link",
            &[
                ("href", &href),
                ("rel", rel),
                ("type", "application/rss+xml"),
            ],
        )?;
    }
    if archive {
        x.empty("fh:archive", &[])?;
    }
    // WebSub discovery (W3C WebSub §4): only when a hub is configured, so a
    // feed without one builds the same bytes as before.
    for hub in &meta.hubs {
        x.empty("atom:link", &[("href", hub.as_str()), ("rel", "hub")])?;
    }
    Ok(())
}

/// Everything after the last item.
pub fn write_foot(x: &mut Xml) -> io::Result<()> {
    x.end("channel")?;
    x.end("rss")
}

/// One item, at the depth `ITEM_PARENTS` gives.
pub fn write_item(x: &mut Xml, meta: &FeedMeta, e: &Entry<'_>) -> io::Result<()> {
    let zone = meta.timezone;
    x.start("item", &[])?;
    x.text("title", &[], &e.headline)?;
    x.text("link", &[], e.url)?;
    if let Some(standfirst) = &e.standfirst {
        x.cdata(
            "description",
            &[],
            &html_escape::encode_text(standfirst.as_ref()),
        )?;
    }
    for c in &e.categories {
        x.text("category", &[], c)?;
    }
    if let Some(image) = &e.image {
        // RSS requires a length; 0 is the recognised "unknown".
        let length = image.length.unwrap_or(0).to_string();
        x.empty(
            "enclosure",
            &[
                ("url", image.url),
                ("length", &length),
                ("type", image.mime_type),
            ],
        )?;
    }
    x.text("guid", &[("isPermaLink", "false")], &e.tag)?;
    x.text("pubDate", &[], &rfc822(e.published_at, zone))?;
    if let Some(source) = &e.source
        && let Some(url) = source.url
    {
        x.text("source", &[("url", url)], &source.name)?;
    }
    if let Some(content) = &e.content_with_related {
        x.cdata("content:encoded", &[], content)?;
    }
    x.text("dcterms:modified", &[], &rfc3339(e.updated_at, zone))?;
    if let Some(image) = &e.image {
        x.media_content(image)?;
    }
    for a in &e.authors {
        x.text("dc:creator", &[], &a.name)?;
    }
    if let Some(rights) = e.source.as_ref().and_then(|s| s.rights.as_deref()) {
        x.text("dc:rights", &[], rights)?;
    }
    x.end("item")
}
