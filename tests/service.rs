//! End-to-end tests of the running service: schedules and the watch poll
//! follow the store, configuration edits apply without a restart, faults keep
//! the last good feeds, and a restart serves the same ETags before the store
//! is reached. Every wait polls the service with a deadline; none sleeps.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{Service, ServiceOptions, article};
use feedsmith::publish::{self, PublishedSet, Publisher, SENDFILE_MIN_BYTES};
use feedsmith::refresh;
use feedsmith::scheduler::{Health, Scheduler, SystemClock};
use feedsmith::store::ArticleStore;
use serde_json::json;

const FEEDS: [&str; 12] = [
    "/feeds/latest.rss",
    "/feeds/latest.atom",
    "/feeds/latest.json",
    "/feeds/world.rss",
    "/feeds/world.atom",
    "/feeds/world.json",
    "/feeds/business.rss",
    "/feeds/business.atom",
    "/feeds/business.json",
    "/feeds/climate.rss",
    "/feeds/climate.atom",
    "/feeds/climate.json",
];

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

async fn served(service: &Service) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    for path in FEEDS {
        let (status, etag, _) = service.get(path).await;
        out.push((status, etag));
    }
    out
}

#[tokio::test]
async fn an_article_is_published_updated_and_withdrawn_in_every_format() {
    let service = Service::start(ServiceOptions::default()).await;
    let before = service.first_refresh(20).await;
    let writer = service.writer().await;

    writer
        .upsert(&[article(
            "fresh-story",
            "2026-03-01T09:00:00Z",
            json!({"section": "World", "headline": "Fresh story"}),
        )])
        .await
        .expect("write");
    let first = service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    for path in [
        "/feeds/latest.rss",
        "/feeds/latest.atom",
        "/feeds/latest.json",
        "/feeds/world.rss",
    ] {
        let (_, _, body) = service.get(path).await;
        assert!(
            text(&body).contains("Fresh story"),
            "{path} lists the new article"
        );
    }
    let (_, _, business) = service.get("/feeds/business.rss").await;
    assert!(
        !text(&business).contains("Fresh story"),
        "filters still apply"
    );

    writer
        .upsert(&[article(
            "fresh-story",
            "2026-03-01T09:00:00Z",
            json!({"section": "World", "headline": "Fresh story, corrected",
                   "updated_at": "2026-03-01T11:30:00Z"}),
        )])
        .await
        .expect("update");
    let second = service.wait_for_new_etag("/feeds/latest.rss", &first).await;
    assert_ne!(second, before);
    let (_, _, rss) = service.get("/feeds/latest.rss").await;
    let rss = text(&rss);
    assert!(rss.contains("Fresh story, corrected"));
    assert_eq!(
        rss.matches("tag:news.example.com,2026-03-01:fresh-story")
            .count(),
        1,
        "same guid, listed once"
    );
    assert!(
        rss.contains("<dcterms:modified>2026-03-01T11:30:00+00:00</dcterms:modified>"),
        "{rss}"
    );
    let (_, _, json_feed) = service.get("/feeds/latest.json").await;
    assert!(text(&json_feed).contains("\"date_modified\":\"2026-03-01T11:30:00+00:00\""));

    let withdrawing = chrono::Utc::now();
    writer
        .upsert(&[article(
            "fresh-story",
            "2026-03-01T09:00:00Z",
            json!({"section": "World", "headline": "Fresh story, corrected",
                   "updated_at": "2026-03-01T12:00:00Z", "status": "withdrawn"}),
        )])
        .await
        .expect("withdraw");
    let withdrawn = chrono::Utc::now();
    service
        .wait_for_new_etag("/feeds/latest.rss", &second)
        .await;
    for path in FEEDS {
        let (_, _, body) = service.get(path).await;
        let body = text(&body);
        let listed_it = path.contains("latest") || path.contains("world");
        if !path.ends_with(".atom") || !listed_it {
            assert!(!body.contains("fresh-story"), "{path} no longer lists it");
            continue;
        }
        // The feeds that listed it keep an RFC 6721 tombstone with the
        // entry's id and the time the store saw it withdrawn, and no entry.
        assert!(!body.contains("Fresh story"), "{path} no longer lists it");
        assert!(
            body.contains("xmlns:at=\"http://purl.org/atompub/tombstones/1.0\""),
            "{path}"
        );
        let tombstone = body
            .split("<at:deleted-entry ")
            .nth(1)
            .and_then(|rest| rest.split("/>").next())
            .unwrap_or_else(|| panic!("{path} has a tombstone: {body}"));
        assert!(
            tombstone.contains("ref=\"tag:news.example.com,2026-03-01:fresh-story\""),
            "{path}: {tombstone}"
        );
        let when = tombstone
            .split("when=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a when attribute");
        let when = chrono::DateTime::parse_from_rfc3339(when).expect("an RFC 3339 time");
        // The store's clock, to the millisecond (SQLite's `subsec`).
        let slack = chrono::Duration::milliseconds(2);
        assert!(
            when >= withdrawing - slack && when <= withdrawn + slack,
            "{path}: withdrawn at {when}, between {withdrawing} and {withdrawn}"
        );
    }
    // A withdrawal changes the documents, so it moves Last-Modified too
    // (a reader asking If-Modified-Since must not be told nothing changed).
    let response = reqwest::get(format!("{}/feeds/latest.rss", service.base))
        .await
        .expect("request");
    let modified = response
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .expect("a Last-Modified header");
    let modified = chrono::DateTime::<chrono::Utc>::from(modified);
    assert!(
        modified >= withdrawing - chrono::Duration::seconds(1),
        "Last-Modified {modified} is the withdrawal's time ({withdrawing})"
    );
    let health = service.health().await;
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn the_watch_poll_serves_a_write_without_waiting_for_the_schedule() {
    let service = Service::start(ServiceOptions {
        // Once a year: only the watch poll can pick the write up in time.
        schedule: "refresh = \"0 3 1 1 *\"\nwatch = \"100ms\"".into(),
        ..ServiceOptions::default()
    })
    .await;
    let before = service.first_refresh(20).await;
    service
        .writer()
        .await
        .upsert(&[article("watched", "2026-03-02T08:00:00Z", json!({}))])
        .await
        .expect("write");
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let (_, _, body) = service.get("/feeds/latest.atom").await;
    assert!(text(&body).contains("watched"));
}

#[tokio::test]
async fn the_watch_poll_is_not_fooled_by_another_feeds_scheduled_refresh() {
    // A feed the write does not touch refreshes every second and so sees the
    // new revision first; the watch poll must still bring the others up to it.
    let service = Service::start(ServiceOptions {
        schedule: "refresh = \"0 3 1 1 *\"\nwatch = \"3s\"".into(),
        extra_feeds: vec![(
            "busy.toml".into(),
            "title = \"Busy\"\nsections = [\"Sport\"]\nrefresh = \"* * * * * *\"\n".into(),
        )],
        ..ServiceOptions::default()
    })
    .await;
    let before = service.first_refresh(20).await;
    service
        .writer()
        .await
        .upsert(&[article("not-sport", "2026-03-09T08:00:00Z", json!({}))])
        .await
        .expect("write");
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
}

#[tokio::test]
async fn a_write_rebuilds_only_the_feeds_it_touches() {
    let service = Service::start(ServiceOptions::default()).await;
    let before = service.first_refresh(20).await;
    let world_before = service.etag("/feeds/world.rss").await;
    let climate_before = service.etag("/feeds/climate.rss").await;
    let queries_before = service.queries.lock().expect("queries").len();

    service
        .writer()
        .await
        .upsert(&[article(
            "world-only",
            "2026-03-04T08:00:00Z",
            json!({"section": "World", "tags": ["Diplomacy"]}),
        )])
        .await
        .expect("write");
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    service
        .wait_for_new_etag("/feeds/world.rss", &world_before)
        .await;
    assert_eq!(service.etag("/feeds/climate.rss").await, climate_before);

    // latest (no filter) and world (section World) were queried; climate
    // (tag filter) and business (section Business) were not touched at all.
    let queries = service.queries.lock().expect("queries")[queries_before..].to_vec();
    let sections: Vec<Vec<String>> = queries.iter().map(|f| f.sections.clone()).collect();
    assert_eq!(queries.len(), 2, "{queries:?}");
    assert!(
        sections.contains(&vec![]) && sections.contains(&vec!["world".to_owned()]),
        "{queries:?}"
    );
}

#[tokio::test]
async fn an_unchanged_store_publishes_nothing_new() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let first = served(&service).await;
    let published_at = service.health().await["published_at"].clone();
    // Several refreshes (one per second) later, nothing was republished.
    let poll = service.health().await["last_store_poll"].clone();
    service
        .wait_for(10, "two more store polls", || async {
            let h = service.health().await;
            (h["last_store_poll"] != poll && h["last_store_poll"] != json!(null)).then_some(())
        })
        .await;
    assert_eq!(served(&service).await, first);
    assert_eq!(service.health().await["published_at"], published_at);
    let queries = service.queries.lock().expect("queries").len();
    assert_eq!(queries, 4, "one build per feed at start-up, none after");
}

