//! Content distribution: every change of a topic's document, pushed to each
//! subscriber and pinged to each external hub, with retries.
//!
//! The deliverer watches the publisher. When a published set changes it
//! compares each topic's ETag with the one it last announced and, for each
//! that moved, asks the store to announce it: only the replica whose
//! compare-and-set moves the stored ETag queues the deliveries, so replicas
//! sharing a store queue each change once. Then it claims due deliveries
//! (a lease keeps other replicas off them), sends them at most
//! `delivery_concurrency` at a time, and records the outcome: done, retried
//! after a back-off, or dropped once `retry_for` has passed. A push sends the
//! document this replica serves, and only if it is the one the change
//! produced: a replica that has not built it yet puts the delivery back for
//! a moment. It never builds documents or answers requests.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LINK};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};
use url::Url;

use super::client::Reach;
use super::{Inner, Stats, now_ms};
use crate::config::Format;
use crate::publish::{Body, PublishedSet, Representation};
use crate::store::{ArticleStore, Delivery, DeliveryKind};

/// How often the deliverer looks for due deliveries without being woken
/// (retries, other replicas' rows) and refreshes its `/healthz` figures.
const POLL: Duration = Duration::from_secs(1);
/// How often expired subscriptions are removed.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);
/// How soon a push is tried again by a replica that does not serve the
/// document its change produced yet.
const NOT_BUILT_YET: Duration = Duration::from_millis(250);
/// The first retry's delay; each failure doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The delay before retry number `attempts` (1 for the first failure).
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Every topic of `set` with the ETag of its document.
fn topics(inner: &Inner, set: &PublishedSet) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (name, docs) in set.feeds() {
        for (format, rep) in docs {
            out.insert(
                topic_url(&inner.settings().base, name.as_str(), *format),
                rep.identity.etag.to_string(),
            );
        }
    }
    out
}

fn topic_url(base: &str, name: &str, format: Format) -> String {
    format!("{base}/feeds/{name}.{}", format.extension())
}

/// Runs until `shutdown` completes.
pub(crate) async fn run(inner: Arc<Inner>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut published = inner.publisher.subscribe();
    let mut store_ready = inner.store.clone();
    let mut announced: HashMap<String, String> = HashMap::new();
    let mut sending = Sending::default();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_expiry = tokio::time::Instant::now() - EXPIRE_EVERY;
    loop {
        let Some(store) = inner.store() else {
            tokio::select! {
                () = &mut shutdown => break,
                changed = store_ready.changed() => if changed.is_err() { break },
            }
            continue;
        };
        // While WebSub is off (a reload may turn it on) nothing is announced
        // or sent; pending deliveries wait in the store.
        let enabled = inner.enabled();
        tokio::select! {
            () = &mut shutdown => break,
            changed = published.changed() => {
                if changed.is_err() {
                    break;
                }
                if enabled {
                    announce(&inner, store.as_ref(), &mut announced).await;
                }
            }
            () = inner.wake.notified() => {}
            _ = poll.tick() => {
                // A change announced while the store was failing is
                // announced again now.
                if enabled {
                    announce(&inner, store.as_ref(), &mut announced).await;
                    housekeeping(&inner, store.as_ref(), &mut last_expiry).await;
                }
            }
            Some(done) = sending.tasks.join_next_with_id(), if !sending.tasks.is_empty() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                sending.claimed.remove(&id);
            }
        }
        if enabled && inner.enabled() {
            claim(&inner, &store, &mut sending).await;
        }
    }
    // Deliveries cut off by the shutdown are put back at once, so the next
    // start (or another replica) need not wait for their leases to lapse.
    sending.tasks.abort_all();
    if let (Some(store), false) = (inner.store(), sending.claimed.is_empty())
        && let Some(ws) = store.websub()
    {
        let now = now_ms();
        for id in sending.claimed.into_values() {
            let _ = ws.retry_delivery(id, now, false, "").await;
        }
    }
}

/// The deliveries in flight, and which row each task holds.
#[derive(Default)]
struct Sending {
    tasks: JoinSet<()>,
    claimed: HashMap<tokio::task::Id, i64>,
}

/// Announces each topic whose ETag moved since this replica last did.
async fn announce(
    inner: &Inner,
    store: &dyn ArticleStore,
    announced: &mut HashMap<String, String>,
) {
    let Some(ws) = store.websub() else { return };
    let set = inner.publisher.snapshot();
    let external: Vec<String> = inner
        .settings()
        .config
        .hubs
        .iter()
        .map(Url::to_string)
        .collect();
    for (topic, etag) in topics(inner, &set) {
        if announced.get(&topic) == Some(&etag) {
            continue;
        }
        match ws.announce(&topic, &etag, &external, now_ms()).await {
            Ok(queued) => {
                if let Some(n) = queued {
                    info!(%topic, %etag, deliveries = n, "websub topic changed; deliveries queued");
                } else {
                    debug!(%topic, %etag, "websub topic change already announced");
                }
                announced.insert(topic, etag);
            }
            Err(e) => {
                warn!(%topic, error = %e, "websub: cannot announce a change; will try again");
                return;
            }
        }
    }
}

