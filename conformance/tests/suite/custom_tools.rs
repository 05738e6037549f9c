//! A server built on the library over someone else's tools: the `custom_tools` example's notes
//! tools (compiled from the example's own file), each declaring its scopes in its definition.
//! The attack corpus, session binding and guard tests also run against them (see `attacks.rs`
//! and `transport.rs`); here: per-tool step-up (H01-H05), scopes advertised in `tools/list`, the
//! metadata and the 401 challenge (A10, B10), and the caller inside a tool.

use conformance::server::Tools;
use conformance::{TestEnv, challenge_params, jsonrpc_body};
use mock_idp::AccessTokenSpec;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[path = "../../../server/examples/custom_tools/notes.rs"]
#[allow(
    dead_code,
    reason = "the example's file, compiled here as the user compiles it"
)]
mod notes;

/// The example's tools, as the harness takes them.
pub(crate) fn tools() -> Tools {
    Tools::of(notes::Notes::factory())
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

async fn env() -> TestEnv {
    TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .tools(tools())
        .start()
        .await
}

/// What `list_notes` answers `subject` (with a token allowed to read notes).
async fn notes_of(env: &TestEnv, subject: &str) -> Value {
    let reader = env
        .mint(AccessTokenSpec::user(subject).scope(["mcp:tools", "notes:read"]))
        .await;
    let session = env.initialize(&reader).await;
    let listed = env
        .post(
            Some(&reader),
            session.as_deref(),
            &call("list_notes", json!({})),
        )
        .await;
    let listed = jsonrpc_body(listed).await;
    listed["result"]["structuredContent"].clone()
}

/// The `scope` and `error` of a response's challenge.
fn challenge(response: &reqwest::Response) -> (Option<String>, Option<String>) {
    let params = response
        .headers()
        .get("www-authenticate")
        .map(|value| challenge_params(value.to_str().unwrap()))
        .unwrap_or_default();
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    (get("scope"), get("error"))
}

/// H01, H02, H03: each tool's declared scope is enforced as an HTTP 403 naming what that tool
/// needs, before it runs; the stepped-up token is served.
#[tokio::test]
async fn each_tool_needs_the_scope_it_declares() {
    let env = env().await;
    let basic = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools"]))
        .await;
    let session = env.initialize(&basic).await;
    for (tool, scope) in [("save_note", "notes:write"), ("list_notes", "notes:read")] {
        let response = env
            .post(
                Some(&basic),
                session.as_deref(),
                &call(tool, json!({"text": "hi"})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{tool}");
        assert_eq!(
            challenge(&response),
            (
                Some(format!("mcp:tools {scope}")),
                Some("insufficient_scope".to_owned())
            ),
            "{tool}"
        );
    }
    // get_me, added from the library, declares nothing: the basic scope is enough.
    let me = env.call_tool(&basic, session.as_deref(), "get_me").await;
    assert_eq!(me["result"]["isError"], false, "{me}");

    let writer = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "notes:write"]))
        .await;
    let session = env.initialize(&writer).await;
    let saved = env
        .post(
            Some(&writer),
            session.as_deref(),
            &call("save_note", json!({"text": "hi"})),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let saved = jsonrpc_body(saved).await;
    assert_eq!(saved["result"]["isError"], false, "{saved}");
    // Writing does not grant reading.
    let list = env
        .post(
            Some(&writer),
            session.as_deref(),
            &call("list_notes", json!({})),
        )
        .await;
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    assert_eq!(challenge(&list).0.as_deref(), Some("mcp:tools notes:read"));
}

/// The caller inside a tool: each caller sees only the notes their own token saved.
#[tokio::test]
async fn a_tool_reads_its_caller_from_the_verified_token() {
    let env = env().await;
    let scopes = ["mcp:tools", "notes:read", "notes:write"];
    let alice = env.mint(AccessTokenSpec::user("alice").scope(scopes)).await;
    let bob = env.mint(AccessTokenSpec::user("bob").scope(scopes)).await;
    for (token, text) in [(&alice, "alice's"), (&bob, "bob's")] {
        let session = env.initialize(token).await;
        let saved = env
            .post(
                Some(token),
                session.as_deref(),
                &call("save_note", json!({"text": text})),
            )
            .await;
        let saved = jsonrpc_body(saved).await;
        assert_eq!(saved["result"]["isError"], false, "{saved}");
    }
    assert_eq!(notes_of(&env, "alice").await, json!({"notes": ["alice's"]}));
}

/// `tools/list` shows each tool's scopes in its `_meta` (per-tool `securitySchemes`); the
/// metadata's `scopes_supported` lists every declared scope (A10); the 401 challenge's `scope`
/// names the basic scopes, what to ask for first (B10), and the 403 a tool's own (H05).
#[tokio::test]
async fn the_declared_scopes_are_advertised_everywhere() {
    let env = env().await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let listed = env
        .post(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    let listed = jsonrpc_body(listed).await;
    let schemes = |name: &str| {
        listed["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|tool| tool["name"] == name)
            .map(|tool| tool["_meta"]["securitySchemes"].clone())
            .unwrap_or_else(|| panic!("{name} listed: {listed}"))
    };
    assert_eq!(
        schemes("save_note"),
        json!([{"type": "oauth2", "scopes": ["notes:write"]}])
    );
    assert_eq!(
        schemes("list_notes"),
        json!([{"type": "oauth2", "scopes": ["notes:read"]}])
    );
    assert_eq!(schemes("get_me"), Value::Null, "get_me declares nothing");

    let metadata: Value = env
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["scopes_supported"],
        json!(["mcp:tools", "notes:read", "notes:write"])
    );
    let unauthenticated = env
        .post(None, None, &conformance::initialize_request())
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&unauthenticated),
        (Some("mcp:tools".to_owned()), None)
    );
}

