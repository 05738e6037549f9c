//! One issuer (the root one or a `/{tenant}`): its URLs, settings, key ring and endpoint monitor,
//! and the operations on them (mint, forge, rotate), plus [`IssuerHandle`], the public face of
//! it. An issuer owns what it needs (its key supply and clock), so nothing here reaches back into
//! the server or the routes.

mod settings;

use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value};
pub use settings::IssuerSettings;

use crate::attack::{self, Forgery, KeyChoice, Signature};
use crate::clock::Clock;
use crate::error::IdpError;
use crate::faults::{Endpoint, EndpointMonitor, Fault};
use crate::grants::{AccessRecord, Grants};
use crate::keys::{Algorithm, KeyPair, KeyRing, KeySupply, Rotation, SigningKey};
use crate::tokens::{AccessTokenSpec, sign_compact, signing_input};

/// The state of one issuer.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub(crate) url: String,
    /// RFC 8414 §3.1: the well-known segment inserted before the issuer's path.
    metadata_url: String,
    pub(crate) settings: IssuerSettings,
    supply: KeySupply,
    pub(crate) clock: Clock,
    ring: Mutex<KeyRing>,
    unpublished: tokio::sync::Mutex<Option<SigningKey>>,
    /// Serialises rotations so two due-checks cannot both rotate.
    rotating: tokio::sync::Mutex<()>,
    pub(crate) monitor: EndpointMonitor,
    /// Codes, refresh tokens, pending sign-ins and issued access tokens.
    pub(crate) grants: Grants,
    /// DPoP proofs seen at the token endpoint, and its nonces.
    pub(crate) proofs: crate::proofs::ProofLedger,
}

/// Where an issuer lives: `base` (scheme, host, port) and its tenant path, if any.
#[derive(Debug, Clone)]
pub(crate) struct IssuerLocation<'a> {
    pub(crate) base: &'a str,
    pub(crate) tenant: Option<&'a str>,
}

