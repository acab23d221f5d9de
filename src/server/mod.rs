//! The HTTP server: answers every request from the published set in memory.
//!
//! This module owns the accept loop, the routes of `docs/contract.md` §4, the
//! response headers and the protections a public server needs. Each connection
//! holds a slot ([`conn`]) and every state it can be in has a deadline: a new
//! connection must send its first request head (or HTTP/2 preface and SETTINGS)
//! within `header_timeout`; a keep-alive connection may wait `idle_timeout` for
//! its next request; a response must be sent within `send_timeout` plus its
//! size at `min_send_rate`. At the connection limit idle and slow connections
//! are shed so new clients are served, and one address may hold at most
//! `max_connections_per_address` slots. Plain HTTP/1 GET and HEAD requests are
//! answered by the fast path (`http1`); anything else goes to hyper
//! (`fallback`), HTTP/1 or HTTP/2 as the fast path detected — never to a
//! version-sniffing builder without a deadline. A request never touches the
//! store or the builder, and never opens a file: it loads the current
//! [`PublishedSet`] snapshot and writes prebuilt bytes. The one disk read is
//! the HTTP/1 fast path sending a large body with `sendfile(2)` from the body
//! store's already-open file (bodies of 16 KiB and more live there, in the page
//! cache), so a request path never names a file.

pub mod conditional;
pub mod conn;
mod fallback;
#[doc(hidden)]
pub mod fuzzing;
mod http1;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    ETAG, HOST, LAST_MODIFIED, REFERER, RETRY_AFTER, USER_AGENT, VARY, X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::access_log::{AccessLog, Conditional, Entry};
use crate::metrics::RouteKind;
use crate::publish::{Encoding, PublishedSet, Publisher, Representation};
use conditional::{Outcome, evaluate, negotiate};
pub use conn::ConnectionStats;
use conn::{Refusal, Registry, SlotLimits};
use routes::Route;

/// Limits and timeouts of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Time a client has to send a request's head, counted from its first
    /// byte — or, on a new connection, from the accept: it also bounds
    /// protocol detection and the HTTP/2 preface and SETTINGS.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection (HTTP/1 or HTTP/2) may wait for its
    /// next request.
    pub idle_timeout: Duration,
    /// A response must be sent within this plus its size at `min_send_rate`.
    pub send_timeout: Duration,
    /// The slowest a client may read a response, in bytes per second.
    pub min_send_rate: u64,
    /// Largest request head accepted (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Open connections at most; at the limit idle ones are shed for new ones.
    pub max_connections: usize,
    /// Open connections from one address (IPv6: one /64) at most.
    pub max_connections_per_address: usize,
    /// How long in-flight responses get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Whether this listener answers `/metrics` (`[metrics]`: on the main
    /// listener unless it has one of its own, or is off).
    pub metrics: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            min_send_rate: 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            max_connections_per_address: 256,
            shutdown_grace: Duration::from_secs(10),
            metrics: true,
        }
    }
}

impl ServerSettings {
    /// The time a response of `len` bytes may take to send.
    pub fn send_budget(&self, len: usize) -> Duration {
        let at_rate = len as f64 / self.min_send_rate.max(1) as f64;
        self.send_timeout + Duration::try_from_secs_f64(at_rate).unwrap_or(Duration::MAX / 2)
    }
}

/// The WebSub hub as the server sees it: what answers `POST /websub`, and
/// the discovery links every feed response carries. The server knows nothing
/// else of WebSub; the `websub` module implements this.
pub trait HubEndpoint: Send + Sync {
    /// Whether the hub answers now (a reload may turn it on or off); while
    /// it does not, `/websub` is `404` and feeds carry no hub links.
    fn enabled(&self) -> bool;

    /// The largest request body `handle` takes; a longer one gets 413.
    fn max_request_bytes(&self) -> usize;

    /// Counts a request refused for a body over `max_request_bytes`.
    fn too_large(&self) {}

    /// Answers one subscription request from `peer`, whose body is `body`
    /// and whose `Content-Type` is `content_type`.
    fn handle(
        &self,
        peer: std::net::IpAddr,
        content_type: Option<String>,
        body: Bytes,
    ) -> futures_util::future::BoxFuture<'static, HubReply>;

    /// The `Link` header value for `feed`'s document in `format`: the hubs
    /// and the feed's own URL.
    fn links(&self, feed: &str, format: crate::config::Format) -> Option<HeaderValue>;
}

