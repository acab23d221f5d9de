//! `feedsmith import` of RSS and Atom files, end to end with the real binary;
//! and what we publish, read back by the `rss` and `atom_syndication` crates: every
//! sample feed parses with `rss::Channel` and `atom_syndication::Feed` and
//! says what the articles say; and importing our own output with the real
//! `feedsmith import`, building it and importing that again is a fixed point
//! for ids, times, rights and credits.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::DateTime;
use common::{Built, TempSite, repo_root, sample_articles, sample_feeds};
use feedsmith::article::{Article, ArticleId};
use feedsmith::builder::{self, Entry, FeedMeta};
use feedsmith::config::Format;
use feedsmith::store::ArticleStore;

fn seconds(s: &str) -> i64 {
    DateTime::parse_from_rfc2822(s)
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .unwrap_or_else(|e| panic!("{s:?} is no date: {e}"))
        .timestamp()
}

fn check_rss(meta: &FeedMeta, entries: &[Entry<'_>], body: &[u8]) {
    let channel = rss::Channel::read_from(body).expect("rss::Channel reads our RSS");
    assert_eq!(channel.title, meta.title);
    assert_eq!(channel.items.len(), entries.len(), "{}", meta.name);
    for (item, e) in channel.items.iter().zip(entries) {
        let at = format!("{} rss {}", meta.name, e.id);
        assert_eq!(item.title.as_deref(), Some(&*e.headline), "{at}");
        assert_eq!(item.link.as_deref(), Some(e.url), "{at}");
        let guid = item.guid.as_ref().expect("guid");
        assert_eq!(guid.value, e.tag, "{at}");
        assert!(!guid.permalink, "{at}");
        assert_eq!(
            seconds(item.pub_date.as_deref().expect("pubDate")),
            e.published_at.timestamp(),
            "{at}"
        );
        let modified = &item.extensions["dcterms"]["modified"][0];
        assert_eq!(
            seconds(modified.value.as_deref().expect("value")),
            e.updated_at.timestamp(),
            "{at}"
        );
        // The plain standfirst goes HTML-escaped into the (HTML) description.
        assert_eq!(
            item.description
                .as_deref()
                .map(|d| html_escape::decode_html_entities(d).into_owned()),
            e.standfirst.as_deref().map(str::to_owned),
            "{at}"
        );
        let dc = item.dublin_core_ext.as_ref().expect("dc");
        let names: Vec<&str> = e.authors.iter().map(|a| &*a.name).collect();
        assert_eq!(dc.creators, names, "{at}");
        let categories: Vec<&str> = item.categories.iter().map(|c| c.name.as_str()).collect();
        let expected: Vec<&str> = e.categories.iter().map(|c| &**c).collect();
        assert_eq!(categories, expected, "{at}");
        let rights = e.source.as_ref().and_then(|s| s.rights.as_deref());
        assert_eq!(dc.rights.first().map(String::as_str), rights, "{at}");
        assert_eq!(
            item.content.as_deref(),
            e.content_with_related.as_deref(),
            "{at}"
        );
        if let Some(image) = &e.image {
            let content = &item.extensions["media"]["content"][0];
            assert_eq!(content.attrs["url"], image.url, "{at}");
            let credit = content
                .children
                .get("credit")
                .map(|c| c[0].value.as_deref());
            assert_eq!(credit.flatten(), image.credit.as_deref(), "{at}");
        }
    }
}

fn check_atom(meta: &FeedMeta, entries: &[Entry<'_>], body: &[u8]) {
    let feed = atom_syndication::Feed::read_from(body).expect("atom Feed reads our Atom");
    assert_eq!(feed.title.value, meta.title);
    assert_eq!(feed.entries.len(), entries.len(), "{}", meta.name);
    for (entry, e) in feed.entries.iter().zip(entries) {
        let at = format!("{} atom {}", meta.name, e.id);
        assert_eq!(entry.id, e.tag, "{at}");
        assert_eq!(entry.title.value, e.headline, "{at}");
        let alternate = entry.links.iter().find(|l| l.rel == "alternate");
        assert_eq!(alternate.map(|l| l.href.as_str()), Some(e.url), "{at}");
        assert_eq!(
            entry.published.map(|t| t.timestamp()),
            Some(e.published_at.timestamp()),
            "{at}"
        );
        assert_eq!(entry.updated.timestamp(), e.updated_at.timestamp(), "{at}");
        let names: Vec<&str> = entry.authors.iter().map(|a| a.name.as_str()).collect();
        let expected: Vec<&str> = e.authors.iter().map(|a| &*a.name).collect();
        assert_eq!(names, expected, "{at}");
        let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
        let expected: Vec<&str> = e.categories.iter().map(|c| &**c).collect();
        assert_eq!(terms, expected, "{at}");
        let rights = e.source.as_ref().and_then(|s| s.rights.as_deref());
        assert_eq!(
            entry.rights.as_ref().map(|r| r.value.as_str()),
            rights,
            "{at}"
        );
        // An entry with no text at all has its headline as summary.
        let summary = match (e.standfirst.as_deref(), e.body()) {
            (None, None) => Some(&*e.headline),
            (standfirst, _) => standfirst,
        };
        assert_eq!(
            entry.summary.as_ref().map(|s| s.value.as_str()),
            summary,
            "{at}"
        );
        if let Some(source) = &e.source {
            let s = entry.source.as_ref().expect("atom source");
            assert_eq!(s.title.value, source.name, "{at}");
            assert!(!s.id.is_empty(), "{at}: source id");
            if let Some(url) = source.url {
                assert_eq!(s.id, url, "{at}");
            }
            assert_eq!(s.updated.timestamp(), e.updated_at.timestamp(), "{at}");
        }
        if let Some(image) = &e.image {
            let content = &entry.extensions["media"]["content"][0];
            assert_eq!(content.attrs["url"], image.url, "{at}");
            let credit = content
                .children
                .get("credit")
                .map(|c| c[0].value.as_deref());
            assert_eq!(credit.flatten(), image.credit.as_deref(), "{at}");
        }
    }
}

#[test]
fn every_published_sample_feed_reads_back_with_the_rss_and_atom_crates() {
    let feeds = sample_feeds();
    assert!(feeds.len() >= 4, "the shipped feeds");
    let mut checked = 0;
    for Built {
        meta,
        articles,
        docs,
        ..
    } in &feeds
    {
        let prepared = builder::prepare(meta, articles);
        if let Some(doc) = docs.get(&Format::Rss) {
            check_rss(meta, &prepared.entries, &doc.body);
            checked += 1;
        }
        if let Some(doc) = docs.get(&Format::Atom) {
            check_atom(meta, &prepared.entries, &doc.body);
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * feeds.len());
}

/// A temporary site (tests/common) with the shipped `latest` feed, and the
/// steps these tests take on it.
struct Site(TempSite);

impl Site {
    fn new() -> Self {
        let feed = fs::read_to_string(repo_root().join("feeds/latest.toml")).expect("feed file");
        Site(TempSite::with_feed(&feed))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.0.run(args);
        assert!(
            out.status.success(),
            "feedsmith {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn import(&self, path: &Path) -> String {
        let out = self.run(&["import", &path.display().to_string()]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Builds every feed into `out/` here and returns the path of one document.
    fn build(&self, file: &str) -> PathBuf {
        let out = self.path().join("out");
        self.run(&["build", "--out", &out.display().to_string()]);
        out.join(file)
    }

    async fn articles(&self) -> BTreeMap<ArticleId, Article> {
        let store = self.0.store().await;
        let mut all = BTreeMap::new();
        for a in sample_articles() {
            if let Some(stored) = store.get(&a.id).await.expect("get") {
                all.insert(a.id.clone(), stored.article);
            }
        }
        all
    }
}

/// An article's id, published and updated seconds, rights, image credit,
/// body and related links.
type Essentials = (
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
);

/// What the fixed point is about: id, times, rights and credits, and that the
/// body and related links neither grow nor get lost.
fn essentials(articles: &BTreeMap<ArticleId, Article>) -> Vec<Essentials> {
    articles
        .values()
        .map(|a| {
            (
                a.id.to_string(),
                a.published_at.timestamp(),
                a.updated_at.timestamp(),
                a.source.as_ref().and_then(|s| s.rights.clone()),
                a.image.as_ref().and_then(|i| i.credit.clone()),
                a.body_html.clone(),
                a.related
                    .iter()
                    .map(|r| (r.title.clone(), r.url.to_string()))
                    .collect(),
            )
        })
        .collect()
}

async fn our_output_is_a_fixed_point(file: &str) {
    // Our own output, from the sample articles.
    let origin = Site::new();
    origin.import(&repo_root().join("examples/articles"));
    let published = origin.build(file);
    let originals = origin.articles().await;

    // Imported once: the articles come back under their own ids.
    let first = Site::new();
    let summary = first.import(&published);
    let imported = first.articles().await;
    assert!(!imported.is_empty(), "{file}: {summary}");
    assert_eq!(
        summary,
        format!(
            "imported {}, updated 0, unchanged 0, rejected 0",
            imported.len()
        ),
        "{file}"
    );
    assert_eq!(
        first.import(&published),
        format!(
            "imported 0, updated 0, unchanged {}, rejected 0",
            imported.len()
        ),
        "{file}: a second import of the same file changes nothing"
    );
    for (id, a) in &imported {
        let o = &originals[id];
        assert_eq!(a.published_at, o.published_at, "{file} {id}");
        assert_eq!(a.updated_at, o.updated_at, "{file} {id}");
        assert_eq!(a.url, o.url, "{file} {id}");
        assert_eq!(a.headline, o.headline, "{file} {id}");
        if let Some(rights) = o.source.as_ref().and_then(|s| s.rights.as_ref()) {
            assert_eq!(
                a.source.as_ref().and_then(|s| s.rights.as_ref()),
                Some(rights),
                "{file} {id}"
            );
        }
        assert_eq!(a.standfirst, o.standfirst, "{file} {id}");
        assert_eq!(a.related, o.related, "{file} {id}: related links");
        let credit = |a: &Article| a.image.as_ref().and_then(|i| i.credit.clone());
        assert_eq!(credit(a), credit(o), "{file} {id}");
    }

    // Built and imported again: nothing the fixed point is about moves.
    let rebuilt = first.build(file);
    let second = Site::new();
    second.import(&rebuilt);
    assert_eq!(
        essentials(&second.articles().await),
        essentials(&imported),
        "{file}"
    );
}

#[tokio::test]
async fn markup_like_text_in_a_standfirst_survives_our_rss_and_atom() {
    let origin = Site::new();
    let input = origin.path().join("odd.jsonl");
    let standfirst = "5% < 10% > 0% & <bold>not markup</bold> &amp; AT&T";
    fs::write(
        &input,
        serde_json::json!({
            "id": "odd-standfirst",
            "url": "https://news.example.com/odd",
            "headline": "Odd <b> & headline",
            "standfirst": standfirst,
            "published_at": "2025-12-02T03:12:00Z",
        })
        .to_string(),
    )
    .expect("article file");
    assert_eq!(
        origin.import(&input),
        "imported 1, updated 0, unchanged 0, rejected 0"
    );
    for file in ["latest.rss", "latest.atom"] {
        let published = origin.build(file);
        let again = Site::new();
        again.import(&published);
        let store = again.0.store().await;
        let id: ArticleId = "odd-standfirst".parse().expect("id");
        let a = store
            .get(&id)
            .await
            .expect("get")
            .expect("imported")
            .article;
        assert_eq!(a.standfirst.as_deref(), Some(standfirst), "{file}");
        assert_eq!(a.headline, "Odd <b> & headline", "{file}");
    }
}

#[tokio::test]
async fn importing_our_own_rss_then_building_and_importing_again_is_a_fixed_point() {
    our_output_is_a_fixed_point("latest.rss").await;
}

#[tokio::test]
async fn importing_our_own_atom_then_building_and_importing_again_is_a_fixed_point() {
    our_output_is_a_fixed_point("latest.atom").await;
}

#[tokio::test]
async fn a_directory_import_takes_feeds_by_content_and_rejects_bad_items_by_position() {
    let site = Site::new();
    let dir = site.path().join("incoming");
    fs::create_dir(&dir).expect("dir");
    // An Atom document named .rss: the root element decides, not the name.
    fs::write(
        dir.join("agency.rss"),
        r#"<?xml version="1.0"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:agency</id><title>Agency</title><updated>2026-01-01T00:00:00Z</updated>
  <rights>© Agency, 2026</rights>
  <entry>
    <id>urn:agency:1</id><title>One</title><updated>2026-01-01T00:00:00Z</updated>
    <link href="https://agency.example.org/1"/>
  </entry>
  <entry>
    <id>urn:agency:2</id><title>Two</title><updated>2026-01-01T00:00:00Z</updated>
    <link href="ftp://agency.example.org/2"/>
  </entry>
</feed>"#,
    )
    .expect("write");
    fs::write(
        dir.join("wire.xml"),
        r#"<rss version="2.0"><channel><title>Wire</title><link>https://wire.example.com/</link><description>d</description>
<item><title>Undated</title><link>https://wire.example.com/u</link><guid>w-1</guid></item>
<item><title>Dated</title><link>https://wire.example.com/d</link><guid>w-2</guid><pubDate>Thu, 01 Jan 2026 10:00:00 +0000</pubDate></item>
</channel></rss>"#,
    )
    .expect("write");
    fs::write(dir.join("sitemap.xml"), "<urlset/>").expect("write");

    let out = Command::new(env!("CARGO_BIN_EXE_feedsmith"))
        .arg("--config")
        .arg(site.0.config())
        .args(["import", &dir.display().to_string()])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run feedsmith");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "imported 2, updated 0, unchanged 0, rejected 3"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rejected: "))
        .collect();
    let show = |name: &str| dir.join(name).display().to_string();
    assert_eq!(
        lines,
        [
            format!(
                "rejected: {}: entry 2 at line 9 (id \"urn:agency:2\"): url: \"ftp://agency.example.org/2\" uses scheme \"ftp\"; only http and https are allowed",
                show("agency.rss")
            ),
            format!(
                "rejected: {}: not an RSS 2.0 or Atom 1.0 feed: the root element is <urlset>",
                show("sitemap.xml")
            ),
            format!(
                "rejected: {}: item 1 at line 2 (guid \"w-1\"): published_at: is required",
                show("wire.xml")
            ),
        ],
        "{stderr}"
    );
}
