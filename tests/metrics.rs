//! `/metrics` end to end: the real service, its families moving with what
//! happens to it, `promtool check metrics` on the text, and `[metrics]`.
//!
//! The metrics are one set per process, so every check compares a scrape
//! before with one after, and the tests of this file take turns
//! ([`SERIAL`]): a gauge such as the store revision is whatever the last
//! service in the process set, and another test's service would set its own.

mod common;

use std::sync::atomic::Ordering;

use common::{Service, ServiceOptions, article};
use feedsmith::store::ArticleStore;
use serde_json::json;

/// Held by each test for its whole run, so only one service in this process
/// sets the gauges at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `/metrics` text.
async fn scrape(service: &Service) -> String {
    let (status, _, body) = service.get("/metrics").await;
    assert_eq!(status, 200, "/metrics answers");
    String::from_utf8(body).expect("metrics are UTF-8")
}

/// The sum of the samples named `name` whose labels contain every one of
/// `labels` (such as `route="feed"`); `None` when there is no such sample.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, v) = line.rsplit_once(' ')?;
        let (sample, label_text) = series.split_once('{').unwrap_or((series, ""));
        if sample != name || !labels.iter().all(|l| label_text.contains(l)) {
            continue;
        }
        let v: f64 = v.parse().ok()?;
        found = Some(found.unwrap_or(0.0) + v);
    }
    found
}

fn moved(before: &str, after: &str, name: &str, labels: &[&str]) {
    let b = value(before, name, labels).unwrap_or(0.0);
    let a = value(after, name, labels)
        .unwrap_or_else(|| panic!("no {name}{labels:?} after the events:\n{after}"));
    assert!(a > b, "{name}{labels:?} did not move: {b} -> {a}");
}

fn present(text: &str, name: &str) {
    assert!(
        text.contains(&format!("# TYPE {name} ")),
        "no {name} family:\n{text}"
    );
}

