//! RFC 5005 archived feeds end to end: a feed of limit 5 and page size 10
//! over 47 stories, walked from its subscription document along
//! `prev-archive`; complete pages keep their bytes and ETags when stories
//! arrive and across a restart; an edit or a withdrawal inside a page
//! changes that page alone.

mod common;

use std::collections::BTreeMap;

use common::{Service, ServiceOptions, article};
use feedsmith::store::ArticleStore;
use serde_json::json;

const PAGED: &str =
    "title = \"Paged\"\ntags = [\"Paging\"]\nlimit = 5\narchive = true\narchive_page_size = 10\n";

fn options() -> ServiceOptions {
    ServiceOptions {
        extra_feeds: vec![("paged.toml".into(), PAGED.into())],
        schedule: "refresh = \"0 0 * * *\"\nwatch = \"100ms\"".into(),
        ..ServiceOptions::default()
    }
}

/// Story `n` of the paged feed: one an hour, in order.
fn story(n: u32, extra: serde_json::Value) -> feedsmith::article::Article {
    let mut fields = json!({"tags": ["Paging"]});
    if let (Some(base), serde_json::Value::Object(more)) = (fields.as_object_mut(), extra) {
        base.extend(more);
    }
    article(
        &format!("p{n:02}"),
        &format!("2026-01-{:02}T{:02}:00:00Z", 1 + n / 24, n % 24),
        fields,
    )
}

/// The ids of an Atom document's entries, in order.
fn entry_ids(atom: &str) -> Vec<String> {
    atom.split("<entry>")
        .skip(1)
        .filter_map(|entry| {
            let id = entry.split("<id>").nth(1)?.split("</id>").next()?;
            Some(id.rsplit(':').next()?.to_owned())
        })
        .collect()
}

/// The path of an Atom document's link of relation `rel`, if any.
fn link(atom: &str, rel: &str) -> Option<String> {
    let at = atom.find(&format!("<link rel=\"{rel}\""))?;
    let href = atom[at..].split("href=\"").nth(1)?.split('"').next()?;
    Some(href[href.find("/feeds/")?..].to_owned())
}

struct Page {
    status: u16,
    etag: String,
    cache_control: String,
    body: String,
}

async fn fetch(service: &Service, path: &str) -> Page {
    let r = reqwest::get(format!("{}{path}", service.base))
        .await
        .expect("request");
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (status, etag, cache_control) =
        (r.status().as_u16(), header("etag"), header("cache-control"));
    Page {
        status,
        etag,
        cache_control,
        body: r.text().await.expect("body"),
    }
}

