//! Deliberately broken tokens. Everything that can mint a token a correct resource server must
//! refuse lives here, behind a name that says so (as jsonwebtoken's `dangerous`), so it is never
//! reached by accident from the ordinary minting path.
//!
//! A [`Forgery`] starts as the valid token of an [`AccessTokenSpec`] and is then bent: header and
//! claim edits, raw (even non-JSON) header or payload bytes, and a [`Signature`] choice. It covers
//! the IdP-side cases of the spec checklist §3 (J01-J50): `alg: none` in any spelling, HMAC with a
//! public key, algorithm/key mismatches, unknown or injected `kid`, unpublished or `enc` keys,
//! `jku`/`x5u`/`jwk`/`x5c` headers, `crit`, stripped and zeroed signatures, bad times, audiences,
//! issuers, types and subjects, and duplicate JSON members.
//!
//! One recipe, three doors: the library builds a `Forgery` with its methods; the admin API
//! (`POST /admin/mint`) and the conformance suite's attack corpus deserialize the same type from
//! JSON:
//!
//! ```json
//! {"subject": "alice", "client_id": "c", "audience": "https://rs/mcp", "scope": "a b",
//!  "expires_in": -600, "not_before_in": 60,
//!  "claims": {"iss": "https://elsewhere"}, "remove_claims": ["sub"],
//!  "header": {"kid": "../../etc/passwd"}, "remove_header": ["typ"],
//!  "raw_header": "{\"alg\":\"RS256\",\"alg\":\"none\"}", "raw_claims": {"b64url": "e30"},
//!  "signature": "current" | "unpublished" | "empty" | {"kid": "..."} | {"hmac_secret": "..."}
//!             | {"hmac_issuer_key": "pem" | "jwk" | "modulus"} | {"bytes_b64url": "..."}
//!             | {"segment": "..."} | {"rsa_pem": "-----BEGIN PRIVATE KEY-----..."},
//!  "sign_alg": "RS512"}
//! ```
//!
//! Every field is optional; `{}` is a valid token for `alice`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::IdpError;
use crate::tokens::{AccessTokenSpec, Audience};

/// A recipe for a token, applied by an issuer ([`crate::IssuerHandle::forge`]) at its clock's now.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "Recipe")]
pub struct Forgery {
    pub(crate) spec: AccessTokenSpec,
    pub(crate) header_edits: Vec<Edit>,
    pub(crate) claim_edits: Vec<Edit>,
    pub(crate) raw_header: Option<Vec<u8>>,
    pub(crate) raw_claims: Option<Vec<u8>>,
    pub(crate) signature: Signature,
}

#[derive(Clone, Debug)]
pub(crate) enum Edit {
    Set(String, Value),
    Remove(String),
}

/// How the forged token is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    /// With a key of the issuer, under the key's own algorithm unless `alg` overrides it (J06).
    Key {
        /// Which key.
        key: KeyChoice,
        /// The algorithm to sign with; also written to the header unless the header is edited.
        alg: Option<jsonwebtoken::Algorithm>,
    },
    /// HMAC with an arbitrary secret (J04 with a guessed shared secret).
    Hmac {
        /// The HMAC key.
        secret: Vec<u8>,
        /// HS256, HS384 or HS512.
        alg: jsonwebtoken::Algorithm,
    },
    /// HMAC keyed with the issuer's own current public key in some encoding: the classic
    /// RS/HS key confusion (J03).
    HmacWithIssuerKey {
        /// How the public key is written out as the HMAC secret.
        encoding: PublicKeyEncoding,
        /// HS256, HS384 or HS512.
        alg: jsonwebtoken::Algorithm,
    },
    /// An empty third segment: `header.payload.` (J01, J18).
    Empty,
    /// These bytes, base64url-encoded, as the signature (J20 zero ECDSA, J21 DER signatures).
    Bytes(Vec<u8>),
    /// This text verbatim as the third segment (malformed base64, J40/J41).
    Segment(String),
    /// RS256 with an RSA key of any size given as PKCS#8 PEM, signed by the `rsa` crate because
    /// aws-lc refuses keys under 2048 bits: the J22 weak-key case (publish it with
    /// [`crate::IssuerHandle::publish_jwk`] and [`rsa_public_jwk`]).
    RsaPem(String),
}

