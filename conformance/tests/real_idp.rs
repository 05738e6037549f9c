//! End to end with a real, OpenID Certified authorization server (panva/oidc-provider, run by
//! Node 22 from `conformance/real-idp`) and real MCP clients: the server is configured with the
//! issuer and its audience only, finds the JWKS by discovery (G01, G03), and serves the official
//! Rust SDK client and the official TypeScript SDK client, the latter finding everything itself
//! from the 401 (RFC 9728 → RFC 8414 → RFC 8707 token request).
//!
//! Needs `npm ci --prefix conformance/real-idp` (`.ci/run` does it); without it `cargo test` lists
//! each test as ignored with that reason, and in CI (`CI` set) each fails saying so.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use conformance::real_idp::{
    CLIENT_ID, CLIENT_SECRET, INTROSPECTOR_ID, INTROSPECTOR_SECRET, OPAQUE_RESOURCE, RealIdp, node,
    report_of, script,
};
use conformance::server::RunningServer;
use conformance::{eventually, initialize_request, no_redirects};
use mcp_oauth_server::settings::{
    Audience, ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings, Issuer,
    RemoteVerification,
};
use mcp_oauth_server::{Settings, SystemClock};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

const OTHER_RESOURCE: &str = "https://other.example/mcp";
/// How long a TypeScript SDK client may take for its whole flow.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);

/// The server's two loopback spellings and a resource that is not it.
fn resources(port: u16) -> Vec<String> {
    vec![
        format!("http://localhost:{port}/mcp"),
        format!("http://127.0.0.1:{port}/mcp"),
        OTHER_RESOURCE.to_owned(),
    ]
}

/// The server as an operator runs it against this provider: OAUTH_ISSUER and the (derived)
/// audience only, the JWKS found by discovery; every request needs `mcp:tools`.
async fn server(listener: tokio::net::TcpListener, issuer: &str) -> RunningServer {
    let port = listener.local_addr().unwrap().port();
    let mut settings = Settings::local(
        Issuer::parse(issuer).unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
    settings.scopes.require_for_every_request(["mcp:tools"]);
    let server = RunningServer::start(listener, settings, Arc::new(SystemClock)).await;
    let ready = eventually(Duration::from_secs(10), || async { server.app.is_ready() }).await;
    assert!(ready, "the keys were not found by discovery");
    server
}

/// The server as an operator runs it for the provider's opaque tokens: audience
/// `urn:mcp:opaque`, each token introspected (never cached) with the server's own credentials at
/// the endpoint the provider's metadata names.
async fn introspecting_server(listener: tokio::net::TcpListener, idp: &RealIdp) -> RunningServer {
    let port = listener.local_addr().unwrap().port();
    let mut settings = Settings::local(
        Issuer::parse(&idp.issuer).unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
    *settings.validation_mut() = settings.validation().clone().with_audiences(
        Audience::new(OPAQUE_RESOURCE).unwrap(),
        settings.validation().audiences().to_vec(),
    );
    settings.issuers.primary_mut().remote =
        Some(RemoteVerification::Introspection(IntrospectionSettings {
            endpoint: None,
            client_id: INTROSPECTOR_ID.into(),
            client_secret: ClientSecret::new(INTROSPECTOR_SECRET),
            client_auth: ClientAuthMethod::Basic,
            every_token: false,
            cache_for: Duration::from_secs(0),
            audience: IntrospectedAudience::Required,
        }));
    let clock = mcp_oauth_server::OffsetClock::default();
    RunningServer::start(listener, settings, Arc::new(clock)).await
}

async fn initialize_status(server: &RunningServer, token: &str) -> reqwest::StatusCode {
    no_redirects()
        .post(&server.endpoint)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .unwrap()
        .status()
}

/// G01, G03, D03, E01, E11, C01: a client-credentials token from the certified provider (RFC 9068
/// `at+jwt`, audience by RFC 8707) calls get_me through the official Rust SDK client; a token the
/// same provider issued for another resource is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn the_rust_sdk_client_calls_get_me_with_a_token_from_a_certified_provider() {
    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = server(listener, &idp.issuer).await;

    let token = idp.client_credentials(&server.endpoint).await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.endpoint.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("the client connects");
    let result = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap();
    let me = result.structured_content.expect("structured content");
    assert_eq!(
        me["user_id"], CLIENT_ID,
        "a machine token: sub is the client"
    );
    assert_eq!(me["client_id"], CLIENT_ID);
    assert_eq!(me["issuer"], idp.issuer);
    assert_eq!(me["audience"], server.endpoint);
    assert_eq!(me["scopes"], serde_json::json!(["mcp:tools"]));
    client.cancel().await.unwrap();

    let other = idp.client_credentials(OTHER_RESOURCE).await;
    let refused = no_redirects()
        .post(&server.endpoint)
        .bearer_auth(&other)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "D03: a token for another resource");
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("token audience is not this server"),
        "{challenge}"
    );
}

