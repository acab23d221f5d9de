//! HTML fragments inside feeds: making body URLs absolute and adding the
//! "Related" list.
//!
//! Feed readers show an article's body out of its page, so a relative `href`
//! or `src` has nothing to resolve against; they are made absolute here against
//! the article URL. Rewriting uses lol_html (a streaming HTML rewriter) so only
//! the attributes change and the rest of the markup passes through byte for
//! byte; bodies with no relative URL (most wire copy) skip it entirely.

use std::borrow::Cow;

use lol_html::{RewriteStrSettings, element, rewrite_str};
use quick_xml::escape::escape;
use url::Url;

use super::EntryLink;

/// Attributes that carry one URL.
const URL_ATTRIBUTES: [&str; 4] = ["href", "src", "poster", "cite"];

/// Returns `body` with every relative URL attribute resolved against `base`
/// (borrowed back unchanged when there is none).
pub fn resolve_urls<'a>(body: Cow<'a, str>, base: &Url) -> Cow<'a, str> {
    if !has_relative_url(&body) {
        return body;
    }
    let mut settings = RewriteStrSettings::new();
    for attr in URL_ATTRIBUTES {
        let selector = format!("[{attr}]");
        settings = settings.append_element_content_handler(element!(selector, move |el| {
            if let Some(value) = el.get_attribute(attr)
                && let Some(absolute) = resolve(base, &value)
            {
                el.set_attribute(attr, &absolute)?;
            }
            Ok(())
        }));
    }
    settings = settings.append_element_content_handler(element!("[srcset]", move |el| {
        if let Some(value) = el.get_attribute("srcset") {
            let resolved = resolve_srcset(base, &value);
            if resolved != value {
                el.set_attribute("srcset", &resolved)?;
            }
        }
        Ok(())
    }));
    // lol_html only fails on memory limits or bad encodings; the body is then
    // served as written rather than not at all.
    match rewrite_str(&body, settings) {
        Ok(rewritten) => Cow::Owned(rewritten),
        Err(_) => body,
    }
}

/// The absolute form of `value`, or `None` when it already is absolute (or is
/// not a URL at all, such as an empty attribute).
fn resolve(base: &Url, value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || has_scheme(trimmed) {
        return None;
    }
    base.join(trimmed).ok().map(String::from)
}

