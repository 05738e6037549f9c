//! A server under test as the corpus and the checks see it: where requests go, which mock IdP
//! issues its tokens, and what a valid token needs. Our own server ([`crate::TestEnv::target`])
//! and any other (`conformance check --url`) are both a `Target`: one corpus, one runner.

use mcp_oauth_server::Clock;
use mock_idp::{AccessTokenSpec, MockIdp};
use reqwest::header::{HeaderMap, HeaderValue};

/// A server under test.
pub struct Target<'a> {
    /// The MCP endpoint requests are sent to.
    pub endpoint: &'a str,
    /// The resource (audience) its tokens are minted for.
    pub resource: &'a str,
    /// The IdP whose tokens it trusts.
    pub idp: &'a MockIdp,
    /// A client that follows no redirects.
    pub http: &'a reqwest::Client,
    /// The clock proofs are dated by (the server's, when the test controls it).
    pub clock: &'a dyn Clock,
    /// The scopes a valid token carries.
    pub scopes: Vec<String>,
}

impl Target<'_> {
    /// A valid token for `subject`: the resource as audience, the scopes.
    pub async fn token_for(&self, subject: &str) -> String {
        self.idp
            .issuer()
            .mint(
                &AccessTokenSpec::user(subject)
                    .audience(self.resource)
                    .scope(self.scopes.iter().cloned()),
            )
            .await
            .expect("the mock IdP mints")
    }

    /// Headers of an MCP POST: JSON, both accepted types, protocol version, and `token` when
    /// given.
    pub fn mcp_headers(&self, token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(crate::PROTOCOL_VERSION),
        );
        if let Some(token) = token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            headers.insert("authorization", value);
        }
        headers
    }

    /// The status of an `initialize` with `token`.
    pub async fn initialize_status(&self, token: Option<&str>) -> reqwest::StatusCode {
        self.http
            .post(self.endpoint)
            .headers(self.mcp_headers(token))
            .json(&crate::initialize_request())
            .send()
            .await
            .map(|r| r.status())
            .unwrap_or(reqwest::StatusCode::BAD_GATEWAY)
    }

    /// The port of the resource URL (the corpus's `$PORT`; empty for the scheme's default).
    pub fn resource_port(&self) -> String {
        url::Url::parse(self.resource)
            .ok()
            .and_then(|url| url.port())
            .map(|port| port.to_string())
            .unwrap_or_default()
    }
}
