//! The general-purpose path: hyper serves what the fast path hands over —
//! HTTP/2 (prior knowledge, preface and SETTINGS already checked) and any
//! HTTP/1 request the fast path does not take itself — under the same
//! deadlines.
//!
//! hyper bounds an HTTP/1 request head (`header_read_timeout`) and pings idle
//! HTTP/2 peers, but it has no idle limit for HTTP/2 and no notion of a
//! response read too slowly. So each connection is driven here beside a
//! watchdog: every response body is tracked from the moment it is handed to
//! hyper until hyper has taken its last chunk, and must get there within its
//! send budget; a connection with no response in flight may stay
//! `idle_timeout`, then it is shut down gracefully (HTTP/2: GOAWAY). Bodies
//! are handed over in chunks, so hyper takes the last one only when the
//! client has read nearly all the rest. The same watchdog obeys the
//! connection's slot being shed and the server shutting down.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, Either};
use http::header::{CONNECTION, TRANSFER_ENCODING};
use http::{HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::debug;

use super::conn::{Phase, Slot, SlotGuard};
use super::http1::Rewind;
use super::{
    Reply, Shared, archive_reply, content_length, decide, framing_problem, hub_reply,
    is_archive_path, is_hub_path, log_access, text_reply,
};
use crate::publish::Region;

/// Bytes handed to hyper at a time. HTTP/2 frames carry 16 KiB by default,
/// and hyper asks for the next chunk only when it has room for it.
const CHUNK: usize = 16 * 1024;

/// After a graceful shutdown begins, how long a connection with nothing in
/// flight may take to close.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// HTTP/2 keep-alive pings: a peer that stops answering them is gone.
const H2_PING_INTERVAL: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Which of hyper's servers takes a connection over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// An HTTP/1 connection, from the request the fast path did not take.
    Http1,
    /// An HTTP/2 connection whose preface and first SETTINGS frame the fast
    /// path has already read.
    Http2,
}

/// Serves a connection the fast path handed over, starting with `prefix`,
/// the bytes it already read.
pub(super) async fn serve(
    protocol: Protocol,
    stream: TcpStream,
    prefix: Bytes,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    guard: &SlotGuard,
    stopping: watch::Receiver<bool>,
) {
    let activity = Activity::new(guard.slot().clone(), shared);
    let service = service(shared, &activity, peer);
    let io = TokioIo::new(Rewind::new(stream, prefix));
    let settings = &shared.settings;
    match protocol {
        Protocol::Http1 => {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_read_timeout)
                .max_buf_size(settings.max_header_bytes.max(8192))
                .keep_alive(true)
                .serve_connection(io, service);
            let shutdown =
                |c: Pin<&mut _>| hyper::server::conn::http1::Connection::graceful_shutdown(c);
            drive(conn, shutdown, &activity, guard, stopping, peer).await;
        }
        Protocol::Http2 => {
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
                .max_concurrent_streams(256)
                .keep_alive_interval(H2_PING_INTERVAL)
                .keep_alive_timeout(H2_PING_TIMEOUT)
                .serve_connection(io, service);
            let shutdown =
                |c: Pin<&mut _>| hyper::server::conn::http2::Connection::graceful_shutdown(c);
            drive(conn, shutdown, &activity, guard, stopping, peer).await;
        }
    }
}

/// What one request's answer is: ready at once, or (the hub) after the
/// body has been read and the store asked.
type Answer = Either<
    std::future::Ready<Result<Response<TrackedBody>, Infallible>>,
    BoxFuture<'static, Result<Response<TrackedBody>, Infallible>>,
>;

