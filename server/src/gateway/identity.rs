//! How a gateway's upstream learns who the caller is: the `X-MCP-*` headers, or a short-lived JWT
//! the gateway signs for it (`Authorization: Bearer`, audience the upstream), which an upstream in
//! any language checks with any JWT library against the gateway's published key set.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Principal;

/// What the upstream is told about the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CallerIdentity {
    /// `X-MCP-Subject`, `X-MCP-Issuer`, `X-MCP-Client-Id` and `X-MCP-Scopes`.
    #[default]
    Headers,
    /// `Authorization: Bearer` with a JWT the gateway signs: `iss` the gateway's origin, `aud`
    /// the upstream's URL, `sub`, `scope`, `client_id`, `idp` (the token's issuer), one minute
    /// of validity. The key set is served at `/.well-known/jwks.json`.
    SignedJwt(Arc<IdentitySigner>),
}

/// Why a signing key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    /// Not one PEM block.
    #[error("the signing key is not PEM: {0}")]
    Pem(String),
    /// Not an unencrypted PKCS#8 P-256 private key (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256`).
    #[error("the signing key is not a PKCS#8 P-256 private key")]
    NotP256,
}

/// The gateway's ES256 key for identity tokens, and the tokens it signed recently.
pub struct IdentitySigner {
    key: EncodingKey,
    kid: String,
    jwk: Value,
    /// Signed tokens by caller, each reused for half its lifetime: signing costs tens of
    /// microseconds, a lookup does not.
    recent: moka::sync::Cache<[u8; 32], Arc<str>>,
}

impl std::fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentitySigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PartialEq for IdentitySigner {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid
    }
}

impl Eq for IdentitySigner {}

/// How long an identity token is valid: long enough for one request to reach the upstream, short
/// enough that a copy is worth little.
const LIFETIME: Duration = Duration::from_secs(60);

