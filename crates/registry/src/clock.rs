//! The registry's idea of now. Exceptions expire and scans age by it; tests move it forward to see an expiry
//! take effect without waiting (or rescanning).

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

    /// Now as RFC 3339.
    pub fn now_rfc3339(&self) -> String {
        self.now().format(&Rfc3339).expect("format time")
    }

    /// Moves the clock forward by `by` (tests only: a real registry never calls this).
    pub fn advance(&self, by: time::Duration) {
        self.offset_seconds.fetch_add(by.whole_seconds(), Ordering::Relaxed);
    }
}
