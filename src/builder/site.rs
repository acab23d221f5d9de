//! The site-wide documents: the HTML index at `/` and the OPML list at
//! `/feeds.opml`.
//!
//! Both are pure functions of the configuration, like the feeds: no clock, so
//! their bytes and ETags only change when the feed list does. The index works
//! without any script and carries an autodiscovery `<link rel="alternate">` for
//! every feed and format, which is how browsers and readers find feeds on a page.

use quick_xml::escape::escape;

use super::FeedMeta;
use crate::config::{Config, Format};

/// `{base_url}/{path}`, without a doubled slash.
fn site_url(config: &Config, path: &str) -> String {
    format!(
        "{}/{path}",
        config.server.base_url.as_str().trim_end_matches('/')
    )
}

pub(crate) fn media_type(format: Format) -> &'static str {
    match format {
        Format::Rss => "application/rss+xml",
        Format::Atom => "application/atom+xml",
        Format::Json => "application/feed+json",
    }
}

pub(crate) fn label(format: Format) -> &'static str {
    match format {
        Format::Rss => "RSS",
        Format::Atom => "Atom",
        Format::Json => "JSON Feed",
    }
}

/// The `/` page: every feed with autodiscovery links, from the configuration
/// alone, so it changes only when the configuration does.
pub fn index_html(config: &Config) -> Vec<u8> {
    let site = &config.site;
    let title = escape(site.title.as_str());
    let mut head_links = String::new();
    let mut list = String::new();
    for spec in config.feeds.values() {
        let meta = FeedMeta::new(config, spec);
        let feed_title = escape(spec.title.as_str());
        let mut links = Vec::new();
        for &format in &spec.formats {
            let url = escape(meta.self_url(format)).into_owned();
            head_links.push_str(&format!(
                "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{url}\">\n",
                media_type(format),
                feed_title,
                label(format)
            ));
            links.push(format!(
                "<a href=\"{url}\" type=\"{}\">{}</a>",
                media_type(format),
                label(format)
            ));
        }
        let page = escape(site_url(config, &format!("feeds/{}", spec.name))).into_owned();
        // An archived feed's older stories: its page lists the archive's
        // entry point in every format (the newest archive page changes as
        // the feed moves on; this index only changes with the feed list).
        let archive = if config.archive_page_size(spec).is_some() {
            format!(
                "<p class=\"archive\"><a href=\"{page}#archive\">Older stories, in the archive</a></p>\n"
            )
        } else {
            String::new()
        };
        list.push_str(&format!(
            "<li>\n<h2><a href=\"{page}\">{feed_title}</a></h2>\n<p>{}</p>\n<p class=\"formats\">{}</p>\n{archive}</li>\n",
            escape(meta.description.as_str()),
            links.join(" · ")
        ));
    }
    let lang = site
        .language
        .as_deref()
        .map(|l| format!(" lang=\"{}\"", escape(l)))
        .unwrap_or_default();
    let description = site
        .description
        .as_deref()
        .map(|d| format!("<p>{}</p>\n", escape(d)))
        .unwrap_or_default();
    let opml = escape(site_url(config, "feeds.opml")).into_owned();
    format!(
        "<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} feeds</title>\n{head_links}\
         <style>body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         ul{{list-style:none;padding:0}}li{{border-top:1px solid #ccc;padding:.5rem 0}}h2{{margin:.2rem 0;font-size:1.2rem}}</style>\n\
         </head>\n<body>\n<h1>{title}</h1>\n{description}\
         <p>Copy a feed's address into your feed reader to subscribe. \
         <a href=\"{opml}\" type=\"text/x-opml\">All feeds as OPML</a> for readers that import subscription lists.</p>\n\
         <ul>\n{list}</ul>\n</body>\n</html>\n"
    )
    .into_bytes()
}

/// OPML 2.0: one outline per feed, pointing at its RSS (else Atom, else JSON).
pub fn opml(config: &Config) -> Vec<u8> {
    let site = &config.site;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n<head>\n",
    );
    out.push_str(&format!(
        "<title>{} feeds</title>\n",
        escape(site.title.as_str())
    ));
    out.push_str("<docs>http://opml.org/spec2.opml</docs>\n</head>\n<body>\n");
    for spec in config.feeds.values() {
        let meta = FeedMeta::new(config, spec);
        let Some(&format) = [Format::Rss, Format::Atom, Format::Json]
            .iter()
            .find(|f| spec.formats.contains(f))
        else {
            continue;
        };
        // OPML names every feed subscription type "rss", whatever its format.
        let kind = "rss";
        let mut attrs = vec![
            ("type", kind.to_owned()),
            ("text", spec.title.clone()),
            ("title", spec.title.clone()),
            ("description", meta.description.clone()),
            ("xmlUrl", meta.self_url(format)),
            ("htmlUrl", site.url.to_string()),
        ];
        if let Some(lang) = &site.language {
            attrs.push(("language", lang.clone()));
        }
        out.push_str("<outline");
        for (k, v) in attrs {
            out.push_str(&format!(" {k}=\"{}\"", escape(v.as_str())));
        }
        out.push_str("/>\n");
    }
    out.push_str("</body>\n</opml>\n");
    out.into_bytes()
}
