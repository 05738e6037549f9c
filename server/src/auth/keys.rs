//! The authorization server's keys: loaded at start (readiness waits for them), cached honouring
//! `Cache-Control` within bounds, refreshed at most once per cooldown for unknown `kid`s
//! (single-flight), kept for a bounded time when refreshes fail (stale-if-error), and then failed
//! closed (checklist G01, G05, D12).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use std::time::Duration;

use super::authorization_server::{AuthorizationServer, DiscoveryError};
use super::fetch::{FetchError, FetchUrl};
use super::key_set::{JwksError, KeySet};
use crate::clock::Clock;
use crate::telemetry::Metrics;

/// How keys are fetched and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySourceSettings {
    /// Timeout of each JWKS or metadata fetch.
    pub timeout: Duration,
    /// Largest JWKS or metadata document.
    pub max_bytes: usize,
    /// Minimum interval between refreshes triggered by unknown `kid`s (G05).
    pub cooldown: Duration,
    /// How long stale keys are used while refreshes fail (D12 bounds it).
    pub stale_for: Duration,
}

impl Default for KeySourceSettings {
    /// 5 s per fetch, 256 KiB per document, one unknown-`kid` refresh per 30 s, an hour of
    /// stale keys while the authorization server is down.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_bytes: 256 * 1024,
            cooldown: Duration::from_secs(30),
            stale_for: Duration::from_secs(3600),
        }
    }
}

/// Why no keys can be used right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeysUnavailable {
    /// No JWKS has been loaded yet.
    #[error("the authorization server's keys are not loaded yet")]
    NotLoaded,
    /// The last good JWKS is older than freshness plus the stale window.
    #[error("the authorization server's keys are stale and cannot be refreshed")]
    Stale,
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// `jwks_uri` could not be discovered.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The JWKS could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The JWKS was fetched but yields no key set.
    #[error("{url}: {source}")]
    Jwks {
        /// The JWKS URL.
        url: String,
        /// What is wrong with the document.
        #[source]
        source: JwksError,
    },
}

/// The step of loading keys that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyStep {
    /// The authorization server metadata (RFC 8414 / OIDC discovery document).
    Discovery,
    /// The JWKS itself.
    Jwks,
}

impl KeyStep {
    /// As the logs name it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery document",
            Self::Jwks => "JWKS",
        }
    }
}

impl std::fmt::Display for KeyStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RefreshError {
    /// Which step failed: discovery or the JWKS.
    pub(crate) fn step(&self) -> KeyStep {
        match self {
            Self::Discovery(_) => KeyStep::Discovery,
            Self::Fetch(_) | Self::Jwks { .. } => KeyStep::Jwks,
        }
    }

    /// The URL whose fetch or document failed.
    pub(crate) fn url(&self) -> &str {
        match self {
            Self::Discovery(DiscoveryError::Fetch(error)) | Self::Fetch(error) => fetch_url(error),
            Self::Discovery(
                DiscoveryError::IssuerMismatch { url, .. }
                | DiscoveryError::NoJwksUri { url }
                | DiscoveryError::NoIntrospectionEndpoint { url },
            )
            | Self::Jwks { url, .. } => url,
            Self::Discovery(DiscoveryError::CoolingDown { issuer, .. }) => issuer,
        }
    }

    /// Whether retrying cannot help (metadata naming another issuer).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Discovery(error) if error.is_permanent())
    }
}

/// The key sources of every issuer whose JWTs are verified here.
#[derive(Debug, Default)]
pub(crate) struct KeySources(Vec<Arc<KeySource>>);

impl KeySources {
    pub(crate) fn new(sources: Vec<Arc<KeySource>>) -> Self {
        Self(sources)
    }

    /// Ready when every issuer's keys are (readiness): a request for any of them could come.
    pub(crate) fn is_ready(&self) -> bool {
        self.0.iter().all(|source| source.is_ready())
    }

    /// Each source.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<KeySource>> {
        self.0.iter()
    }

    /// Each issuer's key age, for the metrics.
    pub(crate) fn ages(&self) -> Vec<(String, Option<i64>)> {
        self.0.iter().map(|source| source.age()).collect()
    }
}

/// Caches the AS's keys and decides when to fetch them again.
#[derive(Debug)]
pub(crate) struct KeySource {
    authorization_server: Arc<AuthorizationServer>,
    settings: KeySourceSettings,
    clock: Arc<dyn Clock>,
    /// What every request reads: swapped whole by a refresh, read without a lock.
    current: ArcSwap<Loaded>,
    /// When fetches happened: read and written on the refresh paths only.
    state: Mutex<CacheState>,
    /// Single-flight: one fetch at a time; waiters then see its result.
    fetching: tokio::sync::Mutex<()>,
    metrics: Arc<Metrics>,
    /// Whether the last refresh failed: a failure is logged at `warn` when it begins, not on
    /// every retry.
    failing: AtomicBool,
}

