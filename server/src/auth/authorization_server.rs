//! The authorization server this resource trusts: its issuer identifier, where its metadata lives,
//! and what discovery found there (RFC 8414 §3, OIDC Discovery §4). One [`AuthorizationServer`]
//! owns that knowledge; the key source asks it for `jwks_uri`, the forwarding route for the
//! metadata URL or the document itself. Metadata naming another issuer is never used (RFC 8414
//! §3.3, checklist G02).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use url::Url;

use super::fetch::{FetchError, FetchUrl, Fetcher, UrlError};
use crate::clock::Clock;

/// An issuer identifier: https (or http to loopback), no query or fragment (RFC 8414 §2). Tokens'
/// `iss` and the metadata's `issuer` must equal it byte for byte, so it is kept as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Issuer(String);

impl Issuer {
    /// Parses an issuer identifier.
    ///
    /// # Errors
    /// [`UrlError`] when it is not https (or http to loopback), or has a query or fragment.
    pub fn parse(value: &str) -> Result<Self, UrlError> {
        let url = FetchUrl::parse(value)?;
        if url.as_url().query().is_some() || url.as_url().fragment().is_some() {
            return Err(UrlError::QueryOrFragment {
                value: value.to_owned(),
                what: "an issuer",
            });
        }
        Ok(Self(value.to_owned()))
    }

    /// The identifier exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// RFC 8414 §3.1: the well-known segment inserted before the issuer's path.
    pub fn rfc8414_metadata_url(&self) -> Option<FetchUrl> {
        let url = Url::parse(&self.0).ok()?;
        let path = url.path().trim_end_matches('/');
        FetchUrl::parse(&format!(
            "{}/.well-known/oauth-authorization-server{path}",
            url.origin().ascii_serialization()
        ))
        .ok()
    }

    /// OIDC Discovery §4: `/.well-known/openid-configuration` appended to the issuer.
    pub fn oidc_discovery_url(&self) -> Option<FetchUrl> {
        FetchUrl::parse(&format!(
            "{}/.well-known/openid-configuration",
            self.0.trim_end_matches('/')
        ))
        .ok()
    }

    /// `{issuer}/.well-known/oauth-authorization-server`: not RFC 8414's form, but what Okta and
    /// others serve for issuers with a path. `None` for a host-only issuer, where it equals the
    /// RFC 8414 form.
    fn appended_rfc8414_url(&self) -> Option<FetchUrl> {
        let base = self.0.trim_end_matches('/');
        let url =
            FetchUrl::parse(&format!("{base}/.well-known/oauth-authorization-server")).ok()?;
        (url.as_url().path() != "/.well-known/oauth-authorization-server").then_some(url)
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where to look, when configuration says more than the issuer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationServerSettings {
    /// `OAUTH_WELL_KNOWN_URL`: the metadata URL to use instead of the standard ones; also where
    /// `/.well-known/oauth-authorization-server` forwards.
    pub metadata_url: Option<FetchUrl>,
    /// `OAUTH_JWKS_URI`: the JWKS URL, so no discovery is needed for the keys.
    pub jwks_uri: Option<FetchUrl>,
}

/// Authorization server metadata that passed the issuer check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Metadata {
    /// Where it was found.
    pub url: FetchUrl,
    /// The whole document (served as is in the forwarding route's proxy mode).
    pub document: Value,
    /// Its `jwks_uri`.
    pub jwks_uri: FetchUrl,
    /// When it was fetched (clock seconds).
    pub fetched_at: i64,
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The metadata could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The metadata names another issuer: it must not be used (G02).
    #[error("metadata at {url} names issuer {found:?}, not {expected:?}")]
    IssuerMismatch {
        /// The URL fetched.
        url: String,
        /// The configured issuer.
        expected: String,
        /// What the document says.
        found: String,
    },
    /// The metadata has no `jwks_uri` that is https (or http to loopback).
    #[error("metadata at {url} has no usable jwks_uri")]
    NoJwksUri {
        /// The URL fetched.
        url: String,
    },
    /// Discovery failed moments ago and is not tried again before its cooldown ends.
    #[error("discovery of {issuer} failed less than {cooldown:?} ago; not retried yet")]
    CoolingDown {
        /// The issuer being discovered.
        issuer: String,
        /// How long after a failure discovery is not tried again.
        cooldown: Duration,
    },
    /// Introspection is configured without an endpoint, and the metadata names none usable.
    #[error("metadata at {url} has no usable introspection_endpoint; set OAUTH_INTROSPECTION_URL")]
    NoIntrospectionEndpoint {
        /// The URL fetched.
        url: String,
    },
}

impl DiscoveryError {
    /// Whether retrying cannot help: metadata naming another issuer is a configuration error.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::IssuerMismatch { .. })
    }
}

