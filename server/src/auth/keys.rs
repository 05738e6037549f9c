//! The authorization server's keys: loaded at start (readiness waits for them), cached honouring
//! `Cache-Control` within bounds, refreshed at most once per cooldown for unknown `kid`s
//! (single-flight), kept for a bounded time when refreshes fail (stale-if-error), and then failed
//! closed (checklist G01, G05, D12).

use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use url::Url;

use super::discovery::{FetchError, Fetcher, discover};
use super::token::{KeySet, VerificationKey};
use crate::clock::Clock;
use crate::config::JwksSettings;

/// Why no keys can be used right now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeysUnavailable {
    /// No JWKS has been loaded yet.
    #[error("the authorization server's keys are not loaded yet")]
    NotLoaded,
    /// The last good JWKS is older than freshness plus the stale window.
    #[error("the authorization server's keys are stale and cannot be refreshed")]
    Stale,
}

/// Where the JWKS comes from: a configured URL, or discovery from the issuer.
#[derive(Debug, Clone)]
pub enum JwksLocation {
    /// `OAUTH_JWKS_URI`.
    Configured(Url),
    /// Discover `jwks_uri` from the issuer's metadata (`preferred` = OAUTH_WELL_KNOWN_URL).
    Discover {
        /// The issuer.
        issuer: String,
        /// A metadata URL to try instead of the standard ones.
        preferred: Option<Url>,
    },
}

/// Caches the AS's keys and decides when to fetch them again.
#[derive(Debug)]
pub struct KeySource {
    fetcher: Fetcher,
    location: JwksLocation,
    settings: JwksSettings,
    clock: Arc<dyn Clock>,
    state: RwLock<CacheState>,
    /// Single-flight: one fetch at a time; waiters then see its result.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    jwks_uri: Option<Url>,
    /// Where discovery found the AS metadata (the forwarding route's default target).
    metadata_url: Option<Url>,
    fresh_until: i64,
    stale_until: i64,
    last_attempt: Option<i64>,
    /// When an unknown `kid` last triggered a fetch: these are rate-limited on their own, so a
    /// rotation right after start is still picked up at once.
    last_kid_refresh: Option<i64>,
    attempts: u64,
}