/// The keys and how long they may be used.
#[derive(Debug, Default)]
struct Loaded {
    keys: Option<Arc<KeySet>>,
    fresh_until: i64,
    stale_until: i64,
}

#[derive(Debug, Default)]
struct CacheState {
    last_attempt: Option<i64>,
    /// When a fetch last succeeded (for the `jwks_age_seconds` gauge).
    last_success: Option<i64>,
    /// When an unknown `kid` last triggered a fetch: these are rate-limited on their own, so a
    /// rotation right after start is still picked up at once.
    last_kid_refresh: Option<i64>,
    attempts: u64,
}

impl KeySource {
    /// A key source with nothing loaded; call [`KeySource::refresh`] or [`KeySource::keys`].
    pub(crate) fn new(
        authorization_server: Arc<AuthorizationServer>,
        settings: KeySourceSettings,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            authorization_server,
            settings,
            clock,
            current: ArcSwap::from_pointee(Loaded::default()),
            state: Mutex::new(CacheState::default()),
            fetching: tokio::sync::Mutex::new(()),
            metrics,
            failing: AtomicBool::new(false),
        }
    }

    /// Whether usable keys have been loaded and are not past their stale window (readiness).
    pub(crate) fn is_ready(&self) -> bool {
        let loaded = self.current.load();
        loaded.keys.as_ref().is_some_and(|keys| !keys.is_empty())
            && self.clock.now() < loaded.stale_until
    }

    /// The keys to validate with: cached while fresh; refreshed when expired (unless a fetch
    /// happened within the cooldown); stale keys while refreshes fail, within the stale window.
    ///
    /// # Errors
    /// [`KeysUnavailable`] when nothing usable is cached and no fetch succeeds.
    pub(crate) async fn keys(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        let now = self.clock.now();
        {
            let loaded = self.current.load();
            if let Some(keys) = &loaded.keys
                && now < loaded.fresh_until
            {
                return Ok(Arc::clone(keys));
            }
        }
        if self.cooldown_over(now) {
            // A failure is logged by `refresh`; what is cached (if anything) still decides.
            let _ = self.refresh().await;
        }
        self.usable(self.clock.now())
    }

    /// Called when a token names a `kid` the cached keys lack: refetches, at most once per
    /// cooldown (so random `kid`s cannot multiply fetches, G05).
    pub(crate) async fn refresh_for_unknown_kid(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        let now = self.clock.now();
        let cooldown = secs(self.settings.cooldown);
        let allowed = {
            let mut state = self.state();
            let allowed = state
                .last_kid_refresh
                .is_none_or(|last| now >= last.saturating_add(cooldown));
            if allowed {
                state.last_kid_refresh = Some(now);
            }
            allowed
        };
        if allowed {
            let _ = self.refresh().await;
        }
        self.usable(self.clock.now())
    }

    /// Fetches the JWKS now (single-flight: concurrent callers wait for one fetch and share it).
    ///
    /// # Errors
    /// [`RefreshError`] from discovery or the JWKS fetch; the cache keeps its last good keys.
    pub(crate) async fn refresh(&self) -> Result<(), RefreshError> {
        let started = self.state().attempts;
        let _one_fetch = self.fetching.lock().await;
        if self.state().attempts != started {
            // Another caller fetched while we waited; its result is ours.
            return Ok(());
        }
        let now = self.clock.now();
        {
            let mut state = self.state();
            state.last_attempt = Some(now);
            state.attempts += 1;
        }
        let fetched = self.fetch().await;
        self.metrics
            .jwks_fetched(self.authorization_server.issuer().as_str(), fetched.is_ok());
        match fetched {
            Ok((keys, max_age)) => {
                self.state().last_success = Some(now);
                if self.failing.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        issuer = self.authorization_server.issuer().as_str(),
                        "the authorization server's keys can be fetched again"
                    );
                }
                let ttl = max_age
                    .unwrap_or(DEFAULT_TTL)
                    .clamp(MIN_TTL, MAX_TTL)
                    .as_secs();
                let fresh_until = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
                let stale_until = fresh_until.saturating_add(secs(self.settings.stale_for));
                if keys.is_empty() {
                    tracing::warn!(
                        ttl,
                        "the authorization server publishes no usable signing key; every token is refused until it does"
                    );
                } else {
                    tracing::info!(keys = keys.len(), ttl, "authorization server keys loaded");
                }
                self.current.store(Arc::new(Loaded {
                    keys: Some(keys),
                    fresh_until,
                    stale_until,
                }));
                Ok(())
            }
            Err(error) => {
                self.log_failure(&error);
                Err(error)
            }
        }
    }

    /// Logs a failed refresh: at `warn` when a failure begins (the first one, or the first after
    /// a success), naming the step that failed, its URL and the setting to check; at `debug`
    /// while it lasts, since retries and requests repeat it every few seconds.
    fn log_failure(&self, error: &RefreshError) {
        let began = !self.failing.swap(true, Ordering::AcqRel);
        let step = error.step();
        let url = error.url();
        let check = self.setting_to_check(step);
        let issuer = self.authorization_server.issuer().as_str();
        let error = error as &dyn std::error::Error;
        if !began {
            tracing::debug!(
                issuer,
                step = step.as_str(),
                url,
                error,
                "still cannot fetch the {step}"
            );
        } else if self.current.load().keys.is_some() {
            tracing::warn!(
                issuer,
                step = step.as_str(),
                url,
                check,
                error,
                "fetching the {step} failed; serving the last good keys while they are within the stale window"
            );
        } else {
            tracing::warn!(
                issuer,
                step = step.as_str(),
                url,
                check,
                error,
                "cannot load the authorization server's keys: fetching the {step} failed; tokens are refused and /readyz answers 503 until it succeeds"
            );
        }
    }

    /// Which setting decides the URL that failed, so the warning says what to look at.
    fn setting_to_check(&self, step: KeyStep) -> &'static str {
        let configured = self.authorization_server.configured();
        match step {
            KeyStep::Discovery if configured.metadata_url.is_some() => {
                "OAUTH_WELL_KNOWN_URL (the metadata URL fetched)"
            }
            KeyStep::Discovery => {
                "OAUTH_ISSUER (or the issuer's entry in OAUTH_EXTRA_ISSUERS / OAUTH_ISSUERS_FILE): \
                 its scheme, host, port and path give the metadata URLs tried; \
                 OAUTH_WELL_KNOWN_URL names the metadata URL, OAUTH_JWKS_URI the keys without discovery"
            }
            KeyStep::Jwks if configured.jwks_uri.is_some() => {
                "OAUTH_JWKS_URI (the JWKS URL fetched)"
            }
            KeyStep::Jwks => {
                "the jwks_uri of the authorization server's metadata (found through OAUTH_ISSUER \
                 or OAUTH_WELL_KNOWN_URL); OAUTH_JWKS_URI overrides it"
            }
        }
    }

    async fn fetch(&self) -> Result<(Arc<KeySet>, Option<Duration>), RefreshError> {
        let jwks_uri: FetchUrl = self.authorization_server.jwks_uri().await?;
        let fetched = self.authorization_server.fetcher().json(&jwks_uri).await?;
        let keys = KeySet::from_jwks(&fetched.document).map_err(|source| RefreshError::Jwks {
            url: jwks_uri.to_string(),
            source,
        })?;
        Ok((Arc::new(keys), fetched.max_age))
    }

    fn usable(&self, now: i64) -> Result<Arc<KeySet>, KeysUnavailable> {
        let loaded = self.current.load();
        match &loaded.keys {
            None => Err(KeysUnavailable::NotLoaded),
            Some(_) if now >= loaded.stale_until => Err(KeysUnavailable::Stale),
            Some(keys) => Ok(Arc::clone(keys)),
        }
    }

    /// The issuer these keys are for, and seconds since they were last fetched (`None`: never).
    pub(crate) fn age(&self) -> (String, Option<i64>) {
        let last = self.state().last_success;
        (
            self.authorization_server.issuer().to_string(),
            last.map(|at| self.clock.now().saturating_sub(at)),
        )
    }

    fn cooldown_over(&self, now: i64) -> bool {
        let cooldown = secs(self.settings.cooldown);
        self.state()
            .last_attempt
            .is_none_or(|last| now >= last.saturating_add(cooldown))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        // Every write replaces whole fields, so a poisoned lock still holds a consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn fetch_url(error: &FetchError) -> &str {
    match error {
        FetchError::Unreachable { url, .. }
        | FetchError::Status { url, .. }
        | FetchError::TooLarge { url, .. }
        | FetchError::NotJson { url, .. }
        | FetchError::NotAnObject { url } => url,
    }
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Used when the JWKS response has no `Cache-Control` max-age.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// A `max-age` below this is raised: refetching every second only loads the IdP.
const MIN_TTL: Duration = Duration::from_secs(60);
/// A `max-age` above this is lowered, so a rotation is noticed within a day.
const MAX_TTL: Duration = Duration::from_secs(86_400);