/// Expires ended leases now and then; refreshes the `/healthz` figures.
async fn housekeeping(
    inner: &Inner,
    store: &dyn ArticleStore,
    last_expiry: &mut tokio::time::Instant,
) {
    let Some(ws) = store.websub() else { return };
    let now = now_ms();
    if last_expiry.elapsed() >= EXPIRE_EVERY {
        *last_expiry = tokio::time::Instant::now();
        match ws.expire_subscriptions(now).await {
            Ok(0) => {}
            Ok(n) => info!(expired = n, "websub subscriptions expired"),
            Err(e) => warn!(error = %e, "websub: cannot expire subscriptions"),
        }
    }
    match ws.counts(now).await {
        Ok(counts) => inner.stats.set_counts(counts),
        Err(e) => debug!(error = %e, "websub: cannot count rows"),
    }
}

/// Claims as many due deliveries as there are free slots and starts them.
async fn claim(inner: &Arc<Inner>, store: &Arc<dyn ArticleStore>, sending: &mut Sending) {
    let Some(ws) = store.websub() else { return };
    loop {
        let free = inner.slots.available_permits();
        if free == 0 {
            return;
        }
        let now = now_ms();
        let lease = inner.settings().config.delivery_timeout + Duration::from_secs(30);
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(60_000));
        let claimed = match ws.claim_deliveries(now, until, free as i64).await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "websub: cannot claim deliveries");
                return;
            }
        };
        let full = claimed.len() >= free;
        for delivery in claimed {
            let Ok(slot) = inner.slots.clone().try_acquire_owned() else {
                // Verifications took the slot meanwhile: the lease lapses
                // and the delivery is claimed again.
                return;
            };
            let (inner, store, row) = (inner.clone(), store.clone(), delivery.id);
            let task = sending.tasks.spawn(async move {
                send(&inner, store.as_ref(), delivery).await;
                drop(slot);
            });
            sending.claimed.insert(task.id(), row);
        }
        if !full {
            return;
        }
    }
}

/// What one attempt came to.
enum Outcome {
    Done,
    /// The subscriber said 410 Gone: it wants no more.
    Gone,
    /// Not this replica's to send yet.
    NotBuilt,
    /// Nothing to send any more (unsubscribed, expired, feed retired).
    Obsolete(&'static str),
    Failed(String),
}

async fn send(inner: &Inner, store: &dyn ArticleStore, d: Delivery) {
    let Some(ws) = store.websub() else { return };
    let outcome = match d.kind {
        DeliveryKind::Push => push(inner, store, &d).await,
        DeliveryKind::Ping => ping(inner, &d).await,
    };
    let now = now_ms();
    let result = match outcome {
        Outcome::Done => {
            Stats::bump(&inner.stats.delivered);
            info!(kind = ?d.kind, topic = %d.topic, target = %d.target, etag = %d.etag,
                attempts = d.attempts + 1, "websub delivered");
            ws.delivered(d.id, &d.etag).await
        }
        Outcome::Gone => {
            info!(topic = %d.topic, callback = %d.target, "websub subscriber answered 410 Gone; unsubscribed");
            let _ = ws.remove_subscription(&d.topic, &d.target).await;
            ws.drop_delivery(d.id).await
        }
        Outcome::Obsolete(why) => {
            debug!(topic = %d.topic, target = %d.target, why, "websub delivery dropped");
            ws.drop_delivery(d.id).await
        }
        Outcome::NotBuilt if now - d.first_at < retry_for_ms(inner) => {
            let at = now + NOT_BUILT_YET.as_millis() as i64;
            ws.retry_delivery(d.id, at, false, "").await
        }
        Outcome::NotBuilt => {
            Stats::bump(&inner.stats.delivery_dropped);
            warn!(topic = %d.topic, target = %d.target, "websub delivery dropped: this replica never served its document");
            ws.drop_delivery(d.id).await
        }
        Outcome::Failed(error) => {
            Stats::bump(&inner.stats.delivery_failed);
            let attempts = d.attempts + 1;
            if now - d.first_at >= retry_for_ms(inner) {
                Stats::bump(&inner.stats.delivery_dropped);
                warn!(kind = ?d.kind, topic = %d.topic, target = %d.target, attempts, %error,
                    "websub delivery failed; retried for websub.retry_for, giving up");
                ws.drop_delivery(d.id).await
            } else {
                let delay = backoff(attempts);
                warn!(kind = ?d.kind, topic = %d.topic, target = %d.target, attempts, %error,
                    retry_in_s = delay.as_secs(), "websub delivery failed; will retry");
                let at = now.saturating_add(delay.as_millis() as i64);
                ws.retry_delivery(d.id, at, true, &error).await
            }
        }
    };
    if let Err(e) = result {
        // The lease lapses and the delivery is claimed again.
        warn!(error = %e, topic = %d.topic, target = %d.target, "websub: cannot record a delivery's outcome");
    }
}

fn retry_for_ms(inner: &Inner) -> i64 {
    i64::try_from(inner.settings().config.retry_for.as_millis()).unwrap_or(i64::MAX / 2)
}

/// The document `topic` names in `set`.
fn document(inner: &Inner, set: &PublishedSet, topic: &str) -> Option<Arc<Representation>> {
    let file = topic
        .strip_prefix(&inner.settings().base)?
        .strip_prefix("/feeds/")?;
    let (name, ext) = file.rsplit_once('.')?;
    let format = Format::ALL.into_iter().find(|f| f.extension() == ext)?;
    set.document(name, format).cloned()
}

/// The identity bytes of `rep`; a stored body is read off the runtime.
async fn bytes_of(rep: Arc<Representation>) -> Result<Bytes, String> {
    match &rep.identity.body {
        Body::Memory(b) => Ok(b.clone()),
        Body::Stored(region) => {
            let region = region.clone();
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; region.len()];
                region.read_at(&mut buf, 0).map(|()| Bytes::from(buf))
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the document: {e}"))
        }
    }
}