#[tokio::test]
async fn every_family_moves_after_a_request_a_rebuild_a_reload_and_a_store_fault() {
    let _serial = SERIAL.lock().await;
    let service = Service::start(ServiceOptions::default()).await;
    let etag = service.first_refresh(20).await;
    let before = scrape(&service).await;

    // A request: a conditional GET answered 304.
    let client = reqwest::Client::new();
    let r = client
        .get(format!("{}/feeds/latest.rss", service.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 304);
    let (status, _, _) = service.get("/feeds/latest").await;
    assert_eq!(status, 200, "the feed's page");

    // A rebuild: a new article.
    service
        .writer()
        .await
        .upsert(&[article(
            "metrics-new",
            "2026-03-03T08:00:00Z",
            json!({"headline": "Counted"}),
        )])
        .await
        .expect("write");
    service.wait_for_new_etag("/feeds/latest.rss", &etag).await;

    // A reload, applied, then one rejected.
    std::fs::write(service.path("feeds/culture.toml"), "title = \"Culture\"\n").expect("add feed");
    service
        .wait_for(15, "the added feed", || async {
            (service.get("/feeds/culture.rss").await.0 == 200).then_some(())
        })
        .await;
    std::fs::write(service.path("feeds/culture.toml"), "titel = \"Culture\"\n")
        .expect("break feed");
    service
        .wait_for(15, "the rejected edit", || async {
            let text = scrape(&service).await;
            value(
                &text,
                "feedsmith_config_reloads_total",
                &["result=\"rejected\""],
            )
            .filter(|&n| {
                n > value(
                    &before,
                    "feedsmith_config_reloads_total",
                    &["result=\"rejected\""],
                )
                .unwrap_or(0.0)
            })
        })
        .await;

    // A store fault.
    service.down.store(true, Ordering::SeqCst);
    service
        .wait_for(15, "a store error counted", || async {
            let text = scrape(&service).await;
            let now = value(&text, "feedsmith_store_errors_total", &[]).unwrap_or(0.0);
            let then = value(&before, "feedsmith_store_errors_total", &[]).unwrap_or(0.0);
            (now > then).then_some(())
        })
        .await;
    service.down.store(false, Ordering::SeqCst);

    // Compression follows publication in the background.
    let after = service
        .wait_for(15, "the new documents compressed", || async {
            let text = scrape(&service).await;
            let now = value(&text, "feedsmith_compression_duration_seconds_count", &[]);
            let then = value(&before, "feedsmith_compression_duration_seconds_count", &[]);
            (now.unwrap_or(0.0) > then.unwrap_or(0.0)).then_some(text)
        })
        .await;

    let feed304 = [
        "route=\"feed\"",
        "status=\"3xx\"",
        "conditional=\"not_modified\"",
    ];
    moved(&before, &after, "feedsmith_http_requests_total", &feed304);
    moved(
        &before,
        &after,
        "feedsmith_http_requests_total",
        &["route=\"page\"", "status=\"2xx\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_http_requests_total",
        &["route=\"metrics\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_http_response_bytes_total",
        &["route=\"page\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_http_request_duration_seconds_count",
        &["route=\"feed\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_feed_builds_total",
        &["feed=\"latest\"", "result=\"published\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_feed_build_duration_seconds_count",
        &[],
    );
    moved(&before, &after, "feedsmith_documents_published_total", &[]);
    moved(&before, &after, "feedsmith_store_revision", &[]);
    moved(
        &before,
        &after,
        "feedsmith_feed_built_revision",
        &["feed=\"latest\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_store_last_poll_timestamp_seconds",
        &[],
    );
    moved(&before, &after, "feedsmith_store_errors_total", &[]);
    moved(
        &before,
        &after,
        "feedsmith_config_reloads_total",
        &["result=\"applied\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_config_reloads_total",
        &["result=\"rejected\""],
    );
    moved(
        &before,
        &after,
        "feedsmith_compression_duration_seconds_count",
        &[],
    );
    moved(&before, &after, "process_cpu_seconds_total", &[]);
    // Faults these events do not cause: there, at whatever they stand.
    present(&after, "feedsmith_output_write_failures_total");
    present(&after, "feedsmith_access_log_dropped_lines_total");
    for gauge in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(&after, gauge, &[]).is_some_and(|v| v > 0.0),
            "{gauge} is reported"
        );
    }
    // No raw path becomes a label.
    let _ = service.get("/no/such/path?x=1").await;
    let text = scrape(&service).await;
    assert!(!text.contains("/no/such"), "a raw path leaked into a label");
}

/// promtool from Debian's `prometheus` package; `None` (after saying why)
/// when it is not installed and cannot be.
fn promtool() -> Option<&'static str> {
    if std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok()
    {
        return Some("promtool");
    }
    eprintln!(
        "SKIPPED: promtool is not installed (scripts/test.sh installs it as root: apt-get install prometheus)"
    );
    None
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let _serial = SERIAL.lock().await;
    let service = Service::start(ServiceOptions::default()).await;
    service.first_refresh(20).await;
    for path in [
        "/",
        "/feeds/latest.rss",
        "/feeds/latest",
        "/healthz",
        "/nope",
    ] {
        let _ = service.get(path).await;
    }
    let text = scrape(&service).await;
    let Some(promtool) = promtool() else {
        assert!(
            !is_root(),
            "running as root, scripts/test.sh would have installed promtool"
        );
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool finished");
    assert!(
        out.status.success(),
        "promtool check metrics refused the text:\n{}{}\n---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Root could have installed promtool: a missing one is then a failure.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own_or_be_off() {
    let _serial = SERIAL.lock().await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let service = Service::start(ServiceOptions {
        main_extra: format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
        ..ServiceOptions::default()
    })
    .await;
    service.first_refresh(20).await;
    assert_eq!(
        service.get("/metrics").await.0,
        404,
        "not on the public listener"
    );
    let r = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics listener");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text().await.expect("body");
    assert!(
        text.contains("# TYPE feedsmith_http_requests_total counter"),
        "{text}"
    );
    let r = reqwest::get(format!("http://127.0.0.1:{port}/feeds/latest.rss"))
        .await
        .expect("metrics listener");
    assert_eq!(
        r.status().as_u16(),
        404,
        "no documents on the metrics listener"
    );
    drop(service);

    let off = Service::start(ServiceOptions {
        main_extra: "[metrics]\nenabled = false\n".into(),
        ..ServiceOptions::default()
    })
    .await;
    off.first_refresh(20).await;
    assert_eq!(off.get("/metrics").await.0, 404, "off");
}
