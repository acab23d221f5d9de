//! JSON Feed 1.1 through serde.
//!
//! Field order is the struct order below, so output is byte-stable. What JSON
//! Feed has no field for (rights, the agency, related links, the image's credit
//! and caption) goes in the `_feedsmith` extension object, as the spec asks of
//! extensions: a key starting with an underscore.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Entry, FeedMeta, Paging, Prepared, rfc3339};
use crate::config::Format;

pub const VERSION: &str = "https://jsonfeed.org/version/1.1";

/// The feed object without its `items`, which come last: the whole-slice
/// render and the streamed one both write this, then the items array.
#[derive(Serialize)]
struct Head<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: String,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    favicon: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    authors: Vec<Person<'a>>,
    /// The next (older) page of the feed: JSON Feed 1.1's own paging, the
    /// way RFC 5005's `prev-archive` goes; left out when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    /// WebSub hubs (JSON Feed 1.1 `hubs`); left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    #[serde(rename = "_feedsmith")]
    extension: FeedExtension<'a>,
}

/// One entry of JSON Feed's `hubs`.
#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct FeedExtension<'a> {
    updated: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    rights: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    categories: &'a [String],
    /// On an archive page: RFC 5005's links (`current`, `prev-archive`,
    /// `next-archive`), which JSON Feed has no place for.
    #[serde(skip_serializing_if = "Option::is_none")]
    archive: Option<std::collections::BTreeMap<&'static str, String>>,
}

#[derive(Serialize)]
struct Person<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    /// JSON Feed 1.1 requires `content_html` or `content_text`: an article
    /// without a body gives its standfirst, else its headline, as text.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Person<'a>>,
    #[serde(skip_serializing_if = "<[Cow<'a, str>]>::is_empty")]
    tags: &'a [Cow<'a, str>],
    #[serde(rename = "_feedsmith")]
    extension: ItemExtension<'a>,
}

#[derive(Serialize)]
struct ItemExtension<'a> {
    article_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    section: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rights: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<Source<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<ImageDetails<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related: Vec<Link<'a>>,
}

#[derive(Serialize)]
struct Source<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct ImageDetails<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credit: Option<&'a str>,
}

#[derive(Serialize)]
struct Link<'a> {
    title: &'a str,
    url: &'a str,
}

pub fn render(meta: &FeedMeta, prepared: &Prepared) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(4096 + prepared.text_bytes + prepared.entries.len() * 1024);
    write_head(&mut out, meta, prepared.updated).map_err(|e| e.to_string())?;
    for (i, e) in prepared.entries.iter().enumerate() {
        write_item(&mut out, meta, e, i == 0).map_err(|e| e.to_string())?;
    }
    write_foot(&mut out);
    Ok(out)
}

/// The feed object up to the opening of its `items` array. `updated` (the
/// newest item's `updated_at`) is its only part that depends on the items.
pub fn write_head(
    out: &mut Vec<u8>,
    meta: &FeedMeta,
    updated: DateTime<Utc>,
) -> serde_json::Result<()> {
    let zone = meta.timezone;
    let head = Head {
        version: VERSION,
        title: &meta.title,
        home_page_url: meta.site_url.as_str(),
        feed_url: meta.document_url(Format::Json),
        next_url: meta
            .paging_links(Format::Json)
            .into_iter()
            .find(|(rel, _)| *rel == "prev-archive")
            .map(|(_, url)| url),
        description: &meta.description,
        icon: meta.icon.as_ref().map(|u| u.as_str()),
        favicon: meta.icon.as_ref().map(|u| u.as_str()),
        language: meta.language.as_deref(),
        authors: vec![Person {
            name: &meta.site_title,
            url: Some(meta.site_url.as_str()),
        }],
        hubs: meta
            .hubs
            .iter()
            .map(|url| Hub {
                kind: "WebSub",
                url: url.as_str(),
            })
            .collect(),
        extension: FeedExtension {
            updated: rfc3339(updated, zone),
            rights: meta.rights.as_deref(),
            categories: &meta.categories,
            archive: matches!(meta.paging, Paging::Archive { .. })
                .then(|| meta.paging_links(Format::Json).into_iter().collect()),
        },
    };
    serde_json::to_writer(&mut *out, &head)?;
    // Compact serde_json writes a struct as `{…}`: reopen the object for
    // `items`, its last member, exactly as serialising it with the rest would.
    if out.last() == Some(&b'}') {
        out.pop();
    }
    out.extend_from_slice(b",\"items\":[");
    Ok(())
}

/// One item of the `items` array; every one but the `first` is preceded by
/// the comma that separates it from the one before.
pub fn write_item(
    out: &mut Vec<u8>,
    meta: &FeedMeta,
    e: &Entry,
    first: bool,
) -> serde_json::Result<()> {
    if !first {
        out.push(b',');
    }
    serde_json::to_writer(out, &item(e, meta))
}

/// Everything after the last item: the array's and the object's ends, and
/// the final newline.
pub fn write_foot(out: &mut Vec<u8>) {
    out.extend_from_slice(b"]}\n");
}

fn item<'a>(e: &'a Entry, meta: &FeedMeta) -> Item<'a> {
    let zone = meta.timezone;
    Item {
        id: &e.tag,
        url: e.url,
        title: &e.headline,
        summary: e.standfirst.as_deref(),
        content_html: e.content_with_related.as_deref(),
        content_text: match e.content_with_related {
            Some(_) => None,
            None => Some(e.standfirst.as_deref().unwrap_or(&e.headline)),
        },
        image: e.image.as_ref().map(|i| i.url),
        date_published: rfc3339(e.published_at, zone),
        date_modified: rfc3339(e.updated_at, zone),
        authors: e
            .authors
            .iter()
            .map(|a| Person {
                name: &a.name,
                url: a.url,
            })
            .collect(),
        tags: &e.categories,
        extension: ItemExtension {
            article_id: e.id,
            section: e.section.as_deref(),
            rights: e.source.as_ref().and_then(|s| s.rights.as_deref()),
            source: e.source.as_ref().map(|s| Source {
                name: &s.name,
                url: s.url,
            }),
            image: e.image.as_ref().map(|i| ImageDetails {
                url: i.url,
                mime_type: i.mime_type,
                length: i.length,
                caption: i.caption.as_deref(),
                credit: i.credit.as_deref(),
            }),
            related: e
                .related
                .iter()
                .map(|r| Link {
                    title: &r.title,
                    url: r.url,
                })
                .collect(),
        },
    }
}
