//! End-to-end HTTP tests against the real server on `127.0.0.1:0`.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{TestServer, article};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            HeaderValue::from_str(v).expect("value"),
        );
    }
    client()
        .get(url)
        .headers(map)
        .send()
        .await
        .expect("request")
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_readers_flow_200_then_304_then_200_after_a_change() {
    let server = TestServer::start("").await;
    let url = server.url("/feeds/latest.rss");
    let first = get(&url, &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        header(&first, "content-type"),
        "application/rss+xml; charset=utf-8"
    );
    assert_eq!(header(&first, "vary"), "Accept-Encoding");
    assert_eq!(
        header(&first, "cache-control"),
        "public, max-age=300, stale-if-error=86400"
    );
    assert_eq!(
        header(&first, "last-modified"),
        "Tue, 10 Feb 2026 16:45:00 GMT"
    );
    let etag = header(&first, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() == 34,
        "{etag}"
    );
    let body = first.bytes().await.expect("body");
    assert!(body.starts_with(b"<?xml"));

    let second = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&second, "etag"), etag);
    assert_eq!(
        header(&second, "last-modified"),
        "Tue, 10 Feb 2026 16:45:00 GMT"
    );
    assert_eq!(
        header(&second, "cache-control"),
        "public, max-age=300, stale-if-error=86400"
    );
    assert_eq!(header(&second, "vary"), "Accept-Encoding");
    assert!(
        second.bytes().await.expect("body").is_empty(),
        "304 has no body"
    );

    server
        .store
        .upsert(&[article(
            "breaking-1",
            "2026-11-01T09:00:00Z",
            serde_json::json!({"section": "World"}),
        )])
        .await
        .expect("write");
    server.republish().await;
    let third = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(third.status(), StatusCode::OK);
    let new_etag = header(&third, "etag");
    assert_ne!(new_etag, etag);
    assert_eq!(
        header(&third, "last-modified"),
        "Sun, 01 Nov 2026 09:00:00 GMT"
    );
    assert!(third.text().await.expect("body").contains("breaking-1"));
}

#[tokio::test]
async fn conditional_requests_follow_rfc_9110() {
    let server = TestServer::start("").await;
    let url = server.url("/feeds/world.atom");
    let etag = header(&get(&url, &[]).await, "etag");
    let lm = "Wed, 14 Jan 2026 06:00:00 GMT";
    let cases: Vec<(Vec<(&str, String)>, StatusCode)> = vec![
        (
            vec![("if-none-match", etag.clone())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", format!("W/{etag}"))],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", format!("\"x\", W/\"y\", {etag}"))],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-none-match", "*".into())],
            StatusCode::NOT_MODIFIED,
        ),
        (vec![("if-none-match", "\"stale\"".into())], StatusCode::OK),
        (
            vec![("if-modified-since", lm.into())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-modified-since", "Wed, 14 Jan 2026 06:00:01 GMT".into())],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-modified-since", "Wed, 14 Jan 2026 05:59:59 GMT".into())],
            StatusCode::OK,
        ),
        (
            vec![("if-modified-since", "not a date".into())],
            StatusCode::OK,
        ),
        (
            vec![("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT".into())],
            StatusCode::OK,
        ),
        // If-None-Match decides alone when present.
        (
            vec![
                ("if-none-match", "\"stale\"".into()),
                ("if-modified-since", lm.into()),
            ],
            StatusCode::OK,
        ),
        (
            vec![
                ("if-none-match", etag.clone()),
                ("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT".into()),
            ],
            StatusCode::NOT_MODIFIED,
        ),
        (
            vec![("if-match", "\"stale\"".into())],
            StatusCode::PRECONDITION_FAILED,
        ),
        (vec![("if-match", etag.clone())], StatusCode::OK),
    ];
    for (headers, want) in cases {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = get(&url, &pairs).await;
        assert_eq!(r.status(), want, "{headers:?}");
        if want == StatusCode::NOT_MODIFIED {
            assert_eq!(header(&r, "etag"), etag);
            assert!(
                !header(&r, "last-modified").is_empty() && !header(&r, "cache-control").is_empty()
            );
        }
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .expect("gunzip");
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .expect("brotli");
    out
}

