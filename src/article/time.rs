//! Article times: RFC 3339 with an offset, or a local time read in the site zone.
//!
//! Newsroom systems often write "2015-09-29T09:15:00" meaning the newsroom's wall
//! clock. Such a time is read in `[site].timezone`. Two instants of the year need
//! a policy, and both are documented in the README:
//! - in the spring-forward gap the wall-clock time never happened, so it is
//!   rejected rather than guessed;
//! - in the autumn fall-back hour it happened twice, and the earlier instant
//!   (still in summer time) is taken, as a newsroom writing at that hour most
//!   likely meant the first pass.

use chrono::{DateTime, Datelike, LocalResult, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use thiserror::Error;

/// Why an article's date-time was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TimeError {
    #[error(
        "{input:?} is not a date-time; expected RFC 3339 such as \"2015-09-29T09:15:00+01:00\" or a local \"2015-09-29T09:15:00\""
    )]
    /// Neither RFC 3339 nor a local date-time.
    Syntax {
        /// The text as given.
        input: String,
    },
    #[error(
        "{input:?} does not exist in {zone}: the clocks go forward over it; write the time with its offset"
    )]
    /// A local time the site's clocks skip (spring forward): it never happened.
    Gap {
        /// The text as given.
        input: String,
        /// The site timezone it was read in.
        zone: Tz,
    },
    #[error(
        "{input:?} is {instant} in UTC, outside the years 0000 to 9999 that RFC 3339 (and so every feed format) can write"
    )]
    /// An instant outside what RFC 3339 can write.
    OutOfRange {
        /// The text as given.
        input: String,
        /// The instant it names, in UTC.
        instant: String,
    },
}

const LOCAL_FORMATS: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];

/// Parses an article time to an instant. Times with an offset (`Z`, `+01:00`)
/// are exact; times without one are read in `zone`.
///
/// The instant must fall in the years 0000 to 9999 in UTC. `%Y` reads signed
/// years of any length (`+10000`), and an offset can carry 9999-12-31 over
/// into year 10000; such a time cannot be written back as RFC 3339, so Atom
/// and JSON Feed could not carry it, and `Last-Modified` (httpdate) panics on
/// it when the feed is published.
pub fn parse_time(input: &str, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    let t = parse_instant(input, zone)?;
    if (0..=9999).contains(&t.year()) {
        Ok(t)
    } else {
        Err(TimeError::OutOfRange {
            input: input.to_owned(),
            instant: t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        })
    }
}

fn parse_instant(input: &str, zone: Tz) -> Result<DateTime<Utc>, TimeError> {
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = LOCAL_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .ok_or_else(|| TimeError::Syntax {
            input: input.to_owned(),
        })?;
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _later) => Ok(earlier.with_timezone(&Utc)),
        LocalResult::None => Err(TimeError::Gap {
            input: input.to_owned(),
            zone,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Dublin;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test literal")
            .with_timezone(&Utc)
    }

    #[test]
    fn offset_times_are_exact_whatever_the_zone() {
        assert_eq!(
            parse_time("2015-09-29T09:15:00+01:00", Dublin),
            Ok(utc("2015-09-29T08:15:00Z"))
        );
        assert_eq!(
            parse_time("2015-01-05T10:00:00Z", Dublin),
            Ok(utc("2015-01-05T10:00:00Z"))
        );
    }

    #[test]
    fn local_summer_time_is_irish_summer_time() {
        assert_eq!(
            parse_time("2015-09-29T12:50:00", Dublin),
            Ok(utc("2015-09-29T11:50:00Z"))
        );
    }

    #[test]
    fn local_winter_time_is_gmt() {
        assert_eq!(
            parse_time("2015-01-29T12:50:00", Dublin),
            Ok(utc("2015-01-29T12:50:00Z"))
        );
        assert_eq!(
            parse_time("2015-01-29 12:50:00.5", Dublin),
            Ok(utc("2015-01-29T12:50:00.5Z"))
        );
    }

    #[test]
    fn spring_forward_gap_is_rejected() {
        // 2025-03-30: Dublin goes from 01:00 GMT straight to 02:00 IST.
        let err = parse_time("2025-03-30T01:30:00", Dublin).unwrap_err();
        assert!(matches!(err, TimeError::Gap { .. }));
        assert!(
            err.to_string().contains("does not exist in Europe/Dublin"),
            "{err}"
        );
        // The edges of the gap are fine.
        assert_eq!(
            parse_time("2025-03-30T00:59:59", Dublin),
            Ok(utc("2025-03-30T00:59:59Z"))
        );
        assert_eq!(
            parse_time("2025-03-30T02:00:00", Dublin),
            Ok(utc("2025-03-30T01:00:00Z"))
        );
    }

    #[test]
    fn autumn_ambiguous_hour_takes_the_earlier_instant() {
        // 2025-10-26: 01:30 happens at 00:30Z (IST) and again at 01:30Z (GMT).
        assert_eq!(
            parse_time("2025-10-26T01:30:00", Dublin),
            Ok(utc("2025-10-26T00:30:00Z"))
        );
        assert_eq!(
            parse_time("2025-10-26T02:00:00", Dublin),
            Ok(utc("2025-10-26T02:00:00Z"))
        );
    }

    #[test]
    fn instants_outside_four_digit_years_are_rejected() {
        // Each was accepted, and fails the import_json fuzz target's
        // round-trip check: it cannot be read back from its own RFC 3339 form.
        for (bad, instant) in [
            ("+10000-01-01T00:00:00", "+10000-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59-01:00", "+10000-01-01T00:59:59Z"),
            ("0000-01-01T00:00:00+01:00", "-0001-12-31T23:00:00Z"),
            ("-0001-06-01 12:00:00", "-0001-06-01T12:25:21Z"),
        ] {
            let err = parse_time(bad, Dublin).expect_err(bad);
            assert_eq!(
                err,
                TimeError::OutOfRange {
                    input: bad.to_owned(),
                    instant: instant.to_owned()
                }
            );
            assert!(
                err.to_string().contains("outside the years 0000 to 9999"),
                "{err}"
            );
        }
        // The edges themselves are fine.
        assert_eq!(
            parse_time("9999-12-31T23:59:59.999Z", Dublin),
            Ok(utc("9999-12-31T23:59:59.999Z"))
        );
        assert_eq!(
            parse_time("0000-01-01T00:00:00Z", Dublin),
            Ok(utc("0000-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        for bad in [
            "",
            "yesterday",
            "2015-13-01T00:00:00",
            "2015-09-29",
            "29/09/2015 09:15",
        ] {
            assert!(
                matches!(parse_time(bad, Dublin), Err(TimeError::Syntax { .. })),
                "{bad:?} should be rejected"
            );
        }
    }
}