impl IdentitySigner {
    /// A new key, for this process only: upstreams behind several gateway replicas need them to
    /// share one ([`IdentitySigner::from_pem`]).
    ///
    /// # Errors
    /// [`SigningKeyError::NotP256`] if the key cannot be made (it can always be).
    pub fn generate() -> Result<Self, SigningKeyError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| SigningKeyError::NotP256)?;
        Self::from_der(der.as_ref())
    }

    /// The key in `pem` (an unencrypted PKCS#8 P-256 private key).
    ///
    /// # Errors
    /// [`SigningKeyError`] when it is not one.
    pub fn from_pem(pem: &str) -> Result<Self, SigningKeyError> {
        let block = pem::parse(pem).map_err(|e| SigningKeyError::Pem(e.to_string()))?;
        Self::from_der(block.contents())
    }

    fn from_der(der: &[u8]) -> Result<Self, SigningKeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| SigningKeyError::NotP256)?;
        // An uncompressed point: 0x04, then x and y of 32 bytes each.
        let point = pair.public_key().as_ref();
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(SigningKeyError::NotP256);
        };
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        // RFC 7638: the thumbprint of the required members, in lexicographic order.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canonical.as_bytes(),
        ));
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"});
        Ok(Self {
            key: EncodingKey::from_ec_der(der),
            kid,
            jwk,
            recent: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(LIFETIME / 2)
                .build(),
        })
    }

    /// The public key set upstreams verify identity tokens with (RFC 7517).
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A token saying who `principal` is, for `audience`, issued by `issuer` at `now` (seconds
    /// since the epoch); one signed less than half a lifetime ago is reused.
    pub(crate) fn token_for(
        &self,
        principal: &Principal,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<Arc<str>, jsonwebtoken::errors::Error> {
        let scope = super::scope_list(principal);
        let client_id = principal.client_id();
        // Everything the token says, each part length-prefixed, hashed: no two callers (or
        // upstreams) share a key, and a key is 32 bytes whatever the claims hold.
        let mut key_input = Vec::new();
        for part in [
            issuer,
            audience,
            principal.issuer(),
            principal.subject(),
            client_id.unwrap_or("\0none"),
            scope.as_str(),
        ] {
            key_input.extend_from_slice(&(part.len() as u64).to_be_bytes());
            key_input.extend_from_slice(part.as_bytes());
        }
        let cache_key = crate::digest::sha256(&key_input);
        if let Some(token) = self.recent.get(&cache_key) {
            return Ok(token);
        }
        let lifetime = i64::try_from(LIFETIME.as_secs()).unwrap_or(60);
        // Never valid longer than the caller's own token.
        let expires = principal
            .claims()
            .expires_at
            .map_or(now.saturating_add(lifetime), |exp| {
                exp.min(now.saturating_add(lifetime))
            });
        let claims = IdentityClaims {
            iss: issuer,
            aud: audience,
            sub: principal.subject(),
            iat: now,
            exp: expires,
            scope: (!scope.is_empty()).then_some(scope.as_str()),
            client_id,
            idp: principal.issuer(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        let token: Arc<str> = jsonwebtoken::encode(&header, &claims, &self.key)?.into();
        self.recent.insert(cache_key, Arc::clone(&token));
        Ok(token)
    }
}

#[derive(Serialize)]
struct IdentityClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    idp: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::VerifiedBy;
    use crate::auth::claims::VerifiedClaims;

    fn principal(subject: &str, scopes: &[&str], expires_at: i64) -> Principal {
        Principal::new(
            Arc::new(VerifiedClaims {
                issuer: "https://idp.example".into(),
                subject: subject.into(),
                audience: json!("https://gw.example/mcp"),
                expires_at: Some(expires_at),
                issued_at: None,
                token_id: None,
                client_id: Some("agent".into()),
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                uid: None,
                dpop_jkt: None,
            }),
            VerifiedBy::Jwt,
        )
    }

    fn claims_of(token: &str) -> Value {
        let payload = token.split('.').nth(1).unwrap_or_default();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default())
            .unwrap_or_default()
    }

    /// A role name with a space stays one scope; the token never outlives the caller's; each
    /// upstream and each caller gets its own token, while one caller's is reused.
    #[test]
    fn an_identity_token_says_exactly_who_for_whom_and_no_longer_than_the_callers() {
        let Ok(signer) = IdentitySigner::generate() else {
            panic!("a key");
        };
        let now = 1_800_000_000;
        let alice = principal("alice", &["mcp:tools", "Task Admin"], now + 10);
        let token = |who: &Principal, audience: &str| {
            signer
                .token_for(who, "https://gw.example", audience, now)
                .map(|t| t.to_string())
                .unwrap_or_default()
        };
        let first = token(&alice, "http://a/mcp");
        let claims = claims_of(&first);
        assert_eq!(claims["scope"], "mcp:tools Task%20Admin");
        assert_eq!(claims["exp"], now + 10, "capped at the caller's exp");
        assert_eq!(claims["aud"], "http://a/mcp");
        assert_eq!(first, token(&alice, "http://a/mcp"), "reused");
        assert_ne!(first, token(&alice, "http://b/mcp"), "another upstream");
        let split = principal("alice", &["mcp:tools", "Task", "Admin"], now + 10);
        assert_ne!(first, token(&split, "http://a/mcp"), "other scopes");
        let later = principal("alice", &["mcp:tools"], now + 3_600);
        assert_eq!(claims_of(&token(&later, "http://a/mcp"))["exp"], now + 60);
    }

    #[test]
    fn a_key_is_a_pkcs8_p256_key() {
        assert!(IdentitySigner::generate().is_ok());
        assert!(matches!(
            IdentitySigner::from_pem("not pem"),
            Err(SigningKeyError::Pem(_))
        ));
        let rsa = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/rsa-1.pem");
        let rsa = std::fs::read_to_string(rsa).unwrap_or_default();
        assert_eq!(
            IdentitySigner::from_pem(&rsa),
            Err(SigningKeyError::NotP256)
        );
        let p256 = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-1.pem");
        let p256 = std::fs::read_to_string(p256).unwrap_or_default();
        let signer = IdentitySigner::from_pem(&p256).map_err(|e| e.to_string());
        assert!(signer.is_ok(), "{signer:?}");
    }
}
