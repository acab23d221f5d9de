//! What `/healthz` reports: the service's faults and how fresh its data is.
//!
//! The scheduler records each state change here (store lost or back, its
//! write notifications lost or back, a feed's build failing or recovering, a
//! configuration rejected or applied) and logs it once, at the change — never
//! once per poll. The `source` task records each pulled source's status here
//! (and logs its own changes). The server only reads.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{error, info, warn};

use crate::config::{FeedName, SourceName};

/// A fault and when it began.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    reason: String,
    since: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    store: Option<Fault>,
    feeds: BTreeMap<FeedName, Fault>,
    config: Option<Fault>,
    output: Option<Fault>,
    /// The store cannot tell about writes (its LISTEN connection is down).
    notifications: Option<Fault>,
    /// The last time the store answered.
    last_store_poll: Option<DateTime<Utc>>,
    /// Each pulled source's status, as the `source` task last reported it.
    sources: BTreeMap<SourceName, SourceHealth>,
}

/// How a pulled source is doing, for `/healthz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceStatus {
    /// Not fetched yet (since it was added or the service started with no
    /// saved state).
    Pending,
    /// The last fetch succeeded (`200` imported, or `304`).
    Ok,
    /// The last fetch failed; retried after a back-off.
    Failing,
    /// The upstream asked to wait (`429` or `503`); retried after its
    /// `Retry-After` or a back-off.
    BackingOff,
    /// The upstream answered `410 Gone`: not fetched again until its file
    /// changes.
    Gone,
}

/// One pulled source in `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceHealth {
    /// The upstream feed's URL.
    pub url: String,
    /// What the last fetch came to.
    pub status: SourceStatus,
    /// When a fetch last succeeded.
    pub last_success: Option<DateTime<Utc>>,
    /// Why fetching fails, while it does.
    pub last_error: Option<String>,
    /// When the current failure began.
    pub error_since: Option<DateTime<Utc>>,
    /// When it is fetched next; `None` when it is gone (or not yet planned).
    pub next_fetch: Option<DateTime<Utc>>,
}

/// Shared between the scheduler (writer) and the server (reader).
#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug, Serialize)]
struct ErrorReport {
    component: String,
    reason: String,
    since: String,
}

