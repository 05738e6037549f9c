//! A budget of authorization-server calls per client address. Every made-up opaque token is new,
//! so no cache can absorb a flood of them: without a budget each one costs a call to the
//! authorization server, and whoever sends them spends this deployment's quota there until real
//! users get 503. There is no principal before a token is judged, so the budget is per address
//! (IPv6 by /64, the block one host usually holds). Answers already cached cost nothing, so a
//! real user whose token is known keeps working while its address is over budget.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// Calls left to each client address.
pub(crate) struct AddressBudget {
    quota: Quota,
    clock: DefaultClock,
    /// Bounded in addresses; an address idle for a period starts afresh with a full budget.
    by_address: moka::sync::Cache<IpAddr, Arc<DefaultDirectRateLimiter>>,
}

impl std::fmt::Debug for AddressBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressBudget")
            .field("quota", &self.quota)
            .field("addresses", &self.by_address.entry_count())
            .finish()
    }
}

/// An address that has spent its budget, and when it may make the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverBudget {
    pub(crate) retry_after: Duration,
}

impl AddressBudget {
    /// `per_minute` calls per address, in bursts of up to the same number.
    pub(crate) fn new(per_minute: NonZeroU32) -> Self {
        Self {
            quota: Quota::per_minute(per_minute),
            clock: DefaultClock::default(),
            by_address: moka::sync::Cache::builder()
                .max_capacity(MAX_ADDRESSES)
                .time_to_idle(Duration::from_secs(60))
                .build(),
        }
    }

    /// Spends one call of `client`'s budget.
    pub(crate) fn spend(&self, client: IpAddr) -> Result<(), OverBudget> {
        let quota = self.quota;
        let limiter = self.by_address.get_with(holder(client), || {
            Arc::new(DefaultDirectRateLimiter::direct(quota))
        });
        limiter.check().map_err(|not_until| OverBudget {
            retry_after: not_until
                .wait_time_from(self.clock.now())
                .max(Duration::from_secs(1)),
        })
    }
}

/// The address whose budget a client spends: itself for IPv4 (and IPv4-mapped IPv6), its /64
/// for IPv6.
fn holder(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
    }
}

/// Addresses tracked at most: beyond it the least used are forgotten (and start afresh).
const MAX_ADDRESSES: u64 = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_spends_its_own_budget_and_ipv6_counts_by_its_64() {
        let budget = AddressBudget::new(NonZeroU32::new(2).unwrap());
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(budget.spend(one), Ok(()));
        assert_eq!(budget.spend(one), Ok(()));
        let over = budget.spend(one).unwrap_err();
        assert!(over.retry_after >= Duration::from_secs(1), "{over:?}");
        assert_eq!(budget.spend("192.0.2.2".parse().unwrap()), Ok(()));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(
            budget.spend(mapped).is_err(),
            "the same host as IPv4-mapped"
        );
        assert_eq!(budget.spend("2001:db8::1".parse().unwrap()), Ok(()));
        assert_eq!(budget.spend("2001:db8::2".parse().unwrap()), Ok(()));
        assert!(budget.spend("2001:db8::ffff".parse().unwrap()).is_err());
        assert_eq!(budget.spend("2001:db8:0:1::1".parse().unwrap()), Ok(()));
    }
}
