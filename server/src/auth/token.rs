//! The token validator: a pure function of (token, keys, now, policy), so every rule can be
//! tested exhaustively without a network (checklist D02-D05, D07, E02-E09, E13, G06-G08, J01-J50).
//!
//! Order: compact-JWS syntax and canonical base64url (J40-J42), one JSON object per part without
//! duplicate members (J44-J45), header policy (`alg` allow-list, `typ`, no `crit`/`cty`, J01-J04,
//! J15-J17, J35-J38, J46), key selection from the AS's keys only (`jku`/`x5u`/`jwk`/`x5c` are never
//! read, J11-J14), key/algorithm consistency (J05-J07), signature (J18-J21, via jsonwebtoken),
//! then claims: `iss` exact, `aud` contains an accepted audience, `exp`/`nbf` with leeway, `sub`.

use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::config::TokenTypePolicy;

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
    /// The token is bound to a key (`cnf`: DPoP or mTLS) and was presented as a bearer token.
    #[error("token is bound to a key and cannot be used as a bearer token")]
    SenderConstrained,
}

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct ValidationPolicy {
    /// `iss` must equal this byte for byte.
    pub issuer: String,
    /// `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Accepted `alg` values.
    pub algorithms: Vec<Algorithm>,
    /// Tolerance on `exp` and `nbf`, seconds.
    pub leeway_secs: i64,
    /// Accepted `typ` values.
    pub token_types: TokenTypePolicy,
}

/// A verification key from the AS's JWKS, checked once when the JWKS is loaded.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    kind: KeyKind,
    jwk_alg: Option<Algorithm>,
    key: DecodingKey,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.jwk_alg)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
    Ed25519,
}

/// Why a JWK was left out of the key set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejection {
    /// Not a JWK this server can verify with (including symmetric `oct` keys, never used).
    #[error("unsupported key type")]
    Unsupported,
    /// `use` is not `sig`, or `key_ops` lacks `verify` (RFC 7517 §4.2-4.3, G07).
    #[error("key is not for signature verification")]
    NotForSignatures,
    /// An RSA modulus under 2048 bits (RFC 7518 §3.3, G08).
    #[error("RSA key shorter than 2048 bits")]
    WeakKey,
}

impl VerificationKey {
    /// Accepts a JWK for signature verification, or says why not.
    ///
    /// # Errors
    /// [`KeyRejection`] for symmetric, encryption-only, weak or unsupported keys.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyRejection> {
        if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
            return Err(KeyRejection::NotForSignatures);
        }
        if let Some(ops) = &jwk.common.key_operations
            && !ops
                .iter()
                .any(|op| matches!(op, jsonwebtoken::jwk::KeyOperations::Verify))
        {
            return Err(KeyRejection::NotForSignatures);
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let modulus = URL_SAFE_NO_PAD
                    .decode(&rsa.n)
                    .map_err(|_| KeyRejection::Unsupported)?;
                let bits = significant_bits(&modulus);
                if bits < 2048 {
                    return Err(KeyRejection::WeakKey);
                }
                KeyKind::Rsa
            }
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => KeyKind::P256,
                EllipticCurve::P384 => KeyKind::P384,
                _ => return Err(KeyRejection::Unsupported),
            },
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                KeyKind::Ed25519
            }
            _ => return Err(KeyRejection::Unsupported),
        };
        let jwk_alg = match jwk.common.key_algorithm {
            None => None,
            Some(alg) => Some(signature_algorithm(alg).ok_or(KeyRejection::Unsupported)?),
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| KeyRejection::Unsupported)?;
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            kind,
            jwk_alg,
            key,
        })
    }

    /// The key id, for logs.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Whether this key may verify `alg`: the key type and curve fit, and a JWK `alg` equals it.
    fn fits(&self, alg: Algorithm) -> bool {
        let kind_fits = match alg {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => self.kind == KeyKind::Rsa,
            Algorithm::ES256 => self.kind == KeyKind::P256,
            Algorithm::ES384 => self.kind == KeyKind::P384,
            Algorithm::EdDSA => self.kind == KeyKind::Ed25519,
            // HMAC (and anything newer) never verifies with a JWKS key.
            _ => false,
        };
        kind_fits && self.jwk_alg.is_none_or(|pinned| pinned == alg)
    }
}

