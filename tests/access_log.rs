//! The access log end to end: the real server on `127.0.0.1:0` writes it to
//! a file, and the file is read back the way log analysers and collectors
//! read it.

mod common;

use std::io::Read;
use std::time::Duration;

use common::TestServer;
use serde_json::Value;

/// GoAccess's combined regex, as log analysers parse nginx logs.
const COMBINED: &str =
    r#"^(\S+) \S+ \S+ \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$"#;

/// A user agent that tries to end its field and forge a second line:
/// `"`, `\`, a tab and obs-text bytes are all valid in a header value.
const HOSTILE_UA: &[u8] = b"evil\" 200 0 \"-\" \"x\\\t\xff";

/// What a request should be logged as.
#[derive(Debug, PartialEq)]
struct Expected {
    method: &'static str,
    target: &'static str,
    protocol: &'static str,
    status: u16,
    bytes: u64,
    referer: Option<&'static str>,
    user_agent: Option<&'static str>,
    encoding: Option<&'static str>,
    conditional: &'static str,
}

/// Sends one raw HTTP/1.1 request with `headers` and returns the response.
async fn raw_request(server: &TestServer, request_line: &str, headers: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut req = format!("{request_line}\r\nHost: {}\r\n", server.addr).into_bytes();
    req.extend_from_slice(headers);
    req.extend_from_slice(b"Connection: close\r\n\r\n");
    stream.write_all(&req).await.expect("send");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("answered in time")
        .expect("read");
    out
}

