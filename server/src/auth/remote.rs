//! Tokens this server cannot judge by itself: opaque access tokens (and, when configured, every
//! token of an issuer) are judged by the authorization server that issued them, through RFC 7662
//! introspection or Google's token-information endpoint (checklist P01-P05, P07).
//!
//! The answer is cached by a SHA-256 hash of the token (the token itself is never kept or
//! logged), bounded in entries, for at most the configured time and never past the token's
//! `exp`, so a token revoked at the authorization server is refused within that bound. Concurrent
//! requests with the same token share one call. An endpoint that cannot answer (down, slow,
//! garbage, 5xx) fails closed: 503, never a pass.
//!
//! Made-up tokens are never cached answers, so they are bounded before any call: a token too
//! short or too long to be an access token is refused unasked, each client address has a
//! budget of calls for tokens not in the cache (429 past it), and a refused token's answer is
//! kept for at least [`REFUSAL_KEPT`], so repeating it costs nothing.
//!
//! With a shared state store, an accepted answer is also kept there (for the same time, keyed by
//! the issuer, this server's audiences and the token's hash), so the other replicas do not ask
//! about a token one of them already asked about. Refusals stay local. A store that fails is
//! passed over: the authorization server is asked, as without one.

mod budget;
mod introspection;
mod token_info;

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use budget::AddressBudget;
pub(crate) use budget::OverBudget;

use super::authorization_server::AuthorizationServer;
use super::claims::VerifiedClaims;
use super::fetch::FetchUrl;
use super::policy::{ClientIdAudience, ValidationPolicy};
use super::principal::VerifiedBy;
use super::token::looks_like_jwt;
use super::token_cache::TokenHash;
use super::token_error::TokenError;
use crate::clock::Clock;
use crate::shared_state::SharedStore;
use crate::telemetry::Metrics;

/// How an issuer's tokens are judged when they are not verified locally.
#[derive(Debug, Clone)]
pub enum RemoteVerification {
    /// RFC 7662 token introspection with this server's own client credentials.
    Introspection(IntrospectionSettings),
    /// Google's token-information endpoint (Google access tokens are opaque).
    TokenInfo(TokenInfoSettings),
}

impl RemoteVerification {
    /// Whether JWTs of this issuer go to the remote endpoint too (not only opaque tokens).
    pub fn covers_jwts(&self) -> bool {
        match self {
            Self::Introspection(settings) => settings.every_token,
            Self::TokenInfo(_) => false,
        }
    }

    fn cache_for(&self) -> Duration {
        match self {
            Self::Introspection(settings) => settings.cache_for,
            Self::TokenInfo(settings) => settings.cache_for,
        }
    }
}

/// RFC 7662 introspection, as this server's OAuth client at the authorization server.
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    /// The endpoint; `None` reads `introspection_endpoint` from the issuer's metadata.
    pub endpoint: Option<FetchUrl>,
    /// This server's client id at the authorization server.
    pub client_id: String,
    /// Its secret.
    pub client_secret: ClientSecret,
    /// How the credentials are sent.
    pub client_auth: ClientAuthMethod,
    /// Introspect JWTs too (the authorization server then decides on every token, so a revoked
    /// JWT is refused as soon as the cache lets go), not only tokens that are not JWTs.
    pub every_token: bool,
    /// How long an answer is reused (never past the token's `exp`).
    pub cache_for: Duration,
    /// Whether an answer must name this server in `aud`.
    pub audience: IntrospectedAudience,
}

/// Whether an introspection answer must carry an `aud` naming this server. The MCP
/// authorization spec requires a resource server to check that a token was issued for it, so an
/// answer without `aud` is refused unless the deployment says its authorization server never
/// sends one (then every active token of that issuer is taken as meant for this server: scope
/// it to this resource at the authorization server).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IntrospectedAudience {
    /// `aud` must be present and name this server (the default).
    #[default]
    Required,
    /// The authorization server never sends `aud`: a missing one is accepted, a present one
    /// must still name this server.
    CheckedWhenPresent,
}

/// Google's token-information endpoint: a Google access token is accepted when Google says it is
/// live and was issued to one of this deployment's OAuth clients.
#[derive(Debug, Clone)]
pub struct TokenInfoSettings {
    /// `https://oauth2.googleapis.com/tokeninfo`, or a test double.
    pub endpoint: FetchUrl,
    /// The OAuth client ids whose tokens are for this server (`aud` or `azp`).
    pub client_ids: ClientIdAudience,
    /// How long an answer is reused (never past the token's expiry).
    pub cache_for: Duration,
}

