//! The one door to the authorization server: every metadata, JWKS, introspection and
//! token-information request goes through a [`Fetcher`], bounded in time and size, over https or
//! plain http to loopback only (checklist T07, G04), and only to a [`FetchUrl`], a URL that
//! already passed that rule.

use std::fmt;
use std::time::Duration;

use headers::{CacheControl, HeaderMapExt as _};
use serde_json::Value;
use url::Url;

/// A URL the server may fetch from: https, or plain http to a loopback host (T07: TLS everywhere
/// except loopback). Holding one is the proof that the rule was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchUrl(Url);

impl FetchUrl {
    /// Parses `value` and applies the https-or-loopback rule.
    ///
    /// # Errors
    /// [`UrlError`] when it is not an absolute URL, or not https (nor http to loopback).
    pub fn parse(value: &str) -> Result<Self, UrlError> {
        let url = Url::parse(value).map_err(|source| UrlError::NotAbsolute {
            value: value.to_owned(),
            source,
        })?;
        Self::try_from(url)
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<Url> for FetchUrl {
    type Error = UrlError;

    fn try_from(url: Url) -> Result<Self, UrlError> {
        match url.scheme() {
            "https" => Ok(Self(url)),
            "http" if is_loopback(&url) => Ok(Self(url)),
            "http" => Err(UrlError::PlainHttp {
                value: url.to_string(),
            }),
            other => Err(UrlError::Scheme {
                value: url.to_string(),
                scheme: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for FetchUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a URL cannot be used where the server needs a trusted one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not an absolute URL.
    #[error("{value:?} is not an absolute URL")]
    NotAbsolute {
        /// The text given.
        value: String,
        /// What the URL parser said.
        #[source]
        source: url::ParseError,
    },
    /// `http` to a host that is not loopback.
    #[error("{value:?}: plain http is allowed only to loopback; use https")]
    PlainHttp {
        /// The URL.
        value: String,
    },
    /// Neither https nor http.
    #[error("{value:?}: unsupported scheme {scheme:?}")]
    Scheme {
        /// The URL.
        value: String,
        /// Its scheme.
        scheme: String,
    },
    /// A query or fragment where none may be (an issuer, RFC 8414 §2; a resource, RFC 8707 §2).
    #[error("{value:?} has a query or fragment, which {what} may not have")]
    QueryOrFragment {
        /// The URL.
        value: String,
        /// "an issuer", "the resource URL".
        what: &'static str,
    },
    /// A trailing slash on the resource URL (MCP canonical server URI).
    #[error("{value:?}: no trailing slash (MCP canonical server URI)")]
    TrailingSlash {
        /// The URL.
        value: String,
    },
}

/// Whether `url` names a loopback host (`localhost`, `127.0.0.0/8`, `::1`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connection refused, reset or timed out, a TLS failure, or a redirect that was refused.
    #[error("cannot fetch {url}")]
    Unreachable {
        /// The URL fetched (these URLs carry no secrets).
        url: String,
        /// What the HTTP client reported.
        #[source]
        source: reqwest::Error,
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
    /// The body is not JSON.
    #[error("{url} did not send JSON")]
    NotJson {
        /// The URL fetched.
        url: String,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// JSON, but not an object.
    #[error("{url} did not send a JSON object")]
    NotAnObject {
        /// The URL fetched.
        url: String,
    },
}

/// A fetched JSON document and how long it may be cached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fetched {
    /// The document (always a JSON object).
    pub document: Value,
    /// `Cache-Control: max-age`, or 0 for `no-store` / `no-cache`; `None` when absent.
    pub max_age: Option<Duration>,
}

/// Fetches JSON documents from the authorization server with a timeout, a size limit, and
/// plain http only to loopback.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    /// For POSTs, which carry a token and client credentials: never redirected, so neither can
    /// be replayed to another URL.
    poster: reqwest::Client,
    max_bytes: usize,
}

/// How a POST authenticates the server as an OAuth client (RFC 6749 §2.3.1).
#[derive(Clone, Copy)]
pub(crate) enum ClientAuth<'a> {
    /// `Authorization: Basic` with the form-encoded id and secret.
    Basic {
        /// The client id.
        id: &'a str,
        /// The secret.
        secret: &'a str,
    },
    /// `client_id` and `client_secret` in the form.
    Post {
        /// The client id.
        id: &'a str,
        /// The secret.
        secret: &'a str,
    },
    /// None (the endpoint needs none, as Google's token information endpoint).
    None,
}

impl Fetcher {
    /// A fetcher bounded by `timeout` (connect and whole request) and `max_bytes`.
    ///
    /// # Errors
    /// When the TLS backend cannot initialise.
    pub(crate) fn new(timeout: Duration, max_bytes: usize) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::custom(
                |attempt| match judge_redirect(attempt.previous().len(), attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refused) => attempt.error(refused),
                },
            ))
            .user_agent(concat!("mcp-oauth-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let poster = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcp-oauth-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            poster,
            max_bytes,
        })
    }

    /// POSTs `form` to `url` as the client `auth` says, and parses a JSON object. Any status
    /// but 200 is an error (a redirect is not followed).
    ///
    /// # Errors
    /// [`FetchError`] for transport failures, non-200 answers, oversize or invalid bodies.
    pub(crate) async fn post_form(
        &self,
        url: &FetchUrl,
        form: &[(&str, &str)],
        auth: ClientAuth<'_>,
    ) -> Result<Fetched, FetchError> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self
            .poster
            .post(url.as_url().clone())
            .header(reqwest::header::ACCEPT, "application/json");
        match auth {
            ClientAuth::Basic { id, secret } => {
                // RFC 6749 §2.3.1: the id and secret are form-encoded before the Basic encoding.
                let encode = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                request = request.basic_auth(encode(id), Some(encode(secret)));
            }
            ClientAuth::Post { id, secret } => {
                fields.push(("client_id", id));
                fields.push(("client_secret", secret));
            }
            ClientAuth::None => {}
        }
        self.receive(url, request.form(&fields)).await
    }

