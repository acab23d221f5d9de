//! WebSub (W3C Recommendation, 2018): a hub built in, so subscribers are
//! pushed every change of a feed instead of polling for it.
//!
//! This module owns the hub's request side ([`WebSub`] answers `POST
//! /websub` for the server through [`HubEndpoint`]: parsing and checking a
//! subscription request, the per-client rate and the subscription limits,
//! then verifying intent in the background, [`verify`]) and its delivery
//! side ([`deliver`]: turning a published change into delivery rows and
//! sending them, with retries). Outbound requests go through [`client`],
//! which refuses callbacks on internal addresses. Subscriptions and pending
//! deliveries live in the article store (`store::websub`), so they survive a
//! restart and replicas sharing a store deliver each change once. The
//! server and the publisher know nothing of this module: the server holds a
//! `dyn HubEndpoint`, and the deliverer watches the publisher's changes.

pub mod client;
pub mod deliver;
pub mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, StatusCode};
use tokio::sync::{Notify, Semaphore, watch};
use tracing::{debug, info, warn};
use url::Url;

use crate::config::{Config, Format, WebSubConfig};
use crate::publish::Publisher;
use crate::server::conn::AddressKey;
use crate::server::{HubEndpoint, HubReply};
use crate::store::{ArticleStore, Subscription, WebSubCounts};
use client::{AddressPolicy, HubClient};
use verify::Mode;

/// The longest callback URL taken.
pub const MAX_CALLBACK_BYTES: usize = 2048;
/// Client addresses the per-minute rate remembers at most.
const MAX_CLIENTS: usize = 100_000;
/// `hub.secret` must be shorter than this (WebSub §5.1).
pub const MAX_SECRET_BYTES: usize = 200;

/// The hub's counters and the store's figures, for `/healthz`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Subscription requests accepted (202).
    pub accepted: AtomicU64,
    /// Requests refused for their content (400, 404, 415).
    pub invalid: AtomicU64,
    /// Requests refused by the per-client rate (429).
    pub rate_limited: AtomicU64,
    /// Requests refused by the subscription limits (403, 503).
    pub over_limit: AtomicU64,
    /// Request bodies over the size limit (413).
    pub too_large: AtomicU64,
    /// Verifications the callback confirmed.
    pub verified: AtomicU64,
    /// Verifications that failed or were refused.
    pub verify_failed: AtomicU64,
    /// Deliveries (pushes and pings) that succeeded.
    pub delivered: AtomicU64,
    /// Delivery attempts that failed.
    pub delivery_failed: AtomicU64,
    /// Deliveries given up after `retry_for`.
    pub delivery_dropped: AtomicU64,
    /// The store's figures as last read.
    counts: Mutex<Option<WebSubCounts>>,
}

impl Stats {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the store's latest figures.
    pub fn set_counts(&self, counts: WebSubCounts) {
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner) = Some(counts);
    }

    /// The `websub` object of `/healthz`.
    pub fn report(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let counts = *self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::json!({
            "subscriptions": counts.map(|c| c.subscriptions),
            "deliveries_pending": counts.map(|c| c.deliveries_pending),
            "deliveries_failing": counts.map(|c| c.deliveries_failing),
            "requests_accepted": get(&self.accepted),
            "requests_invalid": get(&self.invalid),
            "requests_rate_limited": get(&self.rate_limited),
            "requests_over_limit": get(&self.over_limit),
            "requests_too_large": get(&self.too_large),
            "verified": get(&self.verified),
            "verify_failed": get(&self.verify_failed),
            "delivered": get(&self.delivered),
            "delivery_failed": get(&self.delivery_failed),
            "delivery_dropped": get(&self.delivery_dropped),
        })
    }
}

/// Why the hub cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebSubError {
    /// The outbound client's TLS set-up failed.
    #[error("websub: cannot set up the outbound client: {0}")]
    Client(#[from] rustls::Error),
}

