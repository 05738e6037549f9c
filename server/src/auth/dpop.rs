//! DPoP proofs at the resource server (RFC 9449 §4.3 and §7.1): the checks that make a
//! sender-constrained token worth more than a bearer one. A proof is a JWT the client signs with
//! the key its token is bound to, for one request: this method, this URL, this token, now, once.
//!
//! [`check_proof`] is pure but for the replay cache it is given: it judges the proof alone and
//! returns the RFC 7638 thumbprint of its key, which the bearer layer compares with the token's
//! `cnf.jkt` (§4.3 step 12's binding, §7.1).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use url::Url;

use super::policy::AlgorithmAllowList;
use super::token::is_one_object_with_unique_members;
use crate::digest::sha256;

mod nonce;
pub use nonce::NonceSecret;
pub(crate) use nonce::Nonces;

/// Why a proof is refused: each one answers `invalid_dpop_proof` (RFC 9449 §7.1), with this as
/// its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProofError {
    /// Not a compact JWS of three base64url parts, JSON objects with unique members.
    #[error("the DPoP proof is malformed: {0}")]
    Malformed(&'static str),
    /// Larger than any honest proof.
    #[error("the DPoP proof is too large")]
    TooLarge,
    /// `typ` is not `dpop+jwt` (§4.2).
    #[error("the DPoP proof's typ is not dpop+jwt")]
    WrongType,
    /// `alg` is not an asymmetric algorithm of the allow-list.
    #[error("the DPoP proof's algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// No `jwk`, or one that is not a public key of the algorithm.
    #[error("the DPoP proof carries no usable public key")]
    NoKey,
    /// The `jwk` holds private key material (§4.3 step 7).
    #[error("the DPoP proof's jwk holds a private key")]
    PrivateKey,
    /// The signature does not verify with the `jwk`.
    #[error("the DPoP proof's signature does not verify")]
    BadSignature,
    /// A required claim is absent or not of its type.
    #[error("the DPoP proof lacks the {0} claim")]
    MissingClaim(&'static str),
    /// `htm` is not this request's method.
    #[error("the DPoP proof is for another HTTP method")]
    WrongMethod,
    /// `htu` is not this resource's URL.
    #[error("the DPoP proof is for another URL")]
    WrongUrl,
    /// `iat` is outside the accepted window.
    #[error("the DPoP proof is too old or from the future")]
    OutOfWindow,
    /// `ath` is not the hash of the access token presented with it.
    #[error("the DPoP proof is for another access token")]
    WrongTokenHash,
    /// This proof (its `jti`) was seen before within the window.
    #[error("the DPoP proof was already used")]
    Replayed,
    /// Nonces are on and the proof's `nonce` is absent, not this server's, or rotated out (§9):
    /// the answer carries a fresh one in `DPoP-Nonce`.
    #[error("the DPoP proof must carry the nonce this server provides")]
    UseNonce,
}

/// Whether DPoP-bound access tokens (RFC 9449) are accepted, with their proofs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DpopMode {
    /// `Authorization: DPoP` is not a scheme this server knows, and a token bound to a key is
    /// refused (it cannot be used as a bearer token).
    Off,
    /// Bearer tokens as ever, and DPoP-bound tokens with a proof (`Authorization: DPoP`): what a
    /// client that holds a key gains costs the others nothing.
    #[default]
    Allowed,
    /// DPoP-bound tokens with a proof only.
    Required,
}

/// DPoP at this resource server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// Whether DPoP is off, allowed beside bearer tokens, or required.
    pub mode: DpopMode,
    /// How far a proof's `iat` may be from now, either way.
    pub window: Duration,
    /// How many proofs the replay cache remembers; past it the oldest are forgotten early.
    pub max_replay_entries: u64,
    /// Server-provided nonces (RFC 9449 §9), made with this secret and rotated every `window`:
    /// a proof must carry a recent one. `None`: no nonces.
    pub nonce: Option<NonceSecret>,
}

impl Default for DpopSettings {
    /// Allowed, a five-minute window (the MCP profile's proposal) and 100,000 proofs remembered
    /// (a few MiB).
    fn default() -> Self {
        Self {
            mode: DpopMode::Allowed,
            window: Duration::from_secs(300),
            max_replay_entries: 100_000,
            nonce: None,
        }
    }
}

