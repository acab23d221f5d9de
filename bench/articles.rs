//! Generated articles and feed metadata for the in-process benchmarks: the
//! shape of `bench/gen_articles.py` (every field filled, eight ~50-word
//! paragraphs of body, two related links, an image with caption and credit, an
//! agency source; about 3.7 KB of JSON each), validated as an import would.
//! A fixed-seed generator keeps every run on the same input.
//!
//! Shared by `benches/builder.rs` and `bench/compression_levels.rs` through
//! `#[path]`; the includer also declares `mod splitmix` (`bench/splitmix.rs`).

use feedsmith::article::{Article, RawArticle, ValidationContext};
use feedsmith::builder::FeedMeta;
use serde_json::json;
use url::Url;

use super::splitmix::Rng;

const SECTIONS: [&str; 6] = [
    "World", "Business", "Sport", "Culture", "Science", "Politics",
];
const TAGS: [&str; 15] = [
    "UN",
    "Russia",
    "Climate",
    "Energy",
    "Housing",
    "Elections",
    "Markets",
    "Health",
    "Transport",
    "Technology",
    "Ireland",
    "Europe",
    "Trade",
    "Weather",
    "Courts",
];
const NAMES: [&str; 9] = [
    "Aoife Brennan",
    "Ciarán Walsh",
    "Maeve Doherty",
    "Paul Lenz",
    "Sofia Marques",
    "Ingrid Halvorsen",
    "Niamh Fitzgerald",
    "Tomás Ó Briain",
    "Zoë O'Sullivan",
];
const AGENCIES: [(&str, &str); 2] = [
    ("Northwire", "https://northwire.example.org/"),
    ("Meridian Wire", "https://meridianwire.example.net/"),
];
const WORDS: &str = "the minister said on Thursday that talks would continue into next week while officials \
     in several capitals cautioned against expecting a breakthrough before the summit \
     analysts noted that markets had already priced in a delay & investors remained \
     wary of <volatile> conditions ahead of the central bank's decision";

/// `n` random words, the first letter capitalised, ending with a full stop
/// (Python's `" ".join(...).capitalize() + "."`; every word is lower case
/// already apart from "Thursday", which `capitalize` lowers).
fn paragraph(rng: &mut Rng, words: &[&str], n: usize) -> String {
    let mut s = String::with_capacity(n * 8);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&rng.pick(words).to_lowercase());
    }
    let mut chars = s.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    out.push('.');
    out
}

/// One article in the import shape of `bench/gen_articles.py`.
fn raw_article(i: usize, rng: &mut Rng, words: &[&str]) -> serde_json::Value {
    let section = SECTIONS[i % SECTIONS.len()];
    let lower = section.to_lowercase();
    let day = 1 + i % 28;
    let month = 1 + (i / 28) % 12;
    let year = 2020 + (i / (28 * 12)) % 6;
    let hour = 6 + i % 14;
    let (agency, agency_url) = AGENCIES[i % 2];
    let body: String = (0..8)
        .map(|_| format!("<p>{}</p>", paragraph(rng, words, 50)))
        .collect();
    let mut headline = paragraph(rng, words, 10);
    headline.pop();
    let standfirst = paragraph(rng, words, 25);
    let authors: Vec<_> = (0..1 + i % 2)
        .map(|_| json!({"name": rng.pick(&NAMES), "email": null, "url": null}))
        .collect();
    let mut tags: Vec<&str> = Vec::with_capacity(3);
    while tags.len() < 3 {
        let t = *rng.pick(&TAGS);
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    let caption = paragraph(rng, words, 12);
    let credit = *rng.pick(&NAMES);
    let related: Vec<_> = (0..2)
        .map(|k| {
            json!({
                "title": paragraph(rng, words, 6),
                "url": format!("https://news.example.com/related/{i}-{k}"),
            })
        })
        .collect();
    json!({
        "id": format!("{lower}-{year}-{i:07}"),
        "url": format!("https://news.example.com/{lower}/{year}/{month:02}/{day:02}/story-{i}"),
        "headline": headline,
        "standfirst": standfirst,
        "body_html": body,
        "authors": authors,
        "source": {"name": agency, "rights": format!("© {agency}, {year}"), "url": agency_url},
        "section": section,
        "tags": tags,
        "image": {
            "url": format!("https://news.example.com/images/{i}.jpg"),
            "caption": caption,
            "credit": credit,
            "mime_type": "image/jpeg",
            "length": 40_000 + i % 9_000,
        },
        "related": related,
        "published_at": format!("{year}-{month:02}-{day:02}T{hour:02}:{:02}:00", i % 60),
        "updated_at": format!("{year}-{month:02}-{day:02}T{:02}:{:02}:00", hour + 1, i % 60),
        "status": "published",
    })
}

/// `n` validated articles; the same `n` always gives the same articles.
pub fn articles(n: usize) -> Vec<Article> {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut rng = Rng::new(1);
    (0..n)
        .map(|i| {
            let value = raw_article(i, &mut rng, &words);
            let raw: RawArticle = serde_json::from_value(value).expect("generated article parses");
            raw.validate(ValidationContext {
                timezone: chrono_tz::Europe::Dublin,
            })
            .expect("generated article is valid")
            .article
        })
        .collect()
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("literal URL")
}

pub fn meta() -> FeedMeta {
    FeedMeta {
        name: "latest".parse().expect("literal feed name"),
        title: "Latest news".to_owned(),
        description: "The newest stories from every desk".to_owned(),
        site_title: "Example News".to_owned(),
        site_url: url("https://news.example.com/"),
        base_url: url("https://feeds.example.com/"),
        language: Some("en-IE".to_owned()),
        rights: Some("© Example News".to_owned()),
        logo: Some(url("https://news.example.com/logo.png")),
        icon: Some(url("https://news.example.com/icon.png")),
        timezone: chrono_tz::Europe::Dublin,
        ttl_minutes: 15,
        categories: vec!["World".to_owned(), "Business".to_owned()],
        tag_authority: "feeds.example.com".to_owned(),
        hubs: Vec::new(),
        paging: Default::default(),
    }
}
