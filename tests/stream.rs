//! The streamed build (`builder::FeedStream`, what `feedsmith build` uses)
//! against the whole-slice one (`builder::build`, what the service
//! publishes): the same articles must give the same bytes and ETags however
//! they are chunked; articles out of feed order must stop the stream, and
//! `feedsmith build` must then still write the same bytes (its fallback).

mod common;

use common::strategies::articles;
use common::{newest_first, sample_articles, sample_feeds, shipped_config, sqlite_store};
use feedsmith::app;
use feedsmith::article::{Article, ArticleFilter, ArticleId};
use std::sync::Mutex;

use feedsmith::builder::{self, Document, ETag, FeedMeta, FeedStream, ItemSink};
use feedsmith::config::Format;
use feedsmith::store::{
    ArticleStore, Revision, SourceState, SqliteStore, StoreError, StoredArticle, Upserted,
};
use futures_util::stream::BoxStream;
use proptest::prelude::*;

/// Collects what a stream hands on, per document.
struct Collect(Vec<Mutex<Vec<u8>>>);

impl ItemSink for Collect {
    fn items(&self, slot: usize, items: &[u8]) -> std::io::Result<()> {
        self.0[slot].lock().expect("lock").extend_from_slice(items);
        Ok(())
    }
}

/// The documents `FeedStream` makes of `articles` given `chunk` at a time
/// (head, the items it handed on, foot); `None` if it found them out of
/// feed order.
fn streamed(
    meta: &FeedMeta,
    articles: &[Article],
    formats: &[Format],
    chunk: usize,
) -> Option<Vec<Document>> {
    let mut stream = FeedStream::new(meta.clone(), formats);
    let sink = Collect(formats.iter().map(|_| Mutex::new(Vec::new())).collect());
    for piece in articles.chunks(chunk) {
        stream.push_to(piece, &sink).expect("push_to");
    }
    let in_order = stream.in_order();
    let ends = stream.finish_ends(&[]).expect("finish_ends");
    assert_eq!(ends.is_some(), in_order);
    let docs = ends?
        .into_iter()
        .zip(sink.0)
        .map(|(ends, items)| {
            let items = items.into_inner().expect("lock");
            let body = [ends.head, items, ends.foot].concat();
            Document {
                format: ends.format,
                etag: ETag::of(&body),
                body: body.into(),
                content_type: builder::content_type(ends.format),
                last_modified: ends.last_modified,
            }
        })
        .collect();
    Some(docs)
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
            let docs = streamed(&feed.meta, &feed.articles, &formats, chunk)
                .unwrap_or_else(|| panic!("{}: the samples are in feed order", feed.spec.name));
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
    let docs = streamed(&meta, &[], &Format::ALL, 1).expect("in order");
    assert_same(&docs, &built, "empty feed");
    // An empty chunk is nothing, whenever it comes.
    let sink = Collect(Format::ALL.iter().map(|_| Mutex::new(Vec::new())).collect());
    let mut stream = FeedStream::new(meta, &Format::ALL);
    stream.push_to(&[], &sink).expect("an empty chunk");
    let ends = stream
        .finish_ends(&[])
        .expect("finish_ends")
        .expect("in order");
    for (ends, (built, items)) in ends.iter().zip(built.iter().zip(&sink.0)) {
        let items = items.lock().expect("lock").clone();
        assert!([ends.head.clone(), items, ends.foot.clone()].concat() == built.body);
    }
}

#[test]
fn articles_out_of_feed_order_stop_the_stream() {
    let feed = sample_feeds()
        .into_iter()
        .max_by_key(|f| f.articles.len())
        .expect("a sample feed");
    assert!(feed.articles.len() >= 3, "enough articles to reorder");
    // Oldest first; and in order but for the last two swapped, so the
    // stream stops after items were already rendered.
    let reversed: Vec<Article> = feed.articles.iter().rev().cloned().collect();
    let mut swapped = feed.articles.clone();
    let n = swapped.len();
    swapped.swap(n - 1, n - 2);
    for (what, list) in [("reversed", reversed), ("last two swapped", swapped)] {
        for chunk in [1, 2, 256] {
            assert!(
                streamed(&feed.meta, &list, &Format::ALL, chunk).is_none(),
                "{what} in chunks of {chunk}"
            );
        }
    }
}

/// A store whose streamed read gives each feed's articles oldest first, as
/// a database collating ids unlike Rust would give some of them.
struct Backwards(SqliteStore);