#[tokio::test]
async fn feed_files_are_reloaded_and_a_broken_edit_keeps_the_running_config() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    assert_eq!(service.get("/feeds/culture.rss").await.0, 404);

    std::fs::write(
        service.path("feeds/culture.toml"),
        "title = \"Culture\"\nlimit = 5\n",
    )
    .expect("add feed");
    service
        .wait_for(15, "the added feed", || async {
            (service.get("/feeds/culture.rss").await.0 == 200).then_some(())
        })
        .await;
    assert_eq!(service.health().await["config_generation"], 2);
    let (_, _, index) = service.get("/").await;
    assert!(
        text(&index).contains("/feeds/culture.atom"),
        "the index lists it"
    );

    // A typo: the whole edit is refused, every feed keeps being served.
    std::fs::write(
        service.path("feeds/culture.toml"),
        "title = \"Culture\"\nlimt = 5\n",
    )
    .expect("break feed");
    let health = service
        .wait_for(15, "the rejected edit in /healthz", || async {
            let h = service.health().await;
            (h["status"] == "degraded").then_some(h)
        })
        .await;
    let reason = health["errors"][0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        reason.contains("culture.toml:2:1") && reason.contains("limt"),
        "the error names file:line:col: {reason}"
    );
    assert_eq!(
        health["config_generation"], 2,
        "still on the previous config"
    );
    for path in [
        "/feeds/culture.rss",
        "/feeds/latest.rss",
        "/feeds/world.json",
    ] {
        assert_eq!(service.get(path).await.0, 200, "{path} still served");
    }

    // Fixed, with the feed renamed: the old name is gone, not a sudden 404.
    std::fs::remove_file(service.path("feeds/culture.toml")).expect("remove");
    std::fs::write(service.path("feeds/arts.toml"), "title = \"Arts\"\n").expect("add");
    service
        .wait_for(15, "the fixed config", || async {
            (service.get("/feeds/arts.json").await.0 == 200).then_some(())
        })
        .await;
    let (status, _, body) = service.get("/feeds/culture.rss").await;
    assert_eq!(status, 410, "{}", text(&body));
    let health = service.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["config_generation"], 3);
    // The writer follows publication: the removed feed's files go soon after.
    service
        .wait_for(
            15,
            "culture's files removed from the output folder",
            || async { (!service.path("published/culture.rss").exists()).then_some(()) },
        )
        .await;
    // Swapped in first, then written to the output folder.
    service
        .wait_for(15, "arts.rss in the output folder", || async {
            service.path("published/arts.rss").exists().then_some(())
        })
        .await;
}

