//! Time as a dependency: the validator and the key cache read a [`Clock`], so tests can move
//! time instead of sleeping, and `exp`/`nbf` have one source of truth (jsonwebtoken's own time
//! checks are switched off).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, the unit of JWT NumericDate.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }
}

/// The system clock plus an adjustable offset; clones share it. For tests and demos.
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset: Arc<AtomicI64>,
}

impl OffsetClock {
    /// Moves the clock by `secs` (negative: back).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        SystemClock
            .now()
            .saturating_add(self.offset.load(Ordering::SeqCst))
    }
}
