//! proptest generators of articles for the builder's property tests: text
//! that stresses escaping (`tests/escaping.rs`) and lists of such articles
//! with colliding publish times and optional parts left out
//! (`tests/stream.rs`).

use chrono::{DateTime, Utc};
use feedsmith::article::{Article, Author, Image, Related, Source, Status};
use proptest::prelude::*;
use url::Url;

/// Text that stresses escaping: the characters XML treats specially, controls,
/// CDATA terminators, astral and combining characters, and anything at all.
pub fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("]]>".to_owned()),
        Just("]]".to_owned()),
        Just("&amp;".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("\r\n".to_owned()),
        Just("\u{0}\u{7}\u{b}\u{1b}\u{FFFE}\u{FFFF}".to_owned()),
        Just("🦀 e\u{301} 日本語 \u{202e}".to_owned()),
        "[&<>\"' \t\n\r]{1,4}",
        any::<String>(),
    ];
    prop::collection::vec(pieces, 1..8).prop_map(|v| v.concat())
}

/// Non-blank text, as validation requires for headlines and names.
pub fn visible() -> impl Strategy<Value = String> {
    (nasty(), "[A-Za-z]{1,3}").prop_map(|(s, anchor)| format!("{anchor}{s}{anchor}"))
}

/// Text that is sometimes long, with a CDATA terminator in the middle.
pub fn long() -> impl Strategy<Value = String> {
    prop_oneof![
        nasty(),
        "[a-z ]{2000,5000}".prop_map(|s| format!("{s}]]>{s}"))
    ]
}

prop_compose! {
    /// One article with every text field generated.
    pub fn article()(
        headline in visible(),
        standfirst in nasty(),
        // No '=' so no URL attribute can appear; URL rewriting is tested elsewhere.
        body in long().prop_map(|s| s.replace('=', "-")),
        author in visible(),
        tag in visible(),
        rights in visible(),
        related_title in visible(),
    ) -> Article {
        Article {
            id: "p-1".parse().expect("id"),
            url: Url::parse("https://news.example.com/p?a=1&b=2").expect("url"),
            headline,
            standfirst: Some(standfirst),
            body_html: Some(body),
            authors: vec![Author { name: author, email: None, url: None }],
            source: Some(Source { name: "Agency".into(), rights: Some(rights), url: None }),
            section: None,
            tags: vec![tag],
            image: None,
            related: vec![Related { title: related_title, url: Url::parse("https://e.com/r").expect("url") }],
            published_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time"),
            updated_at: chrono::DateTime::from_timestamp(1_700_000_100, 0).expect("time"),
            status: Status::Published,
        }
    }
}

/// A time among a few, so lists often hold several articles published at
/// the same instant (ordered by id then), some with fractions of a second.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..6, prop_oneof![Just(0u32), Just(250_000_000u32)]).prop_map(|(hours, nanos)| {
        DateTime::from_timestamp(1_700_000_000 + hours * 3600, nanos).expect("time")
    })
}

prop_compose! {
    /// [`article`] with a generated publish time, an update up to a day
    /// later, and some of its optional parts (body, summary, related links,
    /// source, section, image) left out.
    pub fn varied_article()(
        base in article(),
        published_at in instant(),
        later in 0i64..86_400,
        section in proptest::option::of(visible()),
        caption in proptest::option::of(nasty()),
        leave_out in any::<[bool; 5]>(),
    ) -> Article {
        let mut a = base;
        a.published_at = published_at;
        a.updated_at = published_at + chrono::Duration::seconds(later);
        a.section = section;
        if leave_out[0] { a.body_html = None; }
        if leave_out[1] { a.standfirst = None; }
        if leave_out[2] { a.related.clear(); }
        if leave_out[3] { a.source = None; }
        if !leave_out[4] {
            a.image = Some(Image {
                url: Url::parse("https://news.example.com/i.png").expect("url"),
                caption,
                credit: None,
                mime_type: None,
                length: Some(1234),
            });
        }
        a
    }
}

/// Up to `max` articles with distinct ids (`a-0`, `a-1`, … in a shuffled
/// order, so id order is not list order), in no particular order.
pub fn articles(max: usize) -> impl Strategy<Value = Vec<Article>> {
    prop::collection::vec(varied_article(), 0..=max)
        .prop_flat_map(|list| {
            let n = list.len();
            (Just(list), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
        })
        .prop_map(|(mut list, numbers)| {
            for (a, k) in list.iter_mut().zip(numbers) {
                a.id = format!("a-{k}").parse().expect("id");
            }
            list
        })
}