#[tokio::test]
async fn an_unreachable_store_keeps_the_last_good_feeds_and_recovers() {
    let service = Service::start(ServiceOptions::default()).await;
    let before = service.first_refresh(20).await;
    let everything = served(&service).await;

    service.down.store(true, Ordering::SeqCst);
    let health = service
        .wait_for(15, "degraded health", || async {
            let h = service.health().await;
            (h["status"] == "degraded").then_some(h)
        })
        .await;
    assert_eq!(health["errors"][0]["component"], "store", "{health}");
    assert!(health["data_age_seconds"].is_number());
    // A CMS writes meanwhile (the database is fine; our connection is not).
    service
        .writer()
        .await
        .upsert(&[article("while-down", "2026-03-03T08:00:00Z", json!({}))])
        .await
        .expect("write");
    assert_eq!(
        served(&service).await,
        everything,
        "the last good feeds stay"
    );

    service.down.store(false, Ordering::SeqCst);
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let (_, _, body) = service.get("/feeds/latest.rss").await;
    assert!(
        text(&body).contains("while-down"),
        "caught up without a restart"
    );
    service
        .wait_for(15, "ok health", || async {
            (service.health().await["status"] == "ok").then_some(())
        })
        .await;
}

#[tokio::test]
async fn a_restart_serves_the_same_etags_before_the_store_is_reached() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let before = served(&service).await;
    assert!(before.iter().all(|(s, _)| *s == 200), "{before:?}");
    let gzip_before = gzip_etag(&service, "/feeds/latest.rss").await;
    let dir = service.stop().await;

    let again = Service::start_in(
        dir,
        ServiceOptions {
            down: true,
            ..ServiceOptions::default()
        },
    )
    .await;
    assert_eq!(served(&again).await, before);
    assert_eq!(gzip_etag(&again, "/feeds/latest.rss").await, gzip_before);
    let health = again
        .wait_for(15, "degraded health", || async {
            let h = again.health().await;
            (h["status"] == "degraded").then_some(h)
        })
        .await;
    assert_eq!(health["last_store_poll"], json!(null), "{health}");
    // Pages are not kept in the output folder: built again with the feed.
    assert_eq!(again.get("/feeds/latest").await.0, 503);

    again.down.store(false, Ordering::SeqCst);
    again
        .wait_for(15, "the store to be reached", || async {
            (again.health().await["status"] == "ok").then_some(())
        })
        .await;
    again
        .wait_for(15, "the feed's page", || async {
            (again.get("/feeds/latest").await.0 == 200).then_some(())
        })
        .await;
    assert_eq!(
        served(&again).await,
        before,
        "a rebuild of the same store changes nothing"
    );
}