impl Health {
    /// Starts with no faults, at configuration generation `generation`.
    pub fn new(generation: u64) -> Self {
        Self {
            state: Mutex::new(State {
                generation,
                ..State::default()
            }),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A panic while holding this lock cannot leave the state half-written
        // in a way that matters for a report, so a poisoned lock is used as is.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// How many configurations have been applied (the first one counts), as
    /// `/healthz` reports it in `config_generation`.
    pub fn generation(&self) -> u64 {
        self.with(|s| s.generation)
    }

    /// The store answered at `now`.
    pub fn store_ok(&self, now: DateTime<Utc>) {
        let recovered = self.with(|s| {
            s.last_store_poll = Some(now);
            s.store.take()
        });
        if let Some(fault) = recovered {
            info!(
                down_for = %humantime::format_duration(
                    (now - fault.since).to_std().unwrap_or_default()
                ),
                "store reachable again; catching up"
            );
        }
    }

    /// The store could not be reached or a query failed.
    pub fn store_failed(&self, now: DateTime<Utc>, reason: String, retry_in: std::time::Duration) {
        let changed = self.with(|s| set_fault(&mut s.store, now, &reason));
        if changed {
            warn!(
                %reason,
                retry_in = %humantime::format_duration(retry_in),
                "store unavailable; serving the last published feeds"
            );
        }
    }

    /// The feed built; clears (and logs the end of) any fault it had.
    pub fn feed_ok(&self, feed: &FeedName) {
        if let Some(fault) = self.with(|s| s.feeds.remove(feed)) {
            info!(%feed, failed_since = %fault.since.to_rfc3339(), "feed builds again");
        }
    }

    /// The feed's build failed at `now` for `reason`. Logged only when the feed was
    /// fine before or the reason changed; `since` stays at the first failure.
    pub fn feed_failed(&self, feed: &FeedName, now: DateTime<Utc>, reason: String) {
        let changed = self.with(|s| {
            let entry = s.feeds.entry(feed.clone());
            match entry {
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let changed = o.get().reason != reason;
                    if changed {
                        o.get_mut().reason = reason.clone();
                    }
                    changed
                }
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Fault {
                        reason: reason.clone(),
                        since: now,
                    });
                    true
                }
            }
        });
        if changed {
            warn!(%feed, %reason, "feed not rebuilt; keeping its last published documents");
        }
    }

    /// A feed that no longer exists has no faults to report.
    pub fn forget_feed(&self, feed: &FeedName) {
        self.with(|s| s.feeds.remove(feed));
    }

    /// Records how pulled source `name` is doing. The `source` task logs
    /// the changes; this only makes them visible in `/healthz`.
    pub fn source(&self, name: &SourceName, health: SourceHealth) {
        self.with(|s| s.sources.insert(name.clone(), health));
    }

    /// A source no longer configured has nothing to report.
    pub fn forget_source(&self, name: &SourceName) {
        self.with(|s| s.sources.remove(name));
    }

    /// The output folder was written; clears (and logs the end of) any fault.
    pub fn output_ok(&self) {
        if self.with(|s| s.output.take()).is_some() {
            info!("output folder written again");
        }
    }

    /// Writing the output folder failed at `now`; logged only when the fault is new
    /// or its reason changed. Serving from memory carries on.
    pub fn output_failed(&self, now: DateTime<Utc>, reason: String) {
        crate::metrics::global().output_failed();
        if self.with(|s| set_fault(&mut s.output, now, &reason)) {
            error!(%reason, "cannot write the output folder; still serving from memory");
        }
    }

    /// Whether the store can tell about writes as they commit. The store
    /// logs the change itself; this only makes it visible in `/healthz`.
    pub fn notifications(&self, fault: Option<String>, now: DateTime<Utc>) {
        self.with(|s| match fault {
            Some(reason) => {
                set_fault(&mut s.notifications, now, &reason);
            }
            None => s.notifications = None,
        });
    }

    /// A new configuration was applied.
    pub fn config_applied(&self) -> u64 {
        crate::metrics::global().reload(true);
        self.with(|s| {
            s.config = None;
            s.generation += 1;
            s.generation
        })
    }

    /// An edited configuration was refused; the running one stays.
    pub fn config_rejected(&self, now: DateTime<Utc>, reason: String) {
        crate::metrics::global().reload(false);
        self.with(|s| set_fault(&mut s.config, now, &reason));
    }

    /// The `/healthz` body. `published_at` is when the served set last changed.
    pub fn report(
        &self,
        now: DateTime<Utc>,
        feeds: usize,
        published_at: Option<DateTime<Utc>>,
    ) -> serde_json::Value {
        self.with(|s| {
            let mut errors = Vec::new();
            let mut add = |component: String, fault: &Fault| {
                errors.push(ErrorReport {
                    component,
                    reason: fault.reason.clone(),
                    since: fault.since.to_rfc3339(),
                })
            };
            if let Some(f) = &s.store {
                add("store".into(), f);
            }
            for (feed, f) in &s.feeds {
                add(format!("feed {feed}"), f);
            }
            if let Some(f) = &s.config {
                add("config".into(), f);
            }
            if let Some(f) = &s.output {
                add("output".into(), f);
            }
            if let Some(f) = &s.notifications {
                add("store notifications".into(), f);
            }
            // A failing upstream is a fault to list (the admin may need to
            // act), but `/healthz` still answers 200: the service itself
            // serves, and a load balancer must not take it out over someone
            // else's feed.
            for (name, source) in &s.sources {
                let failing = matches!(
                    source.status,
                    SourceStatus::Failing | SourceStatus::BackingOff | SourceStatus::Gone
                );
                if let (true, Some(reason)) = (failing, &source.last_error) {
                    add(
                        format!("source {name}"),
                        &Fault {
                            reason: reason.clone(),
                            since: source.error_since.unwrap_or(now),
                        },
                    );
                }
            }
            let status = if errors.is_empty() { "ok" } else { "degraded" };
            // How old the served data may be: the time since the store last
            // confirmed it (null before the store has ever answered).
            let data_age = s.last_store_poll.map(|t| (now - t).num_seconds().max(0));
            let time = |t: &Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
            let sources: serde_json::Map<String, serde_json::Value> = s
                .sources
                .iter()
                .map(|(name, h)| {
                    (
                        name.to_string(),
                        serde_json::json!({
                            "url": h.url,
                            "status": h.status,
                            "last_success": time(&h.last_success),
                            "last_error": h.last_error,
                            "error_since": time(&h.error_since),
                            "next_fetch": time(&h.next_fetch),
                        }),
                    )
                })
                .collect();
            serde_json::json!({
                "status": status,
                "config_generation": s.generation,
                "feeds": feeds,
                "published_at": published_at.map(|t| t.to_rfc3339()),
                "last_store_poll": s.last_store_poll.map(|t| t.to_rfc3339()),
                "data_age_seconds": data_age,
                "errors": errors,
                "sources": sources,
            })
        })
    }
}

