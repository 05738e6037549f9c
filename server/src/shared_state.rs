//! State that replicas share, so that scaling out keeps three promises a single process keeps by
//! itself: one principal's rate limit is one budget, a DPoP proof is accepted once, and a token
//! revoked once is refused everywhere.
//!
//! Without it (the default) each process keeps its own, as it always did. With
//! `MCP_STATE_URL=redis://…` (Redis or Valkey) the three live there, behind one small trait: a
//! small trait that stores and counts, and decides nothing. What a use does when the store is
//! slow or down is a setting, never an accident: every call is bounded by a timeout, a failure is
//! counted and logged, and the connection comes back by itself.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub(crate) mod redis_store;
pub(crate) mod revocations;

pub use redis_store::StateUrl;

/// Where replicas share state, and what each use does when it cannot be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStateSettings {
    /// The Redis or Valkey server (`redis://` or `rediss://` for TLS; a user and password may
    /// be in the URL).
    pub url: StateUrl,
    /// The longest one call may take; longer counts as a failure.
    pub timeout: Duration,
    /// How often each replica reads the revocations pushed since it last looked: the bound on
    /// how late a revocation takes effect.
    pub revocation_poll: Duration,
    /// What the rate limit does when the store fails.
    pub rate_limit_on_failure: OnFailure,
    /// What the DPoP replay check does when the store fails.
    pub dpop_replay_on_failure: OnFailure,
}

impl SharedStateSettings {
    /// The store at `url`, with a 100 ms timeout, revocations read every second, the rate limit
    /// falling back to this replica's own budget and the DPoP replay check failing closed.
    ///
    /// ```
    /// use mcp_oauth_server::settings::{OnFailure, SharedStateSettings, StateUrl};
    ///
    /// let shared = SharedStateSettings::new(StateUrl::parse("redis://127.0.0.1:6379/0").unwrap());
    /// assert_eq!(shared.dpop_replay_on_failure, OnFailure::Refuse);
    /// ```
    pub fn new(url: StateUrl) -> Self {
        Self {
            url,
            timeout: Duration::from_millis(100),
            revocation_poll: Duration::from_secs(1),
            rate_limit_on_failure: OnFailure::Local,
            dpop_replay_on_failure: OnFailure::Refuse,
        }
    }
}

/// What a use of the shared state does when the store fails (times out, refuses, is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Use this replica's own state, as without a store: the request is judged, less strictly
    /// (a budget per replica, a proof replayed at another replica not seen).
    Local,
    /// Refuse the request with 503 and `Retry-After`: nothing is accepted that the shared state
    /// could not vouch for.
    Refuse,
}

/// Why a call to the store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// No connection, or the store answered with an error.
    #[error("the shared state store is unavailable: {0}")]
    Unavailable(String),
    /// No answer within the timeout.
    #[error("the shared state store did not answer in time")]
    TimedOut,
}

/// A position in the revocation log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor(pub(crate) String);

impl Default for Cursor {
    /// The beginning: a new replica reads every revocation still in the log.
    fn default() -> Self {
        Self("0-0".to_owned())
    }
}

/// What replicas share. Each call is bounded by the store's timeout.
pub(crate) trait SharedStore: Send + Sync + fmt::Debug {
    /// Spends one request of `key`'s budget of `per_minute` (bursts up to the same), by GCRA:
    /// `None` when admitted, else how long until the next one would be.
    fn spend<'a>(
        &'a self,
        key: &'a str,
        per_minute: u32,
    ) -> BoxFuture<'a, Result<Option<Duration>, StoreError>>;

    /// Records `id` for `ttl` unless it is already there: whether it was new.
    fn first_use<'a>(
        &'a self,
        id: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The text stored at `key`, if any.
    fn get_text<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<String>, StoreError>>;

    /// Stores `value` at `key` for `ttl`.
    fn put_text<'a>(
        &'a self,
        key: &'a str,
        value: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Appends `revocation` to the log every replica reads.
    fn revoke<'a>(&'a self, revocation: &'a Revocation) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The revocations appended after `cursor`, and the cursor after them.
    fn revocations_since<'a>(
        &'a self,
        cursor: &'a Cursor,
    ) -> BoxFuture<'a, Result<(Vec<Revocation>, Cursor), StoreError>>;
}

/// A revocation pushed once and honoured by every replica: a token, every token of a subject
/// issued before a time, or a token by its `jti`. Entries are kept until `until` (seconds since
/// the epoch): past it, the tokens concerned have expired anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What is revoked.
    pub revoked: Revoked,
    /// When the entry may be forgotten (when the tokens it concerns have expired).
    pub until: i64,
}

