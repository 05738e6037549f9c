//! The conformance harness: a mock IdP and the MCP server on random loopback ports, in-process,
//! with the server's configuration overridable per test, an HTTP client, MCP helpers, and the
//! IdP's counters, faults and clock. Starting one costs milliseconds, so every test gets its own.
//!
//! Tests cite the spec-checklist ids they prove; `docs/conformance.md` maps ids to tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness: failing loudly is its job"
)]

pub mod attacks;
pub mod check;
pub mod coverage;
pub mod examples;
pub mod logs;
pub mod real_idp;
pub mod redis;
pub mod server;
pub mod target;
pub mod upstream;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_oauth_server::settings::Issuer;
use mcp_oauth_server::{Clock as _, OffsetClock, Server, Settings};
use mock_idp::{
    AccessTokenSpec, Client, Endpoint, Fault, IssuerSettings, KeyPair, KeySupply, MockIdp,
    MockIdpBuilder,
};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use server::{RunningServer, Tools};

/// The repository's `fixtures/` folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A fixture private key by file stem (`rsa-1`, `p256-2`, `ed25519-1`).
pub fn fixture_key(stem: &str) -> KeyPair {
    let pem = std::fs::read_to_string(fixtures_dir().join(format!("keys/{stem}.pem"))).unwrap();
    KeyPair::from_pem(&pem).unwrap()
}

/// Every strong fixture key: no test waits for key generation.
pub fn fixture_supply() -> KeySupply {
    let stems = [
        "rsa-1",
        "rsa-2",
        "rsa-3",
        "rsa-4",
        "p256-1",
        "p256-2",
        "ed25519-1",
        "ed25519-2",
    ];
    KeySupply::new(stems.into_iter().map(fixture_key))
}

/// The MCP protocol version the helpers speak.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// A mock IdP and a server trusting it.
pub struct TestEnv {
    /// The identity provider.
    pub idp: MockIdp,
    /// The settings the server runs with.
    pub settings: Settings,
    /// The server's clock (system time plus an offset the test controls).
    pub clock: OffsetClock,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The MCP endpoint as requested (`http://127.0.0.1:PORT/mcp`).
    pub endpoint: String,
    /// An HTTP client that follows no redirects.
    pub http: reqwest::Client,
    server: RunningServer,
}

/// A change to the server's settings, made once the IdP runs (its URLs have a random port).
type Configure = Box<dyn FnOnce(&mut Settings, &MockIdp)>;

/// How to set up a [`TestEnv`]. The server's settings start from [`Settings::local`] for the
/// IdP's issuer on `127.0.0.1:PORT` (resource `http://localhost:PORT/mcp`, also answering to
/// `127.0.0.1`), as the binary runs with no `MCP_RESOURCE_URL`; nothing is read from the process
/// environment.
pub struct Setup {
    idp: MockIdpBuilder,
    idp_settings: IssuerSettings,
    configure: Vec<Configure>,
    faults_at_start: Vec<(Endpoint, Fault)>,
    confidential_clients: Vec<(&'static str, &'static str)>,
    wait_ready: bool,
    tools: Tools,
}

impl Setup {
    /// Changes the mock IdP (algorithm, clients, tenants...).
    pub fn idp(mut self, change: impl FnOnce(MockIdpBuilder) -> MockIdpBuilder) -> Self {
        self.idp = change(self.idp);
        self
    }

    /// Changes the server's settings (`|s| s.transport = Transport::Stateless`).
    pub fn configure(mut self, change: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.configure
            .push(Box::new(move |settings, _| change(settings)));
        self
    }