impl TokenInfoSettings {
    /// Google's endpoint.
    pub const GOOGLE: &str = "https://oauth2.googleapis.com/tokeninfo";
}

/// A client secret: shown as `[redacted]` in every `Debug` output and log line.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// RFC 6749 §2.3.1 client authentication at the introspection endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// `client_secret_basic` (what RFC 7662 §2.1 shows, and the default).
    #[default]
    Basic,
    /// `client_secret_post`.
    Post,
}

/// Why no verdict on a token could be had from the remote endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RemoteFailure {
    /// The endpoint cannot answer: 503.
    #[error(transparent)]
    Unavailable(#[from] RemoteUnavailable),
    /// The client's address has spent its budget of calls: 429.
    #[error("too many unknown tokens from this client address")]
    OverBudget(OverBudget),
}

/// Why the remote endpoint could not judge a token: the request fails closed with 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the authorization server cannot judge the token right now")]
pub(crate) struct RemoteUnavailable;

/// What the remote endpoint said, and until when (Unix seconds, server clock) it may be reused.
#[derive(Debug)]
struct Verdict {
    judged: Result<VerifiedClaims, TokenError>,
    reuse_until: i64,
}

/// Judges tokens at one issuer's endpoint, with the cache.
pub(crate) struct RemoteVerifier {
    method: RemoteVerification,
    authorization_server: Arc<AuthorizationServer>,
    policy: ValidationPolicy,
    clock: Arc<dyn Clock>,
    cache: moka::future::Cache<TokenHash, Arc<Verdict>>,
    /// Bounds the calls in flight: a flood of made-up opaque tokens (each one new, so never
    /// cached) must not become a flood at the authorization server.
    in_flight: tokio::sync::Semaphore,
    /// Bounds the calls each client address may cause; `None`: unbounded (configured so).
    budget: Option<AddressBudget>,
    /// Whether the last call failed: an outage is logged once when it begins.
    failing: AtomicBool,
    /// Where replicas share accepted answers, and the key prefix of this verifier's.
    shared: Option<SharedAnswers>,
}

/// Accepted answers shared by replicas.
struct SharedAnswers {
    store: Arc<dyn SharedStore>,
    metrics: Arc<Metrics>,
    /// `mcp:answer:` and a hash of the issuer and the audiences: a store serving several
    /// deployments never hands one an answer judged for another's audience.
    prefix: String,
}