    /// GETs `url` and parses it as a JSON object.
    ///
    /// # Errors
    /// [`FetchError`] for transport failures, non-200 answers, oversize or invalid bodies.
    pub(crate) async fn json(&self, url: &FetchUrl) -> Result<Fetched, FetchError> {
        let request = self
            .client
            .get(url.as_url().clone())
            .header(reqwest::header::ACCEPT, "application/json");
        self.receive(url, request).await
    }

    /// Sends `request` and reads a bounded JSON object from a 200 answer.
    async fn receive(
        &self,
        url: &FetchUrl,
        request: reqwest::RequestBuilder,
    ) -> Result<Fetched, FetchError> {
        let shown = url.as_str().to_owned();
        let unreachable = |source| FetchError::Unreachable {
            url: shown.clone(),
            source,
        };
        let mut response = request.send().await.map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: shown,
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: shown.clone(),
            limit: self.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|len| len > self.max_bytes as u64)
        {
            return Err(too_large());
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let document: Value =
            serde_json::from_slice(&body).map_err(|source| FetchError::NotJson {
                url: shown.clone(),
                source,
            })?;
        if !document.is_object() {
            return Err(FetchError::NotAnObject { url: shown });
        }
        Ok(Fetched { document, max_age })
    }
}

/// Why a redirect was not followed (reported as the source of [`FetchError::Unreachable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum RedirectRefused {
    /// More hops than [`MAX_REDIRECTS`].
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooMany,
    /// A hop to a URL that is not https (nor http to loopback).
    #[error("a redirect to a URL that is not https (nor http to loopback)")]
    NotFetchable,
}

/// Redirects followed at most per fetch: enough for a moved document, not for a loop.
const MAX_REDIRECTS: usize = 3;

/// Whether to follow a redirect to `to`, with `visited` URLs behind it (the first one
/// included). Every hop must pass the rule the first URL passed (T07): a redirect from https to
/// plain http, or to another scheme, is refused, not followed.
fn judge_redirect(visited: usize, to: &Url) -> Result<(), RedirectRefused> {
    if visited > MAX_REDIRECTS {
        Err(RedirectRefused::TooMany)
    } else if FetchUrl::try_from(to.clone()).is_err() {
        Err(RedirectRefused::NotFetchable)
    } else {
        Ok(())
    }
}

/// `Cache-Control: max-age=N` if present (RFC 9111 §5.2.2.1; `s-maxage` is for shared caches,
/// which this is not); `no-store` and `no-cache` mean 0.
fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let control = headers.typed_get::<CacheControl>()?;
    if control.no_store() || control.no_cache() {
        return Some(Duration::ZERO);
    }
    control.max_age()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// T07, G04: keys and metadata are fetched over https, or plain http to loopback only; the
    /// rule is applied when the URL is made, so no other URL can reach the fetcher.
    #[test]
    fn only_https_or_loopback_http_is_fetchable() {
        for bad in [
            "http://idp.example.com/jwks",
            "ftp://idp.example.com/jwks",
            "file:///etc/passwd",
            "not a url",
            "http://10.0.0.1/jwks",
            "http://[2001:db8::1]/jwks",
            "http://localhost.example.com/jwks",
        ] {
            assert!(FetchUrl::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "https://idp.example.com/jwks",
            "http://localhost:9400/jwks",
            "http://127.0.0.1/jwks",
            "http://[::1]:80/jwks",
        ] {
            assert!(FetchUrl::parse(good).is_ok(), "{good}");
        }
        assert!(matches!(
            FetchUrl::parse("http://idp.example.com"),
            Err(UrlError::PlainHttp { .. })
        ));
    }

    /// T07: every redirect hop is held to the rule the first URL passed, and a chain stops after
    /// MAX_REDIRECTS hops.
    #[test]
    fn redirects_are_followed_only_to_fetchable_urls_and_only_three_times() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            judge_redirect(1, &url("https://cdn.example.com/jwks")),
            Ok(())
        );
        assert_eq!(judge_redirect(1, &url("http://127.0.0.1:9/jwks")), Ok(()));
        assert_eq!(
            judge_redirect(3, &url("https://cdn.example.com/jwks")),
            Ok(())
        );
        assert_eq!(
            judge_redirect(4, &url("https://cdn.example.com/jwks")),
            Err(RedirectRefused::TooMany)
        );
        for refused in [
            "http://cdn.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://cdn.example.com/jwks",
            "file:///etc/passwd",
        ] {
            assert_eq!(
                judge_redirect(1, &url(refused)),
                Err(RedirectRefused::NotFetchable),
                "{refused}"
            );
        }
    }

    /// G05: the JWKS cache honours `max-age`; `no-store` / `no-cache` mean "do not keep".
    #[test]
    fn cache_control_max_age_is_read_and_no_store_is_zero() {
        let headers = |value: &'static str| {
            let mut map = reqwest::header::HeaderMap::new();
            map.insert(
                reqwest::header::CACHE_CONTROL,
                reqwest::header::HeaderValue::from_static(value),
            );
            map
        };
        assert_eq!(
            max_age(&headers("public, max-age=600")),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age(&headers("no-store")), Some(Duration::ZERO));
        assert_eq!(max_age(&headers("public")), None);
        assert_eq!(max_age(&reqwest::header::HeaderMap::new()), None);
    }
}