/// The hub: cheap to clone, shared by the server and the deliverer.
#[derive(Clone)]
pub struct WebSub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WebSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSub")
            .field("hubs", &self.inner.settings().hubs)
            .finish_non_exhaustive()
    }
}

/// What the hub takes from the configuration in force; replaced whole when a
/// reload changes it.
pub(crate) struct Settings {
    config: WebSubConfig,
    /// `server.base_url` without its trailing slash: topics are under it.
    base: String,
    /// Every hub advertised, ours first; empty while WebSub is off.
    hubs: Vec<String>,
    client: HubClient,
}

impl Settings {
    /// The settings of `config`; `client` is kept when the address policy
    /// and the base URL (its User-Agent) are the same.
    fn of(config: &Config, previous: Option<&Settings>) -> Result<Self, WebSubError> {
        let base = config
            .server
            .base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        let client = match previous {
            Some(p)
                if p.base == base && p.config.allow_callbacks == config.websub.allow_callbacks =>
            {
                p.client.clone()
            }
            _ => {
                let policy = AddressPolicy::new(config.websub.allow_callbacks.clone());
                let user_agent = format!(
                    "feedsmith/{} WebSub hub (+{base}/websub)",
                    env!("CARGO_PKG_VERSION")
                );
                HubClient::new(policy, &user_agent)?
            }
        };
        Ok(Self {
            hubs: crate::builder::hub_urls(config),
            config: config.websub.clone(),
            base,
            client,
        })
    }
}

pub(crate) struct Inner {
    /// Swapped whole on a reload; a request or a delivery works with the
    /// settings it started with.
    settings: ArcSwap<Settings>,
    publisher: Arc<Publisher>,
    store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
    /// Requests per client in the current minute. A std mutex: each use is
    /// one map lookup, never held across an await.
    rate: Mutex<HashMap<AddressKey, (Instant, usize)>>,
    /// Verifications and deliveries in flight share this many slots
    /// (`delivery_concurrency` at start-up).
    slots: Arc<Semaphore>,
    stats: Stats,
    /// Wakes the deliverer: a subscription changed, or a delivery may be due.
    wake: Notify,
}

/// Milliseconds since the Unix epoch, the store's time.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl WebSub {
    /// The hub for `config`, serving the topics `publisher` publishes and
    /// keeping its rows in the store `store` yields once opened. It answers
    /// and delivers only while `[websub] enabled` is set, which a reload may
    /// change ([`WebSub::follow`]).
    pub fn new(
        config: &Config,
        publisher: Arc<Publisher>,
        store: watch::Receiver<Option<Arc<dyn ArticleStore>>>,
    ) -> Result<Self, WebSubError> {
        Ok(Self {
            inner: Arc::new(Inner {
                settings: ArcSwap::from_pointee(Settings::of(config, None)?),
                publisher,
                store,
                rate: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(config.websub.delivery_concurrency.max(1))),
                stats: Stats::default(),
                wake: Notify::new(),
            }),
        })
    }

    /// Applies each configuration the scheduler applies: `[websub]` (but
    /// `delivery_concurrency`, fixed at start-up) and the base URL.
    pub async fn follow(&self, mut applied: watch::Receiver<Arc<Config>>) {
        loop {
            if applied.changed().await.is_err() {
                return;
            }
            let config = applied.borrow_and_update().clone();
            let current = self.inner.settings();
            let base = config.server.base_url.as_str().trim_end_matches('/');
            if current.config == config.websub && current.base == base {
                continue;
            }
            match Settings::of(&config, Some(&current)) {
                Ok(next) => {
                    info!(enabled = next.config.enabled, hubs = ?next.hubs, "websub settings applied");
                    self.inner.settings.store(Arc::new(next));
                    self.inner.wake.notify_one();
                }
                Err(e) => warn!(error = %e, "websub: keeping the previous settings"),
            }
        }
    }

    /// Whether the hub answers and delivers now.
    pub fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    /// The `websub` object of `/healthz`.
    pub fn report(&self) -> serde_json::Value {
        let mut report = self.inner.stats.report();
        if let Some(fields) = report.as_object_mut() {
            fields.insert("enabled".into(), self.enabled().into());
        }
        report
    }

    /// Runs the deliverer until `shutdown` completes.
    pub async fn deliver(&self, shutdown: impl std::future::Future<Output = ()>) {
        deliver::run(self.inner.clone(), shutdown).await;
    }
}

