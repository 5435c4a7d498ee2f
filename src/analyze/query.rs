//! Which conversations to analyse: the `--since` / `--until` bounds of the
//! store's [`Filters`].

use chrono::{DateTime, NaiveDate, Utc};

use super::AnalyzeError;
pub use crate::store::Filters;

/// Which end of a time range a value bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `--since`: a date means that day's first instant (UTC).
    Since,
    /// `--until`: a date means the end of that day (UTC), so the day is included.
    Until,
}

/// Parses `--since` / `--until`: RFC 3339 (`2026-03-01T09:00:00Z`,
/// `2026-03-01T10:00:00+01:00`) or a date `YYYY-MM-DD` (UTC).
pub fn parse_time(value: &str, bound: Bound) -> Result<DateTime<Utc>, AnalyzeError> {
    let flag = match bound {
        Bound::Since => "since",
        Bound::Until => "until",
    };
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = match bound {
            Bound::Since => Some(d),
            Bound::Until => d.succ_opt(),
        };
        if let Some(t) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(t.and_utc());
        }
    }
    Err(AnalyzeError::Time {
        flag,
        value: value.to_string(),
        message: "expected RFC 3339 (2026-03-01T09:00:00Z) or a date YYYY-MM-DD (2026-03-01)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn since_and_until_accept_rfc3339_and_dates() {
        let t = parse_time("2026-03-01T10:30:00+01:00", Bound::Since).unwrap();
        assert_eq!(t, Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).unwrap());
        let t = parse_time("2026-03-01T09:30:00.250Z", Bound::Until).unwrap();
        assert_eq!(t.timestamp_millis() % 1000, 250);
        assert_eq!(parse_time("2026-03-01", Bound::Since).unwrap(), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
        // A date as the upper bound includes that whole day.
        assert_eq!(
            parse_time(" 2026-03-01 ", Bound::Until).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap()
        );
        assert_eq!(parse_time("2026-12-31", Bound::Until).unwrap(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_times_name_the_flag_and_the_formats() {
        for bad in ["yesterday", "2026-02-30", "2026-3-1x", "", "2026-03-01 09:00"] {
            let e = parse_time(bad, Bound::Until).unwrap_err().to_string();
            assert!(e.contains("--until") && e.contains("RFC 3339") && e.contains("YYYY-MM-DD"), "{e}");
        }
    }
}
