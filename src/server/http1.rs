//! The HTTP/1.1 fast path: plain GET and HEAD requests, answered with
//! `sendfile(2)` for large bodies.
//!
//! Feed readers send little else than `GET /feeds/x.rss` with a few headers.
//! hyper writes every body through user space; for 190 KB feeds that copy was
//! about 40 % of the server's CPU and kept it below nginx. This module parses
//! such requests itself (httparse), answers them with the same [`decide`] rules
//! as the hyper service, and sends a published variant's file with
//! `sendfile(2)`: the header first with `MSG_MORE`, so header and body leave in
//! full packets. The first request it does not fully understand — HTTP/2's
//! preface, a body, `Expect`, an `Upgrade`, an absolute-form target, anything
//! malformed — hands the connection, with every byte already read, to hyper,
//! which stays the general-purpose server. So correctness never depends on
//! this module knowing all of HTTP.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use nix::sys::socket::{MsgFlags, send};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::conditional::is_conditional;
use super::{Reply, ReplyBody, decide, log_access};
use crate::publish::{Publisher, SENDFILE_MIN_BYTES};

/// How long an idle keep-alive connection may wait for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Request headers read at most; more goes to hyper, which allows 100.
const MAX_HEADERS: usize = 64;

/// What the fast path leaves of a connection.
pub enum Handoff {
    /// The connection is finished.
    Closed,
    /// hyper takes over, starting with `prefix`, the bytes already read.
    Hyper { stream: TcpStream, prefix: Bytes },
}

/// What every connection shares.
pub struct Shared {
    pub publisher: Arc<Publisher>,
    pub health: Arc<dyn Fn() -> Bytes + Send + Sync>,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
}

/// A request this module answers itself.
struct Simple {
    method: Method,
    path: String,
    headers: HeaderMap,
    keep_alive: bool,
    /// HTTP/1.0 keeps a connection open only when the response says so.
    http10: bool,
}

enum Parsed {
    Simple(Simple, usize),
    Partial,
    /// Anything else: hyper decides.
    Other,
}

