//! Atom 1.0 (RFC 4287), written with quick-xml directly.
//!
//! `atom_syndication` fills required elements it was not given with defaults
//! (`1970-01-01` dates, empty ids) and was about 4× slower than the `rss` crate
//! for large feeds; writing the few elements we need by hand keeps every
//! required element explicit and the output checked against the RFC's RELAX NG
//! schema in the tests. Element order within each parent is fixed. The HTML
//! content goes out as CDATA, which is the same text to every parser and costs
//! one scan for `]]>` instead of escaping every byte.

use std::io;

use chrono::{DateTime, Utc};

use super::xml::Xml;
use super::{
    Entry, FeedMeta, GENERATOR, HISTORY_NS, Paging, Prepared, Tombstone, rfc3339, source_tag_uri,
};
use crate::config::Format;

/// The elements an entry sits inside, for writing entries apart from the
/// header (`Xml::nested`).
pub const ENTRY_PARENTS: [&str; 1] = ["feed"];

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

pub fn render(meta: &FeedMeta, prepared: &Prepared<'_>) -> Result<Vec<u8>, String> {
    let mut x = Xml::with_capacity(4096 + prepared.text_bytes + prepared.entries.len() * 2048);
    write_feed(&mut x, meta, prepared).map_err(|e| e.to_string())?;
    Ok(x.finish())
}

fn write_feed(x: &mut Xml, meta: &FeedMeta, prepared: &Prepared<'_>) -> io::Result<()> {
    write_head(x, meta, prepared.updated, prepared.tombstones)?;
    for e in &prepared.entries {
        write_entry(x, meta, e)?;
    }
    write_foot(x)
}

/// RFC 6721's namespace for `deleted-entry`.
pub const TOMBSTONES_NS: &str = "http://purl.org/atompub/tombstones/1.0";

/// Everything before the first entry. `updated` (the newest entry's
/// `updated_at` or withdrawal) and the tombstones are its only parts that
/// depend on the articles. The tombstones come last, just before the
/// entries: RFC 6721 lets them stand among the entries, but RFC 4287's
/// schema only allows extension elements among the feed's metadata, and
/// validators check that. Their namespace is declared only when there are
/// any, so feeds without keep their bytes.
pub fn write_head(
    x: &mut Xml,
    meta: &FeedMeta,
    updated: DateTime<Utc>,
    tombstones: &[Tombstone],
) -> io::Result<()> {
    let zone = meta.timezone;
    let self_url = meta.self_url(Format::Atom);
    x.declaration()?;
    let mut root = vec![("xmlns", ATOM_NS), ("xmlns:media", MEDIA_NS)];
    if !tombstones.is_empty() {
        root.push(("xmlns:at", TOMBSTONES_NS));
    }
    let archive = matches!(meta.paging, Paging::Archive { .. });
    if archive {
        root.push(("xmlns:fh", HISTORY_NS));
    }
    if let Some(lang) = &meta.language {
        root.push(("xml:lang", lang.as_str()));
    }
    x.start("feed", &root)?;
    // The self URL identifies the feed: stable across rebuilds, unique per
    // feed, and the same on its archive pages (RFC 5005 §4: they are the
    // same feed, split into documents).
    x.text("id", &[], &self_url)?;
    x.text("title", &[("type", "text")], &meta.title)?;
    x.text("subtitle", &[("type", "text")], &meta.description)?;
    x.text("updated", &[], &rfc3339(updated, zone))?;
    x.empty(
        "link",
        &[
            ("rel", "self"),
            ("type", "application/atom+xml"),
            ("href", &meta.document_url(Format::Atom)),
        ],
    )?;
    for hub in &meta.hubs {
        x.empty("link", &[("rel", "hub"), ("href", hub.as_str())])?;
    }
    // RFC 5005 paging, only for archived feeds (so others keep their bytes).
    for (rel, href) in meta.paging_links(Format::Atom) {
        x.empty(
            "link",
            &[
                ("rel", rel),
                ("type", "application/atom+xml"),
                ("href", &href),
            ],
        )?;
    }
    if archive {
        x.empty("fh:archive", &[])?;
    }
    x.empty(
        "link",
        &[
            ("rel", "alternate"),
            ("type", "text/html"),
            ("href", meta.site_url.as_str()),
        ],
    )?;
    // RFC 4287 §4.1.1: a feed needs an author unless every entry has one; the
    // publication stands in for entries without a byline.
    x.start("author", &[])?;
    x.text("name", &[], &meta.site_title)?;
    x.text("uri", &[], meta.site_url.as_str())?;
    x.end("author")?;
    x.text(
        "generator",
        &[("version", env!("CARGO_PKG_VERSION"))],
        GENERATOR,
    )?;
    if let Some(icon) = &meta.icon {
        x.text("icon", &[], icon.as_str())?;
    }
    if let Some(logo) = &meta.logo {
        x.text("logo", &[], logo.as_str())?;
    }
    if let Some(rights) = &meta.rights {
        x.text("rights", &[("type", "text")], rights)?;
    }
    for c in &meta.categories {
        x.empty("category", &[("term", c)])?;
    }
    for t in tombstones {
        let when = rfc3339(t.withdrawn_at, zone);
        x.empty(
            "at:deleted-entry",
            &[("ref", &t.tag(&meta.tag_authority)), ("when", &when)],
        )?;
    }
    Ok(())
}

