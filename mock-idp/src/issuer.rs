//! One issuer (the root one or a `/{tenant}`): its URL, settings, key ring, endpoint monitor, and
//! the operations on them (mint, forge, rotate), plus [`IssuerHandle`], the public face of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::attack::{Forgery, KeyChoice, Signature};
use crate::error::IdpError;
use crate::faults::{Endpoint, EndpointMonitor, Fault};
use crate::keys::{Algorithm, KeyPair, KeyRing, Rotation, SigningKey};
use crate::server::Shared;
use crate::tokens::{AccessTokenSpec, TokenTyp, sign_compact, signing_input};

/// How an issuer signs and publishes. The builder sets a default for all issuers and may override
/// it per tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerSettings {
    /// The algorithm new keys sign with.
    pub algorithm: Algorithm,
    /// The access tokens' `typ` header.
    pub typ: TokenTyp,
    /// `expires_in` of tokens from the token endpoint.
    #[serde(with = "secs")]
    pub token_lifetime: Duration,
    /// Rotate the signing key this often (checked on every request); `None`: only on demand.
    #[serde(with = "opt_secs")]
    pub rotation_period: Option<Duration>,
    /// How long a retired key stays in the JWKS, so tokens it signed keep verifying.
    #[serde(with = "secs")]
    pub grace_period: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    #[serde(with = "secs")]
    pub jwks_max_age: Duration,
    /// `aud` of minted tokens that name none.
    pub default_audience: String,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RS256,
            typ: TokenTyp::AtJwt,
            token_lifetime: Duration::from_secs(300),
            rotation_period: None,
            grace_period: Duration::from_secs(3600),
            jwks_max_age: Duration::from_secs(300),
            default_audience: "http://localhost:8000/mcp".into(),
        }
    }
}

/// The state of one issuer.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub(crate) url: String,
    pub(crate) settings: IssuerSettings,
    ring: Mutex<KeyRing>,
    unpublished: tokio::sync::Mutex<Option<SigningKey>>,
    /// Serialises rotations so two due-checks cannot both rotate.
    rotating: tokio::sync::Mutex<()>,
    pub(crate) monitor: EndpointMonitor,
}