/// The usable keys of one JWKS.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

impl KeySet {
    /// Builds a key set; unusable keys are left out (and reported to the caller for logging).
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        Self { keys }
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key with this `kid` exists.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The claims of an accepted token, as the tools see them.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, string or array as in the token.
    pub audience: Value,
    /// `exp`, seconds.
    pub expires_at: i64,
    /// `iat`, seconds.
    pub issued_at: Option<i64>,
    /// `jti`.
    pub token_id: Option<String>,
    /// `client_id`, else Okta's `cid`, else `azp`.
    pub client_id: Option<String>,
    /// `scope` split on spaces, else `scp` (array or string).
    pub scopes: Vec<String>,
    /// Okta's `uid`.
    pub uid: Option<String>,
}

/// Validates `token` against `keys` at `now` under `policy`.
///
/// # Errors
/// [`TokenError`] naming the first rule the token breaks.
pub fn validate(
    token: &str,
    keys: &KeySet,
    now: i64,
    policy: &ValidationPolicy,
) -> Result<VerifiedClaims, TokenError> {
    let parsed = parse(token, policy)?;
    let key = select_key(&parsed, keys)?;
    verify_signature(&parsed, key)?;
    check_claims(&parsed.claims, now, policy)
}

struct Parsed<'a> {
    signing_input: &'a str,
    signature: &'a str,
    alg: Algorithm,
    header: Header,
    claims: Claims,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    cty: Option<IgnoredAny>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    b64: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    exp: Option<NumericDate>,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    iat: Option<NumericDate>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    uid: Option<Value>,
    #[serde(default)]
    cnf: Option<IgnoredAny>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// RFC 7519 §2: a JSON number of seconds; integers or finite floats, never strings or booleans.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum NumericDate {
    Int(i64),
    Float(f64),
}

impl NumericDate {
    fn seconds(self, claim: &'static str) -> Result<i64, TokenError> {
        match self {
            Self::Int(secs) => Ok(secs),
            Self::Float(secs) if secs.is_finite() && secs.abs() < 1e15 => Ok(secs.floor() as i64),
            Self::Float(_) => Err(TokenError::InvalidClaim(claim)),
        }
    }
}

fn parse<'a>(token: &'a str, policy: &ValidationPolicy) -> Result<Parsed<'a>, TokenError> {
    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("not a compact JWS"))?;
    let (header_b64, claims_b64) = signing_input
        .split_once('.')
        .ok_or(TokenError::Malformed("not a compact JWS"))?;
    if claims_b64.contains('.') {
        return Err(TokenError::Malformed("too many segments (JWE or nested)"));
    }
    if header_b64.is_empty() || claims_b64.is_empty() || signature.is_empty() {
        return Err(TokenError::Malformed("empty segment"));
    }
    // Canonical base64url without padding: rejects '=', '+', '/', whitespace and non-zero pad bits.
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| TokenError::Malformed("header is not base64url"))?;
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| TokenError::Malformed("payload is not base64url"))?;
    URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed("signature is not base64url"))?;

    unique_members(&header_bytes).map_err(|e| e.within("header"))?;
    unique_members(&claims_bytes).map_err(|e| e.within("claims"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| TokenError::Malformed("header is not a valid JOSE header"))?;
    let claims: Claims = serde_json::from_slice(&claims_bytes)
        .map_err(|_| TokenError::Malformed("claims have invalid types"))?;

    // `alg` is case-sensitive (RFC 7515 §4.1.1): only exact allow-listed names pass.
    let alg = policy
        .algorithms
        .iter()
        .copied()
        .find(|alg| algorithm_name(*alg) == header.alg)
        .ok_or(TokenError::AlgorithmNotAllowed)?;
    if header.crit.is_some() || header.b64.is_some() || header.cty.is_some() {
        return Err(TokenError::UnsupportedHeader);
    }
    if !typ_accepted(header.typ.as_deref(), policy.token_types) {
        return Err(TokenError::WrongType);
    }
    Ok(Parsed {
        signing_input,
        signature,
        alg,
        header,
        claims,
    })
}

