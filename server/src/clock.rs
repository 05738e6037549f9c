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

/// The system clock plus an adjustable offset, or frozen; clones share it. For tests and demos.
///
/// ```
/// use mcp_oauth_server::{Clock as _, OffsetClock};
///
/// let clock = OffsetClock::default();
/// clock.freeze();
/// let now = clock.now();
/// clock.advance(29);
/// assert_eq!(clock.now(), now + 29, "a frozen clock moves only when told");
/// ```
#[derive(Debug, Clone)]
pub struct OffsetClock {
    offset: Arc<AtomicI64>,
    /// The base instant while frozen, else [`NOT_FROZEN`].
    frozen_at: Arc<AtomicI64>,
}

impl Default for OffsetClock {
    fn default() -> Self {
        Self {
            offset: Arc::default(),
            frozen_at: Arc::new(AtomicI64::new(NOT_FROZEN)),
        }
    }
}

impl OffsetClock {
    /// Moves the clock by `secs` (negative: back).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Stops the clock where it is: from now on it moves only by [`OffsetClock::advance`], so a
    /// test's "29 s of a 30 s bound" stays 29 s however slow the machine is.
    pub fn freeze(&self) {
        let _ = self.frozen_at.compare_exchange(
            NOT_FROZEN,
            SystemClock.now(),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> i64 {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            NOT_FROZEN => SystemClock.now(),
            frozen => frozen,
        };
        base.saturating_add(self.offset.load(Ordering::SeqCst))
    }
}

/// [`OffsetClock::frozen_at`] of a running clock.
const NOT_FROZEN: i64 = i64::MIN;