#[async_trait::async_trait]
impl ArticleStore for Backwards {
    async fn upsert(&self, articles: &[Article]) -> Result<Vec<Upserted>, StoreError> {
        self.0.upsert(articles).await
    }
    async fn get(&self, id: &ArticleId) -> Result<Option<StoredArticle>, StoreError> {
        self.0.get(id).await
    }
    async fn newest(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.0.newest(filter, limit).await
    }
    async fn withdrawn(
        &self,
        filter: &ArticleFilter,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.0.withdrawn(filter, limit).await
    }
    async fn walk(
        &self,
        filter: &ArticleFilter,
        walk: &feedsmith::store::Walk,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.0.walk(filter, walk).await
    }
    async fn walk_keys(
        &self,
        filter: &ArticleFilter,
        walk: &feedsmith::store::Walk,
    ) -> Result<Vec<feedsmith::store::ArticleKey>, StoreError> {
        self.0.walk_keys(filter, walk).await
    }
    async fn archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<feedsmith::store::ArchivePage>, StoreError> {
        self.0.archive_pages(feed, scope, pages).await
    }
    async fn archive_page_count(&self, feed: &str, scope: &str) -> Result<u32, StoreError> {
        self.0.archive_page_count(feed, scope).await
    }
    async fn seal_archive_pages(
        &self,
        feed: &str,
        scope: &str,
        pages: &[feedsmith::store::ArchivePage],
    ) -> Result<u32, StoreError> {
        self.0.seal_archive_pages(feed, scope, pages).await
    }
    fn newest_stream<'a>(
        &'a self,
        filter: &'a ArticleFilter,
        limit: u32,
    ) -> BoxStream<'a, Result<StoredArticle, StoreError>> {
        use futures_util::{StreamExt, TryStreamExt, stream};
        stream::once(self.0.newest(filter, limit))
            .map_ok(|mut all| {
                all.reverse();
                stream::iter(all.into_iter().map(Ok))
            })
            .try_flatten()
            .boxed()
    }
    async fn revision(&self) -> Result<Revision, StoreError> {
        self.0.revision().await
    }
    async fn changed_since(
        &self,
        since: Revision,
        limit: u32,
    ) -> Result<Vec<StoredArticle>, StoreError> {
        self.0.changed_since(since, limit).await
    }
    async fn source_states(&self) -> Result<Vec<(String, SourceState)>, StoreError> {
        self.0.source_states().await
    }
    async fn save_source_state(&self, name: &str, state: &SourceState) -> Result<(), StoreError> {
        self.0.save_source_state(name, state).await
    }
}

/// `feedsmith build`'s work in process: every file is the builder's bytes,
/// streamed from a store in feed order and built the service's way from
/// one that is not.
#[tokio::test]
async fn build_all_writes_the_builders_bytes_in_either_store_order() {
    let config = shipped_config();
    let (_dir, store) = sqlite_store().await;
    store.upsert(&sample_articles()).await.expect("import");
    let backwards = Backwards(store.clone());
    let stores: [(&str, &dyn ArticleStore); 2] = [("in order", &store), ("backwards", &backwards)];
    for (what, store) in stores {
        let out = tempfile::tempdir().expect("out dir");
        let built = app::build_all(&config, store, out.path())
            .await
            .expect("build_all");
        assert_eq!(built.len(), config.feeds.len(), "{what}");
        for feed in sample_feeds() {
            let listed = built
                .iter()
                .find(|b| b.name == feed.spec.name)
                .expect("feed built");
            assert_eq!(listed.items, feed.articles.len(), "{what}");
            for (format, doc) in &feed.docs {
                let file = format!("{}.{}", feed.spec.name, format.extension());
                let on_disk = std::fs::read(out.path().join(&file)).expect("read");
                assert!(
                    on_disk == doc.body,
                    "{what}: {file} is not the builder's bytes"
                );
            }
        }
    }
}

/// `feedsmith build` leaves room for each head as the first chunk's newest
/// update would make it; when a later article (older, but updated since)
/// is the newest update and its time has a fraction of a second, the head
/// is longer and the items must move. Over 300 articles, so past the first
/// chunk of 256.
#[tokio::test]
async fn build_all_moves_the_items_when_the_head_grows() {
    let mut config = shipped_config();
    for spec in config.feeds.values_mut() {
        spec.limit = 400;
    }
    let (_dir, store) = sqlite_store().await;
    let base = sample_articles().remove(0);
    let start = base.published_at;
    let mut list: Vec<Article> = (0..300i64)
        .map(|i| {
            let mut a = base.clone();
            a.id = format!("bulk-{i:04}").parse().expect("id");
            a.url = format!("https://news.example.com/bulk/{i}")
                .parse()
                .expect("url");
            a.published_at = start - chrono::Duration::minutes(i);
            a.updated_at = a.published_at;
            a
        })
        .collect();
    // The oldest was updated last, at a time with milliseconds.
    list[299].updated_at = start + chrono::Duration::milliseconds(86_400_123);
    store.upsert(&list).await.expect("import");
    let out = tempfile::tempdir().expect("out dir");
    app::build_all(&config, &store, out.path())
        .await
        .expect("build_all");
    for spec in config.feeds.values() {
        let meta = FeedMeta::new(&config, spec);
        let newest = store
            .newest(&spec.filter, spec.limit)
            .await
            .expect("newest");
        let articles: Vec<Article> = newest.into_iter().map(|s| s.article).collect();
        let built = builder::build(&meta, &articles, &spec.formats).expect("build");
        for doc in built {
            let file = format!("{}.{}", spec.name, doc.format.extension());
            let on_disk = std::fs::read(out.path().join(&file)).expect("read");
            assert!(on_disk == doc.body, "{file} is not the builder's bytes");
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
        let docs = streamed(meta, &ordered, &Format::ALL, chunk);
        prop_assert!(docs.is_some(), "feed order is in order");
        assert_same(&docs.unwrap_or_default(), &built, "in feed order");
        // As generated: usually out of order, which the stream must notice.
        let docs = streamed(meta, &list, &Format::ALL, chunk);
        prop_assert_eq!(docs.is_some(), list == ordered);
        if let Some(docs) = docs {
            assert_same(&docs, &built, "as generated");
        }
    }
}
