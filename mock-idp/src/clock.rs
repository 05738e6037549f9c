//! The clock every time-dependent decision of the mock IdP reads: `iat`/`exp` of minted tokens,
//! scheduled key rotation and the grace period of retired keys.
//!
//! Tests move it forward instead of sleeping, so "expired", "after the grace period" and "the
//! rotation is due" are reached in microseconds and never flake.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A shared clock: the system time plus an adjustable offset, or a frozen instant.
///
/// Cloning is cheap and every clone sees the same adjustments, so a test can hold one while the
/// running IdP reads another.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    state: Arc<ClockState>,
}

#[derive(Debug)]
struct ClockState {
    /// Seconds added to the system time.
    offset: AtomicI64,
    /// When not `NOT_FROZEN`, the clock stands still at this Unix time.
    frozen_at: AtomicI64,
}

impl Default for ClockState {
    fn default() -> Self {
        Self {
            offset: AtomicI64::new(0),
            frozen_at: AtomicI64::new(NOT_FROZEN),
        }
    }
}

impl Clock {
    /// The real time, until someone moves it.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock standing still at `unix_seconds`, for tests that need exact `iat`/`exp` values.
    pub fn frozen_at(unix_seconds: i64) -> Self {
        let clock = Self::default();
        clock.set(unix_seconds);
        clock
    }

    /// Now, in seconds since the Unix epoch (the unit of JWT NumericDate, RFC 7519 §2).
    pub fn now(&self) -> i64 {
        let frozen = self.state.frozen_at.load(Ordering::SeqCst);
        if frozen != NOT_FROZEN {
            return frozen;
        }
        system_seconds().saturating_add(self.state.offset.load(Ordering::SeqCst))
    }

    /// Moves the clock forward (a frozen clock stays frozen, at the later instant).
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let frozen = self.state.frozen_at.load(Ordering::SeqCst);
        if frozen != NOT_FROZEN {
            self.state
                .frozen_at
                .store(frozen.saturating_add(secs), Ordering::SeqCst);
        } else {
            self.state.offset.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// Freezes the clock at `unix_seconds`.
    pub fn set(&self, unix_seconds: i64) {
        self.state.frozen_at.store(unix_seconds, Ordering::SeqCst);
    }

    /// Back to the real time, with no offset.
    pub fn reset(&self) {
        self.state.offset.store(0, Ordering::SeqCst);
        self.state.frozen_at.store(NOT_FROZEN, Ordering::SeqCst);
    }
}

fn system_seconds() -> i64 {
    // A system clock before 1970 is a broken machine; reading it as the epoch keeps us running.
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

const NOT_FROZEN: i64 = i64::MIN;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(3600));
        assert!(other.now() >= before + 3600);
    }

    #[test]
    fn a_frozen_clock_stands_still_until_advanced() {
        let clock = Clock::frozen_at(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(Duration::from_secs(5));
        assert_eq!(clock.now(), 1_005);
        clock.reset();
        assert!(clock.now() > 1_700_000_000);
    }
}
