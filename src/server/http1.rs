//! The HTTP/1.1 fast path: plain GET and HEAD requests, answered with
//! `sendfile(2)` for large bodies; and protocol detection for every new
//! connection.
//!
//! Feed readers send little else than `GET /feeds/x.rss` with a few headers.
//! hyper writes every body through user space; for 190 KB feeds that copy was
//! about 40 % of the server's CPU and kept it below nginx. This module parses
//! such requests itself (httparse), answers them with the same [`decide`] rules
//! as the hyper service, and sends a published variant's file with
//! `sendfile(2)`: the header first with `MSG_MORE`, so header and body leave in
//! full packets. The first request it does not fully understand — a body,
//! `Expect`, an `Upgrade`, an absolute-form target, anything malformed — hands
//! the connection, with every byte already read, to hyper's HTTP/1 server,
//! which stays the general-purpose server. A connection that opens with the
//! HTTP/2 preface goes to hyper's HTTP/2 server once the preface and the
//! client's first SETTINGS frame have arrived — within the header deadline,
//! like any request head, so a client that sends `PRI` and stops holds its
//! slot for `header_timeout` at most. Correctness never depends on this module
//! knowing all of HTTP; deadlines never depend on hyper.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};
use nix::sys::socket::{MsgFlags, send};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::conn::{Phase, SlotGuard};
use super::fallback::Protocol;
use super::{
    Reply, ReplyBody, Shared, content_length, decide, framing_problem, is_archive_path, log_access,
    text_reply,
};
use crate::publish::Body;

/// Request headers read at most; more goes to hyper, which allows 100.
const MAX_HEADERS: usize = 64;

/// The HTTP/2 connection preface (RFC 9113 §3.4), then a frame header.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const SETTINGS_FRAME: u8 = 0x4;

/// How long a short answer before closing (408, 400, 503) may take to write:
/// a client that does not read it is not waited for.
const SHORT_WRITE: Duration = Duration::from_secs(1);

/// What the fast path leaves of a connection.
pub enum Handoff {
    /// The connection is finished.
    Closed,
    /// hyper's server for `protocol` takes over, starting with `prefix`,
    /// the bytes already read (for HTTP/2: the preface and the client's
    /// first frame).
    Hyper {
        protocol: Protocol,
        stream: TcpStream,
        prefix: Bytes,
    },
}

/// A request this module answers itself.
pub(super) struct Simple {
    pub(super) method: Method,
    /// The request target as sent: the path, then any query.
    pub(super) target: String,
    /// How much of `target` is the path.
    path_len: usize,
    pub(super) headers: HeaderMap,
    keep_alive: bool,
    /// HTTP/1.0 keeps a connection open only when the response says so.
    http10: bool,
}

impl Simple {
    /// The target without its query, which is what routes match.
    pub(super) fn path(&self) -> &str {
        self.target.get(..self.path_len).unwrap_or(&self.target)
    }

    fn version(&self) -> Version {
        if self.http10 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        }
    }
}

