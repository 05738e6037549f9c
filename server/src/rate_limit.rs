//! A request budget per principal on `/mcp` (checklist R01: MCP servers MUST rate-limit tool
//! invocations). It runs after authentication, so an unauthenticated flood never spends a
//! principal's budget, and it counts every request, so no method is a way around it. Over the
//! budget: 429 with `Retry-After` and a JSON-RPC error. The limiter is governor's GCRA; its state
//! is a few bytes per principal, keyed by a keyed hash of issuer and subject, and principals idle
//! for a whole period are dropped, so memory stays bounded by the principals active in one period.
//! With a shared state store the budget is one for every replica: the same GCRA, run by the store
//! (keyed by a SHA-256 of issuer and subject); when the store fails, the configured fallback
//! decides (this replica's own budget, or 503).

use std::hash::BuildHasher as _;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::Metrics;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::auth::{Principal, no_principal_attached};
use crate::jsonrpc::{ErrorCode, error_response};
use crate::shared_state::{OnFailure, SharedStore};

/// How many requests to `/mcp` one principal may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per minute per principal, with bursts up to the same number; `None`: no limit.
    pub per_minute: Option<NonZeroU32>,
    /// Authorization-server calls (introspection, Google token information) per minute per
    /// client address, for tokens whose answer is not cached, with bursts up to the same
    /// number; `None`: no limit. Made-up opaque tokens cost one call each: this bounds what one
    /// client can make the authorization server do.
    pub remote_checks_per_address: Option<NonZeroU32>,
}

impl Default for RateLimit {
    /// 600 a minute: ten a second sustained, and a burst of 600, far above an agent making many
    /// tool calls, far below what one client can make a server do. 60 authorization-server
    /// calls a minute per address for tokens never seen before (asking again about a known token is
    /// free): each real client presents a new token about once an hour.
    fn default() -> Self {
        Self {
            per_minute: NonZeroU32::new(600),
            remote_checks_per_address: NonZeroU32::new(60),
        }
    }
}

/// The per-principal budgets.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<u64>,
    keys: std::hash::RandomState,
    clock: DefaultClock,
    metrics: Arc<Metrics>,
    per_minute: NonZeroU32,
    /// The store every replica spends from, and what to do when it fails.
    shared: Option<(Arc<dyn SharedStore>, OnFailure)>,
}

/// The verdict on one request.
enum Verdict {
    Admitted,
    /// Over budget: how long until the next request would be admitted.
    Over(Duration),
    /// The shared budget cannot be read, and the limit fails closed.
    Unavailable,
}

impl RateLimiter {
    /// A limiter for `per_minute` requests per principal, shared through `shared` when given.
    pub(crate) fn new(
        per_minute: NonZeroU32,
        metrics: Arc<Metrics>,
        shared: Option<(Arc<dyn SharedStore>, OnFailure)>,
    ) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute)),
            keys: std::hash::RandomState::new(),
            clock: DefaultClock::default(),
            metrics,
            per_minute,
            shared,
        }
    }

    /// Whether `principal` may make one more request now.
    async fn check(&self, principal: &Principal) -> Verdict {
        if let Some((store, on_failure)) = &self.shared {
            let (issuer, subject) = principal.identity();
            let identity =
                crate::digest::sha256(format!("{}\n{issuer}\n{subject}", issuer.len()).as_bytes());
            let key = format!("mcp:rate:{}", crate::shared_state::hex(&identity));
            match store.spend(&key, self.per_minute.get()).await {
                Ok(wait) => {
                    self.metrics.shared_state("rate_limit", true);
                    return wait.map_or(Verdict::Admitted, Verdict::Over);
                }
                Err(error) => {
                    self.metrics.shared_state("rate_limit", false);
                    tracing::warn!(%error, "rate limit: the shared state failed");
                    if *on_failure == OnFailure::Refuse {
                        return Verdict::Unavailable;
                    }
                }
            }
        }
        let key = self.keys.hash_one(principal.identity());
        match self.limiter.check_key(&key) {
            Ok(()) => Verdict::Admitted,
            Err(not_until) => Verdict::Over(not_until.wait_time_from(self.clock.now())),
        }
    }

    /// Drops the state of principals whose budget is full again (idle for a period): what bounds
    /// the limiter's memory. [`crate::App::serve`] calls it once a minute.
    pub(crate) fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// A `Retry-After` value for `wait`: whole seconds, rounded up, at least one (RFC 9110 §10.2.3).
