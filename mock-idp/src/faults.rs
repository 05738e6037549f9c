//! Fault injection and request counters, per issuer and endpoint, so a test can make the JWKS
//! endpoint fail, hang, lie or hang up, and then assert how often the server under test came back.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::IdpError;

/// The endpoints of one issuer that can be counted and faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `/.well-known/openid-configuration` (OIDC Discovery).
    OpenidConfiguration,
    /// `/.well-known/oauth-authorization-server` (RFC 8414).
    OauthAuthorizationServer,
    /// The JWKS (`jwks_uri`).
    Jwks,
    /// The token endpoint.
    Token,
    /// Token introspection (RFC 7662).
    Introspection,
    /// Token revocation (RFC 7009).
    Revocation,
    /// Google-style token information (`/tokeninfo`).
    TokenInfo,
}

impl Endpoint {
    /// Every endpoint, for counters reports.
    pub const ALL: [Endpoint; 7] = [
        Self::OpenidConfiguration,
        Self::OauthAuthorizationServer,
        Self::Jwks,
        Self::Token,
        Self::Introspection,
        Self::Revocation,
        Self::TokenInfo,
    ];

    /// The name used in admin URLs and counter reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenidConfiguration => "openid-configuration",
            Self::OauthAuthorizationServer => "oauth-authorization-server",
            Self::Jwks => "jwks",
            Self::Token => "token",
            Self::Introspection => "introspect",
            Self::Revocation => "revoke",
            Self::TokenInfo => "tokeninfo",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Endpoint {
    type Err = IdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| IdpError::UnknownEndpoint(s.to_owned()))
    }
}

/// What an endpoint does instead of (or before) answering normally. Stays until cleared.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Wait this long (real time) before acting: long enough, and the caller's timeout fires.
    #[serde(default, with = "millis", rename = "delay_ms")]
    pub delay: Option<Duration>,
    /// Then do this; `None` answers normally after the delay.
    #[serde(default)]
    pub action: Option<FaultAction>,
}

/// How a faulted endpoint misbehaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and a short JSON error body.
    Status(u16),
    /// Answer 200 with `application/json` that is not valid JSON.
    MalformedBody,
    /// Close the connection without a complete response.
    DropConnection,
}

impl Fault {
    /// Answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            delay: None,
            action: Some(FaultAction::Status(status)),
        }
    }

    /// Answer 200 with a body that does not parse.
    pub fn malformed_body() -> Self {
        Self {
            delay: None,
            action: Some(FaultAction::MalformedBody),
        }
    }

    /// Hang up without answering.
    pub fn drop_connection() -> Self {
        Self {
            delay: None,
            action: Some(FaultAction::DropConnection),
        }
    }

    /// Wait `delay`, then answer normally.
    pub fn delay(delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            action: None,
        }
    }

    /// Adds a delay before the action.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Applies the fault: sleeps, then returns the response to send instead of the normal one,
    /// or `None` to answer normally.
    pub(crate) async fn apply(&self) -> Option<Response> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        match self.action.as_ref()? {
            FaultAction::Status(code) => {
                let status =
                    StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body =
                    serde_json::json!({"error": "injected_fault", "status": status.as_u16()});
                Some((status, axum::Json(body)).into_response())
            }
            FaultAction::MalformedBody => {
                let mut response = "{\"keys\": [{\"kty\": \"RSA\", \"n\": ".into_response();
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Some(response)
            }
            FaultAction::DropConnection => {
                // A body that fails before its first byte makes hyper abort the connection, so
                // the client sees a transport error rather than an HTTP answer.
                let failing = futures_util::stream::once(async {
                    Err::<axum::body::Bytes, _>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "injected connection drop",
                    ))
                });
                Some(Response::new(Body::from_stream(failing)))
            }
        }
    }
}

/// Faults and request counts of one issuer's endpoints.
#[derive(Debug, Default)]
pub(crate) struct EndpointMonitor {
    faults: Mutex<HashMap<Endpoint, Fault>>,
    counts: [AtomicU64; Endpoint::ALL.len()],
}

impl EndpointMonitor {
    /// Counts a request and returns the fault to apply to it, if any.
    pub(crate) fn enter(&self, endpoint: Endpoint) -> Option<Fault> {
        self.counter(endpoint).fetch_add(1, Ordering::SeqCst);
        self.faults.lock().ok()?.get(&endpoint).cloned()
    }

    pub(crate) fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.insert(endpoint, fault);
        }
    }

    pub(crate) fn clear_faults(&self) {
        if let Ok(mut faults) = self.faults.lock() {
            faults.clear();
        }
    }

    pub(crate) fn count(&self, endpoint: Endpoint) -> u64 {
        self.counter(endpoint).load(Ordering::SeqCst)
    }

    pub(crate) fn reset_counts(&self) {
        for counter in &self.counts {
            counter.store(0, Ordering::SeqCst);
        }
    }

    fn counter(&self, endpoint: Endpoint) -> &AtomicU64 {
        // `ALL` lists the endpoints in declaration order (pinned by a test).
        &self.counts[endpoint as usize]
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request counters are indexed by declaration order: `ALL` must follow it, once each.
    #[test]
    fn all_lists_every_endpoint_in_declaration_order() {
        for (index, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, index, "{endpoint:?}");
        }
        let monitor = EndpointMonitor::default();
        monitor
            .counter(Endpoint::TokenInfo)
            .fetch_add(1, Ordering::SeqCst);
        assert_eq!(monitor.counter(Endpoint::Token).load(Ordering::SeqCst), 0);
        assert_eq!(
            monitor.counter(Endpoint::TokenInfo).load(Ordering::SeqCst),
            1
        );
    }
}