/// Which of the issuer's keys signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyChoice {
    /// The current signing key: a correctly signed token.
    Current,
    /// A published key by `kid`: a retired key in its grace period, or the `enc` key (J07).
    Kid(String),
    /// A key of the same kind that is never published (forged signature, unknown `kid`).
    Unpublished,
}

/// How a public key is written out when misused as an HMAC secret (J03).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicKeyEncoding {
    /// SPKI PEM, as `openssl pkey -pubout` writes it (RSA keys only).
    Pem,
    /// The public JWK as JSON text, as the JWKS publishes it.
    Jwk,
    /// The RSA modulus `n`, base64url, as in the JWK.
    Modulus,
}

impl Forgery {
    /// Starts from the valid token `spec` describes, signed by the current key.
    pub fn new(spec: AccessTokenSpec) -> Self {
        Self {
            spec,
            header_edits: Vec::new(),
            claim_edits: Vec::new(),
            raw_header: None,
            raw_claims: None,
            signature: Signature::Key {
                key: KeyChoice::Current,
                alg: None,
            },
        }
    }

    /// Sets a header parameter (`typ`, `kid`, `jku`, `crit`, even `alg`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.header_edits.push(Edit::Set(name.into(), value.into()));
        self
    }

    /// Removes a header parameter (`kid`, `typ`, `alg`).
    pub fn without_header(mut self, name: impl Into<String>) -> Self {
        self.header_edits.push(Edit::Remove(name.into()));
        self
    }

    /// Sets a claim after the spec's claims are computed, so it wins over all of them.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claim_edits.push(Edit::Set(name.into(), value.into()));
        self
    }

    /// Removes a claim (`exp`, `aud`, `iss`, `sub`...).
    pub fn without_claim(mut self, name: impl Into<String>) -> Self {
        self.claim_edits.push(Edit::Remove(name.into()));
        self
    }

    /// Uses these bytes as the header instead of the JSON built from the edits (duplicate members,
    /// non-objects, invalid UTF-8). The signature still covers them.
    pub fn raw_header(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_header = Some(bytes.into());
        self
    }

    /// Uses these bytes as the payload instead of the claims (J44, J45).
    pub fn raw_claims(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.raw_claims = Some(bytes.into());
        self
    }

    /// Chooses the signature.
    pub fn signature(mut self, signature: Signature) -> Self {
        self.signature = signature;
        self
    }

    /// J01/J02: `alg` set to `spelling` (`none`, `None`, `NONE`...) and no signature.
    pub fn alg_none(spec: AccessTokenSpec, spelling: &str) -> Self {
        Self::new(spec)
            .header("alg", spelling)
            .signature(Signature::Empty)
    }

    /// Signed by a key the issuer never published; its `kid` is unknown to the JWKS (J08).
    pub fn unpublished_key(spec: AccessTokenSpec) -> Self {
        Self::new(spec).signature(Signature::Key {
            key: KeyChoice::Unpublished,
            alg: None,
        })
    }

    /// Correctly signed, but with a `kid` the JWKS does not have (J08, J09 with odd values).
    pub fn unknown_kid(spec: AccessTokenSpec, kid: impl Into<Value>) -> Self {
        Self::new(spec).header("kid", kid)
    }

    /// J03: HS256 whose HMAC key is `public_key` (the issuer's public key as PEM, DER, JWK or `n`).
    pub fn hmac_with_public_key(spec: AccessTokenSpec, public_key: impl Into<Vec<u8>>) -> Self {
        Self::new(spec).signature(Signature::Hmac {
            secret: public_key.into(),
            alg: jsonwebtoken::Algorithm::HS256,
        })
    }

    /// The header names a key the verifier must never fetch or trust (`jku`, `x5u`: J11/J12;
    /// `jwk`, `x5c`: J13/J14), and the token is signed by the unpublished key those would lead to.
    pub fn foreign_key_reference(
        spec: AccessTokenSpec,
        header: &str,
        value: impl Into<Value>,
    ) -> Self {
        Self::unpublished_key(spec).header(header, value)
    }

    pub(crate) fn header_object(&self, mut header: Map<String, Value>) -> Map<String, Value> {
        apply(&mut header, &self.header_edits);
        header
    }

    pub(crate) fn claims_object(&self, mut claims: Map<String, Value>) -> Map<String, Value> {
        apply(&mut claims, &self.claim_edits);
        claims
    }
}

