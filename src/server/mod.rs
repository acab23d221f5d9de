//! The HTTP server: answers every request from the published set in memory.
//!
//! This module owns the accept loop (hyper 1.x through hyper-util's `auto`
//! builder: HTTP/1.1 keep-alive and HTTP/2 prior knowledge), the routes of
//! CONTRACT §4, the response headers and the protections a public server needs
//! (header-read timeout, header size and connection limits, graceful shutdown).
//! A request never touches the store, the disk or the builder: it loads the
//! current [`PublishedSet`](crate::publish::PublishedSet) snapshot and writes
//! prebuilt bytes.

pub mod conditional;
mod http1;
mod routes;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LAST_MODIFIED,
    RETRY_AFTER, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::publish::{Encoding, PublishedSet, Publisher, Representation};
use conditional::{Outcome, evaluate, is_conditional, negotiate};
use routes::Route;

/// Limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Largest request head accepted (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Open connections at most; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// How long in-flight responses get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The body type of every response: prebuilt bytes, sent as they are.
pub type Body = Full<Bytes>;

/// Serves `publisher`'s documents on `listener` until `shutdown` completes,
/// then lets in-flight responses finish for up to `shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    publisher: Arc<Publisher>,
    health: Arc<dyn Fn() -> Bytes + Send + Sync>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(settings.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(settings.max_header_bytes as u32)
        .max_concurrent_streams(256);
    let graceful = GracefulShutdown::new();
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let shared = Arc::new(http1::Shared {
        publisher: publisher.clone(),
        health: health.clone(),
        header_read_timeout: settings.header_read_timeout,
        max_header_bytes: settings.max_header_bytes,
    });
    let connections = Arc::new(Semaphore::new(settings.max_connections));
    let mut accept_errors = 0u32;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    accept_errors = 0;
                    conn
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    accept_errors = accept_errors.saturating_add(1);
                    let pause = Duration::from_millis(10u64 << accept_errors.min(7));
                    warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                    tokio::time::sleep(pause).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small responses must not wait for Nagle's algorithm, and sendfile
        // stalls on it (a 43 ms p99 in the probe) without this.
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            match http1::serve(stream, peer, &shared, stopping).await {
                http1::Handoff::Closed => {}
                http1::Handoff::Hyper { stream, prefix } => {
                    let service = service_fn(|req| {
                        let response = handle(&shared.publisher, &shared.health, req, peer);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let io = TokioIo::new(http1::Rewind::new(stream, prefix));
                    let conn = builder.serve_connection(io, service);
                    if let Err(e) = watcher.watch(conn.into_owned()).await {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    info!(
        grace_s = settings.shutdown_grace.as_secs(),
        "shutting down: no new connections"
    );
    let _ = stop.send(true);
    // Every connection holds a permit until it ends: having them all back
    // means every in-flight response has been written.
    let all = u32::try_from(settings.max_connections).unwrap_or(u32::MAX);
    let drained = async {
        let _ = tokio::join!(graceful.shutdown(), connections.acquire_many(all));
    };
    tokio::select! {
        () = drained => info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            warn!("shutdown grace period over; dropping the remaining connections");
        }
    }
}

/// What to send for one request, whichever HTTP implementation sends it.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ReplyBody,
    /// The content coding sent, for the access log.
    pub encoding: Option<&'static str>,
}

pub(crate) enum ReplyBody {
    /// No body (HEAD, 304, 412).
    Empty,
    Bytes(Bytes),
    /// A published variant; holding the representation keeps its bytes (and
    /// their file) alive until the response is written.
    Document(Arc<Representation>, Encoding),
}

impl ReplyBody {
    pub fn bytes(&self) -> Bytes {
        match self {
            ReplyBody::Empty => Bytes::new(),
            ReplyBody::Bytes(b) => b.clone(),
            ReplyBody::Document(rep, encoding) => rep
                .variant(*encoding)
                .map(|v| v.body.clone())
                .unwrap_or_default(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ReplyBody::Empty => 0,
            ReplyBody::Bytes(b) => b.len(),
            ReplyBody::Document(rep, encoding) => {
                rep.variant(*encoding).map_or(0, |v| v.body.len())
            }
        }
    }
}

fn text_reply(status: StatusCode, text: &'static str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Errors must never be cached by a CDN in front of us.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    Reply {
        status,
        headers,
        body: ReplyBody::Bytes(Bytes::from_static(text.as_bytes())),
        encoding: None,
    }
}

/// One request's answer: routing, method and body checks, negotiation and
/// preconditions. Pure apart from reading the clock for `If-Modified-Since`.
pub(crate) fn decide(
    set: &PublishedSet,
    health: &(dyn Fn() -> Bytes + Send + Sync),
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    has_body: bool,
) -> Reply {
    let mut reply = match routes::route(path) {
        _ if method != Method::GET && method != Method::HEAD => {
            let mut r = text_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ if has_body => text_reply(StatusCode::BAD_REQUEST, "request bodies are not accepted\n"),
        Route::Health => {
            let body = health();
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            Reply {
                status: StatusCode::OK,
                headers,
                body: ReplyBody::Bytes(body),
                encoding: None,
            }
        }
        Route::Index => represent(set.index.as_ref(), headers),
        Route::Opml => represent(set.opml.as_ref(), headers),
        Route::Feed { name, format } => match set.document(name, format) {
            Some(rep) => represent(Some(rep), headers),
            None if set.gone.contains(name) => text_reply(
                StatusCode::GONE,
                "this feed has been retired; please unsubscribe\n",
            ),
            None if set.pending.contains(name) => {
                let mut r = text_reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "this feed is being built; try again shortly\n",
                );
                r.headers
                    .insert(RETRY_AFTER, HeaderValue::from_static("10"));
                r
            }
            None => represent(None, headers),
        },
        Route::NotFound => text_reply(StatusCode::NOT_FOUND, "not found\n"),
    };
    if method == Method::HEAD {
        // HEAD gets GET's headers, Content-Length included, and no body.
        reply.body = ReplyBody::Empty;
    }
    reply
}

/// The hyper service: [`decide`], then an `http::Response`.
fn handle(
    publisher: &Publisher,
    health: &Arc<dyn Fn() -> Bytes + Send + Sync>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    let started = Instant::now();
    let snapshot = publisher.snapshot();
    let reply = decide(
        &snapshot,
        health.as_ref(),
        req.method(),
        req.uri().path(),
        req.headers(),
        has_body(&req),
    );
    let bytes = reply.body.len();
    log_access(
        peer,
        req.method(),
        req.uri().path(),
        reply.status,
        bytes,
        reply.encoding,
        is_conditional(req.headers()),
        started,
    );
    let mut response = Response::new(Full::new(reply.body.bytes()));
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    response
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn log_access(
    peer: SocketAddr,
    method: &Method,
    path: &str,
    status: StatusCode,
    bytes: usize,
    encoding: Option<&'static str>,
    conditional: bool,
    started: Instant,
) {
    info!(
        target: "feedsmith::access",
        %peer,
        method = %method,
        path,
        status = status.as_u16(),
        bytes,
        encoding = encoding.unwrap_or("-"),
        conditional,
        micros = started.elapsed().as_micros() as u64,
    );
}

/// Feed paths take no request body; a declared or streamed one is refused.
fn has_body(req: &Request<Incoming>) -> bool {
    use hyper::body::Body as _;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes().trim_ascii() != b"0");
    declared
        || req.headers().contains_key(http::header::TRANSFER_ENCODING)
        || !req.body().is_end_stream()
}

/// A 200, 304 or 412 for a published representation, or a 404 if there is none.
fn represent(rep: Option<&Arc<Representation>>, headers: &HeaderMap) -> Reply {
    let Some(rep) = rep else {
        return text_reply(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(variant) = negotiate(headers, rep) else {
        return text_reply(
            StatusCode::NOT_ACCEPTABLE,
            "no acceptable content coding (identity was refused)\n",
        );
    };
    let outcome = evaluate(headers, rep, variant, SystemTime::now());
    let status = match outcome {
        Outcome::Full => StatusCode::OK,
        Outcome::NotModified => StatusCode::NOT_MODIFIED,
        Outcome::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
    };
    let mut h = HeaderMap::new();
    // Header values we built ourselves are always valid; leave one out rather
    // than panic if it ever is not.
    let mut set = |name, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(ETAG, variant.etag.as_str());
    set(LAST_MODIFIED, &rep.last_modified_http);
    set(CACHE_CONTROL, &rep.cache_control);
    h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    let body = if status == StatusCode::OK {
        h.insert(CONTENT_TYPE, HeaderValue::from_static(rep.content_type));
        h.insert(CONTENT_LENGTH, HeaderValue::from(variant.body.len()));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(token) = variant.encoding.token() {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static(token));
        }
        ReplyBody::Document(rep.clone(), variant.encoding)
    } else {
        ReplyBody::Empty
    };
    Reply {
        status,
        headers: h,
        body,
        encoding: Some(variant.encoding.name()),
    }
}