pub(super) enum Parsed {
    Simple(Simple, usize),
    Partial,
    /// An HTTP/1 request for hyper to decide.
    Http1,
    /// The HTTP/2 preface and the client's first frame.
    Http2,
    /// A request whose framing cannot be trusted: 400, then close.
    Bad(&'static str),
}

/// Whether `buf` starts the HTTP/2 preface (or is a prefix of it).
fn looks_like_http2(buf: &[u8]) -> bool {
    let n = buf.len().min(PREFACE.len());
    buf[..n] == PREFACE[..n]
}

/// The preface and the client's first frame, which must be SETTINGS
/// (RFC 9113 §3.4); anything else is hyper's to refuse.
fn parse_http2(buf: &[u8]) -> Parsed {
    let Some(frame) = buf.get(PREFACE.len()..) else {
        return Parsed::Partial;
    };
    let Some(header) = frame.get(..FRAME_HEADER) else {
        return Parsed::Partial;
    };
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    if header[3] == SETTINGS_FRAME && frame.len() < FRAME_HEADER + len {
        return Parsed::Partial;
    }
    Parsed::Http2
}

pub(super) fn parse(buf: &[u8]) -> Parsed {
    if looks_like_http2(buf) {
        return parse_http2(buf);
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Http1,
    };
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Http1,
    };
    let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
        return Parsed::Http1;
    };
    let http11 = match req.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Parsed::Http1,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut keep_alive = http11;
    let mut hyper_needed = false;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Http1;
        };
        match name.as_str() {
            "transfer-encoding" | "expect" | "upgrade" => hyper_needed = true,
            "connection" => {
                for token in value.to_str().unwrap_or("").split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep_alive = true;
                    }
                }
            }
            _ => {}
        }
        headers.append(name, value);
    }
    if let Some(problem) = framing_problem(http11, &headers) {
        return Parsed::Bad(problem);
    }
    if hyper_needed || !matches!(content_length(&headers), Ok(None | Some(0))) {
        return Parsed::Http1;
    }
    let path_len = target.find('?').unwrap_or(target.len());
    Parsed::Simple(
        Simple {
            method,
            target: target.to_owned(),
            path_len,
            headers,
            keep_alive,
            http10: !http11,
        },
        len,
    )
}

