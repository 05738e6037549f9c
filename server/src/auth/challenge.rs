//! The one place auth failures become HTTP: status, RFC 6750 `WWW-Authenticate` challenge with
//! RFC 9728 `resource_metadata`, and a JSON body (checklist B01-B16, H01-H06).
//!
//! - no credentials → 401, challenge without `error` (B08, RFC 6750 §3.1);
//! - a bad token → 401 `invalid_token` with a specific description (B09, E08);
//! - a malformed request → 400 `invalid_request` (B13);
//! - missing scopes → 403 `insufficient_scope` naming every scope the operation needs (H01, H03);
//! - keys unavailable → 503 with no challenge: the token was not judged (D12 fails closed).
//!
//! Every challenge carries `resource_metadata` and, when known, `scope` (B03, B10); values are
//! quoted strings of allowed characters only (B05, B07), each parameter at most once (B06).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::dpop::ProofError;
use super::keys::KeysUnavailable;
use super::remote::{OverBudget, RemoteFailure, RemoteUnavailable};
use super::token_error::TokenError;
use crate::rate_limit::retry_after;
use crate::resource::Resource;

/// Why a request to `/mcp` was refused by the auth layers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    /// No `Authorization: Bearer` credentials (including other schemes, B12).
    #[error("bearer token required")]
    MissingToken,
    /// Credentials that are not one well-formed bearer token.
    #[error("{0}")]
    MalformedRequest(&'static str),
    /// The token was judged and refused.
    #[error(transparent)]
    InvalidToken(#[from] TokenError),
    /// The token lacks scopes the operation needs; `required` lists all the operation needs.
    #[error("insufficient scope")]
    InsufficientScope {
        /// Every scope the operation needs, in a stable order (H05).
        required: Vec<String>,
    },
    /// The keys needed to judge the token are unavailable.
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
    /// The authorization server that must judge the token cannot answer (P03).
    #[error(transparent)]
    RemoteUnavailable(#[from] RemoteUnavailable),
    /// The client's address has caused as many authorization-server calls as it may for now.
    #[error("too many unknown tokens from this client address")]
    OverRemoteBudget(OverBudget),
    /// A token presented with the `DPoP` scheme, refused for its proof or its binding.
    #[error(transparent)]
    Dpop(#[from] DpopRefusal),
    /// The shared state a check needs cannot be reached, and that check fails closed
    /// (`MCP_STATE_DPOP_REPLAY_ON_FAILURE=refuse`).
    #[error("the shared state is unavailable")]
    StateUnavailable,
}

/// Why a token presented with the `DPoP` scheme is refused (RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DpopRefusal {
    /// No `DPoP` header, or more than one.
    #[error("one DPoP proof header is required")]
    NotOneProof,
    /// The proof fails a check.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The token is not bound to a key: it is a bearer token.
    #[error("the access token is not bound to a DPoP key")]
    NotBound,
    /// The proof's key is not the one the token is bound to.
    #[error("the DPoP proof's key is not the one the access token is bound to")]
    KeyMismatch,
}

impl DpopRefusal {
    /// The RFC 9449 §7.1 error code: the proof's faults are `invalid_dpop_proof`, the token's
    /// binding ones `invalid_token`.
    fn code(self) -> &'static str {
        match self {
            // §9: the client retries with the nonce the answer carries.
            Self::Proof(ProofError::UseNonce) => "use_dpop_nonce",
            Self::NotOneProof | Self::Proof(_) => "invalid_dpop_proof",
            Self::NotBound | Self::KeyMismatch => "invalid_token",
        }
    }
}

/// How challenges name DPoP, when it is on.
#[derive(Debug, Clone)]
pub(crate) struct DpopChallenge {
    /// The `algs` parameter: the proof algorithms accepted.
    pub(crate) algs: String,
    /// Only DPoP: no Bearer challenge.
    pub(crate) required: bool,
}

impl From<RemoteFailure> for AuthError {
    fn from(failure: RemoteFailure) -> Self {
        match failure {
            RemoteFailure::Unavailable(unavailable) => Self::RemoteUnavailable(unavailable),
            RemoteFailure::OverBudget(over) => Self::OverRemoteBudget(over),
        }
    }
}

/// Builds challenges for one resource.
#[derive(Debug, Clone)]
pub(crate) struct Challenger {
    resource: Resource,
    basic_scopes: Vec<String>,
    dpop: Option<DpopChallenge>,
}

impl Challenger {
    /// Challenges naming `resource`'s RFC 9728 URL (in the spelling each request used);
    /// `basic_scopes` is what a client should request first (B10), never `offline_access` (H06).
    pub(crate) fn new(resource: &Resource, basic_scopes: Vec<String>) -> Self {
        let basic_scopes = basic_scopes
            .into_iter()
            .filter(|s| s != "offline_access")
            .collect();
        Self {
            resource: resource.clone(),
            basic_scopes,
            dpop: None,
        }
    }

    /// Challenges that also (or, when required, only) offer the `DPoP` scheme (B15, RFC 9449
    /// §7.1).
    pub(crate) fn with_dpop(mut self, dpop: Option<DpopChallenge>) -> Self {
        self.dpop = dpop;
        self
    }

    /// The response for `error` to a request addressed to `host`.
    pub(crate) fn respond(&self, error: &AuthError, host: Option<&str>) -> Response {
        let (status, code, description) = match error {
            AuthError::MissingToken => (
                StatusCode::UNAUTHORIZED,
                None,
                if self.dpop.as_ref().is_some_and(|dpop| dpop.required) {
                    "DPoP-bound token and proof required".to_owned()
                } else {
                    "Bearer token required".to_owned()
                },
            ),
            AuthError::MalformedRequest(why) => (
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                (*why).to_owned(),
            ),
            AuthError::InvalidToken(why) => (
                StatusCode::UNAUTHORIZED,
                Some("invalid_token"),
                why.to_string(),
            ),
            AuthError::InsufficientScope { required } => (
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                format!("this request needs the scopes: {}", required.join(" ")),
            ),
            AuthError::Dpop(refusal) => (
                StatusCode::UNAUTHORIZED,
                Some(refusal.code()),
                refusal.to_string(),
            ),
            AuthError::OverRemoteBudget(over) => {
                tracing::debug!("refusing a request: its address is over the introspection budget");
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({"error": "too_many_requests", "error_description": "too many unknown tokens from this address; retry after the time in Retry-After"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, retry_after(over.retry_after));
                return response;
            }
            AuthError::StateUnavailable => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable", "error_description": "the DPoP replay check is temporarily unavailable"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
            AuthError::KeysUnavailable(_) | AuthError::RemoteUnavailable(_) => {
                // Per request, so `debug`: the key source and the remote verifier log the
                // outage itself when it begins.
                tracing::debug!(reason = %error, "refusing a request: token validation unavailable");
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({"error": "temporarily_unavailable", "error_description": "token validation is temporarily unavailable"})),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                return response;
            }
        };
        let scope = match error {
            AuthError::InsufficientScope { required } => required
                .iter()
                .filter(|s| *s != "offline_access")
                .cloned()
                .collect(),
            _ => self.basic_scopes.clone(),
        };
        let resource_metadata = self.resource.spelled_for(host).metadata_url();
        let mut params = vec![format!(
            "resource_metadata=\"{}\"",
            quoted(&resource_metadata)
        )];
        if !scope.is_empty() {
            params.push(format!("scope=\"{}\"", quoted(&scope.join(" "))));
        }
        let mut error_params = Vec::new();
        if let Some(code) = code {
            error_params.push(format!("error=\"{code}\""));
            error_params.push(format!("error_description=\"{}\"", quoted(&description)));
        }
        let dpop_fault = matches!(error, AuthError::Dpop(_));
        let mut challenges = Vec::new();
        if !self.dpop.as_ref().is_some_and(|dpop| dpop.required) {
            // A DPoP proof's fault is told in the DPoP challenge alone.
            let own = if dpop_fault {
                &[][..]
            } else {
                &error_params[..]
            };
            challenges.push(format!("Bearer {}", [&params[..], own].concat().join(", ")));
        }
        if let Some(dpop) = &self.dpop {
            let algs = format!("algs=\"{}\"", quoted(&dpop.algs));
            let own = if dpop_fault || dpop.required {
                &error_params[..]
            } else {
                &[][..]
            };
            challenges.push(format!(
                "DPoP {}",
                [&[algs][..], &params[..], own].concat().join(", ")
            ));
        }
        let body = match code {
            Some(code) => json!({"error": code, "error_description": description}),
            None => json!({"error_description": description}),
        };
        let mut response = (status, Json(body)).into_response();
        for challenge in challenges {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// RFC 6750 §3 allows %x20-21 / %x23-5B / %x5D-7E in values: anything else is dropped, so a
/// value can never break out of its quotes.
fn quoted(value: &str) -> String {
    value
        .chars()
        .filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
        .collect()
}

impl AuthError {
    /// How a refusal is counted and audited: its outcome (`unavailable` when no verdict could be
    /// had, the 503 of keys or introspection that cannot be reached; `refused` otherwise) and its
    /// reason, one per kind of `error_description`: the label set is fixed.
    pub(crate) fn refusal(&self) -> (&'static str, &'static str) {
        let outcome = if matches!(
            self,
            Self::KeysUnavailable(_) | Self::RemoteUnavailable(_) | Self::StateUnavailable
        ) {
            "unavailable"
        } else {
            "refused"
        };
        (outcome, self.reason())
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::MalformedRequest(_) => "malformed_request",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::KeysUnavailable(_) => "keys_unavailable",
            Self::RemoteUnavailable(_) => "introspection_unavailable",
            Self::OverRemoteBudget(_) => "introspection_budget",
            Self::StateUnavailable => "shared_state_unavailable",
            Self::Dpop(refusal) => match refusal {
                DpopRefusal::NotOneProof => "dpop_proof_missing",
                DpopRefusal::Proof(ProofError::UseNonce) => "dpop_nonce_required",
                DpopRefusal::Proof(_) => "dpop_proof_invalid",
                DpopRefusal::NotBound => "dpop_token_not_bound",
                DpopRefusal::KeyMismatch => "dpop_key_mismatch",
            },
            Self::InvalidToken(error) => match error {
                TokenError::Malformed(_) => "malformed",
                TokenError::DuplicateMember(_) => "duplicate_member",
                TokenError::AlgorithmNotAllowed => "algorithm_not_allowed",
                TokenError::WrongType => "wrong_type",
                TokenError::UnsupportedHeader => "unsupported_header",
                TokenError::NoUsableKey => "no_usable_key",
                TokenError::UnknownKey => "unknown_key",
                TokenError::KeyMismatch => "key_mismatch",
                TokenError::BadSignature => "bad_signature",
                TokenError::Expired => "expired",
                TokenError::NotYetValid => "not_yet_valid",
                TokenError::MissingClaim(_) => "missing_claim",
                TokenError::InvalidClaim(_) => "invalid_claim",
                TokenError::WrongIssuer => "wrong_issuer",
                TokenError::WrongAudience => "wrong_audience",
                TokenError::NotAnAccessToken => "not_an_access_token",
                TokenError::Inactive => "inactive",
                TokenError::SenderConstrained => "sender_constrained",
                TokenError::Revoked => "revoked",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::ResourceUrl;

    fn challenger() -> Challenger {
        Challenger::new(
            &Resource::new(ResourceUrl::parse("https://h/mcp").unwrap()),
            vec!["mcp:tools".into(), "offline_access".into()],
        )
    }

    fn challenge(error: &AuthError) -> (StatusCode, String) {
        let response = challenger().respond(error, None);
        let header = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (response.status(), header)
    }

    /// B01, B03, B08, B10, H06: no token → 401, metadata and scope, no error, no offline_access.
    #[test]
    fn a_missing_token_gets_a_bare_challenge_with_metadata_and_scope() {
        let (status, header) = challenge(&AuthError::MissingToken);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            header,
            "Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
        );
    }

    /// B09, E08: a bad token → 401 invalid_token with a description.
    #[test]
    fn an_invalid_token_gets_invalid_token_with_its_reason() {
        let (status, header) = challenge(&AuthError::InvalidToken(TokenError::Expired));
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            header.ends_with("error=\"invalid_token\", error_description=\"token expired\""),
            "{header}"
        );
    }

    /// H01, H03: 403 naming every scope the operation needs.
    #[test]
    fn insufficient_scope_is_403_naming_all_needed_scopes() {
        let (status, header) = challenge(&AuthError::InsufficientScope {
            required: vec!["a".into(), "b".into()],
        });
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            header.contains("scope=\"a b\", error=\"insufficient_scope\""),
            "{header}"
        );
    }

    /// B07: nothing outside the allowed characters survives in a parameter value.
    #[test]
    fn quoted_values_drop_quotes_backslashes_and_non_ascii() {
        assert_eq!(quoted("a\"b\\c\u{e9}d\ne"), "abcde");
    }
}
