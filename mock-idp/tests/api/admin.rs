//! The admin test API: off unless enabled; mints valid and deliberately bad tokens; moves the clock.

use std::time::Duration;

use mock_idp::{AccessTokenSpec, MockIdp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{DEMO_AUDIENCE, fetch_jwks, fixture_supply, http, inspect, start, verify};

async fn mint(base: &str, request: Value) -> (StatusCode, Value) {
    let response = http()
        .post(format!("{base}/admin/mint"))
        .json(&request)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn the_admin_api_is_off_unless_enabled() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    for path in ["/admin/mint", "/admin/rotate", "/admin/clock"] {
        let response = http()
            .post(format!("{}{path}", idp.url()))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn minting_over_http_gives_a_valid_token_by_default_and_honours_every_override() {
    let idp = start().await;
    let base = idp.url();
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;

    let (status, body) = mint(
        base,
        json!({"subject": "bob", "scope": "mcp:tools", "claims": {"uid": "00u1"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap();
    let claims = verify(token, &jwks, idp.url(), DEMO_AUDIENCE).unwrap();
    assert_eq!(
        (
            claims["sub"].as_str(),
            claims["scope"].as_str(),
            claims["uid"].as_str()
        ),
        (Some("bob"), Some("mcp:tools"), Some("00u1"))
    );

    let cases = [
        (json!({"expires_in": -600}), "ExpiredSignature"),
        (json!({"not_before_in": 600}), "ImmatureSignature"),
        (
            json!({"claims": {"iss": "https://evil.example"}}),
            "InvalidIssuer",
        ),
        (
            json!({"audience": "https://other.example/mcp"}),
            "InvalidAudience",
        ),
        (
            json!({"remove_claims": ["exp"]}),
            "Missing required claim: exp",
        ),
        (json!({"header": {"kid": "no-such-key"}}), "not in the JWKS"),
        (json!({"signature": "unpublished"}), "not in the JWKS"),
        (
            json!({"signature": "unpublished", "header": {"kid": idp.issuer().current_kid()}}),
            "InvalidSignature",
        ),
        (json!({"header": {"alg": "none"}, "signature": "empty"}), ""),
        (json!({"sign_alg": "RS512"}), "does not match the key"),
    ];
    for (request, expected) in cases {
        let (status, body) = mint(base, request.clone()).await;
        assert_eq!(status, StatusCode::OK, "{request}: {body}");
        let token = body["access_token"].as_str().unwrap();
        let error = verify(token, &jwks, idp.url(), DEMO_AUDIENCE).expect_err(&request.to_string());
        assert!(error.contains(expected), "{request}: {error}");
    }
    let (_, body) = mint(
        base,
        json!({"header": {"alg": "none"}, "signature": "empty"}),
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    assert!(token.ends_with('.'), "alg none has an empty signature");
    assert_eq!(inspect(token).0["alg"], "none");
}

#[tokio::test]
async fn malformed_admin_requests_get_400_with_a_reason() {
    let idp = start().await;
    let base = idp.url();
    for request in [
        json!({"nonsense": 1}),
        json!({"signature": "sideways"}),
        json!({"signature": {"kid": "missing"}}),
    ] {
        let (status, body) = mint(base, request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}");
        assert_eq!(body["error"], "invalid_request");
    }
    let not_json = http()
        .post(format!("{base}/admin/mint"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_clock_moves_token_times_and_is_driven_over_http() {
    let idp = start().await;
    let base = idp.url();
    let now: Value = http()
        .get(format!("{base}/admin/clock"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = now["now"].as_i64().unwrap();

    let moved: Value = http()
        .post(format!("{base}/admin/clock"))
        .json(&json!({"advance_secs": 3600}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(moved["now"].as_i64().unwrap() >= now + 3600);
    let token = idp
        .issuer()
        .mint(&AccessTokenSpec::user("a"))
        .await
        .unwrap();
    assert!(inspect(&token).1["iat"].as_i64().unwrap() >= now + 3600);

    let set: Value = http()
        .post(format!("{base}/admin/clock"))
        .json(&json!({"set": 1_000_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(set["now"], 1_000_000);
    idp.clock().advance(Duration::from_secs(5));
    let token = idp
        .issuer()
        .mint(&AccessTokenSpec::user("a").expires_in(Duration::from_secs(60)))
        .await
        .unwrap();
    let claims = inspect(&token).1;
    assert_eq!(
        (claims["iat"].as_i64(), claims["exp"].as_i64()),
        (Some(1_000_005), Some(1_000_065))
    );

    let reset: Value = http()
        .post(format!("{base}/admin/clock"))
        .json(&json!({"reset": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!((reset["now"].as_i64().unwrap() - now).abs() < 60);
    let bad = http()
        .post(format!("{base}/admin/clock"))
        .json(&json!({"advance_secs": -1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// `?count=N`: N distinct valid tokens of one recipe, one per line, for load tests; a count out
/// of range is a 400.
#[tokio::test]
async fn many_tokens_are_minted_at_once() {
    let idp = start().await;
    let base = idp.url();
    let response = http()
        .post(format!("{base}/admin/mint?count=50"))
        .json(&json!({"subject": "load", "scope": "mcp:tools"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let tokens: Vec<&str> = text.lines().collect();
    assert_eq!(tokens.len(), 50);
    let distinct: std::collections::HashSet<&&str> = tokens.iter().collect();
    assert_eq!(distinct.len(), 50, "each its own jti");
    let jwks = fetch_jwks(&idp.issuer().jwks_uri()).await;
    for token in tokens {
        let claims = verify(token, &jwks, idp.url(), DEMO_AUDIENCE).unwrap();
        assert_eq!(claims["sub"], "load");
    }
    for count in [0, 1_000_000] {
        let refused = http()
            .post(format!("{base}/admin/mint?count={count}"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
}