fn parse(buf: &[u8]) -> Parsed {
    if buf.starts_with(b"PRI") {
        return Parsed::Other; // the HTTP/2 connection preface
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let method = match req.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Other,
    };
    let Some(target) = req.path.filter(|p| p.starts_with('/')) else {
        return Parsed::Other;
    };
    let http11 = match req.version {
        Some(1) => true,
        Some(0) => false,
        _ => return Parsed::Other,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    let mut keep_alive = http11;
    for h in req.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Parsed::Other;
        };
        match name.as_str() {
            "content-length" if value.as_bytes().trim_ascii() == b"0" => {}
            "content-length" | "transfer-encoding" | "expect" | "upgrade" => return Parsed::Other,
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
    let path = target.split('?').next().unwrap_or(target).to_owned();
    Parsed::Simple(
        Simple {
            method,
            path,
            headers,
            keep_alive,
            http10: !http11,
        },
        len,
    )
}

/// Serves simple requests on `stream` until it closes, times out, shutdown is
/// signalled, or a request needs hyper.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) -> Handoff {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        // Read until a whole request head is buffered.
        let mut head_deadline: Option<tokio::time::Instant> = None;
        let (request, len) = loop {
            if !buf.is_empty() {
                match parse(&buf) {
                    Parsed::Simple(req, len) => break (req, len),
                    Parsed::Other => {
                        return Handoff::Hyper {
                            stream,
                            prefix: buf.freeze(),
                        };
                    }
                    Parsed::Partial if buf.len() > shared.max_header_bytes => {
                        // hyper answers an oversized head with 431.
                        return Handoff::Hyper {
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
            // Idle connections wait for a first byte; a started head must finish in time.
            let deadline = match head_deadline {
                Some(d) => d,
                None if buf.is_empty() => tokio::time::Instant::now() + IDLE_TIMEOUT,
                None => {
                    let d = tokio::time::Instant::now() + shared.header_read_timeout;
                    head_deadline = Some(d);
                    d
                }
            };
            tokio::select! {
                read = stream.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return Handoff::Closed,
                    Ok(_) => {
                        if head_deadline.is_none() {
                            head_deadline = Some(tokio::time::Instant::now() + shared.header_read_timeout);
                        }
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    if !buf.is_empty() {
                        let _ = stream.write_all(REQUEST_TIMEOUT).await;
                    }
                    let _ = stream.shutdown().await;
                    return Handoff::Closed;
                }
                _ = shutdown.changed() => {
                    if buf.is_empty() {
                        return Handoff::Closed;
                    }
                }
            }
        };
        let _ = buf.split_to(len);
        let started = Instant::now();
        let snapshot = shared.publisher.snapshot();
        let reply = decide(
            &snapshot,
            shared.health.as_ref(),
            &request.method,
            &request.path,
            &request.headers,
            false,
        );
        let keep_alive = request.keep_alive && !*shutdown.borrow();
        log_access(
            peer,
            &request.method,
            &request.path,
            reply.status,
            reply.body.len(),
            reply.encoding,
            is_conditional(&request.headers),
            started,
        );
        let connection = match (keep_alive, request.http10) {
            (false, _) => Connection::Close,
            (true, true) => Connection::KeepAlive,
            (true, false) => Connection::Default,
        };
        if write_reply(&mut stream, &reply, connection).await.is_err() {
            return Handoff::Closed;
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            return Handoff::Closed;
        }
    }
}

const REQUEST_TIMEOUT: &[u8] =
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

/// What the response says about the connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// HTTP/1.1's default: it stays open, nothing to say.
    Default,
    /// `connection: keep-alive`, which an HTTP/1.0 client needs to hear.
    KeepAlive,
    /// `connection: close`.
    Close,
}

fn head_bytes(reply: &Reply, connection: Connection) -> Vec<u8> {
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
    head.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
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

async fn write_reply(
    stream: &mut TcpStream,
    reply: &Reply,
    connection: Connection,
) -> io::Result<()> {
    let mut head = head_bytes(reply, connection);
    if let ReplyBody::Document(rep, encoding) = &reply.body
        && let Some(variant) = rep.variant(*encoding)
        && let Some(file) = &variant.file
        && variant.body.len() >= SENDFILE_MIN_BYTES
    {
        // nix has no name for MSG_MORE ("more data follows"), so pass the raw bit.
        send_all(
            stream,
            &head,
            MsgFlags::from_bits_retain(nix::libc::MSG_MORE),
        )
        .await?;
        return sendfile_all(stream, &file.0, variant.body.len()).await;
    }
    let body = reply.body.bytes();
    if body.len() <= 16 * 1024 {
        head.extend_from_slice(&body);
        stream.write_all(&head).await
    } else {
        stream.write_all(&head).await?;
        stream.write_all(&body).await
    }
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

/// `sendfile(2)` of `len` bytes from the start of `file`, waiting for the
/// socket when it is full. The file's own offset is never moved, so many
/// responses can send the same file at once.
async fn sendfile_all(stream: &TcpStream, file: &std::fs::File, len: usize) -> io::Result<()> {
    let mut offset: nix::libc::off_t = 0;
    let end = nix::libc::off_t::try_from(len).map_err(|_| io::Error::other("body too large"))?;
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

    #[test]
    fn plain_gets_and_heads_are_simple() {
        let r = simple(
            b"GET /feeds/latest.rss?utm=x HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"x\"\r\n\r\n",
        )
        .expect("simple");
        assert_eq!(r.method, Method::GET);
        assert_eq!(r.path, "/feeds/latest.rss");
        assert!(r.keep_alive);
        assert_eq!(r.headers["if-none-match"], "\"x\"");
        let r = simple(b"HEAD / HTTP/1.0\r\n\r\n").expect("simple");
        assert!(!r.keep_alive, "HTTP/1.0 closes by default");
        let r = simple(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").expect("simple");
        assert!(r.keep_alive);
        let r = simple(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").expect("simple");
        assert!(!r.keep_alive);
        assert!(simple(b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            &b"POST / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\n\r\n",
            b"GET * HTTP/1.1\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GARBAGE\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Parsed::Other),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parse(b"GET /feeds/latest.rss HTTP/1.1\r\nHost"),
            Parsed::Partial
        ));
    }
}