/// Records `reason` in `slot`; true when that is a change of state (not the
/// same fault seen again), which is when it is worth a log line.
fn set_fault(slot: &mut Option<Fault>, now: DateTime<Utc>, reason: &str) -> bool {
    match slot {
        Some(f) if f.reason == reason => false,
        Some(f) => {
            f.reason = reason.to_owned();
            true
        }
        None => {
            *slot = Some(Fault {
                reason: reason.to_owned(),
                since: now,
            });
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("valid")
    }

    #[test]
    fn degraded_while_any_fault_lasts_and_ok_after() {
        let h = Health::new(1);
        h.store_ok(at(0));
        assert_eq!(h.report(at(5), 2, None)["status"], "ok");
        assert_eq!(h.report(at(5), 2, None)["data_age_seconds"], 5);
        h.store_failed(at(10), "connection refused".into(), Default::default());
        let r = h.report(at(70), 2, None);
        assert_eq!(r["status"], "degraded");
        assert_eq!(r["errors"][0]["component"], "store");
        assert_eq!(r["errors"][0]["reason"], "connection refused");
        assert_eq!(r["data_age_seconds"], 70);
        h.store_ok(at(80));
        assert_eq!(h.report(at(80), 2, None)["status"], "ok");
    }

    #[test]
    fn repeated_faults_are_one_state_change() {
        let mut slot = None;
        assert!(set_fault(&mut slot, at(0), "down"));
        assert!(!set_fault(&mut slot, at(5), "down"));
        assert!(set_fault(&mut slot, at(9), "other"));
        assert_eq!(
            slot.map(|f| f.since),
            Some(at(0)),
            "the fault began at the first report"
        );
    }

    #[test]
    fn lost_write_notifications_degrade_until_they_are_back() {
        let h = Health::new(1);
        h.store_ok(at(0));
        h.notifications(Some("lost the connection".into()), at(3));
        h.notifications(Some("cannot listen: refused".into()), at(7));
        let r = h.report(at(9), 2, None);
        assert_eq!(r["status"], "degraded");
        assert_eq!(r["errors"][0]["component"], "store notifications");
        assert_eq!(r["errors"][0]["reason"], "cannot listen: refused");
        assert_eq!(r["errors"][0]["since"], at(3).to_rfc3339());
        h.notifications(None, at(12));
        assert_eq!(h.report(at(12), 2, None)["status"], "ok");
    }

    #[test]
    fn a_failing_source_is_listed_and_a_recovered_one_is_not() {
        let h = Health::new(1);
        let name: SourceName = "wire".parse().expect("name");
        let failing = SourceHealth {
            url: "https://wire.example/feed.xml".into(),
            status: SourceStatus::Failing,
            last_success: None,
            last_error: Some("the upstream answered 500 Internal Server Error".into()),
            error_since: Some(at(3)),
            next_fetch: Some(at(63)),
        };
        h.source(&name, failing.clone());
        let r = h.report(at(9), 2, None);
        assert_eq!(r["status"], "degraded");
        assert_eq!(r["errors"][0]["component"], "source wire");
        assert_eq!(r["errors"][0]["since"], at(3).to_rfc3339());
        assert_eq!(r["sources"]["wire"]["status"], "failing");
        assert_eq!(r["sources"]["wire"]["next_fetch"], at(63).to_rfc3339());
        h.source(
            &name,
            SourceHealth {
                status: SourceStatus::Ok,
                last_success: Some(at(70)),
                last_error: None,
                error_since: None,
                ..failing
            },
        );
        let r = h.report(at(71), 2, None);
        assert_eq!(r["status"], "ok", "{r}");
        assert_eq!(r["sources"]["wire"]["status"], "ok");
        h.forget_source(&name);
        assert_eq!(h.report(at(72), 2, None)["sources"], serde_json::json!({}));
    }

    #[test]
    fn config_generation_counts_applied_configs() {
        let h = Health::new(1);
        h.config_rejected(at(0), "feeds/a.toml:1:1: bad".into());
        assert_eq!(h.report(at(0), 0, None)["status"], "degraded");
        assert_eq!(h.config_applied(), 2);
        assert_eq!(h.report(at(0), 0, None)["status"], "ok");
        assert_eq!(h.report(at(0), 0, None)["config_generation"], 2);
    }
}
