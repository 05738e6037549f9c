//! Origin and Host checks against DNS rebinding (checklist T01-T05): an `Origin` that is present
//! and not allowed gets 403 (an absent one is fine, T03); a `Host` not allowed gets 403. Runs
//! before authentication, so the order of checks is ours, not rmcp's. The 403 carries a JSON-RPC
//! error and no `WWW-Authenticate` challenge: no token would change the answer.

use std::str::FromStr as _;

use axum::extract::Request;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use url::Url;

use crate::jsonrpc::{ErrorCode, error_response};
use crate::resource::ResourceUrl;

/// The `Host` and `Origin` values accepted on `/mcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardPolicy {
    hosts: Vec<AllowedHost>,
    origins: Vec<AllowedOrigin>,
}

impl GuardPolicy {
    /// The resource's own host and origin; when `loopback` (the server listens only locally),
    /// also `localhost`, `127.0.0.1` and `[::1]` on any port, and any loopback origin.
    pub fn for_resource(resource: &ResourceUrl, loopback: bool) -> Self {
        let mut hosts: Vec<AllowedHost> = AllowedHost::parse(&resource.authority())
            .into_iter()
            .collect();
        let mut origins: Vec<AllowedOrigin> = AllowedOrigin::parse(&resource.origin())
            .into_iter()
            .collect();
        if loopback {
            hosts.extend(
                LOOPBACK_HOSTS
                    .iter()
                    .filter_map(|h| AllowedHost::parse(h).ok()),
            );
            origins.extend(
                LOOPBACK_HOSTS
                    .iter()
                    .filter_map(|h| AllowedOrigin::parse(&format!("http://{h}:*")).ok()),
            );
        }
        Self { hosts, origins }
    }

    /// Exactly these hosts and origins.
    pub fn new(hosts: Vec<AllowedHost>, origins: Vec<AllowedOrigin>) -> Self {
        Self { hosts, origins }
    }

    /// The allowed hosts.
    pub(crate) fn hosts(&self) -> &[AllowedHost] {
        &self.hosts
    }

    /// The allowed origins.
    pub(crate) fn origins(&self) -> &[AllowedOrigin] {
        &self.origins
    }

    /// Whether a `Host` value is allowed: an entry with a port must match exactly, one without
    /// matches any port; hosts compare case-insensitively.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Ok(authority) = Authority::from_str(host) else {
            return false;
        };
        if authority.as_str().contains('@') {
            return false;
        }
        self.hosts.iter().any(|allowed| allowed.matches(&authority))
    }

    /// Whether an `Origin` value is allowed (exactly, or an entry ending in `:*` for any port).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let Ok(url) = Url::parse(origin) else {
            return false;
        };
        self.origins.iter().any(|allowed| allowed.matches(&url))
    }
}

/// An allowed `Host`: a host name or IP literal, with or without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    port: Option<u16>,
}

impl AllowedHost {
    /// Parses `host` or `host:port` (IPv6 literals in brackets).
    ///
    /// # Errors
    /// [`GuardEntryError`] when it is not an authority without userinfo.
    pub fn parse(value: &str) -> Result<Self, GuardEntryError> {
        let invalid = || GuardEntryError::Host(value.to_owned());
        let authority = Authority::from_str(value.trim()).map_err(|_| invalid())?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            host: authority.host().to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }

    fn matches(&self, authority: &Authority) -> bool {
        authority.host().eq_ignore_ascii_case(&self.host)
            && self
                .port
                .is_none_or(|port| authority.port_u16() == Some(port))
    }
}

/// An allowed `Origin`: `scheme://host[:port]`, or `scheme://host:*` for any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedOrigin {
    scheme: String,
    host: String,
    port: OriginPort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OriginPort {
    /// The port given (or the scheme's default when none was).
    Exact(Option<u16>),
    /// `:*`.
    Any,
}