    /// Changes the server's settings with the started IdP at hand (for its URLs).
    pub fn configure_with_idp(
        mut self,
        change: impl FnOnce(&mut Settings, &MockIdp) + 'static,
    ) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// Every MCP request needs `scopes` (as `OAUTH_REQUIRED_SCOPES` says).
    pub fn required_scopes(self, scopes: &'static [&'static str]) -> Self {
        self.configure(move |settings| {
            settings
                .scopes
                .require_for_every_request(scopes.iter().copied());
        })
    }

    /// The IdP's issuer settings (its default audience is always the server's resource).
    pub fn idp_settings(mut self, settings: IssuerSettings) -> Self {
        self.idp_settings = settings;
        self
    }

    /// Makes an IdP endpoint fail from before the server starts (clear it with
    /// `env.idp.issuer().clear_faults()`).
    pub fn idp_fault_at_start(mut self, endpoint: Endpoint, fault: Fault) -> Self {
        self.faults_at_start.push((endpoint, fault));
        self
    }

    /// Registers a confidential client for the server's resource (both loopback spellings) with
    /// the scopes `mcp:tools`, `mcp:read`, `mcp:write`: what a machine client is given.
    pub fn confidential_client(mut self, id: &'static str, secret: &'static str) -> Self {
        self.confidential_clients.push((id, secret));
        self
    }

    /// The tools the server protects (ours, `get_me`, unless said otherwise).
    pub fn tools(mut self, tools: Tools) -> Self {
        self.tools = tools;
        self
    }

    /// A gateway in front of the MCP endpoint `upstream` instead of tools of its own.
    pub fn gateway_to(mut self, upstream: &str) -> Self {
        let upstream = mcp_oauth_server::gateway::Upstream::parse(upstream).unwrap();
        self.tools = Tools::gateway();
        self.configure(move |settings| settings.upstream = Some(upstream))
    }

    /// Starts without waiting for the keys (for readiness and outage tests).
    pub fn no_wait(mut self) -> Self {
        self.wait_ready = false;
        self
    }

    /// Starts the IdP, then the server, and waits until the server is ready.
    pub async fn start(self) -> TestEnv {
        let (listener, port) = RunningServer::bind().await;
        let resource = format!("http://localhost:{port}/mcp");
        // Users signing in through the IdP ask for the server's resource in either spelling.
        let alias = format!("http://127.0.0.1:{port}/mcp");
        let mut idp = self.idp;
        for (id, secret) in self.confidential_clients {
            idp = idp.client(
                Client::new(id, secret, resource.clone())
                    .resources([alias.clone()])
                    .scopes(["mcp:tools", "mcp:read", "mcp:write"]),
            );
        }
        let idp = idp
            .resource(resource.clone())
            .resource(alias)
            .settings(IssuerSettings {
                default_audience: resource.clone(),
                ..self.idp_settings
            })
            .start()
            .await
            .unwrap();
        for (endpoint, fault) in self.faults_at_start {
            idp.issuer().set_fault(endpoint, fault);
        }
        let mut settings = Settings::local(
            Issuer::parse(idp.url()).unwrap(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        );
        for change in self.configure {
            change(&mut settings, &idp);
        }
        let clock = OffsetClock::default();
        let server =
            RunningServer::start_with(listener, settings, Arc::new(clock.clone()), self.tools)
                .await;
        let env = TestEnv {
            idp,
            endpoint: server.endpoint.clone(),
            base: server.base.clone(),
            settings: server.settings.clone(),
            clock,
            http: no_redirects(),
            server,
        };
        if self.wait_ready {
            env.wait_until_ready(Duration::from_secs(10)).await;
        }
        env
    }
}

impl TestEnv {
    /// A setup with fixture keys and the admin API on.
    pub fn setup() -> Setup {
        Setup {
            idp: MockIdp::builder().keys(fixture_supply()).admin(true),
            idp_settings: IssuerSettings::default(),
            configure: Vec::new(),
            faults_at_start: Vec::new(),
            confidential_clients: Vec::new(),
            wait_ready: true,
            tools: Tools::default(),
        }
    }

    /// The default environment.
    pub async fn start() -> Self {
        Self::setup().start().await
    }

    /// The server under test (for its readiness and settings).
    pub fn app(&self) -> &Server {
        &self.server.app
    }

    /// Polls `/readyz` until 200 or the deadline.
    pub async fn wait_until_ready(&self, deadline: Duration) {
        let ready = eventually(deadline, || async {
            self.http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        assert!(ready, "server not ready within {deadline:?}");
    }

    /// Moves the server's and the IdP's clocks forward together, so tokens minted after the
    /// move are valid for the server and cache ages, cooldowns and stale windows elapse.
    pub fn advance(&self, secs: u32) {
        self.clock.advance(i64::from(secs));
        self.idp
            .clock()
            .advance(Duration::from_secs(u64::from(secs)));
    }

    /// Stops the server's and the IdP's clocks at one instant: from then on time moves only by
    /// [`TestEnv::advance`], so a test that goes to just short of a bound is not pushed past it
    /// by a slow machine.
    pub fn freeze_clocks(&self) {
        self.clock.freeze();
        self.idp.clock().set(self.clock.now());
    }

    /// The server's canonical resource URL (`http://localhost:PORT/mcp`), the default audience.
    pub fn resource(&self) -> &str {
        self.settings.resource.url.as_str()
    }

    /// This environment as a server under test for the corpus runner: its endpoint, its IdP,
    /// its clock, tokens with `mcp:tools`.
    pub fn target(&self) -> target::Target<'_> {
        target::Target {
            endpoint: &self.endpoint,
            resource: self.resource(),
            idp: target::Idp::InProcess(&self.idp),
            http: &self.http,
            clock: &self.clock,
            scopes: vec!["mcp:tools".to_owned()],
        }
    }

    /// The RFC 9728 URL of the resource as this client spells it (`http://127.0.0.1:PORT/...`).
    pub fn metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
    }

