//! Pulled sources end to end: the whole service (`app::run_with`) fetching a
//! scripted upstream on 127.0.0.1, with schedules that fire every second.

mod common;

use std::time::Duration;

use common::{Scripted, Service, ServiceOptions, Upstream, rss_feed};
use serde_json::Value;

const ETAG: &str = "\"v1\"";
const LAST_MODIFIED: &str = "Mon, 07 Dec 2026 10:00:00 GMT";

/// A source file for `upstream`'s `/feed.xml`, fetched every second, its
/// articles in the section the `wire` feed lists.
fn source_file(upstream: &Upstream) -> String {
    format!(
        "url = \"{}/feed.xml\"\nrefresh = \"* * * * * *\"\nname = \"Wire Service\"\n\
         section = \"Wire\"\nrights = \"© Wire\"\ntimeout = \"5s\"\n",
        upstream.base
    )
}

fn options(sources: Vec<(String, String)>) -> ServiceOptions {
    ServiceOptions {
        extra_feeds: vec![(
            "wire.toml".into(),
            "title = \"Wire\"\nsections = [\"Wire\"]\n".into(),
        )],
        sources: Some(sources),
        ..ServiceOptions::default()
    }
}

/// A 200 with validators for `body`, and a 304 to a request that sends them back.
fn conditional(body: String) -> impl FnMut(&common::Received) -> Scripted + Send + 'static {
    move |req| {
        if req.header("if-none-match") == Some(ETAG) {
            Scripted::new(304).header("ETag", ETAG)
        } else {
            Scripted::new(200)
                .header("Content-Type", "application/rss+xml")
                .header("ETag", ETAG)
                .header("Last-Modified", LAST_MODIFIED)
                .body(body.clone())
        }
    }
}

async fn source_health(service: &Service, name: &str) -> Value {
    service.health().await["sources"][name].clone()
}

async fn wait_for_status(service: &Service, name: &str, status: &str) -> Value {
    service
        .wait_for(
            20,
            &format!("source {name} {status} in /healthz"),
            || async {
                let h = service.health().await;
                (h["sources"][name]["status"] == status).then_some(h)
            },
        )
        .await
}

async fn wire_feed(service: &Service) -> String {
    let (status, _, body) = service.get("/feeds/wire.json").await;
    if status == 200 {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        String::new()
    }
}

#[tokio::test]
async fn a_source_is_imported_revalidated_and_its_new_items_published() {
    let upstream = Upstream::start().await;
    upstream.respond(conditional(rss_feed(&[
        ("urn:wire:1", "Talks resume"),
        ("urn:wire:2", "Markets calm"),
    ])));
    let service = Service::start(options(vec![("wire.toml".into(), source_file(&upstream))])).await;

    let feed = service
        .wait_for(20, "the wire feed listing the source's items", || async {
            let feed = wire_feed(&service).await;
            feed.contains("Markets calm").then_some(feed)
        })
        .await;
    assert!(feed.contains("Talks resume"), "{feed}");
    assert!(
        feed.contains("Wire Service"),
        "the file's name is the credit: {feed}"
    );
    let received = upstream.received();
    let first = &received[0];
    assert_eq!(first.path, "/feed.xml");
    assert!(
        first
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("feedsmith/") && ua.contains("news.example.com")),
        "{first:?}"
    );
    assert!(
        first
            .header("accept-encoding")
            .is_some_and(|e| e.contains("gzip"))
    );
    assert_eq!(first.header("if-none-match"), None);

    // The next poll revalidates and changes nothing.
    let writer = service.writer().await;
    let revision = feedsmith::store::ArticleStore::revision(&writer)
        .await
        .expect("revision");
    let polls = upstream.wait_for_requests(3, 20).await;
    let again = &polls[1];
    assert_eq!(again.header("if-none-match"), Some(ETAG));
    assert_eq!(again.header("if-modified-since"), Some(LAST_MODIFIED));
    assert_eq!(
        feedsmith::store::ArticleStore::revision(&writer)
            .await
            .expect("revision"),
        revision,
        "a 304 writes nothing"
    );
    let health = source_health(&service, "wire").await;
    assert_eq!(health["status"], "ok", "{health}");
    assert!(health["last_success"].is_string(), "{health}");
    assert!(health["next_fetch"].is_string(), "{health}");

    // A new item upstream appears in the published feed after the next poll.
    upstream.respond(move |_: &common::Received| {
        Scripted::new(200).header("ETag", "\"v2\"").body(rss_feed(&[
            ("urn:wire:1", "Talks resume"),
            ("urn:wire:2", "Markets calm"),
            ("urn:wire:3", "Storm warning"),
        ]))
    });
    service
        .wait_for(20, "the new item in the wire feed", || async {
            wire_feed(&service)
                .await
                .contains("Storm warning")
                .then_some(())
        })
        .await;
}