/// Serves simple requests on `stream` until it closes, a deadline passes, its
/// slot is shed, shutdown is signalled, or a request needs hyper.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    guard: &SlotGuard,
    mut shutdown: watch::Receiver<bool>,
) -> Handoff {
    let slot = guard.slot();
    let settings = &shared.settings;
    let mut buf = BytesMut::with_capacity(4096);
    // A new connection must deliver its first request head (or HTTP/2
    // preface) within the header timeout, counted from the accept.
    let mut head_deadline = Some(tokio::time::Instant::now() + settings.header_read_timeout);
    let mut idle_since = tokio::time::Instant::now();
    // One timer per connection, moved only when the deadline comes earlier:
    // a later deadline (the next keep-alive wait) is left to the timer firing
    // early and being set again, so a busy keep-alive connection does not
    // insert into and remove from the timer wheel on every request.
    let mut armed = head_deadline.unwrap_or(idle_since);
    let timer = tokio::time::sleep_until(armed);
    tokio::pin!(timer);
    let evicted = slot.evicted();
    tokio::pin!(evicted);
    loop {
        let (request, len) = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    // An archive page is read from the store, which this
                    // loop never waits on: hyper's service answers it.
                    Parsed::Simple(req, _)
                        if shared.archive.is_some() && is_archive_path(req.path()) =>
                    {
                        return Handoff::Hyper {
                            protocol: Protocol::Http1,
                            stream,
                            prefix: buf.freeze(),
                        };
                    }
                    Parsed::Simple(req, len) => break (req, len),
                    Parsed::Http1 => {
                        return Handoff::Hyper {
                            protocol: Protocol::Http1,
                            stream,
                            prefix: buf.freeze(),
                        };
                    }
                    Parsed::Http2 => {
                        return Handoff::Hyper {
                            protocol: Protocol::Http2,
                            stream,
                            prefix: buf.freeze(),
                        };
                    }
                    Parsed::Bad(problem) => {
                        let reply = text_reply(StatusCode::BAD_REQUEST, problem);
                        let head = head_bytes(&reply, Connection::Close);
                        let mut out = head;
                        out.extend_from_slice(&reply.body.in_memory().unwrap_or_default());
                        write_short(&mut stream, &out).await;
                        return Handoff::Closed;
                    }
                    // An oversized head is hyper's to refuse (431) or, for
                    // HTTP/2, a SETTINGS frame too large to be real.
                    Parsed::Partial if buf.len() > settings.max_header_bytes => {
                        let protocol = if looks_like_http2(&buf) {
                            Protocol::Http2
                        } else {
                            Protocol::Http1
                        };
                        return Handoff::Hyper {
                            protocol,
                            stream,
                            prefix: buf.freeze(),
                        };
                    }
                    Parsed::Partial => {}
                }
            }
            if *shutdown.borrow() {
                return Handoff::Closed;
            }
            let deadline = head_deadline.unwrap_or(idle_since + settings.idle_timeout);
            if deadline < armed {
                timer.as_mut().reset(deadline);
                armed = deadline;
            }
            let was_empty = buf.is_empty();
            tokio::select! {
                // Reading first: when the next request is already here, the
                // timer is not even looked at.
                biased;
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Handoff::Closed,
                    Ok(_) => {
                        if was_empty {
                            slot.enter(Phase::Head);
                            if head_deadline.is_none() {
                                head_deadline = Some(tokio::time::Instant::now() + settings.header_read_timeout);
                            }
                        }
                    }
                },
                () = &mut evicted => {
                    // Shed to make room: a client caught mid-request hears
                    // why; an idle one just sees the close, as with any
                    // keep-alive connection.
                    if !buf.is_empty() {
                        write_short(&mut stream, SHED).await;
                    }
                    return Handoff::Closed;
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || buf.is_empty() {
                        return Handoff::Closed;
                    }
                }
                () = &mut timer => {
                    if tokio::time::Instant::now() < deadline {
                        // Set for an earlier wait; this one ends later.
                        timer.as_mut().reset(deadline);
                        armed = deadline;
                        continue;
                    }
                    guard.registry().record_timeout();
                    if !buf.is_empty() {
                        write_short(&mut stream, REQUEST_TIMEOUT).await;
                    }
                    let _ = stream.shutdown().await;
                    return Handoff::Closed;
                }
            }
        };
        let _ = buf.split_to(len);
        slot.enter(Phase::Busy);
        let started = Instant::now();
        let snapshot = shared.publisher.snapshot();
        let reply = decide(
            &snapshot,
            &shared.probes(&|| shared.health_body(), &|| shared.metrics_body()),
            &request.method,
            request.path(),
            &request.headers,
            false,
            shared.hub.as_deref(),
        );
        let keep_alive = request.keep_alive && !*shutdown.borrow() && !slot.is_evicted();
        log_access(
            shared,
            peer,
            &request.method,
            &request.target,
            request.version(),
            &request.headers,
            &reply,
            started,
        );
        let connection = match (keep_alive, request.http10) {
            (false, _) => Connection::Close,
            (true, true) => Connection::KeepAlive,
            (true, false) => Connection::Default,
        };
        let budget = settings.send_budget(reply.body.len());
        match tokio::time::timeout(budget, write_reply(&mut stream, &reply, connection)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Handoff::Closed,
            Err(_) => {
                // The client reads slower than `min_send_rate`.
                guard.registry().record_timeout();
                return Handoff::Closed;
            }
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            return Handoff::Closed;
        }
        // Pipelined bytes already here are the next head, under way.
        idle_since = tokio::time::Instant::now();
        if buf.is_empty() {
            head_deadline = None;
            slot.enter(Phase::Idle);
        } else {
            head_deadline = Some(idle_since + settings.header_read_timeout);
            slot.enter(Phase::Head);
        }
    }
}

/// Writes a short answer before a close, giving up if the client does not
/// take it promptly.
async fn write_short(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = tokio::time::timeout(SHORT_WRITE, stream.write_all(bytes)).await;
}

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

const SHED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What the response says about the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Connection {
    /// HTTP/1.1's default: it stays open, nothing to say.
    Default,
    /// `connection: keep-alive`, which an HTTP/1.0 client needs to hear.
    KeepAlive,
    /// `connection: close`.
    Close,
}

