//! The attack corpus as data: each `fixtures/attacks/*.json` file describes one hostile request
//! (checklist §3, J01-J50, plus header-level abuse): how to build its token from the fixture
//! keys, how to send it, and what the server must answer. This module turns a case into a
//! request; `tests/suite/attacks.rs` runs every case.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::attack::{Forgery, KeyChoice, Signature};
use mock_idp::{AccessTokenSpec, IssuerHandle};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{TestEnv, fixtures_dir};

/// One case of the corpus.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackCase {
    /// The spec-checklist id it exercises (`J03`, `C05`...).
    pub id: String,
    /// What the attack is.
    pub title: String,
    /// Which IdP algorithm the environment uses (default RS256).
    #[serde(default)]
    pub env: EnvKind,
    /// Changes to the IdP before the token is built.
    #[serde(default)]
    pub setup: Vec<SetupStep>,
    /// How the token is built.
    #[serde(default)]
    pub token: TokenRecipe,
    /// How it is sent.
    #[serde(default)]
    pub request: RequestRecipe,
    /// What the server must answer.
    pub expect: Expectation,
}

/// The IdP's signing algorithm for a case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvKind {
    /// RS256 (the default).
    #[default]
    Rs256,
    /// ES256, for ECDSA signature cases.
    Es256,
}

/// A change to the IdP before the case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupStep {
    /// Publish a `use: enc` key (J07).
    PublishEncryptionKey,
    /// Publish the weak RSA-1024 fixture key as `kid: weak-1024` (J22).
    PublishWeakKey,
}

/// How to build the token: a valid token for the server, bent by these fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenRecipe {
    /// `sub` (default `alice`).
    pub subject: Option<String>,
    /// `aud` (default the server's resource URL).
    pub audience: Option<Value>,
    /// `scope` (default `mcp:tools`; `""` for none).
    pub scope: Option<String>,
    /// Seconds until `exp` (negative: expired).
    pub expires_in: Option<i64>,
    /// Seconds until `nbf`.
    pub not_before_in: Option<i64>,
    /// Claims set after the defaults (placeholders: `$ISSUER`, `$RESOURCE`, `$IDP`).
    pub claims: Map<String, Value>,
    /// Claims removed.
    pub remove_claims: Vec<String>,
    /// Header parameters set.
    pub header: Map<String, Value>,
    /// Header parameters removed.
    pub remove_header: Vec<String>,
    /// The header bytes verbatim (placeholders `$KID`).
    pub raw_header: Option<String>,
    /// The payload bytes verbatim (placeholders `$ISSUER`, `$RESOURCE`, `$EXP`).
    pub raw_claims: Option<String>,
    /// Hex bytes used verbatim as the payload (invalid UTF-8, BOMs).
    pub raw_claims_hex: Option<String>,
    /// The signature.
    pub signature: SignatureRecipe,
    /// Sign with this algorithm instead of the key's own.
    pub sign_alg: Option<jsonwebtoken::Algorithm>,
    /// Sign at another issuer of the same IdP (`/{tenant}`), keeping `iss` as chosen above.
    pub tenant: Option<String>,
    /// A change to the finished token text.
    pub transform: Option<Transform>,
    /// The whole credential verbatim, instead of building a token.
    pub literal: Option<String>,
    /// The credential is this many `a` characters (oversize cases).
    pub filler: Option<usize>,
}

/// The signature of a built token.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureRecipe {
    /// The current key: a genuine signature.
    #[default]
    Current,
    /// A key the IdP never published.
    Unpublished,
    /// No signature at all (`header.payload.`).
    Empty,
    /// The published `use: enc` key (after the `publish_encryption_key` step).
    EncryptionKey,
    /// The weak RSA-1024 fixture key (after `publish_weak_key`).
    WeakKey,
    /// HMAC with a secret given inline.
    HmacSecret(String),
    /// HMAC keyed with a fixture file's bytes (e.g. `keys/rsa-1.pub.pem`).
    HmacSecretFile(String),
    /// HMAC keyed with the issuer's current public JWK as JSON text.
    HmacPublicJwk,
    /// HMAC keyed with the issuer's current public key modulus `n` (base64url text).
    HmacModulus,
    /// This many zero bytes.
    ZeroBytes(usize),
    /// These hex bytes.
    BytesHex(String),
    /// This text as the third segment.
    Segment(String),
}

/// A change to a finished token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transform {
    /// Drop the signature, keep the dot.
    StripSignature,
    /// Replace the payload with other claims, keep the signature.
    TamperPayload,
    /// Add `=` padding to the header segment.
    PadHeader,
    /// Use the standard base64 alphabet (`+`, `/`) in the signature.
    StandardAlphabet,
    /// Put a space inside the payload segment.
    WhitespaceInPayload,
    /// Drop the payload's last character (segment length ≡ 1 mod 4 or broken bytes).
    TruncatePayload,
    /// Set the signature's unused trailing bits.
    NonCanonicalSignature,
    /// Only header and payload.
    TwoSegments,
    /// An extra segment.
    FourSegments,
    /// Five segments, as a JWE.
    FiveSegments,
    /// An empty header segment.
    EmptyHeader,
    /// `..`.
    DotsOnly,
    /// The JWS JSON serialization.
    JwsJson,
}