/// Everything after the last entry.
pub fn write_foot(x: &mut Xml) -> io::Result<()> {
    x.end("feed")
}

/// One entry, at the depth `ENTRY_PARENTS` gives.
pub fn write_entry(x: &mut Xml, meta: &FeedMeta, e: &Entry<'_>) -> io::Result<()> {
    let zone = meta.timezone;
    x.start("entry", &[])?;
    x.text("id", &[], &e.tag)?;
    x.text("title", &[("type", "text")], &e.headline)?;
    x.text("updated", &[], &rfc3339(e.updated_at, zone))?;
    x.text("published", &[], &rfc3339(e.published_at, zone))?;
    x.empty(
        "link",
        &[("rel", "alternate"), ("type", "text/html"), ("href", e.url)],
    )?;
    for r in &e.related {
        x.empty(
            "link",
            &[
                ("rel", "related"),
                ("type", "text/html"),
                ("href", r.url),
                ("title", &r.title),
            ],
        )?;
    }
    if let Some(image) = &e.image {
        let length = image.length.map(|l| l.to_string());
        let mut attrs = vec![
            ("rel", "enclosure"),
            ("type", image.mime_type),
            ("href", image.url),
        ];
        if let Some(length) = &length {
            attrs.push(("length", length));
        }
        if let Some(caption) = &image.caption {
            attrs.push(("title", caption));
        }
        x.empty("link", &attrs)?;
    }
    for a in &e.authors {
        x.start("author", &[])?;
        x.text("name", &[], &a.name)?;
        if let Some(url) = &a.url {
            x.text("uri", &[], url)?;
        }
        if let Some(email) = &a.email {
            x.text("email", &[], email)?;
        }
        x.end("author")?;
    }
    for c in &e.categories {
        x.empty("category", &[("term", c)])?;
    }
    if let Some(source) = &e.source {
        if let Some(rights) = &source.rights {
            x.text("rights", &[("type", "text")], rights)?;
        }
        // RFC 4287 §4.2.11: the source feed's id, title and updated. We keep
        // no copy of the upstream feed, so its page stands for its id (a tag:
        // URI of ours when it has none) and this entry's own update for its
        // `updated`: the source was updated at least then.
        x.start("source", &[])?;
        match source.url {
            Some(url) => x.text("id", &[], url)?,
            None => x.text(
                "id",
                &[],
                &source_tag_uri(&meta.tag_authority, e, &source.name),
            )?,
        }
        if let Some(url) = &source.url {
            x.empty("link", &[("rel", "alternate"), ("href", url)])?;
        }
        x.text("title", &[("type", "text")], &source.name)?;
        x.text("updated", &[], &rfc3339(e.updated_at, zone))?;
        x.end("source")?;
    }
    let body = e.body();
    match (&e.standfirst, body) {
        (Some(summary), _) => x.text("summary", &[("type", "text")], summary)?,
        // An entry with no text at all leaves readers an empty pane (the
        // validator's MissingTextualContent): its headline stands in.
        (None, None) => x.text("summary", &[("type", "text")], &e.headline)?,
        (None, Some(_)) => {}
    }
    if let Some(body) = body {
        x.cdata("content", &[("type", "html")], body)?;
    }
    if let Some(image) = &e.image {
        x.media_content(image)?;
    }
    x.end("entry")
}