impl fmt::Debug for RemoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteVerifier")
            .field("method", &self.method)
            .field("issuer", self.policy.issuer())
            .field("cached", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Answers kept at most: enough for every live token of a busy deployment, bounded against a
/// flood of distinct made-up tokens.
const MAX_CACHED: u64 = 100_000;

/// Calls to the remote endpoint in flight at most; more wait (within the request timeout).
const MAX_IN_FLIGHT: usize = 32;

/// How long a refused token's answer is kept at least, whatever the cache time: a refusal
/// cannot become wrong by being reused, and a repeated made-up token then costs no call. Not a
/// token refused as not yet valid: that one is asked about again once it may be.
pub(crate) const REFUSAL_KEPT: Duration = Duration::from_secs(30);

/// How long after its answer's reuse time a token accepted before still counts as known: asking
/// about it again spends no client's budget.
const KNOWN_FOR: Duration = Duration::from_secs(600);

/// The lengths an opaque access token can have. RFC 6749 §10.10 and RFC 6750 §5.2 want at least
/// 128 bits of entropy (22 base64 characters); 16 leaves room for short formats. Real opaque
/// tokens are tens to a few hundred characters; longer ones are JWTs, judged here.
const OPAQUE_TOKEN_LENGTHS: std::ops::RangeInclusive<usize> = 16..=4096;

impl RemoteVerifier {
    pub(crate) fn new(
        method: RemoteVerification,
        authorization_server: Arc<AuthorizationServer>,
        policy: ValidationPolicy,
        clock: Arc<dyn Clock>,
        budget_per_minute: Option<NonZeroU32>,
    ) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(MAX_CACHED)
            // A memory bound, and how long a token counts as known (see `verify`); reuse is
            // decided by `reuse_until` on the server's clock.
            .time_to_live(method.cache_for().max(REFUSAL_KEPT) + KNOWN_FOR)
            .build();
        Self {
            method,
            authorization_server,
            policy,
            clock,
            cache,
            in_flight: tokio::sync::Semaphore::new(MAX_IN_FLIGHT),
            budget: budget_per_minute.map(AddressBudget::new),
            failing: AtomicBool::new(false),
            shared: None,
        }
    }

    /// The same, sharing accepted answers through `store` (when given).
    pub(crate) fn with_shared_answers(
        mut self,
        store: Option<(Arc<dyn SharedStore>, Arc<Metrics>)>,
    ) -> Self {
        let prefix = answer_prefix(&self.policy);
        self.shared = store.map(|(store, metrics)| SharedAnswers {
            store,
            metrics,
            prefix,
        });
        self
    }

    /// An accepted answer another replica shared, still usable now.
    async fn shared_answer(&self, key: &TokenHash) -> Option<VerifiedClaims> {
        let shared = self.shared.as_ref()?;
        let stored = shared
            .store
            .get_text(&format!(
                "{}{}",
                shared.prefix,
                crate::shared_state::hex(key)
            ))
            .await;
        shared.metrics.shared_state("introspection", stored.is_ok());
        let claims: VerifiedClaims = serde_json::from_str(&stored.ok()??).ok()?;
        // Never past the token's own expiry, whatever the store kept.
        let live = claims.expires_at.is_none_or(|exp| self.clock.now() <= exp);
        live.then_some(claims)
    }

    /// Shares an accepted `verdict` with the other replicas, for as long as it may be reused.
    async fn share(&self, key: &TokenHash, verdict: &Verdict) {
        let (Some(shared), Ok(claims)) = (&self.shared, &verdict.judged) else {
            return;
        };
        let Ok(text) = serde_json::to_string(claims) else {
            return;
        };
        let left = verdict.reuse_until.saturating_sub(self.clock.now());
        let Ok(left) = u64::try_from(left) else {
            return;
        };
        if left == 0 {
            return;
        }
        let stored = shared
            .store
            .put_text(
                &format!("{}{}", shared.prefix, crate::shared_state::hex(key)),
                &text,
                Duration::from_secs(left),
            )
            .await;
        shared.metrics.shared_state("introspection", stored.is_ok());
    }

    /// Whether JWTs go here too.
    pub(crate) fn covers_jwts(&self) -> bool {
        self.method.covers_jwts()
    }

    /// How `get_me` reports tokens judged here.
    pub(crate) fn verified_by(&self) -> VerifiedBy {
        match self.method {
            RemoteVerification::Introspection(_) => VerifiedBy::Introspection,
            RemoteVerification::TokenInfo(_) => VerifiedBy::TokenInfo,
        }
    }

    /// Judges `token` (whose [`token_hash`](super::token_cache::token_hash) is `key`), sent
    /// from `client`: from the cache while the answer may be reused, else by asking (one call
    /// per token however many requests wait for it), within `client`'s budget.
    pub(crate) async fn verify(
        &self,
        token: &str,
        key: TokenHash,
        client: Option<IpAddr>,
    ) -> Result<Result<VerifiedClaims, TokenError>, RemoteFailure> {
        // A token routed here that the router judged a JWT is one this issuer introspects (it
        // covers JWTs): the opaque lengths are not its limits. Asked only of a token outside
        // them, so the usual request parses nothing here.
        if !OPAQUE_TOKEN_LENGTHS.contains(&token.len()) && !looks_like_jwt(token) {
            return Ok(Err(TokenError::Malformed(
                "the token cannot be an access token of this issuer",
            )));
        }
        let known = self.cache.get(&key).await;
        if let Some(verdict) = &known
            && self.clock.now() < verdict.reuse_until
        {
            return Ok(verdict.judged.clone());
        }
        // Asking again about a token accepted before (its answer past its reuse time) is what
        // every live token costs once per cache period: free. Any other token spends the budget,
        // so a stock of refused tokens cannot be asked about again for nothing.
        let accepted_before = known.as_ref().is_some_and(|verdict| verdict.judged.is_ok());
        if !accepted_before && let (Some(budget), Some(client)) = (&self.budget, client) {
            budget.spend(client).map_err(RemoteFailure::OverBudget)?;
        }
        for _ in 0..2 {
            let entry = self
                .cache
                .entry(key)
                .or_try_insert_with(async {
                    if let Some(claims) = self.shared_answer(&key).await {
                        return Ok(Arc::new(self.verdict(Ok(claims))));
                    }
                    let verdict = self.verdict(self.ask(token).await?);
                    self.share(&key, &verdict).await;
                    Ok::<_, RemoteUnavailable>(Arc::new(verdict))
                })
                .await
                .map_err(|error: Arc<RemoteUnavailable>| (*error).clone())?;
            // An answer just fetched is used even when it may not be reused (cache time 0).
            if entry.is_fresh() || self.clock.now() < entry.value().reuse_until {
                return Ok(entry.value().judged.clone());
            }
            // Past its reuse time (or the token's expiry): ask again.
            self.cache.invalidate(&key).await;
        }
        Err(RemoteUnavailable.into())
    }

    /// Until when an answer may be reused: the configured time, never past `exp`; a refusal at
    /// least [`REFUSAL_KEPT`].
    fn verdict(&self, judged: Result<VerifiedClaims, TokenError>) -> Verdict {
        let now = self.clock.now();
        let cache_for = match judged {
            Ok(_) | Err(TokenError::NotYetValid) => self.method.cache_for(),
            Err(_) => self.method.cache_for().max(REFUSAL_KEPT),
        };
        let cache_for = i64::try_from(cache_for.as_secs()).unwrap_or(i64::MAX);
        let mut reuse_until = now.saturating_add(cache_for);
        if let Ok(VerifiedClaims {
            expires_at: Some(exp),
            ..
        }) = &judged
        {
            reuse_until = reuse_until.min(exp.saturating_add(1));
        }
        Verdict {
            judged,
            reuse_until,
        }
    }

    async fn ask(
        &self,
        token: &str,
    ) -> Result<Result<VerifiedClaims, TokenError>, RemoteUnavailable> {
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| RemoteUnavailable)?;
        let now = self.clock.now();
        let answer = match &self.method {
            RemoteVerification::Introspection(settings) => {
                let endpoint = match &settings.endpoint {
                    Some(endpoint) => endpoint.clone(),
                    None => self
                        .authorization_server
                        .introspection_endpoint()
                        .await
                        .map_err(|error| {
                            self.outage_began(&error, "no introspection endpoint");
                            RemoteUnavailable
                        })?,
                };
                introspection::introspect(
                    self.authorization_server.fetcher(),
                    &endpoint,
                    settings,
                    token,
                )
                .await
                .map(|document| {
                    introspection::judge(&document, now, &self.policy, settings.audience)
                })
            }
            RemoteVerification::TokenInfo(settings) => {
                token_info::ask(self.authorization_server.fetcher(), settings, token)
                    .await
                    .map(|answer| {
                        answer.and_then(|document| {
                            token_info::judge(&document, now, settings, &self.policy)
                        })
                    })
            }
        };
        match answer {
            Ok(judged) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(issuer = %self.policy.issuer(), "remote token verification answers again");
                }
                Ok(judged)
            }
            Err(error) => {
                // The URL carries no token (it is in the body); the error says what failed.
                self.outage_began(&error, "remote token verification unavailable");
                Err(RemoteUnavailable)
            }
        }
    }

    /// Logs a failure: a warning when an outage begins, then debug per request until an answer
    /// comes again (every request of an outage fails the same way).
    fn outage_began(&self, error: &(dyn std::error::Error + 'static), what: &'static str) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(error, issuer = %self.policy.issuer(), "{what}");
        } else {
            tracing::warn!(error, issuer = %self.policy.issuer(), "{what}");
        }
    }
}

