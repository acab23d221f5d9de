//! What a pulled source's fetch came to, and when it may be fetched next.
//!
//! Pure decisions on a [`SourceState`] and the clock's `now`, so they are
//! tested without a network or a store: the back-off sequence, how each kind
//! of answer changes the state (validators, errors, `Retry-After`,
//! `max-age`, gone), when the next fetch is due, and what `/healthz` shows.
//! It never fetches, sleeps, logs or writes: the task in `source` does.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::fetch::MAX_WAIT;
use crate::scheduler::{SourceHealth, SourceStatus};
use crate::store::SourceState;

/// The shortest back-off, for schedules that fire more often than this.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest back-off, unless the schedule's own interval is longer.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60 * 60);

/// The wait after the `failures`th failure in a row (counting from 1) of a
/// source fetched every `interval`: one interval, then two, four, … up to an
/// hour (or one interval, when that is longer). A source on a one-minute
/// schedule waits 1 min, 2, 4, … 1 h; one on the default five minutes
/// 5 min, 10, 20, 40, 1 h. As the next fetch also waits for the schedule,
/// the back-off only ever skips schedule slots, never adds fetches.
pub fn backoff(failures: u32, interval: Duration) -> Duration {
    let base = interval.max(BACKOFF_MIN);
    let doublings = failures.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings)
        .min(BACKOFF_MAX.max(base))
}

/// What one fetch came to, as the task saw it through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `304 Not Modified`.
    NotModified {
        /// `Cache-Control: max-age`.
        max_age: Option<Duration>,
    },
    /// A `200` whose feed was imported (whatever it changed).
    Imported {
        /// Its `ETag`.
        etag: Option<String>,
        /// Its `Last-Modified`.
        last_modified: Option<String>,
        /// `Cache-Control: max-age`.
        max_age: Option<Duration>,
    },
    /// `429` or `503`.
    Throttled {
        /// The status.
        status: u16,
        /// `Retry-After`, when it said one.
        retry_after: Option<Duration>,
    },
    /// `410 Gone`.
    Gone,
    /// Anything else that went wrong: no answer, a bad status, a body over
    /// the limit or no feed, the store refusing its articles.
    Failed {
        /// The status, when there was a response.
        status: Option<u16>,
        /// What went wrong, for `/healthz`.
        reason: String,
    },
}

/// What changed about a source, for one log line at each change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing worth a line (a success after a success, the same failure).
    None,
    /// It succeeded after failing.
    Recovered,
    /// It started failing, or fails for another reason now.
    Failing,
    /// It answered `410 Gone`.
    Gone,
}

/// `state` after `outcome` at `now`, for a source fetched every `interval`,
/// and what changed. Every failure moves `not_before` (the back-off, or the
/// upstream's `Retry-After`); a success clears the error and keeps the
/// upstream's `max-age`.
pub fn apply(
    state: &mut SourceState,
    outcome: Outcome,
    interval: Duration,
    now: DateTime<Utc>,
) -> Change {
    let was_failing = state.last_error.clone();
    let was_gone = state.gone;
    let later = |d: Duration| now + chrono::Duration::from_std(d.min(MAX_WAIT)).unwrap_or_default();
    let fail = |state: &mut SourceState, status: Option<u16>, reason: String, wait: Duration| {
        state.last_status = status;
        state.failures = state.failures.saturating_add(1);
        state.not_before = Some(later(wait));
        if state.error_since.is_none() {
            state.error_since = Some(now);
        }
        let changed = state.last_error.as_deref() != Some(reason.as_str());
        state.last_error = Some(reason);
        changed
    };
    let succeed = |state: &mut SourceState, max_age: Option<Duration>| {
        state.last_status = None;
        state.last_success = Some(now);
        state.last_error = None;
        state.error_since = None;
        state.failures = 0;
        state.not_before = max_age.map(later);
    };
    match outcome {
        Outcome::NotModified { max_age } => {
            succeed(&mut *state, max_age);
            state.last_status = Some(304);
        }
        Outcome::Imported {
            etag,
            last_modified,
            max_age,
        } => {
            succeed(&mut *state, max_age);
            state.last_status = Some(200);
            state.etag = etag;
            state.last_modified = last_modified;
        }
        Outcome::Throttled {
            status,
            retry_after,
        } => {
            let failures = state.failures.saturating_add(1);
            let wait = retry_after.unwrap_or_else(|| backoff(failures, interval));
            let reason = match retry_after {
                Some(_) => format!(
                    "the upstream answered {status} and asked to wait {}",
                    humantime::format_duration(wait)
                ),
                None => format!("the upstream answered {status}; backing off"),
            };
            let changed = fail(&mut *state, Some(status), reason, wait);
            return if changed {
                Change::Failing
            } else {
                Change::None
            };
        }
        Outcome::Gone => {
            state.gone = true;
            state.not_before = None;
            state.last_status = Some(410);
            if state.error_since.is_none() {
                state.error_since = Some(now);
            }
            state.last_error = Some(
                "the upstream answered 410 Gone; fetching stopped until the source file changes"
                    .to_owned(),
            );
            return if was_gone { Change::None } else { Change::Gone };
        }
        Outcome::Failed { status, reason } => {
            let wait = backoff(state.failures.saturating_add(1), interval);
            let changed = fail(&mut *state, status, reason, wait);
            return if changed {
                Change::Failing
            } else {
                Change::None
            };
        }
    }
    if was_failing.is_some() {
        Change::Recovered
    } else {
        Change::None
    }
}

