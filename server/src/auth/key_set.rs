//! The authorization server's verification keys as the validator uses them: each JWK checked once,
//! when the JWKS is loaded, for what it may verify (checklist G06-G08, J05-J07, J22). Symmetric,
//! encryption-only, weak and unknown keys never enter a [`KeySet`].

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use crate::digest::sha256;

/// A verification key from the AS's JWKS.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    kind: KeyKind,
    jwk_alg: Option<Algorithm>,
    key: DecodingKey,
    fingerprint: KeyFingerprint,
}

/// What identifies a key across JWKS fetches: a SHA-256 of its JWK as the AS published it. A
/// cached verification names the key that made it, and holds only while that key is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyFingerprint([u8; 32]);

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
            && !ops.iter().any(|op| matches!(op, KeyOperations::Verify))
        {
            return Err(KeyRejection::NotForSignatures);
        }
        let kind = match &jwk.algorithm {
            AlgorithmParameters::RSA(rsa) => {
                let modulus = URL_SAFE_NO_PAD
                    .decode(&rsa.n)
                    .map_err(|_| KeyRejection::Unsupported)?;
                if significant_bits(&modulus) < 2048 {
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
            // The JWK's `alg` as a signature algorithm: encryption algorithms (RSA-OAEP...) and
            // HMAC names pin the key to something it can never verify here.
            Some(alg) => match alg.to_string().parse::<Algorithm>() {
                Ok(alg) if alg.family() != AlgorithmFamily::Hmac => Some(alg),
                _ => return Err(KeyRejection::Unsupported),
            },
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|_| KeyRejection::Unsupported)?;
        let published = serde_json::to_vec(jwk).map_err(|_| KeyRejection::Unsupported)?;
        let fingerprint = KeyFingerprint(sha256(&published));
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            kind,
            jwk_alg,
            key,
            fingerprint,
        })
    }

    /// This key's identity across fetches.
    pub(crate) fn fingerprint(&self) -> KeyFingerprint {
        self.fingerprint
    }

    /// The key for jsonwebtoken's signature check.
    pub(crate) fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }

    /// Whether this key may verify `alg`: the key type and curve fit, and a JWK `alg` equals it.
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
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
    /// A key set of exactly these keys.
    pub fn new(keys: Vec<VerificationKey>) -> Self {
        Self { keys }
    }

    /// The usable keys of a JWKS document (RFC 7517 §5); unusable entries are logged and skipped.
    /// A well-formed document always gives a key set, even an empty one: the authorization server
    /// has withdrawn its keys, and the old ones must not live on (G09). A document with more than
    /// 64 keys gives an empty set too: this server will not hold and try that many.
    ///
    /// # Errors
    /// [`JwksError::NoKeysArray`] when the document is not a JWKS at all.
    pub fn from_jwks(document: &Value) -> Result<Self, JwksError> {
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeysArray)?;
        if entries.len() > MAX_KEYS {
            tracing::warn!(
                count = entries.len(),
                max = MAX_KEYS,
                "the JWKS has too many keys; none is used"
            );
            return Ok(Self::default());
        }
        let mut keys = Vec::new();
        for entry in entries {
            let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("<none>");
            match serde_json::from_value::<Jwk>(entry.clone()) {
                Ok(jwk) => match VerificationKey::from_jwk(&jwk) {
                    Ok(key) => keys.push(key),
                    Err(reason) => tracing::debug!(kid, %reason, "JWKS key skipped"),
                },
                Err(_) => {
                    tracing::debug!(
                        kid,
                        "JWKS entry is not a JWK this server understands; skipped"
                    )
                }
            }
        }
        Ok(Self { keys })
    }

    /// How many keys are usable.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key with this `kid`.
    pub(crate) fn by_kid(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == Some(kid))
    }

    /// Whether the key with this fingerprint is (still) published.
    pub(crate) fn publishes(&self, fingerprint: KeyFingerprint) -> bool {
        self.keys.iter().any(|k| k.fingerprint == fingerprint)
    }

    /// The first key's fingerprint (tests).
    #[cfg(test)]
    pub(crate) fn fingerprint_of_first(&self) -> KeyFingerprint {
        self.keys[0].fingerprint
    }

    /// Every key that may verify `alg`.
    pub(crate) fn fitting(&self, alg: Algorithm) -> impl Iterator<Item = &VerificationKey> {
        self.keys.iter().filter(move |k| k.fits(alg))
    }
}

/// Why a document is not a JWKS at all (so the last good keys are kept, as for a failed fetch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// No `keys` array (RFC 7517 §5.1).
    #[error("the JWKS has no \"keys\" array")]
    NoKeysArray,
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

/// Bounds what one JWKS can make us hold and try.
const MAX_KEYS: usize = 64;
