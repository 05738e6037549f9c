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
    /// The PEM holds no RSA, P-256 or Ed25519 private key.
    #[error("not an RSA, P-256 or Ed25519 private key in PEM")]
    NotAPrivateKey,
    /// A key could not be described as a JWK (or its thumbprint computed).
    #[error("the key cannot be described as a JWK")]
    Jwk(#[source] jsonwebtoken::errors::Error),
    /// A PKCS#8 PEM for the `rsa` crate (the weak-key attack) does not parse.
    #[error("not an RSA private key in PKCS#8 PEM")]
    RsaPem(#[source] rsa::pkcs8::Error),
    /// An attack needs an RSA key and the issuer's key is not one.
    #[error("this forgery needs an RSA key")]
    NotRsa,
    /// No published key has this `kid`.
    #[error("no published key with kid {0:?}")]
    UnknownKid(String),
    /// The random source or key encoder failed while generating a key.
    #[error("key generation failed")]
    KeyGeneration(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The signer refused the key/algorithm pair.
    #[error("signing failed")]
    Signing(#[source] jsonwebtoken::errors::Error),
    /// The `rsa` crate refused to sign (the weak-key attack).
    #[error("RSA signing failed")]
    RsaSigning(#[source] rsa::signature::Error),
    /// A header or claims object could not be serialised.
    #[error("cannot encode the token")]
    Encoding(#[source] serde_json::Error),
    /// A tenant name that cannot be a path segment of an issuer URL.
    #[error(
        "invalid tenant name {0:?}: use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
    )]
    InvalidTenant(String),
    /// The tenant cap is reached; it bounds what unauthenticated requests can allocate.
    #[error("too many tenants (at most {0})")]
    TooManyTenants(usize),
    /// The auto-login user is not one of the users.
    #[error("auto-login user {0:?} is not a user of this IdP")]
    UnknownUser(String),
    /// A registered client is unusable.
    #[error("client {client_id:?}: {problem}")]
    InvalidClient {
        /// The client.
        client_id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The admin token is empty, which would protect nothing.
    #[error("the admin token is empty")]
    EmptyAdminToken,
    /// An endpoint name that is not one of [`crate::Endpoint::ALL`].
    #[error("unknown endpoint {0:?}")]
    UnknownEndpoint(String),
    /// The configuration file cannot be read.
    #[error("cannot read {path}")]
    ConfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid.
    #[error("{path} is not a valid configuration")]
    ConfigSyntax {
        /// The file.
        path: std::path::PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// The listener could not be bound or served.
    #[error("server I/O")]
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
    /// The code, refresh token or PKCE verifier is invalid, expired, used or someone else's.
    InvalidGrant,
    /// Registration: a redirect URI is unacceptable (RFC 7591 §3.2.2).
    InvalidRedirectUri,
    /// Registration: other client metadata is unacceptable (RFC 7591 §3.2.2).
    InvalidClientMetadata,
    /// Authorization: only `response_type=code` is served (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// Userinfo: the bearer token is not one this IdP issued and still honours (RFC 6750 §3.1).
    InvalidToken,
    /// The IdP cannot serve the request now (RFC 6749 §4.1.2.1): too many client metadata
    /// documents are being fetched. Answered with 503.
    TemporarilyUnavailable,
    /// Token endpoint: the DPoP proof is invalid (RFC 9449 §5).
    InvalidDpopProof,
    /// Token endpoint: the DPoP proof must carry the nonce the answer's `DPoP-Nonce` gives
    /// (RFC 9449 §8).
    UseDpopNonce,
}

impl OAuthErrorCode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidToken => "invalid_token",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
        }
    }
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
            OAuthErrorCode::InvalidClient | OAuthErrorCode::InvalidToken => {
                StatusCode::UNAUTHORIZED
            }
            OAuthErrorCode::InvalidRequest
            | OAuthErrorCode::UnauthorizedClient
            | OAuthErrorCode::UnsupportedGrantType
            | OAuthErrorCode::InvalidScope
            | OAuthErrorCode::InvalidTarget
            | OAuthErrorCode::InvalidGrant
            | OAuthErrorCode::InvalidRedirectUri
            | OAuthErrorCode::InvalidClientMetadata
            | OAuthErrorCode::UnsupportedResponseType
            | OAuthErrorCode::InvalidDpopProof
            | OAuthErrorCode::UseDpopNonce => StatusCode::BAD_REQUEST,
            OAuthErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = match self.error {
            OAuthErrorCode::InvalidClient => Some(HeaderValue::from_static(
                "Basic realm=\"mock-idp\", charset=\"UTF-8\"",
            )),
            OAuthErrorCode::InvalidToken => Some(HeaderValue::from_static(
                "Bearer realm=\"mock-idp\", error=\"invalid_token\"",
            )),
            _ => None,
        };
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = challenge {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