    /// `GET` of a path on the server (`/readyz`, a well-known document), with no credentials.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// A valid user token from the root issuer.
    pub async fn token(&self) -> String {
        self.mint(AccessTokenSpec::user("alice").scope(["mcp:tools"]))
            .await
    }

    /// A token for `spec` from the root issuer.
    pub async fn mint(&self, spec: AccessTokenSpec) -> String {
        self.idp.issuer().mint(&spec).await.unwrap()
    }

    /// Headers of an MCP POST: JSON, both accepted types, protocol version, bearer token.
    pub fn mcp_headers(&self, token: Option<&str>, session: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(
            "accept",
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(
            "mcp-protocol-version",
            HeaderValue::from_static(PROTOCOL_VERSION),
        );
        if let Some(token) = token {
            headers.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        if let Some(session) = session {
            headers.insert("mcp-session-id", HeaderValue::from_str(session).unwrap());
        }
        headers
    }

    /// POSTs a JSON-RPC message to the MCP endpoint.
    pub async fn post(
        &self,
        token: Option<&str>,
        session: Option<&str>,
        message: &Value,
    ) -> reqwest::Response {
        self.http
            .post(&self.endpoint)
            .headers(self.mcp_headers(token, session))
            .json(message)
            .send()
            .await
            .unwrap()
    }

    /// The status of an `initialize` POST with `token`: the quickest probe of "is this token
    /// accepted?".
    pub async fn initialize_status(&self, token: Option<&str>) -> reqwest::StatusCode {
        self.post(token, None, &initialize_request()).await.status()
    }

    /// POSTs a JSON-RPC message with extra headers (Origin, Host, padding...).
    pub async fn post_with(
        &self,
        token: Option<&str>,
        session: Option<&str>,
        extra: &[(&str, &str)],
        message: &Value,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.endpoint)
            .headers(self.mcp_headers(token, session));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.json(message).send().await.unwrap()
    }

    /// `initialize` then `notifications/initialized`; returns the session id (None when stateless).
    pub async fn initialize(&self, token: &str) -> Option<String> {
        let response = self.post(Some(token), None, &initialize_request()).await;
        assert_eq!(
            response.status(),
            200,
            "initialize failed: {}",
            response.text().await.unwrap_or_default()
        );
        let session = response
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let _ = response.bytes().await;
        let notified = self
            .post(
                Some(token),
                session.as_deref(),
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await;
        assert_eq!(notified.status(), 202);
        session
    }

    /// Calls a tool in a session (or statelessly) and returns the JSON-RPC response object.
    pub async fn call_tool(&self, token: &str, session: Option<&str>, name: &str) -> Value {
        let message = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": name, "arguments": {}}});
        let response = self.post(Some(token), session, &message).await;
        assert_eq!(response.status(), 200);
        jsonrpc_body(response).await
    }
}

/// An HTTP client that follows no redirects (a 307 is what some tests look at).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `initialize` request the helpers send.
pub fn initialize_request() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "conformance", "version": "1"}}
    })
}

/// The JSON-RPC message in a response, whether sent as JSON or as SSE `data:` lines.
pub async fn jsonrpc_body(response: reqwest::Response) -> Value {
    let is_sse = response.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    });
    let text = response.text().await.unwrap();
    if !is_sse {
        return serde_json::from_str(&text).unwrap();
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in the SSE stream: {text}"))
}

/// Polls `probe` every 20 ms until it is true or `deadline` passes; returns the last answer.
pub async fn eventually<F, Fut>(deadline: Duration, mut probe: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if probe().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The parameters of a `WWW-Authenticate: Bearer ...` challenge, in order (quoted values unquoted).
pub fn challenge_params(header: &str) -> Vec<(String, String)> {
    scheme_params(header, "Bearer").unwrap_or_else(|| panic!("not a Bearer challenge: {header}"))
}

/// The parameters of the `scheme` challenge among a response's `WWW-Authenticate` headers
/// (`Bearer`, `DPoP`); empty when there is none.
pub fn challenge_of(headers: &reqwest::header::HeaderMap, scheme: &str) -> Vec<(String, String)> {
    headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|header| scheme_params(header, scheme))
        .unwrap_or_default()
}

/// The parameters of `header` when it is a `scheme` challenge.
fn scheme_params(header: &str, scheme: &str) -> Option<Vec<(String, String)>> {
    let rest = header.strip_prefix(scheme)?.strip_prefix(' ')?;
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || *c == ' ') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            return Some(params);
        }
        assert_eq!(
            chars.next(),
            Some('"'),
            "{name} is not a quoted string in {header}"
        );
        let value: String = chars.by_ref().take_while(|c| *c != '"').collect();
        params.push((name, value));
    }
}