impl Issuer {
    pub(crate) fn new(
        url: String,
        settings: IssuerSettings,
        first_key: Arc<KeyPair>,
        now: i64,
    ) -> Self {
        let alg = settings.algorithm;
        Self {
            url,
            settings,
            ring: Mutex::new(KeyRing::new(
                SigningKey {
                    pair: first_key,
                    alg,
                },
                now,
            )),
            unpublished: tokio::sync::Mutex::new(None),
            rotating: tokio::sync::Mutex::new(()),
            monitor: EndpointMonitor::default(),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, KeyRing> {
        // A panic while holding this lock cannot leave the ring half-updated (every update is a
        // single assignment or push), so a poisoned lock is still safe to use.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The JWKS document at `now`.
    pub(crate) fn jwks(&self, now: i64) -> Value {
        serde_json::json!({ "keys": self.ring().published(now) })
    }

    /// Rotates if the schedule says so. At most one rotation per call, even after a long jump
    /// of the clock: the result is the same key set a real IdP would publish.
    pub(crate) async fn rotate_if_due(&self, shared: &Shared) -> Result<(), IdpError> {
        let Some(period) = self.settings.rotation_period else {
            return Ok(());
        };
        let period = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
        let due = |ring: &KeyRing| shared.clock.now() >= ring.rotated_at().saturating_add(period);
        if !due(&self.ring()) {
            return Ok(());
        }
        let _one_at_a_time = self.rotating.lock().await;
        if !due(&self.ring()) {
            return Ok(());
        }
        self.rotate_now(shared, None).await.map(|_| ())
    }

    /// Rotates now: a new key (of `alg`, or the current algorithm) signs from this moment.
    pub(crate) async fn rotate(
        &self,
        shared: &Shared,
        alg: Option<Algorithm>,
    ) -> Result<Rotation, IdpError> {
        let _one_at_a_time = self.rotating.lock().await;
        self.rotate_now(shared, alg).await
    }

    async fn rotate_now(
        &self,
        shared: &Shared,
        alg: Option<Algorithm>,
    ) -> Result<Rotation, IdpError> {
        let alg = alg.unwrap_or_else(|| self.ring().current().alg);
        let pair = shared.supply.obtain(alg.family()).await?;
        let grace = i64::try_from(self.settings.grace_period.as_secs()).unwrap_or(i64::MAX);
        let rotation = self
            .ring()
            .rotate(SigningKey { pair, alg }, shared.clock.now(), grace);
        tracing::info!(issuer = %self.url, new_kid = %rotation.new_kid, retired_kid = %rotation.retired_kid, "signing key rotated");
        Ok(rotation)
    }

    /// Publishes an extra key marked `use: "enc"` (of the issuer's algorithm family), returning its
    /// `kid`. A resource server must not accept signatures made with it (J07).
    pub(crate) async fn publish_encryption_key(&self, shared: &Shared) -> Result<String, IdpError> {
        let alg = self.ring().current().alg;
        let pair = shared.supply.obtain(alg.family()).await?;
        let kid = pair.kid().to_owned();
        self.ring().publish_extra(SigningKey { pair, alg }, "enc");
        Ok(kid)
    }

    /// A well-formed access token for `spec`, signed by the current key.
    pub(crate) fn mint(&self, spec: &AccessTokenSpec, now: i64) -> Result<String, IdpError> {
        let key = self.ring().current().clone();
        let claims = spec.claims(&self.url, &self.settings.default_audience, now);
        let header = self.header_for(&key, key.alg.jwt());
        let header = serde_json::to_vec(&header).map_err(|e| IdpError::Signing(e.to_string()))?;
        let claims = serde_json::to_vec(&claims).map_err(|e| IdpError::Signing(e.to_string()))?;
        sign_compact(&header, &claims, key.pair.signing_key(), key.alg.jwt())
    }

    /// The token a [`Forgery`] describes.
    pub(crate) async fn forge(
        &self,
        forgery: &Forgery,
        shared: &Shared,
    ) -> Result<String, IdpError> {
        let now = shared.clock.now();
        let claims = forgery.claims_object(forgery.spec.claims(
            &self.url,
            &self.settings.default_audience,
            now,
        ));
        let claims = match &forgery.raw_claims {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&claims).map_err(|e| IdpError::Signing(e.to_string()))?,
        };
        let (key, alg) = match &forgery.signature {
            Signature::Key { key, alg } => {
                let key = self.key_for(key, shared).await?;
                let alg = alg.unwrap_or(key.alg.jwt());
                (Some(key), alg)
            }
            Signature::Hmac { alg, .. } => (None, *alg),
            Signature::RsaPem(_) => (None, jsonwebtoken::Algorithm::RS256),
            Signature::Empty | Signature::Bytes(_) | Signature::Segment(_) => {
                (None, self.ring().current().alg.jwt())
            }
        };
        let default_header = match &key {
            Some(key) => self.header_for(key, alg),
            None => self.header_for(self.ring().current(), alg),
        };
        let header = match &forgery.raw_header {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&forgery.header_object(default_header))
                .map_err(|e| IdpError::Signing(e.to_string()))?,
        };
        match &forgery.signature {
            Signature::Key { .. } => {
                let key = key.ok_or_else(|| IdpError::Signing("no key chosen".into()))?;
                sign_compact(&header, &claims, key.pair.signing_key(), alg)
            }
            Signature::Hmac { secret, alg } => {
                sign_compact(&header, &claims, &EncodingKey::from_secret(secret), *alg)
            }
            Signature::Empty => Ok(format!("{}.", signing_input(&header, &claims))),
            Signature::Bytes(bytes) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
                Ok(format!("{}.{encoded}", signing_input(&header, &claims)))
            }
            Signature::RsaPem(pem) => {
                use base64::Engine as _;
                let input = signing_input(&header, &claims);
                let signature = crate::attack::sign_rs256_any_size(pem, input.as_bytes())?;
                let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
                Ok(format!("{input}.{encoded}"))
            }
            Signature::Segment(segment) => {
                Ok(format!("{}.{segment}", signing_input(&header, &claims)))
            }
        }
    }

    async fn key_for(&self, choice: &KeyChoice, shared: &Shared) -> Result<SigningKey, IdpError> {
        match choice {
            KeyChoice::Current => Ok(self.ring().current().clone()),
            KeyChoice::Kid(kid) => self
                .ring()
                .find(kid)
                .ok_or_else(|| IdpError::InvalidKey(format!("no published key with kid {kid:?}"))),
            KeyChoice::Unpublished => {
                let mut unpublished = self.unpublished.lock().await;
                let alg = self.ring().current().alg;
                match unpublished.as_ref() {
                    Some(key) if key.alg.family() == alg.family() => Ok(key.clone()),
                    _ => {
                        let key = SigningKey {
                            pair: shared.supply.obtain(alg.family()).await?,
                            alg,
                        };
                        *unpublished = Some(key.clone());
                        Ok(key)
                    }
                }
            }
        }
    }