pub(super) fn head_bytes(reply: &Reply, connection: Connection) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(reply.status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(reply.status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &reply.headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if reply.status != StatusCode::NOT_MODIFIED && !reply.headers.contains_key(CONTENT_LENGTH) {
        head.extend_from_slice(format!("content-length: {}\r\n", reply.body.len()).as_bytes());
    }
    head.extend_from_slice(b"date: ");
    push_date_now(&mut head);
    head.extend_from_slice(b"\r\n");
    if !reply.headers.contains_key(CONNECTION) {
        match connection {
            Connection::Close => head.extend_from_slice(b"connection: close\r\n"),
            Connection::KeepAlive => head.extend_from_slice(b"connection: keep-alive\r\n"),
            Connection::Default => {}
        }
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Appends the `Date` value for now. Formatting an HTTP date costs more than
/// the rest of a small response's head, and it changes once a second, so each
/// worker thread keeps the last one (as nginx keeps its cached time).
fn push_date_now(head: &mut Vec<u8>) {
    thread_local! {
        static LAST: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    LAST.with_borrow_mut(|(at, text)| {
        if *at != secs {
            *text = httpdate::fmt_http_date(now);
            *at = secs;
        }
        head.extend_from_slice(text.as_bytes());
    });
}

async fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    connection: Connection,
) -> io::Result<()> {
    let head = head_bytes(reply, connection);
    if let ReplyBody::Document(rep, encoding) = &reply.body
        && let Some(variant) = rep.variant(*encoding)
        && let Body::Stored(region) = &variant.body
    {
        // nix has no name for MSG_MORE ("more data follows"), so pass the raw bit.
        send_all(
            stream,
            &head,
            MsgFlags::from_bits_retain(nix::libc::MSG_MORE),
        )
        .await?;
        let (file, offset) = region.file_at();
        return sendfile_all(stream, file, offset, region.len()).await;
    }
    // Head and body in one writev: one system call, no copy of the body.
    let body = reply.body.in_memory().unwrap_or_default();
    write_all_vectored(stream, &head, &body).await
}

/// Writes `head` then `body` with `writev(2)`, waiting for the socket when
/// it is full and going on where a short write stopped.
async fn write_all_vectored(stream: &TcpStream, head: &[u8], body: &[u8]) -> io::Result<()> {
    let mut done = 0;
    let total = head.len() + body.len();
    while done < total {
        let slices = if done < head.len() {
            [io::IoSlice::new(&head[done..]), io::IoSlice::new(body)]
        } else {
            [
                io::IoSlice::new(&body[done - head.len()..]),
                io::IoSlice::new(&[]),
            ]
        };
        match stream.try_write_vectored(&slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `send(2)` with flags, waiting for the socket when it is full.
async fn send_all(stream: &TcpStream, mut bytes: &[u8], flags: MsgFlags) -> io::Result<()> {
    let fd = stream.as_raw_fd();
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || {
            send(fd, bytes, flags).map_err(io::Error::from)
        }) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `sendfile(2)` of `len` bytes of `file` from `start`, waiting for the
/// socket when it is full. The file's own offset is never moved, so many
/// responses can send from the same file at once. The bytes come from the
/// page cache, where the body store keeps them; a body evicted under memory
/// pressure is read back from disk here.
async fn sendfile_all(
    stream: &TcpStream,
    file: &std::fs::File,
    start: u64,
    len: usize,
) -> io::Result<()> {
    let too_large = || io::Error::other("body too large");
    let mut offset = nix::libc::off_t::try_from(start).map_err(|_| too_large())?;
    let end = u64::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .and_then(|end| nix::libc::off_t::try_from(end).ok())
        .ok_or_else(too_large)?;
    while offset < end {
        stream.writable().await?;
        let remaining = usize::try_from(end - offset).unwrap_or(usize::MAX);
        match stream.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(stream, file, Some(&mut offset), remaining)
                .map_err(io::Error::from)
        }) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its body",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The connection as hyper sees it after a handoff: the bytes the fast path
/// already read, then the socket.
pub struct Rewind {
    prefix: Bytes,
    stream: TcpStream,
}

impl Rewind {
    pub fn new(stream: TcpStream, prefix: Bytes) -> Self {
        Self { prefix, stream }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(raw: &[u8]) -> Option<Simple> {
        match parse(raw) {
            Parsed::Simple(s, len) => {
                assert_eq!(len, raw.len());
                Some(s)
            }
            _ => None,
        }
    }

    fn bad(raw: &[u8]) -> Option<&'static str> {
        match parse(raw) {
            Parsed::Bad(why) => Some(why),
            _ => None,
        }
    }

    #[test]
    fn plain_gets_and_heads_are_simple() {
        let r = simple(
            b"GET /feeds/latest.rss?utm=x HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
        )
        .expect("simple");
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.path(), "/feeds/latest.rss");
        assert!(r.keep_alive);
        assert_eq!(r.headers["if-none-match"], "\"x\"");
        let r = simple(b"HEAD / HTTP/1.0\r\n\r\n").expect("simple");
        assert!(!r.keep_alive, "HTTP/1.0 closes by default");
        let r = simple(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").expect("simple");
        assert!(r.keep_alive);
        let r = simple(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").expect("simple");
        assert!(!r.keep_alive);
        for zero in ["0", "00", "000", "0, 0", " 0 "] {
            let raw = format!("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: {zero}\r\n\r\n");
            assert!(simple(raw.as_bytes()).is_some(), "Content-Length: {zero}");
        }
        assert!(
            simple(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\n")
                .is_some()
        );
        assert!(
            simple(b"GET / HTTP/1.1\r\nHost: \r\n\r\n").is_some(),
            "an empty Host is valid"
        );
        assert!(simple(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n").is_some());
    }

    #[test]
    fn host_and_content_length_follow_rfc_9112() {
        assert!(
            bad(b"GET / HTTP/1.1\r\n\r\n").is_some(),
            "HTTP/1.1 without Host"
        );
        assert!(
            simple(b"GET / HTTP/1.0\r\n\r\n").is_some(),
            "HTTP/1.0 may omit Host"
        );
        assert!(bad(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").is_some());
        assert!(bad(b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").is_some());
        assert!(bad(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n").is_some());
        assert!(bad(b"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n").is_some());
        for invalid in [
            "-1",
            "1x",
            "",
            "0, 1",
            "+0",
            "0x0",
            "99999999999999999999999",
        ] {
            let raw = format!("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: {invalid}\r\n\r\n");
            assert!(bad(raw.as_bytes()).is_some(), "Content-Length: {invalid:?}");
        }
        assert!(
            bad(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\n")
                .is_some()
        );
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            &b"POST / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
            b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
            b"PRI / HTTP/1.1\r\nHost: a\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Parsed::Http1),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parse(b"GET /feeds/latest.rss HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }

    #[test]
    fn http2_waits_for_the_preface_and_the_first_settings_frame() {
        // Every prefix of the preface is a head still arriving, not a request
        // to hand to a version-sniffing server without a deadline.
        for n in 1..PREFACE.len() {
            assert!(matches!(parse(&PREFACE[..n]), Parsed::Partial), "{n} bytes");
        }
        let mut buf = PREFACE.to_vec();
        assert!(matches!(parse(&buf), Parsed::Partial), "no frame yet");
        // A SETTINGS frame with one 6-byte setting.
        buf.extend_from_slice(&[0, 0, 6, SETTINGS_FRAME, 0, 0, 0, 0, 0]);
        assert!(matches!(parse(&buf), Parsed::Partial), "payload missing");
        buf.extend_from_slice(&[0, 3, 0, 0, 0, 100]);
        assert!(matches!(parse(&buf), Parsed::Http2));
        // A first frame that is not SETTINGS is hyper's to refuse.
        let mut wrong = PREFACE.to_vec();
        wrong.extend_from_slice(&[0, 0, 8, 0x6, 0, 0, 0, 0, 0]);
        assert!(matches!(parse(&wrong), Parsed::Http2));
        // "P" then not the preface: an HTTP/1 method.
        assert!(matches!(parse(b"P"), Parsed::Partial));
        assert!(matches!(parse(b"PO"), Parsed::Partial));
        assert!(!looks_like_http2(b"POST"));
    }
}