fn service(
    shared: &Arc<Shared>,
    activity: &Arc<Activity>,
    peer: SocketAddr,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Response<TrackedBody>,
    Error = Infallible,
    Future = Answer,
> + Clone {
    let shared = shared.clone();
    let activity = activity.clone();
    service_fn(move |req: Request<Incoming>| {
        // Only the hub and archive pages wait on the store (the hub reads
        // a body too); everything else is answered at once from memory.
        if req.method() == http::Method::POST
            && shared.hub.as_ref().is_some_and(|h| h.enabled())
            && is_hub_path(req.uri().path())
        {
            let (shared, activity) = (shared.clone(), activity.clone());
            Either::Right(Box::pin(
                async move { Ok(handle_hub(&shared, &activity, req, peer).await) },
            ) as BoxFuture<'static, _>)
        } else if (req.method() == http::Method::GET || req.method() == http::Method::HEAD)
            && shared.archive.is_some()
            && is_archive_path(req.uri().path())
        {
            let (shared, activity) = (shared.clone(), activity.clone());
            Either::Right(Box::pin(async move {
                Ok(handle_archive(&shared, &activity, req, peer).await)
            }) as BoxFuture<'static, _>)
        } else {
            Either::Left(std::future::ready(Ok(handle(
                &shared, &activity, req, peer,
            ))))
        }
    })
}

/// `POST /websub`: the framing checks, the body read within the size limit
/// and the header deadline, then the hub's answer.
async fn handle_hub(
    shared: &Arc<Shared>,
    activity: &Arc<Activity>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<TrackedBody> {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let reply = match (framing_refusal(parts.version, &parts.headers), &shared.hub) {
        (Some(refused), _) => refused,
        (None, None) => text_reply(StatusCode::NOT_FOUND, "not found\n"),
        (None, Some(hub)) => {
            let limit = hub.max_request_bytes();
            let read = tokio::time::timeout(
                shared.settings.header_read_timeout,
                http_body_util::Limited::new(body, limit).collect(),
            )
            .await;
            match read {
                Err(_) => text_reply(
                    StatusCode::REQUEST_TIMEOUT,
                    "the request body did not arrive in time\n",
                ),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    hub.too_large();
                    text_reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "the subscription request is over the hub's size limit\n",
                    )
                }
                Ok(Err(_)) => text_reply(StatusCode::BAD_REQUEST, "cannot read the request body\n"),
                Ok(Ok(collected)) => {
                    let content_type = parts
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    hub_reply(
                        hub.handle(peer.ip(), content_type, collected.to_bytes())
                            .await,
                    )
                }
            }
        }
    };
    let target = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |pq| pq.as_str());
    let request = (&parts.method, target, parts.version, &parts.headers);
    respond(shared, activity, peer, request, reply, started)
}

/// A GET or HEAD of an archive page: the framing checks, then the page
/// from the archive (read from the store on a miss), answered like any
/// document.
async fn handle_archive(
    shared: &Arc<Shared>,
    activity: &Arc<Activity>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<TrackedBody> {
    let started = std::time::Instant::now();
    let reply = match (
        framing_refusal(req.version(), req.headers()),
        &shared.archive,
    ) {
        (Some(refused), _) => refused,
        (None, _) if has_body(&req) => {
            text_reply(StatusCode::BAD_REQUEST, "request bodies are not accepted\n")
        }
        (None, None) => text_reply(StatusCode::NOT_FOUND, "not found\n"),
        (None, Some(archive)) => {
            archive_reply(
                archive.as_ref(),
                req.method(),
                req.uri().path(),
                req.headers(),
            )
            .await
        }
    };
    let target = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path(), |pq| pq.as_str());
    let request = (req.method(), target, req.version(), req.headers());
    respond(shared, activity, peer, request, reply, started)
}

/// One request: the framing checks HTTP/1 needs, [`decide`], then a response
/// whose body is tracked until it is sent.
fn handle(
    shared: &Shared,
    activity: &Arc<Activity>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<TrackedBody> {
    let started = std::time::Instant::now();
    let reply = match framing_refusal(req.version(), req.headers()) {
        Some(refused) => refused,
        None => {
            let snapshot = shared.publisher.snapshot();
            decide(
                &snapshot,
                &shared.probes(&|| shared.health_body(), &|| shared.metrics_body()),
                req.method(),
                req.uri().path(),
                req.headers(),
                has_body(&req),
                shared.hub.as_deref(),
            )
        }
    };
    let uri = req.uri();
    let target = match (uri.path_and_query(), uri.authority()) {
        (Some(pq), _) => pq.as_str(),
        // CONNECT's authority form
        (None, Some(authority)) => authority.as_str(),
        (None, None) => uri.path(),
    };
    let request = (req.method(), target, req.version(), req.headers());
    respond(shared, activity, peer, request, reply, started)
}

/// The `400` for an HTTP/1.x request whose framing headers are wrong
/// (HTTP/2 frames its own); it closes the connection, since the request's
/// framing cannot be trusted, so neither can the next one on it.
fn framing_refusal(version: Version, headers: &http::HeaderMap) -> Option<Reply> {
    if version >= Version::HTTP_2 {
        return None;
    }
    let text = framing_problem(version == Version::HTTP_11, headers)?;
    let mut r = text_reply(StatusCode::BAD_REQUEST, text);
    r.headers
        .insert(CONNECTION, HeaderValue::from_static("close"));
    Some(r)
}

/// Logs one answered request (method, target as sent, version, headers)
/// and makes its response, whose body is tracked until it is sent: the end
/// of every handler here.
fn respond(
    shared: &Shared,
    activity: &Arc<Activity>,
    peer: SocketAddr,
    (method, target, version, headers): (&http::Method, &str, Version, &http::HeaderMap),
    reply: Reply,
    started: std::time::Instant,
) -> Response<TrackedBody> {
    log_access(
        shared, peer, method, target, version, headers, &reply, started,
    );
    let data = reply.body.source();
    let body = TrackedBody {
        stream: Some(activity.start(data.remaining())),
        data,
    };
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

/// Feed paths take no request body; a declared or streamed one is refused.
fn has_body(req: &Request<Incoming>) -> bool {
    use hyper::body::Body as _;
    !matches!(content_length(req.headers()), Ok(None | Some(0)))
        || req.headers().contains_key(TRANSFER_ENCODING)
        || !req.body().is_end_stream()
}

/// Runs `conn` until it ends, a deadline passes, its slot is shed or the
/// server stops; `shutdown` begins a graceful close.
async fn drive<C>(
    conn: C,
    shutdown: impl Fn(Pin<&mut C>),
    activity: &Activity,
    guard: &SlotGuard,
    mut stopping: watch::Receiver<bool>,
    peer: SocketAddr,
) where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = std::pin::pin!(conn);
    let slot = guard.slot();
    let mut closing: Option<Instant> = None;
    if *stopping.borrow_and_update() {
        shutdown(conn.as_mut());
        closing = Some(Instant::now());
    }
    loop {
        let (due, deadline) = activity.next_deadline(closing);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = activity.changed.notified() => {}
            () = tokio::time::sleep_until(deadline) => match due {
                Due::Send => {
                    guard.registry().record_timeout();
                    debug!(%peer, "response not read in time; closing the connection");
                    return;
                }
                Due::Idle => {
                    guard.registry().record_timeout();
                    shutdown(conn.as_mut());
                    closing = Some(Instant::now());
                }
                Due::Close => return,
            },
            () = slot.evicted(), if closing.is_none() => {
                shutdown(conn.as_mut());
                closing = Some(Instant::now());
            }
            _ = stopping.changed(), if closing.is_none() => {
                shutdown(conn.as_mut());
                closing = Some(Instant::now());
            }
        }
    }
}

/// Which deadline is next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// A response in flight must be taken by then.
    Send,
    /// Nothing in flight: the connection may wait for a request until then.
    Idle,
    /// A graceful close has begun and nothing is in flight.
    Close,
}