/// The ETag of `path`'s gzip variant, once it is made (in the background,
/// after the document is served).
async fn gzip_etag(service: &Service, path: &str) -> String {
    service
        .wait_for(10, "a gzip variant", || async {
            let r = reqwest::Client::new()
                .get(format!("{}{path}", service.base))
                .header("accept-encoding", "gzip")
                .send()
                .await
                .expect("request");
            let gzip = r
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v == "gzip");
            gzip.then(|| r.headers()["etag"].to_str().expect("etag").to_owned())
        })
        .await
}

#[tokio::test]
async fn a_store_that_cannot_open_at_start_up_is_picked_up_when_it_can() {
    let parent = tempfile::tempdir().expect("temp dir");
    // A file where the store's folder should be: SQLite cannot create the store.
    let blocker = parent.path().join("data");
    std::fs::write(&blocker, b"not a folder").expect("blocker");
    let service = Service::start(ServiceOptions {
        store_url: Some(format!(
            "sqlite://{}",
            blocker.join("articles.db").display()
        )),
        ..ServiceOptions::default()
    })
    .await;
    let health = service
        .wait_for(15, "degraded health", || async {
            let h = service.health().await;
            (h["status"] == "degraded").then_some(h)
        })
        .await;
    assert_eq!(health["errors"][0]["component"], "store", "{health}");
    let (status, _, body) = service.get("/feeds/latest.rss").await;
    assert_eq!(status, 503, "nothing built yet: {}", text(&body));
    assert_eq!(
        service.get("/").await.0,
        200,
        "the index is served meanwhile"
    );

    std::fs::remove_file(&blocker).expect("unblock");
    service.first_refresh(20).await;
    assert_eq!(service.health().await["status"], "ok");
}

