//! Why a token was refused: the validator's verdicts, which the challenge turns into
//! `invalid_token` descriptions and the metrics into reasons. Its own module, so the claim rules
//! and the validator both name it without needing each other.

/// Why a token was refused. Each variant becomes `invalid_token` with its own description;
/// none carries token material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS of three canonical base64url parts holding JSON objects.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// A header or claims object repeats a member name.
    #[error("duplicate member in the token {0}")]
    DuplicateMember(&'static str),
    /// `alg` is not on the allow-list (this includes `none` and every HMAC algorithm).
    #[error("token algorithm not accepted")]
    AlgorithmNotAllowed,
    /// `typ` is not an accepted access-token type.
    #[error("token type not accepted")]
    WrongType,
    /// `crit`, `b64` or `cty` ask for processing this server does not do.
    #[error("token uses unsupported header extensions")]
    UnsupportedHeader,
    /// The authorization server publishes no key this server can verify with (G09).
    #[error("the authorization server publishes no usable signing key")]
    NoUsableKey,
    /// No key of the authorization server has this `kid`.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The key exists but does not fit the algorithm (type, curve, JWK `alg`, `use`).
    #[error("token algorithm does not match its key")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is past (with the leeway).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (with the leeway).
    #[error("token not yet valid")]
    NotYetValid,
    /// A required claim is absent.
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),
    /// A claim has the wrong type or an impossible value.
    #[error("token {0} claim is invalid")]
    InvalidClaim(&'static str),
    /// `iss` is not the configured issuer.
    #[error("token issuer is not trusted")]
    WrongIssuer,
    /// `aud` names none of this server's audiences.
    #[error("token audience is not this server")]
    WrongAudience,
    /// The authorization server says the token is not active (revoked, expired, unknown).
    #[error("token is not active")]
    Inactive,
    /// Not an access token (a Cognito ID token: `token_use` is not `access`).
    #[error("token is not an access token")]
    NotAnAccessToken,
    /// The token is bound to a key (`cnf`: DPoP or mTLS) and was presented as a bearer token.
    #[error("token is bound to a key and cannot be used as a bearer token")]
    SenderConstrained,
    /// The token (or its subject, or its `jti`) was revoked through the shared state.
    #[error("token revoked")]
    Revoked,
}
