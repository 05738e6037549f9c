//! Signing keys: algorithms, key pairs, the supply new keys come from, and the per-issuer key ring
//! that rotates them with a grace period (OIDC Core §10.1.1).
//!
//! Published keys carry `kid` (the RFC 7638 thumbprint), `use: "sig"` and the one `alg` the issuer
//! signs with, because a key must be used with exactly one algorithm (RFC 8725 §3.1).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use rsa::pkcs1::EncodeRsaPrivateKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::IdpError;

/// The signing algorithms an issuer can be configured with. RS256 is the default because RFC 9068
/// §2.1 makes it the one every resource server must support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Algorithm {
    /// Every supported algorithm, for help texts and exhaustive tests.
    pub const ALL: [Algorithm; 4] = [Self::RS256, Self::PS256, Self::ES256, Self::EdDSA];

    /// The kind of key this algorithm signs with.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::PS256 => KeyFamily::Rsa,
            Self::ES256 => KeyFamily::P256,
            Self::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// The JOSE name (`alg` header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = IdpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| IdpError::UnsupportedAlgorithm(s.to_owned()))
    }
}

/// The kinds of key pair, each serving the algorithms of [`Algorithm::family`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyFamily {
    /// RSA, 2048 bits when generated here.
    Rsa,
    /// ECDSA on NIST P-256.
    P256,
    /// EdDSA on Curve25519.
    Ed25519,
}

impl KeyFamily {
    /// The algorithm a key of this family signs with unless told otherwise.
    pub fn default_algorithm(self) -> Algorithm {
        match self {
            Self::Rsa => Algorithm::RS256,
            Self::P256 => Algorithm::ES256,
            Self::Ed25519 => Algorithm::EdDSA,
        }
    }
}

/// A private key with its public JWK and `kid`. The private half never leaves this type except as
/// the signing key, and `Debug` prints only the `kid`, so a key cannot reach a log line.
pub struct KeyPair {
    kid: String,
    family: KeyFamily,
    signing: EncodingKey,
    /// The public JWK without `kid`, `alg` and `use`, which depend on how the key is published.
    public: Map<String, Value>,
}

impl KeyPair {
    /// Loads a PKCS#8 (or, for RSA, PKCS#1) PEM private key, such as the test keys in `fixtures/`.
    ///
    /// # Errors
    /// [`IdpError::InvalidKey`] when the PEM holds no RSA, P-256 or Ed25519 private key.
    pub fn from_pem(pem: &str) -> Result<Self, IdpError> {
        let bytes = pem.as_bytes();
        if let Ok(key) = EncodingKey::from_rsa_pem(bytes) {
            return Self::from_encoding_key(key, KeyFamily::Rsa);
        }
        if let Ok(key) = EncodingKey::from_ec_pem(bytes) {
            return Self::from_encoding_key(key, KeyFamily::P256);
        }
        if let Ok(key) = EncodingKey::from_ed_pem(bytes) {
            return Self::from_encoding_key(key, KeyFamily::Ed25519);
        }
        Err(IdpError::NotAPrivateKey)
    }

    /// Generates a fresh key. RSA generation is CPU-bound (tens to hundreds of milliseconds), so
    /// async callers go through [`KeySupply`], which runs it on the blocking pool.
    ///
    /// # Errors
    /// [`IdpError::KeyGeneration`] if the system's random source or the key encoder fails.
    pub fn generate(family: KeyFamily) -> Result<Self, IdpError> {
        let key = match family {
            KeyFamily::Rsa => {
                let private = rsa::PrivateKey::new(&mut rand::rng(), 2048)
                    .map_err(|e| IdpError::KeyGeneration(Box::new(e)))?;
                let der = private
                    .to_pkcs1_der()
                    .map_err(|e| IdpError::KeyGeneration(Box::new(e)))?;
                EncodingKey::from_rsa_der(der.as_bytes())
            }
            KeyFamily::P256 => {
                let der = EcdsaKeyPair::generate_pkcs8(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &SystemRandom::new(),
                )
                .map_err(|e| IdpError::KeyGeneration(Box::new(e)))?;
                EncodingKey::from_ec_der(der.as_ref())
            }
            KeyFamily::Ed25519 => {
                // PKCS#8 v1 (no embedded public key): the form jsonwebtoken derives a JWK from.
                let der = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
                    .map_err(|e| IdpError::KeyGeneration(Box::new(e)))?;
                EncodingKey::from_ed_der(der.as_ref())
            }
        };
        Self::from_encoding_key(key, family)
    }