#[tokio::test]
async fn build_and_serve_write_the_same_bytes() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let config = feedsmith::config::Config::load(&service.path("feedsmith.toml")).expect("config");
    let store = service.writer().await;
    let out = service.path("built");
    // Documents are swapped in first, then written: wait for the files.
    service
        .wait_for(15, "the output folder to hold what is served", || async {
            for path in FEEDS {
                let (_, _, served) = service.get(path).await;
                let file = service
                    .path("published")
                    .join(path.trim_start_matches("/feeds/"));
                if std::fs::read(&file).ok()? != served {
                    return None;
                }
            }
            Some(())
        })
        .await;
    feedsmith::app::build_all(&config, &store, &out)
        .await
        .expect("build");
    for path in FEEDS {
        let (_, _, served) = service.get(path).await;
        let file = out.join(path.trim_start_matches("/feeds/"));
        assert_eq!(std::fs::read(&file).expect("built file"), served, "{path}");
        let published = service
            .path("published")
            .join(path.trim_start_matches("/feeds/"));
        assert_eq!(
            std::fs::read(&published).expect("output file"),
            served,
            "{path}"
        );
    }
}

/// Runs the service's start-up path (as `app::run_with` does, without the
/// HTTP server) until every feed is published, and returns what it serves.
async fn cold_start(config: feedsmith::config::Config) -> Arc<PublishedSet> {
    let config = Arc::new(config);
    let publisher = Arc::new(Publisher::default());
    let pipeline = Arc::new(publish::Pipeline::start(
        &config.output_dir,
        publisher.clone(),
        Box::new(|_| {}),
    ));
    publisher.publish(refresh::initial_set(&config, &pipeline).await);
    let scheduler = Scheduler::new(
        config.clone(),
        Arc::new(feedsmith::app::ConfiguredStore),
        publisher.clone(),
        pipeline.clone(),
        Arc::new(Health::new(1)),
        Arc::new(SystemClock),
    );
    let (_control, control_rx) = tokio::sync::mpsc::channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(scheduler.run(control_rx, async {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let set = loop {
        let set = publisher.snapshot();
        if set.pending().is_empty() && set.feeds().len() == config.feeds.len() {
            break set;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for every feed: pending {:?}",
            set.pending()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    task.await.expect("scheduler");
    // Every variant made, so callers see the documents whole.
    let compressing = pipeline.clone();
    tokio::task::spawn_blocking(move || compressing.compressor.wait_idle())
        .await
        .expect("compressor");
    set
}

/// Seeds the store `config` names and adds articles long enough that the
/// feeds listing them (and their compressed variants) exceed
/// `SENDFILE_MIN_BYTES`; the sample articles alone are too short.
async fn add_long_articles(config: &feedsmith::config::Config) {
    let store = feedsmith::app::open_store(config, feedsmith::app::Seeding::OnFirstStart)
        .await
        .expect("store");
    // Words from a fixed pseudo-random sequence compress about as little as prose.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut word = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = 3 + (x % 7) as usize;
        (0..len)
            .map(|i| char::from(b'a' + ((x >> (i * 5)) % 26) as u8))
            .collect::<String>()
    };
    let articles: Vec<_> = (0..4)
        .map(|i| {
            let body: Vec<String> = (0..3000).map(|_| word()).collect();
            article(
                &format!("long-read-{i}"),
                &format!("2030-01-0{}T09:00:00Z", i + 1),
                json!({ "body_html": format!("<p>{}</p>", body.join(" ")), "section": "World" }),
            )
        })
        .collect();
    store.upsert(&articles).await.expect("upsert");
}

/// Every variant large enough for `sendfile` is kept in the body store, off
/// the heap; returns how many there are.
fn assert_large_variants_are_stored(set: &PublishedSet) -> usize {
    let mut large = 0;
    for (name, feed) in set.feeds() {
        for (format, rep) in feed {
            for v in rep
                .variants()
                .filter(|v| v.body.len() >= SENDFILE_MIN_BYTES)
            {
                large += 1;
                assert!(
                    v.body.is_stored(),
                    "{name}.{} ({}, {} bytes) is on the heap",
                    format.extension(),
                    v.encoding.name(),
                    v.body.len()
                );
            }
        }
    }
    large
}

#[tokio::test]
async fn a_first_start_into_a_missing_output_folder_keeps_large_variants_off_the_heap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ServiceOptions::default();
    common::copy_feeds(dir.path(), &options);
    let addr = "127.0.0.1:0".parse().expect("addr");
    let config = common::write_config(dir.path(), addr, &options);
    add_long_articles(&config).await;
    assert!(
        !config.output_dir.exists(),
        "the output folder starts missing"
    );

    let set = cold_start(config).await;
    let large = assert_large_variants_are_stored(&set);
    assert!(
        large > 0,
        "the sample feeds have no variant of {SENDFILE_MIN_BYTES} bytes, so this test proves nothing"
    );
    let compressed = set
        .feeds()
        .values()
        .flat_map(|f| f.values())
        .filter(|r| r.gzip().is_some() && r.brotli().is_some())
        .count();
    assert!(compressed > 0, "the background compressor made no variant");
}

#[tokio::test]
async fn an_unchanged_rebuild_keeps_its_representation_and_its_variants() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = ServiceOptions::default();
    common::copy_feeds(dir.path(), &options);
    let config = common::write_config(dir.path(), "127.0.0.1:0".parse().expect("addr"), &options);
    add_long_articles(&config).await;
    let store = feedsmith::app::open_store(&config, feedsmith::app::Seeding::OnFirstStart)
        .await
        .expect("store");
    let spec = config.feeds.get("latest").expect("latest feed");
    let built = refresh::build_feed(&config, spec, store.as_ref())
        .await
        .expect("build");
    let bodies = publish::BodyStore::create(dir.path()).expect("body store");
    let first = refresh::represent_feed(&config, spec, &built.docs, None, Some(&bodies));
    for rep in first.values() {
        assert!(rep.pending().next().is_some() || !rep.compressible());
        rep.compress(publish::Encoding::Gzip, Some(&bodies))
            .expect("gzip");
    }
    let again = refresh::represent_feed(&config, spec, &built.docs, Some(&first), Some(&bodies));
    for (format, rep) in &again {
        assert!(
            Arc::ptr_eq(rep, &first[format]),
            "{format:?}: kept as it is"
        );
    }
    // A changed caching policy is a new representation, made afresh.
    let mut other = config.clone();
    other.server.cache_max_age = Some(std::time::Duration::from_secs(7));
    let changed = refresh::represent_feed(&other, spec, &built.docs, Some(&first), Some(&bodies));
    for (format, rep) in &changed {
        assert!(!Arc::ptr_eq(rep, &first[format]), "{format:?}: new policy");
        assert_eq!(rep.identity.etag, first[format].identity.etag, "same bytes");
    }
}

/// Configuration loads that wait in their blocking thread until the test
/// lets them go, as a slow disk or a huge file would make them.
#[derive(Default)]
struct SlowLoads {
    started: std::sync::atomic::AtomicUsize,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl SlowLoads {
    fn loader(self: &std::sync::Arc<Self>) -> feedsmith::reloader::Loader {
        let slow = self.clone();
        std::sync::Arc::new(move |path| {
            slow.started.fetch_add(1, Ordering::SeqCst);
            let open = slow.open.lock().expect("lock");
            // Bounded, so a failing test cannot hang its runtime's shutdown.
            let _open = slow
                .opened
                .wait_timeout_while(open, std::time::Duration::from_secs(60), |open| !*open)
                .expect("lock");
            feedsmith::config::Config::load(path)
        })
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    fn release(&self) {
        *self.open.lock().expect("lock") = true;
        self.opened.notify_all();
    }
}

/// Lets the loads go however the test ends.
struct Release(std::sync::Arc<SlowLoads>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[tokio::test]
async fn publishing_goes_on_while_a_changed_configuration_is_read() {
    let slow = std::sync::Arc::new(SlowLoads::default());
    let _release = Release(slow.clone());
    let service = Service::start(ServiceOptions {
        loader: Some(slow.loader()),
        ..ServiceOptions::default()
    })
    .await;
    let before = service.first_refresh(20).await;

    std::fs::write(
        service.path("feeds/culture.toml"),
        "title = \"Culture\"\nlimit = 5\n",
    )
    .expect("add feed");
    service
        .wait_for(15, "the reload to start reading", || async {
            (slow.started() == 1).then_some(())
        })
        .await;

    // While it reads: a write is published, and the store is still polled.
    let poll = service.health().await["last_store_poll"].clone();
    service
        .writer()
        .await
        .upsert(&[article(
            "during-reload",
            "2026-03-05T08:00:00Z",
            json!({"headline": "Written during a reload"}),
        )])
        .await
        .expect("write");
    service
        .wait_for_new_etag("/feeds/latest.rss", &before)
        .await;
    let (_, _, rss) = service.get("/feeds/latest.rss").await;
    assert!(text(&rss).contains("Written during a reload"));
    service
        .wait_for(10, "another store poll", || async {
            (service.health().await["last_store_poll"] != poll).then_some(())
        })
        .await;
    let health = service.health().await;
    assert_eq!(health["config_generation"], 1, "not applied yet: {health}");
    assert_eq!(service.get("/feeds/culture.rss").await.0, 404);
    assert_eq!(slow.started(), 1, "still the one load, still reading");

    slow.release();
    service
        .wait_for(15, "the reloaded feed", || async {
            (service.get("/feeds/culture.rss").await.0 == 200).then_some(())
        })
        .await;
    assert_eq!(service.health().await["config_generation"], 2);
}

#[tokio::test]
async fn a_refused_reload_lists_the_first_hundred_problems_in_healthz() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let mut noisy = String::from("title = \"Noisy\"\n");
    for i in 1..=130 {
        noisy.push_str(&format!("key{i} = {i}\n"));
    }
    std::fs::write(service.path("feeds/noisy.toml"), noisy).expect("add feed");
    let health = service
        .wait_for(15, "the refused edit in /healthz", || async {
            let h = service.health().await;
            (h["status"] == "degraded").then_some(h)
        })
        .await;
    assert_eq!(health["errors"][0]["component"], "config", "{health}");
    let reason = health["errors"][0]["reason"].as_str().unwrap_or_default();
    let lines: Vec<&str> = reason.lines().collect();
    assert_eq!(lines.len(), 101, "{reason}");
    assert!(
        lines[0].ends_with("noisy.toml:2:1: key1: unknown key `key1`, expected one of `title`, `description`, `limit`, `sections`, `tags`, `authors`, `formats`, `refresh`, `archive`, `archive_page_size`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[99].contains("noisy.toml:101:1: key100:"),
        "{}",
        lines[99]
    );
    assert_eq!(lines[100], "… and 30 more problems");
    assert_eq!(service.get("/feeds/latest.rss").await.0, 200);
}

/// Once the background work is done, every variant the service sends is
/// byte for byte the file in the output folder (`{doc}`, `{doc}.gz`,
/// `{doc}.br`), under the ETag of those bytes; before that, whatever it sends
/// still matches its ETag.
#[tokio::test]
async fn served_bytes_of_every_variant_equal_the_output_folder_files() {
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let client = reqwest::Client::new();
    let published = service.path("published");
    let fetch = |path: &'static str, coding: &'static str| {
        let client = client.clone();
        let url = format!("{}{path}", service.base);
        async move {
            let r = client
                .get(url)
                .header("accept-encoding", coding)
                .send()
                .await
                .expect("request");
            let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
            let sent = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("coding").to_owned());
            (etag, sent, r.bytes().await.expect("body").to_vec())
        }
    };
    // Compressed variants and their files follow the documents: wait for all.
    let compressed = service
        .wait_for(20, "every variant in the output folder", || async {
            let mut compressed = 0;
            for path in FEEDS {
                let file = published.join(path.trim_start_matches("/feeds/"));
                for (coding, suffix) in [("identity", ""), ("gzip", ".gz"), ("br", ".br")] {
                    let (etag, sent, bytes) = fetch(path, coding).await;
                    assert_eq!(
                        etag,
                        feedsmith::builder::ETag::of(&bytes).as_str(),
                        "{path} {coding}: the tag is the bytes'"
                    );
                    if coding != "identity" && sent.is_none() {
                        if bytes.len() < feedsmith::publish::COMPRESS_MIN_BYTES {
                            continue; // too small to compress: identity only
                        }
                        return None; // not made yet
                    }
                    let on_disk = format!("{}{suffix}", file.display());
                    match std::fs::read(&on_disk) {
                        Ok(disk) if disk == bytes => {}
                        _ => return None, // not written yet
                    }
                    if coding != "identity" {
                        compressed += 1;
                    }
                }
            }
            Some(compressed)
        })
        .await;
    assert!(
        compressed >= FEEDS.len(),
        "only {compressed} compressed variants: the test proves little"
    );
}
