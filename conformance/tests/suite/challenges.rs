//! The 401/400 challenge shapes and how the token arrives (B01-B16, C01-C07).

use conformance::{TestEnv, challenge_params, initialize_request};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn params(response: &reqwest::Response) -> Vec<(String, String)> {
    let header = response
        .headers()
        .get("www-authenticate")
        .expect("a challenge")
        .to_str()
        .unwrap();
    challenge_params(header)
}

fn names(params: &[(String, String)]) -> Vec<&str> {
    params.iter().map(|(n, _)| n.as_str()).collect()
}

/// B01, B02, B03, B04, B05, B08, B16: no token → 401, Bearer with quoted resource_metadata that
/// dereferences to the PRM, no `error`, no MCP data in the body.
#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_challenge_pointing_at_the_metadata() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let response = env.post(None, None, &initialize_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let params = params(&response);
    assert_eq!(
        names(&params),
        ["resource_metadata", "scope"],
        "B08: no error without credentials"
    );
    assert_eq!(params[1].1, "mcp:tools", "B10");
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("result").is_none() && !body.to_string().contains("serverInfo"),
        "B16: {body}"
    );
    let metadata: Value = env
        .http
        .get(&params[0].1)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["resource"], env.endpoint,
        "B04, A04: the URL this client sends its requests to"
    );
}

/// B09, B14, E08: a bad token → 401 invalid_token with a description naming the problem.
#[tokio::test]
async fn a_bad_token_gets_invalid_token_with_a_specific_description() {
    let env = TestEnv::start().await;
    let expired = env
        .mint(
            mock_idp::AccessTokenSpec::user("a").expired_since(std::time::Duration::from_secs(600)),
        )
        .await;
    let other_audience = env
        .mint(mock_idp::AccessTokenSpec::user("a").audience("https://other.example/mcp"))
        .await;
    for (token, description) in [
        ("x.y.z", "malformed token"),
        (expired.as_str(), "token expired"),
        (other_audience.as_str(), "token audience is not this server"),
    ] {
        let response = env.post(Some(token), None, &initialize_request()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{description}: B09, never 403 (N2)"
        );
        let params = params(&response);
        assert_eq!(
            names(&params),
            ["resource_metadata", "error", "error_description"]
        );
        assert_eq!(params[1].1, "invalid_token");
        assert!(params[2].1.starts_with(description), "{}", params[2].1);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
}

/// B13, B14, C05: two Authorization headers, empty or non-token68 credentials → 400 invalid_request.
#[tokio::test]
async fn malformed_credentials_get_400_invalid_request() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let two = env
        .post_with(
            Some(&token),
            None,
            &[("authorization", &format!("Bearer {token}"))],
            &initialize_request(),
        )
        .await;
    let mut responses = vec![("two headers", two)];
    for value in ["Bearer ", "Bearer a b", "Bearer a=b"] {
        let mut headers = env.mcp_headers(None, None);
        headers.insert("authorization", value.parse().unwrap());
        responses.push((
            value,
            env.http
                .post(&env.endpoint)
                .headers(headers)
                .json(&initialize_request())
                .send()
                .await
                .unwrap(),
        ));
    }
    for (case, response) in responses {
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{case}");
        assert_eq!(
            params(&response)[1],
            ("error".into(), "invalid_request".into()),
            "{case}"
        );
    }
    let mut headers = env.mcp_headers(None, None);
    headers.insert(
        "authorization",
        reqwest::header::HeaderValue::from_bytes("Bearer äöü".as_bytes()).unwrap(),
    );
    let non_ascii = env
        .http
        .post(&env.endpoint)
        .headers(headers)
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(non_ascii.status(), StatusCode::BAD_REQUEST, "C05");
}

/// C01, C02: `Bearer` in any case works.
#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    for scheme in ["Bearer", "bearer", "bEaReR"] {
        let mut headers = env.mcp_headers(None, None);
        headers.insert(
            "authorization",
            format!("{scheme} {token}").parse().unwrap(),
        );
        let response = env
            .http
            .post(&env.endpoint)
            .headers(headers)
            .json(&initialize_request())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

/// B12: another scheme is "no credentials": 401 with a Bearer challenge, no error.
#[tokio::test]
async fn another_scheme_gets_a_bearer_challenge_without_error() {
    let env = TestEnv::start().await;
    let mut headers = env.mcp_headers(None, None);
    headers.insert("authorization", "Basic dTpw".parse().unwrap());
    let response = env
        .http
        .post(&env.endpoint)
        .headers(headers)
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(names(&params(&response)), ["resource_metadata"]);
}

/// C03, N6: a token in the query string is ignored.
#[tokio::test]
async fn a_token_in_the_query_is_ignored() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let response = env
        .http
        .post(format!("{}?access_token={token}", env.endpoint))
        .headers(env.mcp_headers(None, None))
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(names(&params(&response)), ["resource_metadata"]);
}

/// C07, J39: a 64 KiB token gets a 4xx and the server keeps serving.
#[tokio::test]
async fn an_oversized_token_gets_a_4xx_and_the_server_keeps_serving() {
    let env = TestEnv::start().await;
    let huge = "a".repeat(64 * 1024);
    let response = env.post(Some(&huge), None, &initialize_request()).await;
    assert!(
        matches!(response.status().as_u16(), 400 | 401 | 431),
        "{}",
        response.status()
    );
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// B06, B07: each parameter at most once; values only of allowed characters.
#[tokio::test]
async fn challenge_parameters_are_unique_and_clean() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let response = env
        .post(
            Some("x.y.z"),
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    let params = params(&response);
    let mut seen = names(&params);
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), params.len(), "B06");
    for (_, value) in &params {
        assert!(
            value
                .bytes()
                .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
            "B07: {value}"
        );
    }
}

/// D01, D02: the token is validated before the request is processed: a tool call with an
/// expired token gets 401 and no result, and the server logs no tool activity for it.
#[tokio::test]
async fn an_invalid_token_never_reaches_the_tool() {
    let env = TestEnv::start().await;
    let valid = env.token().await;
    let session = env.initialize(&valid).await;
    let expired = env
        .mint(
            mock_idp::AccessTokenSpec::user("alice")
                .scope(["mcp:tools"])
                .expired_since(std::time::Duration::from_secs(600)),
        )
        .await;
    let call = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}});
    let response = env.post(Some(&expired), session.as_deref(), &call).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response.text().await.unwrap();
    assert!(
        !body.contains("structuredContent") && !body.contains("alice"),
        "{body}"
    );
}