impl Inner {
    /// The settings in force.
    fn settings(&self) -> Arc<Settings> {
        self.settings.load_full()
    }

    /// Whether `[websub] enabled` is set now.
    fn enabled(&self) -> bool {
        self.settings.load().config.enabled
    }

    /// The store, once the scheduler has opened it.
    fn store(&self) -> Option<Arc<dyn ArticleStore>> {
        self.store.borrow().clone()
    }

    /// The published feed and format `topic` names, if it is one of ours.
    fn topic(&self, topic: &str) -> Option<(String, Format)> {
        let file = topic
            .strip_prefix(&self.settings().base)?
            .strip_prefix("/feeds/")?;
        let (name, ext) = file.rsplit_once('.')?;
        let format = Format::ALL.into_iter().find(|f| f.extension() == ext)?;
        self.publisher
            .snapshot()
            .document(name, format)
            .is_some()
            .then(|| (name.to_owned(), format))
    }

    /// Counts a request from `peer`; `false` when it is over the rate.
    fn admit(&self, peer: IpAddr) -> bool {
        let limit = self.settings.load().config.requests_per_minute;
        let mut rate = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // Clients seen in earlier minutes are forgotten before the map can
        // grow; past MAX_CLIENTS in one minute (a flood from many addresses)
        // a new client is refused rather than remembered.
        if rate.len() > 10_000 {
            rate.retain(|_, (since, _)| now.duration_since(*since) < Duration::from_secs(60));
        }
        let key = AddressKey::of(peer);
        if rate.len() >= MAX_CLIENTS && !rate.contains_key(&key) {
            return false;
        }
        let entry = rate.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }

    /// The `Link` header of a feed response.
    fn links(&self, feed: &str, format: Format) -> Option<HeaderValue> {
        // On every feed response: a guard, not a copy of the settings.
        let settings = self.settings.load();
        let mut value = String::new();
        for hub in &settings.hubs {
            value.push_str(&format!("<{hub}>; rel=\"hub\", "));
        }
        value.push_str(&format!(
            "<{}/feeds/{feed}.{}>; rel=\"self\"",
            settings.base,
            format.extension()
        ));
        HeaderValue::from_str(&value).ok()
    }
}

fn reply(status: StatusCode, text: impl Into<String>) -> HubReply {
    HubReply {
        status,
        text: text.into(),
        retry_after: None,
    }
}

/// A checked subscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Subscribe or unsubscribe.
    pub mode: Mode,
    /// One of our feed URLs, exactly as given.
    pub topic: String,
    /// Where to verify and deliver.
    pub callback: Url,
    /// The lease the hub grants (subscribe only).
    pub lease: Duration,
    /// `hub.secret`, if given.
    pub secret: Option<String>,
}

