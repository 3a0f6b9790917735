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

    /// Every `.rs` file under `src/`, with its path.
    fn sources() -> Vec<(std::path::PathBuf, String)> {
        let mut pending = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        let mut files = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    files.push((path, text));
                }
            }
        }
        files
    }

    #[test]
    fn this_module_is_the_only_time_source() {
        let readers = ["SystemTime::now", "now_utc()", "Utc::now", "Local::now"];
        let offenders: Vec<String> = sources()
            .into_iter()
            .filter(|(path, _)| !path.ends_with("src/clock.rs"))
            .flat_map(|(path, text)| {
                readers
                    .iter()
                    .filter(|s| text.contains(*s))
                    .map(|s| format!("{} reads the time with {s}", path.display()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(offenders.is_empty(), "{offenders:#?}");
    }

    #[test]
    fn a_day_starts_at_midnight_utc() {
        assert_eq!(utc_day_start(86_400 * 3 + 17), 86_400 * 3);
        assert_eq!(utc_day_start(86_400 * 3), 86_400 * 3);
    }
}