/// The same requests for both formats; returns what each should log as.
async fn make_requests(server: &TestServer) -> Vec<Expected> {
    let client = reqwest::Client::new();
    let url = server.url("/feeds/latest.rss?utm_source=test");
    let plain = client.get(&url).send().await.expect("plain");
    assert_eq!(plain.status(), 200);
    let etag = plain.headers()["etag"].to_str().expect("etag").to_owned();
    let plain_len = plain.bytes().await.expect("body").len() as u64;

    let gzip = client
        .get(server.url("/feeds/latest.rss"))
        .header("accept-encoding", "gzip")
        .header("referer", "https://reader.example/home")
        .header(
            "user-agent",
            "NetNewsWire (RSS Reader; https://netnewswire.com/)",
        )
        .send()
        .await
        .expect("gzip");
    assert_eq!(gzip.headers()["content-encoding"], "gzip");
    let gzip_etag = gzip.headers()["etag"].to_str().expect("etag").to_owned();
    let gzip_len = gzip.bytes().await.expect("body").len() as u64;

    let not_modified = client
        .get(server.url("/feeds/latest.rss"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &gzip_etag)
        .send()
        .await
        .expect("conditional");
    assert_eq!(not_modified.status(), 304);

    let head = client
        .head(server.url("/feeds/latest.rss"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);

    let missing = client.get(server.url("/nope")).send().await.expect("404");
    assert_eq!(missing.status(), 404);

    let mut ua = b"User-Agent: ".to_vec();
    ua.extend_from_slice(HOSTILE_UA);
    ua.extend_from_slice(b"\r\n");
    let hostile = raw_request(server, "GET /nope HTTP/1.1", &ua).await;
    assert!(hostile.starts_with(b"HTTP/1.1 404"), "{hostile:?}");

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2 client");
    let over_h2 = h2
        .get(server.url("/feeds/latest.rss"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("h2");
    assert_eq!(over_h2.version(), reqwest::Version::HTTP_2);
    assert_eq!(over_h2.status(), 304);

    let base = Expected {
        method: "GET",
        target: "/feeds/latest.rss",
        protocol: "HTTP/1.1",
        status: 200,
        bytes: 0,
        referer: None,
        user_agent: None,
        encoding: Some("identity"),
        conditional: "none",
    };
    vec![
        Expected {
            target: "/feeds/latest.rss?utm_source=test",
            bytes: plain_len,
            ..base
        },
        Expected {
            bytes: gzip_len,
            referer: Some("https://reader.example/home"),
            user_agent: Some("NetNewsWire (RSS Reader; https://netnewswire.com/)"),
            encoding: Some("gzip"),
            ..base
        },
        Expected {
            status: 304,
            encoding: Some("gzip"),
            conditional: "not_modified",
            ..base
        },
        Expected {
            method: "HEAD",
            ..base
        },
        Expected {
            target: "/nope",
            status: 404,
            bytes: 10,
            encoding: None,
            ..base
        },
        Expected {
            target: "/nope",
            status: 404,
            bytes: 10,
            encoding: None,
            // Checked separately: the bytes differ between the formats.
            user_agent: Some("<hostile>"),
            ..base
        },
        Expected {
            protocol: "HTTP/2.0",
            status: 304,
            conditional: "not_modified",
            ..base
        },
    ]
}

/// Stops the server (which writes the last lines) and reads its log.
async fn stop_and_read(mut server: TestServer) -> String {
    server.shut_down().await.expect("server task");
    std::fs::read_to_string(&server.access_log).expect("access log")
}

/// `\xHH` escapes back to bytes, as a log analyser would.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 3 < b.len() {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex");
            out.push(u8::from_str_radix(hex, 16).expect("hex digits"));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[tokio::test]
async fn combined_lines_parse_as_log_analysers_parse_nginx() {
    let server = TestServer::start_with_access_log("", "format = \"combined\"").await;
    let expected = make_requests(&server).await;
    let log = stop_and_read(server).await;
    let re = regex::Regex::new(COMBINED).expect("regex");
    let time = regex::Regex::new(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")
        .expect("time regex");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{log}");
    for (line, want) in lines.iter().zip(&expected) {
        let c = re
            .captures(line)
            .unwrap_or_else(|| panic!("not combined: {line:?}"));
        assert_eq!(&c[1], "127.0.0.1", "{line}");
        assert!(time.is_match(&c[2]), "time {:?}", &c[2]);
        assert_eq!(
            (&c[3], &c[4], &c[5]),
            (want.method, want.target, want.protocol),
            "{line}"
        );
        assert_eq!(c[6].parse::<u16>().expect("status"), want.status, "{line}");
        assert_eq!(c[7].parse::<u64>().expect("bytes"), want.bytes, "{line}");
        assert_eq!(&c[8], want.referer.unwrap_or("-"), "{line}");
        match want.user_agent {
            Some("<hostile>") => {
                assert_eq!(
                    &c[9], r#"evil\x22 200 0 \x22-\x22 \x22x\x5C\x09\xFF"#,
                    "{line}"
                );
                assert_eq!(unescape(&c[9]), HOSTILE_UA);
            }
            ua => assert_eq!(&c[9], ua.unwrap_or("-"), "{line}"),
        }
    }
}

#[tokio::test]
async fn json_lines_parse_and_carry_every_field() {
    let server = TestServer::start_with_access_log("", "format = \"json\"").await;
    let expected = make_requests(&server).await;
    let log = stop_and_read(server).await;
    let time = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$").expect("regex");
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{log}");
    for (line, want) in lines.iter().zip(&expected) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        assert!(time.is_match(v["time"].as_str().expect("time")), "{line}");
        assert_eq!(v["remote"], "127.0.0.1", "{line}");
        assert_eq!(v["method"], want.method, "{line}");
        assert_eq!(v["path"], want.target, "{line}");
        assert_eq!(v["protocol"], want.protocol, "{line}");
        assert_eq!(v["status"], want.status, "{line}");
        assert_eq!(v["bytes"], want.bytes, "{line}");
        assert_eq!(v["encoding"], serde_json::json!(want.encoding), "{line}");
        assert_eq!(v["conditional"], want.conditional, "{line}");
        assert!(v["duration_us"].is_u64(), "{line}");
        assert_eq!(v["referer"], serde_json::json!(want.referer), "{line}");
        match want.user_agent {
            // The obs-text byte is not UTF-8: it becomes U+FFFD.
            Some("<hostile>") => assert_eq!(v["user_agent"], "evil\" 200 0 \"-\" \"x\\\t\u{fffd}"),
            ua => assert_eq!(v["user_agent"], serde_json::json!(ua), "{line}"),
        }
        let keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 12, "{keys:?}");
    }
}

#[tokio::test]
async fn healthz_reports_the_access_log() {
    let server = TestServer::start("").await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        client
            .get(server.url("/feeds/latest.rss"))
            .send()
            .await
            .expect("get");
    }
    // The writer writes within about 100 ms.
    let mut seen = Value::Null;
    for _ in 0..100 {
        let body = client
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .text()
            .await
            .expect("body");
        let v: Value = serde_json::from_str(&body).expect("json");
        seen = v["access_log"].clone();
        if seen["lines_written"].as_u64() >= Some(3) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen["format"], "combined", "{seen}");
    assert_eq!(
        seen["path"],
        server.access_log.display().to_string(),
        "{seen}"
    );
    assert!(seen["lines_written"].as_u64() >= Some(3), "{seen}");
    assert_eq!(seen["lines_dropped"], 0, "{seen}");
    assert_eq!(seen["reopens"], 0, "{seen}");
}

/// The log's file is a FIFO that the test opens and does not read: the
/// writer blocks once the pipe is full, the 4 KiB buffer fills, and from
/// then on lines are dropped — while every request is still answered.
#[tokio::test]
async fn a_stuck_log_drops_lines_and_requests_go_on() {
    let dir = tempfile::tempdir().expect("dir");
    let fifo = dir.path().join("access.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // Opening a FIFO's write end waits for a reader: open ours first.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::open(&fifo).expect("open fifo");
            let _ = released.recv();
            let mut all = Vec::new();
            file.read_to_end(&mut all).expect("drain");
            all
        })
    };
    let server = TestServer::start_with_access_log(
        "",
        &format!("path = \"{}\"\nbuffer_kib = 4", fifo.display()),
    )
    .await;
    let client = reqwest::Client::new();
    let answered = tokio::time::timeout(Duration::from_secs(60), async {
        for _ in 0..1500 {
            let r = client
                .get(server.url("/feeds/latest.rss?padding=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 200);
        }
    })
    .await;
    assert!(answered.is_ok(), "requests waited for the stuck log");
    let health: Value = serde_json::from_slice(
        &client
            .get(server.url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .bytes()
            .await
            .expect("body"),
    )
    .expect("json");
    let dropped = health["access_log"]["lines_dropped"]
        .as_u64()
        .expect("dropped");
    assert!(dropped > 0, "{health}");
    // Unstick it: what was buffered is written whole on shutdown.
    let _ = release.send(());
    let log = stop_and_read_fifo(server, reader).await;
    let re = regex::Regex::new(COMBINED).expect("regex");
    assert!(log.lines().count() > 0);
    assert!(log.lines().all(|l| re.is_match(l)), "a line was cut");
}

async fn stop_and_read_fifo(
    mut server: TestServer,
    reader: std::thread::JoinHandle<Vec<u8>>,
) -> String {
    server.shut_down().await.expect("server task");
    let bytes = reader.join().expect("reader");
    String::from_utf8(bytes).expect("utf-8")
}

/// A reload that changes `[server.access_log]` applies it: the next lines
/// come out in the new format, and `/healthz` says so.
#[tokio::test]
async fn a_reloaded_access_log_section_is_applied() {
    let service = common::Service::start(common::ServiceOptions::default()).await;
    service.first_refresh(20).await;
    let config = service.path("feedsmith.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("[server.access_log]\n"));
    std::fs::write(
        &config,
        text.replace(
            "[server.access_log]\n",
            "[server.access_log]\nformat = \"json\"\n",
        ),
    )
    .expect("edit");
    service
        .wait_for(15, "the json access log", || async {
            let h = service.health().await;
            (h["access_log"]["format"] == "json").then_some(())
        })
        .await;
    service.get("/feeds/latest.json?after-reload").await;
    let dir = service.stop().await;
    let log = std::fs::read_to_string(dir.path().join("access.log")).expect("log");
    let first = log.lines().next().expect("a line");
    assert!(first.starts_with("127.0.0.1 - - ["), "{first}");
    let last: Value = serde_json::from_str(log.lines().last().expect("a line")).expect("json");
    assert_eq!(last["path"], "/feeds/latest.json?after-reload", "{log}");
}
