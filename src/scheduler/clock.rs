//! The scheduler's clock: the one place it learns the time of day.
//!
//! Schedules are wall-clock times in the site's zone, so the scheduler needs
//! the date and time, not just a monotonic instant; and it waits with
//! `tokio::time::sleep`. The service runs on [`SystemClock`]. Tests run on a
//! [`TokioClock`], whose time of day moves with tokio's clock: with tokio's time
//! paused (`#[tokio::test(start_paused = true)]`) the runtime jumps straight to
//! the next timer whenever every task waits, so a test of two days of
//! schedules takes milliseconds and sees the same times on every run. This
//! module only tells the time; it never sleeps or decides anything.

use std::fmt;

use chrono::{DateTime, Utc};

/// Where the scheduler reads the time of day.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock. The scheduler re-reads it after every wake-up, so
/// a change of the system time is noticed within its longest sleep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A time of day that starts at a chosen moment and then moves with tokio's
/// clock, so that it stops, jumps and advances with `tokio::time::pause` and
/// `tokio::time::advance`. For tests.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now. Call it inside a runtime.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            started: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed();
        // Beyond chrono's range (hundreds of thousands of years) the clock stops.
        chrono::Duration::from_std(elapsed)
            .ok()
            .and_then(|d| self.start.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_only_with_tokio_time() {
        let start = DateTime::parse_from_rfc3339("2025-03-30T00:59:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let clock = TokioClock::starting_at(start);
        assert_eq!(clock.now(), start);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), start + chrono::Duration::milliseconds(90_250));
    }
}