/// What this server knows about its authorization server, shared by the key source and the
/// metadata forwarding route.
#[derive(Debug)]
pub(crate) struct AuthorizationServer {
    issuer: Issuer,
    settings: AuthorizationServerSettings,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    discovered: RwLock<Option<Arc<Metadata>>>,
    /// Single-flight: one discovery at a time.
    discovering: tokio::sync::Mutex<()>,
    /// When the last discovery for [`AuthorizationServer::metadata`] failed (clock seconds):
    /// none is tried again before [`DISCOVERY_COOLDOWN`] has passed.
    failed_at: Mutex<Option<i64>>,
}

impl AuthorizationServer {
    /// Knows nothing yet; discovery happens on first need.
    pub(crate) fn new(
        issuer: Issuer,
        settings: AuthorizationServerSettings,
        fetcher: Fetcher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            issuer,
            settings,
            fetcher,
            clock,
            discovered: RwLock::new(None),
            discovering: tokio::sync::Mutex::new(()),
            failed_at: Mutex::new(None),
        }
    }

    /// The issuer identifier.
    pub(crate) fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Where configuration said to look (metadata URL, JWKS URL), for log messages that name
    /// the setting to check.
    pub(crate) fn configured(&self) -> &AuthorizationServerSettings {
        &self.settings
    }

    /// The fetcher every request to this authorization server uses.
    pub(crate) fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Where the metadata lives: `OAUTH_WELL_KNOWN_URL`, else where discovery found it, else the
    /// issuer's RFC 8414 URL.
    pub(crate) fn metadata_url(&self) -> Option<FetchUrl> {
        if let Some(configured) = &self.settings.metadata_url {
            return Some(configured.clone());
        }
        match self.held() {
            Some(metadata) => Some(metadata.url.clone()),
            None => self.issuer.rfc8414_metadata_url(),
        }
    }

    /// The JWKS URL: configured, or discovered (once; see [`AuthorizationServer::metadata`]).
    ///
    /// # Errors
    /// [`DiscoveryError`] when it must be discovered and cannot be.
    pub(crate) async fn jwks_uri(&self) -> Result<FetchUrl, DiscoveryError> {
        if let Some(configured) = &self.settings.jwks_uri {
            return Ok(configured.clone());
        }
        if let Some(metadata) = self.held() {
            return Ok(metadata.jwks_uri.clone());
        }
        Ok(self.discover().await?.jwks_uri.clone())
    }

    /// The RFC 7662 endpoint named by the metadata's `introspection_endpoint` (RFC 8414 §2).
    ///
    /// # Errors
    /// [`DiscoveryError`] when the metadata cannot be had or names no usable endpoint.
    pub(crate) async fn introspection_endpoint(&self) -> Result<FetchUrl, DiscoveryError> {
        // Asked on behalf of unauthenticated requests: discovery under the same cooldown as the
        // metadata route, so an outage does not cost one discovery per token.
        let metadata = match self.held() {
            Some(metadata) => metadata,
            None => self.metadata(Duration::MAX).await?,
        };
        metadata
            .document
            .get("introspection_endpoint")
            .and_then(Value::as_str)
            .and_then(|url| FetchUrl::parse(url).ok())
            .ok_or_else(|| DiscoveryError::NoIntrospectionEndpoint {
                url: metadata.url.to_string(),
            })
    }

    /// The metadata document, discovered again when not held or older than `max_age`. Asked
    /// for by unauthenticated requests (the forwarding route's proxy mode), so it costs the
    /// authorization server at most one discovery at a time, none within
    /// [`DISCOVERY_COOLDOWN`] of a failure, and while discovery fails the held document
    /// (issuer-checked when it was fetched) is served, however old.
    ///
    /// # Errors
    /// [`DiscoveryError`] when no document is held and none can be discovered now.
    pub(crate) async fn metadata(
        &self,
        max_age: Duration,
    ) -> Result<Arc<Metadata>, DiscoveryError> {
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        let fresh = || {
            self.held()
                .filter(|held| self.clock.now() < held.fetched_at.saturating_add(max_age))
        };
        if let Some(metadata) = fresh() {
            return Ok(metadata);
        }
        let _one_at_a_time = self.discovering.lock().await;
        // Whoever held the lock before may have just refreshed it.
        if let Some(metadata) = fresh() {
            return Ok(metadata);
        }
        let cooldown = i64::try_from(DISCOVERY_COOLDOWN.as_secs()).unwrap_or(i64::MAX);
        let failed_at = *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = failed_at
            && self.clock.now() < at.saturating_add(cooldown)
        {
            return self.held().ok_or_else(|| DiscoveryError::CoolingDown {
                issuer: self.issuer.to_string(),
                cooldown: DISCOVERY_COOLDOWN,
            });
        }
        let discovered = self.discover_now().await;
        *self
            .failed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            discovered.is_err().then(|| self.clock.now());
        match discovered {
            Ok(metadata) => Ok(metadata),
            Err(error) => self.held().ok_or(error),
        }
    }

    /// Fetches the metadata now: `OAUTH_WELL_KNOWN_URL` when set, else RFC 8414's path-inserted
    /// URL, OIDC's appended one, then RFC 8414 appended. An issuer mismatch stops the search.
    ///
    /// # Errors
    /// The last [`DiscoveryError`].
    pub(crate) async fn discover(&self) -> Result<Arc<Metadata>, DiscoveryError> {
        let _one_at_a_time = self.discovering.lock().await;
        self.discover_now().await
    }

    /// [`AuthorizationServer::discover`], for a caller holding the single-flight lock.
    async fn discover_now(&self) -> Result<Arc<Metadata>, DiscoveryError> {
        let candidates: Vec<FetchUrl> = match &self.settings.metadata_url {
            Some(url) => vec![url.clone()],
            None => [
                self.issuer.rfc8414_metadata_url(),
                self.issuer.oidc_discovery_url(),
                self.issuer.appended_rfc8414_url(),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        let mut last = None;
        for url in candidates {
            match self.fetch_metadata(url).await {
                Ok(metadata) => {
                    tracing::info!(metadata = %metadata.url, jwks_uri = %metadata.jwks_uri, "authorization server discovered");
                    let metadata = Arc::new(metadata);
                    *self
                        .discovered
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&metadata));
                    return Ok(metadata);
                }
                Err(error) if error.is_permanent() => return Err(error),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| DiscoveryError::NoJwksUri {
            url: self.issuer.to_string(),
        }))
    }

    fn held(&self) -> Option<Arc<Metadata>> {
        // Writes replace the whole value, so a poisoned lock still holds a consistent one.
        self.discovered
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn fetch_metadata(&self, url: FetchUrl) -> Result<Metadata, DiscoveryError> {
        let fetched = self.fetcher.json(&url).await?;
        let document = fetched.document;
        let found = document
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if found != self.issuer.as_str() {
            return Err(DiscoveryError::IssuerMismatch {
                url: url.to_string(),
                expected: self.issuer.to_string(),
                found: found.to_owned(),
            });
        }
        let jwks_uri = document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .and_then(|s| FetchUrl::parse(s).ok())
            .ok_or_else(|| DiscoveryError::NoJwksUri {
                url: url.to_string(),
            })?;
        Ok(Metadata {
            url,
            document,
            jwks_uri,
            fetched_at: self.clock.now(),
        })
    }
}