impl AllowedOrigin {
    /// Parses `scheme://host[:port]` or `scheme://host:*`.
    ///
    /// # Errors
    /// [`GuardEntryError`] when it is not an origin.
    pub fn parse(value: &str) -> Result<Self, GuardEntryError> {
        let value = value.trim().trim_end_matches('/');
        let invalid = || GuardEntryError::Origin(value.to_owned());
        let (text, port) = match value.strip_suffix(":*") {
            Some(prefix) => (prefix, OriginPort::Any),
            None => (value, OriginPort::Exact(None)),
        };
        let url = Url::parse(text).map_err(|_| invalid())?;
        let host = url.host_str().ok_or_else(invalid)?.to_ascii_lowercase();
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(invalid());
        }
        let port = match port {
            OriginPort::Any => OriginPort::Any,
            OriginPort::Exact(_) => OriginPort::Exact(url.port()),
        };
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port,
        })
    }

    fn matches(&self, origin: &Url) -> bool {
        origin.scheme() == self.scheme
            && origin
                .host_str()
                .is_some_and(|host| host.eq_ignore_ascii_case(&self.host))
            && origin.path() == "/"
            && match self.port {
                OriginPort::Any => true,
                OriginPort::Exact(port) => origin.port() == port,
            }
    }
}

/// A `MCP_ALLOWED_HOSTS` or `MCP_ALLOWED_ORIGINS` entry that cannot be what it should.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardEntryError {
    /// Not `host` or `host:port`.
    #[error("{0:?} is not host or host:port")]
    Host(String),
    /// Not `scheme://host[:port]`.
    #[error("{0:?} is not an origin (scheme://host[:port], or :* for any port)")]
    Origin(String),
}

/// The authority a request addressed: its `Host` header, or (HTTP/2) the URI's authority.
pub(crate) fn request_host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(Authority::as_str))
}

/// Admission's first step: the 403 for a disallowed `Host` or `Origin` (a JSON-RPC error body
/// without id), if the request has one.
pub(crate) fn check_origin_and_host(guard: &GuardPolicy, request: &Request) -> Option<Response> {
    match request_host(request.headers(), request.uri()) {
        Some(host) if guard.host_allowed(host) => {}
        _ => return Some(forbidden("Host not allowed")),
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| guard.origin_allowed(origin));
        if !allowed {
            return Some(forbidden("Origin not allowed"));
        }
    }
    None
}

fn forbidden(message: &str) -> Response {
    error_response(StatusCode::FORBIDDEN, ErrorCode::InvalidRequest, message)
}

/// The names a loopback listener is reached by.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> GuardPolicy {
        GuardPolicy::new(
            ["mcp.example.com", "localhost:8000", "[::1]"]
                .map(|h| AllowedHost::parse(h).unwrap())
                .to_vec(),
            ["https://app.example.com", "http://localhost:*"]
                .map(|o| AllowedOrigin::parse(o).unwrap())
                .to_vec(),
        )
    }

    /// T05: hosts match exactly, with or without a configured port.
    #[test]
    fn hosts_match_exactly() {
        let guard = guard();
        assert!(guard.host_allowed("mcp.example.com"));
        assert!(guard.host_allowed("MCP.example.com:443"));
        assert!(guard.host_allowed("localhost:8000"));
        assert!(guard.host_allowed("[::1]:8000"));
        assert!(!guard.host_allowed("localhost:9000"));
        assert!(!guard.host_allowed("localhost"));
        assert!(!guard.host_allowed("evil.example"));
        assert!(!guard.host_allowed("mcp.example.com.evil.example"));
        assert!(!guard.host_allowed("user@mcp.example.com"));
    }

    /// T02: origins match exactly or by any-port wildcard.
    #[test]
    fn origins_match_exactly_or_by_port_wildcard() {
        let guard = guard();
        assert!(guard.origin_allowed("https://app.example.com"));
        assert!(guard.origin_allowed("http://localhost:6274"));
        assert!(guard.origin_allowed("http://localhost"));
        assert!(!guard.origin_allowed("https://evil.example"));
        assert!(!guard.origin_allowed("https://app.example.com.evil.example"));
        assert!(!guard.origin_allowed("http://localhost.evil.example:80"));
        assert!(!guard.origin_allowed("https://localhost:6274"), "scheme");
        assert!(
            !guard.origin_allowed("https://app.example.com:8443"),
            "an origin without :* allows its own port only"
        );
        assert!(!guard.origin_allowed("null"));
    }

    /// Configuration entries that are not hosts or origins are refused when parsed.
    #[test]
    fn malformed_entries_are_refused() {
        assert!(AllowedHost::parse("http://x").is_err());
        assert!(AllowedHost::parse("").is_err());
        assert!(AllowedOrigin::parse("app.example.com").is_err());
        assert!(AllowedOrigin::parse("https://app.example.com/path").is_err());
    }
}