#[tokio::test]
async fn retry_after_is_honoured_and_gone_stops_fetching() {
    let upstream = Upstream::start().await;
    upstream.respond(|_: &common::Received| Scripted::new(429).header("Retry-After", "3"));
    let service = Service::start(options(vec![("wire.toml".into(), source_file(&upstream))])).await;

    let health = wait_for_status(&service, "wire", "backing_off").await;
    let errors = health["errors"].to_string();
    assert!(
        errors.contains("source wire") && errors.contains("429"),
        "{health}"
    );
    assert_eq!(health["status"], "degraded");
    let first = upstream.wait_for_requests(1, 5).await[0].at;
    // Every second the schedule fires; the upstream said three.
    upstream.respond(|_: &common::Received| Scripted::new(410));
    let second = upstream.wait_for_requests(2, 20).await[1].at;
    assert!(
        second.duration_since(first) >= Duration::from_millis(2900),
        "asked again after {:?}",
        second.duration_since(first)
    );

    let health = wait_for_status(&service, "wire", "gone").await;
    assert!(health["errors"].to_string().contains("410"), "{health}");
    assert_eq!(health["sources"]["wire"]["next_fetch"], Value::Null);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(upstream.received().len(), 2, "no request after 410 Gone");

    // Editing the file (a new URL) fetches again.
    upstream.respond(conditional(rss_feed(&[("urn:wire:9", "Back again")])));
    std::fs::write(
        service.path("sources/wire.toml"),
        source_file(&upstream).replace("/feed.xml", "/v2.xml"),
    )
    .expect("edit source");
    wait_for_status(&service, "wire", "ok").await;
    assert_eq!(upstream.received()[2].path, "/v2.xml");
}

#[tokio::test]
async fn a_20_mb_body_is_refused_and_stored_articles_stay() {
    let upstream = Upstream::start().await;
    upstream.respond(conditional(rss_feed(&[("urn:wire:1", "Talks resume")])));
    let service = Service::start(options(vec![("wire.toml".into(), source_file(&upstream))])).await;
    service
        .wait_for(20, "the source's item", || async {
            wire_feed(&service)
                .await
                .contains("Talks resume")
                .then_some(())
        })
        .await;
    let writer = service.writer().await;
    let revision = feedsmith::store::ArticleStore::revision(&writer)
        .await
        .expect("revision");

    // 20 MB of a feed, sent without a length (the limit is found while
    // reading) and then with one (refused before reading).
    let mut huge = rss_feed(&[("urn:wire:2", "Huge")]).into_bytes();
    huge.resize(20_000_000, b' ');
    for no_length in [true, false] {
        let body = huge.clone();
        upstream.respond(move |_: &common::Received| Scripted {
            no_length,
            ..Scripted::new(200).body(body.clone())
        });
        let before = upstream.received().len();
        upstream.wait_for_requests(before + 1, 20).await;
        let health = wait_for_status(&service, "wire", "failing").await;
        let reason = health["sources"]["wire"]["last_error"].to_string();
        assert!(
            reason.contains("over the limit of 10000000 bytes"),
            "{health}"
        );
        upstream.respond(conditional(rss_feed(&[("urn:wire:1", "Talks resume")])));
        wait_for_status(&service, "wire", "ok").await;
    }
    assert_eq!(
        feedsmith::store::ArticleStore::revision(&writer)
            .await
            .expect("revision"),
        revision,
        "nothing stored changed"
    );
    assert!(wire_feed(&service).await.contains("Talks resume"));
}

