//! Property tests: whatever text an article holds — control characters, `]]>`,
//! markup, quotes, any Unicode, very long strings — every document stays
//! well-formed and parses back to the same text, except that characters XML 1.0
//! forbids are removed and line ends become LF (both documented).

mod common;

use common::strategies::article;
use feedsmith::article::is_xml_char;
use feedsmith::builder::{self, FeedMeta};
use feedsmith::config::Format;
use proptest::prelude::*;
use url::Url;

fn meta() -> FeedMeta {
    FeedMeta {
        name: "p".parse().expect("name"),
        title: "Property feed".into(),
        description: "d".into(),
        site_title: "Site".into(),
        site_url: Url::parse("https://news.example.com/").expect("url"),
        base_url: Url::parse("https://feeds.example.com/").expect("url"),
        language: None,
        rights: None,
        logo: None,
        icon: None,
        timezone: chrono_tz::Europe::Dublin,
        ttl_minutes: 5,
        categories: vec![],
        tag_authority: "feeds.example.com".into(),
        hubs: Vec::new(),
        paging: Default::default(),
    }
}

/// What a document should say for `input`. (feed-rs trims the text of
/// elements, as readers do, so element text is compared trimmed.)
fn expected(input: &str) -> String {
    input
        .chars()
        .filter(|&c| is_xml_char(c))
        .collect::<String>()
        .replace("\r\n", "\n")
        .replace('\r', "\n")
}

/// Every value of `attr` on `element`, as an XML 1.0 parser must read it.
fn normalized_attributes(xml: &[u8], element: &str, attr: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let decoder = reader.decoder();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).expect("well-formed") {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == element.as_bytes() => {
                for a in e.attributes() {
                    let a = a.expect("attribute");
                    if a.key.as_ref() == attr.as_bytes() {
                        let v = a
                            .decoded_and_normalized_value(
                                quick_xml::XmlVersion::Explicit1_0,
                                decoder,
                            )
                            .expect("value");
                        out.push(v.into_owned());
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

fn non_blank(s: String) -> Option<String> {
    if s.trim().is_empty() { None } else { Some(s) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_format_round_trips_any_text(a in article()) {
        let docs = builder::build(&meta(), std::slice::from_ref(&a), &Format::ALL).expect("build");
        for doc in &docs {
            let text = std::str::from_utf8(&doc.body).expect("utf-8");
            prop_assert!(text.chars().all(is_xml_char), "{:?} has a forbidden character", doc.format);
            let feed = feed_rs::parser::parse(&doc.body[..]);
            prop_assert!(feed.is_ok(), "{:?} does not parse: {:?}", doc.format, feed.err());
            let feed = feed.expect("checked");
            let e = &feed.entries[0];
            prop_assert_eq!(e.title.as_ref().map(|t| t.content.clone()), Some(expected(&a.headline)), "{:?} title", doc.format);
            // RSS readers take `description` as HTML, so the plain standfirst is
            // written HTML-escaped there: read it back as HTML text.
            let summary = e.summary.as_ref().map(|t| match doc.format {
                Format::Rss => html_escape::decode_html_entities(&t.content).trim().to_owned(),
                _ => t.content.trim().to_owned(),
            });
            let mut want = a.standfirst.as_deref().map(expected).and_then(non_blank);
            // Atom gives an entry with no text at all its headline as summary.
            if want.is_none() && doc.format == Format::Atom && builder::Entry::prepare(&a).body().is_none() {
                want = Some(expected(&a.headline));
            }
            prop_assert_eq!(summary, want.map(|s| s.trim().to_owned()), "{:?} summary", doc.format);
            let body = e.content.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
            let want_body = expected(a.body_html.as_deref().unwrap_or_default());
            prop_assert!(body.trim().starts_with(want_body.trim()), "{:?} body differs:\n{:?}\n{:?}", doc.format, body, want_body);
            let names: Vec<Option<String>> = e.authors.iter().map(|p| p.name.clone()).collect();
            prop_assert_eq!(names, vec![Some(expected(&a.authors[0].name))], "{:?} author", doc.format);
            let terms: Vec<String> = e.categories.iter().map(|c| c.term.clone()).collect();
            prop_assert_eq!(terms, vec![expected(&a.tags[0])], "{:?} category", doc.format);
        }
        // Fields feed-rs does not map, read from the JSON and the Atom directly.
        let json: serde_json::Value = serde_json::from_slice(&docs[2].body).expect("json");
        let rights = a.source.as_ref().and_then(|s| s.rights.as_deref()).map(expected);
        prop_assert_eq!(json["items"][0]["_feedsmith"]["rights"].as_str().map(str::to_owned), rights.clone());
        let atom = feed_rs::parser::parse(&docs[1].body[..]).expect("atom");
        let entry = &atom.entries[0];
        prop_assert_eq!(entry.rights.as_ref().map(|r| r.content.clone()), rights);
        let related: Vec<Option<String>> = entry.links.iter().filter(|l| l.rel.as_deref() == Some("related")).map(|l| l.title.clone()).collect();
        prop_assert_eq!(related, vec![Some(expected(&a.related[0].title))]);
        // feed-rs does not apply XML attribute-value normalisation; a conforming
        // parser turns raw tabs and newlines in attributes into spaces.
        prop_assert_eq!(normalized_attributes(&docs[1].body, "link", "title"), vec![expected(&a.related[0].title)]);
        prop_assert_eq!(normalized_attributes(&docs[1].body, "category", "term"), vec![expected(&a.tags[0])]);
    }
}
