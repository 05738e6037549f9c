//! Origin and Host checks against DNS rebinding (checklist T01-T05): an `Origin` that is present
//! and not allowed gets 403 (an absent one is fine, T03); a `Host` not allowed gets 403. Runs
//! before authentication, so the order of checks is ours, not rmcp's.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The allowed hosts and origins.
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl Guard {
    /// `hosts` as `host` or `host:port`; `origins` as `scheme://host[:port]`, port `*` for any.
    pub fn new(hosts: Vec<String>, origins: Vec<String>) -> Self {
        Self { hosts, origins }
    }

    /// Whether a `Host` value is allowed: an entry with a port must match exactly, one without
    /// matches any port.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = strip_port(&host);
        self.hosts
            .iter()
            .any(|allowed| *allowed == host || (!has_port(allowed) && allowed == bare))
    }

    /// Whether an `Origin` value is allowed (exact, or an entry ending in `:*` for any port).
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_suffix(":*") {
                Some(prefix) => origin == prefix || strip_port(&origin) == prefix,
                None => origin == allowed,
            }
        })
    }
}

/// Middleware: 403 for a disallowed `Host` or `Origin`, with a JSON-RPC error body without id.
pub async fn check_origin_and_host(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(host) if guard.host_allowed(&host) => {}
        _ => return forbidden("Host not allowed"),
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|origin| guard.origin_allowed(origin));
        if !allowed {
            return forbidden("Origin not allowed");
        }
    }
    next.run(request).await
}

fn forbidden(message: &str) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": message}});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

/// `host:port` → `host` (IPv6 literals keep their brackets).
fn strip_port(authority: &str) -> &str {
    match authority.rfind(':') {
        Some(at)
            if !authority[at..].contains(']')
                && authority[at + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &authority[..at]
        }
        _ => authority,
    }
}

fn has_port(authority: &str) -> bool {
    strip_port(authority) != authority
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(
            vec![
                "mcp.example.com".into(),
                "localhost:8000".into(),
                "[::1]".into(),
            ],
            vec![
                "https://app.example.com".into(),
                "http://localhost:*".into(),
            ],
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
        assert!(!guard.host_allowed("evil.example"));
        assert!(!guard.host_allowed("mcp.example.com.evil.example"));
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
        assert!(!guard.origin_allowed("null"));
    }
}
