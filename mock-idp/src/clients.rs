//! Registered clients and client authentication (RFC 6749 §2.3): `client_secret_basic` and
//! `client_secret_post`, exactly one per request, secrets compared in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::error::{IdpError, OAuthError, OAuthErrorCode};

/// A client secret. Not `Display` or `Serialize`, and `Debug` prints `[redacted]`, so it cannot
/// reach a log line by accident; [`ClientSecret::expose`] is the only way to the text.
#[derive(Clone)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for printing the demo's ready-made credentials and for tests.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

impl<'de> Deserialize<'de> for ClientSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// A registered confidential client: what it may ask for and what its tokens carry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The `client_id`; also the `sub` of its client-credentials tokens (RFC 9068 §2.2).
    pub client_id: String,
    /// The shared secret for `client_secret_basic` / `client_secret_post`.
    pub client_secret: ClientSecret,
    /// Scopes it may request; any other gets `invalid_scope`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes granted when it requests none (RFC 6749 §3.3); all of `scopes` when absent.
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    /// Resources (RFC 8707) it may request; they become `aud`. The first is the default audience.
    pub resources: Vec<String>,
    /// Extra claims put into each of its tokens (`uid`, `cid`, `groups`, ...).
    #[serde(default)]
    pub claims: Map<String, Value>,
}

impl Client {
    /// A client with no scopes, no extra claims and `resource` as its only audience.
    pub fn new(
        client_id: impl Into<String>,
        secret: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: ClientSecret::new(secret),
            scopes: Vec::new(),
            default_scopes: None,
            resources: vec![resource.into()],
            claims: Map::new(),
        }
    }

    /// The built-in demo client: `demo-client` / `demo-secret`, for the MCP server at
    /// `http://localhost:8000/mcp` (the Python sample's endpoint) or its 127.0.0.1 spelling.
    pub fn demo() -> Self {
        Self::new("demo-client", "demo-secret", "http://localhost:8000/mcp")
            .resources(["http://127.0.0.1:8000/mcp"])
            .scopes(["mcp:tools", "mcp:read", "mcp:write"])
            .default_scopes(["mcp:tools"])
    }

    /// Allows more scopes.
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes.extend(scopes.into_iter().map(Into::into));
        self
    }

    /// Sets the scopes granted when none are requested.
    pub fn default_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.default_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Allows more resources (audiences).
    pub fn resources<S: Into<String>>(mut self, resources: impl IntoIterator<Item = S>) -> Self {
        self.resources.extend(resources.into_iter().map(Into::into));
        self
    }

    /// Adds a claim to every token of this client.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Checks the client is usable: an id, a secret, at least one resource, and default scopes
    /// that are all allowed.
    ///
    /// # Errors
    /// [`IdpError::InvalidClient`] naming the client and what is wrong.
    pub fn validate(&self) -> Result<(), IdpError> {
        let invalid = |problem| {
            Err(IdpError::InvalidClient {
                client_id: self.client_id.clone(),
                problem,
            })
        };
        if self.client_id.is_empty() || self.client_id.contains(':') {
            return invalid("the client id must be non-empty and have no ':'");
        }
        if self.client_secret.0.is_empty() {
            return invalid("the client secret is empty");
        }
        if self.resources.is_empty() {
            return invalid("a client needs at least one resource");
        }
        if self
            .granted_by_default()
            .iter()
            .any(|s| !self.scopes.contains(s))
        {
            return invalid("a default scope is not among the allowed scopes");
        }
        Ok(())
    }

    pub(crate) fn granted_by_default(&self) -> &[String] {
        self.default_scopes.as_deref().unwrap_or(&self.scopes)
    }
}

/// The credentials a token request carried, before they are checked.
#[derive(Debug)]
pub(crate) enum PresentedCredentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the form body.
    Post { client_id: String, secret: String },
}

impl PresentedCredentials {
    /// Decodes an `Authorization: Basic` value: base64 of `urlencode(id):urlencode(secret)`.
    pub(crate) fn from_basic(value: &str) -> Result<Self, OAuthError> {
        let malformed = || {
            OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                "malformed Basic credentials",
            )
        };
        let decoded = STANDARD.decode(value.trim()).map_err(|_| malformed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
        Ok(Self::Basic {
            client_id: form_decode(id).ok_or_else(malformed)?,
            secret: form_decode(secret).ok_or_else(malformed)?,
        })
    }
}

/// The clients one IdP knows.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClientRegistry {
    clients: Vec<Client>,
}

impl ClientRegistry {
    pub(crate) fn new(clients: Vec<Client>) -> Self {
        Self { clients }
    }

    pub(crate) fn all(&self) -> &[Client] {
        &self.clients
    }

    /// The client these credentials prove, or `invalid_client`. Unknown ids and wrong secrets get
    /// the same answer, so the endpoint does not reveal which client ids exist.
    pub(crate) fn authenticate(
        &self,
        presented: &PresentedCredentials,
    ) -> Result<&Client, OAuthError> {
        let (PresentedCredentials::Basic { client_id, secret }
        | PresentedCredentials::Post { client_id, secret }) = presented;
        self.clients
            .iter()
            .find(|c| c.client_id == *client_id)
            .filter(|c| c.client_secret.matches(secret))
            .ok_or_else(|| {
                OAuthError::new(
                    OAuthErrorCode::InvalidClient,
                    "client authentication failed",
                )
            })
    }
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_secret_debug_is_redacted() {
        let client = Client::new("a", "hunter2", "https://rs");
        assert_eq!(
            format!("{:?}", client.client_secret),
            "ClientSecret([redacted])"
        );
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = STANDARD.encode("my%3Aclient:s%2Bcr+t");
        let PresentedCredentials::Basic { client_id, secret } =
            PresentedCredentials::from_basic(&header).unwrap()
        else {
            panic!("expected Basic");
        };
        assert_eq!(client_id, "my:client");
        assert_eq!(secret, "s+cr t");
    }

    #[test]
    fn malformed_basic_credentials_are_an_invalid_request() {
        for bad in [
            "%%%",
            &STANDARD.encode("no-colon"),
            &STANDARD.encode([0xff, b':', 0xfe]),
        ] {
            let err = PresentedCredentials::from_basic(bad).unwrap_err();
            assert_eq!(err.error, OAuthErrorCode::InvalidRequest, "{bad}");
        }
    }

    #[test]
    fn a_default_scope_outside_the_allowed_ones_is_a_config_error() {
        let client = Client::new("a", "s", "https://rs")
            .scopes(["x"])
            .default_scopes(["y"]);
        assert!(matches!(
            client.validate(),
            Err(IdpError::InvalidClient { .. })
        ));
    }
}