/// The JSON form of a [`Forgery`], as the module documentation shows it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipe {
    #[serde(default = "default_subject")]
    subject: String,
    client_id: Option<String>,
    audience: Option<Audience>,
    /// Space-separated, as in the `scope` claim.
    scope: Option<String>,
    /// Seconds from now; negative for an expired token (then issued a minute before expiry).
    expires_in: Option<i64>,
    /// Seconds from now for `nbf`.
    not_before_in: Option<i64>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    remove_claims: Vec<String>,
    #[serde(default)]
    header: Map<String, Value>,
    #[serde(default)]
    remove_header: Vec<String>,
    raw_header: Option<RawBytes>,
    raw_claims: Option<RawBytes>,
    #[serde(default)]
    signature: SignatureRecipe,
    /// The algorithm to sign with instead of the key's own (J04-J06), or the HMAC variant.
    sign_alg: Option<jsonwebtoken::Algorithm>,
}

fn default_subject() -> String {
    "alice".into()
}

/// Bytes as UTF-8 text, or as `{"b64url": "..."}` for anything else.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawBytes {
    Text(String),
    Encoded { b64url: String },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum SignatureRecipe {
    #[default]
    Current,
    Unpublished,
    Empty,
    Kid(String),
    HmacSecret(String),
    HmacIssuerKey(PublicKeyEncoding),
    BytesB64url(String),
    Segment(String),
    RsaPem(String),
}

impl TryFrom<Recipe> for Forgery {
    type Error = String;

    fn try_from(recipe: Recipe) -> Result<Self, String> {
        let mut spec = AccessTokenSpec::user(recipe.subject);
        if let Some(client_id) = recipe.client_id {
            spec = spec.client_id(client_id);
        }
        if let Some(audience) = recipe.audience {
            spec = spec.audience(audience);
        }
        if let Some(scope) = recipe.scope {
            spec = spec.scope(scope.split(' ').filter(|s| !s.is_empty()));
        }
        if let Some(offset) = recipe.expires_in {
            spec.expires_at_offset = offset;
            spec.issued_at_offset = spec.issued_at_offset.min(offset.saturating_sub(60));
        }
        spec.not_before_offset = recipe.not_before_in;
        let hmac_alg = recipe.sign_alg.unwrap_or(jsonwebtoken::Algorithm::HS256);
        let key = |key| Signature::Key {
            key,
            alg: recipe.sign_alg,
        };
        let signature = match recipe.signature {
            SignatureRecipe::Current => key(KeyChoice::Current),
            SignatureRecipe::Unpublished => key(KeyChoice::Unpublished),
            SignatureRecipe::Kid(kid) => key(KeyChoice::Kid(kid)),
            SignatureRecipe::Empty => Signature::Empty,
            SignatureRecipe::HmacSecret(secret) => Signature::Hmac {
                secret: secret.into_bytes(),
                alg: hmac_alg,
            },
            SignatureRecipe::HmacIssuerKey(encoding) => Signature::HmacWithIssuerKey {
                encoding,
                alg: hmac_alg,
            },
            SignatureRecipe::BytesB64url(bytes) => {
                Signature::Bytes(decode("bytes_b64url", &bytes)?)
            }
            SignatureRecipe::Segment(segment) => Signature::Segment(segment),
            SignatureRecipe::RsaPem(pem) => Signature::RsaPem(pem),
        };
        let mut forgery = Self::new(spec).signature(signature);
        for (name, value) in recipe.claims {
            forgery = forgery.claim(name, value);
        }
        for name in recipe.remove_claims {
            forgery = forgery.without_claim(name);
        }
        for (name, value) in recipe.header {
            forgery = forgery.header(name, value);
        }
        for name in recipe.remove_header {
            forgery = forgery.without_header(name);
        }
        if let Some(raw) = recipe.raw_header {
            forgery = forgery.raw_header(raw.into_bytes("raw_header")?);
        }
        if let Some(raw) = recipe.raw_claims {
            forgery = forgery.raw_claims(raw.into_bytes("raw_claims")?);
        }
        Ok(forgery)
    }
}

