//! Registered clients and client authentication (RFC 6749 §2.3): `client_secret_basic` and
//! `client_secret_post`, exactly one per request, secrets compared in constant time.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::error::{IdpError, OAuthError, OAuthErrorCode};

mod address_policy;
mod bounded;
mod documents;
mod registry;
pub(crate) use address_policy::AddressPolicy;
pub(crate) use registry::{ClientRegistry, Lookup};

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

    pub(crate) fn matches(&self, presented: &str) -> bool {
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

/// A client of the IdP: confidential (with a secret: `client_secret_basic` or `client_secret_post`)
/// or public (no secret: `none`, and PKCE is its proof), for the client-credentials grant, the
/// authorization-code grant, or both.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The `client_id`; also the `sub` of its client-credentials tokens (RFC 9068 §2.2).
    pub client_id: String,
    /// The shared secret; `None` for a public client.
    #[serde(default)]
    pub client_secret: Option<ClientSecret>,
    /// Scopes it may request; any other gets `invalid_scope`. Empty: the IdP's scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Scopes granted when it requests none (RFC 6749 §3.3); all of `scopes` when absent.
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    /// Resources (RFC 8707) it may request; they become `aud`. The first is the default audience.
    /// Empty: the IdP's resources.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Where it may be sent back after sign-in (exact match; loopback ports may vary, RFC 8252).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The grants it may use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<GrantType>,
    /// Extra claims put into each of its tokens (`uid`, `cid`, `groups`, ...).
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// A human-readable name (from registration), shown on the login page.
    #[serde(default)]
    pub client_name: Option<String>,
}

/// The OAuth grants a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §6, rotated on every use.
    RefreshToken,
}

impl GrantType {
    /// The `grant_type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// The grant a `grant_type` value names, if this IdP supports it.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        [
            Self::ClientCredentials,
            Self::AuthorizationCode,
            Self::RefreshToken,
        ]
        .into_iter()
        .find(|grant| grant.as_str() == value)
    }
}

/// `http` to a loopback host (`localhost`, `127.0.0.1`, `[::1]`): where a native app listens for
/// its redirect (RFC 8252 §7.3).
pub(crate) fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// `https`, or `http` to loopback: what redirect URIs and client ID metadata documents may use.
pub(crate) fn is_https_or_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "https" || is_loopback_http(url)
}

fn default_grant_types() -> Vec<GrantType> {
    vec![GrantType::ClientCredentials]
}

impl Client {
    /// A confidential client-credentials client with no scopes, no extra claims and `resource` as
    /// its only audience.
    pub fn new(
        client_id: impl Into<String>,
        secret: impl Into<String>,
        resource: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: Some(ClientSecret::new(secret)),
            scopes: Vec::new(),
            default_scopes: None,
            resources: vec![resource.into()],
            redirect_uris: Vec::new(),
            grant_types: default_grant_types(),
            claims: Map::new(),
            client_name: None,
        }
    }

    /// A public client (no secret, PKCE) signing users in through `redirect_uris`, with refresh
    /// tokens; its scopes and resources are the IdP's.
    pub fn public<S: Into<String>>(
        client_id: impl Into<String>,
        redirect_uris: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: None,
            scopes: Vec::new(),
            default_scopes: None,
            resources: Vec::new(),
            redirect_uris: redirect_uris.into_iter().map(Into::into).collect(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            claims: Map::new(),
            client_name: None,
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

    /// Allows more redirect URIs.
    pub fn redirect_uris<S: Into<String>>(mut self, uris: impl IntoIterator<Item = S>) -> Self {
        self.redirect_uris.extend(uris.into_iter().map(Into::into));
        self
    }

    /// Sets the grants it may use.
    pub fn grant_types(mut self, grants: impl IntoIterator<Item = GrantType>) -> Self {
        self.grant_types = grants.into_iter().collect();
        self
    }

    /// Adds a claim to every token of this client.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Whether it has no secret (token endpoint authentication `none`).
    pub fn is_public(&self) -> bool {
        self.client_secret.is_none()
    }

    /// Whether it may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Checks the client is usable: an id; a non-empty secret unless public; a resource for the
    /// client-credentials grant; a redirect URI for the authorization-code grant; default scopes
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
        if self.client_secret.as_ref().is_some_and(|s| s.0.is_empty()) {
            return invalid("the client secret is empty");
        }
        if self.allows(GrantType::ClientCredentials) && self.is_public() {
            return invalid("a public client cannot use client_credentials");
        }
        if self.allows(GrantType::ClientCredentials) && self.resources.is_empty() {
            return invalid("a client_credentials client needs at least one resource");
        }
        if self.allows(GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return invalid("an authorization_code client needs at least one redirect URI");
        }
        if !self.scopes.is_empty()
            && self
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

    /// Whether `uri` is one of its redirect URIs: exactly, or, for an `http` loopback URI, with
    /// any port (RFC 8252 §7.3: native apps listen on an ephemeral port).
    pub(crate) fn accepts_redirect(&self, uri: &str) -> bool {
        self.redirect_uris
            .iter()
            .any(|registered| registered == uri || same_loopback_redirect(registered, uri))
    }
}

fn same_loopback_redirect(registered: &str, presented: &str) -> bool {
    let (Ok(mut registered), Ok(mut presented)) =
        (url::Url::parse(registered), url::Url::parse(presented))
    else {
        return false;
    };
    if !is_loopback_http(&registered) || !is_loopback_http(&presented) {
        return false;
    }
    // Setting the port of an http URL with a host cannot fail.
    let _ = registered.set_port(None);
    let _ = presented.set_port(None);
    registered == presented
}

/// The credentials a token request carried, before they are checked.
#[derive(Debug)]
pub(crate) enum PresentedCredentials {
    /// `Authorization: Basic` (RFC 6749 §2.3.1).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the form body.
    Post { client_id: String, secret: String },
    /// Only `client_id` in the form body: a public client (RFC 6749 §2.1; PKCE proves it).
    None { client_id: String },
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
            "Some(ClientSecret([redacted]))"
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

    #[test]
    fn loopback_redirect_uris_match_on_any_port_and_others_exactly() {
        let client = Client::public("c", ["http://127.0.0.1/callback", "https://app.example/cb"]);
        assert!(client.accepts_redirect("http://127.0.0.1:51234/callback"));
        assert!(client.accepts_redirect("https://app.example/cb"));
        assert!(!client.accepts_redirect("https://app.example/cb/"));
        assert!(!client.accepts_redirect("https://app.example:8443/cb"));
        assert!(!client.accepts_redirect("http://127.0.0.1:51234/other"));
        assert!(!client.accepts_redirect("http://evil.example/callback"));
    }
}
