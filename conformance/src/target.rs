//! A server under test as the corpus and the checks see it: where requests go, which mock IdP
//! issues its tokens, and what a valid token needs. Our own server ([`crate::TestEnv::target`])
//! and any other (`conformance check --url`) are both a `Target`: one corpus, one runner.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth_server::Clock;
use mock_idp::MockIdp;
use mock_idp::attack::Forgery;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

/// A server under test.
pub struct Target<'a> {
    /// The MCP endpoint requests are sent to.
    pub endpoint: &'a str,
    /// The resource (audience) its tokens are minted for.
    pub resource: &'a str,
    /// The IdP whose tokens it trusts.
    pub idp: Idp<'a>,
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
        self.token_with(subject, &self.scopes).await
    }

    /// A valid token for `subject` with `scopes` (and the resource as audience).
    pub async fn token_with(&self, subject: &str, scopes: &[String]) -> String {
        let recipe =
            json!({"subject": subject, "audience": self.resource, "scope": scopes.join(" ")});
        self.idp
            .forge(None, &recipe)
            .await
            .unwrap_or_else(|e| panic!("the mock IdP mints: {e}"))
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

/// The mock IdP a target trusts: in this process, or one already running, driven through its
/// admin API (`mock-idp --admin on`).
#[derive(Clone, Copy)]
pub enum Idp<'a> {
    /// In this process.
    InProcess(&'a MockIdp),
    /// Already running.
    Remote(&'a RemoteIdp),
}

/// A mock IdP already running, at its root issuer URL.
#[derive(Debug, Clone)]
pub struct RemoteIdp {
    /// Its issuer, `http://host:port`.
    pub url: String,
    http: reqwest::Client,
}

impl RemoteIdp {
    /// The mock IdP at `url`; fails unless its admin API answers.
    ///
    /// # Errors
    /// When the admin API does not answer (start it with `--admin on`).
    pub async fn connect(url: &str) -> Result<Self, String> {
        let idp = Self {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        };
        idp.now()
            .await
            .map(|_| idp.clone())
            .map_err(|e| format!("{url} is not a mock IdP with its admin API on ({e})"))
    }

    async fn now(&self) -> Result<i64, String> {
        let clock: Value = self.get(&format!("{}/admin/clock", self.url)).await?;
        clock["now"]
            .as_i64()
            .ok_or_else(|| format!("no clock: {clock}"))
    }

    async fn get(&self, url: &str) -> Result<Value, String> {
        let response = self.http.get(url).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("{url}: {}", response.status()));
        }
        response.json().await.map_err(|e| e.to_string())
    }

    fn base(&self, tenant: Option<&str>) -> String {
        match tenant {
            Some(tenant) => format!("{}/{tenant}", self.url),
            None => self.url.clone(),
        }
    }
}

impl Idp<'_> {
    /// The root issuer's URL.
    pub fn url(&self) -> String {
        match self {
            Self::InProcess(idp) => idp.url().to_owned(),
            Self::Remote(idp) => idp.url.clone(),
        }
    }

    /// The IdP in this process, when it is: what a few corpus cases need (publishing a key the
    /// admin API cannot).
    pub fn in_process(&self) -> Option<&MockIdp> {
        match self {
            Self::InProcess(idp) => Some(idp),
            Self::Remote(_) => None,
        }
    }

    /// A token from a forgery `recipe` (`mock_idp::attack::Forgery`'s JSON), signed at `tenant`
    /// (or the root issuer).
    ///
    /// # Errors
    /// When the recipe is refused or the IdP cannot sign.
    pub async fn forge(&self, tenant: Option<&str>, recipe: &Value) -> Result<String, String> {
        match self {
            Self::InProcess(idp) => {
                let forgery: Forgery =
                    serde_json::from_value(recipe.clone()).map_err(|e| e.to_string())?;
                let issuer = match tenant {
                    Some(tenant) => idp.tenant(tenant).await.map_err(|e| e.to_string())?,
                    None => idp.issuer().clone(),
                };
                issuer.forge(&forgery).await.map_err(|e| e.to_string())
            }
            Self::Remote(idp) => {
                let response = idp
                    .http
                    .post(format!("{}/admin/mint", idp.base(tenant)))
                    .json(recipe)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status();
                let body: Value = response.json().await.map_err(|e| e.to_string())?;
                body["access_token"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("mint: {status} {body}"))
            }
        }
    }

    /// Now, by the IdP's clock.
    pub async fn now(&self) -> i64 {
        match self {
            Self::InProcess(idp) => idp.clock().now(),
            Self::Remote(idp) => idp.now().await.unwrap_or_default(),
        }
    }

    /// The `kid` the root issuer signs with now.
    pub async fn current_kid(&self) -> String {
        match self {
            Self::InProcess(idp) => idp.issuer().current_kid(),
            Self::Remote(_) => {
                let token = self.forge(None, &json!({})).await.unwrap_or_default();
                token
                    .split('.')
                    .next()
                    .and_then(|header| URL_SAFE_NO_PAD.decode(header).ok())
                    .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
                    .and_then(|header| header["kid"].as_str().map(str::to_owned))
                    .unwrap_or_default()
            }
        }
    }

    /// The root issuer's JWKS.
    pub async fn jwks(&self) -> Value {
        match self {
            Self::InProcess(idp) => idp.issuer().jwks(),
            Self::Remote(idp) => idp
                .get(&format!("{}/jwks", idp.url))
                .await
                .unwrap_or_default(),
        }
    }

    /// Publishes a `use: enc` key at the root issuer (J07).
    ///
    /// # Errors
    /// When the IdP refuses.
    pub async fn publish_encryption_key(&self) -> Result<(), String> {
        match self {
            Self::InProcess(idp) => idp
                .issuer()
                .publish_encryption_key()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::Remote(idp) => idp
                .http
                .post(format!("{}/admin/encryption-key", idp.url))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// How often `tenant`'s JWKS was fetched.
    ///
    /// # Errors
    /// When the counters cannot be read.
    pub async fn jwks_fetches(&self, tenant: &str) -> Result<u64, String> {
        match self {
            Self::InProcess(idp) => Ok(idp
                .tenant(tenant)
                .await
                .map_err(|e| e.to_string())?
                .requests(mock_idp::Endpoint::Jwks)),
            Self::Remote(idp) => {
                let counters = idp
                    .get(&format!("{}/admin/counters", idp.base(Some(tenant))))
                    .await?;
                Ok(counters[mock_idp::Endpoint::Jwks.as_str()]
                    .as_u64()
                    .unwrap_or_default())
            }
        }
    }
}