impl KeySource {
    /// A key source with nothing loaded; call [`KeySource::refresh`] or [`KeySource::keys`].
    pub fn new(
        fetcher: Fetcher,
        location: JwksLocation,
        settings: JwksSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let jwks_uri = match &location {
            JwksLocation::Configured(url) => Some(url.clone()),
            JwksLocation::Discover { .. } => None,
        };
        Self {
            fetcher,
            location,
            settings,
            clock,
            state: RwLock::new(CacheState {
                jwks_uri,
                ..CacheState::default()
            }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether keys have been loaded and are not past their stale window (readiness).
    pub fn is_ready(&self) -> bool {
        let state = self.read();
        state.keys.is_some() && self.clock.now() < state.stale_until
    }

    /// Where discovery found the authorization server's metadata, once it has.
    pub fn metadata_url(&self) -> Option<Url> {
        self.read().metadata_url.clone()
    }

    /// How many fetch attempts were made (for logs and tests).
    pub fn attempts(&self) -> u64 {
        self.read().attempts
    }

    /// The keys to validate with: cached while fresh; refreshed when expired (unless a fetch
    /// happened within the cooldown); stale keys while refreshes fail, within the stale window.
    ///
    /// # Errors
    /// [`KeysUnavailable`] when nothing usable is cached and no fetch succeeds.
    pub async fn keys(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        let now = self.clock.now();
        {
            let state = self.read();
            if let Some(keys) = &state.keys
                && now < state.fresh_until
            {
                return Ok(Arc::clone(keys));
            }
        }
        if self.cooldown_over(now) {
            let _ = self.refresh().await;
        }
        self.usable(self.clock.now())
    }

    /// Called when a token names a `kid` the cached keys lack: refetches, at most once per
    /// cooldown (so random `kid`s cannot multiply fetches, G05).
    pub async fn refresh_for_unknown_kid(&self) -> Result<Arc<KeySet>, KeysUnavailable> {
        let now = self.clock.now();
        let cooldown = i64::try_from(self.settings.cooldown.as_secs()).unwrap_or(i64::MAX);
        let allowed = {
            let mut state = self.write();
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
    /// [`FetchError`] from discovery or the JWKS fetch; the cache keeps its last good keys.
    pub async fn refresh(&self) -> Result<(), FetchError> {
        let started = self.read().attempts;
        let _one_fetch = self.fetching.lock().await;
        if self.read().attempts != started {
            // Another caller fetched while we waited; its result is ours.
            return Ok(());
        }
        let now = self.clock.now();
        {
            let mut state = self.write();
            state.last_attempt = Some(now);
            state.attempts += 1;
        }
        let outcome = self.fetch().await;
        match &outcome {
            Ok((keys, jwks_uri, max_age)) => {
                let ttl = max_age
                    .unwrap_or(DEFAULT_TTL_SECS)
                    .clamp(MIN_TTL_SECS, MAX_TTL_SECS);
                let ttl = i64::try_from(ttl).unwrap_or(MAX_TTL_SECS as i64);
                let stale = i64::try_from(self.settings.stale_for.as_secs()).unwrap_or(i64::MAX);
                let mut state = self.write();
                state.keys = Some(Arc::clone(keys));
                state.jwks_uri = Some(jwks_uri.clone());
                state.fresh_until = now.saturating_add(ttl);
                state.stale_until = state.fresh_until.saturating_add(stale);
                tracing::info!(keys = keys.len(), ttl, "authorization server keys loaded");
            }
            Err(error) if self.read().keys.is_some() => {
                tracing::warn!(%error, "JWKS refresh failed; serving the last good keys while they are within the stale window");
            }
            Err(error) => tracing::warn!(%error, "JWKS fetch failed"),
        }
        outcome.map(|_| ())
    }

    async fn fetch(&self) -> Result<(Arc<KeySet>, Url, Option<u64>), FetchError> {
        let known_uri = self.read().jwks_uri.clone();
        let jwks_uri = match (known_uri, &self.location) {
            (Some(uri), _) => uri,
            (None, JwksLocation::Configured(uri)) => uri.clone(),
            (None, JwksLocation::Discover { issuer, preferred }) => {
                let metadata = discover(&self.fetcher, issuer, preferred.as_ref()).await?;
                tracing::info!(metadata = %metadata.url, jwks_uri = %metadata.jwks_uri, "authorization server discovered");
                self.write().metadata_url = Some(metadata.url);
                metadata.jwks_uri
            }
        };
        let (document, max_age) = self.fetcher.json(&jwks_uri).await?;
        let keys = parse_jwks(&document).map_err(|reason| FetchError::Invalid {
            url: jwks_uri.to_string(),
            reason,
        })?;
        Ok((Arc::new(keys), jwks_uri, max_age))
    }

    fn usable(&self, now: i64) -> Result<Arc<KeySet>, KeysUnavailable> {
        let state = self.read();
        match &state.keys {
            None => Err(KeysUnavailable::NotLoaded),
            Some(_) if now >= state.stale_until => Err(KeysUnavailable::Stale),
            Some(keys) => Ok(Arc::clone(keys)),
        }
    }

    fn cooldown_over(&self, now: i64) -> bool {
        let cooldown = i64::try_from(self.settings.cooldown.as_secs()).unwrap_or(i64::MAX);
        self.read()
            .last_attempt
            .is_none_or(|last| now >= last.saturating_add(cooldown))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, CacheState> {
        // Every write replaces whole fields, so a poisoned lock still holds a consistent state.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, CacheState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The usable keys of a JWKS document; unusable ones are logged and skipped, and a set with no
/// usable key is an error (so the last good set is kept).
fn parse_jwks(document: &Value) -> Result<KeySet, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no \"keys\" array")?;
    if keys.len() > MAX_KEYS {
        return Err(format!("more than {MAX_KEYS} keys"));
    }
    let mut usable = Vec::new();
    for key in keys {
        let kid = key
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_owned();
        match serde_json::from_value::<Jwk>(key.clone()) {
            Ok(jwk) => match VerificationKey::from_jwk(&jwk) {
                Ok(key) => usable.push(key),
                Err(reason) => tracing::debug!(%kid, %reason, "JWKS key skipped"),
            },
            Err(_) => {
                tracing::debug!(%kid, "JWKS entry is not a JWK this server understands; skipped")
            }
        }
    }
    if usable.is_empty() {
        return Err("no usable signature key".into());
    }
    Ok(KeySet::new(usable))
}

/// Used when the JWKS response has no `Cache-Control` max-age.
const DEFAULT_TTL_SECS: u64 = 300;
/// A `max-age` below this is raised: refetching every second only loads the IdP.
const MIN_TTL_SECS: u64 = 60;
/// A `max-age` above this is lowered, so a rotation is noticed within a day.
const MAX_TTL_SECS: u64 = 86_400;
/// Bounds what one JWKS can make us hold and try.
const MAX_KEYS: usize = 64;
