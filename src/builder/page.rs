//! A feed's page for people: `/feeds/{name}` as HTML, read in a browser.
//!
//! Built at publish time from the same prepared entries as the feed's
//! documents, never per request, and like them a pure function of the feed's
//! settings and articles: times are the articles' own, written in the site's
//! timezone as a reader would write them ("Updated 12.50pm, 29 September
//! 2015"), never "now". Every piece of article text is escaped as text — the
//! page shows no article HTML, so no markup an article carries can act — and
//! every link is an `http(s)` URL the article model already checked. The
//! page needs no script: subscribing is a link, or an address in a read-only
//! field to select and copy. Its one `<style>` is allowed by hash in
//! [`CONTENT_SECURITY_POLICY`], which forbids everything else.

use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use html_escape::{encode_double_quoted_attribute, encode_text};
use sha2::{Digest, Sha256};

use super::{EMPTY_FEED_UPDATED, Entry, FeedMeta, entry, site, sort_newest_first};
use crate::article::Article;
use crate::config::Format;

/// How many stories a page lists, newest first: a page is for reading, and
/// the feed documents carry the rest.
pub const PAGE_ITEMS: usize = 100;

/// A feed's page, ready to serve.
#[derive(Debug, Clone)]
pub struct Page {
    /// The HTML.
    pub body: Vec<u8>,
    /// The newest update of the stories it lists (`Last-Modified`), or the
    /// epoch for an empty feed, as the feed documents do.
    pub updated: DateTime<Utc>,
}

/// The page of `meta`'s feed, from the newest [`PAGE_ITEMS`] of `articles`
/// (in any order) and subscribe links for `formats`.
pub fn build(meta: &FeedMeta, articles: &[Article], formats: &[Format]) -> Page {
    let mut ordered: Vec<&Article> = articles.iter().collect();
    sort_newest_first(&mut ordered);
    ordered.truncate(PAGE_ITEMS);
    let entries: Vec<Entry<'_>> = ordered.into_iter().map(|a| entry(meta, a)).collect();
    let updated = entries
        .iter()
        .map(|e| e.updated_at)
        .max()
        .unwrap_or(EMPTY_FEED_UPDATED);
    Page {
        body: feed_page(meta, &entries, formats),
        updated,
    }
}