/// G05: the provider restarts with a new key (same issuer): its new tokens are accepted with no
/// restart of the server; tokens of the removed key are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn a_provider_restarted_with_a_new_key_is_followed_without_a_restart() {
    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = server(listener, &idp.issuer).await;
    let before = idp.client_credentials(&server.endpoint).await;
    assert_eq!(initialize_status(&server, &before).await, 200);

    let idp = idp.restart(&node);
    let after = idp.client_credentials(&server.endpoint).await;
    assert_eq!(
        initialize_status(&server, &after).await,
        200,
        "the new key, found through one JWKS refresh"
    );
    let refused = no_redirects()
        .post(&server.endpoint)
        .bearer_auth(&before)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the removed key's token");
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("unknown key"), "{challenge}");
}

/// A01-A05, B01-B03, G03: the official TypeScript SDK client, given only the endpoint, its client
/// credentials and scope, meets the 401, follows `resource_metadata` to our RFC 9728 document,
/// finds the provider's metadata, requests a token for exactly our resource (RFC 8707), and calls
/// get_me. (Its client-credentials provider asks for its configured scope; it does not read the
/// challenge's `scope` for this grant.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn the_typescript_sdk_client_discovers_everything_from_the_401() {
    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = server(listener, &idp.issuer).await;
    let mut client = script(&node, "client.mjs");
    client.args([
        server.endpoint.as_str(),
        CLIENT_ID,
        CLIENT_SECRET,
        idp.issuer.as_str(),
        "mcp:tools",
    ]);
    let report = report_of(client, SCRIPT_DEADLINE).await;
    assert_eq!(report["get_me"]["user_id"], CLIENT_ID, "{report}");
    assert_eq!(report["get_me"]["audience"], server.endpoint, "{report}");
    let requests = report["token_requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "one token request: {report}");
    assert_eq!(requests[0]["grant_type"], "client_credentials");
    assert_eq!(
        requests[0]["resource"], server.endpoint,
        "RFC 8707: the resource from our RFC 9728 document, as the client spelled it"
    );
    assert_eq!(requests[0]["scope"], "mcp:tools");
}

/// A user signs in through the official TypeScript SDK client, against the mock IdP (auto-login):
/// the 401, our RFC 9728 metadata, the IdP's metadata, dynamic registration, authorization code
/// with PKCE, get_me as the user; then a refresh, and get_me again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn the_typescript_sdk_client_signs_a_user_in() {
    let node = node();
    let env = conformance::TestEnv::setup()
        .idp(|idp| idp.auto_login("alice"))
        .start()
        .await;
    let mut client = script(&node, "user-client.mjs");
    client.args([env.endpoint.as_str(), "http://127.0.0.1:7891/callback"]);
    let report = report_of(client, SCRIPT_DEADLINE).await;
    for call in ["first", "second"] {
        assert_eq!(report[call]["user_id"], "alice", "{report}");
        assert_eq!(report[call]["audience"], env.endpoint, "{report}");
        assert_eq!(report[call]["client_id"], report["client_id"], "{report}");
    }
    assert!(report["client_id"].as_str().unwrap().starts_with("dyn-"));
}