/// Walks from the subscription document along `prev-archive`: each page's
/// path and what it holds, newest first.
async fn walk(service: &Service) -> Vec<(String, Page)> {
    let mut pages = Vec::new();
    let mut next = Some("/feeds/paged.atom".to_owned());
    while let Some(path) = next {
        let page = fetch(service, &path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        next = link(&page.body, "prev-archive");
        assert!(pages.len() < 20, "the chain ends");
        pages.push((path, page));
    }
    pages
}

#[tokio::test]
async fn archive_pages_reach_every_story_once_and_keep_their_bytes() {
    let service = Service::start(options()).await;
    service.first_refresh(20).await;
    let writer = service.writer().await;
    let before = service.etag("/feeds/paged.atom").await;
    writer
        .upsert(&(0..47).map(|n| story(n, json!({}))).collect::<Vec<_>>())
        .await
        .expect("import");
    service
        .wait_for_new_etag("/feeds/paged.atom", &before)
        .await;

    let pages = walk(&service).await;
    let paths: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/feeds/paged.atom",
            "/feeds/paged/archive/5.atom",
            "/feeds/paged/archive/4.atom",
            "/feeds/paged/archive/3.atom",
            "/feeds/paged/archive/2.atom",
            "/feeds/paged/archive/1.atom",
        ]
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, page) in &pages {
        for id in entry_ids(&page.body) {
            *seen.entry(id).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = (0..47).map(|n| (format!("p{n:02}"), 1)).collect();
    assert_eq!(seen, expected, "every story exactly once");
    let sizes: Vec<usize> = pages
        .iter()
        .map(|(_, p)| entry_ids(&p.body).len())
        .collect();
    assert_eq!(
        sizes,
        [5, 2, 10, 10, 10, 10],
        "the window, the open page, four full pages"
    );
    for (path, page) in &pages[2..] {
        assert!(page.body.contains("<fh:archive/>"), "{path}");
        assert!(page.body.contains("rel=\"current\""), "{path}");
        assert_eq!(
            page.cache_control, "public, max-age=31536000, immutable",
            "{path}"
        );
    }
    assert!(pages[1].1.body.contains("<fh:archive/>"));
    assert_ne!(
        pages[1].1.cache_control, pages[2].1.cache_control,
        "the open page still fills"
    );
    assert_eq!(
        link(&pages[2].1.body, "next-archive").as_deref(),
        Some("/feeds/paged/archive/5.atom")
    );
    // The feed's page for people links the archive too.
    let page = fetch(&service, "/feeds/paged").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("http://news.example.com/feeds/paged/archive/5.atom"),
        "{}",
        page.body
    );
    // The index links there for an archived feed only.
    let index = fetch(&service, "/").await.body;
    assert!(index.contains("/feeds/paged#archive\">"), "{index}");
    assert!(!index.contains("/feeds/latest#archive"), "{index}");
    // The same pages in the other formats, and nothing past the open page.
    assert_eq!(
        fetch(&service, "/feeds/paged/archive/1.rss").await.status,
        200
    );
    assert_eq!(
        fetch(&service, "/feeds/paged/archive/1.json").await.status,
        200
    );
    assert_eq!(
        fetch(&service, "/feeds/paged/archive/6.atom").await.status,
        404
    );
    assert_eq!(
        fetch(&service, "/feeds/latest/archive/1.atom").await.status,
        404
    );
    let sealed = |pages: &[(String, Page)]| -> Vec<(String, String)> {
        pages[2..]
            .iter()
            .map(|(_, p)| (p.etag.clone(), p.body.clone()))
            .collect()
    };
    let first = sealed(&pages);

    // Three new stories: the window moves, the open page grows, the
    // complete pages stay as they were.
    let subscription = pages[0].1.etag.clone();
    writer
        .upsert(&(47..50).map(|n| story(n, json!({}))).collect::<Vec<_>>())
        .await
        .expect("import");
    service
        .wait_for_new_etag("/feeds/paged.atom", &subscription)
        .await;
    let pages = walk(&service).await;
    assert_eq!(entry_ids(&pages[1].1.body).len(), 5);
    assert_eq!(sealed(&pages), first, "complete pages keep bytes and ETags");

    // An edit inside page 1 changes page 1 alone.
    writer
        .upsert(&[story(3, json!({"headline": "Corrected headline"}))])
        .await
        .expect("edit");
    let edited = service
        .wait_for(15, "page 1 rebuilt", || async {
            let page = fetch(&service, "/feeds/paged/archive/1.atom").await;
            (page.body.contains("Corrected headline")).then_some(page)
        })
        .await;
    assert_ne!(edited.etag, first[3].0);
    let pages = walk(&service).await;
    let now = sealed(&pages);
    assert_eq!(now[..3], first[..3], "pages 4, 3 and 2 are untouched");

    // A restart serves the same pages under the same ETags.
    let dir = service.stop().await;
    let service = Service::start_in(dir, options()).await;
    service.first_refresh(20).await;
    // The feeds are served from the output folder at once; the archive,
    // read from the store, answers 503 with Retry-After until it is open.
    service
        .wait_for(20, "the archive after a restart", || async {
            let status = fetch(&service, "/feeds/paged/archive/1.atom").await.status;
            assert!(status == 200 || status == 503, "{status}");
            (status == 200).then_some(())
        })
        .await;
    let pages = walk(&service).await;
    assert_eq!(sealed(&pages), now, "the same bytes after a restart");

    // A story withdrawn from page 2 leaves it as a tombstone there.
    let writer = service.writer().await;
    writer
        .upsert(&[story(15, json!({"status": "withdrawn"}))])
        .await
        .expect("withdraw");
    let page2 = service
        .wait_for(15, "page 2 rebuilt", || async {
            let page = fetch(&service, "/feeds/paged/archive/2.atom").await;
            page.body.contains("<at:deleted-entry").then_some(page)
        })
        .await;
    assert!(
        page2.body.contains(":p15\" when=\""),
        "the tombstone names the story: {}",
        page2.body
    );
    assert!(!entry_ids(&page2.body).contains(&"p15".to_owned()));
    assert_eq!(entry_ids(&page2.body).len(), 9);
    let page1 = fetch(&service, "/feeds/paged/archive/1.atom").await;
    assert_eq!(page1.etag, now[3].0, "page 1 is untouched");
}