/// Where a verifier's shared answers live: `mcp:answer:` and a hash of the issuer and the
/// audiences, so a store shared by deployments never serves an answer judged for another
/// audience.
fn answer_prefix(policy: &ValidationPolicy) -> String {
    let mut scope = policy.issuer().as_str().to_owned();
    for audience in policy.audiences() {
        scope.push('\n');
        scope.push_str(audience.as_str());
    }
    let scope = crate::digest::sha256(scope.as_bytes());
    format!("mcp:answer:{}:", crate::shared_state::hex(&scope[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::authorization_server::Issuer;
    use crate::auth::policy::Audience;

    fn policy(issuer: &str, audience: &str) -> ValidationPolicy {
        ValidationPolicy::new(
            Issuer::parse(issuer).unwrap(),
            Audience::new(audience).unwrap(),
        )
    }

    /// An answer judged for one audience (or issuer) is never found under another's key.
    #[test]
    fn shared_answers_are_kept_apart_by_issuer_and_audience() {
        let ours = answer_prefix(&policy("https://as.example", "https://a.example/mcp"));
        assert_eq!(
            ours,
            answer_prefix(&policy("https://as.example", "https://a.example/mcp")),
            "replicas of one deployment share"
        );
        assert_ne!(
            ours,
            answer_prefix(&policy("https://as.example", "https://b.example/mcp"))
        );
        assert_ne!(
            ours,
            answer_prefix(&policy("https://as2.example", "https://a.example/mcp"))
        );
    }
}
