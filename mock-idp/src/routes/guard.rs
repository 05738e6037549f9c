//! Who may talk to the IdP at all. People run it on their laptops, where every web page they
//! visit can send requests to `127.0.0.1`:
//!
//! - An IdP listening on loopback answers only requests whose `Host` names it: a loopback name or
//!   address with its own port, or its public URL's host. A page on `attacker.example` whose name
//!   was rebound to 127.0.0.1 (DNS rebinding) sends `Host: attacker.example` and is refused.
//! - The admin API (which mints valid tokens and moves the clock) has no CORS, refuses any request
//!   a browser marks as coming from a page (`Origin`, or `Sec-Fetch-Site` other than `none`),
//!   checks `Host` the same way however the IdP listens, and, when an admin token is configured,
//!   wants it as a bearer token (compared in constant time).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use axum::extract::{Request, State};
use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;

use super::error_response;

/// The secret the admin API wants as `Authorization: Bearer ...`. Only its SHA-256 is held, and
/// `Debug` prints `[redacted]`.
#[derive(Clone)]
pub(crate) struct AdminToken {
    digest: [u8; 32],
    empty: bool,
}

impl AdminToken {
    pub(crate) fn new(token: &str) -> Self {
        Self {
            digest: sha256(token),
            empty: token.trim().is_empty(),
        }
    }

    /// Whether the token is empty (or blank): a configuration mistake, refused at start.
    pub(crate) fn is_empty(&self) -> bool {
        self.empty
    }

    /// Compares digests, so neither the content nor the length of the token shows in the time.
    fn matches(&self, presented: &str) -> bool {
        self.digest.ct_eq(&sha256(presented)).into()
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken([redacted])")
    }
}

/// What the checks compare against, fixed when the IdP starts.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The port the IdP listens on.
    port: u16,
    /// The issuer URL's host (lowercase; IPv6 in brackets), its port, and whether that port is
    /// the scheme's default (so a `Host` may leave it out).
    issuer: Option<(String, u16, bool)>,
    /// Whether the IdP listens on a loopback address: then every route checks `Host`.
    loopback: bool,
    admin_token: Option<AdminToken>,
}

impl Guard {
    /// The guard of an IdP listening on `port` (of a loopback address when `loopback`) whose
    /// issuer is `issuer_url`.
    pub(crate) fn new(
        port: u16,
        loopback: bool,
        issuer_url: &str,
        admin_token: Option<AdminToken>,
    ) -> Self {
        let issuer = url::Url::parse(issuer_url).ok().and_then(|url| {
            Some((
                url.host_str()?.to_ascii_lowercase(),
                url.port_or_known_default()?,
                url.port().is_none(),
            ))
        });
        Self {
            port,
            issuer,
            loopback,
            admin_token,
        }
    }

    /// Whether the request's `Host` (or, in HTTP/2, `:authority`) names this IdP: a loopback
    /// name or address with the port it listens on, or the issuer URL's host and port. No host
    /// at all is refused too.
    fn own_host(&self, request: &Request) -> bool {
        let host = match request.headers().get(header::HOST) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|h| h.parse::<Authority>().ok()),
            None => request.uri().authority().cloned(),
        };
        let Some(host) = host else {
            return false;
        };
        let name = host.host().to_ascii_lowercase();
        let port = host.port_u16();
        let issuer = self
            .issuer
            .as_ref()
            .is_some_and(|(issuer, issuer_port, default)| {
                *issuer == name && (port == Some(*issuer_port) || (port.is_none() && *default))
            });
        // The IdP itself speaks plain http: a Host without a port means 80.
        issuer || (port.unwrap_or(80) == self.port && is_loopback_name(&name))
    }
}

/// Middleware for every route: an IdP on loopback answers only requests addressed to it.
pub(crate) async fn check_host(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if guard.loopback && !guard.own_host(&request) {
        tracing::warn!(host = ?request.headers().get(header::HOST), "request for another host refused");
        return wrong_host();
    }
    next.run(request).await
}

/// Middleware for `/admin/...`: not from a web page, addressed to this IdP, with the admin token
/// when one is configured.
pub(crate) async fn check_admin(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    if from_a_page(request.headers()) {
        tracing::warn!(
            origin = ?request.headers().get(header::ORIGIN),
            "admin request from a web page refused"
        );
        return error_response(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the admin API does not answer web pages (the request has an Origin)",
        );
    }
    if !guard.own_host(&request) {
        tracing::warn!(host = ?request.headers().get(header::HOST), "admin request for another host refused");
        return wrong_host();
    }
    if let Some(token) = &guard.admin_token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !presented.is_some_and(|presented| token.matches(presented)) {
            let mut response = error_response(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the admin API wants the admin token as a bearer token",
            );
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mock-idp admin\""),
            );
            return response;
        }
    }
    next.run(request).await
}

/// Whether a browser says a page sent this: any `Origin`, or `Sec-Fetch-Site` other than `none`
/// (`none` is the user typing the URL).
fn from_a_page(headers: &HeaderMap) -> bool {
    headers.contains_key(header::ORIGIN)
        || headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() != b"none")
}

/// `localhost`, an address in 127.0.0.0/8, or `[::1]` (an authority's host, lowercase).
fn is_loopback_name(name: &str) -> bool {
    if name == "localhost" {
        return true;
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    name.parse::<Ipv4Addr>()
        .is_ok_and(|ip| IpAddr::V4(ip).is_loopback())
}

fn wrong_host() -> Response {
    error_response(
        StatusCode::FORBIDDEN,
        "access_denied",
        "the Host header does not name this IdP",
    )
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>) -> Request {
        let mut builder = Request::builder().uri("/jwks");
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn own_hosts_are_loopback_names_with_the_port_and_the_issuer() {
        let guard = Guard::new(9400, true, "https://idp.example.test", None);
        for host in [
            "127.0.0.1:9400",
            "127.9.9.9:9400",
            "localhost:9400",
            "LOCALHOST:9400",
            "[::1]:9400",
            "idp.example.test:443",
            "IDP.example.test:443",
            "idp.example.test",
        ] {
            assert!(guard.own_host(&request(Some(host))), "{host}");
        }
        for host in [
            "127.0.0.1:9401",
            "127.0.0.1",
            "attacker.example:9400",
            "localhost.attacker.example:9400",
            "10.0.0.1:9400",
            "[::2]:9400",
            "idp.example.test:9400",
            "not a host",
        ] {
            assert!(!guard.own_host(&request(Some(host))), "{host}");
        }
        assert!(!guard.own_host(&request(None)), "no Host at all");
    }

    #[test]
    fn the_admin_token_matches_only_itself_and_never_prints() {
        let token = AdminToken::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "AdminToken([redacted])");
    }
}