/// RFC 5005 archive pages as the server sees them: built from the store on
/// request (`GET /feeds/{name}/archive/{page}.{ext}`), which the server
/// itself never reads.
pub trait ArchiveEndpoint: Send + Sync {
    /// Page `page` of `feed`'s archive in `format`.
    fn page<'a>(
        &'a self,
        feed: &'a str,
        page: u32,
        format: crate::config::Format,
    ) -> futures_util::future::BoxFuture<'a, ArchiveAnswer>;
}

/// What the archive has for one page.
pub enum ArchiveAnswer {
    /// The page, ready to serve (conditional requests are answered from it).
    Page(Arc<Representation>),
    /// No such feed, no archive for it, or no such page.
    NotFound,
    /// The store cannot be read now; try again later.
    Unavailable,
}

/// What answers the requests that wait on the store.
#[derive(Default)]
pub struct Endpoints {
    /// `POST /websub`, when the hub runs.
    pub hub: Option<Arc<dyn HubEndpoint>>,
    /// `GET /feeds/{name}/archive/{page}.{ext}`.
    pub archive: Option<Arc<dyn ArchiveEndpoint>>,
}

/// The hub's answer to a subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubReply {
    /// 202 when the request was accepted, else why not.
    pub status: StatusCode,
    /// A line saying what happened, sent as plain text.
    pub text: String,
    /// `Retry-After` in seconds, for a limit that lifts by itself.
    pub retry_after: Option<u64>,
}

/// Builds the `/healthz` body; given the server's connection figures.
pub type HealthReport = Arc<dyn Fn(&ConnectionStats) -> Bytes + Send + Sync>;

/// What every connection task shares.
pub(crate) struct Shared {
    pub publisher: Arc<Publisher>,
    pub health: HealthReport,
    pub settings: ServerSettings,
    pub registry: Arc<Registry>,
    pub access_log: AccessLog,
    /// The WebSub hub, when it is enabled.
    pub hub: Option<Arc<dyn HubEndpoint>>,
    /// The feeds' archive pages.
    pub archive: Option<Arc<dyn ArchiveEndpoint>>,
}

impl Shared {
    /// The `/healthz` body now.
    pub fn health_body(&self) -> Bytes {
        (self.health)(&self.registry.stats())
    }

    /// The `/metrics` body now.
    pub fn metrics_body(&self) -> Bytes {
        Bytes::from(crate::metrics::global().render())
    }

    /// What this listener makes per request.
    pub fn probes<'a>(
        &'a self,
        health: &'a dyn Fn() -> Bytes,
        metrics: &'a dyn Fn() -> Bytes,
    ) -> Probes<'a> {
        Probes {
            health,
            metrics: self.settings.metrics.then_some(metrics),
        }
    }
}

/// How often the accept loop looks again for a connection to shed while every
/// slot is busy (a connection turning idle does not signal).
const ROOM_RECHECK: Duration = Duration::from_millis(100);

/// Serves `publisher`'s documents on `listener` until `shutdown` completes,
/// then lets in-flight responses finish for up to `shutdown_grace`. Each
/// answered request goes to `access_log`; `POST /websub` goes to `hub`.
pub async fn serve(
    listener: TcpListener,
    publisher: Arc<Publisher>,
    health: HealthReport,
    settings: ServerSettings,
    access_log: AccessLog,
    Endpoints { hub, archive }: Endpoints,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::new(SlotLimits {
        max_connections: settings.max_connections,
        max_per_address: settings.max_connections_per_address,
    }));
    let shared = Arc::new(Shared {
        publisher,
        health,
        settings: settings.clone(),
        registry: registry.clone(),
        access_log,
        hub,
        archive,
    });
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut accept_errors = 0u32;
    let mut refusals_logged = false;
    tokio::pin!(shutdown);
    loop {
        // At the limit with nothing to shed, new clients wait in the listen
        // backlog rather than being accepted and dropped.
        tokio::select! {
            () = registry.room(ROOM_RECHECK) => {}
            () = &mut shutdown => break,
        }
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
        // `has_room` may have counted a connection that has since become busy;
        // the accepted one then waits for a slot (within its header timeout)
        // like the backlog behind it.
        let give_up = tokio::time::Instant::now() + settings.header_read_timeout;
        let admitted = loop {
            match registry.admit(peer.ip()) {
                Ok(guard) => break Ok(guard),
                Err(Refusal::Full) if tokio::time::Instant::now() < give_up => {
                    tokio::select! {
                        () = registry.room(ROOM_RECHECK) => {}
                        () = tokio::time::sleep_until(give_up) => {}
                        () = &mut shutdown => break Err(None),
                    }
                }
                Err(refusal) => break Err(Some(refusal)),
            }
        };
        let guard = match admitted {
            Ok(guard) => guard,
            Err(None) => break,
            Err(Some(refusal)) => {
                if refusal == Refusal::Full {
                    registry.record_refusal();
                }
                if !refusals_logged {
                    // Once: under attack a line per refusal would flood the log.
                    warn!(%peer, reason = ?refusal, "refusing connections beyond the limits; /healthz counts them");
                    refusals_logged = true;
                }
                refuse(&stream, refusal);
                continue;
            }
        };
        let shared = shared.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            match http1::serve(stream, peer, &shared, &guard, stopping.clone()).await {
                http1::Handoff::Closed => {}
                http1::Handoff::Hyper {
                    protocol,
                    stream,
                    prefix,
                } => {
                    fallback::serve(protocol, stream, prefix, peer, &shared, &guard, stopping)
                        .await;
                }
            }
            debug!(%peer, "connection closed");
            drop(guard);
        });
    }
    drop(listener);
    info!(
        grace_s = settings.shutdown_grace.as_secs(),
        "shutting down: no new connections"
    );
    let _ = stop.send(true);
    tokio::select! {
        () = registry.drained() => info!("all connections closed"),
        () = tokio::time::sleep(settings.shutdown_grace) => {
            warn!("shutdown grace period over; dropping the remaining connections");
        }
    }
}

