//! The token endpoint: client_credentials, both client authentication methods, scope, RFC 8707
//! resource, and every RFC 6749 §5.2 error.

use mock_idp::{Client, IssuerSettings, TokenTyp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{DEMO_AUDIENCE, builder, fetch_jwks, http, inspect, start, verify};

async fn post_form(
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http().post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn client_secret_basic_yields_an_rfc_9068_token_that_verifies_against_the_jwks() {
    let idp = start().await;
    let issuer = idp.issuer();
    let (status, headers, body) = post_form(
        &issuer.token_endpoint(),
        Some(("demo-client", "demo-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools mcp:read"),
            ("resource", DEMO_AUDIENCE),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "mcp:tools mcp:read");
    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = inspect(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], issuer.current_kid());
    for claim in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "iat",
        "exp",
        "jti",
    ] {
        assert!(
            claims.get(claim).is_some(),
            "RFC 9068 §2.2 claim {claim} missing"
        );
    }
    assert_eq!(claims["sub"], "demo-client");
    assert_eq!(claims["client_id"], "demo-client");
    assert_eq!(claims["scope"], "mcp:tools mcp:read");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let jwks = fetch_jwks(&issuer.jwks_uri()).await;
    let verified = verify(token, &jwks, issuer.url(), DEMO_AUDIENCE).unwrap();
    assert_eq!(verified["iss"], issuer.url());
}

#[tokio::test]
async fn client_secret_post_works_and_unrequested_scopes_and_resources_take_the_defaults() {
    let idp = start().await;
    let (status, _, body) = post_form(
        &idp.issuer().token_endpoint(),
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = inspect(body["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], DEMO_AUDIENCE, "the client's first resource");
    assert_eq!(claims["scope"], "mcp:tools", "the client's default scopes");
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_gets_401_invalid_client_with_a_basic_challenge() {
    let idp = start().await;
    let url = idp.issuer().token_endpoint();
    type Basic<'a> = Option<(&'a str, &'a str)>;
    let cases: [(Basic, Vec<(&str, &str)>); 4] = [
        (Some(("demo-client", "wrong")), vec![]),
        (Some(("nobody", "demo-secret")), vec![]),
        (
            None,
            vec![("client_id", "demo-client"), ("client_secret", "wrong")],
        ),
        (None, vec![("client_id", "demo-client")]),
    ];
    for (basic, extra) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend(extra);
        let (status, headers, body) = post_form(&url, basic, &form).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{basic:?} {form:?}: {body}"
        );
        assert_eq!(body["error"], "invalid_client");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic realm="),
            "RFC 6749 §5.2"
        );
    }
}

#[tokio::test]
async fn no_client_authentication_gets_invalid_client() {
    let idp = start().await;
    let (status, _, body) = post_form(
        &idp.issuer().token_endpoint(),
        None,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let idp = start().await;
    let url = idp.issuer().token_endpoint();
    let both_methods = post_form(
        &url,
        Some(("demo-client", "demo-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ],
    )
    .await;
    let no_grant = post_form(
        &url,
        Some(("demo-client", "demo-secret")),
        &[("scope", "mcp:tools")],
    )
    .await;
    let repeated = post_form(
        &url,
        Some(("demo-client", "demo-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools"),
            ("scope", "mcp:read"),
        ],
    )
    .await;
    for (name, (status, headers, body)) in [
        ("two methods", both_methods),
        ("no grant_type", no_grant),
        ("repeated scope", repeated),
    ] {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"], "invalid_request", "{name}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert_eq!(headers["cache-control"], "no-store");
    }
    let json_body = http()
        .post(&url)
        .basic_auth("demo-client", Some("demo-secret"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        json_body.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn other_grant_types_are_unsupported() {
    let idp = start().await;
    let (status, _, body) = post_form(
        &idp.issuer().token_endpoint(),
        Some(("demo-client", "demo-secret")),
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"], "unauthorized_client",
        "a client-credentials client may not redeem codes"
    );
    for grant in ["password", "urn:ietf:params:oauth:grant-type:jwt-bearer"] {
        let (status, _, body) = post_form(
            &idp.issuer().token_endpoint(),
            Some(("demo-client", "demo-secret")),
            &[("grant_type", grant)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "unsupported_grant_type", "{grant}");
    }
}

#[tokio::test]
async fn a_scope_the_client_may_not_have_is_invalid_scope() {
    let idp = start().await;
    let (status, _, body) = post_form(
        &idp.issuer().token_endpoint(),
        Some(("demo-client", "demo-secret")),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools admin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
}

#[tokio::test]
async fn resources_become_the_audience_and_unknown_or_malformed_ones_are_invalid_target() {
    let idp = start().await;
    let url = idp.issuer().token_endpoint();
    let demo = Some(("demo-client", "demo-secret"));
    let (status, _, body) = post_form(
        &url,
        demo,
        &[
            ("grant_type", "client_credentials"),
            ("resource", DEMO_AUDIENCE),
            ("resource", "http://127.0.0.1:8000/mcp"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, claims) = inspect(body["access_token"].as_str().unwrap());
    assert_eq!(
        claims["aud"],
        json!([DEMO_AUDIENCE, "http://127.0.0.1:8000/mcp"]),
        "several resources: an array"
    );
    for bad in [
        "https://other.example/mcp",
        "not a uri",
        "/relative",
        "http://localhost:8000/mcp#frag",
    ] {
        let (status, _, body) = post_form(
            &url,
            demo,
            &[("grant_type", "client_credentials"), ("resource", bad)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"], "invalid_target", "{bad}");
    }
}

#[tokio::test]
async fn configured_clients_get_their_extra_claims_and_the_jwt_typ_switch_applies() {
    let okta_like = Client::new("okta-app", "s3cret", "api://default")
        .scopes(["openid", "mcp:tools"])
        .claim("uid", "00u1abcd")
        .claim("cid", "okta-app")
        .claim("groups", json!(["admins", "dev"]));
    let idp = builder()
        .client(okta_like)
        .settings(IssuerSettings {
            typ: TokenTyp::Jwt,
            default_audience: "api://default".into(),
            ..IssuerSettings::default()
        })
        .start()
        .await
        .unwrap();
    let (status, _, body) = post_form(
        &idp.issuer().token_endpoint(),
        Some(("okta-app", "s3cret")),
        &[("grant_type", "client_credentials"), ("scope", "mcp:tools")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (header, claims) = inspect(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["uid"], "00u1abcd");
    assert_eq!(claims["cid"], "okta-app");
    assert_eq!(claims["groups"], json!(["admins", "dev"]));
    assert_eq!(claims["aud"], "api://default");
    // The demo client is not registered when clients are configured.
    let (status, _, _) = post_form(
        &idp.issuer().token_endpoint(),
        Some(("demo-client", "demo-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_token_endpoint_refuses_get_and_oversized_bodies() {
    let idp = start().await;
    let url = idp.issuer().token_endpoint();
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    let huge = "a".repeat(128 * 1024);
    let response = http()
        .post(&url)
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", huge.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}
