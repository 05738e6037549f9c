//! Wire-format snapshots: what a strict client sees, byte for byte where it matters. A reviewer
//! reads `snapshots/*.snap` as the spec of our wire format; CI never writes them (insta with
//! `CI` set), so any change shows up as a failing test and a reviewed diff.
//!
//! Volatile values are normalised before snapshotting: the server's port becomes `{PORT}`, the
//! IdP's base URL `{IDP}`, and times and token ids are redacted.

use std::collections::BTreeMap;

use conformance::{TestEnv, initialize_request, jsonrpc_body};
use mock_idp::AccessTokenSpec;
use serde_json::{Value, json};

/// The headers a client acts on; everything else (date, request id, vary) is left out.
const HEADERS: [&str; 14] = [
    "content-type",
    "dpop-nonce",
    "www-authenticate",
    "cache-control",
    "location",
    "retry-after",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
    "access-control-allow-credentials",
    "allow",
    "mcp-session-id",
];

fn normalise(env: &TestEnv, text: &str) -> String {
    let port = env
        .settings
        .resource
        .url
        .as_url()
        .port()
        .map(|p| p.to_string())
        .unwrap_or_default();
    text.replace(env.idp.url(), "{IDP}")
        .replace(&format!(":{port}"), ":{PORT}")
}

/// Status, the headers that matter (a header given more than once, such as one challenge per
/// scheme, as the list of its values in order), and the body (JSON when it is JSON).
async fn view(env: &TestEnv, response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let headers: BTreeMap<String, Value> = HEADERS
        .iter()
        .filter_map(|name| {
            let values: Vec<Value> = response
                .headers()
                .get_all(*name)
                .iter()
                .map(|v| {
                    let value = v.to_str().unwrap_or("<binary>");
                    Value::String(if *name == "mcp-session-id" {
                        "[session id]".to_owned()
                    } else if *name == "dpop-nonce" {
                        "[nonce]".to_owned()
                    } else {
                        normalise(env, value)
                    })
                })
                .collect();
            match values.len() {
                0 => None,
                1 => values.into_iter().next().map(|v| ((*name).to_owned(), v)),
                _ => Some(((*name).to_owned(), Value::Array(values))),
            }
        })
        .collect();
    let text = normalise(env, &response.text().await.unwrap());
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    json!({"status": status, "headers": headers, "body": body})
}

async fn env() -> TestEnv {
    TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| {
            s.scopes.require_for_tool("get_me", ["profile:read"]);
        })
        .start()
        .await
}

/// B01, B03, B08, B10: the 401 without a token.
#[tokio::test]
async fn rfc6750_no_token() {
    let env = env().await;
    let response = env.post(None, None, &initialize_request()).await;
    insta::assert_json_snapshot!("rfc6750_no_token", view(&env, response).await);
}

/// B09, E08: the 401 for a bad token.
#[tokio::test]
async fn rfc6750_bad_token() {
    let env = env().await;
    let expired = env
        .mint(
            AccessTokenSpec::user("alice")
                .scope(["mcp:tools"])
                .expired_since(std::time::Duration::from_secs(600)),
        )
        .await;
    let response = env.post(Some(&expired), None, &initialize_request()).await;
    insta::assert_json_snapshot!("rfc6750_expired_token", view(&env, response).await);
    let response = env.post(Some("x.y.z"), None, &initialize_request()).await;
    insta::assert_json_snapshot!("rfc6750_malformed_token", view(&env, response).await);
}

/// D14, D18, D19, B15 (RFC 9449 §7.1, §9): the DPoP refusals a client acts on. A proof's fault
/// is told in the `DPoP` challenge (`invalid_dpop_proof`), a key that is not the token's in it
/// as `invalid_token`; with nonces on, `use_dpop_nonce` and a `DPoP-Nonce`; with DPoP required,
/// the 401 without credentials offers the `DPoP` scheme alone.
#[tokio::test]
async fn rfc9449_challenges() {
    use mcp_oauth_server::settings::{DpopMode, NonceSecret};
    use mock_idp::{Algorithm, dpop};

    let proof_key = conformance::fixture_key("p256-1");
    let proof =
        |env: &TestEnv, key: &mock_idp::KeyPair, token: &str, jti: &str, nonce: Option<&str>| {
            use mcp_oauth_server::Clock as _;
            let mut claims = dpop::claims("POST", &env.endpoint, token, jti, env.clock.now());
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            dpop::sign(key, Algorithm::ES256, &dpop::header(key), &claims).unwrap()
        };
    let bound_spec = || {
        AccessTokenSpec::user("alice")
            .scope(["mcp:tools"])
            .claim("cnf", json!({"jkt": proof_key.kid()}))
    };
    async fn send(env: &TestEnv, token: &str, proof: Option<String>) -> reqwest::Response {
        let authorization = format!("DPoP {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        headers.extend(proof.as_deref().map(|p| ("dpop", p)));
        env.post_with(None, None, &headers, &initialize_request())
            .await
    }

    let env = env().await;
    let token = env.mint(bound_spec()).await;
    let stale = proof(&env, &proof_key, &token, "w1", None);
    let first = send(&env, &token, Some(stale.clone())).await;
    assert_eq!(first.status(), 200);
    let replayed = send(&env, &token, Some(stale)).await;
    insta::assert_json_snapshot!("rfc9449_invalid_dpop_proof", view(&env, replayed).await);
    let other_key = conformance::fixture_key("p256-2");
    let mismatch = send(
        &env,
        &token,
        Some(proof(&env, &other_key, &token, "w2", None)),
    )
    .await;
    insta::assert_json_snapshot!("rfc9449_key_mismatch", view(&env, mismatch).await);

    let with_nonces = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| s.dpop.nonce = Some(NonceSecret::from_bytes(vec![3; 32]).unwrap()))
        .start()
        .await;
    let token = with_nonces.mint(bound_spec()).await;
    let no_nonce = send(
        &with_nonces,
        &token,
        Some(proof(&with_nonces, &proof_key, &token, "w3", None)),
    )
    .await;
    insta::assert_json_snapshot!("rfc9449_use_dpop_nonce", view(&with_nonces, no_nonce).await);

    let required = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| s.dpop.mode = DpopMode::Required)
        .start()
        .await;
    let anonymous = required.post(None, None, &initialize_request()).await;
    insta::assert_json_snapshot!(
        "rfc9449_required_no_token",
        view(&required, anonymous).await
    );
}

