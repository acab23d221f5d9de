//! The streamed build (`builder::FeedStream`, what `feedsmith build` uses)
//! against the whole-slice one (`builder::build`, what the service
//! publishes): the same articles must give the same bytes and ETags however
//! they are chunked, and articles out of feed order must still give them
//! (through the fallback).

mod common;

use common::strategies::articles;
use common::{newest_first, sample_feeds};
use feedsmith::article::Article;
use feedsmith::builder::{self, Document, FeedMeta, FeedStream};
use feedsmith::config::Format;
use proptest::prelude::*;

/// The documents `FeedStream` makes of `articles` given `chunk` at a time,
/// and whether it rendered them as they came.
fn streamed(
    meta: &FeedMeta,
    articles: &[Article],
    formats: &[Format],
    chunk: usize,
) -> (Vec<Document>, bool) {
    let mut stream = FeedStream::new(meta.clone(), formats);
    for piece in articles.chunks(chunk) {
        stream.push(piece.to_vec()).expect("push");
    }
    let in_order = stream.in_order();
    let (docs, given) = stream.finish().expect("finish");
    assert_eq!(given.iter().map(Vec::len).sum::<usize>(), articles.len());
    for doc in &docs {
        assert_eq!(doc.size(), doc.to_document().body.len());
    }
    (docs.iter().map(|d| d.to_document()).collect(), in_order)
}

/// Asserts two lists of documents are the same, naming the first format
/// that differs (and where) rather than printing megabytes.
fn assert_same(streamed: &[Document], built: &[Document], what: &str) {
    assert_eq!(streamed.len(), built.len(), "{what}: document count");
    for (s, b) in streamed.iter().zip(built) {
        if s.body != b.body {
            let at = s
                .body
                .iter()
                .zip(b.body.iter())
                .position(|(x, y)| x != y)
                .unwrap_or(s.body.len().min(b.body.len()));
            let from = at.saturating_sub(80);
            panic!(
                "{what}: {:?} differs at byte {at}:\nstreamed {:?}\nbuilt    {:?}",
                s.format,
                String::from_utf8_lossy(&s.body[from..(at + 80).min(s.body.len())]),
                String::from_utf8_lossy(&b.body[from..(at + 80).min(b.body.len())]),
            );
        }
        assert_eq!(s, b, "{what}: {:?}", s.format);
    }
}

#[test]
fn streamed_sample_feeds_are_the_builders_bytes() {
    for feed in sample_feeds() {
        let formats: Vec<Format> = feed.docs.keys().copied().collect();
        let built: Vec<Document> = formats.iter().map(|f| feed.docs[f].clone()).collect();
        for chunk in [1, 2, 3, 7, 256] {
            let (docs, in_order) = streamed(&feed.meta, &feed.articles, &formats, chunk);
            assert!(in_order, "{}: the samples are in feed order", feed.spec.name);
            assert_same(
                &docs,
                &built,
                &format!("feed {} in chunks of {chunk}", feed.spec.name),
            );
        }
    }
}

#[test]
fn an_empty_feed_streams_like_the_builder() {
    let meta = sample_feeds().remove(0).meta;
    let built = builder::build(&meta, &[], &Format::ALL).expect("build");
    let mut stream = FeedStream::new(meta, &Format::ALL);
    stream.push(Vec::new()).expect("an empty chunk is nothing");
    let (docs, _) = stream.finish().expect("finish");
    let docs: Vec<Document> = docs.iter().map(|d| d.to_document()).collect();
    assert_same(&docs, &built, "empty feed");
}

#[test]
fn articles_out_of_feed_order_fall_back_to_the_builder() {
    let feed = sample_feeds()
        .into_iter()
        .max_by_key(|f| f.articles.len())
        .expect("a sample feed");
    assert!(feed.articles.len() >= 3, "enough articles to reorder");
    let built = builder::build(&feed.meta, &feed.articles, &Format::ALL).expect("build");
    // Oldest first; and in order but for the last two swapped, so the
    // fallback starts after items were already rendered.
    let reversed: Vec<Article> = feed.articles.iter().rev().cloned().collect();
    let mut swapped = feed.articles.clone();
    let n = swapped.len();
    swapped.swap(n - 1, n - 2);
    for (what, list) in [("reversed", reversed), ("last two swapped", swapped)] {
        for chunk in [1, 2, 256] {
            let (docs, in_order) = streamed(&feed.meta, &list, &Format::ALL, chunk);
            assert!(!in_order, "{what}: out of order");
            assert_same(&docs, &built, &format!("{what} in chunks of {chunk}"));
        }
    }
}

/// The first shipped feed's settings (read once: the cases are many).
fn meta() -> &'static FeedMeta {
    static META: std::sync::OnceLock<FeedMeta> = std::sync::OnceLock::new();
    META.get_or_init(|| sample_feeds().remove(0).meta)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_articles_in_any_chunks_give_the_builders_bytes(
        list in articles(12),
        chunk in 1usize..6,
    ) {
        let meta = meta();
        let built = builder::build(meta, &list, &Format::ALL).expect("build");
        let ordered = newest_first(list.clone());
        let (docs, in_order) = streamed(meta, &ordered, &Format::ALL, chunk);
        prop_assert!(in_order);
        assert_same(&docs, &built, "in feed order");
        // As generated: usually out of order, which must not change a byte.
        let (docs, in_order) = streamed(meta, &list, &Format::ALL, chunk);
        prop_assert_eq!(in_order, list == ordered);
        assert_same(&docs, &built, "as generated");
    }
}