/// Reads a form body into a request, or says what is wrong (a 400). The
/// topic is not checked here; unknown parameters are ignored (§5.1).
pub fn parse(body: &[u8], config: &WebSubConfig) -> Result<Request, String> {
    let mut fields: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k.starts_with("hub.") && fields.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("{k} is given more than once"));
        }
    }
    let mode = match fields.get("hub.mode").map(String::as_str) {
        Some("subscribe") => Mode::Subscribe,
        Some("unsubscribe") => Mode::Unsubscribe,
        Some("publish") => {
            return Err("hub.mode=publish: this hub publishes its own feeds only".into());
        }
        Some(other) => {
            return Err(format!(
                "hub.mode {other:?} is not subscribe or unsubscribe"
            ));
        }
        None => return Err("hub.mode is missing".into()),
    };
    let topic = fields
        .get("hub.topic")
        .filter(|t| !t.is_empty())
        .ok_or("hub.topic is missing")?
        .clone();
    let callback = fields
        .get("hub.callback")
        .filter(|c| !c.is_empty())
        .ok_or("hub.callback is missing")?;
    if callback.len() > MAX_CALLBACK_BYTES {
        return Err(format!(
            "hub.callback is longer than {MAX_CALLBACK_BYTES} bytes"
        ));
    }
    let callback = Url::parse(callback)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or("hub.callback is not an absolute http or https URL")?;
    if callback.fragment().is_some() || !callback.username().is_empty() {
        return Err("hub.callback must have no fragment and no user name".into());
    }
    let lease = match fields.get("hub.lease_seconds").filter(|l| !l.is_empty()) {
        None => config.lease_default,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs).min(config.lease_max),
            _ => {
                return Err(format!(
                    "hub.lease_seconds {text:?} is not a positive whole number"
                ));
            }
        },
    };
    let secret = match fields.get("hub.secret") {
        None => None,
        Some(s) if s.len() >= MAX_SECRET_BYTES => {
            return Err(format!(
                "hub.secret must be shorter than {MAX_SECRET_BYTES} bytes"
            ));
        }
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.clone()),
    };
    Ok(Request {
        mode,
        topic,
        callback,
        lease,
        secret,
    })
}

impl HubEndpoint for WebSub {
    fn enabled(&self) -> bool {
        self.inner.enabled()
    }

    fn max_request_bytes(&self) -> usize {
        self.inner.settings().config.max_request_bytes
    }

    fn too_large(&self) {
        Stats::bump(&self.inner.stats.too_large);
    }

    fn handle(
        &self,
        peer: IpAddr,
        content_type: Option<String>,
        body: Bytes,
    ) -> BoxFuture<'static, HubReply> {
        let inner = self.inner.clone();
        Box::pin(async move { handle(&inner, peer, content_type.as_deref(), &body).await })
    }

    fn links(&self, feed: &str, format: Format) -> Option<HeaderValue> {
        self.inner
            .enabled()
            .then(|| self.inner.links(feed, format))?
    }
}