fn resolve_srcset(base: &Url, value: &str) -> String {
    value
        .split(',')
        .map(|candidate| {
            let candidate = candidate.trim();
            let (url, descriptor) = candidate
                .split_once(char::is_whitespace)
                .unwrap_or((candidate, ""));
            let url = resolve(base, url).unwrap_or_else(|| url.to_owned());
            if descriptor.is_empty() {
                url
            } else {
                format!("{url} {}", descriptor.trim())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `scheme:` per RFC 3986: a letter, then letters, digits, `+`, `-`, `.`.
fn has_scheme(value: &str) -> bool {
    let Some((scheme, _)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A quick, conservative scan: false only when every URL attribute value is
/// plainly absolute. It looks only at `name=` where name is one of the URL
/// attributes (any case, spaces allowed around `=`); anything unusual
/// (entities, unquoted values) says true and lets the real parser decide.
fn has_relative_url(body: &str) -> bool {
    let bytes = body.as_bytes();
    for (eq, _) in body.match_indices('=') {
        let mut end = eq;
        while end > 0 && bytes[end - 1].is_ascii_whitespace() {
            end -= 1;
        }
        let mut start = end;
        while start > 0 && bytes[start - 1].is_ascii_alphabetic() {
            start -= 1;
        }
        let name = &body[start..end];
        let srcset = name.eq_ignore_ascii_case("srcset");
        if !srcset && !URL_ATTRIBUTES.iter().any(|a| name.eq_ignore_ascii_case(a)) {
            continue;
        }
        let rest = body[eq + 1..].trim_start();
        let value = match rest.as_bytes().first() {
            Some(&q @ (b'"' | b'\'')) => match rest[1..].find(q as char) {
                Some(close) => &rest[1..1 + close],
                None => return true,
            },
            _ => return true,
        };
        if value.contains('&') {
            return true;
        }
        let all_absolute = if srcset {
            value
                .split(',')
                .all(|c| has_scheme(c.split_whitespace().next().unwrap_or("")))
        } else {
            value.trim().is_empty() || has_scheme(value.trim())
        };
        if !all_absolute {
            return true;
        }
    }
    false
}

/// Appends the related links as a list, the way RSS and JSON Feed carry them.
pub fn append_related(content: &mut String, related: &[EntryLink<'_>]) {
    content.push_str("<aside class=\"related\"><h2>Related</h2><ul>");
    for r in related {
        content.push_str("<li><a href=\"");
        content.push_str(&escape(r.url));
        content.push_str("\">");
        content.push_str(&escape(r.title.as_ref()));
        content.push_str("</a></li>");
    }
    content.push_str("</ul></aside>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://news.example.com/world/2025/09/29/talks?ref=a").expect("literal")
    }

    #[test]
    fn relative_links_and_images_become_absolute() {
        let body = r##"<p><a href="/world/x">x</a> <a href="y.html#z">y</a> <a href="#n1">n</a> <img src="../img/a.jpg" srcset="a.jpg 1x, /b.jpg 2x"></p>"##;
        assert_eq!(
            resolve_urls(body.into(), &base()),
            r##"<p><a href="https://news.example.com/world/x">x</a> <a href="https://news.example.com/world/2025/09/29/y.html#z">y</a> <a href="https://news.example.com/world/2025/09/29/talks?ref=a#n1">n</a> <img src="https://news.example.com/world/2025/09/img/a.jpg" srcset="https://news.example.com/world/2025/09/29/a.jpg 1x, https://news.example.com/b.jpg 2x"></p>"##
        );
    }

    #[test]
    fn absolute_urls_and_other_markup_are_untouched() {
        for body in [
            r#"<p class=x><a href="https://a.example/x?a=1&amp;b=2">x</a><img src='http://b.example/i.png'></p>"#,
            r#"<a href="mailto:desk@example.com">m</a> <a href="tel:+353">t</a>"#,
            "<p>no links at all &amp; <b>bold</b></p>",
            "<p>broken <b>markup</p>",
        ] {
            // Plainly absolute values are not even parsed.
            if !body.contains("&amp;") {
                assert!(
                    matches!(resolve_urls(body.into(), &base()), Cow::Borrowed(_)),
                    "{body}"
                );
            }
            assert_eq!(resolve_urls(body.into(), &base()), body);
        }
    }

    #[test]
    fn protocol_relative_and_unquoted_values_are_resolved() {
        assert_eq!(
            resolve_urls("<a href=//cdn.example/x>x</a>".into(), &base()),
            r#"<a href="https://cdn.example/x">x</a>"#
        );
    }

    #[test]
    fn scan_is_conservative() {
        assert!(!has_relative_url(r#"<a href="https://x">"#));
        assert!(has_relative_url(r#"<a href="/x">"#));
        assert!(has_relative_url(r#"<a HREF="x">"#));
        assert!(has_relative_url(r#"<a href = "x">"#));
        assert!(!has_relative_url(r#"<p>a=b and c = "d"</p>"#));
        assert!(has_relative_url(
            r#"<img srcset="https://a/x.jpg 1x, b.jpg 2x">"#
        ));
        assert!(has_relative_url("<a href=x>"));
        assert!(has_relative_url(r#"<a href="h&#116;tp://x">"#));
    }

    #[test]
    fn related_list_escapes_titles_and_urls() {
        let mut s = String::from("<p>b</p>");
        append_related(
            &mut s,
            &[EntryLink {
                title: "A & \"B\" <c>".into(),
                url: "https://e.com/?a=1&b=2",
            }],
        );
        assert_eq!(
            s,
            "<p>b</p><aside class=\"related\"><h2>Related</h2><ul><li><a href=\"https://e.com/?a=1&amp;b=2\">A &amp; &quot;B&quot; &lt;c&gt;</a></li></ul></aside>"
        );
    }
}
