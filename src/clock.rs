//! The one source of the current time. Records carry Unix seconds, the audit trail
//! milliseconds, reports and mail formatted instants; the calendar date that expiry and
//! validation rules read comes from a [`Clock`] that tests replace. A leaf: imports nothing of
//! the crate.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::{Date, OffsetDateTime};

/// Seconds since the Unix epoch.
pub fn now_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The instant as RFC 3339 (`2026-12-03T13:40:00Z`), as reports and sealed headers write it.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default()
}

/// A time in Unix milliseconds as RFC 3339, as people and reports read it.
pub fn format_millis(at_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| at_ms.to_string())
}

/// The instant as RFC 2822, as a mail's `Date:` header writes it.
pub fn now_rfc2822() -> String {
    OffsetDateTime::now_utc().format(&Rfc2822).unwrap_or_default()
}

/// The system time `age` before now, for comparisons with file and object times.
pub fn system_time_ago(age: std::time::Duration) -> SystemTime {
    SystemTime::now() - age
}

/// The start (Unix seconds) of the UTC day that `now` falls in: daily upload volumes count
/// from there.
pub fn utc_day_start(now: i64) -> i64 {
    now - now.rem_euclid(86_400)
}

/// Today's date, replaceable in tests so that expiry can be checked without waiting.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> Date + Send + Sync>);

impl Clock {
    /// The calendar date in UTC.
    pub fn system() -> Self {
        Self(Arc::new(|| OffsetDateTime::now_utc().date()))
    }

    /// A clock that asks `today` each time: tests move it forward without waiting.
    pub fn from_fn(today: impl Fn() -> Date + Send + Sync + 'static) -> Self {
        Self(Arc::new(today))
    }

    pub fn today(&self) -> Date {
        (self.0)()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock(today = {})", self.today())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_midnight_utc() {
        assert_eq!(utc_day_start(86_400 * 3 + 17), 86_400 * 3);
        assert_eq!(utc_day_start(86_400 * 3), 86_400 * 3);
    }
}
