//! Who may talk to the IdP: the admin API answers no web page (no CORS, no `Origin`, no
//! cross-site fetch), only requests addressed to the IdP's own host, and, when configured, only
//! the holder of the admin token; an IdP on loopback answers only its own host (DNS rebinding).

use mock_idp::{IdpError, MockIdp};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{builder, fixture_supply, http, start};

/// A web page on another site, or one whose name was rebound to 127.0.0.1, cannot mint a token,
/// move the clock or rotate keys: no CORS answer, and any request with an `Origin` (or that a
/// browser marks cross-site) is refused before it acts.
#[tokio::test]
async fn the_admin_api_answers_no_web_page() {
    let idp = start().await;
    let base = idp.url();
    let preflight = http()
        .request(reqwest::Method::OPTIONS, format!("{base}/admin/mint"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS on the admin API"
    );
    let before = idp.clock().now();
    let kid = idp.issuer().current_kid();
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("origin", base),
        ("sec-fetch-site", "cross-site"),
    ] {
        for (path, body) in [
            ("/admin/mint", json!({})),
            ("/admin/clock", json!({"advance_secs": 86_400})),
            ("/admin/rotate", json!({})),
        ] {
            let response = http()
                .post(format!("{base}{path}"))
                .header(name, value)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path} {name}");
            assert!(
                response
                    .headers()
                    .get("access-control-allow-origin")
                    .is_none()
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "access_denied");
            assert!(body.get("access_token").is_none());
        }
    }
    assert!(idp.clock().now() - before < 3600, "the clock did not move");
    assert_eq!(idp.issuer().current_kid(), kid, "no key was rotated");
    let typed = http()
        .post(format!("{base}/admin/mint"))
        .header("sec-fetch-site", "none")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(typed.status(), StatusCode::OK, "a request the user made");
}

/// An IdP on loopback answers only requests for a loopback name or address with its own port:
/// a rebound name (`Host: attacker.example`) gets a 403 on every route, the admin API included.
#[tokio::test]
async fn a_loopback_idp_answers_only_requests_for_its_own_host() {
    let idp = start().await;
    let port = idp.addr().port();
    let get_jwks = |host: String| {
        http()
            .get(idp.issuer().jwks_uri())
            .header("host", host)
            .send()
    };
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
    ] {
        let response = get_jwks(host.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    for host in [
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
    ] {
        let response = get_jwks(host.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "access_denied", "{host}");
    }
    let minted = http()
        .post(format!("{}/admin/mint", idp.url()))
        .header("host", format!("attacker.example:{port}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(minted.status(), StatusCode::FORBIDDEN);
}

/// With an admin token configured, admin requests need it as a bearer token; an empty token is
/// refused at start. Without one (the default) nothing changes for scripts on the machine.
#[tokio::test]
async fn the_admin_token_is_required_when_configured() {
    let idp = builder().admin_token("s3cret-admin").start().await.unwrap();
    let mint = |token: Option<&'static str>| {
        let mut request = http()
            .post(format!("{}/admin/mint", idp.url()))
            .json(&json!({}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for token in [None, Some("wrong"), Some("s3cret-admi"), Some("")] {
        let response = mint(token).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer"),
        );
        let body: Value = response.json().await.unwrap();
        assert!(body.get("access_token").is_none());
    }
    let response = mint(Some("s3cret-admin")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwks = http().get(idp.issuer().jwks_uri()).send().await.unwrap();
    assert_eq!(jwks.status(), StatusCode::OK, "other routes need no token");

    let empty = MockIdp::builder()
        .keys(fixture_supply())
        .admin(true)
        .admin_token(" ")
        .start()
        .await;
    assert!(matches!(empty, Err(IdpError::EmptyAdminToken)), "{empty:?}");
}
