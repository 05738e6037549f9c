//! Errors: [`IdpError`] for the library's callers, and [`OAuthError`], the one place that turns a
//! refused request into an RFC 6749 §5.2 error response (status, body, `WWW-Authenticate`).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// What can go wrong when configuring, starting or driving the mock IdP from code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdpError {
    /// The algorithm is not one of RS256, PS256, ES256 or EdDSA.
    #[error("unsupported signing algorithm {0:?} (supported: RS256, PS256, ES256, EdDSA)")]
    UnsupportedAlgorithm(String),
    /// A key could not be loaded or described as a JWK.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The random source or key encoder failed while generating a key.
    #[error("key generation failed: {0}")]
    KeyGeneration(String),
    /// The signer refused the key/algorithm pair.
    #[error("signing failed: {0}")]
    Signing(String),
    /// A tenant name that cannot be a path segment of an issuer URL.
    #[error(
        "invalid tenant name {0:?}: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
    )]
    InvalidTenant(String),
    /// The tenant cap is reached; it bounds what unauthenticated requests can allocate.
    #[error("too many tenants (at most {0})")]
    TooManyTenants(usize),
    /// The configuration file or flags are inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// The listener could not be bound or served.
    #[error("server I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// An RFC 6749 §5.2 error response. Descriptions are written here, never echoed from the request
/// beyond a parameter name, so they cannot carry a secret back or break the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    /// The §5.2 (or RFC 8707 `invalid_target`) error code.
    pub error: OAuthErrorCode,
    /// A human-readable explanation.
    pub error_description: String,
}

/// The error codes of RFC 6749 §5.2 plus RFC 8707's `invalid_target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// Missing, repeated or malformed parameter, or more than one client authentication method.
    InvalidRequest,
    /// Unknown client, wrong secret, or no client authentication.
    InvalidClient,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// The grant type is not supported here.
    UnsupportedGrantType,
    /// A requested scope is unknown or not allowed for the client.
    InvalidScope,
    /// A requested resource is malformed or not allowed for the client (RFC 8707 §2).
    InvalidTarget,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(error: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self.error {
            // RFC 6749 §5.2: invalid_client MAY be 401; it MUST be 401 with a challenge when the
            // client tried the Authorization header, and we answer the same way for both methods.
            OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthErrorCode::InvalidRequest
            | OAuthErrorCode::UnauthorizedClient
            | OAuthErrorCode::UnsupportedGrantType
            | OAuthErrorCode::InvalidScope
            | OAuthErrorCode::InvalidTarget => StatusCode::BAD_REQUEST,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = matches!(self.error, OAuthErrorCode::InvalidClient);
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mock-idp\", charset=\"UTF-8\""),
            );
        }
        response
    }
}
