//! The attack corpus as data: each `fixtures/attacks/*.json` file describes one hostile request
//! (checklist §3, J01-J50, plus header-level abuse): the token, as the mock IdP's own forgery
//! recipe ([`mock_idp::attack::Forgery`], the same JSON the admin API takes), what is done to it
//! afterwards, how it is sent, and exactly what the server must answer, down to the
//! `error_description`, so a case refused for the wrong reason fails. This module turns a case
//! into a request; `tests/suite/attacks.rs` runs every case.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::attack::Forgery;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use crate::fixtures_dir;
use crate::target::Target;

pub mod proof;
pub mod runner;
pub use proof::{ProofRecipe, Sending};

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
    /// The token: a forgery recipe, after the placeholders are filled (`$ISSUER`, `$ISSUER_UPPER`,
    /// `$RESOURCE`, `$IDP`, `$PORT`, `$KID`, `$EXP`, `$ENC_KID`, `$WEAK_KEY_PEM`).
    #[serde(default)]
    pub token: Option<Value>,
    /// Sign at this other issuer of the same IdP (`/{tenant}`): its key, whatever `iss` says.
    #[serde(default)]
    pub signed_by_tenant: Option<String>,
    /// A change to the finished token text.
    #[serde(default)]
    pub transform: Option<Transform>,
    /// A credential that is not a token at all (instead of `token`).
    #[serde(default)]
    pub credential: Option<Credential>,
    /// How it is sent.
    #[serde(default)]
    pub request: RequestRecipe,
    /// The DPoP proof sent with it, a [`ProofRecipe`] with placeholders (and then
    /// `Authorization: DPoP {token}` by default).
    #[serde(default)]
    pub dpop: Option<Value>,
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
    /// Publish a `use: enc` key (J07); its kid is `$ENC_KID`.
    PublishEncryptionKey,
    /// Publish the weak RSA-1024 fixture key as `kid: weak-1024` (J22); its PEM is
    /// `$WEAK_KEY_PEM`.
    PublishWeakKey,
}

/// A credential sent instead of a token.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Credential {
    /// This text verbatim.
    Literal(String),
    /// This many `a` characters (oversize cases).
    Filler(usize),
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
    /// `Authorization` header values, each once, `{token}` replaced (default `Bearer {token}`,
    /// or `DPoP {token}` for a case with a proof).
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
    /// The status.
    pub status: u16,
    /// The challenge's `error` (`invalid_token`, `invalid_request`, `insufficient_scope`), or
    /// `null` for none (no credentials, or a refusal before authentication such as 431).
    #[serde(deserialize_with = "required")]
    pub error: Option<String>,
    /// The challenge's `error_description`: why exactly the request was refused (`null` when the
    /// challenge has no error). Required, so every case says which rule must catch it.
    #[serde(deserialize_with = "required")]
    pub error_description: Option<String>,
    /// The scheme of the challenge that carries the error (`Bearer`, or `DPoP` for a proof's
    /// fault, RFC 9449 §7.1).
    #[serde(default = "bearer")]
    pub challenge: String,
    /// A tenant of the IdP whose JWKS must never be fetched (jku/x5u pointing at it: J11, J12).
    #[serde(default)]
    pub never_fetched_tenant: Option<String>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// A member that must be present, even if `null`.
fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::deserialize(deserializer)
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
            let mut case: AttackCase =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            if let Some(recipe) = &case.dpop {
                if let Err(e) = serde_json::from_value::<ProofRecipe>(recipe.clone()) {
                    panic!("{name}: the proof recipe: {e}");
                }
                if !text.contains("\"authorization\"") {
                    case.request.authorization = vec!["DPoP {token}".into()];
                }
            }
            assert!(
                case.token.is_some() != case.credential.is_some(),
                "{name}: give either a token or a credential"
            );
            (name, case)
        })
        .collect()
}

impl AttackCase {
    /// Whether the case needs the mock IdP in this process (a key its admin API cannot publish).
    pub fn needs_in_process_idp(&self) -> bool {
        self.setup.contains(&SetupStep::PublishWeakKey)
    }

    /// Runs the setup steps against `env`'s IdP.
    ///
    /// # Errors
    /// When the IdP refuses, or a step needs the IdP in this process and it is not.
    pub async fn prepare(&self, env: &Target<'_>) -> Result<(), String> {
        for step in &self.setup {
            match step {
                SetupStep::PublishEncryptionKey => env.idp.publish_encryption_key().await?,
                SetupStep::PublishWeakKey => {
                    let idp = env
                        .idp
                        .in_process()
                        .ok_or("publishing a weak key needs the mock IdP in this process")?;
                    let jwk = mock_idp::attack::rsa_public_jwk(&weak_pem(), "weak-1024")
                        .map_err(|e| e.to_string())?;
                    idp.issuer().publish_jwk(jwk);
                }
            }
        }
        Ok(())
    }

    /// How this case's proof is sent, when it has one.
    pub fn dpop_sending(&self) -> Option<Sending> {
        let recipe = self.dpop.as_ref()?;
        serde_json::from_value::<ProofRecipe>(recipe.clone())
            .ok()
            .map(|recipe| recipe.send)
    }

