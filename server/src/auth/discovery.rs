//! Issuer → metadata → `jwks_uri` (RFC 8414 §3, OIDC Discovery §4), with the `issuer` equality
//! check that makes metadata from anyone else unusable (RFC 8414 §3.3, G02), and the bounded
//! fetch every request to the authorization server goes through.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::config::{is_loopback, oidc_discovery_url, rfc8414_url};

/// Why metadata or keys could not be obtained.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection refused, reset, timed out, or a TLS failure.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The URL fetched.
        url: String,
        /// Why, without secrets (these URLs carry none).
        reason: String,
    },
    /// A status other than 200.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The status.
        status: u16,
    },
    /// Larger than the configured limit.
    #[error("{url} sent more than {limit} bytes")]
    TooLarge {
        /// The URL fetched.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// Not the JSON document expected.
    #[error("{url} did not send a valid document: {reason}")]
    Invalid {
        /// The URL fetched.
        url: String,
        /// What was wrong.
        reason: String,
    },
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
}

impl FetchError {
    /// Whether retrying can help (a mismatching issuer is a configuration error).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::IssuerMismatch { .. })
    }
}

/// Fetches from the authorization server with a timeout, a size limit, no redirects to other
/// schemes, and plain http only to loopback.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    max_bytes: usize,
}

impl Fetcher {
    /// A fetcher bounded by `timeout` and `max_bytes`.
    ///
    /// # Errors
    /// When the TLS backend cannot initialise.
    pub fn new(timeout: Duration, max_bytes: usize) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .https_only(false)
            .user_agent(concat!("mcp-oauth-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, max_bytes })
    }

    /// GETs `url` and parses it as JSON; returns the document and its `Cache-Control` max-age.
    ///
    /// # Errors
    /// [`FetchError`] for transport failures, non-200 answers, oversize or invalid bodies.
    pub async fn json(&self, url: &Url) -> Result<(Value, Option<u64>), FetchError> {
        let shown = url.as_str().to_owned();
        if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(url)) {
            return Err(FetchError::Invalid {
                url: shown,
                reason: "only https (or http to loopback) is fetched".into(),
            });
        }
        let unreachable = |e: reqwest::Error| FetchError::Unreachable {
            url: shown.clone(),
            reason: without_url(&e),
        };
        let response = self
            .client
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: shown,
                status: response.status().as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge {
                url: shown,
                limit: self.max_bytes,
            });
        }
        let max_age = max_age(response.headers());
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge {
                    url: shown,
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        let document: Value = serde_json::from_slice(&body).map_err(|e| FetchError::Invalid {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        if !document.is_object() {
            return Err(FetchError::Invalid {
                url: shown,
                reason: "not a JSON object".into(),
            });
        }
        Ok((document, max_age))
    }
}

/// Authorization server metadata that passed the issuer check.
#[derive(Debug, Clone, PartialEq)]
pub struct Metadata {
    /// Where it was found.
    pub url: Url,
    /// The whole document, for the proxy mode of the AS-metadata route.
    pub document: Value,
    /// Its `jwks_uri`.
    pub jwks_uri: Url,
}

/// Finds the issuer's metadata: `preferred` (OAUTH_WELL_KNOWN_URL) when set, else RFC 8414's
/// path-inserted URL, OIDC's appended one, then `{issuer}/.well-known/oauth-authorization-server`.
///
/// # Errors
/// The last [`FetchError`]; an issuer mismatch stops the search at once.
pub async fn discover(
    fetcher: &Fetcher,
    issuer: &str,
    preferred: Option<&Url>,
) -> Result<Metadata, FetchError> {
    let candidates: Vec<Url> = match preferred {
        Some(url) => vec![url.clone()],
        // RFC 8414's inserted form, OIDC's appended form, then RFC 8414 appended (what Okta and
        // others serve for issuers with a path).
        None => [
            rfc8414_url(issuer),
            oidc_discovery_url(issuer),
            appended_rfc8414_url(issuer),
        ]
        .into_iter()
        .flatten()
        .collect(),
    };
    let mut last = FetchError::Invalid {
        url: issuer.to_owned(),
        reason: "no metadata URL".into(),
    };
    for url in candidates {
        match fetch_metadata(fetcher, issuer, &url).await {
            Ok(metadata) => return Ok(metadata),
            Err(error) if error.is_permanent() => return Err(error),
            Err(error) => last = error,
        }
    }
    Err(last)
}

fn appended_rfc8414_url(issuer: &str) -> Option<Url> {
    let base = issuer.trim_end_matches('/');
    let url = Url::parse(&format!("{base}/.well-known/oauth-authorization-server")).ok()?;
    // For a host-only issuer this is the inserted form again: no need to try it twice.
    (url.path() != "/.well-known/oauth-authorization-server").then_some(url)
}

async fn fetch_metadata(
    fetcher: &Fetcher,
    issuer: &str,
    url: &Url,
) -> Result<Metadata, FetchError> {
    let (document, _) = fetcher.json(url).await?;
    let found = document
        .get("issuer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if found != issuer {
        return Err(FetchError::IssuerMismatch {
            url: url.to_string(),
            expected: issuer.to_owned(),
            found: found.to_owned(),
        });
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .and_then(|s| Url::parse(s).ok())
        .filter(|u| u.scheme() == "https" || (u.scheme() == "http" && is_loopback(u)))
        .ok_or_else(|| FetchError::Invalid {
            url: url.to_string(),
            reason: "no usable https jwks_uri".into(),
        })?;
    Ok(Metadata {
        url: url.clone(),
        document,
        jwks_uri,
    })
}

/// `Cache-Control: max-age=N` (or `s-maxage`), if present and sane.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    if value.split(',').any(|d| {
        matches!(
            d.trim().to_ascii_lowercase().as_str(),
            "no-store" | "no-cache"
        )
    }) {
        return Some(0);
    }
    value.split(',').find_map(|directive| {
        let (name, seconds) = directive.trim().split_once('=')?;
        name.eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().parse().ok())
            .flatten()
    })
}

fn without_url(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else if error.is_body() || error.is_decode() {
        "the body broke off".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// T07, G04: keys and metadata are fetched over https, or plain http to loopback only; the
    /// refusal happens before any connection is made.
    #[tokio::test]
    async fn plain_http_off_loopback_is_never_fetched() {
        let fetcher = Fetcher::new(Duration::from_secs(1), 1024).unwrap();
        for url in [
            "http://idp.example.com/jwks",
            "ftp://idp.example.com/jwks",
            "file:///etc/passwd",
        ] {
            let error = fetcher.json(&Url::parse(url).unwrap()).await.unwrap_err();
            assert!(
                matches!(error, FetchError::Invalid { .. }),
                "{url}: {error}"
            );
        }
    }

    /// G02: an issuer is never taken from metadata that names another one.
    #[test]
    fn an_issuer_mismatch_is_permanent() {
        let error = FetchError::IssuerMismatch {
            url: "u".into(),
            expected: "a".into(),
            found: "b".into(),
        };
        assert!(error.is_permanent());
        assert!(
            !FetchError::Status {
                url: "u".into(),
                status: 500
            }
            .is_permanent()
        );
    }
}