/// How the credential is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestRecipe {
    /// `Authorization` header values, each once, `{token}` replaced (default `Bearer {token}`).
    pub authorization: Vec<String>,
    /// Also (or only, with `authorization: []`) put the token in `?access_token=`.
    pub query_token: bool,
}

impl Default for RequestRecipe {
    fn default() -> Self {
        Self {
            authorization: vec!["Bearer {token}".into()],
            query_token: false,
        }
    }
}

/// What the server must answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// Acceptable statuses (one for most cases).
    pub status: Vec<u16>,
    /// The challenge's `error` (`invalid_token`, `invalid_request`, `insufficient_scope`), or
    /// `null` for none (no credentials, or a refusal before authentication such as 431).
    pub error: Option<String>,
    /// A tenant of the IdP whose JWKS must never be fetched (jku/x5u pointing at it: J11, J12).
    #[serde(default)]
    pub never_fetched_tenant: Option<String>,
}

/// Every case in `fixtures/attacks`, sorted by file name.
pub fn load_corpus() -> Vec<(String, AttackCase)> {
    let dir = fixtures_dir().join("attacks");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let case = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, case)
        })
        .collect()
}

impl AttackCase {
    /// Runs the setup steps against `env`'s IdP.
    pub async fn prepare(&self, env: &TestEnv) {
        for step in &self.setup {
            match step {
                SetupStep::PublishEncryptionKey => {
                    env.idp.issuer().publish_encryption_key().await.unwrap();
                }
                SetupStep::PublishWeakKey => {
                    let jwk = mock_idp::attack::rsa_public_jwk(&weak_pem(), "weak-1024").unwrap();
                    env.idp.issuer().publish_jwk(jwk);
                }
            }
        }
    }

    /// The credential this case sends.
    pub async fn credential(&self, env: &TestEnv) -> String {
        let recipe = &self.token;
        if let Some(literal) = &recipe.literal {
            return literal.clone();
        }
        if let Some(length) = recipe.filler {
            return "a".repeat(length);
        }
        let root = env.idp.issuer();
        let issuer = match &recipe.tenant {
            Some(tenant) => env.idp.tenant(tenant).await.unwrap(),
            None => root.clone(),
        };
        let places = Placeholders {
            issuer: root.url().to_owned(),
            resource: env.resource().to_owned(),
            idp: env.idp.url().to_owned(),
            port: env
                .settings
                .resource
                .url
                .as_url()
                .port()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        };
        let token = issuer
            .forge(&self.forgery(&issuer, &places, env).await)
            .await
            .unwrap();
        match recipe.transform {
            Some(transform) => apply(transform, &token, &places, env),
            None => token,
        }
    }