/// What a [`Revocation`] revokes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revoked {
    /// One token, by its [`token_fingerprint`] (the token itself is never stored).
    Token {
        /// Lower-case hex of the token's [`token_fingerprint`].
        sha256: String,
    },
    /// Every token of `subject` at `issuer` issued at or before `before` (a signed-out or
    /// deprovisioned user; tokens without `iat` included).
    Subject {
        /// The issuer identifier.
        issuer: String,
        /// The `sub`.
        subject: String,
        /// Seconds since the epoch.
        before: i64,
    },
    /// One token by its `jti`.
    TokenId {
        /// The issuer identifier.
        issuer: String,
        /// The `jti`.
        jti: String,
    },
}

impl Revocation {
    /// The revocation of the token `token`, kept for `keep` from `now` (seconds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mcp_oauth_server::shared_state::{Revocation, Revoked, token_fingerprint};
    ///
    /// let revocation = Revocation::token("eyJh.eyJz.sig", 1_800_000_000, Duration::from_secs(3_600));
    /// assert_eq!(revocation.until, 1_800_003_600);
    /// assert!(matches!(revocation.revoked, Revoked::Token { .. }));
    /// // A JWT is named by what its signature covers, so a re-encoded signature names it too.
    /// assert_eq!(token_fingerprint("eyJh.eyJz.sig"), token_fingerprint("eyJh.eyJz.other-sig"));
    /// ```
    pub fn token(token: &str, now: i64, keep: Duration) -> Self {
        Self {
            revoked: Revoked::Token {
                sha256: hex(&token_fingerprint(token)),
            },
            until: now.saturating_add(secs(keep)),
        }
    }
}

/// What names a token in a revocation: the SHA-256 of a JWT's signed part (`header.payload`),
/// or of an opaque token whole. Not of a JWT whole: an ECDSA signature has a second valid form
/// (`s` and `n - s`), so a thief could re-encode a revoked token's signature and present a token
/// that verifies and hashes differently.
pub fn token_fingerprint(token: &str) -> [u8; 32] {
    let signed = match token.rsplit_once('.') {
        Some((signed, _)) if signed.matches('.').count() == 1 => signed,
        _ => token,
    };
    crate::digest::sha256(signed.as_bytes())
}

/// The longest a revocation may be kept: the log drops older entries.
pub const MAX_KEEP: Duration = Duration::from_secs(30 * 86_400);

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

pub(crate) fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Pushes `revocation` to the store at `settings.url`, for every replica to honour within its
/// poll interval: what `mcp-oauth-server revoke` does.
///
/// # Errors
/// When the store cannot be reached or refuses.
pub async fn push_revocation(
    settings: &SharedStateSettings,
    revocation: &Revocation,
) -> Result<(), PushError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| PushError(e.to_string()))?;
    if revocation.until > secs(now).saturating_add(secs(MAX_KEEP)) {
        return Err(PushError(format!(
            "a revocation is kept at most {} days",
            MAX_KEEP.as_secs() / 86_400
        )));
    }
    let store = redis_store::RedisStore::new(settings).map_err(|e| PushError(e.to_string()))?;
    store
        .revoke(revocation)
        .await
        .map_err(|e| PushError(e.to_string()))
}

/// Why a revocation could not be pushed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PushError(String);

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's `#insecure` (no certificate checks) is refused, never silently honoured.
    #[test]
    fn a_url_that_would_turn_off_tls_checks_is_refused() {
        assert!(StateUrl::parse("rediss://redis.internal:6380/0").is_ok());
        let refused = StateUrl::parse("rediss://redis.internal:6380/0#insecure").unwrap_err();
        assert!(refused.contains("#insecure"), "{refused}");
    }

    /// The store's password never shows in the settings' debug output (logs, panics).
    #[test]
    fn the_password_is_not_shown() {
        let url = StateUrl::parse("redis://:s3cr3t-pw@redis.internal:6379/0").unwrap();
        let shown = format!("{:?}", SharedStateSettings::new(url));
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("redis.internal"), "{shown}");
    }

    /// A revocation kept past [`MAX_KEEP`] would outlive the log's trim: refused before any call.
    #[tokio::test]
    async fn a_revocation_kept_longer_than_the_log_is_refused() {
        let settings = SharedStateSettings::new(StateUrl::parse("redis://127.0.0.1:1/0").unwrap());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let too_long = Revocation::token(
            "t",
            i64::try_from(now).unwrap(),
            MAX_KEEP + Duration::from_secs(86_400),
        );
        let refused = push_revocation(&settings, &too_long).await.unwrap_err();
        assert!(refused.to_string().contains("30 days"), "{refused}");
    }
}