/// One subscription request, answered: 202 and verification in the
/// background, or the reason it is refused.
async fn handle(
    inner: &Arc<Inner>,
    peer: IpAddr,
    content_type: Option<&str>,
    body: &[u8],
) -> HubReply {
    let stats = &inner.stats;
    if !inner.admit(peer) {
        Stats::bump(&stats.rate_limited);
        debug!(%peer, "websub request over the per-client rate");
        return HubReply {
            retry_after: Some(60),
            ..reply(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "more than {} subscription requests a minute from your address",
                    inner.settings().config.requests_per_minute
                ),
            )
        };
    }
    let form = content_type
        .and_then(|t| t.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        Stats::bump(&stats.invalid);
        return reply(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/x-www-form-urlencoded",
        );
    }
    let request = match parse(body, &inner.settings().config) {
        Ok(r) => r,
        Err(reason) => {
            Stats::bump(&stats.invalid);
            debug!(%peer, %reason, "websub request refused");
            return reply(StatusCode::BAD_REQUEST, reason);
        }
    };
    if let Err(e) = inner.settings().client.check(&request.callback) {
        Stats::bump(&stats.invalid);
        info!(%peer, callback = %request.callback, error = %e, "websub callback refused");
        return reply(StatusCode::FORBIDDEN, e.to_string());
    }
    if inner.topic(&request.topic).is_none() {
        Stats::bump(&stats.invalid);
        let reason = format!("hub.topic {} is not a feed of this hub", request.topic);
        info!(%peer, topic = %request.topic, callback = %request.callback, "websub subscription denied: unknown topic");
        // WebSub §5.2: a denied subscription is also reported to the callback.
        let (inner2, req) = (inner.clone(), request.clone());
        let why = reason.clone();
        tokio::spawn(async move {
            let Ok(_slot) = inner2.slots.clone().try_acquire_owned() else {
                return;
            };
            let _ = verify::deny(
                &inner2.settings().client,
                &req.callback,
                &req.topic,
                &why,
                inner2.settings().config.verify_timeout,
            )
            .await;
        });
        return reply(StatusCode::NOT_FOUND, reason);
    }
    let Some(store) = inner.store() else {
        return HubReply {
            retry_after: Some(10),
            ..reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hub is starting; try again shortly",
            )
        };
    };
    let Some(ws) = store.websub() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "this store keeps no subscriptions",
        );
    };
    let host = request.callback.host_str().unwrap_or_default().to_owned();
    if request.mode == Mode::Subscribe {
        let now = now_ms();
        let existing = ws
            .subscription(&request.topic, request.callback.as_str())
            .await;
        let counts = ws.count_subscriptions(&host, now).await;
        match (existing, counts) {
            (Ok(existing), Ok((total, on_host))) => {
                // A renewal takes no new room.
                let renewal = existing.is_some_and(|s| s.expires_at > now);
                if !renewal && total >= inner.settings().config.max_subscriptions as i64 {
                    Stats::bump(&stats.over_limit);
                    warn!(
                        limit = inner.settings().config.max_subscriptions,
                        "websub subscription limit reached; refusing new subscriptions"
                    );
                    return HubReply {
                        retry_after: Some(3600),
                        ..reply(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the hub has as many subscriptions as it takes",
                        )
                    };
                }
                if !renewal && on_host >= inner.settings().config.max_per_callback_host as i64 {
                    Stats::bump(&stats.over_limit);
                    return reply(
                        StatusCode::FORBIDDEN,
                        format!("callback host {host} has as many subscriptions as it may hold"),
                    );
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "websub: cannot read subscriptions");
                return HubReply {
                    retry_after: Some(10),
                    ..reply(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the hub cannot reach its store; try again shortly",
                    )
                };
            }
        }
    }
    let Ok(slot) = inner.slots.clone().try_acquire_owned() else {
        Stats::bump(&stats.over_limit);
        return HubReply {
            retry_after: Some(5),
            ..reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "the hub is busy verifying; try again shortly",
            )
        };
    };
    Stats::bump(&stats.accepted);
    info!(%peer, mode = request.mode.as_str(), topic = %request.topic, callback = %request.callback, "websub request accepted");
    let inner = inner.clone();
    tokio::spawn(async move {
        verify_and_apply(&inner, request, host).await;
        drop(slot);
    });
    reply(
        StatusCode::ACCEPTED,
        "accepted; verification of intent follows",
    )
}

