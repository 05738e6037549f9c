//! Scopes and step-up: 403 insufficient_scope decided before any response byte (H01-H06).

use std::collections::BTreeMap;

use conformance::{TestEnv, challenge_params};
use mock_idp::AccessTokenSpec;
use reqwest::StatusCode;
use serde_json::json;

fn call(tool: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

/// H01, H02, H03, H05, B14, D02: a call needing two missing scopes gets one HTTP 403 naming every scope
/// the operation needs, with resource_metadata; the same call gets the same challenge again.
#[tokio::test]
async fn missing_scopes_get_one_403_naming_all_of_them() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| {
            s.scopes
                .require_for_tool("get_me", ["profile:read", "email:read"]);
        })
        .start()
        .await;
    let token = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools"]))
        .await;
    let session = env.initialize(&token).await;
    let mut challenges = Vec::new();
    for _ in 0..2 {
        let response = env
            .post(Some(&token), session.as_deref(), &call("get_me"))
            .await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "H02: an HTTP status, not a JSON-RPC error in a 200"
        );
        let header = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let params = challenge_params(&header);
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("error").as_deref(), Some("insufficient_scope"), "H01");
        assert_eq!(
            get("scope").as_deref(),
            Some("mcp:tools profile:read email:read"),
            "H03: all needed scopes"
        );
        assert_eq!(get("resource_metadata"), Some(env.metadata_url()));
        challenges.push(header);
    }
    assert_eq!(challenges[0], challenges[1], "H05: a consistent challenge");
    let upgraded = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "profile:read", "email:read"]))
        .await;
    let session = env.initialize(&upgraded).await;
    let result = env.call_tool(&upgraded, session.as_deref(), "get_me").await;
    assert_eq!(
        result["result"]["isError"], false,
        "the stepped-up token works"
    );
}

/// D09: a down-scoped token works for what it covers (listing tools needs only the basic scope).
#[tokio::test]
async fn a_down_scoped_token_works_for_what_it_covers() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| {
            s.scopes.require_for_tool("get_me", ["profile:read"]);
        })
        .start()
        .await;
    let token = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools"]))
        .await;
    let session = env.initialize(&token).await;
    let response = env
        .post(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// H01, J49: a token without the scope every request needs is refused at initialize with 403.
#[tokio::test]
async fn a_token_without_the_basic_scope_gets_403_at_once() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let token = env.mint(AccessTokenSpec::user("alice")).await;
    let response = env
        .post(Some(&token), None, &conformance::initialize_request())
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

/// H06: `offline_access` never appears in a challenge.
#[tokio::test]
async fn offline_access_is_never_challenged_for() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools", "offline_access"])
        .start()
        .await;
    let response = env
        .post(None, None, &conformance::initialize_request())
        .await;
    let header = response.headers()["www-authenticate"].to_str().unwrap();
    assert!(!header.contains("offline_access"), "{header}");
}

/// D08: scope hierarchies: a broader scope (configured to imply narrower ones, transitively)
/// satisfies a tool that needs a narrower one; an unrelated scope does not.
#[tokio::test]
async fn a_broader_scope_satisfies_a_narrower_one() {
    let env = TestEnv::setup()
        .configure(|s| {
            s.scopes
                .require_for_tool("get_me", ["mcp:read"])
                .with_hierarchy(&BTreeMap::from([
                    ("mcp:admin".to_owned(), vec!["mcp:write".to_owned()]),
                    ("mcp:write".to_owned(), vec!["mcp:read".to_owned()]),
                ]));
        })
        .start()
        .await;
    for (granted, expected) in [
        ("mcp:admin", StatusCode::OK),
        ("mcp:write", StatusCode::OK),
        ("mcp:read", StatusCode::OK),
        ("mcp:other", StatusCode::FORBIDDEN),
    ] {
        let token = env
            .mint(AccessTokenSpec::user("alice").scope([granted]))
            .await;
        let session = env.initialize(&token).await;
        let response = env
            .post(Some(&token), session.as_deref(), &call("get_me"))
            .await;
        assert_eq!(response.status(), expected, "{granted}");
    }
}