/// What a proof must satisfy.
#[derive(Debug)]
pub(crate) struct ProofPolicy {
    /// Asymmetric algorithms only (the allow-list type refuses others).
    pub(crate) algorithms: AlgorithmAllowList,
    /// How far `iat` may be from now, either way (RFC 9449 §11.1; the MCP profile proposes five
    /// minutes).
    pub(crate) window: Duration,
    /// The nonces a proof must carry one of, when nonces are on.
    pub(crate) nonces: Option<Nonces>,
}

/// The request a proof must be for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProofTarget<'a> {
    /// The HTTP method.
    pub(crate) method: &'a str,
    /// The resource's URLs as configured (its spellings), each as [`normalized_htu`] makes it;
    /// never one built from a `Host` the client chose.
    pub(crate) urls: &'a [String],
    /// The access token presented with the proof.
    pub(crate) access_token: &'a str,
    /// Now, seconds since the epoch.
    pub(crate) now: i64,
}

/// The proofs seen within the window, by `jti`: bounded in entries, each kept for twice the
/// window (a proof is accepted up to one window after its `iat`, which may be one window
/// ahead). Per process: replicas do not see each other's (the scale-out issue shares it).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    seen: moka::sync::Cache<[u8; 32], ()>,
}

impl ReplayCache {
    /// At most `max_entries` proofs, each remembered for twice `window`.
    pub(crate) fn new(window: Duration, max_entries: u64) -> Self {
        Self {
            seen: moka::sync::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(window.saturating_mul(2))
                .build(),
        }
    }

    /// Records `jti`; whether it was new.
    pub(crate) fn first_use(&self, jti: &str) -> bool {
        self.seen
            .entry(sha256(jti.as_bytes()))
            .or_insert(())
            .is_fresh()
    }
}

/// The largest proof looked at: a P-521 or RSA-4096 key and the claims fit in a few KiB.
const MAX_PROOF_BYTES: usize = 8 * 1024;

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Members of a JWK that only a private (or symmetric) key has (RFC 7518 §6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Judges `proof` for `target` (RFC 9449 §4.3 steps 1-12) and, when it passes,
/// records its `jti` in `replay`. Returns the RFC 7638 SHA-256 thumbprint of the proof's key.
#[cfg(test)]
pub(crate) fn check_proof(
    proof: &str,
    target: &ProofTarget<'_>,
    policy: &ProofPolicy,
    replay: &ReplayCache,
) -> Result<String, ProofError> {
    let proven = verify_proof(proof, target, policy)?;
    if !replay.first_use(&proven.jti) {
        return Err(ProofError::Replayed);
    }
    Ok(proven.thumbprint)
}

/// A proof that passed every check but the replay check.
#[derive(Debug)]
pub(crate) struct Proven {
    /// The RFC 7638 SHA-256 thumbprint of its key.
    pub(crate) thumbprint: String,
    /// Its `jti`, for the caller to record (in this process or in the shared state).
    pub(crate) jti: String,
}

/// Every check of [`check_proof`] but the replay check, which needs the caller's store.
pub(crate) fn verify_proof(
    proof: &str,
    target: &ProofTarget<'_>,
    policy: &ProofPolicy,
) -> Result<Proven, ProofError> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLarge);
    }
    let mut parts = proof.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed("not a compact JWS"));
    };
    let header_bytes = decode(header_b64, "header is not base64url")?;
    if !is_one_object_with_unique_members(&header_bytes) {
        return Err(ProofError::Malformed("header is not one JSON object"));
    }
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| ProofError::Malformed("header has invalid types"))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(ProofError::WrongType);
    }
    let alg = policy
        .algorithms
        .find(&header.alg)
        .ok_or(ProofError::AlgorithmNotAllowed)?;
    if header.crit.is_some() {
        return Err(ProofError::Malformed("crit is not supported"));
    }
    let members = header.jwk.ok_or(ProofError::NoKey)?;
    if PRIVATE_MEMBERS
        .iter()
        .any(|name| members.contains_key(*name))
    {
        return Err(ProofError::PrivateKey);
    }
    let jwk: Jwk = serde_json::from_value(serde_json::Value::Object(members))
        .map_err(|_| ProofError::NoKey)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| ProofError::NoKey)?;
    if !fits(&jwk, alg) {
        return Err(ProofError::NoKey);
    }
    let signing_input = proof
        .get(..header_b64.len() + 1 + claims_b64.len())
        .ok_or(ProofError::Malformed("not a compact JWS"))?;
    decode(signature_b64, "signature is not base64url")?;
    let verified = jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &key, alg);
    if !matches!(verified, Ok(true)) {
        return Err(ProofError::BadSignature);
    }
    let claims_bytes = decode(claims_b64, "payload is not base64url")?;
    if !is_one_object_with_unique_members(&claims_bytes) {
        return Err(ProofError::Malformed("payload is not one JSON object"));
    }
    let claims: Claims = serde_json::from_slice(&claims_bytes)
        .map_err(|_| ProofError::Malformed("claims have invalid types"))?;
    let jti = claims.jti.ok_or(ProofError::MissingClaim("jti"))?;
    let htm = claims.htm.ok_or(ProofError::MissingClaim("htm"))?;
    let htu = claims.htu.ok_or(ProofError::MissingClaim("htu"))?;
    let iat = claims.iat.ok_or(ProofError::MissingClaim("iat"))?;
    let ath = claims.ath.ok_or(ProofError::MissingClaim("ath"))?;
    if jti.is_empty() || jti.len() > 256 {
        return Err(ProofError::MissingClaim("jti"));
    }
    if htm != target.method {
        return Err(ProofError::WrongMethod);
    }
    let htu = normalized_htu(&htu).ok_or(ProofError::WrongUrl)?;
    if !target.urls.contains(&htu) {
        return Err(ProofError::WrongUrl);
    }
    let window = i64::try_from(policy.window.as_secs()).unwrap_or(i64::MAX);
    if iat.saturating_sub(target.now).abs() > window {
        return Err(ProofError::OutOfWindow);
    }
    if ath != URL_SAFE_NO_PAD.encode(sha256(target.access_token.as_bytes())) {
        return Err(ProofError::WrongTokenHash);
    }
    if let Some(nonces) = &policy.nonces
        && !claims
            .nonce
            .is_some_and(|nonce| nonces.accepts(&nonce, target.now))
    {
        return Err(ProofError::UseNonce);
    }
    let thumbprint = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| ProofError::NoKey)?;
    Ok(Proven { thumbprint, jti })
}

