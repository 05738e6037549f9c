//! Access tokens as RFC 9068 profiles them: header `typ: at+jwt` (or `JWT`, as Entra ID and
//! Keycloak send) with `kid`; claims `iss`, `sub`, `aud`, `client_id`, `scope`, `iat`, `exp`,
//! `jti`, plus whatever a client or test adds.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::IdpError;

/// The `typ` header an issuer puts on its access tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenTyp {
    /// `at+jwt`, as RFC 9068 §2.1 requires.
    #[default]
    #[serde(rename = "at+jwt")]
    AtJwt,
    /// `JWT`, as Entra ID, Keycloak and Okta send, so servers can be tested against that shape.
    #[serde(rename = "JWT")]
    Jwt,
}

impl TokenTyp {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtJwt => "at+jwt",
            Self::Jwt => "JWT",
        }
    }
}

/// The `aud` claim: one audience as a string, or several as an array (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "https://rs/mcp"`.
    One(String),
    /// `"aud": ["https://a", "https://rs/mcp"]`.
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(value: &str) -> Self {
        Self::One(value.to_owned())
    }
}

impl From<String> for Audience {
    fn from(value: String) -> Self {
        Self::One(value)
    }
}

impl From<Vec<String>> for Audience {
    fn from(value: Vec<String>) -> Self {
        Self::Many(value)
    }
}

/// What a minted access token says, with times relative to the IdP's clock.
///
/// `AccessTokenSpec::user("alice")` and `AccessTokenSpec::machine("svc")` are valid tokens out
/// of the box (5 minutes, the issuer's default audience); each setter changes one thing.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessTokenSpec {
    pub(crate) subject: String,
    pub(crate) client_id: String,
    pub(crate) audience: Option<Audience>,
    pub(crate) scope: Vec<String>,
    pub(crate) issued_at_offset: i64,
    pub(crate) expires_at_offset: i64,
    pub(crate) not_before_offset: Option<i64>,
    pub(crate) claims: Map<String, Value>,
}

impl AccessTokenSpec {
    /// A token for an end user, obtained through client `mcp-client`.
    pub fn user(subject: impl Into<String>) -> Self {
        Self::new(subject.into(), "mcp-client".into())
    }

    /// A client-credentials token: `sub` and `client_id` are both the client (RFC 9068 §2.2).
    pub fn machine(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        Self::new(client_id.clone(), client_id)
    }

    fn new(subject: String, client_id: String) -> Self {
        Self {
            subject,
            client_id,
            audience: None,
            scope: Vec::new(),
            issued_at_offset: 0,
            expires_at_offset: DEFAULT_LIFETIME_SECS,
            not_before_offset: None,
            claims: Map::new(),
        }
    }

    /// Sets `aud` (default: the issuer's default audience).
    pub fn audience(mut self, audience: impl Into<Audience>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the granted scopes (`scope`, space-separated; omitted when empty).
    pub fn scope<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scope = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `client_id`.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Sets the lifetime: `exp` = now + `lifetime`.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_at_offset = secs(lifetime);
        self
    }

    /// Makes the token expired `ago` before now (issued a minute before that).
    pub fn expired_since(mut self, ago: Duration) -> Self {
        self.expires_at_offset = -secs(ago);
        self.issued_at_offset = self.expires_at_offset.saturating_sub(60);
        self
    }

    /// Sets `nbf` = now + `offset` (a future `nbf` makes the token not yet valid).
    pub fn not_before_in(mut self, offset: Duration) -> Self {
        self.not_before_offset = Some(secs(offset));
        self
    }

    /// Sets `iat` = now + `offset` seconds (negative: in the past).
    pub fn issued_at_offset(mut self, offset_secs: i64) -> Self {
        self.issued_at_offset = offset_secs;
        self
    }

    /// Adds or overrides a claim; it wins over every claim above.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// The claims of this token, as the issuer at `issuer_url` signs them at `now`.
    pub(crate) fn claims(
        &self,
        issuer_url: &str,
        default_audience: &str,
        now: i64,
    ) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), issuer_url.into());
        claims.insert("sub".into(), self.subject.clone().into());
        let audience = self
            .audience
            .clone()
            .unwrap_or_else(|| Audience::from(default_audience));
        claims.insert(
            "aud".into(),
            serde_json::to_value(audience).unwrap_or(Value::Null),
        );
        claims.insert("client_id".into(), self.client_id.clone().into());
        if !self.scope.is_empty() {
            claims.insert("scope".into(), self.scope.join(" ").into());
        }
        claims.insert(
            "iat".into(),
            now.saturating_add(self.issued_at_offset).into(),
        );
        if let Some(nbf) = self.not_before_offset {
            claims.insert("nbf".into(), now.saturating_add(nbf).into());
        }
        claims.insert(
            "exp".into(),
            now.saturating_add(self.expires_at_offset).into(),
        );
        claims.insert("jti".into(), new_jti().into());
        claims.extend(self.claims.clone());
        claims
    }
}

/// Signs a compact JWS over exactly these header and payload bytes, so tests can sign headers
/// jsonwebtoken's `Header` type cannot express (`crit`, duplicate names, `alg: none`...).
pub(crate) fn sign_compact(
    header: &[u8],
    payload: &[u8],
    key: &EncodingKey,
    alg: jsonwebtoken::Algorithm,
) -> Result<String, IdpError> {
    let input = signing_input(header, payload);
    let signature =
        jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).map_err(IdpError::Signing)?;
    Ok(format!("{input}.{signature}"))
}

/// `base64url(header) . base64url(payload)`: the JWS signing input (RFC 7515 §5.1).
pub(crate) fn signing_input(header: &[u8], payload: &[u8]) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// A fresh `jti`: 128 random bits, hex.
pub(crate) fn new_jti() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// Five minutes: long enough for a demo request, short enough to show expiry handling.
const DEFAULT_LIFETIME_SECS: i64 = 300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_follow_rfc_9068_with_times_relative_to_now() {
        let spec = AccessTokenSpec::machine("svc")
            .scope(["a", "b"])
            .expires_in(Duration::from_secs(60));
        let claims = spec.claims("https://as", "https://rs/mcp", 1_000);
        assert_eq!(claims["iss"], "https://as");
        assert_eq!(claims["sub"], "svc");
        assert_eq!(claims["client_id"], "svc");
        assert_eq!(claims["aud"], "https://rs/mcp");
        assert_eq!(claims["scope"], "a b");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_060);
        assert_eq!(claims["jti"].as_str().map(str::len), Some(32));
        assert!(claims.get("nbf").is_none());
    }

    #[test]
    fn extra_claims_override_the_defaults_and_arrays_stay_arrays() {
        let spec = AccessTokenSpec::user("alice")
            .audience(vec!["https://a".to_owned(), "https://b".to_owned()])
            .claim("iss", "https://elsewhere");
        let claims = spec.claims("https://as", "https://rs", 0);
        assert_eq!(claims["iss"], "https://elsewhere");
        assert_eq!(claims["aud"], serde_json::json!(["https://a", "https://b"]));
        assert!(
            claims.get("scope").is_none(),
            "no scope claim when no scope was granted"
        );
    }

    #[test]
    fn expired_tokens_are_issued_before_they_expire() {
        let claims = AccessTokenSpec::user("a")
            .expired_since(Duration::from_secs(600))
            .claims("i", "a", 10_000);
        assert_eq!(claims["exp"], 9_400);
        assert_eq!(claims["iat"], 9_340);
    }
}