#[tokio::test]
async fn every_encoding_decompresses_to_the_identity_bytes() {
    let server = TestServer::start("").await;
    for path in [
        "/feeds/latest.rss",
        "/feeds/latest.atom",
        "/feeds/latest.json",
        "/",
        "/feeds.opml",
    ] {
        let url = server.url(path);
        let plain = get(&url, &[]).await;
        assert_eq!(header(&plain, "content-encoding"), "");
        let plain_tag = header(&plain, "etag");
        let identity = plain.bytes().await.expect("body").to_vec();
        let mut tags = vec![plain_tag.clone()];
        for (accept, encoding, decode) in [
            ("gzip", "gzip", gunzip as fn(&[u8]) -> Vec<u8>),
            ("gzip, deflate, br", "br", unbrotli),
            ("br;q=0.5, gzip;q=0.9", "gzip", gunzip),
        ] {
            let r = get(&url, &[("accept-encoding", accept)]).await;
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header(&r, "content-encoding"), encoding, "{path} {accept}");
            assert_eq!(header(&r, "vary"), "Accept-Encoding");
            let tag = header(&r, "etag");
            let length: usize = header(&r, "content-length").parse().expect("length");
            let body = r.bytes().await.expect("body");
            assert_eq!(body.len(), length);
            assert_eq!(
                decode(&body),
                identity,
                "{path} {encoding} differs from identity"
            );
            tags.push(tag.clone());
            // The variant's own tag revalidates it, and not another variant.
            assert_eq!(
                get(
                    &url,
                    &[("accept-encoding", accept), ("if-none-match", &tag)]
                )
                .await
                .status(),
                StatusCode::NOT_MODIFIED
            );
            assert_eq!(
                get(&url, &[("if-none-match", &tag)]).await.status(),
                StatusCode::OK
            );
        }
        tags.sort();
        tags.dedup();
        assert_eq!(
            tags.len(),
            3,
            "{path}: gzip, br and identity each have their own ETag"
        );
        let refused = get(&url, &[("accept-encoding", "identity;q=0")]).await;
        assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
    }
}

#[tokio::test]
async fn head_gives_get_headers_without_a_body() {
    let server = TestServer::start("").await;
    for accept in ["", "gzip"] {
        let url = server.url("/feeds/world.json");
        let headers: Vec<(&str, &str)> = if accept.is_empty() {
            vec![]
        } else {
            vec![("accept-encoding", accept)]
        };
        let g = get(&url, &headers).await;
        let mut req = client().head(&url);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let h = req.send().await.expect("head");
        assert_eq!(h.status(), StatusCode::OK);
        for name in [
            "etag",
            "content-type",
            "content-length",
            "last-modified",
            "cache-control",
            "vary",
            "content-encoding",
        ] {
            assert_eq!(
                header(&h, name),
                header(&g, name),
                "{name} with accept-encoding {accept:?}"
            );
        }
        assert!(
            header(&h, "content-length")
                .parse::<usize>()
                .expect("length")
                > 0
        );
        assert!(h.bytes().await.expect("body").is_empty());
    }
}

#[tokio::test]
async fn unknown_paths_404_other_methods_405_and_bodies_400() {
    let server = TestServer::start("").await;
    // (Dot segments never reach us from a URL-normalising client; the raw-TCP
    // corpus below sends them as written.)
    for path in [
        "/nope",
        "/feeds/missing.rss",
        "/feeds/latest.xml",
        "/feeds/%6catest.rss",
        "/feeds/latest.rss/",
    ] {
        let r = get(&server.url(path), &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&r, "cache-control"), "no-store");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = client()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                server.url("/feeds/latest.rss"),
            )
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(header(&r, "allow"), "GET, HEAD");
    }
    let with_body = client()
        .get(server.url("/feeds/latest.rss"))
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(with_body.status(), StatusCode::BAD_REQUEST);
    let with_query = get(&server.url("/feeds/latest.rss?utm_source=reader"), &[]).await;
    assert_eq!(
        with_query.status(),
        StatusCode::OK,
        "query strings are ignored"
    );
}