fn decode(part: &str, why: &'static str) -> Result<Vec<u8>, ProofError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ProofError::Malformed(why))
}

/// Whether the key's type fits the algorithm (an RSA key cannot make an ES256 signature).
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::AlgorithmParameters as Params;
    use jsonwebtoken::jwk::EllipticCurve as Curve;
    match (&jwk.algorithm, alg) {
        (Params::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512)
        | (Params::RSA(_), Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512) => true,
        (Params::EllipticCurve(ec), Algorithm::ES256) => ec.curve == Curve::P256,
        (Params::EllipticCurve(ec), Algorithm::ES384) => ec.curve == Curve::P384,
        (Params::OctetKeyPair(okp), Algorithm::EdDSA) => okp.curve == Curve::Ed25519,
        _ => false,
    }
}

/// `htu` as compared (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2 and §6.2.3): scheme and host in
/// lower case, the default port dropped, dot segments resolved, percent-encodings of unreserved
/// characters decoded and the others in upper case, an empty path as `/`; query and fragment
/// ignored. `None` when it is not an absolute http(s) URL.
pub(crate) fn normalized_htu(uri: &str) -> Option<String> {
    let mut url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = normalize_percent_encoding(url.path());
    url.set_path(&path);
    Some(url.to_string())
}

/// Decodes `%XX` of unreserved characters (RFC 3986 §2.3) and writes every other `%XX` in upper
/// case.
fn normalize_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes.get(i) == Some(&b'%'))
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) => {
                out.push(char::from(byte));
                i += 3;
            }
            Some(byte) => {
                out.push_str(&format!("%{byte:02X}"));
                i += 3;
            }
            None => {
                // Not an escape: the path came from `Url`, so the byte is ASCII or part of a
                // character it already encoded; copy the character whole.
                let rest = path.get(i..).unwrap_or_default();
                let Some(c) = rest.chars().next() else {
                    break;
                };
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