    async fn forgery(
        &self,
        issuer: &IssuerHandle,
        places: &Placeholders,
        env: &TestEnv,
    ) -> Forgery {
        let recipe = &self.token;
        let mut spec =
            AccessTokenSpec::user(recipe.subject.clone().unwrap_or_else(|| "alice".into()));
        spec = match &recipe.audience {
            Some(Value::String(aud)) => spec.audience(places.fill(aud)),
            Some(Value::Array(many)) => spec.audience(
                many.iter()
                    .map(|a| places.fill(a.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>(),
            ),
            Some(other) => spec.claim("aud", other.clone()),
            None => spec.audience(env.resource()),
        };
        let scope = recipe.scope.clone().unwrap_or_else(|| "mcp:tools".into());
        spec = spec.scope(
            scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        );
        if let Some(secs) = recipe.expires_in {
            spec = if secs < 0 {
                spec.expired_since(std::time::Duration::from_secs(secs.unsigned_abs()))
            } else {
                spec.expires_in(std::time::Duration::from_secs(secs.unsigned_abs()))
            };
        }
        if let Some(secs) = recipe.not_before_in {
            spec = spec.not_before_in(std::time::Duration::from_secs(secs.unsigned_abs()));
        }
        let kid = issuer.current_kid();
        let mut forgery = Forgery::new(spec).signature(self.signature(issuer, &kid).await);
        if recipe.tenant.is_some() {
            forgery = forgery.claim("iss", places.issuer.clone());
        }
        for (name, value) in &recipe.claims {
            forgery = forgery.claim(name, places.fill_value(value));
        }
        for name in &recipe.remove_claims {
            forgery = forgery.without_claim(name);
        }
        for (name, value) in &recipe.header {
            forgery = forgery.header(name, places.fill_value(value));
        }
        for name in &recipe.remove_header {
            forgery = forgery.without_header(name);
        }
        if let Some(raw) = &recipe.raw_header {
            forgery = forgery.raw_header(raw.replace("$KID", &kid));
        }
        if let Some(raw) = &recipe.raw_claims {
            let exp = (env.idp.clock().now() + 300).to_string();
            forgery = forgery.raw_claims(places.fill(&raw.replace("$EXP", &exp)));
        }
        if let Some(hex) = &recipe.raw_claims_hex {
            forgery = forgery.raw_claims(decode_hex(hex));
        }
        forgery
    }

    async fn signature(&self, issuer: &IssuerHandle, kid: &str) -> Signature {
        let alg = self.token.sign_alg;
        let jwk = || issuer.jwks()["keys"][0].clone();
        let hmac = |secret: Vec<u8>| Signature::Hmac {
            secret,
            alg: alg.unwrap_or(jsonwebtoken::Algorithm::HS256),
        };
        match &self.token.signature {
            SignatureRecipe::Current => Signature::Key {
                key: KeyChoice::Current,
                alg,
            },
            SignatureRecipe::Unpublished => Signature::Key {
                key: KeyChoice::Unpublished,
                alg,
            },
            SignatureRecipe::Empty => Signature::Empty,
            SignatureRecipe::EncryptionKey => {
                let jwks = issuer.jwks();
                let enc = jwks["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|k| k["use"] == "enc")
                    .expect("publish_encryption_key first");
                Signature::Key {
                    key: KeyChoice::Kid(enc["kid"].as_str().unwrap().to_owned()),
                    alg,
                }
            }
            SignatureRecipe::WeakKey => Signature::RsaPem(weak_pem()),
            SignatureRecipe::HmacSecret(secret) => hmac(secret.clone().into_bytes()),
            SignatureRecipe::HmacSecretFile(file) => {
                hmac(std::fs::read(fixtures_dir().join(file)).unwrap())
            }
            SignatureRecipe::HmacPublicJwk => hmac(serde_json::to_vec(&jwk()).unwrap()),
            SignatureRecipe::HmacModulus => hmac(jwk()["n"].as_str().unwrap().as_bytes().to_vec()),
            SignatureRecipe::ZeroBytes(n) => Signature::Bytes(vec![0; *n]),
            SignatureRecipe::BytesHex(hex) => Signature::Bytes(decode_hex(hex)),
            SignatureRecipe::Segment(text) => Signature::Segment(text.replace("$KID", kid)),
        }
    }
}

/// `$ISSUER`, `$ISSUER_UPPER`, `$RESOURCE`, `$IDP` (the IdP's base URL) and `$PORT` (the
/// server's port) in case files.
struct Placeholders {
    issuer: String,
    resource: String,
    idp: String,
    port: String,
}

impl Placeholders {
    fn fill(&self, text: &str) -> String {
        text.replace("$ISSUER_UPPER", &self.issuer.to_uppercase())
            .replace("$ISSUER", &self.issuer)
            .replace("$RESOURCE", &self.resource)
            .replace("$IDP", &self.idp)
            .replace("$PORT", &self.port)
    }

    fn fill_value(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.fill(text)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.fill_value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.fill_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn apply(transform: Transform, token: &str, places: &Placeholders, env: &TestEnv) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature) = (
        parts[0],
        parts[1],
        parts.get(2).copied().unwrap_or_default(),
    );
    match transform {
        Transform::StripSignature => format!("{header}.{payload}."),
        Transform::TamperPayload => {
            let claims = json!({"iss": places.issuer, "sub": "admin", "aud": places.resource, "scope": "mcp:tools admin", "exp": env.idp.clock().now() + 86_400});
            format!(
                "{header}.{}.{signature}",
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
            )
        }
        Transform::PadHeader => format!("{header}==.{payload}.{signature}"),
        Transform::StandardAlphabet => {
            let standard = base64::engine::general_purpose::STANDARD
                .encode(URL_SAFE_NO_PAD.decode(signature).unwrap());
            format!("{header}.{payload}.{standard}")
        }
        Transform::WhitespaceInPayload => {
            format!("{header}.{} {}.{signature}", &payload[..10], &payload[10..])
        }
        Transform::TruncatePayload => {
            format!("{header}.{}.{signature}", &payload[..payload.len() - 1])
        }
        Transform::NonCanonicalSignature => {
            let mut bytes = signature.as_bytes().to_vec();
            let last = bytes.last_mut().unwrap();
            *last = if *last == b'A' { b'B' } else { b'A' };
            format!("{header}.{payload}.{}", String::from_utf8(bytes).unwrap())
        }
        Transform::TwoSegments => format!("{header}.{payload}"),
        Transform::FourSegments => format!("{header}.{payload}.{signature}.{signature}"),
        Transform::FiveSegments => {
            let jwe_header = URL_SAFE_NO_PAD
                .encode(br#"{"alg":"RSA-OAEP","enc":"A256GCM","zip":"DEF","p2c":100000000}"#);
            format!("{jwe_header}.{payload}.{signature}.{payload}.{signature}")
        }
        Transform::EmptyHeader => format!(".{payload}.{signature}"),
        Transform::DotsOnly => "..".into(),
        Transform::JwsJson => {
            let json = json!({"payload": payload, "signatures": [{"protected": header, "signature": signature}]}).to_string();
            URL_SAFE_NO_PAD.encode(json)
        }
    }
}

fn weak_pem() -> String {
    std::fs::read_to_string(fixtures_dir().join("keys/rsa-1024-weak.pem")).unwrap()
}

fn decode_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
