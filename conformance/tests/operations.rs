#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! Operating the server: Prometheus metrics after a mix of requests, the JSON log and its audit
//! events from the real binary, two stateless instances behind a round-robin forwarder, and the
//! Kubernetes manifests.

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use conformance::examples::server_binary;
use conformance::redis::RedisServer;
use conformance::server::RunningServer;
use conformance::{TestEnv, eventually, fixture_supply, initialize_request, no_redirects};
use mcp_oauth_server::settings::{Issuer, ResourceUrl, SharedStateSettings, StateUrl, Transport};
use mcp_oauth_server::shared_state::Revocation;
use mcp_oauth_server::{Settings, SystemClock};
use mock_idp::{AccessTokenSpec, MockIdp};
use reqwest::StatusCode;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// The value of the series `name{labels}` in a Prometheus text exposition.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// /metrics after good, refused, out-of-scope and rate-limited requests shows each counter,
/// with bounded labels and no subject or token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let env = TestEnv::setup()
        .configure(|s| {
            s.scopes.require_for_tool("get_me", ["mcp:admin"]);
        })
        .start()
        .await;
    let good = env.token().await;
    let expired = env
        .mint(
            AccessTokenSpec::user("eve")
                .scope(["mcp:tools"])
                .expired_since(Duration::from_secs(600)),
        )
        .await;
    let session = env.initialize(&good).await;
    // get_me needs mcp:admin here: a 403.
    let denied = env
        .post(
            Some(&good),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}}),
        )
        .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    for token in [Some(expired.as_str()), None] {
        assert_eq!(env.initialize_status(token).await, StatusCode::UNAUTHORIZED);
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = env.app().metrics_router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let response = reqwest::get(format!("http://{address}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let count = |series_name: &str| {
        series(&text, series_name).unwrap_or_else(|| panic!("{series_name} in:\n{text}"))
    };
    assert_eq!(
        count(r#"mcp_auth_decisions_total{outcome="accepted",reason="jwt"}"#),
        1.0
    );
    assert!(count(r#"mcp_auth_decisions_total{outcome="accepted",reason="jwt_cached"}"#) >= 2.0);
    assert_eq!(
        count(r#"mcp_auth_decisions_total{outcome="refused",reason="expired"}"#),
        1.0
    );
    assert_eq!(
        count(r#"mcp_auth_decisions_total{outcome="refused",reason="missing_token"}"#),
        1.0
    );
    assert_eq!(count(r#"mcp_scope_denials_total{tool="get_me"}"#), 1.0);
    assert_eq!(
        count(r#"mcp_http_requests_total{route="/mcp",status="401"}"#),
        2.0
    );
    assert_eq!(
        count(r#"mcp_http_requests_total{route="/mcp",status="403"}"#),
        1.0
    );
    let issuer = env.idp.url();
    assert!(
        count(&format!(
            r#"mcp_jwks_fetches_total{{issuer="{issuer}",outcome="ok"}}"#
        )) >= 1.0
    );
    let age = count(&format!(r#"mcp_jwks_age_seconds{{issuer="{issuer}"}}"#));
    assert!((0.0..60.0).contains(&age), "{age}");
    assert_eq!(count("mcp_sessions"), 1.0);
    assert!(count(r#"mcp_http_request_duration_seconds_count{route="/mcp"}"#) >= 4.0);
    assert!(
        !text.contains("\"alice\"") && !text.contains("\"eve\""),
        "no subject as a label value"
    );
    assert!(!text.contains(good.as_str()) && !text.contains(expired.as_str()));

    let limited = TestEnv::setup()
        .configure(|s| s.rate_limit.per_minute = std::num::NonZeroU32::new(2))
        .start()
        .await;
    let token = limited.token().await;
    for _ in 0..3 {
        limited.initialize_status(Some(&token)).await;
    }
    let text = limited.app().metrics_text();
    assert_eq!(series(&text, "mcp_rate_limited_total"), Some(1.0), "{text}");
}

/// The server binary, killed when dropped; its stderr lines arrive on a channel.
struct Server {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(server_binary())
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .envs(env.iter().copied())
            .current_dir(std::env::temp_dir())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (at most 20 s) for a log line satisfying `wanted`, keeping every line seen.
    fn wait_for(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let line = self
            .wait_for_line(|line| serde_json::from_str::<Value>(line).is_ok_and(|v| wanted(&v)));
        serde_json::from_str(&line).unwrap()
    }

    /// Waits (at most 20 s) for a raw log line (text format) satisfying `wanted`.
    fn wait_for_line(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        self.wait_until(|seen| seen.iter().find(|l| wanted(l)).cloned())
    }

    /// Waits (at most 20 s) until `done` finds what it wants in the lines seen so far. It blocks
    /// the calling thread: tests that use it run multi-threaded, so the in-process mock IdP the
    /// server fetches its keys from keeps answering meanwhile (on one thread it could not, and
    /// the server's start would wait for its fetch timeouts).
    fn wait_until<T>(&mut self, done: impl Fn(&[String]) -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = done(&self.seen) {
                return found;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("not logged in time; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Kills the server and returns every line it logged.
    fn finish(mut self) -> Vec<String> {
        let _ = self.child.kill();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.seen.push(line);
        }
        std::mem::take(&mut self.seen)
    }
}

/// LOG_FORMAT=json: every line of the real binary's log is one JSON object; each authorization
/// decision on /mcp is an audit event (its own target) with the request id, issuer, subject,
/// client, JSON-RPC method and tool, scopes required and granted, outcome and reason, and no line
/// holds a token. MCP_METRICS_ADDR serves /metrics on its own listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_carries_an_audit_event_per_decision() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .admin(true)
        .start()
        .await
        .unwrap();
    let mut server = Server::start(&[
        ("OAUTH_ISSUER", idp.url()),
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("MCP_METRICS_ADDR", "127.0.0.1:0"),
        ("OAUTH_REQUIRED_SCOPES", "mcp:tools"),
        ("MCP_STATELESS", "true"),
    ]);
    let listening = server.wait_for(|v| v["message"] == "mcp-oauth-server listening");
    let address = listening["address"].as_str().unwrap().to_owned();
    let metrics = server.wait_for(|v| v["message"] == "metrics listening (GET /metrics)");
    let metrics_address = metrics["address"].as_str().unwrap().to_owned();
    let endpoint = format!("http://{address}/mcp");
    let ready = eventually(Duration::from_secs(10), || {
        let url = format!("http://{address}/readyz");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(ready, "the server loaded the keys");
    let resource = listening["endpoint"].as_str().unwrap().to_owned();
    let mint = |spec: AccessTokenSpec| {
        let issuer = idp.issuer();
        async move { issuer.mint(&spec).await.unwrap() }
    };
    let good = mint(
        AccessTokenSpec::user("alice")
            .client_id("app")
            .audience(resource.as_str())
            .scope(["mcp:tools"]),
    )
    .await;
    let unscoped = mint(AccessTokenSpec::user("bob").audience(resource.as_str())).await;
    let wrong_audience =
        mint(AccessTokenSpec::user("carol").audience("https://other.example/mcp")).await;
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}});
    let post = |token: String| {
        let (endpoint, call) = (endpoint.clone(), call.clone());
        async move {
            no_redirects()
                .post(&endpoint)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&call)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post(good.clone()).await, StatusCode::OK);
    assert_eq!(post(unscoped.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(post(wrong_audience.clone()).await, StatusCode::UNAUTHORIZED);
    let stream = no_redirects()
        .get(&endpoint)
        .bearer_auth(&unscoped)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::FORBIDDEN, "H08");

    let audit = |outcome: &'static str| {
        move |v: &Value| v["target"] == "mcp_oauth_server::audit" && v["outcome"] == outcome
    };
    let allowed = server.wait_for(audit("allowed"));
    assert_eq!(allowed["subject"], "alice", "{allowed}");
    assert_eq!(allowed["issuer"], idp.url());
    assert_eq!(allowed["client_id"], "app");
    assert_eq!(allowed["method"], "tools/call");
    assert_eq!(allowed["tool"], "get_me");
    assert_eq!(allowed["scopes_required"], "mcp:tools");
    assert_eq!(allowed["scopes_granted"], "mcp:tools");
    assert_eq!(allowed["level"], "INFO");
    assert!(
        allowed["request_id"]
            .as_str()
            .is_some_and(|id| id.len() >= 32),
        "{allowed}"
    );
    let denied = server.wait_for(audit("denied"));
    assert_eq!(denied["subject"], "bob");
    assert_eq!(denied["reason"], "insufficient_scope");
    assert_eq!(denied["scopes_granted"], "");
    // A request with no JSON-RPC body is audited under its HTTP method.
    let denied_stream = server.wait_for(|v| audit("denied")(v) && v["method"] == "GET");
    assert_eq!(denied_stream["subject"], "bob", "{denied_stream}");
    assert_eq!(denied_stream["scopes_required"], "mcp:tools");
    assert_eq!(denied_stream["tool"], "");
    let refused = server.wait_for(audit("refused"));
    assert_eq!(refused["reason"], "wrong_audience", "{refused}");
    assert!(
        refused.get("subject").is_none(),
        "an unverified token names nobody"
    );

    let text = reqwest::get(format!("http://{metrics_address}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        series(
            &text,
            r#"mcp_auth_decisions_total{outcome="refused",reason="wrong_audience"}"#
        ),
        Some(1.0),
        "{text}"
    );

    drop(server.child.kill());
    while let Ok(line) = server.lines.recv_timeout(Duration::from_millis(500)) {
        server.seen.push(line);
    }
    for line in &server.seen {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(parsed.is_object());
        for token in [&good, &unscoped, &wrong_audience] {
            assert!(!line.contains(token.as_str()), "a token in the log: {line}");
            assert!(!line.contains(token.rsplit('.').next().unwrap()));
        }
    }
}

/// Forwards each connection accepted on `front` to the next of `backends` in turn; counts them.
fn round_robin(front: TcpListener, backends: Vec<SocketAddr>) -> Arc<Vec<AtomicUsize>> {
    let served = Arc::new(
        backends
            .iter()
            .map(|_| AtomicUsize::new(0))
            .collect::<Vec<_>>(),
    );
    let counts = Arc::clone(&served);
    tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut inbound, _)) = front.accept().await {
            let index = next % backends.len();
            next += 1;
            counts[index].fetch_add(1, Ordering::SeqCst);
            let backend = backends[index];
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(backend).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    served
}

/// An instance serving `resource` (the URL clients use, in front of it) for `idp`'s tokens.
async fn instance(idp: &MockIdp, resource: &ResourceUrl, transport: Transport) -> RunningServer {
    let (listener, port) = RunningServer::bind().await;
    let mut settings = Settings::new(
        Issuer::parse(idp.url()).unwrap(),
        resource.clone(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
    settings.transport = transport;
    let server = RunningServer::start(listener, settings, Arc::new(SystemClock)).await;
    assert!(eventually(Duration::from_secs(10), || async { server.app.is_ready() }).await);
    server
}

/// Two stateless instances behind a round-robin forwarder serve one client whose requests
/// alternate between them (a new connection per request), through the official Rust SDK client:
/// nothing is kept per instance. In session mode, a session of one instance presented to the
/// other is a 404, as the README says (sessions need sticky routing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stateless_instances_serve_one_client_round_robin() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .admin(true)
        .start()
        .await
        .unwrap();
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource =
        ResourceUrl::parse(&format!("http://{}/mcp", front.local_addr().unwrap())).unwrap();
    let a = instance(&idp, &resource, Transport::Stateless).await;
    let b = instance(&idp, &resource, Transport::Stateless).await;
    let served = round_robin(front, vec![a.settings.listen, b.settings.listen]);
    let token = idp
        .issuer()
        .mint(
            &AccessTokenSpec::user("alice")
                .audience(resource.as_str())
                .scope(["mcp:tools"]),
        )
        .await
        .unwrap();

    // No connection reuse: every request goes through the forwarder's next turn.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(resource.as_str()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("initialize through the forwarder");
    for _ in 0..4 {
        let me = client
            .call_tool(CallToolRequestParams::new("get_me"))
            .await
            .unwrap()
            .structured_content
            .unwrap();
        assert_eq!(me["user_id"], "alice");
    }
    assert_eq!(client.list_tools(None).await.unwrap().tools.len(), 1);
    client.cancel().await.unwrap();
    let (to_a, to_b) = (
        served[0].load(Ordering::SeqCst),
        served[1].load(Ordering::SeqCst),
    );
    assert!(
        to_a >= 2 && to_b >= 2,
        "both instances served: {to_a} and {to_b}"
    );

    // Session mode: sessions live in one instance.
    let c = instance(&idp, &resource, Transport::default()).await;
    let d = instance(&idp, &resource, Transport::default()).await;
    let token = idp
        .issuer()
        .mint(&AccessTokenSpec::user("bob").audience(resource.as_str()))
        .await
        .unwrap();
    let post = |server: &RunningServer, session: Option<&str>, body: Value| {
        let mut request = no_redirects()
            .post(&server.endpoint)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let opened = post(&c, None, initialize_request()).await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    assert_eq!(
        post(&d, Some(&session), ping.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND,
        "another instance does not know the session"
    );
}

/// What a token can carry to forge a log line: a newline followed by what looks like a whole
/// audit record, a quote, and an ANSI colour escape.
const FORGED_SUBJECT: &str = "alice\n2001-01-01T00:00:00.000000Z  INFO mcp_oauth_server::audit: authorization decision subject=\"root\" outcome=\"allowed\" \"FORGED-SUB\" \u{1b}[31m";
const FORGED_CLIENT: &str = "app\"\nFORGED-CLIENT \u{1b}[31mred";
const FORGED_SCOPE: &str = "extra\nFORGED-SCOPE \"q\" \u{1b}[31m";
/// A client's `x-request-id` with quotes (a header value cannot carry a newline).
const CLIENT_REQUEST_ID: &str = "client \"chosen\" id";

/// Starts the binary for `idp` with `format`, sends one `tools/call` with a token whose `sub`,
/// `client_id` and permission (`scp`) carry newlines, quotes and ANSI escapes and with a
/// client-chosen `x-request-id`, and returns the server (its log running) and the response's
/// `x-request-id`.
async fn forged_request(idp: &MockIdp, format: &str) -> (Server, String) {
    let mut server = Server::start(&[
        ("OAUTH_ISSUER", idp.url()),
        ("PORT", "0"),
        ("LOG_FORMAT", format),
        ("OAUTH_REQUIRED_SCOPES", "mcp:tools"),
        ("MCP_STATELESS", "true"),
    ]);
    let listening = server.wait_for_line(|l| l.contains("mcp-oauth-server listening"));
    let address = match serde_json::from_str::<Value>(&listening) {
        Ok(record) => record["address"].as_str().unwrap().to_owned(),
        Err(_) => listening
            .split_once("address=")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap()
            .to_owned(),
    };
    let ready = eventually(Duration::from_secs(10), || {
        let url = format!("http://{address}/readyz");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(ready, "the server loaded the keys");
    let token = idp
        .issuer()
        .mint(
            &AccessTokenSpec::user(FORGED_SUBJECT)
                .client_id(FORGED_CLIENT)
                .audience(format!(
                    "http://localhost:{}/mcp",
                    address.rsplit(':').next().unwrap()
                ))
                .claim("scp", json!(["mcp:tools", FORGED_SCOPE])),
        )
        .await
        .unwrap();
    let response = no_redirects()
        .post(format!("http://{address}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-request-id", CLIENT_REQUEST_ID)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        request_id, CLIENT_REQUEST_ID,
        "the request id is the server's own"
    );
    assert!(
        request_id.len() == 36
            && request_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == '-'),
        "a UUID: {request_id}"
    );
    (server, request_id)
}

/// A "sub", "client_id" or scope holding a newline, a quote or an ANSI escape cannot write a log
/// line of its own in the default text format: every line is one record (it starts with the
/// timestamp and level, and the raw escape byte appears nowhere), and the values are there,
/// escaped. The request id is the server's (also in the response); the client's `x-request-id`
/// is logged apart, escaped, as `client_request_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_values_cannot_forge_text_log_lines() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let (mut server, request_id) = forged_request(&idp, "text").await;
    let audit = server.wait_for_line(|l| {
        l.contains("mcp_oauth_server::audit") && l.contains("outcome=\"allowed\"")
    });
    let lines = server.finish();
    let record_start = |line: &str| {
        let (date, rest) = line.split_at(line.find('T').unwrap_or(0));
        date.len() == 10
            && date.bytes().filter(u8::is_ascii_digit).count() == 8
            && rest.contains('Z')
            && ["TRACE", "DEBUG", " INFO", " WARN", "ERROR"]
                .iter()
                .any(|level| rest.contains(level))
    };
    for line in &lines {
        assert!(record_start(line), "a line that is not a record: {line:?}");
        assert!(!line.contains('\u{1b}'), "a raw escape byte: {line:?}");
        assert!(
            !line.starts_with("2001-01-01") && !line.starts_with("FORGED"),
            "an injected line: {line:?}"
        );
    }
    let forged: Vec<&String> = lines.iter().filter(|l| l.contains("FORGED")).collect();
    assert!(
        forged.iter().all(|l| l.contains("authorization decision")),
        "the forged values only inside their own record: {forged:#?}"
    );
    assert!(
        audit.contains(r#"subject="alice\n2001-01-01T00:00:00.000000Z  INFO mcp_oauth_server::audit: authorization decision subject=\"root\" outcome=\"allowed\" \"FORGED-SUB\" \u{1b}[31m""#),
        "{audit}"
    );
    assert!(
        audit.contains(r#"client_id="app\"\nFORGED-CLIENT \u{1b}[31mred""#),
        "{audit}"
    );
    assert!(
        audit.contains(r#"scopes_granted="mcp:tools extra\nFORGED-SCOPE \"q\" \u{1b}[31m""#),
        "{audit}"
    );
    assert!(
        audit.contains(&format!("request_id=\"{request_id}\"")),
        "{audit}"
    );
    assert!(
        audit.contains(r#"client_request_id="client \"chosen\" id""#),
        "{audit}"
    );
}

/// The same request with LOG_FORMAT=json: every line is one JSON object, the values round-trip
/// exactly, the request id is the server's and the client's id is its own field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_values_round_trip_in_the_json_log() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let (mut server, request_id) = forged_request(&idp, "json").await;
    let audit =
        server.wait_for(|v| v["target"] == "mcp_oauth_server::audit" && v["outcome"] == "allowed");
    let lines = server.finish();
    for line in &lines {
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not one JSON record: {line:?}"));
        assert!(record.is_object());
        assert!(!line.contains('\u{1b}'), "a raw escape byte: {line:?}");
    }
    assert_eq!(audit["subject"], FORGED_SUBJECT, "{audit}");
    assert_eq!(audit["client_id"], FORGED_CLIENT);
    assert_eq!(audit["scopes_granted"], format!("mcp:tools {FORGED_SCOPE}"));
    assert_eq!(audit["request_id"], request_id.as_str());
    assert_eq!(audit["span"]["request_id"], request_id.as_str(), "{audit}");
    assert_eq!(audit["span"]["client_request_id"], CLIENT_REQUEST_ID);
}

/// Starts the binary with `env` (JSON logs, our debug events on) and returns it with the warning
/// that says the keys cannot be loaded.
fn start_unready(env: &[(&str, &str)]) -> (Server, Value) {
    let mut all = vec![
        ("PORT", "0"),
        ("LOG_FORMAT", "json"),
        ("RUST_LOG", "info,mcp_oauth_server=debug"),
    ];
    all.extend_from_slice(env);
    let mut server = Server::start(&all);
    let warning =
        server.wait_for(|v| v["level"] == "WARN" && v["target"] == "mcp_oauth_server::auth::keys");
    (server, warning)
}

/// An issuer on a closed port, at a wrong path, or a JWKS URL that does not answer gives a
/// server that says why it will never be ready: the step that failed (discovery document or
/// JWKS), its URL and the setting to check, once; probing `/readyz` meanwhile logs nothing at
/// `error`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_issuer_is_named_with_the_step_the_url_and_the_setting() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let not_found = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let not_found_port = not_found.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(not_found, axum::Router::new()).await });

    let closed_issuer = format!("http://127.0.0.1:{closed}");
    let (mut unreachable, warning) = start_unready(&[("OAUTH_ISSUER", &closed_issuer)]);
    assert_eq!(warning["step"], "discovery document", "{warning}");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("fetching the discovery document failed"),
        "{warning}"
    );
    assert!(
        warning["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{closed_issuer}/")),
        "{warning}"
    );
    assert!(
        warning["check"]
            .as_str()
            .unwrap()
            .starts_with("OAUTH_ISSUER"),
        "{warning}"
    );

    let wrong_path = format!("http://127.0.0.1:{not_found_port}/no/such/issuer");
    let (wrong, warning) = start_unready(&[("OAUTH_ISSUER", &wrong_path)]);
    assert_eq!(warning["step"], "discovery document", "{warning}");
    assert!(
        warning["url"].as_str().unwrap().contains("/no/such/issuer"),
        "{warning}"
    );
    assert!(
        warning["error"].as_str().unwrap().contains("HTTP 404"),
        "{warning}"
    );
    drop(wrong);

    let jwks = format!("http://127.0.0.1:{closed}/jwks");
    let (jwks_server, warning) =
        start_unready(&[("OAUTH_ISSUER", &wrong_path), ("OAUTH_JWKS_URI", &jwks)]);
    assert_eq!(warning["step"], "JWKS", "{warning}");
    assert_eq!(warning["url"], jwks.as_str());
    assert!(
        warning["check"]
            .as_str()
            .unwrap()
            .starts_with("OAUTH_JWKS_URI"),
        "{warning}"
    );
    drop(jwks_server);

    // Orchestrators probe readiness every few seconds: 503 each time, never an `error` line.
    let listening = unreachable.wait_for(|v| v["message"] == "mcp-oauth-server listening");
    let address = listening["address"].as_str().unwrap().to_owned();
    const PROBES: usize = 5;
    for _ in 0..PROBES {
        let status = reqwest::get(format!("http://{address}/readyz"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    // Each probe's 503 is logged (at some level) in its request span: wait for all of them.
    unreachable.wait_until(|seen| {
        let answered = seen
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["span"]["path"] == "/readyz" && v["level"] != "INFO")
            .count();
        (answered >= PROBES).then_some(())
    });
    // The background loader retried meanwhile (1 s, then 2 s): still one warning.
    unreachable.wait_for(|v| {
        v["level"] == "DEBUG"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("still cannot fetch"))
    });
    let lines = unreachable.finish();
    let records: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let errors: Vec<&Value> = records.iter().filter(|v| v["level"] == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warnings = records
        .iter()
        .filter(|v| v["level"] == "WARN" && v["target"] == "mcp_oauth_server::auth::keys")
        .count();
    assert_eq!(warnings, 1, "{lines:#?}");
}

/// Two stateless replicas sharing `redis` behind a round-robin forwarder, `per_minute` requests
/// each principal.
async fn shared_replicas(
    idp: &MockIdp,
    redis_url: &str,
    per_minute: u32,
) -> (String, Vec<RunningServer>, Arc<Vec<AtomicUsize>>) {
    shared_replicas_with(idp, redis_url, per_minute, |_| {}).await
}

/// The same, each replica's settings changed by `configure` too.
async fn shared_replicas_with(
    idp: &MockIdp,
    redis_url: &str,
    per_minute: u32,
    configure: impl Fn(&mut Settings),
) -> (String, Vec<RunningServer>, Arc<Vec<AtomicUsize>>) {
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource =
        ResourceUrl::parse(&format!("http://{}/mcp", front.local_addr().unwrap())).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let (listener, port) = RunningServer::bind().await;
        let mut settings = Settings::new(
            Issuer::parse(idp.url()).unwrap(),
            resource.clone(),
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        );
        settings.transport = Transport::Stateless;
        settings.rate_limit.per_minute = std::num::NonZeroU32::new(per_minute);
        settings.shared_state = Some(SharedStateSettings {
            revocation_poll: Duration::from_millis(100),
            // Generous for a busy machine: a failure here would be the fallback, not the test.
            timeout: Duration::from_secs(2),
            ..SharedStateSettings::new(StateUrl::parse(redis_url).unwrap())
        });
        configure(&mut settings);
        let server = RunningServer::start(listener, settings, Arc::new(SystemClock)).await;
        assert!(eventually(Duration::from_secs(10), || async { server.app.is_ready() }).await);
        replicas.push(server);
    }
    let served = round_robin(front, replicas.iter().map(|r| r.settings.listen).collect());
    (resource.as_str().to_owned(), replicas, served)
}

/// One stateless `tools/list` at `endpoint` (through the forwarder: a new connection, so the
/// next replica) with `authorization` and, when given, a DPoP proof.
async fn list_tools(endpoint: &str, authorization: &str, proof: Option<&str>) -> reqwest::Response {
    list_tools_at(endpoint, None, authorization, proof).await
}

/// One stateless `tools/list` at `url` on a new connection, with `host` as the `Host` header
/// when given (a replica addressed by its listener, as its resource's host), `authorization`
/// and, when given, a DPoP proof.
async fn list_tools_at(
    url: &str,
    host: Option<&str>,
    authorization: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = http
        .post(url)
        .header("authorization", authorization)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    if let Some(host) = host {
        request = request.header("host", host);
    }
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.unwrap()
}

/// A replica's own URL and the `Host` its guard accepts (its resource's).
fn direct(replica: &RunningServer) -> (String, String) {
    (
        format!("http://{}/mcp", replica.settings.listen),
        replica
            .settings
            .resource
            .url
            .as_url()
            .authority()
            .to_owned(),
    )
}

/// A DPoP proof by the fixture key `p256-1` for a POST to `endpoint` with `token`.
fn proof_for(endpoint: &str, token: &str, jti: &str) -> String {
    let key = conformance::fixture_key("p256-1");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    mock_idp::dpop::proof(
        &key,
        "POST",
        endpoint,
        token,
        jti,
        i64::try_from(now).unwrap(),
    )
    .unwrap()
}

/// Issue 21 with a real `redis-server` and two replicas behind a round-robin forwarder: one
/// principal's budget is one budget across both (the sixth request of five a minute is a 429,
/// whichever replica gets it, while another principal is unaffected); a DPoP proof accepted by
/// one replica is refused as a replay by the other; a revocation pushed once (a token by the
/// library, a `jti` by `mcp-oauth-server revoke`) is honoured by both within the poll bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_redis,
    ignore = "needs redis-server: apt-get install redis-server, or set REDIS_SERVER"
)]
async fn replicas_share_one_budget_one_replay_cache_and_one_revocation_list() {
    let redis = RedisServer::start();
    replicas_share(&redis.url()).await;
}

/// The same with Redis 7 in a container (testcontainers), as GitHub's Docker job runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Docker: cargo test -p conformance --test operations -- --ignored"]
async fn replicas_share_state_in_a_redis_container() {
    use testcontainers::core::{IntoContainerPort as _, WaitFor};
    use testcontainers::runners::AsyncRunner as _;
    use testcontainers::{GenericImage, ImageExt as _};

    let container = GenericImage::new("redis", "7-alpine")
        .with_exposed_port(6379.tcp())
        .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
        .with_startup_timeout(Duration::from_secs(120))
        .start()
        .await
        .expect("Redis starts (this test needs Docker)");
    let port = container.get_host_port_ipv4(6379).await.unwrap();
    replicas_share(&format!("redis://127.0.0.1:{port}/0")).await;
}

async fn replicas_share(redis_url: &str) {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let (endpoint, replicas, served) = shared_replicas(&idp, redis_url, 5).await;
    let mint = |spec: AccessTokenSpec| {
        let issuer = idp.issuer().clone();
        let endpoint = endpoint.clone();
        async move {
            issuer
                .mint(&spec.audience(endpoint.as_str()))
                .await
                .unwrap()
        }
    };

    let alice = format!("Bearer {}", mint(AccessTokenSpec::user("alice")).await);
    for n in 1..=5 {
        let status = list_tools(&endpoint, &alice, None).await.status();
        assert_eq!(status, StatusCode::OK, "request {n} of the budget");
    }
    let over = list_tools(&endpoint, &alice, None).await;
    assert_eq!(
        over.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one budget, not two"
    );
    assert!(over.headers().contains_key("retry-after"));
    assert!(
        served.iter().all(|n| n.load(Ordering::SeqCst) >= 2),
        "both replicas served"
    );
    let bob = format!("Bearer {}", mint(AccessTokenSpec::user("bob")).await);
    assert_eq!(
        list_tools(&endpoint, &bob, None).await.status(),
        StatusCode::OK
    );

    let key = conformance::fixture_key("p256-1");
    let bound = mint(AccessTokenSpec::user("carol").claim("cnf", json!({"jkt": key.kid()}))).await;
    let proof = proof_for(&endpoint, &bound, "shared-1");
    let dpop = format!("DPoP {bound}");
    let before: Vec<usize> = served.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(
        list_tools(&endpoint, &dpop, Some(&proof)).await.status(),
        StatusCode::OK
    );
    let replayed = list_tools(&endpoint, &dpop, Some(&proof)).await;
    let after: Vec<usize> = served.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert!(
        before.iter().zip(&after).all(|(b, a)| a - b == 1),
        "one request to each replica: {before:?} → {after:?}"
    );
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let challenges: Vec<String> = replayed
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        challenges.iter().any(|c| c.contains("already used")),
        "the other replica saw the proof: {challenges:?}"
    );

    let dave = mint(AccessTokenSpec::user("dave")).await;
    let erin = mint(AccessTokenSpec::user("erin").claim("jti", json!("erin-token-1"))).await;
    for replica in &replicas {
        for token in [&dave, &erin] {
            assert_eq!(status_at(replica, token).await, StatusCode::OK);
        }
    }
    let shared = replicas[0].settings.shared_state.clone().unwrap();
    mcp_oauth_server::shared_state::push_revocation(
        &shared,
        &Revocation::token(&dave, now(), Duration::from_secs(3_600)),
    )
    .await
    .unwrap();
    let revoke = tokio::process::Command::new(server_binary())
        .args(["revoke", "--jti", "erin-token-1", "--issuer", idp.url()])
        .env("MCP_STATE_URL", redis_url)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        revoke.status.success(),
        "{}",
        String::from_utf8_lossy(&revoke.stderr)
    );
    assert!(String::from_utf8_lossy(&revoke.stdout).contains("revoked the token \"erin-token-1\""));
    for replica in &replicas {
        for token in [&dave, &erin] {
            let refused = eventually(Duration::from_secs(10), || async {
                status_at(replica, token).await == StatusCode::UNAUTHORIZED
            })
            .await;
            assert!(refused, "a replica still accepts a revoked token");
        }
        assert_eq!(
            status_at(replica, &bob[7..]).await,
            StatusCode::OK,
            "others unaffected"
        );
    }
}

/// Issue 21, the store's failure as a decision: with `redis-server` stopped mid-run, bearer
/// requests are still served (the rate limit falls back to each replica's own budget), a DPoP
/// request is a 503 with `Retry-After` (the replay check fails closed), a revocation read before
/// stays in force, `/readyz` says the store is down and nothing answers 500; a replica that boots
/// meanwhile is not ready (it cannot know the revocations in force). With the store back
/// (empty), sharing resumes by itself: a proof replayed at the other replica is refused again,
/// and a new revocation is honoured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_redis,
    ignore = "needs redis-server: apt-get install redis-server, or set REDIS_SERVER"
)]
async fn with_the_store_down_each_use_does_as_configured_and_sharing_resumes() {
    let mut redis = RedisServer::start();
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let (endpoint, replicas, _) = shared_replicas(&idp, &redis.url(), 1_000).await;
    let mint = |spec: AccessTokenSpec| {
        let issuer = idp.issuer().clone();
        let endpoint = endpoint.clone();
        async move {
            issuer
                .mint(&spec.audience(endpoint.as_str()))
                .await
                .unwrap()
        }
    };
    let alice = mint(AccessTokenSpec::user("alice")).await;
    let revoked = mint(AccessTokenSpec::user("mallory")).await;
    let shared = replicas[0].settings.shared_state.clone().unwrap();
    mcp_oauth_server::shared_state::push_revocation(
        &shared,
        &Revocation::token(&revoked, now(), Duration::from_secs(3_600)),
    )
    .await
    .unwrap();
    for replica in &replicas {
        let refused = eventually(Duration::from_secs(10), || async {
            status_at(replica, &revoked).await == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(refused);
    }

    redis.stop();
    let key = conformance::fixture_key("p256-1");
    let bound = mint(AccessTokenSpec::user("carol").claim("cnf", json!({"jkt": key.kid()}))).await;
    let dpop = format!("DPoP {bound}");
    for n in 0..4 {
        let bearer = list_tools(&endpoint, &format!("Bearer {alice}"), None).await;
        assert_eq!(
            bearer.status(),
            StatusCode::OK,
            "bearer request {n}: local budget"
        );
        let proof = proof_for(&endpoint, &bound, &format!("down-{n}"));
        let refused = list_tools(&endpoint, &dpop, Some(&proof)).await;
        assert_eq!(
            refused.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "DPoP fails closed"
        );
        assert_eq!(refused.headers()["retry-after"], "1");
    }
    for replica in &replicas {
        assert_eq!(
            status_at(replica, &revoked).await,
            StatusCode::UNAUTHORIZED,
            "still revoked"
        );
        let down = eventually(Duration::from_secs(10), || async {
            let ready: Value = reqwest::get(format!("http://{}/readyz", replica.settings.listen))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ready["status"] == "ready" && ready["shared_state"] == "down"
        })
        .await;
        assert!(down, "/readyz says the store is down, and stays ready");
    }

    // A replica that boots now cannot know the revocations in force: not ready.
    let (listener, port) = RunningServer::bind().await;
    let mut settings = replicas[0].settings.clone();
    settings.listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let late = RunningServer::start(listener, settings, Arc::new(SystemClock)).await;
    let readyz = || async {
        reqwest::get(format!("http://{}/readyz", late.settings.listen))
            .await
            .unwrap()
    };
    let unready = readyz().await;
    assert_eq!(unready.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(unready.text().await.unwrap().contains("revocations"));

    redis.restart();
    let caught_up = eventually(Duration::from_secs(15), || async {
        readyz().await.status() == StatusCode::OK
    })
    .await;
    assert!(caught_up, "ready once the store answers");
    let resumed = eventually(Duration::from_secs(15), || async {
        let proof = proof_for(&endpoint, &bound, &format!("back-{}", now_nanos()));
        list_tools(&endpoint, &dpop, Some(&proof)).await.status() == StatusCode::OK
    })
    .await;
    assert!(resumed, "DPoP is served again once the store is back");
    // Both replicas back on the store: the same proof is accepted once across the two.
    let mut statuses = Vec::new();
    let proof = proof_for(&endpoint, &bound, "after-restart");
    for _ in 0..2 {
        statuses.push(list_tools(&endpoint, &dpop, Some(&proof)).await.status());
    }
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    let later = mint(AccessTokenSpec::user("trent")).await;
    mcp_oauth_server::shared_state::push_revocation(
        &shared,
        &Revocation::token(&later, now(), Duration::from_secs(3_600)),
    )
    .await
    .unwrap();
    for replica in &replicas {
        let refused = eventually(Duration::from_secs(10), || async {
            status_at(replica, &later).await == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(refused, "revocations are read again");
    }
}

/// The status of one bearer `tools/list` straight at `replica` (by its resource's host name).
async fn status_at(replica: &RunningServer, token: &str) -> StatusCode {
    let (url, host) = direct(replica);
    list_tools_at(&url, Some(&host), &format!("Bearer {token}"), None)
        .await
        .status()
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Issue 21 item 4: an opaque token one replica introspected is accepted by the other from the
/// answer it shared, without a second call to the authorization server; a token only one
/// replica was asked about is introspected once in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_redis,
    ignore = "needs redis-server: apt-get install redis-server, or set REDIS_SERVER"
)]
async fn an_introspection_answer_is_shared_by_the_replicas() {
    use mcp_oauth_server::settings::{
        ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings,
        RemoteVerification,
    };
    let redis = RedisServer::start();
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .client(mock_idp::Client::new(
            "mcp-server",
            "server-secret",
            "urn:unused",
        ))
        .start()
        .await
        .unwrap();
    let (endpoint, replicas, _) = shared_replicas_with(&idp, &redis.url(), 1_000, |settings| {
        settings.issuers.primary_mut().remote =
            Some(RemoteVerification::Introspection(IntrospectionSettings {
                endpoint: None,
                client_id: "mcp-server".into(),
                client_secret: ClientSecret::new("server-secret"),
                client_auth: ClientAuthMethod::Basic,
                every_token: false,
                cache_for: Duration::from_secs(60),
                audience: IntrospectedAudience::Required,
            }));
    })
    .await;
    let token = idp
        .issuer()
        .mint_opaque(&AccessTokenSpec::user("alice").audience(endpoint.as_str()))
        .await
        .unwrap();
    let calls = || idp.issuer().requests(mock_idp::Endpoint::Introspection);
    let before = calls();
    assert_eq!(status_at(&replicas[0], &token).await, StatusCode::OK);
    assert_eq!(calls() - before, 1, "the first replica asked");
    assert_eq!(status_at(&replicas[1], &token).await, StatusCode::OK);
    assert_eq!(calls() - before, 1, "the second used the shared answer");
}

/// D16 with `MCP_STATE_DPOP_REPLAY_ON_FAILURE=local`: with the store down a replica judges
/// proofs by its own cache, and that cache holds the proofs it accepted while the store was up,
/// so one of them replayed at it during the outage is still refused; a fresh proof is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_redis,
    ignore = "needs redis-server: apt-get install redis-server, or set REDIS_SERVER"
)]
async fn with_the_local_replay_fallback_a_proof_seen_before_the_outage_is_refused() {
    use mcp_oauth_server::settings::OnFailure;
    let mut redis = RedisServer::start();
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let (endpoint, replicas, _) = shared_replicas_with(&idp, &redis.url(), 1_000, |settings| {
        if let Some(shared) = settings.shared_state.as_mut() {
            shared.dpop_replay_on_failure = OnFailure::Local;
        }
    })
    .await;
    let key = conformance::fixture_key("p256-1");
    let bound = idp
        .issuer()
        .mint(
            &AccessTokenSpec::user("carol")
                .audience(endpoint.as_str())
                .claim("cnf", json!({"jkt": key.kid()})),
        )
        .await
        .unwrap();
    let (url, host) = direct(&replicas[0]);
    let dpop = format!("DPoP {bound}");
    let dpop_at = |proof: String| {
        let (url, host, dpop) = (url.clone(), host.clone(), dpop.clone());
        async move {
            list_tools_at(&url, Some(&host), &dpop, Some(&proof))
                .await
                .status()
        }
    };
    let seen = proof_for(&endpoint, &bound, "before-the-outage");
    assert_eq!(dpop_at(seen.clone()).await, StatusCode::OK);

    redis.stop();
    let replayed = dpop_at(seen).await;
    assert_eq!(
        replayed,
        StatusCode::UNAUTHORIZED,
        "a replay, store or no store"
    );
    let fresh = dpop_at(proof_for(&endpoint, &bound, "during-the-outage")).await;
    assert_eq!(fresh, StatusCode::OK, "the local fallback serves");
}