fn select_key<'k>(
    parsed: &Parsed<'_>,
    keys: &'k KeySet,
) -> Result<&'k VerificationKey, TokenError> {
    match &parsed.header.kid {
        Some(kid) => {
            let key = keys
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or(TokenError::UnknownKey)?;
            if key.fits(parsed.alg) {
                Ok(key)
            } else {
                Err(TokenError::KeyMismatch)
            }
        }
        // J10: without a kid, only a signature that verifies under one of the AS's fitting keys.
        None => {
            let mut fitting = keys.keys.iter().filter(|k| k.fits(parsed.alg)).peekable();
            if fitting.peek().is_none() {
                return Err(TokenError::UnknownKey);
            }
            fitting
                .find(|key| verify_signature(parsed, key).is_ok())
                .ok_or(TokenError::BadSignature)
        }
    }
}

fn verify_signature(parsed: &Parsed<'_>, key: &VerificationKey) -> Result<(), TokenError> {
    match jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        &key.key,
        parsed.alg,
    ) {
        Ok(true) => Ok(()),
        Ok(false) | Err(_) => Err(TokenError::BadSignature),
    }
}

fn check_claims(
    claims: &Claims,
    now: i64,
    policy: &ValidationPolicy,
) -> Result<VerifiedClaims, TokenError> {
    let issuer = claims
        .iss
        .as_deref()
        .ok_or(TokenError::MissingClaim("iss"))?;
    if issuer != policy.issuer {
        return Err(TokenError::WrongIssuer);
    }
    let audience = claims.aud.as_ref().ok_or(TokenError::MissingClaim("aud"))?;
    let audiences: &[String] = match audience {
        Audience::One(one) => std::slice::from_ref(one),
        Audience::Many(many) => many,
    };
    if !audiences.iter().any(|aud| {
        policy
            .audiences
            .iter()
            .any(|accepted| same_audience(aud, accepted))
    }) {
        return Err(TokenError::WrongAudience);
    }
    let expires_at = claims
        .exp
        .ok_or(TokenError::MissingClaim("exp"))?
        .seconds("exp")?;
    if now > expires_at.saturating_add(policy.leeway_secs) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = claims.nbf
        && now.saturating_add(policy.leeway_secs) < nbf.seconds("nbf")?
    {
        return Err(TokenError::NotYetValid);
    }
    let issued_at = claims.iat.map(|iat| iat.seconds("iat")).transpose()?;
    let subject = claims
        .sub
        .as_deref()
        .ok_or(TokenError::MissingClaim("sub"))?;
    if subject.trim().is_empty() {
        return Err(TokenError::InvalidClaim("sub"));
    }
    if claims.cnf.is_some() {
        // RFC 9449 §7.2 / RFC 8705: a key-bound token used without its proof must not pass; this
        // server verifies no DPoP or mTLS proof, so it accepts bearer tokens only (J48, D13).
        return Err(TokenError::SenderConstrained);
    }
    Ok(VerifiedClaims {
        issuer: issuer.to_owned(),
        subject: subject.to_owned(),
        audience: match audience {
            Audience::One(one) => Value::String(one.clone()),
            Audience::Many(many) => Value::from(many.clone()),
        },
        expires_at,
        issued_at,
        token_id: claims.jti.clone(),
        client_id: claims
            .client_id
            .clone()
            .or_else(|| claims.cid.clone())
            .or_else(|| claims.azp.clone()),
        scopes: scopes(claims.scope.as_ref().or(claims.scp.as_ref()))?,
        uid: match &claims.uid {
            None | Some(Value::Null) => None,
            Some(Value::String(uid)) => Some(uid.clone()),
            Some(other) => Some(other.to_string()),
        },
    })
}