/// B10: with no basic scopes configured, the 401 names every scope the tools declare (what a
/// client would otherwise take from `scopes_supported`).
#[tokio::test]
async fn without_basic_scopes_the_401_names_the_tools_scopes() {
    let env = TestEnv::setup().tools(tools()).start().await;
    let unauthenticated = env
        .post(None, None, &conformance::initialize_request())
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&unauthenticated),
        (Some("notes:read notes:write".to_owned()), None)
    );
}

/// `MCP_TOOL_SCOPES` still overrides what a tool declares, per deployment; a tool nobody has
/// needs only the basic scopes, and its call is answered by the handler, not as a 403.
#[tokio::test]
async fn configuration_overrides_a_declaration() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .tools(tools())
        .configure(|s| {
            s.scopes.require_for_tool("list_notes", ["notes:admin"]);
        })
        .start()
        .await;
    let reader = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "notes:read"]))
        .await;
    let session = env.initialize(&reader).await;
    let list = env
        .post(
            Some(&reader),
            session.as_deref(),
            &call("list_notes", json!({})),
        )
        .await;
    assert_eq!(list.status(), StatusCode::FORBIDDEN);
    assert_eq!(challenge(&list).0.as_deref(), Some("mcp:tools notes:admin"));
    let unknown = env
        .post(
            Some(&reader),
            session.as_deref(),
            &call("no_such_tool", json!({})),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let unknown = jsonrpc_body(unknown).await;
    assert!(unknown["error"].is_object(), "{unknown}");
}

/// A01, A04, A05: the router mounted inside an axum app of the user's at a nested path
/// (`/api/mcp`), served by `axum::serve`, not `Server::serve`: the app's routes stay public,
/// the MCP endpoint has its checks, its challenge names the path-suffixed metadata, both
/// metadata documents name the nested resource, and the keys the IdP refused at start are
/// loaded by the background task the program started itself.
#[tokio::test]
async fn the_router_mounts_inside_an_axum_app_at_a_nested_path() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use mcp_oauth_server::settings::{Issuer, ResourceUrl};
    use mcp_oauth_server::{Server, Settings, SystemClock};

    let idp = mock_idp::MockIdp::builder()
        .keys(conformance::fixture_supply())
        .start()
        .await
        .unwrap();
    idp.issuer()
        .set_fault(mock_idp::Endpoint::Jwks, mock_idp::Fault::status(503));
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let address = listener.local_addr().unwrap();
    let resource = format!("http://127.0.0.1:{}/api/mcp", address.port());
    let settings = Settings::new(
        Issuer::parse(idp.url()).unwrap(),
        ResourceUrl::parse(&resource).unwrap(),
        address,
    );
    let server = Server::builder(settings)
        .handler(notes::Notes::factory())
        .build(Arc::new(SystemClock))
        .await
        .unwrap();
    server.spawn_background();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "the user's own route" }))
        .merge(server.router());
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(format!("{base}/")).send().await.unwrap().status(),
        200
    );
    let ready = || {
        let url = format!("{base}/readyz");
        let http = http.clone();
        async move { http.get(url).send().await.is_ok_and(|r| r.status() == 200) }
    };
    assert!(!ready().await, "no keys yet: the IdP refused them");
    idp.issuer().clear_faults();
    assert!(
        conformance::eventually(std::time::Duration::from_secs(20), ready).await,
        "the background task loaded the keys"
    );

    let post = |token: Option<String>| {
        let mut request = http
            .post(&resource)
            .header("accept", "application/json, text/event-stream")
            .json(&conformance::initialize_request());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let challenged = post(None).await.unwrap();
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let params = challenge_params(challenged.headers()["www-authenticate"].to_str().unwrap());
    let suffixed = format!("{base}/.well-known/oauth-protected-resource/api/mcp");
    assert!(
        params.contains(&("resource_metadata".to_owned(), suffixed.clone())),
        "{params:?}"
    );
    for document in [
        suffixed,
        format!("{base}/.well-known/oauth-protected-resource"),
    ] {
        let metadata: Value = http
            .get(&document)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["resource"], resource.as_str(), "{document}");
    }
    let token = idp
        .issuer()
        .mint(&AccessTokenSpec::user("alice").audience(resource.as_str()))
        .await
        .unwrap();
    let served = post(Some(token)).await.unwrap();
    let status = served.status();
    assert_eq!(status, StatusCode::OK, "{:?}", served.text().await);
    server.shutdown();
    serving.abort();
}