/// The state a source starts from: what was saved for it when it applies to
/// the same URL, else a fresh one (a changed URL drops the validators,
/// errors and the gone flag, which were the old URL's).
pub fn resume(saved: Option<SourceState>, url: &str) -> SourceState {
    match saved {
        Some(state) if state.url == url => state,
        _ => SourceState {
            url: url.to_owned(),
            ..SourceState::default()
        },
    }
}

/// A gone source whose file changed (or was added again) is tried again.
pub fn revive(state: &mut SourceState) {
    if state.gone {
        state.gone = false;
        state.last_error = None;
        state.error_since = None;
        state.failures = 0;
        state.not_before = None;
    }
}

/// When a source is due: at its schedule's next fire time `scheduled`, but
/// never before `not_before`; never while it is gone.
pub fn due(state: &SourceState, scheduled: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    if state.gone {
        return None;
    }
    match (scheduled, state.not_before) {
        (Some(s), Some(n)) => Some(s.max(n)),
        (s, None) => s,
        (None, Some(_)) => None,
    }
}

/// Whether a source should fetch as soon as the service starts: it never
/// succeeded, or its last success is at least one `interval` (its schedule's
/// usual gap) old.
pub fn stale_at_start(
    state: &SourceState,
    interval: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> bool {
    match (state.last_success, interval) {
        (None, _) => true,
        (Some(at), Some(interval)) => now - at >= interval,
        (Some(_), None) => false,
    }
}

/// The `/healthz` entry for a source in `state`, next fetched at `next`.
pub fn health(state: &SourceState, next: Option<DateTime<Utc>>) -> SourceHealth {
    let status = if state.gone {
        SourceStatus::Gone
    } else if state.last_error.is_some() {
        match state.last_status {
            Some(429 | 503) => SourceStatus::BackingOff,
            _ => SourceStatus::Failing,
        }
    } else if state.last_success.is_some() {
        SourceStatus::Ok
    } else {
        SourceStatus::Pending
    };
    SourceHealth {
        url: state.url.clone(),
        status,
        last_success: state.last_success,
        last_error: state.last_error.clone(),
        error_since: state.error_since,
        next_fetch: next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("valid")
    }

    fn fresh() -> SourceState {
        resume(None, "https://wire.example/feed.xml")
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            status: Some(500),
            reason: reason.into(),
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn back_off_doubles_from_the_interval_to_an_hour() {
        let secs = |interval: u64| -> Vec<u64> {
            (1..=9)
                .map(|n| backoff(n, Duration::from_secs(interval)).as_secs())
                .collect()
        };
        assert_eq!(secs(60), [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(
            secs(300),
            [300, 600, 1200, 2400, 3600, 3600, 3600, 3600, 3600]
        );
        assert_eq!(secs(0)[..3], [1, 2, 4], "at least a second");
        assert_eq!(
            secs(86_400)[..2],
            [86_400, 86_400],
            "a daily source waits a day"
        );
        assert_eq!(backoff(u32::MAX, MINUTE), BACKOFF_MAX);
    }

    #[test]
    fn failures_back_off_and_a_success_clears_them() {
        let mut s = fresh();
        assert_eq!(
            apply(&mut s, failed("boom"), MINUTE, at(0)),
            Change::Failing
        );
        assert_eq!(s.not_before, Some(at(60)));
        assert_eq!(
            apply(&mut s, failed("boom"), MINUTE, at(60)),
            Change::None,
            "same fault"
        );
        assert_eq!(s.not_before, Some(at(60 + 120)));
        assert_eq!(
            s.error_since,
            Some(at(0)),
            "the fault began at the first failure"
        );
        assert_eq!(
            apply(&mut s, failed("other"), MINUTE, at(200)),
            Change::Failing
        );
        assert_eq!(s.failures, 3);
        let ok = Outcome::NotModified { max_age: None };
        assert_eq!(
            apply(&mut s, ok.clone(), MINUTE, at(500)),
            Change::Recovered
        );
        assert_eq!((s.failures, s.not_before, &s.last_error), (0, None, &None));
        assert_eq!(s.last_success, Some(at(500)));
        assert_eq!(apply(&mut s, ok, MINUTE, at(600)), Change::None);
    }

    #[test]
    fn a_200_keeps_its_validators_and_max_age() {
        let mut s = fresh();
        apply(
            &mut s,
            Outcome::Imported {
                etag: Some("\"v1\"".into()),
                last_modified: Some("Mon, 07 Dec 2026 10:00:00 GMT".into()),
                max_age: Some(Duration::from_secs(300)),
            },
            MINUTE,
            at(0),
        );
        assert_eq!(s.etag.as_deref(), Some("\"v1\""));
        assert_eq!(
            s.last_modified.as_deref(),
            Some("Mon, 07 Dec 2026 10:00:00 GMT")
        );
        assert_eq!(s.not_before, Some(at(300)));
        // The cron fires every minute: max-age holds the next fetch back.
        assert_eq!(due(&s, Some(at(60))), Some(at(300)));
        // A 304 keeps the validators.
        apply(
            &mut s,
            Outcome::NotModified { max_age: None },
            MINUTE,
            at(300),
        );
        assert_eq!(s.etag.as_deref(), Some("\"v1\""));
        assert_eq!(due(&s, Some(at(360))), Some(at(360)));
    }

    #[test]
    fn retry_after_is_honoured_else_the_back_off() {
        let mut s = fresh();
        let throttled = |retry_after| Outcome::Throttled {
            status: 429,
            retry_after,
        };
        apply(
            &mut s,
            throttled(Some(Duration::from_secs(7200))),
            MINUTE,
            at(0),
        );
        assert_eq!(s.not_before, Some(at(7200)));
        assert_eq!(
            due(&s, Some(at(60))),
            Some(at(7200)),
            "no request before it"
        );
        assert_eq!(health(&s, None).status, SourceStatus::BackingOff);
        apply(&mut s, throttled(None), MINUTE, at(7200));
        assert_eq!(s.not_before, Some(at(7200 + 120)), "second failure: 2 min");
    }

    #[test]
    fn gone_stops_until_revived_and_a_new_url_starts_afresh() {
        let mut s = fresh();
        s.etag = Some("\"v1\"".into());
        assert_eq!(apply(&mut s, Outcome::Gone, MINUTE, at(0)), Change::Gone);
        assert_eq!(
            apply(&mut s, Outcome::Gone, MINUTE, at(1)),
            Change::None,
            "logged once"
        );
        assert_eq!(due(&s, Some(at(60))), None);
        assert_eq!(health(&s, None).status, SourceStatus::Gone);
        let same = resume(Some(s.clone()), "https://wire.example/feed.xml");
        assert!(same.gone, "a restart keeps it gone");
        let moved = resume(Some(s.clone()), "https://wire.example/v2.xml");
        assert!(!moved.gone && moved.etag.is_none(), "{moved:?}");
        revive(&mut s);
        assert_eq!(due(&s, Some(at(60))), Some(at(60)));
        assert_eq!(
            s.etag.as_deref(),
            Some("\"v1\""),
            "same URL, same validators"
        );
    }

    #[test]
    fn a_source_fetches_at_start_when_its_last_success_is_older_than_its_interval() {
        let minute = Some(chrono::Duration::seconds(60));
        let mut s = fresh();
        assert!(stale_at_start(&s, minute, at(0)), "never fetched");
        s.last_success = Some(at(0));
        assert!(!stale_at_start(&s, minute, at(59)));
        assert!(stale_at_start(&s, minute, at(60)));
        assert_eq!(health(&s, None).status, SourceStatus::Ok);
        assert_eq!(health(&fresh(), None).status, SourceStatus::Pending);
    }
}
