//! Every request authenticated (C04), sessions bound to their principal (K04, K06), Origin and
//! Host checks (T02, T03, T05), CORS preflight (N16), and limits.

use conformance::server::Tools;
use conformance::{TestEnv, initialize_request};
use mcp_oauth_server::settings::Transport;
use mock_idp::AccessTokenSpec;
use reqwest::StatusCode;
use serde_json::json;

/// C04, K03, T06, L08: after a successful initialize (whose notification got 202), each kind of request without a token gets 401:
/// POST request, POSTed notification (not 202), GET stream, DELETE.
#[tokio::test]
async fn every_kind_of_request_needs_the_token() {
    every_kind_of_request_needs_the_token_in_front_of(Tools::default).await;
}

/// The same, in front of the `custom_tools` example's tools.
#[tokio::test]
async fn every_kind_of_request_needs_the_token_in_front_of_custom_tools() {
    every_kind_of_request_needs_the_token_in_front_of(crate::custom_tools::tools).await;
}

async fn every_kind_of_request_needs_the_token_in_front_of(tools: fn() -> Tools) {
    let env = TestEnv::setup().tools(tools()).start().await;
    let token = env.token().await;
    let session = env.initialize(&token).await.expect("a session");
    let list = env
        .post(
            None,
            Some(&session),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    assert_eq!(
        list.status(),
        StatusCode::UNAUTHORIZED,
        "POST with a session id"
    );
    let notification = env
        .post(
            None,
            Some(&session),
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .await;
    assert_eq!(
        notification.status(),
        StatusCode::UNAUTHORIZED,
        "notification"
    );
    let headers = env.mcp_headers(None, Some(&session));
    let get = env
        .http
        .get(&env.endpoint)
        .headers(headers.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::UNAUTHORIZED, "GET stream");
    let delete = env
        .http
        .delete(&env.endpoint)
        .headers(headers)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::UNAUTHORIZED, "DELETE");
    // And with the token, the session still works.
    assert_eq!(
        env.call_tool(&token, Some(&session), "get_me").await["result"]["isError"],
        false
    );
}

/// K04, K06, K07, K08: another principal's token with a session id gets 404 (the session header
/// is sent in lower case, as header names are case-insensitive), as does an unknown id; the
/// owner's still works, and DELETE ends the session.
#[tokio::test]
async fn a_session_belongs_to_the_principal_that_opened_it() {
    sessions_belong_to_their_principal_in_front_of(Tools::default, "get_me").await;
}

/// The same, in front of the `custom_tools` example's tools.
#[tokio::test]
async fn a_session_belongs_to_the_principal_that_opened_it_in_front_of_custom_tools() {
    sessions_belong_to_their_principal_in_front_of(crate::custom_tools::tools, "save_note").await;
}

/// `tool` is one the handler under test lists: the session served is that handler's.
async fn sessions_belong_to_their_principal_in_front_of(tools: fn() -> Tools, tool: &str) {
    let env = TestEnv::setup().tools(tools()).start().await;
    let alice = env.mint(AccessTokenSpec::user("alice")).await;
    let bob = env.mint(AccessTokenSpec::user("bob")).await;
    let session = env.initialize(&alice).await.expect("a session");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(
        env.post(Some(&bob), Some(&session), &list).await.status(),
        StatusCode::NOT_FOUND,
        "K04"
    );
    assert_eq!(
        env.post(Some(&alice), Some("no-such-session"), &list)
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "K06"
    );
    let listed = env.post(Some(&alice), Some(&session), &list).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed = conformance::jsonrpc_body(listed).await;
    assert!(
        listed["result"]["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|t| t["name"] == tool)),
        "{tool} listed: {listed}"
    );
    let delete = env
        .http
        .delete(&env.endpoint)
        .headers(env.mcp_headers(Some(&alice), Some(&session)))
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    assert_eq!(
        env.post(Some(&alice), Some(&session), &list).await.status(),
        StatusCode::NOT_FOUND,
        "ended"
    );
}

/// T01, T02: a present, disallowed Origin gets 403 even with a valid token; T03: no Origin is fine;
/// an allowed (loopback) Origin is fine.
#[tokio::test]
async fn a_disallowed_origin_gets_403() {
    a_disallowed_origin_gets_403_in_front_of(Tools::default).await;
}

/// The same, in front of the `custom_tools` example's tools.
#[tokio::test]
async fn a_disallowed_origin_gets_403_in_front_of_custom_tools() {
    a_disallowed_origin_gets_403_in_front_of(crate::custom_tools::tools).await;
}

async fn a_disallowed_origin_gets_403_in_front_of(tools: fn() -> Tools) {
    let env = TestEnv::setup().tools(tools()).start().await;
    let token = env.token().await;
    let evil = env
        .post_with(
            Some(&token),
            None,
            &[("origin", "https://evil.example")],
            &initialize_request(),
        )
        .await;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = evil.json().await.unwrap();
    assert!(
        body["id"].is_null() && body["error"].is_object(),
        "a JSON-RPC error without id: {body}"
    );
    let local = env
        .post_with(
            Some(&token),
            None,
            &[("origin", "http://localhost:6274")],
            &initialize_request(),
        )
        .await;
    assert_eq!(local.status(), StatusCode::OK);
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::OK,
        "T03"
    );
}

/// T05, D06: a Host that is not allowed gets 403 (DNS rebinding), even with a token whose
/// audience names that host.
#[tokio::test]
async fn a_disallowed_host_gets_403() {
    a_disallowed_host_gets_403_in_front_of(Tools::default).await;
}

/// The same, in front of the `custom_tools` example's tools.
#[tokio::test]
async fn a_disallowed_host_gets_403_in_front_of_custom_tools() {
    a_disallowed_host_gets_403_in_front_of(crate::custom_tools::tools).await;
}

async fn a_disallowed_host_gets_403_in_front_of(tools: fn() -> Tools) {
    let env = TestEnv::setup().tools(tools()).start().await;
    let token = env
        .mint(AccessTokenSpec::user("alice").audience("http://evil.example/mcp"))
        .await;
    let response = env
        .post_with(
            Some(&token),
            None,
            &[("host", "evil.example")],
            &initialize_request(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// N16: a CORS preflight is answered without authentication and exposes the challenge and
/// session headers.
#[tokio::test]
async fn a_cors_preflight_is_answered_without_auth() {
    let env = TestEnv::start().await;
    let response = env
        .http
        .request(reqwest::Method::OPTIONS, &env.endpoint)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:6274"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("mcp-session-id"),
        "{allowed}"
    );
    let token = env.token().await;
    let actual = env
        .post_with(
            Some(&token),
            None,
            &[("origin", "http://localhost:6274")],
            &initialize_request(),
        )
        .await;
    let exposed = actual.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
}

/// Stateless mode: no session, JSON answers, get_me in one request.
#[tokio::test]
async fn stateless_mode_answers_json_without_sessions() {
    let env = TestEnv::setup()
        .configure(|s| s.transport = Transport::Stateless)
        .start()
        .await;
    let token = env.token().await;
    let response = env.post(Some(&token), None, &initialize_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("mcp-session-id").is_none());
    let result = env.call_tool(&token, None, "get_me").await;
    assert_eq!(result["result"]["structuredContent"]["user_id"], "alice");
}

/// C07: an oversized header gets 431, an oversized body 413, invalid JSON a JSON-RPC parse error
/// (-32700); after each, a valid request still succeeds.
#[tokio::test]
async fn oversized_and_invalid_requests_are_refused_and_the_server_keeps_serving() {
    let env = TestEnv::setup()
        .configure(|s| s.limits.max_body_bytes = 4096)
        .start()
        .await;
    let token = env.token().await;
    let padded = env
        .post_with(
            Some(&token),
            None,
            &[("x-padding", &"a".repeat(64 * 1024))],
            &initialize_request(),
        )
        .await;
    assert_eq!(padded.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(8192)}});
    assert_eq!(
        env.post(Some(&token), None, &big).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // The limit holds before anything of ours reads the body: a large body that is not JSON is
    // too large, not a parse error (the scope gate would otherwise have buffered all of it).
    let big_garbage = env
        .http
        .post(&env.endpoint)
        .headers(env.mcp_headers(Some(&token), None))
        .body("x".repeat(8192))
        .send()
        .await
        .unwrap();
    assert_eq!(big_garbage.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    let invalid = env
        .http
        .post(&env.endpoint)
        .headers(env.mcp_headers(Some(&token), None))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let error: serde_json::Value = invalid.json().await.unwrap();
    assert_eq!(error["error"]["code"], -32700);
    assert!(error["id"].is_null());
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// MCP 2026-07-28: a stateless request with the new headers and `_meta` is served (rmcp speaks
/// versions up to 2026-07-28), behind the same bearer layer.
#[tokio::test]
async fn a_2026_07_28_request_is_served_behind_the_same_auth() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let request = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/list",
        "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "conformance", "version": "1"}
        }}
    });
    let send = |token: Option<String>| {
        let mut headers = env.mcp_headers(token.as_deref(), None);
        headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
        headers.insert("mcp-method", "tools/list".parse().unwrap());
        env.http
            .post(&env.endpoint)
            .headers(headers)
            .json(&request)
            .send()
    };
    assert_eq!(
        send(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "N12: authorization on every request"
    );
    let response = send(Some(token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list = conformance::jsonrpc_body(response).await;
    assert_eq!(list["result"]["tools"][0]["name"], "get_me");
}

/// K01, K02: session ids are unique, unguessable-looking and visible ASCII.
#[tokio::test]
async fn session_ids_are_unique_and_visible_ascii() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..300 {
        let response = env.post(Some(&token), None, &initialize_request()).await;
        let id = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            id.len() >= 16 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)),
            "K02: {id}"
        );
        assert!(ids.insert(id), "K01: a session id repeated");
    }
}

/// K05: in session mode, a non-initialize request without a session id gets 400.
#[tokio::test]
async fn a_request_without_a_session_id_gets_400() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let response = env
        .post(
            Some(&token),
            None,
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

/// L01: an invalid or unsupported MCP-Protocol-Version gets 400, after authentication.
#[tokio::test]
async fn an_unsupported_protocol_version_header_gets_400() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let mut headers = env.mcp_headers(Some(&token), session.as_deref());
    headers.insert("mcp-protocol-version", "1999-01-01".parse().unwrap());
    let response = env
        .http
        .post(&env.endpoint)
        .headers(headers)
        .json(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