impl RawBytes {
    fn into_bytes(self, field: &str) -> Result<Vec<u8>, String> {
        match self {
            Self::Text(text) => Ok(text.into_bytes()),
            Self::Encoded { b64url } => decode(field, &b64url),
        }
    }
}

fn decode(field: &str, b64url: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(b64url)
        .map_err(|e| format!("{field}: not base64url ({e})"))
}

/// The public JWK (`kty`, `n`, `e`, plus `kid`, `use: sig`, `alg: RS256`) of an RSA private key
/// of any size in PKCS#8 PEM, for publishing keys the ordinary path refuses (J22).
///
/// # Errors
/// [`IdpError::RsaPem`] when the PEM is not an RSA private key.
pub fn rsa_public_jwk(private_pem: &str, kid: &str) -> Result<Value, IdpError> {
    use rsa::traits::PublicKeyParts as _;
    let key = rsa_private_key(private_pem)?;
    let encode = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    Ok(serde_json::json!({
        "kty": "RSA",
        "n": encode(&key.n().to_be_bytes_trimmed_vartime()),
        "e": encode(&key.e().to_be_bytes_trimmed_vartime()),
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
    }))
}

/// RS256 (PKCS#1 v1.5, SHA-256) over `input` with an RSA key of any size.
pub(crate) fn sign_rs256_any_size(private_pem: &str, input: &[u8]) -> Result<Vec<u8>, IdpError> {
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let signer = rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(rsa_private_key(private_pem)?);
    let signature = signer.try_sign(input).map_err(IdpError::RsaSigning)?;
    Ok(signature.to_vec())
}

/// The HMAC secret `encoding` makes of a public JWK (J03).
pub(crate) fn public_key_bytes(
    jwk: &Value,
    encoding: PublicKeyEncoding,
) -> Result<Vec<u8>, IdpError> {
    match encoding {
        PublicKeyEncoding::Jwk => serde_json::to_vec(jwk).map_err(IdpError::Encoding),
        PublicKeyEncoding::Modulus => jwk
            .get("n")
            .and_then(Value::as_str)
            .map(|n| n.as_bytes().to_vec())
            .ok_or(IdpError::NotRsa),
        PublicKeyEncoding::Pem => {
            use rsa::pkcs8::EncodePublicKey as _;
            let part = |name: &str| {
                jwk.get(name)
                    .and_then(Value::as_str)
                    .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                    .ok_or(IdpError::NotRsa)
            };
            let key = rsa::PublicKey::new(
                rsa::BoxedUint::from_be_slice_vartime(&part("n")?),
                rsa::BoxedUint::from_be_slice_vartime(&part("e")?),
            )
            .map_err(|_| IdpError::NotRsa)?;
            key.to_public_key_pem(rsa::pkcs8::LineEnding::LF)
                .map(String::into_bytes)
                .map_err(|_| IdpError::NotRsa)
        }
    }
}

fn rsa_private_key(private_pem: &str) -> Result<rsa::PrivateKey, IdpError> {
    use rsa::pkcs8::DecodePrivateKey as _;
    rsa::PrivateKey::from_pkcs8_pem(private_pem).map_err(IdpError::RsaPem)
}

fn apply(object: &mut Map<String, Value>, edits: &[Edit]) {
    for edit in edits {
        match edit {
            Edit::Set(name, value) => {
                object.insert(name.clone(), value.clone());
            }
            Edit::Remove(name) => {
                object.remove(name);
            }
        }
    }
}