/// Answers a connection that gets no slot with one try at a short 503 (it
/// may not fit; the close tells the client enough), then closes it.
fn refuse(stream: &tokio::net::TcpStream, refusal: Refusal) {
    let text = match refusal {
        Refusal::PerAddress => "too many connections from your address\n",
        Refusal::Full => "server busy\n",
    };
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         cache-control: no-store\r\nretry-after: 1\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.try_write(response.as_bytes());
}

/// What to send for one request, whichever HTTP implementation sends it.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ReplyBody,
    /// The content coding sent, for the access log.
    pub encoding: Option<&'static str>,
    /// What kind of URL it answers, for the metrics.
    pub route: RouteKind,
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
    /// The bytes to send, without reading a stored body.
    fn source(&self) -> fallback::BodySource {
        use crate::publish::Body;
        match self {
            ReplyBody::Empty => fallback::BodySource::Memory(Bytes::new()),
            ReplyBody::Bytes(b) => fallback::BodySource::Memory(b.clone()),
            ReplyBody::Document(rep, encoding) => match rep.variant(*encoding).map(|v| &v.body) {
                Some(Body::Memory(b)) => fallback::BodySource::Memory(b.clone()),
                Some(Body::Stored(region)) => fallback::BodySource::Stored {
                    region: region.clone(),
                    at: 0,
                },
                None => fallback::BodySource::Memory(Bytes::new()),
            },
        }
    }

    /// The bytes if they are in memory (everything but a stored document body).
    pub fn in_memory(&self) -> Option<Bytes> {
        match self {
            ReplyBody::Empty => Some(Bytes::new()),
            ReplyBody::Bytes(b) => Some(b.clone()),
            ReplyBody::Document(rep, encoding) => rep
                .variant(*encoding)
                .map_or(Some(Bytes::new()), |v| v.body.in_memory().cloned()),
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
        route: RouteKind::Other,
    }
}

/// Methods RFC 9110 and RFC 5789 define. A request with one of these that a
/// resource does not allow gets 405 with `Allow`; any other method is one this
/// server does not implement at all: 501 (RFC 9110 §15.6.2).
fn is_known_method(method: &Method) -> bool {
    matches!(
        method.as_str(),
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH"
    )
}

/// The feed pages' `Content-Security-Policy`, made once.
static PAGE_POLICY: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    HeaderValue::from_str(&crate::builder::page::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// The bodies made per request rather than published: `/healthz`, and
/// `/metrics` on a listener that serves it.
pub(crate) struct Probes<'a> {
    pub health: &'a dyn Fn() -> Bytes,
    pub metrics: Option<&'a dyn Fn() -> Bytes>,
}