#[tokio::test]
async fn fetch_state_survives_a_restart() {
    let upstream = Upstream::start().await;
    upstream.respond(conditional(rss_feed(&[("urn:wire:1", "Talks resume")])));
    let opts = options(vec![("wire.toml".into(), source_file(&upstream))]);
    let service = Service::start(opts.clone()).await;
    wait_for_status(&service, "wire", "ok").await;
    let dir = service.stop().await;
    let before = upstream.received().len();

    let service = Service::start_in(dir, opts).await;
    let after = upstream.wait_for_requests(before + 1, 20).await;
    assert_eq!(
        after[before].header("if-none-match"),
        Some(ETAG),
        "the validators were kept"
    );
    assert_eq!(
        after[before].header("if-modified-since"),
        Some(LAST_MODIFIED)
    );
    wait_for_status(&service, "wire", "ok").await;
}

#[tokio::test]
async fn source_files_hot_reload_and_a_broken_one_is_refused_with_its_position() {
    let upstream = Upstream::start().await;
    upstream.respond(conditional(rss_feed(&[("urn:wire:1", "Talks resume")])));
    let service = Service::start(options(Vec::new())).await;
    service.first_refresh(20).await;
    assert_eq!(service.health().await["sources"], serde_json::json!({}));

    std::fs::write(service.path("sources/wire.toml"), source_file(&upstream)).expect("add");
    wait_for_status(&service, "wire", "ok").await;
    service
        .wait_for(20, "the added source's item", || async {
            wire_feed(&service)
                .await
                .contains("Talks resume")
                .then_some(())
        })
        .await;

    std::fs::write(
        service.path("sources/broken.toml"),
        "url = \"ftp://wire.example/feed.xml\"\n",
    )
    .expect("add broken");
    let health = service
        .wait_for(20, "the refused source file in /healthz", || async {
            let h = service.health().await;
            h["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["component"] == "config"))
                .then_some(h)
        })
        .await;
    let reason = health["errors"].to_string();
    assert!(reason.contains("broken.toml:1:7"), "{reason}");
    assert!(reason.contains("http"), "{reason}");
    assert_eq!(
        health["config_generation"], 2,
        "still on the previous config"
    );
    assert_eq!(health["sources"]["wire"]["status"], "ok");
    assert_eq!(health["sources"]["broken"], Value::Null);
}

#[tokio::test]
async fn a_permanent_redirect_is_followed_and_a_gzip_body_is_read() {
    use std::io::Write;
    let upstream = Upstream::start().await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(rss_feed(&[("urn:wire:7", "Moved story")]).as_bytes())
        .expect("gzip");
    let gz = gz.finish().expect("gzip");
    upstream.respond(move |req: &common::Received| match req.path.as_str() {
        "/feed.xml" => Scripted::new(301).header("Location", "/moved.xml"),
        _ => Scripted::new(200)
            .header("Content-Encoding", "gzip")
            .body(gz.clone()),
    });
    let service = Service::start(options(vec![("wire.toml".into(), source_file(&upstream))])).await;
    service
        .wait_for(
            20,
            "the redirected, gzipped item in the wire feed",
            || async {
                wire_feed(&service)
                    .await
                    .contains("Moved story")
                    .then_some(())
            },
        )
        .await;
    let received = upstream.received();
    assert_eq!(received[0].path, "/feed.xml");
    assert_eq!(received[1].path, "/moved.xml");
    assert_eq!(source_health(&service, "wire").await["status"], "ok");
}