impl Issuer {
    pub(crate) fn new(
        location: IssuerLocation<'_>,
        settings: IssuerSettings,
        first_key: Arc<KeyPair>,
        supply: KeySupply,
        clock: Clock,
    ) -> Self {
        let base = location.base;
        let (url, metadata_url) = match location.tenant {
            None => (
                base.to_owned(),
                format!("{base}/.well-known/oauth-authorization-server"),
            ),
            Some(tenant) => (
                format!("{base}/{tenant}"),
                format!("{base}/.well-known/oauth-authorization-server/{tenant}"),
            ),
        };
        let alg = settings.algorithm;
        let now = clock.now();
        Self {
            url,
            metadata_url,
            settings,
            supply,
            clock,
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
            grants: Grants::default(),
            proofs: crate::proofs::ProofLedger::default(),
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, KeyRing> {
        // A panic while holding this lock cannot leave the ring half-updated (every update is a
        // single assignment or push), so a poisoned lock is still safe to use.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The JWKS document now.
    pub(crate) fn jwks(&self) -> Value {
        serde_json::json!({ "keys": self.ring().published(self.clock.now()) })
    }

    /// Rotates if the schedule says so. At most one rotation per call, even after a long jump
    /// of the clock: the result is the same key set a real IdP would publish.
    pub(crate) async fn rotate_if_due(&self) -> Result<(), IdpError> {
        let Some(period) = self.settings.rotation_period else {
            return Ok(());
        };
        let period = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
        let due = |ring: &KeyRing| self.clock.now() >= ring.rotated_at().saturating_add(period);
        if !due(&self.ring()) {
            return Ok(());
        }
        let _one_at_a_time = self.rotating.lock().await;
        if !due(&self.ring()) {
            return Ok(());
        }
        self.rotate_now(None).await.map(|_| ())
    }

    /// Rotates now: a new key (of `alg`, or the current algorithm) signs from this moment.
    pub(crate) async fn rotate(&self, alg: Option<Algorithm>) -> Result<Rotation, IdpError> {
        let _one_at_a_time = self.rotating.lock().await;
        self.rotate_now(alg).await
    }

    async fn rotate_now(&self, alg: Option<Algorithm>) -> Result<Rotation, IdpError> {
        let alg = alg.unwrap_or_else(|| self.ring().current().alg);
        let pair = self.supply.obtain(alg.family()).await?;
        let grace = i64::try_from(self.settings.grace_period.as_secs()).unwrap_or(i64::MAX);
        let rotation = self
            .ring()
            .rotate(SigningKey { pair, alg }, self.clock.now(), grace);
        tracing::info!(issuer = %self.url, new_kid = %rotation.new_kid, retired_kid = %rotation.retired_kid, "signing key rotated");
        Ok(rotation)
    }

    /// Publishes an extra key marked `use: "enc"` (of the issuer's algorithm family), returning its
    /// `kid`. A resource server must not accept signatures made with it (J07).
    pub(crate) async fn publish_encryption_key(&self) -> Result<String, IdpError> {
        let alg = self.ring().current().alg;
        let pair = self.supply.obtain(alg.family()).await?;
        let kid = pair.kid().to_owned();
        self.ring().publish_extra(SigningKey { pair, alg }, "enc");
        Ok(kid)
    }

    /// A well-formed access token for `spec`, signed by the current key.
    pub(crate) fn mint(&self, spec: &AccessTokenSpec) -> Result<String, IdpError> {
        let key = self.ring().current().clone();
        let claims = spec.claims(&self.url, &self.settings.default_audience, self.clock.now());
        let header = self.header_for(&key, key.alg.jwt());
        let header = serde_json::to_vec(&header).map_err(IdpError::Encoding)?;
        let claims = serde_json::to_vec(&claims).map_err(IdpError::Encoding)?;
        sign_compact(&header, &claims, key.pair.signing_key(), key.alg.jwt())
    }

    /// An opaque access token: a random string recorded with what `spec` says (subject, client,
    /// scopes, audience, lifetime), judged only by introspection or token information.
    pub(crate) fn issue_opaque(&self, spec: &AccessTokenSpec) -> String {
        let now = self.clock.now();
        let claims = spec.claims(&self.url, &self.settings.default_audience, now);
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let number = |name: &str| claims.get(name).and_then(Value::as_i64);
        let subject = text("sub").unwrap_or_default();
        let token = crate::grants::random_token();
        self.grants.record_access(
            &token,
            AccessRecord::new(
                subject.clone(),
                text("client_id").unwrap_or(subject),
                text("scope")
                    .map(|s| {
                        s.split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                match claims.get("aud") {
                    Some(Value::String(one)) => vec![one.clone()],
                    Some(Value::Array(many)) => many
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    _ => Vec::new(),
                },
                (number("iat").unwrap_or(now), number("exp").unwrap_or(now)),
            ),
            None,
        );
        token
    }

    /// Whether tokens for `resources` are opaque here (any of them is an opaque resource).
    pub(crate) fn opaque_for(&self, resources: &[String]) -> bool {
        resources
            .iter()
            .any(|r| self.settings.opaque_resources.contains(r))
    }

    /// An OpenID Connect ID token (OIDC Core §2) of `claims`, signed by the current key, `typ: JWT`.
    pub(crate) fn sign_id_token(&self, claims: &Map<String, Value>) -> Result<String, IdpError> {
        let key = self.ring().current().clone();
        let mut header = self.header_for(&key, key.alg.jwt());
        header.insert("typ".into(), "JWT".into());
        let header = serde_json::to_vec(&header).map_err(IdpError::Encoding)?;
        let claims = serde_json::to_vec(claims).map_err(IdpError::Encoding)?;
        sign_compact(&header, &claims, key.pair.signing_key(), key.alg.jwt())
    }

    /// The token a [`Forgery`] describes.
    pub(crate) async fn forge(&self, forgery: &Forgery) -> Result<String, IdpError> {
        let claims = forgery.claims_object(forgery.spec.claims(
            &self.url,
            &self.settings.default_audience,
            self.clock.now(),
        ));
        let claims = match &forgery.raw_claims {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&claims).map_err(IdpError::Encoding)?,
        };
        let current = self.ring().current().clone();
        let (key, alg) = match &forgery.signature {
            Signature::Key { key, alg } => {
                let key = self.key_for(key).await?;
                let alg = alg.unwrap_or(key.alg.jwt());
                (key, alg)
            }
            Signature::Hmac { alg, .. } | Signature::HmacWithIssuerKey { alg, .. } => {
                (current, *alg)
            }
            Signature::RsaPem(_) => (current, jsonwebtoken::Algorithm::RS256),
            Signature::Empty | Signature::Bytes(_) | Signature::Segment(_) => {
                let alg = current.alg.jwt();
                (current, alg)
            }
        };
        let header = match &forgery.raw_header {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&forgery.header_object(self.header_for(&key, alg)))
                .map_err(IdpError::Encoding)?,
        };
        let input = signing_input(&header, &claims);
        let encode = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        match &forgery.signature {
            Signature::Key { .. } => sign_compact(&header, &claims, key.pair.signing_key(), alg),
            Signature::Hmac { secret, alg } => {
                sign_compact(&header, &claims, &EncodingKey::from_secret(secret), *alg)
            }
            Signature::HmacWithIssuerKey { encoding, alg } => {
                let jwk = key.pair.public_jwk(key.alg, "sig");
                let secret = attack::public_key_bytes(&jwk, *encoding)?;
                sign_compact(&header, &claims, &EncodingKey::from_secret(&secret), *alg)
            }
            Signature::Empty => Ok(format!("{input}.")),
            Signature::Bytes(bytes) => Ok(format!("{input}.{}", encode(bytes))),
            Signature::RsaPem(pem) => {
                let signature = attack::sign_rs256_any_size(pem, input.as_bytes())?;
                Ok(format!("{input}.{}", encode(&signature)))
            }
            Signature::Segment(segment) => Ok(format!("{input}.{segment}")),
        }
    }

    async fn key_for(&self, choice: &KeyChoice) -> Result<SigningKey, IdpError> {
        match choice {
            KeyChoice::Current => Ok(self.ring().current().clone()),
            KeyChoice::Kid(kid) => self
                .ring()
                .find(kid)
                .ok_or_else(|| IdpError::UnknownKid(kid.clone())),
            KeyChoice::Unpublished => {
                let mut unpublished = self.unpublished.lock().await;
                let alg = self.ring().current().alg;
                match unpublished.as_ref() {
                    Some(key) if key.alg.family() == alg.family() => Ok(key.clone()),
                    _ => {
                        let key = SigningKey {
                            pair: self.supply.obtain(alg.family()).await?,
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

    /// The authorization endpoint URL (authorization code + PKCE, and the login page).
    pub fn authorization_endpoint(&self) -> String {
        format!("{}/authorize", self.issuer.url)
    }

    /// The dynamic client registration endpoint URL (RFC 7591).
    pub fn registration_endpoint(&self) -> String {
        format!("{}/register", self.issuer.url)
    }

    /// The token introspection endpoint URL (RFC 7662).
    pub fn introspection_endpoint(&self) -> String {
        format!("{}/introspect", self.issuer.url)
    }

    /// The token revocation endpoint URL (RFC 7009).
    pub fn revocation_endpoint(&self) -> String {
        format!("{}/revoke", self.issuer.url)
    }

    /// The Google-style token-information endpoint URL.
    pub fn token_info_endpoint(&self) -> String {
        format!("{}/tokeninfo", self.issuer.url)
    }

    /// The OIDC discovery URL (appended to the issuer, OIDC Discovery §4).
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.url)
    }

    /// The RFC 8414 metadata URL (well-known inserted before the issuer's path, §3.1).
    pub fn authorization_server_metadata_url(&self) -> String {
        self.issuer.metadata_url.clone()
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
        self.issuer.rotate_if_due().await?;
        self.issuer.mint(spec)
    }

    /// An opaque access token for `spec` (subject, client, scopes, audience, lifetime), judged
    /// only through introspection (`/introspect`) or token information (`/tokeninfo`).
    ///
    /// # Errors
    /// [`IdpError`] if a scheduled key rotation fails.
    pub async fn mint_opaque(&self, spec: &AccessTokenSpec) -> Result<String, IdpError> {
        self.issuer.rotate_if_due().await?;
        Ok(self.issuer.issue_opaque(spec))
    }

    /// The (usually invalid) token `forgery` describes.
    ///
    /// # Errors
    /// [`IdpError`] if the chosen key does not exist or cannot sign with the chosen algorithm.
    pub async fn forge(&self, forgery: &Forgery) -> Result<String, IdpError> {
        self.issuer.rotate_if_due().await?;
        self.issuer.forge(forgery).await
    }

    /// Rotates the signing key now; `alg` switches algorithm (and key type) at the same time.
    ///
    /// # Errors
    /// [`IdpError::KeyGeneration`] if a new key cannot be made.
    pub async fn rotate(&self, alg: Option<Algorithm>) -> Result<Rotation, IdpError> {
        self.issuer.rotate(alg).await
    }

    /// Publishes an extra `use: "enc"` key and returns its `kid` (for J07).
    ///
    /// # Errors
    /// [`IdpError::KeyGeneration`] if a key cannot be made.
    pub async fn publish_encryption_key(&self) -> Result<String, IdpError> {
        self.issuer.publish_encryption_key().await
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
        self.issuer.jwks()
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
