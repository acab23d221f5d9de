//! RSS 2.0 through the `rss` crate, with the Media RSS, Dublin Core, DC Terms
//! and Atom elements it has no typed support for written as extensions.
//!
//! The crate stores dates as strings (we format RFC 822 ourselves), has no
//! `media:` module, and only declares namespaces it knows it used; so all five
//! namespaces are declared explicitly on `<rss>`, once, in a fixed order, even
//! for an empty feed.

use std::collections::BTreeMap;

use ::rss::extension::dublincore::DublinCoreExtension;
use ::rss::extension::{Extension, ExtensionMap};
use ::rss::{Category, Channel, Enclosure, Guid, Image, Item, Source};

use super::{Entry, FeedMeta, GENERATOR, Prepared, image_type, rfc822, rfc3339};
use crate::config::Format;

pub const NAMESPACES: [(&str, &str); 5] = [
    ("atom", "http://www.w3.org/2005/Atom"),
    ("content", "http://purl.org/rss/1.0/modules/content/"),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("dcterms", "http://purl.org/dc/terms/"),
    ("media", "http://search.yahoo.com/mrss/"),
];

fn ext(name: &str, value: Option<String>, attrs: &[(&str, &str)]) -> Extension {
    Extension {
        name: name.to_owned(),
        value,
        attrs: attrs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        children: BTreeMap::new(),
    }
}

fn insert(map: &mut ExtensionMap, prefix: &str, local: &str, e: Extension) {
    map.entry(prefix.to_owned())
        .or_default()
        .entry(local.to_owned())
        .or_default()
        .push(e);
}

fn categories(names: &[String]) -> Vec<Category> {
    names
        .iter()
        .map(|c| Category {
            name: c.clone(),
            domain: None,
        })
        .collect()
}

pub fn render(meta: &FeedMeta, prepared: &Prepared) -> Result<Vec<u8>, String> {
    let zone = meta.timezone;
    let self_url = meta.self_url(Format::Rss);
    let mut extensions = ExtensionMap::new();
    insert(
        &mut extensions,
        "atom",
        "link",
        ext(
            "atom:link",
            None,
            &[
                ("href", &self_url),
                ("rel", "self"),
                ("type", "application/rss+xml"),
            ],
        ),
    );
    let channel = Channel {
        title: meta.title.clone(),
        link: meta.site_url.to_string(),
        description: meta.description.clone(),
        language: meta.language.clone(),
        copyright: meta.rights.clone(),
        last_build_date: Some(rfc822(prepared.updated, zone)),
        categories: categories(&meta.categories),
        generator: Some(format!("{GENERATOR} {}", env!("CARGO_PKG_VERSION"))),
        docs: Some("https://www.rssboard.org/rss-specification".to_owned()),
        ttl: Some(meta.ttl_minutes.to_string()),
        image: meta.logo.as_ref().map(|logo| Image {
            url: logo.to_string(),
            title: meta.title.clone(),
            link: meta.site_url.to_string(),
            ..Default::default()
        }),
        items: prepared.entries.iter().map(|e| item(e, meta)).collect(),
        extensions,
        namespaces: NAMESPACES
            .iter()
            .map(|(p, u)| ((*p).to_owned(), (*u).to_owned()))
            .collect(),
        ..Default::default()
    };
    channel
        .pretty_write_to(Vec::new(), b' ', 2)
        .map_err(|e| e.to_string())
}

fn item(e: &Entry, meta: &FeedMeta) -> Item {
    let zone = meta.timezone;
    let mut extensions = ExtensionMap::new();
    insert(
        &mut extensions,
        "dcterms",
        "modified",
        ext("dcterms:modified", Some(rfc3339(e.updated_at, zone)), &[]),
    );
    let mut enclosure = None;
    if let Some(image) = &e.image {
        let mime = image_type(image);
        let mut media = ext(
            "media:content",
            None,
            &[
                ("url", image.url.as_str()),
                ("medium", "image"),
                ("type", mime),
            ],
        );
        if let Some(length) = image.length {
            media
                .attrs
                .insert("fileSize".to_owned(), length.to_string());
        }
        if let Some(credit) = &image.credit {
            media.children.insert(
                "credit".to_owned(),
                vec![ext(
                    "media:credit",
                    Some(credit.clone()),
                    &[("role", "photographer"), ("scheme", "urn:ebu")],
                )],
            );
        }
        if let Some(caption) = &image.caption {
            media.children.insert(
                "description".to_owned(),
                vec![ext(
                    "media:description",
                    Some(caption.clone()),
                    &[("type", "plain")],
                )],
            );
        }
        insert(&mut extensions, "media", "content", media);
        enclosure = Some(Enclosure {
            url: image.url.to_string(),
            // RSS requires a length; 0 is the recognised "unknown".
            length: image.length.unwrap_or(0).to_string(),
            mime_type: mime.to_owned(),
        });
    }
    let dublin_core = DublinCoreExtension {
        creators: e.authors.iter().map(|a| a.name.clone()).collect(),
        rights: e
            .source
            .as_ref()
            .and_then(|s| s.rights.clone())
            .into_iter()
            .collect(),
        ..Default::default()
    };
    Item {
        title: Some(e.headline.clone()),
        link: Some(e.url.clone()),
        description: e.standfirst.clone(),
        categories: categories(&e.categories),
        enclosure,
        guid: Some(Guid {
            value: e.tag.clone(),
            permalink: false,
        }),
        pub_date: Some(rfc822(e.published_at, zone)),
        source: e.source.as_ref().and_then(|s| {
            s.url.as_ref().map(|url| Source {
                url: url.to_string(),
                title: Some(s.name.clone()),
            })
        }),
        content: e.content_with_related.clone(),
        extensions,
        dublin_core_ext: Some(dublin_core),
        ..Default::default()
    }
}
