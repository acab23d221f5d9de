//! Refresh schedules: cron expressions as admins write them.
//!
//! The `cron` crate only knows the Quartz form with seconds, numbers Sunday as 1
//! and requires both day fields to match. An admin who writes the standard
//! crontab line `*/5 * * * *` means "every five minutes", `* * * * 1` means
//! Monday, and `0 9 1 * 1` means "the 1st of the month *or* any Monday" (Vixie
//! cron). This module translates the 5-field form into one or two Quartz
//! schedules with those meanings; the 6/7-field form with seconds and the
//! `@hourly`-style shorthands go to the crate unchanged.
//!
//! It also owns what a schedule means on the two days a year when the site's
//! clock jumps. The crate evaluates a schedule in a zone by skipping local
//! times that do not exist, so a `30 1 * * *` refresh in Dublin would not run on
//! the spring-forward day and could run twice in autumn. Here a schedule is
//! evaluated on the wall clock and each wall-clock fire time is then mapped to
//! an instant, as Vixie cron does: a time inside the spring gap runs once, when
//! the gap ends; a time inside the repeated autumn hour runs once, the first
//! time round, unless the schedule runs at least hourly, in which case it keeps
//! its rhythm through both passes.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use serde::{Deserialize, Deserializer};

/// A parsed refresh schedule; it fires when any of its parts fires.
#[derive(Clone)]
pub struct CronSchedule {
    source: String,
    parts: Vec<cron::Schedule>,
    /// Runs at least hourly, so wall-clock times in the repeated autumn hour
    /// run in both passes rather than once.
    hourly_or_faster: bool,
}

/// More than the largest jump of any zone's clock, so every wall-clock time
/// that can map near an instant is looked at.
const MAX_JUMP: chrono::Duration = chrono::Duration::hours(3);
/// A bound on the fire times examined for one answer; a schedule dense enough
/// to reach it (every second) finds its answer long before.
const MAX_STEPS: usize = 100_000;

impl CronSchedule {
    /// The expression as the admin wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `after`, with the schedule read on
    /// the wall clock of `after`'s zone (see the module notes on DST).
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Utc>> {
        let zone = after.timezone();
        let t = after.with_timezone(&Utc);
        let offset = |at: DateTime<Utc>| {
            chrono::Duration::seconds(i64::from(
                zone.offset_from_utc_datetime(&at.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ))
        };
        // Wall-clock time = instant + offset. The earliest wall-clock time that
        // can map after `t` uses the smallest offset about then (the clock
        // reads least just after an autumn jump back); once an answer is found,
        // no wall-clock time beyond it plus the largest offset can beat it.
        let (near, later) = (offset(t), offset(t + MAX_JUMP));
        let start = t.naive_utc() + near.min(later);
        let mut best: Option<(DateTime<Utc>, NaiveDateTime)> = None;
        for part in &self.parts {
            for wall in part
                .after(&Utc.from_utc_datetime(&start))
                .take(MAX_STEPS)
                .map(|f| f.naive_utc())
            {
                if best.is_some_and(|(_, bound)| wall > bound) {
                    break;
                }
                for instant in self.instants(&zone, wall).into_iter().flatten() {
                    if instant > t && best.is_none_or(|(b, _)| instant < b) {
                        let largest = near.max(later).max(offset(instant));
                        best = Some((instant, instant.naive_utc() + largest));
                    }
                }
            }
        }
        best.map(|(instant, _)| instant)
    }

    /// The instants at which the wall-clock time `wall` happens in `zone`.
    fn instants<Z: TimeZone>(&self, zone: &Z, wall: NaiveDateTime) -> [Option<DateTime<Utc>>; 2] {
        let utc = |t: DateTime<Z>| t.with_timezone(&Utc);
        match zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => [Some(utc(t)), None],
            LocalResult::Ambiguous(first, second) => {
                [Some(utc(first)), self.hourly_or_faster.then(|| utc(second))]
            }
            LocalResult::None => [gap_end(zone, wall), None],
        }
    }

