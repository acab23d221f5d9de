//! The feed pages in a real browser: headless Chromium (Debian's `chromium`
//! package, installed by `scripts/test.sh` when run as root) against the
//! running service. It reads the rendered DOM for what a person sees —
//! headline, photographer credit, agency rights, the time in the site's
//! zone — saves screenshots of the index and a feed page for a person to
//! look at, and checks that a hostile article renders inert, with no
//! script run and no console error or CSP violation.
//!
//! Screenshots go to `$CARGO_TARGET_TMPDIR/browser-tests/`; with
//! `FEEDSMITH_SCREENSHOT_TO=PATH` the feed page's is also copied there
//! (`scripts/screenshot.sh` makes the README's).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Service, ServiceOptions, article};
use feedsmith::store::ArticleStore;
use serde_json::json;

/// The browser, or `None` after saying why the test is skipped. Root could
/// have installed it (`scripts/test.sh` does), so a missing one fails there.
fn chromium() -> Option<&'static str> {
    for name in ["chromium", "chromium-browser"] {
        if Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            return Some(name);
        }
    }
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false);
    assert!(
        !root,
        "chromium is missing though this runs as root: run scripts/test.sh (apt-get install chromium)"
    );
    eprintln!(
        "SKIPPED: chromium is not installed and this is not root; install it with apt-get install chromium"
    );
    None
}

/// What one headless run printed: stdout (the DOM with `--dump-dom`) and
/// stderr (the browser's log, console messages included).
struct Run {
    stdout: String,
    stderr: String,
}

/// Runs headless Chromium on `url` with `extra` arguments, in a profile of
/// its own, for at most a minute.
fn run_chromium(browser: &str, profile: &Path, url: &str, extra: &[&str]) -> Run {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().expect("chromium status").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("chromium output");
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Console errors and CSP violations in a run's log.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("Uncaught")
                || l.contains("Refused to")
                || l.contains("Content Security Policy")
                || (l.contains("CONSOLE") && l.contains("rror"))
        })
        .collect()
}

/// A small picture served over HTTP on 127.0.0.1, so the page's image loads
/// without the internet: its URL.
async fn serve_photo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind photo server");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"360\">\
                   <rect width=\"640\" height=\"360\" fill=\"#3b6e8f\"/>\
                   <circle cx=\"480\" cy=\"110\" r=\"60\" fill=\"#f2c14e\"/>\
                   <path d=\"M0 300 L200 160 L360 300 Z\" fill=\"#24465c\"/></svg>";
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/svg+xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    svg.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(svg.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/photo.svg")
}

fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-tests");
    std::fs::create_dir_all(&dir).expect("screenshot folder");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_feed_page_render_in_chromium_and_a_hostile_article_is_inert() {
    let Some(browser) = chromium() else { return };
    // A feed of its own for the showcase stories, so its page (the README's
    // screenshot) shows them at the top; the hostile one goes to `latest`.
    let service = Service::start(ServiceOptions {
        extra_feeds: vec![(
            "syria.toml".into(),
            "title = \"Syria\"\ndescription = \"The war, the talks and the aid\"\ntags = [\"Syria\"]\n"
                .into(),
        )],
        ..ServiceOptions::default()
    })
    .await;
    service.first_refresh(20).await;
    let photo = serve_photo().await;
    service
        .writer()
        .await
        .upsert(&[
            article(
                "world-2015-un-talks",
                "2015-09-29T09:15:00+01:00",
                json!({
                    "headline": "UN talks on Syria resume in Geneva",
                    "standfirst": "Diplomats meet again after a week of setbacks.",
                    "updated_at": "2015-09-29T12:50:00+01:00",
                    "source": {"name": "AFP", "rights": "© AFP, 2015"},
                    "section": "World",
                    "tags": ["UN", "Syria"],
                    "authors": [{"name": "Jane Doe"}],
                    "image": {
                        "url": photo,
                        "caption": "Delegates arrive at the Palais des Nations",
                        "credit": "Pierre Albouy"
                    }
                }),
            ),
            article(
                "world-2015-aid-convoy",
                "2015-09-28T16:05:00+01:00",
                json!({
                    "headline": "Aid convoy reaches besieged towns after weeks of talks",
                    "standfirst": "Forty lorries carried food and medicine.",
                    "source": {"name": "Reuters", "rights": "© Reuters, 2015"},
                    "section": "World",
                    "tags": ["Syria", "Aid"],
                    "authors": [{"name": "Omar Haddad"}]
                }),
            ),
            article(
                "hostile",
                "2026-01-01T10:00:00Z",
                json!({
                    "headline": "<script>document.title='pwned'</script>Hostile <b>headline",
                    "standfirst": "<img src=x onerror=\"document.title='pwned'\">standfirst",
                    "body_html": "<p onclick=\"alert(1)\">body <script>alert(1)</script><a href=\"javascript:alert(1)\">link</a><div><span>broken",
                    "source": {"name": "Evil", "rights": "</p><script>alert(2)</script>"},
                    "tags": ["<svg onload=alert(3)>"],
                    "image": {
                        "url": photo,
                        "caption": "</figcaption><script>alert(4)</script><i>unclosed",
                        "credit": "\"><script>alert(5)</script>"
                    }
                }),
            ),
        ])
        .await
        .expect("write");
    let page_url = format!("{}/feeds/syria", service.base);
    let hostile_url = format!("{}/feeds/latest", service.base);
    service
        .wait_for(20, "the pages listing the new articles", || async {
            let (status, _, body) = service.get("/feeds/syria").await;
            let (status2, _, body2) = service.get("/feeds/latest").await;
            let body = String::from_utf8_lossy(&body).into_owned();
            let body2 = String::from_utf8_lossy(&body2).into_owned();
            (status == 200
                && status2 == 200
                && body.contains("UN talks on Syria")
                && body2.contains("Hostile"))
            .then_some(())
        })
        .await;

    let out = output_dir();
    let profile = tempfile::tempdir().expect("browser profile");
    let index_url = format!("{}/", service.base);
    let (page, hostile, index, shots) = {
        let (browser, profile, out) = (browser.to_owned(), profile.path().to_owned(), out.clone());
        let urls = [page_url.clone(), hostile_url.clone(), index_url.clone()];
        tokio::task::spawn_blocking(move || {
            let [page, hostile, index] = urls
                .clone()
                .map(|url| run_chromium(&browser, &profile, &url, &["--dump-dom"]));
            let shots = ["feed-page.png", "hostile-page.png", "index.png"].map(|f| out.join(f));
            for (url, shot) in urls.iter().zip(&shots) {
                let _ = std::fs::remove_file(shot);
                let arg = format!("--screenshot={}", shot.display());
                run_chromium(&browser, &profile, url, &[&arg, "--window-size=1000,1300"]);
            }
            (page, hostile, index, shots)
        })
        .await
        .expect("browser runs")
    };

    // What a person reads, from the DOM the browser built.
    let dom = &page.stdout;
    for expected in [
        "UN talks on Syria resume in Geneva",
        "Published 9.15am, 29 September 2015",
        "Updated 12.50pm, 29 September 2015",
        "Diplomats meet again after a week of setbacks.",
        "Photograph: Pierre Albouy",
        "© AFP, 2015",
        "© Reuters, 2015",
        "Delegates arrive at the Palais des Nations",
        "By Jane Doe",
        "<title>Syria · Example News</title>",
        "rel=\"alternate\" type=\"application/rss+xml\"",
        "value=\"http://news.example.com/feeds/syria.atom\"",
    ] {
        assert!(
            dom.contains(expected),
            "the page shows {expected:?}:\n{dom}"
        );
    }
    let problems = console_problems(&page.stderr);
    assert!(
        problems.is_empty(),
        "console errors or CSP violations on the feed page: {problems:#?}"
    );

    // The hostile article is there, as text, and nothing of it ran.
    let dom = &hostile.stdout;
    assert!(
        dom.contains(
            "&lt;script&gt;document.title='pwned'&lt;/script&gt;Hostile &lt;b&gt;headline"
        ),
        "the hostile headline is shown as text:\n{dom}"
    );
    assert!(!dom.contains("pwned</title>"), "a script ran:\n{dom}");
    assert!(
        !dom.contains("<script"),
        "a script element was made:\n{dom}"
    );
    assert!(!dom.contains("javascript:"), "a javascript: URL:\n{dom}");
    assert!(!dom.contains("<svg"), "an svg element was made:\n{dom}");
    assert!(
        !dom.contains("<img src=\"x\""),
        "an img element was made:\n{dom}"
    );
    assert!(
        dom.contains("&lt;svg onload=alert(3)&gt;"),
        "the hostile tag is shown as text:\n{dom}"
    );
    let problems = console_problems(&hostile.stderr);
    assert!(
        problems.is_empty(),
        "console errors or CSP violations with a hostile article: {problems:#?}"
    );

    assert!(
        index
            .stdout
            .contains("href=\"http://news.example.com/feeds/syria\""),
        "the index links the feed's page:\n{}",
        index.stdout
    );
    let problems = console_problems(&index.stderr);
    assert!(
        problems.is_empty(),
        "console errors on the index: {problems:#?}"
    );

    for shot in &shots {
        let bytes = std::fs::read(shot).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "a screenshot at {}",
            shot.display()
        );
        eprintln!("screenshot: {}", shot.display());
    }
    if let Some(to) = std::env::var_os("FEEDSMITH_SCREENSHOT_TO") {
        std::fs::copy(&shots[0], &to).expect("copy the screenshot");
        eprintln!("copied to {}", Path::new(&to).display());
    }
}