    /// The `DPoP` header values this case sends with `token` to `env` (none without a recipe).
    pub async fn proofs(&self, env: &Target<'_>, token: &str) -> Vec<String> {
        let Some(recipe) = &self.dpop else {
            return Vec::new();
        };
        let places = Placeholders::new(env).await;
        let recipe: ProofRecipe = serde_json::from_value(places.fill_value(recipe))
            .unwrap_or_else(|e| panic!("{}: the proof recipe: {e}", self.title));
        let proof = recipe.proof("POST", env.endpoint, token, env.clock.now());
        match recipe.send {
            Sending::None => Vec::new(),
            Sending::Once | Sending::Replayed => vec![proof],
            Sending::Twice => vec![proof.clone(), proof],
        }
    }

    /// The credential this case sends.
    pub async fn credential(&self, env: &Target<'_>) -> String {
        match (&self.credential, &self.token) {
            (Some(Credential::Literal(text)), _) => text.clone(),
            (Some(Credential::Filler(length)), _) => "a".repeat(*length),
            (None, Some(recipe)) => {
                let places = Placeholders::new(env).await;
                let mut recipe = places.fill_value(recipe);
                // The IdP's default audience may not be the server's (an IdP already running):
                // a recipe that names none means the resource.
                if recipe.get("audience").is_none()
                    && let Some(members) = recipe.as_object_mut()
                {
                    members.insert("audience".into(), Value::String(places.resource.clone()));
                }
                // The corpus grants `mcp:tools`, what the suite's server requires; another
                // server's required scopes take its place.
                if recipe["scope"] == "mcp:tools" && env.scopes != ["mcp:tools"] {
                    recipe["scope"] = Value::String(env.scopes.join(" "));
                }
                if let Err(e) = serde_json::from_value::<Forgery>(recipe.clone()) {
                    panic!("{}: the token recipe: {e}", self.title);
                }
                let token = env
                    .idp
                    .forge(self.signed_by_tenant.as_deref(), &recipe)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", self.title));
                match self.transform {
                    Some(transform) => apply(transform, &token, &places),
                    None => token,
                }
            }
            (None, None) => panic!("{}: neither a token nor a credential", self.title),
        }
    }
}

/// The values placeholders in case files stand for.
struct Placeholders {
    issuer: String,
    resource: String,
    idp: String,
    port: String,
    kid: String,
    exp: String,
    enc_kid: String,
    /// Now, by the IdP's clock.
    now: i64,
}

impl Placeholders {
    async fn new(env: &Target<'_>) -> Self {
        let jwks = env.idp.jwks().await;
        let now = env.idp.now().await;
        let enc_kid = jwks["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["use"] == "enc")
            .and_then(|k| k["kid"].as_str())
            .unwrap_or("publish_encryption_key first")
            .to_owned();
        Self {
            issuer: env.idp.url(),
            resource: env.resource.to_owned(),
            idp: env.idp.url(),
            port: env.resource_port(),
            kid: env.idp.current_kid().await,
            exp: (now + 300).to_string(),
            enc_kid,
            now,
        }
    }

    fn fill(&self, text: &str) -> String {
        let text = text
            .replace("$PROOF_JKT", crate::fixture_key(proof::PROOF_KEY).kid())
            .replace("$ISSUER_UPPER", &self.issuer.to_uppercase())
            .replace("$ISSUER", &self.issuer)
            .replace(
                "$RESOURCE_SPELLED_OTHERWISE",
                &spelled_otherwise(&self.resource),
            )
            .replace("$RESOURCE", &self.resource)
            .replace("$IDP", &self.idp)
            .replace("$PORT", &self.port)
            .replace("$ENC_KID", &self.enc_kid)
            .replace("$KID", &self.kid)
            .replace("$EXP", &self.exp);
        if text.contains("$WEAK_KEY_PEM") {
            text.replace("$WEAK_KEY_PEM", &weak_pem())
        } else {
            text
        }
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

fn apply(transform: Transform, token: &str, places: &Placeholders) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature) = (
        parts[0],
        parts[1],
        parts.get(2).copied().unwrap_or_default(),
    );
    match transform {
        Transform::StripSignature => format!("{header}.{payload}."),
        Transform::TamperPayload => {
            let claims = json!({"iss": places.issuer, "sub": "admin", "aud": places.resource, "scope": "mcp:tools admin", "exp": places.now + 86_400});
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
            // The last character of a signature whose length is not a multiple of 3 carries
            // unused low bits, which canonical base64url leaves at zero: set the lowest one, so
            // a lenient decoder would read the very same signature bytes.
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut bytes = signature.as_bytes().to_vec();
            assert_ne!(signature.len() % 4, 0, "the signature has no unused bits");
            let last = bytes.last_mut().unwrap();
            let index = ALPHABET.iter().position(|c| c == last).unwrap();
            *last = ALPHABET[index | 1];
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

/// The same URL as `resource` spelled otherwise, as RFC 3986 §6.2.2 normalises it back: scheme
/// and host in upper case, a `/./` dot segment, the last segment's first character escaped, and
/// a query and fragment (which `htu` comparison ignores).
fn spelled_otherwise(resource: &str) -> String {
    let Ok(url) = url::Url::parse(resource) else {
        return resource.to_owned();
    };
    let host = url.host_str().unwrap_or_default().to_uppercase();
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path();
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    let mut chars = last.chars();
    let escaped = match chars.next() {
        Some(first) if first.is_ascii_alphanumeric() => {
            format!("%{:02X}{}", u32::from(first), chars.as_str())
        }
        _ => last.to_owned(),
    };
    format!(
        "{}://{host}{port}{parent}/./{escaped}?x=1#f",
        url.scheme().to_uppercase()
    )
}