/// B13: the 400 for a malformed request (two credentials).
#[tokio::test]
async fn rfc6750_malformed_request() {
    let env = env().await;
    let token = env.token().await;
    let response = env
        .post_with(
            Some(&token),
            None,
            &[("authorization", &format!("Bearer {token}"))],
            &initialize_request(),
        )
        .await;
    insta::assert_json_snapshot!("rfc6750_invalid_request", view(&env, response).await);
}

/// H01, H03: the 403 for missing scopes.
#[tokio::test]
async fn rfc6750_insufficient_scope() {
    let env = env().await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}});
    let response = env.post(Some(&token), session.as_deref(), &call).await;
    insta::assert_json_snapshot!("rfc6750_insufficient_scope", view(&env, response).await);
}

/// T02, T05: the 403s for a bad Origin and a bad Host.
#[tokio::test]
async fn forbidden_origin_and_host() {
    let env = env().await;
    let token = env.token().await;
    let origin = env
        .post_with(
            Some(&token),
            None,
            &[("origin", "https://evil.example")],
            &initialize_request(),
        )
        .await;
    insta::assert_json_snapshot!("origin_forbidden", view(&env, origin).await);
    let host = env
        .post_with(
            Some(&token),
            None,
            &[("host", "evil.example")],
            &initialize_request(),
        )
        .await;
    insta::assert_json_snapshot!("host_forbidden", view(&env, host).await);
}

/// A01-A05, A07-A12, A14, A17: both RFC 9728 documents.
#[tokio::test]
async fn rfc9728_documents() {
    let env = env().await;
    for (name, path) in [
        (
            "rfc9728_metadata_mcp",
            "/.well-known/oauth-protected-resource/mcp",
        ),
        (
            "rfc9728_metadata_root",
            "/.well-known/oauth-protected-resource",
        ),
    ] {
        let response = env
            .http
            .get(format!("{}{path}", env.base))
            .send()
            .await
            .unwrap();
        insta::assert_json_snapshot!(name, view(&env, response).await);
    }
}

/// A20: the 307 forwarding.
#[tokio::test]
async fn as_metadata_forwarding() {
    let env = env().await;
    let response = env.get("/.well-known/oauth-authorization-server").await;
    insta::assert_json_snapshot!("as_metadata_redirect", view(&env, response).await);
}

/// N16: the CORS preflight.
#[tokio::test]
async fn cors_preflight() {
    let env = env().await;
    let response = env
        .http
        .request(reqwest::Method::OPTIONS, &env.endpoint)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, mcp-session-id, mcp-protocol-version",
        )
        .send()
        .await
        .unwrap();
    insta::assert_json_snapshot!("cors_preflight", view(&env, response).await);
}

/// `tools/list` and `get_me`, as JSON-RPC messages.
#[tokio::test]
async fn tools_list_and_get_me() {
    let env = env().await;
    let token = env
        .mint(
            AccessTokenSpec::user("alice")
                .scope(["mcp:tools", "profile:read"])
                .claim("uid", "00u-alice"),
        )
        .await;
    let session = env.initialize(&token).await;
    let response = env
        .post(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    insta::assert_json_snapshot!("tools_list", jsonrpc_body(response).await);
    let me = env.call_tool(&token, session.as_deref(), "get_me").await;
    let me: Value = serde_json::from_str(&normalise(&env, &me.to_string())).unwrap();
    insta::assert_json_snapshot!("get_me", me, {
        ".result.structuredContent.issued_at" => "[time]",
        ".result.structuredContent.expires_at" => "[time]",
        ".result.structuredContent.token_id" => "[jti]",
        ".result.content[0].text" => "[the same object as text]",
    });
}

/// D12: the 503 when keys cannot be had; C07: the 431; the JSON-RPC parse error.
#[tokio::test]
async fn refusals_before_the_token_is_judged() {
    let env = TestEnv::setup()
        .idp_fault_at_start(mock_idp::Endpoint::Jwks, mock_idp::Fault::status(500))
        .no_wait()
        .start()
        .await;
    let token = env.token().await;
    let response = env.post(Some(&token), None, &initialize_request()).await;
    insta::assert_json_snapshot!("keys_unavailable", view(&env, response).await);
    let response = env
        .post_with(
            Some(&token),
            None,
            &[("x-padding", &"a".repeat(40 * 1024))],
            &initialize_request(),
        )
        .await;
    insta::assert_json_snapshot!("header_fields_too_large", view(&env, response).await);
    env.idp.issuer().clear_faults();
    env.wait_until_ready(std::time::Duration::from_secs(10))
        .await;
    let response = env
        .http
        .post(&env.endpoint)
        .headers(env.mcp_headers(Some(&token), None))
        .body("{oops")
        .send()
        .await
        .unwrap();
    insta::assert_json_snapshot!("jsonrpc_parse_error", view(&env, response).await);
}