/// P01, P02: an opaque access token from the certified provider (its `resourceIndicators` issue
/// opaque tokens for `urn:mcp:opaque`) is introspected at the endpoint its metadata names, with
/// the server's own client credentials, and get_me answers; after revocation at the provider (and
/// past the cache bound), the same token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn an_opaque_token_from_a_certified_provider_is_introspected() {
    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = introspecting_server(listener, &idp).await;

    let token = idp.client_credentials(OPAQUE_RESOURCE).await;
    assert_ne!(token.split('.').count(), 3, "an opaque token: {token}");
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.endpoint.clone()).auth_header(&token),
    );
    let client = ().serve(transport).await.expect("initialize");
    let me = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap()
        .structured_content
        .unwrap();
    client.cancel().await.unwrap();
    assert_eq!(me["verified_by"], "introspection", "{me}");
    assert_eq!(me["client_id"], CLIENT_ID);
    assert_eq!(me["issuer"], idp.issuer);
    assert_eq!(me["audience"], OPAQUE_RESOURCE);

    idp.revoke(&token).await;
    assert_eq!(
        initialize_status(&server, &token).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
}

/// D13, J48 and RFC 9449 §4.3, §7.1, §11.1 with code we did not write: the certified provider (its
/// `dPoP` feature) binds a client-credentials JWT to a key made by panva's `dpop` package, and
/// that package's proofs are accepted for initialize and get_me; the same proof replayed, a proof
/// of another key, a proof for another token, and the bound token as a bearer token are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn a_dpop_bound_token_from_a_certified_provider_is_accepted_with_an_independent_proof() {
    use base64::Engine as _;

    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = server(listener, &idp.issuer).await;
    let report = dpop_client(&node, &server, &idp, None).await;

    let token = report["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).expect("a JWT access token");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims["cnf"]["jkt"].is_string(),
        "RFC 9449 §6.1: the provider bound the token: {claims}"
    );
    assert_accepted_then_refused(&report, &idp, "jwt");
}

/// P01 and RFC 9449 §6.2: an opaque token the provider bound with DPoP is bound through its
/// introspection answer's `cnf.jkt`: the independent proof is accepted, every forgery refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn a_dpop_bound_opaque_token_is_bound_through_introspection() {
    let node = node();
    let (listener, port) = RunningServer::bind().await;
    let idp = RealIdp::start(&node, 0, &resources(port));
    let server = introspecting_server(listener, &idp).await;
    let report = dpop_client(&node, &server, &idp, Some(OPAQUE_RESOURCE)).await;

    let token = report["access_token"].as_str().unwrap();
    assert_ne!(token.split('.').count(), 3, "an opaque token: {token}");
    assert_accepted_then_refused(&report, &idp, "introspection");
}

/// Runs `dpop-client.mjs` against `server` for a token for `resource` (default: the endpoint).
async fn dpop_client(
    node: &std::path::Path,
    server: &RunningServer,
    idp: &RealIdp,
    resource: Option<&str>,
) -> serde_json::Value {
    let mut client = script(node, "dpop-client.mjs");
    client.args([
        server.endpoint.as_str(),
        idp.issuer.as_str(),
        CLIENT_ID,
        CLIENT_SECRET,
    ]);
    client.args(resource);
    let report = report_of(client, SCRIPT_DEADLINE).await;
    assert_eq!(report["token_type"], "DPoP", "RFC 9449 §5: {report}");
    report
}

/// The script's correct proofs got initialize and get_me answered (verified by `verified_by`);
/// each forgery got a 401 naming its fault.
fn assert_accepted_then_refused(report: &serde_json::Value, idp: &RealIdp, verified_by: &str) {
    let accepted = &report["accepted"];
    assert_eq!(accepted["initialize"], 200, "{report}");
    assert_eq!(accepted["get_me"], 200, "{report}");
    let me = &accepted["result"]["result"]["structuredContent"];
    assert_eq!(me["client_id"], CLIENT_ID, "{report}");
    assert_eq!(me["issuer"], idp.issuer, "{report}");
    assert_eq!(me["verified_by"], verified_by, "{report}");

    for (case, error, description) in [
        ("replayed", "invalid_dpop_proof", "already used"),
        (
            "other_key",
            "invalid_token",
            "not the one the access token is bound to",
        ),
        ("other_token", "invalid_dpop_proof", "another access token"),
        (
            "as_bearer",
            "invalid_token",
            "cannot be used as a bearer token",
        ),
    ] {
        let answer = &report[case];
        assert_eq!(answer["status"], 401, "{case}: {report}");
        let challenges = answer["challenges"].as_str().unwrap_or_default();
        assert!(
            challenges.contains(&format!("error=\"{error}\"")) && challenges.contains(description),
            "{case}: {challenges}"
        );
    }
}