/// How long after a failed discovery (for the metadata route) none is tried again.
const DISCOVERY_COOLDOWN: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(value: &str) -> Issuer {
        Issuer::parse(value).unwrap()
    }

    /// G04, T07: an issuer is https (http only to loopback) with no query or fragment.
    #[test]
    fn an_issuer_with_a_query_or_plain_http_off_loopback_is_refused() {
        for bad in [
            "https://as.example.com?x=1",
            "https://as.example.com#f",
            "http://as.example.com",
            "not a url",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            issuer("https://tenant.auth0.com/").as_str(),
            "https://tenant.auth0.com/",
            "kept byte for byte, trailing slash included"
        );
    }

    /// G03: RFC 8414 inserts the well-known segment before the issuer's path; OIDC appends it.
    #[test]
    fn well_known_urls_follow_rfc_8414_and_oidc_discovery() {
        let url = |u: Option<FetchUrl>| u.unwrap().to_string();
        assert_eq!(
            url(issuer("https://as.example.com/tenant1").rfc8414_metadata_url()),
            "https://as.example.com/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            url(issuer("https://as.example.com/").rfc8414_metadata_url()),
            "https://as.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            url(issuer("https://as.example.com/tenant1").oidc_discovery_url()),
            "https://as.example.com/tenant1/.well-known/openid-configuration"
        );
        assert_eq!(
            url(issuer("https://tenant.auth0.com/").oidc_discovery_url()),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            url(issuer("https://as.example.com/oauth2/default").appended_rfc8414_url()),
            "https://as.example.com/oauth2/default/.well-known/oauth-authorization-server"
        );
        assert!(
            issuer("https://as.example.com")
                .appended_rfc8414_url()
                .is_none()
        );
    }

    /// G02: an issuer mismatch is permanent; a failed fetch is not.
    #[test]
    fn an_issuer_mismatch_is_permanent() {
        let error = DiscoveryError::IssuerMismatch {
            url: "u".into(),
            expected: "a".into(),
            found: "b".into(),
        };
        assert!(error.is_permanent());
        let fetch = DiscoveryError::Fetch(FetchError::Status {
            url: "u".into(),
            status: 500,
        });
        assert!(!fetch.is_permanent());
    }
}