/// A tool name said twice in the body, or a `Mcp-Name` header naming another tool than the body:
/// never a way to run `save_note` without `notes:write` (the gate and rmcp read the same name,
/// or rmcp refuses the disagreement).
#[tokio::test]
async fn a_tool_name_the_gate_and_rmcp_could_read_differently_runs_nothing_unscoped() {
    let env = env().await;
    let basic = env
        .mint(AccessTokenSpec::user("mallory").scope(["mcp:tools"]))
        .await;
    let session = env.initialize(&basic).await;
    // serde_json keeps the last member: the gate sees save_note.
    let twice = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"get_me","name":"save_note","arguments":{"text":"x"}}}"#;
    let mut headers = env.mcp_headers(Some(&basic), session.as_deref());
    headers.insert("content-type", "application/json".parse().unwrap());
    let response = env
        .http
        .post(&env.endpoint)
        .headers(headers.clone())
        .body(twice)
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.status(),
        StatusCode::OK,
        "a duplicated name is refused"
    );
    // The header names get_me, the body save_note.
    let mut disagreeing = headers;
    disagreeing.insert("mcp-method", "tools/call".parse().unwrap());
    disagreeing.insert("mcp-name", "get_me".parse().unwrap());
    let response = env
        .http
        .post(&env.endpoint)
        .headers(disagreeing)
        .json(&call("save_note", json!({"text": "x"})))
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.status(),
        StatusCode::OK,
        "a disagreeing header is refused"
    );
    // Nothing was saved for mallory.
    assert_eq!(notes_of(&env, "mallory").await, json!({"notes": []}));
}

/// N4, H01: the scopes of a call are decided from its body, never from `Mcp-Method`/`Mcp-Name`
/// (whose agreement with the body is rmcp's to check, and only for 2026-07-28): a 2026-07-28 call
/// gets the 403 step-up, headers cannot vouch for a body that is not JSON, and headers that
/// disagree with the body never run the body's tool.
#[tokio::test]
async fn a_tool_named_in_2026_headers_is_gated_by_its_body() {
    let env = env().await;
    let basic = env
        .mint(AccessTokenSpec::user("mallory").scope(["mcp:tools"]))
        .await;
    let send = |version: &'static str, header_name: &'static str, body_name: &'static str| {
        let mut headers = env.mcp_headers(Some(&basic), None);
        headers.insert("mcp-protocol-version", version.parse().unwrap());
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        headers.insert("mcp-name", header_name.parse().unwrap());
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": body_name, "arguments": {"text": "x"}, "_meta": {
                "io.modelcontextprotocol/protocolVersion": version,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {"name": "conformance", "version": "1"}
            }}
        });
        env.http
            .post(&env.endpoint)
            .headers(headers)
            .json(&body)
            .send()
    };
    let decided = send("2026-07-28", "save_note", "save_note").await.unwrap();
    assert_eq!(decided.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&decided).0.as_deref(),
        Some("mcp:tools notes:write")
    );
    // The headers decide nothing: a body that is not JSON is refused as such.
    let mut headers = env.mcp_headers(Some(&basic), None);
    headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
    headers.insert("mcp-method", "tools/call".parse().unwrap());
    headers.insert("mcp-name", "save_note".parse().unwrap());
    let unread = env
        .http
        .post(&env.endpoint)
        .headers(headers)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(unread.status(), StatusCode::BAD_REQUEST, "the body decides");
    let disagreeing = send("2026-07-28", "get_me", "save_note").await.unwrap();
    let status = disagreeing.status();
    let body = disagreeing.text().await.unwrap();
    assert!(
        status != StatusCode::OK || body.contains("\"error\""),
        "{status}: {body}"
    );
    assert!(!body.contains("saved note"), "{body}");
    let older = send("2025-06-18", "get_me", "save_note").await.unwrap();
    assert_eq!(older.status(), StatusCode::FORBIDDEN, "the body decides");

    assert_eq!(notes_of(&env, "mallory").await, json!({"notes": []}));
}