/// `sha256=` and the HMAC-SHA256 of `body` keyed with `secret`, in hex.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(body);
    format!(
        "sha256={}",
        super::verify::hex(&mac.finalize().into_bytes())
    )
}

async fn push(inner: &Inner, store: &dyn ArticleStore, d: &Delivery) -> Outcome {
    let Some(ws) = store.websub() else {
        return Outcome::Obsolete("no store");
    };
    let sub = match ws.subscription(&d.topic, &d.target).await {
        Ok(Some(sub)) if sub.expires_at > now_ms() => sub,
        Ok(_) => return Outcome::Obsolete("no live subscription"),
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    let Some(rep) = document(inner, &inner.publisher.snapshot(), &d.topic) else {
        return Outcome::Obsolete("the feed is no longer published");
    };
    if rep.identity.etag.to_string() != d.etag {
        return Outcome::NotBuilt;
    }
    let body = match bytes_of(rep.clone()).await {
        Ok(b) => b,
        Err(e) => return Outcome::Failed(e),
    };
    let Ok(callback) = Url::parse(&d.target) else {
        return Outcome::Obsolete("the callback is no URL");
    };
    let mut headers: Vec<(HeaderName, HeaderValue)> =
        vec![(CONTENT_TYPE, HeaderValue::from_static(rep.content_type))];
    let mut links = String::new();
    for hub in &inner.settings().hubs {
        links.push_str(&format!("<{hub}>; rel=\"hub\", "));
    }
    links.push_str(&format!("<{}>; rel=\"self\"", d.topic));
    if let Ok(v) = HeaderValue::from_str(&links) {
        headers.push((LINK, v));
    }
    if !sub.secret.is_empty()
        && let Ok(v) = HeaderValue::from_str(&signature(&sub.secret, &body))
    {
        headers.push((HeaderName::from_static("x-hub-signature"), v));
    }
    let answer = inner
        .settings()
        .client
        .send(
            Reach::Callback,
            http::Method::POST,
            &callback,
            headers,
            body,
            inner.settings().config.delivery_timeout,
            4096,
        )
        .await;
    match answer {
        Ok(a) if (200..300).contains(&a.status) => Outcome::Done,
        Ok(a) if a.status == 410 => Outcome::Gone,
        Ok(a) => Outcome::Failed(format!("the callback answered {}", a.status)),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// `hub.mode=publish&hub.url={topic}` to an external hub.
async fn ping(inner: &Inner, d: &Delivery) -> Outcome {
    let Ok(hub) = Url::parse(&d.target) else {
        return Outcome::Obsolete("the hub is no URL");
    };
    if !inner.settings().config.hubs.contains(&hub) {
        return Outcome::Obsolete("the hub is no longer configured");
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("hub.mode", "publish")
        .append_pair("hub.url", &d.topic)
        .finish();
    let answer = inner
        .settings()
        .client
        .send(
            Reach::Trusted,
            http::Method::POST,
            &hub,
            vec![(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
            Bytes::from(body),
            inner.settings().config.delivery_timeout,
            4096,
        )
        .await;
    match answer {
        Ok(a) if (200..300).contains(&a.status) => Outcome::Done,
        Ok(a) => Outcome::Failed(format!("the hub answered {}", a.status)),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(5));
        assert_eq!(backoff(2), Duration::from_secs(10));
        assert_eq!(backoff(4), Duration::from_secs(40));
        assert_eq!(backoff(30), Duration::from_secs(3600));
    }
}