    fn from_encoding_key(signing: EncodingKey, family: KeyFamily) -> Result<Self, IdpError> {
        let jwk = Jwk::from_encoding_key(&signing, family.default_algorithm().jwt())
            .map_err(IdpError::Jwk)?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(IdpError::Jwk)?;
        let Value::Object(mut public) = serde_json::to_value(&jwk).map_err(IdpError::Encoding)?
        else {
            // A Jwk is a struct: serde_json always makes an object of it.
            return Err(IdpError::NotAPrivateKey);
        };
        public.retain(|name, value| {
            !matches!(name.as_str(), "alg" | "use" | "kid") && !value.is_null()
        });
        Ok(Self {
            kid,
            family,
            signing,
            public,
        })
    }

    /// The key id: the RFC 7638 SHA-256 thumbprint, so the same key always has the same `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The kind of key.
    pub fn family(&self) -> KeyFamily {
        self.family
    }

    /// The public JWK as published for `alg` and `key_use` (`"sig"`, or `"enc"` for the J07 case).
    pub fn public_jwk(&self, alg: Algorithm, key_use: &str) -> Value {
        let mut jwk = self.public.clone();
        jwk.insert("kid".into(), Value::String(self.kid.clone()));
        jwk.insert("use".into(), Value::String(key_use.to_owned()));
        jwk.insert("alg".into(), Value::String(alg.as_str().to_owned()));
        Value::Object(jwk)
    }

    /// The private key for signing; only token minting needs it.
    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("private", &"[redacted]")
            .finish()
    }
}

/// Where new keys come from: pre-made keys first (tests hand in the fixtures, so they never wait
/// for RSA generation), then freshly generated ones.
#[derive(Clone, Debug, Default)]
pub struct KeySupply {
    ready: Arc<Mutex<VecDeque<Arc<KeyPair>>>>,
}

impl KeySupply {
    /// A supply that hands out `keys` (in order, per family) before generating any.
    pub fn new(keys: impl IntoIterator<Item = KeyPair>) -> Self {
        Self {
            ready: Arc::new(Mutex::new(keys.into_iter().map(Arc::new).collect())),
        }
    }

    /// How many pre-made keys of `family` are left.
    pub fn remaining(&self, family: KeyFamily) -> usize {
        self.ready
            .lock()
            .map(|keys| keys.iter().filter(|k| k.family() == family).count())
            .unwrap_or(0)
    }

    /// The next key of `family`: a pre-made one, or a new one generated off the async runtime.
    pub(crate) async fn obtain(&self, family: KeyFamily) -> Result<Arc<KeyPair>, IdpError> {
        if let Some(key) = self.take(family) {
            return Ok(key);
        }
        tokio::task::spawn_blocking(move || KeyPair::generate(family))
            .await
            .map_err(|e| IdpError::KeyGeneration(Box::new(e)))?
            .map(Arc::new)
    }

    fn take(&self, family: KeyFamily) -> Option<Arc<KeyPair>> {
        let mut keys = self.ready.lock().ok()?;
        let at = keys.iter().position(|k| k.family() == family)?;
        keys.remove(at)
    }
}

/// A key as one issuer uses it: the pair and the single algorithm it is published for.
#[derive(Clone, Debug)]
pub(crate) struct SigningKey {
    pub(crate) pair: Arc<KeyPair>,
    pub(crate) alg: Algorithm,
}