#[tokio::test]
async fn index_and_opml_list_every_feed_with_their_own_etags() {
    let server = TestServer::start("").await;
    let index = get(&server.url("/"), &[]).await;
    assert_eq!(index.status(), StatusCode::OK);
    assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
    let tag = header(&index, "etag");
    assert!(!tag.is_empty());
    let html = index.text().await.expect("html");
    assert!(
        html.contains("<title>Example News &amp; Co feeds</title>"),
        "site title is escaped"
    );
    assert_eq!(
        get(&server.url("/"), &[("if-none-match", &tag)])
            .await
            .status(),
        StatusCode::NOT_MODIFIED
    );

    let opml = get(&server.url("/feeds.opml"), &[]).await;
    assert_eq!(opml.status(), StatusCode::OK);
    let xml = opml.text().await.expect("opml");
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut outlines = Vec::new();
    let mut version = None;
    loop {
        match reader.read_event().expect("OPML is well-formed XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let get_attr = |name: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
                };
                match e.name().as_ref() {
                    b"opml" => version = get_attr(b"version"),
                    b"outline" => outlines.push((get_attr(b"xmlUrl"), get_attr(b"type"))),
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(version.as_deref(), Some("2.0"));
    assert_eq!(outlines.len(), server.config.feeds.len());
    for name in server.config.feeds.keys() {
        let rss = format!("{}/feeds/{name}.rss", server.base);
        assert!(
            outlines.contains(&(Some(rss.clone()), Some("rss".into()))),
            "OPML lacks {rss}"
        );
        for ext in ["rss", "atom", "json"] {
            let url = format!("{}/feeds/{name}.{ext}", server.base);
            assert!(
                html.contains(&format!("href=\"{url}\"")),
                "index lacks {url}"
            );
            assert_eq!(get(&url, &[]).await.status(), StatusCode::OK, "{url}");
        }
        assert!(html.contains(&format!(
            "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{}",
            server.config.feeds[name].title
        )));
    }
    assert_eq!(
        html.matches("<link rel=\"alternate\"").count(),
        server.config.feeds.len() * 3
    );
    assert!(!html.contains("<script"), "readable without any script");
}

#[tokio::test]
async fn healthz_reports_json() {
    let server = TestServer::start("").await;
    let r = get(&server.url("/healthz"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-store");
    let v: serde_json::Value =
        serde_json::from_slice(&r.bytes().await.expect("body")).expect("json");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["feeds"], 4);
    assert!(v["published_at"].is_string() && v["errors"].is_array());
}

#[tokio::test]
async fn http2_prior_knowledge_is_served() {
    let server = TestServer::start("").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let r = h2
        .get(server.url("/feeds/latest.atom"))
        .send()
        .await
        .expect("h2 request");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::OK);
    let etag = header(&r, "etag");
    let again = h2
        .get(server.url("/feeds/latest.atom"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("h2");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

/// Sends raw bytes and returns what came back before the server closed or went quiet.
async fn raw(server: &TestServer, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let _ = s.write_all(request).await;
    let _ = s.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn malformed_requests_get_a_4xx_or_a_closed_connection() {
    let server = TestServer::start("").await;
    let long_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let many_headers = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: b\r\n".repeat(500)
    );
    let corpus: Vec<Vec<u8>> = vec![
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET /feeds/latest.rss HTTP/9.9\r\n\r\n".to_vec(),
        b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
        b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"GET /feeds/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /feeds/..%5c..%5cconfig HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET //feeds//latest.rss HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /feeds\\latest.rss HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /feeds/lat\x00est.rss HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /feeds/%C0%AE%C0%AE/latest.rss HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /feeds/\xC0\xAE\xC0\xAE.rss HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: \xff\xfe\r\nAccept-Encoding: \xff\r\nIf-Modified-Since: \x01\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
        long_header.into_bytes(),
        many_headers.into_bytes(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00garbage".to_vec(),
        vec![0u8; 1024],
        (0..=255u8).collect(),
    ];
    for request in &corpus {
        let response = raw(&server, request).await;
        let text = String::from_utf8_lossy(&response);
        let status: Option<u16> = text
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|s| s.parse().ok());
        match status {
            None => assert!(
                response.is_empty() || !text.starts_with("HTTP/1.1 2"),
                "{request:?} -> {text}"
            ),
            Some(code) => assert!(
                (400..500).contains(&code),
                "{:?} -> {code}",
                String::from_utf8_lossy(request)
            ),
        }
    }
    // The absolute form of a request target is valid HTTP/1.1 (RFC 9112 §3.2.2):
    // only its path is routed.
    let absolute = raw(
        &server,
        b"GET http://elsewhere.example/feeds/latest.rss HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(absolute.starts_with(b"HTTP/1.1 200"));
    // Still serving after all of that.
    assert_eq!(
        get(&server.url("/feeds/latest.rss"), &[]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn slow_clients_are_cut_off_after_the_header_timeout() {
    let server = TestServer::start("header_timeout = \"1s\"").await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "server kept a half-sent request open past its timeout"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(out.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_an_in_flight_response() {
    let mut server = TestServer::start("shutdown_grace = \"20s\"").await;
    // A feed far bigger than the socket buffers, so its response is still being
    // written when shutdown starts.
    let body = format!("<p>{}</p>", "long text ".repeat(6_000));
    server.publish_long_articles("bulk", 60, &body).await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut head = vec![0u8; 512];
    let n = s.read(&mut head).await.expect("read head");
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert!(length > 1_000_000, "feed is {length} bytes");

    let task = server.shut_down();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // New connections are refused once shutdown has begun.
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "listener still accepting"
    );
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut rest))
        .await
        .expect("response finished in time")
        .expect("read");
    let body_start = head.find("\r\n\r\n").expect("end of head") + 4;
    assert_eq!(
        n - body_start + rest.len(),
        length,
        "the in-flight response was cut short"
    );
    tokio::time::timeout(Duration::from_secs(15), task)
        .await
        .expect("server stopped")
        .expect("server task");
}

/// Reads one HTTP/1.1 response (head and Content-Length body) from `s`.
async fn read_response(s: &mut TcpStream, pending: &mut Vec<u8>) -> (String, Vec<u8>) {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let has_body = !head.starts_with("HTTP/1.1 304") && !head.contains("HEAD-REQUEST");
            let total = end + 4 + if has_body { length } else { 0 };
            while pending.len() < total {
                let mut chunk = vec![0u8; 64 * 1024];
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed mid-response");
                pending.extend_from_slice(&chunk[..n]);
            }
            let body = pending[end + 4..total].to_vec();
            pending.drain(..total);
            return (head, body);
        }
        let mut chunk = vec![0u8; 64 * 1024];
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before a response");
        pending.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn large_bodies_pipelining_keep_alive_and_handoff_on_one_connection() {
    let server = TestServer::start("").await;
    let body = format!("<p>{}</p>", "word ".repeat(2_000));
    server.publish_long_articles("big", 60, &body).await;
    let snapshot = server.publisher.snapshot();
    let rep = snapshot
        .document("latest", feedsmith::config::Format::Rss)
        .cloned()
        .expect("latest rss");
    assert!(
        rep.identity.body.len() > 500_000 && rep.identity.body.is_stored(),
        "big enough for sendfile"
    );
    let gzip = rep.gzip().cloned().expect("gzip");

    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    // Three pipelined requests in one write, then a request hyper must handle.
    s.write_all(
        b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n\
          GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"nope\"\r\n\r\n",
    )
    .await
    .expect("write");
    let mut pending = Vec::new();
    let (head, body) = read_response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        body,
        rep.identity.body.read().expect("read").to_vec(),
        "sendfile sent the identity bytes"
    );
    let (head, body) = read_response(&mut s, &mut pending).await;
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(body, gzip.body.read().expect("read").to_vec());
    let (head, body) = read_response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 200") && body.len() == rep.identity.body.len());

    // A request the fast path does not take (a body) goes to hyper on the same connection.
    s.write_all(b"POST /feeds/latest.rss HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .expect("write");
    let (head, _) = read_response(&mut s, &mut pending).await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );

    // HTTP/1.0 closes after its response.
    let mut old = TcpStream::connect(server.addr).await.expect("connect");
    old.write_all(b"GET /feeds/world.json HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), old.read_to_end(&mut all))
        .await
        .expect("closed")
        .expect("read");
    let text = String::from_utf8_lossy(&all);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains("connection: close"),
        "{text}"
    );
}

/// A document published before its compressed variants exist, as the service
/// serves every rebuilt document: a client asking for brotli meanwhile gets
/// the identity bytes under identity's ETag, and once the variant is made, the
/// brotli bytes under brotli's own ETag — never a body that does not match the
/// tag sent with it. Fetched over HTTP/1 (the fast path, sendfile) and HTTP/2.
#[tokio::test]
async fn brotli_asked_for_during_background_compression_matches_its_etag() {
    use feedsmith::publish::{BodyStore, Compressor, Representation};
    let server = TestServer::start("").await;
    let body = format!("<p>{}</p>", "a long story ".repeat(3_000));
    server.publish_long_articles("pending", 20, &body).await;
    let snapshot = server.publisher.snapshot();
    let made = snapshot
        .document("latest", feedsmith::config::Format::Rss)
        .cloned()
        .expect("latest rss");
    let identity = made.identity.body.read().expect("read");
    // The same document as the scheduler publishes it: identity only, in the
    // body store, variants pending in a compressor that has not run yet.
    let bodies = BodyStore::create(&server.config.output_dir).expect("body store");
    let pending = std::sync::Arc::new(Representation::new(
        identity.clone(),
        made.content_type,
        made.last_modified,
        made.cache_control.clone(),
        Some(&bodies),
    ));
    let mut set = (*snapshot).clone();
    assert!(set.replace_document("latest", feedsmith::config::Format::Rss, pending.clone()));
    server.publisher.publish(set);
    let compressor = Compressor::new(0, Some(bodies), Box::new(|_| {}));
    compressor.submit(None, &pending);

    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2 client");
    let fetch = |client: reqwest::Client| {
        let url = server.url("/feeds/latest.rss");
        async move {
            let r = client
                .get(url)
                .header("accept-encoding", "br")
                .send()
                .await
                .expect("request");
            let etag = r.headers()["etag"].to_str().expect("etag").to_owned();
            let coding = r
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().expect("coding").to_owned());
            let bytes = r.bytes().await.expect("body").to_vec();
            (etag, coding, bytes)
        }
    };
    // reqwest is built without its decompression features: bodies arrive as sent.
    let raw = reqwest::Client::new;
    for client in [raw(), h2.clone()] {
        let (etag, coding, bytes) = fetch(client).await;
        assert_eq!(coding, None, "no brotli yet: identity");
        assert_eq!(bytes, identity.to_vec());
        assert_eq!(etag, pending.identity.etag.as_str());
        assert_eq!(
            etag,
            feedsmith::builder::ETag::of(&bytes).as_str(),
            "the tag is the bytes'"
        );
    }

    tokio::task::spawn_blocking(move || compressor.run_all())
        .await
        .expect("compress");
    let br = pending.brotli().expect("brotli made");
    assert!(br.body.is_stored() || br.body.len() < feedsmith::publish::SENDFILE_MIN_BYTES);
    for client in [raw(), h2] {
        let (etag, coding, bytes) = fetch(client).await;
        assert_eq!(coding.as_deref(), Some("br"));
        assert_eq!(etag, br.etag.as_str());
        assert_eq!(etag, feedsmith::builder::ETag::of(&bytes).as_str());
        let mut decoded = Vec::new();
        brotli::Decompressor::new(&bytes[..], 4096)
            .read_to_end(&mut decoded)
            .expect("unbrotli");
        assert_eq!(decoded, identity.to_vec());
    }
}

#[tokio::test]
async fn a_feeds_page_is_served_like_a_feed_with_a_strict_policy() {
    let server = TestServer::start("").await;
    let first = get(&server.url("/feeds/latest"), &[]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&first, "vary"), "Accept-Encoding");
    assert_eq!(
        header(&first, "last-modified"),
        "Tue, 10 Feb 2026 16:45:00 GMT",
        "the newest update it lists, as the feed"
    );
    let csp = header(&first, "content-security-policy");
    assert!(
        csp.starts_with("default-src 'none';") && csp.contains("style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        !csp.contains("script-src") && !csp.contains("unsafe"),
        "{csp}"
    );
    let etag = header(&first, "etag");
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let html = first.text().await.expect("body");
    assert!(html.contains("<h1>Latest news</h1>"), "{html}");
    assert!(!html.contains("<script"), "no script: {html}");

    // The same document at /feeds/latest.html; a 304 for its ETag; brotli.
    let again = get(&server.url("/feeds/latest.html"), &[]).await;
    assert_eq!(header(&again, "etag"), etag);
    let not_modified = get(&server.url("/feeds/latest"), &[("if-none-match", &etag)]).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    let br = get(&server.url("/feeds/latest"), &[("accept-encoding", "br")]).await;
    assert_eq!(header(&br, "content-encoding"), "br");
    assert_ne!(header(&br, "etag"), etag, "each variant has its own tag");

    assert_eq!(
        get(&server.url("/feeds/nope"), &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    let index = get(&server.url("/"), &[])
        .await
        .text()
        .await
        .expect("index");
    assert!(
        index.contains(&format!("href=\"{}\"", server.url("/feeds/latest"))),
        "the index links the page: {index}"
    );
}
