//! End-to-end tests of the server under hostile and careless clients, over
//! raw sockets on 127.0.0.1: every connection state has a deadline, a full
//! server sheds idle and slow connections for new clients, one address cannot
//! take every slot, and HTTP/1.1 framing follows RFC 9112. Each test starts
//! from a finding of the probe in issue 11 and fails on the server before it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The HTTP/2 connection preface and an empty SETTINGS frame.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const EMPTY_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Connects to `server` from `from` (any 127.0.0.0/8 address works on loopback).
async fn connect_from(server: SocketAddr, from: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("bind client address");
    socket.connect(server).await.expect("connect")
}

/// Sends one request on a new connection and returns the status code, or
/// `None` if no response came within `within`.
async fn status_of(server: SocketAddr, request: &[u8], within: Duration) -> Option<u16> {
    let attempt = async {
        let mut s = TcpStream::connect(server).await.ok()?;
        s.write_all(request).await.ok()?;
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        parse_status(&got)
    };
    tokio::time::timeout(within, attempt).await.ok().flatten()
}

fn parse_status(response: &[u8]) -> Option<u16> {
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}

/// Reads until the server closes the connection; how long that took, and
/// what came, or `None` if it was still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some((started.elapsed(), out))
}

async fn health(server: &TestServer) -> serde_json::Value {
    let body = reqwest::get(server.url("/healthz"))
        .await
        .expect("healthz")
        .bytes()
        .await
        .expect("body");
    serde_json::from_slice(&body).expect("json")
}

const GET_HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_pri_flood_at_the_connection_limit_leaves_normal_clients_served() {
    // The probe's reproduction: sockets that send `PRI` (or a whole HTTP/2
    // preface) and then nothing were handed to a version sniffer with no
    // deadline, so 50 of them locked every client out.
    let server = TestServer::start("max_connections = 20\nheader_timeout = \"3s\"").await;
    let mut flood = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        let opening: &[u8] = if i % 2 == 0 { b"PRI" } else { PREFACE };
        s.write_all(opening).await.expect("write");
        flood.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        assert_eq!(
            status_of(server.addr, GET_HEALTH, Duration::from_secs(4)).await,
            Some(200),
            "a normal client is served while the flood holds every slot"
        );
    }
    // And every flooding socket is closed by the header timeout, shed or not.
    for s in &mut flood {
        let closed = closed_within(s, Duration::from_secs(6)).await;
        assert!(closed.is_some(), "a PRI socket outlived the header timeout");
    }
    // One PRI socket made room for the first client (each client closes, so
    // the next finds that slot free); the rest ran into the header timeout.
    let stats = &health(&server).await["connections"];
    assert!(stats["shed"].as_u64().unwrap_or(0) >= 1, "{stats}");
    assert!(stats["timed_out"].as_u64().unwrap_or(0) >= 15, "{stats}");
}