/// One request's answer: routing, method and body checks, negotiation and
/// preconditions. Pure apart from reading the clock for `If-Modified-Since`.
pub(crate) fn decide(
    set: &PublishedSet,
    probes: &Probes<'_>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    has_body: bool,
    hub: Option<&dyn HubEndpoint>,
) -> Reply {
    let route = routes::route(path);
    let kind = match route {
        Route::Index => RouteKind::Index,
        Route::Opml => RouteKind::Opml,
        Route::Health => RouteKind::Health,
        Route::Metrics if probes.metrics.is_some() => RouteKind::Metrics,
        Route::Feed { .. } => RouteKind::Feed,
        Route::Page { .. } => RouteKind::Page,
        Route::Archive { .. } => RouteKind::Archive,
        Route::Hub => RouteKind::Websub,
        Route::Metrics | Route::NotFound => RouteKind::Other,
    };
    let mut reply = match route {
        Route::Hub if !hub.is_some_and(|h| h.enabled()) => {
            text_reply(StatusCode::NOT_FOUND, "not found\n")
        }
        // A POST with its body is answered by `hub_reply`; only other
        // methods get here.
        Route::Hub => {
            let mut r = text_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "the hub takes POST requests (application/x-www-form-urlencoded)\n",
            );
            r.headers.insert(ALLOW, HeaderValue::from_static("POST"));
            r
        }
        _ if method != Method::GET && method != Method::HEAD && !is_known_method(method) => {
            text_reply(StatusCode::NOT_IMPLEMENTED, "method not implemented\n")
        }
        _ if method != Method::GET && method != Method::HEAD => {
            let mut r = text_reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            r.headers
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ if has_body => text_reply(StatusCode::BAD_REQUEST, "request bodies are not accepted\n"),
        Route::Health => probe_reply((probes.health)(), "application/json"),
        Route::Metrics => match probes.metrics {
            Some(metrics) => probe_reply(metrics(), crate::metrics::CONTENT_TYPE),
            None => text_reply(StatusCode::NOT_FOUND, "not found\n"),
        },
        Route::Page { name } => match set.page(name) {
            Some(rep) => {
                let mut r = document_reply(Some(rep), headers);
                r.headers
                    .insert(CONTENT_SECURITY_POLICY, PAGE_POLICY.clone());
                r
            }
            None if set.is_gone(name) => text_reply(
                StatusCode::GONE,
                "this feed has been retired; please unsubscribe\n",
            ),
            // Served from the output folder, or pending: pages are not kept
            // there, so a feed's page follows its first build.
            None if set.feed(name).is_some() || set.pending().contains(name) => {
                retry_shortly("this page is being built; try again shortly\n")
            }
            None => document_reply(None, headers),
        },
        Route::Index => document_reply(set.index(), headers),
        Route::Opml => document_reply(set.opml(), headers),
        Route::Feed { name, format } => match set.document(name, format) {
            Some(rep) => {
                let mut r = document_reply(Some(rep), headers);
                if let Some(links) = hub.and_then(|h| h.links(name, format)) {
                    r.headers.insert(http::header::LINK, links);
                }
                r
            }
            None if set.is_gone(name) => text_reply(
                StatusCode::GONE,
                "this feed has been retired; please unsubscribe\n",
            ),
            None if set.pending().contains(name) => {
                retry_shortly("this feed is being built; try again shortly\n")
            }
            None => document_reply(None, headers),
        },
        // Archive pages are answered by `archive_reply` from the store (the
        // HTTP/1 fast path hands such requests to hyper); here only when
        // there is no archive to ask.
        Route::Archive { .. } | Route::NotFound => text_reply(StatusCode::NOT_FOUND, "not found\n"),
    };
    if method == Method::HEAD {
        // HEAD gets GET's headers, Content-Length included, and no body.
        reply.body = ReplyBody::Empty;
    }
    reply.route = kind;
    reply
}

/// `503 Service Unavailable` with `Retry-After: 10`, saying why: for what
/// is being built or cannot be read for a moment.
fn retry_shortly(text: &'static str) -> Reply {
    let mut r = text_reply(StatusCode::SERVICE_UNAVAILABLE, text);
    r.headers
        .insert(RETRY_AFTER, HeaderValue::from_static("10"));
    r
}

/// Whether `path` names an archive page (answered by `archive_reply`).
pub(crate) fn is_archive_path(path: &str) -> bool {
    matches!(routes::route(path), Route::Archive { .. })
}