/// One issuer's keys: the current signing key, retired keys still published until their grace
/// period ends, and extra keys published on a test's request (an `enc` key, J07).
#[derive(Debug)]
pub(crate) struct KeyRing {
    current: SigningKey,
    retired: Vec<(SigningKey, i64)>,
    extra: Vec<(SigningKey, &'static str)>,
    raw: Vec<Value>,
    rotated_at: i64,
}

/// What a rotation did, so callers (and the admin endpoint) can report both key ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The key that signs from now on.
    pub new_kid: String,
    /// The key that stopped signing; still published until `retired_until`.
    pub retired_kid: String,
    /// Unix time at which the retired key leaves the JWKS.
    pub retired_until: i64,
}

impl KeyRing {
    pub(crate) fn new(current: SigningKey, now: i64) -> Self {
        Self {
            current,
            retired: Vec::new(),
            extra: Vec::new(),
            raw: Vec::new(),
            rotated_at: now,
        }
    }

    pub(crate) fn current(&self) -> &SigningKey {
        &self.current
    }

    pub(crate) fn rotated_at(&self) -> i64 {
        self.rotated_at
    }

    /// Makes `next` the signing key at once; the old one stays published for `grace_secs`.
    pub(crate) fn rotate(&mut self, next: SigningKey, now: i64, grace_secs: i64) -> Rotation {
        let until = now.saturating_add(grace_secs);
        let old = std::mem::replace(&mut self.current, next);
        let rotation = Rotation {
            new_kid: self.current.pair.kid().to_owned(),
            retired_kid: old.pair.kid().to_owned(),
            retired_until: until,
        };
        self.retired.push((old, until));
        self.rotated_at = now;
        rotation
    }

    pub(crate) fn publish_extra(&mut self, key: SigningKey, key_use: &'static str) {
        self.extra.push((key, key_use));
    }

    pub(crate) fn publish_raw(&mut self, jwk: Value) {
        self.raw.push(jwk);
    }

    /// The JWKS `keys` array at `now`: current first, then retired keys still in their grace
    /// period, then extras. Retired keys past their grace period are dropped for good.
    pub(crate) fn published(&mut self, now: i64) -> Vec<Value> {
        self.retired.retain(|(_, until)| *until > now);
        std::iter::once(self.current.pair.public_jwk(self.current.alg, "sig"))
            .chain(
                self.retired
                    .iter()
                    .map(|(k, _)| k.pair.public_jwk(k.alg, "sig")),
            )
            .chain(
                self.extra
                    .iter()
                    .map(|(k, key_use)| k.pair.public_jwk(k.alg, key_use)),
            )
            .chain(self.raw.iter().cloned())
            .collect()
    }

    /// A published key by `kid` (current, retired or extra), for forging tokens under it.
    pub(crate) fn find(&self, kid: &str) -> Option<SigningKey> {
        std::iter::once(&self.current)
            .chain(self.retired.iter().map(|(k, _)| k))
            .chain(self.extra.iter().map(|(k, _)| k))
            .find(|k| k.pair.kid() == kid)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_debug_output_never_shows_private_material() {
        let key = KeyPair::generate(KeyFamily::P256).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("[redacted]"));
        assert!(!debug.contains(&format!("{:?}", key.signing_key().as_bytes())));
    }

    #[test]
    fn algorithm_names_parse_case_insensitively_and_reject_others() {
        assert_eq!("es256".parse::<Algorithm>().unwrap(), Algorithm::ES256);
        assert_eq!("EdDSA".parse::<Algorithm>().unwrap(), Algorithm::EdDSA);
        assert!(matches!(
            "none".parse::<Algorithm>(),
            Err(IdpError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "HS256".parse::<Algorithm>(),
            Err(IdpError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn generated_keys_of_each_family_have_thumbprint_kids() {
        for family in [KeyFamily::P256, KeyFamily::Ed25519] {
            let key = KeyPair::generate(family).unwrap();
            assert_eq!(key.kid().len(), 43, "base64url SHA-256 thumbprint");
            let jwk = key.public_jwk(family.default_algorithm(), "sig");
            assert_eq!(jwk["kid"], key.kid());
            assert!(jwk.get("d").is_none(), "no private part in a public JWK");
        }
    }
}
