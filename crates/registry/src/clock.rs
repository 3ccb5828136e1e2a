//! The registry's idea of now. Exceptions expire and scans age by it; tests move it forward to see an expiry
//! take effect without waiting (or rescanning).

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::macros::format_description;

/// RFC 3339 in UTC with nine fractional digits: fixed width, so stored times sort as strings in SQL.
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
        ))
        .expect("format time")
}

/// Wall-clock time plus an offset that only tests set.
#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
}

impl Clock {
    /// Now.
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Today's date (UTC), the day exceptions are judged on.
    pub fn today(&self) -> time::Date {
        self.now().date()
    }

    /// Now as fixed-width RFC 3339 ([`format`]).
    pub fn now_rfc3339(&self) -> String {
        format(self.now())
    }

    /// Moves the clock forward by `by` (tests only: a real registry never calls this).
    pub fn advance(&self, by: time::Duration) {
        self.offset_seconds.fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }
}