    fn header_for(&self, key: &SigningKey, alg: jsonwebtoken::Algorithm) -> Map<String, Value> {
        let mut header = Map::new();
        header.insert(
            "alg".into(),
            serde_json::to_value(alg).unwrap_or(Value::Null),
        );
        header.insert("typ".into(), self.settings.typ.as_str().into());
        header.insert("kid".into(), key.pair.kid().into());
        header
    }
}

/// A handle on one issuer of a running [`crate::MockIdp`]: its URLs, tokens, keys, faults and
/// counters. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IssuerHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) issuer: Arc<Issuer>,
}

impl IssuerHandle {
    /// The issuer identifier (`iss`), e.g. `http://127.0.0.1:9400` or `http://127.0.0.1:9400/b`.
    pub fn url(&self) -> &str {
        &self.issuer.url
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.issuer.url)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.issuer.url)
    }

    /// The OIDC discovery URL (appended to the issuer, OIDC Discovery §4).
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.url)
    }

    /// The RFC 8414 metadata URL (well-known inserted before the issuer's path, §3.1).
    pub fn authorization_server_metadata_url(&self) -> String {
        let base = &self.shared.base_url;
        let path = self
            .issuer
            .url
            .strip_prefix(base.as_str())
            .unwrap_or_default();
        format!("{base}/.well-known/oauth-authorization-server{path}")
    }

    /// The settings this issuer runs with.
    pub fn settings(&self) -> &IssuerSettings {
        &self.issuer.settings
    }

    /// A valid access token for `spec`, signed by the current key.
    ///
    /// # Errors
    /// [`IdpError`] if a due rotation cannot obtain a key, or signing fails.
    pub async fn mint(&self, spec: &AccessTokenSpec) -> Result<String, IdpError> {
        self.issuer.rotate_if_due(&self.shared).await?;
        self.issuer.mint(spec, self.shared.clock.now())
    }

    /// The (usually invalid) token `forgery` describes.
    ///
    /// # Errors
    /// [`IdpError`] if the chosen key does not exist or cannot sign with the chosen algorithm.
    pub async fn forge(&self, forgery: &Forgery) -> Result<String, IdpError> {
        self.issuer.rotate_if_due(&self.shared).await?;
        self.issuer.forge(forgery, &self.shared).await
    }

    /// Rotates the signing key now; `alg` switches algorithm (and key type) at the same time.
    ///
    /// # Errors
    /// [`IdpError::KeyGeneration`] if a new key cannot be made.
    pub async fn rotate(&self, alg: Option<Algorithm>) -> Result<Rotation, IdpError> {
        self.issuer.rotate(&self.shared, alg).await
    }

    /// Publishes an extra `use: "enc"` key and returns its `kid` (for J07).
    ///
    /// # Errors
    /// [`IdpError::KeyGeneration`] if a key cannot be made.
    pub async fn publish_encryption_key(&self) -> Result<String, IdpError> {
        self.issuer.publish_encryption_key(&self.shared).await
    }

    /// Publishes an arbitrary JWK in this issuer's JWKS (a weak RSA key for J22, an `oct` key,
    /// a key with odd `key_ops`...). It stays until the IdP stops.
    pub fn publish_jwk(&self, jwk: Value) {
        self.issuer.ring().publish_raw(jwk);
    }

    /// The `kid` of the key signing now.
    pub fn current_kid(&self) -> String {
        self.issuer.ring().current().pair.kid().to_owned()
    }

    /// The JWKS as served now.
    pub fn jwks(&self) -> Value {
        self.issuer.jwks(self.shared.clock.now())
    }

    /// Makes `endpoint` misbehave until [`IssuerHandle::clear_faults`].
    pub fn set_fault(&self, endpoint: Endpoint, fault: Fault) {
        self.issuer.monitor.set_fault(endpoint, fault);
    }

    /// Every endpoint of this issuer answers normally again.
    pub fn clear_faults(&self) {
        self.issuer.monitor.clear_faults();
    }

    /// How many requests `endpoint` has received (faulted ones included).
    pub fn requests(&self, endpoint: Endpoint) -> u64 {
        self.issuer.monitor.count(endpoint)
    }

    /// Sets every counter of this issuer back to zero.
    pub fn reset_counters(&self) {
        self.issuer.monitor.reset_counts();
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}