/// `scope` is a space-separated string (RFC 9068 §2.2.3); Okta and Entra send `scp` as an array
/// or string. Anything else is an invalid claim rather than "no scopes".
fn scopes(value: Option<&Value>) -> Result<Vec<String>, TokenError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(TokenError::InvalidClaim("scope"))
            })
            .collect(),
        Some(_) => Err(TokenError::InvalidClaim("scope")),
    }
}

/// Exact comparison, except that the scheme and host may differ in case (MCP "Canonical Server
/// URI": implementations SHOULD accept an uppercase scheme or host, D07). No other normalisation:
/// no trailing-slash, port, path or percent-encoding folding (J34).
fn same_audience(token_aud: &str, accepted: &str) -> bool {
    token_aud == accepted || case_fold_authority(token_aud) == case_fold_authority(accepted)
}

fn case_fold_authority(uri: &str) -> String {
    match uri.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
            format!(
                "{}://{}{path}",
                scheme.to_ascii_lowercase(),
                authority.to_ascii_lowercase()
            )
        }
        None => uri.to_owned(),
    }
}

/// RFC 9068 §4 step 1 and RFC 7515 §4.1.9: `typ` compared case-insensitively, `application/`
/// implied.
fn typ_accepted(typ: Option<&str>, policy: TokenTypePolicy) -> bool {
    let normalized = typ.map(|t| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    });
    matches!(
        (normalized.as_deref(), policy),
        (Some("at+jwt"), _) | (None | Some("jwt"), TokenTypePolicy::Default)
    )
}

fn algorithm_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        // An algorithm this build does not know never matches a header value.
        _ => "",
    }
}

fn signature_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    match alg {
        KeyAlgorithm::RS256 => Some(Algorithm::RS256),
        KeyAlgorithm::RS384 => Some(Algorithm::RS384),
        KeyAlgorithm::RS512 => Some(Algorithm::RS512),
        KeyAlgorithm::PS256 => Some(Algorithm::PS256),
        KeyAlgorithm::PS384 => Some(Algorithm::PS384),
        KeyAlgorithm::PS512 => Some(Algorithm::PS512),
        KeyAlgorithm::ES256 => Some(Algorithm::ES256),
        KeyAlgorithm::ES384 => Some(Algorithm::ES384),
        KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        _ => None,
    }
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

/// A JSON object whose member names are unique (RFC 7515 §5.2 step 4, RFC 7493 §2.3): rejecting
/// duplicates removes parser differentials such as `{"alg":"RS256","alg":"none"}` (J45).
fn unique_members(json: &[u8]) -> Result<(), ShapeError> {
    struct UniqueObject;
    impl<'de> Deserialize<'de> for UniqueObject {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(UniqueVisitor)
        }
    }
    struct UniqueVisitor;
    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = UniqueObject;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueObject, A::Error> {
            let mut seen = HashSet::new();
            while let Some(name) = map.next_key::<String>()? {
                if !seen.insert(name) {
                    return Err(serde::de::Error::custom(DUPLICATE));
                }
                map.next_value::<IgnoredAny>()?;
            }
            Ok(UniqueObject)
        }
    }
    match serde_json::from_slice::<UniqueObject>(json) {
        Ok(UniqueObject) => Ok(()),
        Err(e) if e.to_string().starts_with(DUPLICATE) => Err(ShapeError::Duplicate),
        Err(_) => Err(ShapeError::NotAnObject),
    }
}

enum ShapeError {
    Duplicate,
    NotAnObject,
}

impl ShapeError {
    fn within(self, part: &'static str) -> TokenError {
        match self {
            Self::Duplicate => TokenError::DuplicateMember(part),
            Self::NotAnObject if part == "header" => {
                TokenError::Malformed("header is not one JSON object")
            }
            Self::NotAnObject => TokenError::Malformed("claims are not one JSON object"),
        }
    }
}

const DUPLICATE: &str = "duplicate member";