/// The page's stylesheet, inline so the page is one request; allowed by its
/// hash, so no other style (an article's included) could apply.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}header{border-bottom:2px solid #1a1a1a;\
margin-bottom:1rem}ol{list-style:none;padding:0}li{border-top:1px solid #ccc;padding:1rem 0}\
h2{margin:.2rem 0;font-size:1.25rem}h2 a{color:inherit}time{color:#555}\
figure{margin:.5rem 0}img{max-width:100%;height:auto}figcaption{font-size:.9rem;color:#444}\
.credit,.rights{font-size:.85rem;color:#555}.tags{font-size:.85rem;padding:0;margin:.3rem 0}\
.tags li{display:inline;border:0;padding:0 .6rem 0 0}\
.subscribe input{width:100%;font:inherit;padding:.2rem}";

/// The `Content-Security-Policy` of the feed pages: nothing but the page's
/// own stylesheet and images over http(s); no script, frame, form, plugin or
/// base change at all.
pub static CONTENT_SECURITY_POLICY: LazyLock<String> = LazyLock::new(|| {
    let hash = base64(&Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; img-src https: http:; style-src 'sha256-{hash}'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
});

/// Standard base64 with padding (RFC 4648 §4), as CSP hash sources want.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// "12.50pm, 29 September 2015": the time in `tz`, as a reader writes it.
pub fn reader_time(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%-I.%M%P, %-d %B %Y")
        .to_string()
}

/// The `/feeds/{name}` page for `meta`'s feed, listing `entries` in their
/// order, with subscribe links for each of `formats`.
fn feed_page(meta: &FeedMeta, entries: &[Entry<'_>], formats: &[Format]) -> Vec<u8> {
    let mut out = String::with_capacity(4096 + entries.len() * 1024);
    let title = encode_text(&meta.title);
    let site_title = encode_text(&meta.site_title);
    let lang = meta
        .language
        .as_deref()
        .map(|l| format!(" lang=\"{}\"", encode_double_quoted_attribute(l)))
        .unwrap_or_default();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html{lang}>\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · {site_title}</title>\n"
    );
    for &format in formats {
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"{}\" title=\"{} ({})\" href=\"{}\">",
            site::media_type(format),
            encode_double_quoted_attribute(&meta.title),
            site::label(format),
            encode_double_quoted_attribute(&meta.self_url(format)),
        );
    }
    let home = format!("{}/", meta.base_url.as_str().trim_end_matches('/'));
    let _ = write!(
        out,
        "<style>{STYLE}</style>\n</head>\n<body>\n<header>\n\
         <p><a href=\"{}\">{site_title}</a></p>\n<h1>{title}</h1>\n<p>{}</p>\n</header>\n",
        encode_double_quoted_attribute(&home),
        encode_text(&meta.description),
    );
    subscribe(&mut out, meta, formats);
    if entries.is_empty() {
        out.push_str("<p>No stories yet.</p>\n");
    } else {
        out.push_str("<ol class=\"items\">\n");
        for e in entries {
            item(&mut out, e, meta.timezone);
        }
        out.push_str("</ol>\n");
    }
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}

/// The subscribe section: a link per format, and each address in a
/// read-only field to copy (select it; no script needed).
fn subscribe(out: &mut String, meta: &FeedMeta, formats: &[Format]) {
    out.push_str("<section class=\"subscribe\">\n<h2>Subscribe</h2>\n<p>");
    let links: Vec<String> = formats
        .iter()
        .map(|&f| {
            format!(
                "<a href=\"{}\" type=\"{}\">{}</a>",
                encode_double_quoted_attribute(&meta.self_url(f)),
                site::media_type(f),
                site::label(f)
            )
        })
        .collect();
    out.push_str(&links.join(" · "));
    out.push_str("</p>\n");
    for &f in formats {
        let id = format!("address-{}", f.extension());
        let _ = writeln!(
            out,
            "<p><label for=\"{id}\">{} address, to paste into your feed reader:</label><br>\
             <input id=\"{id}\" type=\"url\" readonly value=\"{}\"></p>",
            site::label(f),
            encode_double_quoted_attribute(&meta.self_url(f)),
        );
    }
    // An archived feed's older stories (RFC 5005 pages, newest first from
    // here), for readers and people who want more than the newest.
    if let super::Paging::Subscription { newest_page } = meta.paging {
        let pages: Vec<String> = formats
            .iter()
            .map(|&f| {
                format!(
                    "<a href=\"{}\" type=\"{}\">{}</a>",
                    encode_double_quoted_attribute(&meta.archive_url(newest_page, f)),
                    site::media_type(f),
                    site::label(f)
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"archive\" id=\"archive\">Older stories, in the archive: {}</p>",
            pages.join(" · ")
        );
    }
    out.push_str("</section>\n");
}

/// One story: headline, times, standfirst, image, rights and tags.
fn item(out: &mut String, e: &Entry<'_>, tz: Tz) {
    let _ = write!(
        out,
        "<li>\n<article>\n<h2><a href=\"{}\">{}</a></h2>\n<p class=\"times\">",
        encode_double_quoted_attribute(e.url),
        encode_text(&e.headline),
    );
    let _ = write!(
        out,
        "<time datetime=\"{}\">Published {}</time>",
        e.published_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        reader_time(e.published_at, tz)
    );
    if e.updated_at > e.published_at {
        let _ = write!(
            out,
            " · <time datetime=\"{}\">Updated {}</time>",
            e.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            reader_time(e.updated_at, tz)
        );
    }
    out.push_str("</p>\n");
    if !e.authors.is_empty() {
        let names: Vec<String> = e
            .authors
            .iter()
            .map(|a| encode_text(&a.name).into_owned())
            .collect();
        let _ = writeln!(out, "<p class=\"byline\">By {}</p>", names.join(", "));
    }
    if let Some(standfirst) = &e.standfirst {
        let _ = writeln!(
            out,
            "<p class=\"standfirst\">{}</p>",
            encode_text(standfirst)
        );
    }
    if let Some(image) = &e.image {
        let alt = image.caption.as_deref().unwrap_or_default();
        let _ = write!(
            out,
            "<figure>\n<img src=\"{}\" alt=\"{}\" loading=\"lazy\" referrerpolicy=\"no-referrer\">\n",
            encode_double_quoted_attribute(image.url),
            encode_double_quoted_attribute(alt),
        );
        if image.caption.is_some() || image.credit.is_some() {
            out.push_str("<figcaption>");
            if let Some(caption) = &image.caption {
                out.push_str(&encode_text(caption));
            }
            if let Some(credit) = &image.credit {
                let _ = write!(
                    out,
                    " <span class=\"credit\">Photograph: {}</span>",
                    encode_text(credit)
                );
            }
            out.push_str("</figcaption>\n");
        }
        out.push_str("</figure>\n");
    }
    if let Some(source) = &e.source {
        let text = source.rights.as_deref().unwrap_or(&source.name);
        let _ = writeln!(out, "<p class=\"rights\">{}</p>", encode_text(text));
    }
    if !e.categories.is_empty() {
        out.push_str("<ul class=\"tags\">");
        for c in &e.categories {
            let _ = write!(out, "<li>{}</li>", encode_text(c));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</article>\n</li>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_a_person_writes_them_in_the_site_zone() {
        let at: DateTime<Utc> = "2015-09-29T11:50:00Z".parse().expect("time");
        assert_eq!(
            reader_time(at, chrono_tz::Europe::Dublin),
            "12.50pm, 29 September 2015"
        );
        let morning: DateTime<Utc> = "2015-01-05T08:05:00Z".parse().expect("time");
        assert_eq!(
            reader_time(morning, chrono_tz::Europe::Dublin),
            "8.05am, 5 January 2015"
        );
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn the_policy_allows_the_page_style_and_no_script() {
        let csp = CONTENT_SECURITY_POLICY.as_str();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(!csp.contains("unsafe"), "{csp}");
        assert!(csp.contains("style-src 'sha256-"), "{csp}");
    }
}