/// A GET or HEAD of an archive page: the page from `archive`, with the same
/// negotiation and preconditions as any document.
pub(crate) async fn archive_reply(
    archive: &dyn ArchiveEndpoint,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Reply {
    let Route::Archive { name, page, format } = routes::route(path) else {
        return text_reply(StatusCode::NOT_FOUND, "not found\n");
    };
    let mut reply = match archive.page(name, page, format).await {
        ArchiveAnswer::Page(rep) => document_reply(Some(&rep), headers),
        ArchiveAnswer::NotFound => text_reply(StatusCode::NOT_FOUND, "not found\n"),
        ArchiveAnswer::Unavailable => {
            retry_shortly("the archive cannot be read now; try again shortly\n")
        }
    };
    if method == Method::HEAD {
        reply.body = ReplyBody::Empty;
    }
    reply.route = RouteKind::Archive;
    reply
}

/// The answer to a request the hub took.
pub(crate) fn hub_reply(answer: HubReply) -> Reply {
    let text = Bytes::from(answer.text + "\n");
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
    if let Some(secs) = answer.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    Reply {
        status: answer.status,
        headers,
        body: ReplyBody::Bytes(text),
        encoding: None,
        route: RouteKind::Websub,
    }
}

/// Whether `path` names the hub's endpoint.
pub(crate) fn is_hub_path(path: &str) -> bool {
    routes::route(path) == Route::Hub
}

/// A `200` with a body made for this request, never cached.
fn probe_reply(body: Bytes, content_type: &'static str) -> Reply {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Reply {
        status: StatusCode::OK,
        headers,
        body: ReplyBody::Bytes(body),
        encoding: None,
        route: RouteKind::Other,
    }
}

/// What is wrong with an HTTP/1.x request's framing headers, if anything;
/// such a request gets 400 and its connection is closed (RFC 9112 §3.2, §6.3).
pub(crate) fn framing_problem(http11: bool, headers: &HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if http11 => return Some("an HTTP/1.1 request needs a Host header\n"),
        (Some(_), Some(_)) => return Some("more than one Host header\n"),
        (Some(host), None) if !valid_host(host.as_bytes()) => {
            return Some("the Host header is not a host and port\n");
        }
        _ => {}
    }
    if content_length(headers).is_err() {
        return Some("invalid Content-Length\n");
    }
    None
}

/// `Host = uri-host [ ":" port ]`, or empty (RFC 9110 §7.2).
fn valid_host(value: &[u8]) -> bool {
    value.is_empty()
        || (!value.contains(&b'@')
            && http::uri::Authority::try_from(value).is_ok_and(|a| a.as_str().len() == value.len()))
}

/// The declared body length: `Content-Length` is one or more runs of digits
/// (`00` is a valid 0); repeated, in one field or several, every value must be
/// the same (RFC 9110 §8.6). `Ok(None)` when there is none.
pub(crate) fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ()> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let digits = part.trim_ascii();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(());
            }
            let mut n: u64 = 0;
            for d in digits {
                n = n
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(d - b'0')))
                    .ok_or(())?;
            }
            match length {
                Some(seen) if seen != n => return Err(()),
                _ => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// Counts one answered request in the metrics (atomic additions only) and
/// hands it to the access log. The log's off check comes first: with the
/// log off a request pays one atomic load for it. `target` is the request
/// target as sent (path and query).
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_access(
    shared: &Shared,
    peer: std::net::SocketAddr,
    method: &Method,
    target: &str,
    version: Version,
    headers: &HeaderMap,
    reply: &Reply,
    started: std::time::Instant,
) {
    let status = reply.status.as_u16();
    let conditional = Conditional::of(conditional::is_conditional(headers), status);
    crate::metrics::global()
        .http
        .record(&crate::metrics::Request {
            route: reply.route,
            status,
            coding: reply.encoding,
            conditional: conditional.name(),
            body_bytes: reply.body.len() as u64,
            elapsed: started.elapsed(),
        });
    if !shared.access_log.enabled() {
        return;
    }
    let protocol = match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    };
    shared.access_log.record(&Entry {
        peer,
        method: method.as_str(),
        target,
        protocol,
        status,
        body_bytes: reply.body.len() as u64,
        encoding: reply.encoding,
        conditional,
        started,
        user_agent: headers.get(USER_AGENT).map(HeaderValue::as_bytes),
        referer: headers.get(REFERER).map(HeaderValue::as_bytes),
    });
}

/// A 200, 304 or 412 for a published representation, or a 404 if there is none.
fn document_reply(rep: Option<&Arc<Representation>>, headers: &HeaderMap) -> Reply {
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
    let mut h = HeaderMap::with_capacity(8);
    // Values made when the document was published: cloning one shares its
    // bytes. They are always valid; one that was not would be left out.
    for (name, value) in [
        (ETAG, &variant.etag_header),
        (LAST_MODIFIED, &rep.last_modified_header),
        (CACHE_CONTROL, &rep.cache_control_header),
    ] {
        if let Some(v) = value {
            h.insert(name, v.clone());
        }
    }
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
        route: RouteKind::Other,
    }
}