/// The responses one hyper connection has in flight.
struct Activity {
    slot: Arc<Slot>,
    settings: super::ServerSettings,
    streams: Mutex<Streams>,
    /// Signalled when a response starts or ends, so the watchdog re-arms.
    changed: Notify,
}

struct Streams {
    next_id: u64,
    /// Each in-flight response and the time it must be sent by.
    deadlines: Vec<(u64, Instant)>,
    idle_since: Instant,
}

impl Activity {
    fn new(slot: Arc<Slot>, shared: &Shared) -> Arc<Self> {
        slot.enter(Phase::Idle);
        Arc::new(Self {
            slot,
            settings: shared.settings.clone(),
            streams: Mutex::new(Streams {
                next_id: 0,
                deadlines: Vec::new(),
                idle_since: Instant::now(),
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A response of `len` bytes starts; it must be sent within its budget.
    fn start(self: &Arc<Self>, len: usize) -> StreamGuard {
        let budget = self.settings.send_budget(len);
        let id = {
            let mut s = self.lock();
            s.next_id += 1;
            let id = s.next_id;
            s.deadlines.push((id, Instant::now() + budget));
            id
        };
        self.slot.enter(Phase::Busy);
        self.changed.notify_one();
        StreamGuard {
            activity: self.clone(),
            id,
        }
    }

    fn next_deadline(&self, closing: Option<Instant>) -> (Due, Instant) {
        let s = self.lock();
        match (s.deadlines.iter().map(|&(_, d)| d).min(), closing) {
            (Some(send), _) => (Due::Send, send),
            (None, Some(since)) => (Due::Close, since + CLOSE_GRACE),
            (None, None) => (Due::Idle, s.idle_since + self.settings.idle_timeout),
        }
    }
}

/// A response in flight; dropping it (hyper has taken the whole body, or the
/// stream or connection is gone) ends it.
struct StreamGuard {
    activity: Arc<Activity>,
    id: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let idle = {
            let mut s = self.activity.lock();
            s.deadlines.retain(|&(id, _)| id != self.id);
            let idle = s.deadlines.is_empty();
            if idle {
                s.idle_since = Instant::now();
            }
            idle
        };
        if idle {
            self.activity.slot.enter(Phase::Idle);
        }
        self.activity.changed.notify_one();
    }
}

/// A prebuilt body handed to hyper a chunk at a time, tracked until hyper
/// has taken all of it.
pub(super) struct TrackedBody {
    data: BodySource,
    stream: Option<StreamGuard>,
}

/// Where a response body's bytes come from.
pub(super) enum BodySource {
    Memory(Bytes),
    /// A stored body, from `at` on. Each chunk is read from the page cache
    /// when hyper asks for it, as `sendfile(2)` does on the fast path, so a
    /// large document is never copied whole onto the heap per response.
    Stored {
        region: Arc<Region>,
        at: u64,
    },
}

impl BodySource {
    pub(super) fn remaining(&self) -> usize {
        match self {
            BodySource::Memory(b) => b.len(),
            BodySource::Stored { region, at } => region
                .len()
                .saturating_sub(usize::try_from(*at).unwrap_or(usize::MAX)),
        }
    }

    fn next_chunk(&mut self) -> std::io::Result<Bytes> {
        match self {
            BodySource::Memory(b) => {
                let n = b.len().min(CHUNK);
                Ok(b.split_to(n))
            }
            BodySource::Stored { region, at } => {
                let n = (region.len() as u64).saturating_sub(*at).min(CHUNK as u64);
                let mut buf = vec![0; usize::try_from(n).unwrap_or(CHUNK)];
                region.read_at(&mut buf, *at)?;
                *at += n;
                Ok(Bytes::from(buf))
            }
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.data.remaining() == 0 {
            // Everything is with hyper now: the response is no longer ours to time.
            self.stream = None;
            return Poll::Ready(None);
        }
        // A read error (a broken disk under the body store) aborts this
        // response; hyper resets the stream or closes the connection.
        Poll::Ready(Some(self.data.next_chunk().map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.data.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.remaining() as u64)
    }
}