pub(crate) fn retry_after(wait: Duration) -> HeaderValue {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(seconds.max(1))
}

/// Admission, after authentication: the 429 once the caller's budget is spent (503 when a
/// shared budget that fails closed cannot be read).
/// `principal` is the request's (an `Arc` clone: the request is not held across the store's
/// answer).
pub(crate) async fn limit_rate(
    limiter: &RateLimiter,
    principal: Option<Principal>,
) -> Option<Response> {
    let Some(principal) = principal else {
        return Some(no_principal_attached());
    };
    let verdict = limiter.check(&principal).await;
    if let Verdict::Unavailable = verdict {
        let mut response = error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ServerBusy,
            "The rate limit cannot be checked now; retry after the time in Retry-After",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Some(response);
    }
    if let Verdict::Over(wait) = verdict {
        tracing::debug!(wait_ms = wait.as_millis(), "rate limit reached");
        limiter.metrics.rate_limited();
        let mut response = error_response(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::ServerBusy,
            "Rate limit exceeded; retry after the time in Retry-After",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after(wait));
        return Some(response);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::auth::VerifiedBy;
    use crate::auth::claims::VerifiedClaims;
    use crate::shared_state::{Cursor, Revocation, StoreError};

    /// A store that never answers.
    #[derive(Debug)]
    struct Down;

    fn down<'a, T: Send + 'a>() -> BoxFuture<'a, Result<T, StoreError>> {
        Box::pin(async { Err(StoreError::TimedOut) })
    }

    impl SharedStore for Down {
        fn spend<'a>(
            &'a self,
            _: &'a str,
            _: u32,
        ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>> {
            down()
        }
        fn first_use<'a>(
            &'a self,
            _: &'a str,
            _: Duration,
        ) -> BoxFuture<'a, Result<bool, StoreError>> {
            down()
        }
        fn get_text<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
            down()
        }
        fn put_text<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
            _: Duration,
        ) -> BoxFuture<'a, Result<(), StoreError>> {
            down()
        }
        fn revoke<'a>(&'a self, _: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>> {
            down()
        }
        fn revocations_since<'a>(
            &'a self,
            _: &'a Cursor,
        ) -> BoxFuture<'a, Result<(Vec<Revocation>, Cursor), StoreError>> {
            down()
        }
    }

    fn alice() -> Principal {
        Principal::new(
            Arc::new(VerifiedClaims {
                issuer: "https://as.example".into(),
                subject: "alice".into(),
                audience: serde_json::Value::Null,
                expires_at: None,
                issued_at: None,
                token_id: None,
                client_id: None,
                scopes: Vec::new(),
                uid: None,
                dpop_jkt: None,
            }),
            VerifiedBy::Jwt,
        )
    }

    fn limiter(on_failure: OnFailure) -> RateLimiter {
        RateLimiter::new(
            NonZeroU32::new(2).unwrap(),
            Arc::new(Metrics::new(Vec::new())),
            Some((Arc::new(Down), on_failure)),
        )
    }

    /// With the store down, `refuse` answers 503 with `Retry-After`; `local` spends this
    /// replica's own budget (two, then 429).
    #[tokio::test]
    async fn a_store_that_fails_meets_the_configured_fallback() {
        let refused = limit_rate(&limiter(OnFailure::Refuse), Some(alice()))
            .await
            .expect("refused");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");

        let local = limiter(OnFailure::Local);
        assert!(limit_rate(&local, Some(alice())).await.is_none());
        assert!(limit_rate(&local, Some(alice())).await.is_none());
        let over = limit_rate(&local, Some(alice()))
            .await
            .expect("over budget");
        assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}