    /// The next `n` fire times after `after`, in order and without repeats.
    pub fn upcoming<Z: TimeZone>(&self, after: &DateTime<Z>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cursor = after.with_timezone(&after.timezone());
        while out.len() < n {
            let Some(next) = self.next_after(&cursor) else {
                break;
            };
            out.push(next);
            cursor = next.with_timezone(&after.timezone());
        }
        out
    }
}

impl CronSchedule {
    /// The shortest gap between consecutive runs, as a hint for how often
    /// readers should poll (RSS `ttl`, `Cache-Control: max-age`). It is measured
    /// over the first runs after a fixed instant, never the clock, so the same
    /// schedule always gives the same hint and the same feed bytes.
    pub fn typical_interval<Z: TimeZone>(&self, zone: &Z) -> Option<chrono::Duration> {
        // Monday 2025-01-06 00:00 UTC: a fixed, ordinary week to sample from.
        let reference = DateTime::<Utc>::from_timestamp(1_736_121_600, 0)?.with_timezone(zone);
        let runs = self.upcoming(&reference, 64);
        runs.windows(2).map(|w| w[1] - w[0]).min()
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.source)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl FromStr for CronSchedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let source = s.trim();
        let fields: Vec<&str> = source.split_whitespace().collect();
        let quartz: Vec<String> = if source.starts_with('@') {
            vec![source.to_owned()]
        } else {
            match fields.len() {
                5 => from_crontab(&fields)?,
                6 | 7 => vec![fields.join(" ")],
                n => {
                    return Err(format!(
                        "cron expression {source:?} has {n} fields; expected 5 (minute hour day-of-month month day-of-week) or 6-7 with seconds first"
                    ));
                }
            }
        };
        let parts = quartz
            .iter()
            .map(|q| {
                cron::Schedule::from_str(q)
                    .map_err(|e| format!("invalid cron expression {source:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Sampled in UTC, where no wall-clock time repeats.
        let hourly_or_faster = DateTime::<Utc>::from_timestamp(1_736_121_600, 0).is_some_and(|r| {
            parts.iter().any(|p| {
                let runs: Vec<_> = p.after(&r).take(64).collect();
                runs.windows(2)
                    .any(|w| w[1] - w[0] <= chrono::Duration::hours(1))
            })
        });
        Ok(Self {
            source: source.to_owned(),
            parts,
            hourly_or_faster,
        })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The first instant after a spring-forward gap containing `wall`: jumps start
/// on a whole minute, so step minute by minute until the clock exists again.
fn gap_end<Z: TimeZone>(zone: &Z, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut minute = wall.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..24 * 60 {
        minute += chrono::Duration::minutes(1);
        if let Some(t) = zone.from_local_datetime(&minute).earliest() {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Translates `min hour dom month dow` into Quartz expressions.
fn from_crontab(f: &[&str]) -> Result<Vec<String>, String> {
    let [minute, hour, dom, month, dow] = [f[0], f[1], f[2], f[3], f[4]];
    let dow_any = dow == "*" || dow == "?";
    let dom_any = dom == "*" || dom == "?";
    let days = if dow_any {
        "*".to_owned()
    } else {
        crontab_days(dow)?
    };
    let dom = if dom_any { "*" } else { dom };
    Ok(if !dom_any && !dow_any {
        // Vixie cron: when both day fields are restricted, either may match.
        vec![
            format!("0 {minute} {hour} {dom} {month} *"),
            format!("0 {minute} {hour} * {month} {days}"),
        ]
    } else {
        vec![format!("0 {minute} {hour} {dom} {month} {days}")]
    })
}

/// Expands a crontab day-of-week field (0-7, 0 and 7 both Sunday; names;
/// lists, ranges and steps) into day names, which the `cron` crate reads
/// without the numbering ambiguity.
fn crontab_days(field: &str) -> Result<String, String> {
    let mut set = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 =
                    s.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("day-of-week step {s:?} is not a positive number")
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            (day_number(a)?, day_number(b)?)
        } else {
            let d = day_number(range)?;
            // A step on a single start means "from here to the end of the week".
            (d, if item.contains('/') { 6 } else { d })
        };
        if lo > hi {
            return Err(format!("day-of-week range {range:?} runs backwards"));
        }
        let mut d = lo;
        while d <= hi {
            set[(d % 7) as usize] = true;
            d += step;
        }
    }
    Ok(set
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| DAY_NAMES[i])
        .collect::<Vec<_>>()
        .join(","))
}

fn day_number(s: &str) -> Result<u32, String> {
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("day of week {n} is out of range 0-7"))
        };
    }
    const FULL: [&str; 7] = [
        "SUNDAY",
        "MONDAY",
        "TUESDAY",
        "WEDNESDAY",
        "THURSDAY",
        "FRIDAY",
        "SATURDAY",
    ];
    let upper = s.to_ascii_uppercase();
    (0..7)
        .find(|&i| upper == DAY_NAMES[i] || upper == FULL[i])
        .map(|i| i as u32)
        .ok_or_else(|| format!("{s:?} is not a day of the week"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use chrono::Weekday;
    use chrono_tz::Europe::Dublin;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test literal")
            .with_timezone(&Utc)
    }

    fn cron(s: &str) -> CronSchedule {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn five_fields_every_five_minutes_means_minutes_not_seconds() {
        let next = cron("*/5 * * * *").upcoming(&at("2025-01-06T10:01:30Z"), 3);
        assert_eq!(
            next,
            vec![
                at("2025-01-06T10:05:00Z"),
                at("2025-01-06T10:10:00Z"),
                at("2025-01-06T10:15:00Z")
            ]
        );
    }

    #[test]
    fn seconds_form_is_accepted_as_is() {
        let next = cron("*/30 * * * * *").upcoming(&at("2025-01-06T10:00:00Z"), 2);
        assert_eq!(
            next,
            vec![at("2025-01-06T10:00:30Z"), at("2025-01-06T10:01:00Z")]
        );
        assert!("0 0 * * * * 2030".parse::<CronSchedule>().is_ok());
    }

    #[test]
    fn crontab_day_numbers_count_from_sunday_zero() {
        // 2025-01-06 is a Monday.
        for (expr, day) in [
            ("0 9 * * 1", Weekday::Mon),
            ("0 9 * * 0", Weekday::Sun),
            ("0 9 * * 7", Weekday::Sun),
            ("0 9 * * 6", Weekday::Sat),
            ("0 9 * * fri", Weekday::Fri),
        ] {
            let next = cron(expr)
                .next_after(&at("2025-01-06T10:00:00Z"))
                .expect("fires");
            assert_eq!(next.weekday(), day, "{expr}");
        }
        let weekdays = cron("30 6 * * 1-5").upcoming(&at("2025-01-04T00:00:00Z"), 5);
        let days: Vec<Weekday> = weekdays.iter().map(|t| t.weekday()).collect();
        assert_eq!(
            days,
            vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri
            ]
        );
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        // The 1st of the month or any Monday, as Vixie cron runs it.
        let next = cron("0 9 1 * 1").upcoming(&at("2025-01-01T10:00:00Z"), 3);
        assert_eq!(
            next,
            vec![
                at("2025-01-06T09:00:00Z"),
                at("2025-01-13T09:00:00Z"),
                at("2025-01-20T09:00:00Z")
            ]
        );
        let next = cron("0 9 1 * 1").next_after(&at("2025-01-28T10:00:00Z"));
        assert_eq!(next, Some(at("2025-02-01T09:00:00Z")));
    }

    #[test]
    fn local_zone_is_used_for_hours() {
        let after = at("2025-07-01T00:00:00Z").with_timezone(&Dublin);
        // 09:00 Irish Summer Time is 08:00 UTC.
        assert_eq!(
            cron("0 9 * * *").next_after(&after),
            Some(at("2025-07-01T08:00:00Z"))
        );
    }

    #[test]
    fn shorthands_are_accepted() {
        assert_eq!(
            cron("@hourly").next_after(&at("2025-01-06T10:01:00Z")),
            Some(at("2025-01-06T11:00:00Z"))
        );
    }

    #[test]
    fn typical_interval_is_the_shortest_gap() {
        let minutes = |e: &str| cron(e).typical_interval(&Dublin).map(|d| d.num_minutes());
        assert_eq!(minutes("*/5 * * * *"), Some(5));
        assert_eq!(minutes("0 */2 * * *"), Some(120));
        assert_eq!(minutes("0 9 * * *"), Some(1440));
        assert_eq!(minutes("0 6,18 * * 1-5"), Some(720));
        assert_eq!(
            minutes("*/30 * * * * *"),
            Some(0),
            "sub-minute schedules round down"
        );
    }

    fn runs_between(expr: &str, from: &str, to: &str) -> Vec<String> {
        let until = at(to);
        cron(expr)
            .upcoming(&at(from).with_timezone(&Dublin), 200)
            .into_iter()
            .take_while(|t| *t <= until)
            .map(|t| t.format("%H:%M").to_string() + "Z")
            .collect()
    }

    // Dublin: 2026-03-29 01:00 GMT jumps to 02:00 IST; 2026-10-25 02:00 IST
    // falls back to 01:00 GMT.
    #[test]
    fn a_daily_run_inside_the_spring_gap_runs_once_when_the_gap_ends() {
        let runs =
            cron("30 1 * * *").upcoming(&at("2026-03-27T12:00:00Z").with_timezone(&Dublin), 4);
        assert_eq!(
            runs,
            vec![
                at("2026-03-28T01:30:00Z"), // 01:30 GMT
                at("2026-03-29T01:00:00Z"), // 01:30 does not exist: 02:00 IST, once
                at("2026-03-30T00:30:00Z"), // 01:30 IST
                at("2026-03-31T00:30:00Z"),
            ]
        );
    }

    #[test]
    fn frequent_runs_neither_double_nor_stall_across_the_spring_gap() {
        assert_eq!(
            runs_between(
                "*/20 * * * *",
                "2026-03-29T00:10:00Z",
                "2026-03-29T01:45:00Z"
            ),
            ["00:20Z", "00:40Z", "01:00Z", "01:20Z", "01:40Z"]
        );
    }

    #[test]
    fn a_daily_run_inside_the_repeated_autumn_hour_runs_once() {
        let runs =
            cron("30 1 * * *").upcoming(&at("2026-10-24T12:00:00Z").with_timezone(&Dublin), 3);
        assert_eq!(
            runs,
            vec![
                at("2026-10-25T00:30:00Z"), // 01:30 IST, the first pass only
                at("2026-10-26T01:30:00Z"), // 01:30 GMT
                at("2026-10-27T01:30:00Z"),
            ]
        );
    }

    #[test]
    fn frequent_runs_keep_their_rhythm_through_the_repeated_autumn_hour() {
        assert_eq!(
            runs_between(
                "*/30 * * * *",
                "2026-10-24T23:15:00Z",
                "2026-10-25T02:00:00Z"
            ),
            ["23:30Z", "00:00Z", "00:30Z", "01:00Z", "01:30Z", "02:00Z"]
        );
        assert_eq!(
            runs_between("0 * * * *", "2026-10-24T22:30:00Z", "2026-10-25T02:30:00Z"),
            ["23:00Z", "00:00Z", "01:00Z", "02:00Z"],
            "hourly runs at 01:00 IST and again at 01:00 GMT"
        );
    }

    #[test]
    fn every_second_schedules_stay_cheap_and_exact() {
        let next =
            cron("* * * * * *").next_after(&at("2026-10-25T00:59:59Z").with_timezone(&Dublin));
        assert_eq!(next, Some(at("2026-10-25T01:00:00Z")));
    }

    #[test]
    fn bad_expressions_say_why() {
        for (bad, needle) in [
            ("* * * *", "has 4 fields"),
            ("61 * * * *", "invalid cron expression"),
            ("0 9 * * 8", "out of range"),
            ("0 9 * * 5-1", "backwards"),
            ("0 9 * * xyz", "not a day of the week"),
            ("", "has 0 fields"),
        ] {
            let err = bad.parse::<CronSchedule>().expect_err(bad);
            assert!(err.contains(needle), "{bad:?}: {err}");
        }
    }
}
