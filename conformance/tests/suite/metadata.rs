//! RFC 9728 metadata (A01-A18) and the sample's AS-metadata forwarding (A20).

use conformance::TestEnv;
use mcp_oauth_server::settings::{AsMetadataMode, FetchUrl};
use reqwest::StatusCode;
use serde_json::Value;

/// A01-A09, A12, A14, A17: both documents (the root one, A06, with the same `resource`), unauthenticated, JSON, cacheable, `resource`
/// equal to the endpoint URL.
#[tokio::test]
async fn both_metadata_documents_describe_the_mcp_endpoint() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .configure(|s| {
            s.scopes.require_for_tool("get_me", ["mcp:read"]);
        })
        .start()
        .await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        for auth in [None, Some("Bearer garbage")] {
            let mut request = env.http.get(format!("{}{path}", env.base));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path} A09");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "A07"
            );
            assert!(
                response.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("max-age"),
                "A17"
            );
            let doc: Value = response.json().await.unwrap();
            assert_eq!(
                doc["resource"], env.endpoint,
                "A03, A04: the URL this client uses"
            );
            assert_eq!(
                doc["authorization_servers"],
                serde_json::json!([env.idp.url()]),
                "A02"
            );
            assert_eq!(
                doc["bearer_methods_supported"],
                serde_json::json!(["header"]),
                "A12"
            );
            assert_eq!(
                doc["scopes_supported"],
                serde_json::json!(["mcp:read", "mcp:tools"]),
                "A10"
            );
            assert!(doc["resource_name"].is_string(), "A14");
            assert!(
                doc.as_object()
                    .unwrap()
                    .values()
                    .all(|v| !v.is_null() && *v != serde_json::json!([])),
                "A08"
            );
        }
    }
}

/// A08, A11: no empty `scopes_supported`, never `offline_access`.
#[tokio::test]
async fn empty_scopes_are_omitted_and_offline_access_never_listed() {
    let env = TestEnv::start().await;
    let doc: Value = env
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json()
        .await
        .unwrap();
    assert!(doc.get("scopes_supported").is_none());
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools", "offline_access"])
        .start()
        .await;
    let doc: Value = env
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["scopes_supported"], serde_json::json!(["mcp:tools"]));
}

/// A18, D06: nothing in the metadata comes from the request's Host or X-Forwarded-* headers.
#[tokio::test]
async fn metadata_ignores_host_and_forwarded_headers() {
    let env = TestEnv::start().await;
    let doc: Value = env
        .http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/mcp",
            env.base
        ))
        .header("host", "evil.example")
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!doc.to_string().contains("evil.example"));
    assert_eq!(doc["resource"], env.resource());
}

/// A20, the sample's contract: GET and HEAD of `/.well-known/oauth-authorization-server` answer
/// 307 to the AS metadata (the issuer's RFC 8414 URL by default, OAUTH_WELL_KNOWN_URL if set).
#[tokio::test]
async fn the_authorization_server_metadata_is_forwarded_with_307() {
    let env = TestEnv::start().await;
    let expected = env.idp.issuer().authorization_server_metadata_url();
    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let response = env
            .http
            .request(
                method.clone(),
                format!("{}/.well-known/oauth-authorization-server", env.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::TEMPORARY_REDIRECT,
            "{method}"
        );
        assert_eq!(response.headers()["location"], expected.as_str());
    }
    let env = TestEnv::setup()
        .configure_with_idp(|s, idp| {
            s.issuers.primary_mut().authorization_server.metadata_url =
                Some(FetchUrl::parse(&idp.issuer().openid_configuration_url()).unwrap());
        })
        .start()
        .await;
    let response = env.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(
        response.headers()["location"],
        env.idp.issuer().openid_configuration_url().as_str(),
        "OAUTH_WELL_KNOWN_URL"
    );
}

/// A20 (proxy mode), G02: the AS metadata document discovery already holds (its issuer
/// checked) is served as is, with no fetch per request; it is fetched again once it is older
/// than five minutes.
#[tokio::test]
async fn the_proxy_mode_serves_the_document_discovery_holds() {
    let env = TestEnv::setup()
        .configure(|s| s.as_metadata = AsMetadataMode::Proxy)
        .start()
        .await;
    let fetches = || {
        env.idp
            .issuer()
            .requests(mock_idp::Endpoint::OauthAuthorizationServer)
    };
    let before = fetches();
    assert_eq!(before, 1, "discovery fetched it at start");
    let get = || async {
        let response = env.get("/.well-known/oauth-authorization-server").await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };
    for _ in 0..3 {
        let doc = get().await;
        assert_eq!(doc["issuer"], env.idp.url());
        assert_eq!(doc["jwks_uri"], env.idp.issuer().jwks_uri());
    }
    assert_eq!(fetches(), before, "served from what discovery holds");
    env.advance(301);
    get().await;
    assert_eq!(
        fetches(),
        before + 1,
        "fetched again when older than 5 minutes"
    );
}

/// A20, G02: in proxy mode, once the held document is stale, unauthenticated requests cost the
/// authorization server at most one discovery at a time and none within the failure cooldown;
/// while the AS fails, the held (issuer-checked) document is served, never a 502.
#[tokio::test]
async fn the_proxy_mode_asks_a_failing_authorization_server_once_and_serves_what_it_holds() {
    let env = TestEnv::setup()
        .configure(|s| s.as_metadata = AsMetadataMode::Proxy)
        .start()
        .await;
    let issuer = env.idp.issuer();
    let fetches = || {
        issuer.requests(mock_idp::Endpoint::OauthAuthorizationServer)
            + issuer.requests(mock_idp::Endpoint::OpenidConfiguration)
    };
    // The cooldown is measured on the server's clock: real time must not end it mid-test.
    env.freeze_clocks();
    for endpoint in [
        mock_idp::Endpoint::OauthAuthorizationServer,
        mock_idp::Endpoint::OpenidConfiguration,
    ] {
        issuer.set_fault(endpoint, mock_idp::Fault::status(500));
    }
    env.advance(301);
    let before = fetches();
    let many = || async {
        let responses = futures_util::future::join_all(
            (0..10).map(|_| env.get("/.well-known/oauth-authorization-server")),
        )
        .await;
        for response in responses {
            assert_eq!(response.status(), StatusCode::OK);
            let doc: Value = response.json().await.unwrap();
            assert_eq!(doc["issuer"], env.idp.url(), "the held document");
        }
    };
    many().await;
    let one_discovery = fetches() - before;
    assert!(
        (1..=3).contains(&one_discovery),
        "{one_discovery} fetches for 10 concurrent requests: one discovery tries at most 3 URLs"
    );
    many().await;
    assert_eq!(
        fetches() - before,
        one_discovery,
        "asked again within the cooldown"
    );
    env.advance(11);
    issuer.clear_faults();
    many().await;
    let after = fetches();
    assert_eq!(
        after,
        before + one_discovery + 1,
        "the cooldown over, one discovery for 10 concurrent requests"
    );
    many().await;
    assert_eq!(fetches(), after, "a fresh document again, held");
}