#[tokio::test]
async fn silent_connections_are_shed_for_new_clients_then_time_out() {
    let server = TestServer::start("max_connections = 10\nheader_timeout = \"2s\"").await;
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..3 {
        assert_eq!(
            status_of(server.addr, GET_HEALTH, Duration::from_secs(2)).await,
            Some(200),
            "silent sockets must not hold the server's every slot"
        );
    }
    // A new connection gets the header timeout for its first request, not
    // the keep-alive idle time (60 s by default).
    for s in &mut silent {
        let (took, _) = closed_within(s, Duration::from_secs(5))
            .await
            .expect("a silent connection stayed open past the header timeout");
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
    let stats = &health(&server).await["connections"];
    assert!(stats["timed_out"].as_u64().unwrap_or(0) >= 7, "{stats}");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_shed_oldest_first_at_the_limit() {
    let server = TestServer::start("max_connections = 3").await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        s.write_all(GET_HEALTH).await.expect("write");
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.expect("read");
        assert_eq!(parse_status(&buf[..n]), Some(200));
        clients.push(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The three are idle keep-alive connections; a fourth client is served at
    // once and the one idle longest makes room.
    assert_eq!(
        status_of(server.addr, GET_HEALTH, Duration::from_secs(2)).await,
        Some(200)
    );
    let (_, rest) = closed_within(&mut clients[0], Duration::from_secs(2))
        .await
        .expect("the oldest idle connection was closed");
    assert!(
        rest.is_empty(),
        "an idle connection is closed without a word"
    );
    // The newer two are still usable.
    for s in &mut clients[1..] {
        s.write_all(GET_HEALTH).await.expect("write");
        let mut buf = vec![0u8; 8192];
        let n = s.read(&mut buf).await.expect("read");
        assert_eq!(parse_status(&buf[..n]), Some(200));
    }
}

#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    let server = TestServer::start("max_connections_per_address = 4").await;
    // Four requests under way from 127.0.0.3 (heads not finished yet, so
    // none of them is idle and none can be shed).
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from(server.addr, [127, 0, 0, 3]).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .expect("write");
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = connect_from(server.addr, [127, 0, 0, 3]).await;
    let _ = fifth.write_all(GET_HEALTH).await;
    let (_, refused) = closed_within(&mut fifth, Duration::from_secs(3))
        .await
        .expect("the fifth connection from one address is refused at once");
    let text = String::from_utf8_lossy(&refused);
    assert!(
        refused.is_empty() || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    // Another address is not affected.
    let mut other = connect_from(server.addr, [127, 0, 0, 4]).await;
    other.write_all(GET_HEALTH).await.expect("write");
    let mut buf = vec![0u8; 8192];
    let n = other.read(&mut buf).await.expect("read");
    assert_eq!(parse_status(&buf[..n]), Some(200));
    // The held requests still complete.
    for s in &mut held {
        s.write_all(b"Host: x\r\n\r\n").await.expect("write");
        let n = s.read(&mut buf).await.expect("read");
        assert_eq!(parse_status(&buf[..n]), Some(200));
    }
    let stats = &health(&server).await["connections"];
    assert_eq!(stats["refused"], 1, "{stats}");
    assert_eq!(stats["max_per_address"], 4, "{stats}");
}

#[tokio::test]
async fn idle_keep_alive_ends_after_idle_timeout_on_every_path() {
    let server = TestServer::start("idle_timeout = \"1s\"").await;

    // HTTP/1 fast path.
    let mut fast = TcpStream::connect(server.addr).await.expect("connect");
    fast.write_all(GET_HEALTH).await.expect("write");
    let mut buf = vec![0u8; 8192];
    let n = fast.read(&mut buf).await.expect("read");
    assert_eq!(parse_status(&buf[..n]), Some(200));

    // HTTP/1 through hyper (a request with a body goes there).
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .expect("write");
    let n = slow.read(&mut buf).await.expect("read");
    assert_eq!(parse_status(&buf[..n]), Some(405));

    // HTTP/2: preface and SETTINGS, then nothing. The server must say
    // GOAWAY and close, not keep the connection for ever.
    let mut h2 = TcpStream::connect(server.addr).await.expect("connect");
    h2.write_all(&[PREFACE, EMPTY_SETTINGS].concat())
        .await
        .expect("write");

    for (name, s) in [("fast", &mut fast), ("hyper http/1", &mut slow)] {
        let (took, _) = closed_within(s, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{name}: idle connection kept open"));
        assert!(took < Duration::from_secs(3), "{name}: {took:?}");
    }
    let (took, frames) = closed_within(&mut h2, Duration::from_secs(5))
        .await
        .expect("http/2: idle connection kept open");
    assert!(took < Duration::from_secs(3), "http/2: {took:?}");
    assert!(has_goaway(&frames), "http/2 idle close says GOAWAY");
}

/// Whether a stream of HTTP/2 frames from the server holds a GOAWAY.
fn has_goaway(mut frames: &[u8]) -> bool {
    while frames.len() >= 9 {
        let len =
            usize::from(frames[0]) << 16 | usize::from(frames[1]) << 8 | usize::from(frames[2]);
        if frames[3] == 0x7 {
            return true;
        }
        frames = frames.get(9 + len..).unwrap_or_default();
    }
    false
}

/// Publishes a latest feed of several megabytes.
async fn big_feed(server: &TestServer) -> usize {
    let body = format!("<p>{}</p>", "long text ".repeat(8_000));
    server.publish_long_articles("bulk", 50, &body).await;
    server
        .publisher
        .snapshot()
        .document("latest", feedsmith::config::Format::Rss)
        .map(|rep| rep.identity.body.len())
        .expect("latest rss")
}

#[tokio::test]
async fn a_client_reading_below_the_minimum_rate_is_cut_off() {
    // Budget: 1 s + size / 20 MB/s, so about 1.2 s for the 4 MB feed.
    let server = TestServer::start("send_timeout = \"1s\"\nmin_send_rate = 20000000").await;
    let length = big_feed(&server).await;
    assert!(length > 3_000_000, "feed is {length} bytes");

    // HTTP/1 (the sendfile path): a tiny receive window and no reading.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    let mut s = socket.connect(server.addr).await.expect("connect");
    s.write_all(b"GET /feeds/latest.rss HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, got) = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("connection closed");
    assert!(
        got.len() < length,
        "a stalled reader got the whole {length} bytes: the send deadline never fired"
    );

    // HTTP/2: a client that never opens its flow-control window.
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let (mut client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    let connection = tokio::spawn(connection);
    let request = http::Request::get(server.url("/feeds/latest.rss"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    let response = response.await.expect("response head");
    assert_eq!(response.status(), 200);
    // Hold the body unread: no WINDOW_UPDATE is sent, so the server stalls
    // after the first 64 KiB and must give up on the connection.
    let _body = response.into_body();
    let ended = tokio::time::timeout(Duration::from_secs(8), connection).await;
    assert!(
        ended.is_ok(),
        "an HTTP/2 connection whose reader stalled was kept open"
    );

    let stats = &health(&server).await["connections"];
    assert!(stats["timed_out"].as_u64().unwrap_or(0) >= 2, "{stats}");
    // A client that reads normally still gets everything.
    let full = reqwest::get(server.url("/feeds/latest.rss"))
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(full.len(), length);
}

#[tokio::test]
async fn http11_framing_follows_rfc_9112_and_9110() {
    let server = TestServer::start("").await;
    let cases: &[(&[u8], u16)] = &[
        (b"GET /feeds/latest.rss HTTP/1.1\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.0\r\n\r\n", 200),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n", 200),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n", 200),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 000\r\n\r\n", 200),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 1\r\n\r\n", 400),
        (b"GET /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400),
        // Requests hyper answers get the same rules.
        (b"POST /feeds/latest.rss HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
        (b"GET http://a/feeds/latest.rss HTTP/1.1\r\n\r\n", 400),
        (b"GET http://a/feeds/latest.rss HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
        (b"POST /feeds/latest.rss HTTP/1.1\r\nHost: a\r\nContent-Length: 00\r\n\r\n", 405),
        // Unknown methods are not implemented; known ones are not allowed.
        (b"FOO /feeds/latest.rss HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        (b"BREW /feeds/latest.rss HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        (b"DELETE /feeds/latest.rss HTTP/1.1\r\nHost: a\r\n\r\n", 405),
        (b"OPTIONS /feeds/latest.rss HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    ];
    for (request, want) in cases {
        let got = status_of(server.addr, request, Duration::from_secs(5)).await;
        assert_eq!(
            got,
            Some(*want),
            "{}",
            String::from_utf8_lossy(request).replace("\r\n", "\\r\\n")
        );
    }
}