/// Verifies intent with the callback, then saves or removes the subscription.
async fn verify_and_apply(inner: &Inner, request: Request, host: String) {
    let lease = (request.mode == Mode::Subscribe).then_some(request.lease);
    let outcome = verify::verify(
        &inner.settings().client,
        &request.callback,
        request.mode,
        &request.topic,
        lease,
        inner.settings().config.verify_timeout,
    )
    .await;
    if let Err(e) = outcome {
        Stats::bump(&inner.stats.verify_failed);
        info!(mode = request.mode.as_str(), topic = %request.topic, callback = %request.callback, error = %e, "websub verification failed; nothing changed");
        return;
    }
    let Some(store) = inner.store() else { return };
    let Some(ws) = store.websub() else { return };
    let saved = match request.mode {
        Mode::Subscribe => {
            let sub = Subscription {
                topic: request.topic.clone(),
                callback: request.callback.to_string(),
                callback_host: host,
                secret: request.secret.unwrap_or_default(),
                expires_at: now_ms().saturating_add(
                    i64::try_from(request.lease.as_millis()).unwrap_or(i64::MAX / 2),
                ),
            };
            ws.save_subscription(&sub).await
        }
        Mode::Unsubscribe => ws
            .remove_subscription(&request.topic, request.callback.as_str())
            .await
            .map(drop),
    };
    match saved {
        Ok(()) => {
            Stats::bump(&inner.stats.verified);
            info!(mode = request.mode.as_str(), topic = %request.topic, callback = %request.callback,
                lease_s = lease.map(|l| l.as_secs()), "websub verified");
            inner.wake.notify_one();
        }
        Err(e) => {
            Stats::bump(&inner.stats.verify_failed);
            warn!(error = %e, topic = %request.topic, callback = %request.callback, "websub: verified but not saved");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebSubConfig {
        WebSubConfig {
            lease_default: Duration::from_secs(100),
            lease_max: Duration::from_secs(1000),
            ..WebSubConfig::default()
        }
    }

    #[test]
    fn a_typical_request_parses_and_unknown_parameters_are_ignored() {
        let body = b"hub.mode=subscribe&hub.topic=https%3A%2F%2Fn.example%2Ffeeds%2Fa.rss\
                     &hub.callback=https%3A%2F%2Fs.example%2Fcb%3Fx%3D1&foo=bar&hub.extra=1";
        let r = parse(body, &config()).expect("valid");
        assert_eq!(r.mode, Mode::Subscribe);
        assert_eq!(r.topic, "https://n.example/feeds/a.rss");
        assert_eq!(r.callback.as_str(), "https://s.example/cb?x=1");
        assert_eq!(r.lease, Duration::from_secs(100), "the default lease");
        assert_eq!(r.secret, None);
    }

    #[test]
    fn leases_are_capped_and_secrets_bounded() {
        let base = "hub.mode=subscribe&hub.topic=t&hub.callback=http%3A%2F%2Fs.example%2F";
        let r = parse(
            format!("{base}&hub.lease_seconds=99999").as_bytes(),
            &config(),
        )
        .expect("valid");
        assert_eq!(r.lease, Duration::from_secs(1000));
        let long = "s".repeat(200);
        let err = parse(format!("{base}&hub.secret={long}").as_bytes(), &config())
            .expect_err("a 200-byte secret");
        assert!(err.contains("shorter than 200"), "{err}");
        let ok = "s".repeat(199);
        let r = parse(format!("{base}&hub.secret={ok}").as_bytes(), &config()).expect("valid");
        assert_eq!(r.secret.as_deref(), Some(ok.as_str()));
    }

    #[test]
    fn bad_requests_say_what_is_wrong() {
        for (body, says) in [
            (
                "hub.topic=t&hub.callback=http%3A%2F%2Fs%2F",
                "hub.mode is missing",
            ),
            (
                "hub.mode=watch&hub.topic=t&hub.callback=http%3A%2F%2Fs%2F",
                "not subscribe",
            ),
            (
                "hub.mode=subscribe&hub.callback=http%3A%2F%2Fs%2F",
                "hub.topic is missing",
            ),
            ("hub.mode=subscribe&hub.topic=t", "hub.callback is missing"),
            (
                "hub.mode=subscribe&hub.topic=t&hub.callback=ftp%3A%2F%2Fs%2F",
                "http or https",
            ),
            (
                "hub.mode=subscribe&hub.topic=t&hub.callback=http%3A%2F%2Fs%2F&hub.lease_seconds=-1",
                "lease_seconds",
            ),
            (
                "hub.mode=subscribe&hub.mode=unsubscribe&hub.topic=t&hub.callback=http%3A%2F%2Fs%2F",
                "more than once",
            ),
        ] {
            let err = parse(body.as_bytes(), &config()).expect_err(body);
            assert!(err.contains(says), "{body}: {err}");
        }
    }
}
