//! The authorization server's keys: discovery (G01, G02), rotation without restart and at most
//! one refresh per cooldown for unknown kids (G05), outages (D12), readiness.

use std::time::Duration;

use conformance::{TestEnv, initialize_request};
use mcp_oauth_server::settings::{FetchUrl, Issuer, ResourceUrl};
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Server, Settings, SystemClock};
use mock_idp::attack::Forgery;
use mock_idp::{AccessTokenSpec, Endpoint, Fault};
use reqwest::StatusCode;

/// G01, G05: after a rotation at the IdP, a token under the new kid is accepted with no restart,
/// through one JWKS refresh.
#[tokio::test]
async fn a_rotated_key_is_picked_up_without_restart() {
    let env = TestEnv::start().await;
    let issuer = env.idp.issuer();
    let before = issuer.requests(Endpoint::Jwks);
    issuer.rotate(None).await.unwrap();
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    assert_eq!(issuer.requests(Endpoint::Jwks) - before, 1);
}

/// G05, J08: 1,000 tokens with random kids cause at most one JWKS fetch per cooldown window.
#[tokio::test]
async fn random_kids_cannot_multiply_jwks_fetches() {
    let env = TestEnv::start().await;
    let issuer = env.idp.issuer();
    let before = issuer.requests(Endpoint::Jwks);
    for i in 0..1000 {
        let token = issuer
            .forge(&Forgery::unknown_kid(
                AccessTokenSpec::user("mallory"),
                format!("kid-{i}"),
            ))
            .await
            .unwrap();
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(
        issuer.requests(Endpoint::Jwks) - before <= 1,
        "{} fetches",
        issuer.requests(Endpoint::Jwks) - before
    );
    // After the cooldown, the next unknown kid may trigger one more.
    env.advance(31);
    let token = issuer
        .forge(&Forgery::unknown_kid(
            AccessTokenSpec::user("mallory"),
            "late",
        ))
        .await
        .unwrap();
    env.post(Some(&token), None, &initialize_request()).await;
    assert!(issuer.requests(Endpoint::Jwks) - before <= 2);
}

/// G05, OIDC Core §10.1.1: after the IdP's grace period the old key leaves its JWKS, and once
/// the server's cached copy expires the old key's tokens get 401 (unknown key), while the new
/// key's tokens keep working.
#[tokio::test]
async fn after_the_grace_period_the_old_keys_tokens_are_refused() {
    let env = TestEnv::setup()
        .idp_settings(mock_idp::IssuerSettings {
            grace_period: Duration::from_secs(600),
            ..mock_idp::IssuerSettings::default()
        })
        .start()
        .await;
    let issuer = env.idp.issuer();
    let long_lived = |who: &str| {
        AccessTokenSpec::user(who)
            .scope(["mcp:tools"])
            .expires_in(Duration::from_secs(86_400))
    };
    let old = env.mint(long_lived("old")).await;
    issuer.rotate(None).await.unwrap();
    let new = env.mint(long_lived("new")).await;
    assert_eq!(
        env.initialize_status(Some(&new)).await,
        StatusCode::OK,
        "new kid, no restart"
    );
    assert_eq!(
        env.initialize_status(Some(&old)).await,
        StatusCode::OK,
        "old key within grace"
    );
    env.advance(601 + 300);
    let refused = env.post(Some(&old), None, &initialize_request()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("unknown key"), "{challenge}");
    assert_eq!(env.initialize_status(Some(&new)).await, StatusCode::OK);
}

/// D12: with the JWKS endpoint failing (500, garbage, dropped connection), known keys keep
/// working within the stale window, unknown kids fail closed (401, never 200); past the stale
/// window every token fails closed (503) and readiness drops.
#[tokio::test]
async fn a_jwks_outage_serves_known_keys_then_fails_closed() {
    let env = TestEnv::setup()
        .configure(|s| s.keys.stale_for = Duration::from_secs(600))
        .start()
        .await;
    let issuer = env.idp.issuer();
    for fault in [
        Fault::status(500),
        Fault::malformed_body(),
        Fault::drop_connection(),
    ] {
        issuer.set_fault(Endpoint::Jwks, fault.clone());
        env.advance(400);
        let token = env.token().await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::OK,
            "{fault:?}: stale keys serve"
        );
        let forged = issuer
            .forge(&Forgery::unpublished_key(AccessTokenSpec::user("m")))
            .await
            .unwrap();
        assert_eq!(
            env.initialize_status(Some(&forged)).await,
            StatusCode::UNAUTHORIZED,
            "{fault:?}"
        );
        issuer.clear_faults();
        env.advance(31);
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::OK,
            "refreshed"
        );
    }
    issuer.set_fault(Endpoint::Jwks, Fault::status(503));
    env.advance(2000);
    let token = env.token().await;
    let response = env.post(Some(&token), None, &initialize_request()).await;
    assert_eq!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "fails closed past the stale window"
    );
    let ready = env.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// D12: a JWKS endpoint that hangs costs at most the fetch timeout, and the token is refused.
#[tokio::test]
async fn a_hanging_jwks_endpoint_is_bounded_by_the_timeout() {
    let env = TestEnv::setup()
        .configure(|s| s.keys.timeout = Duration::from_secs(1))
        .start()
        .await;
    let issuer = env.idp.issuer();
    issuer.set_fault(Endpoint::Jwks, Fault::delay(Duration::from_secs(30)));
    let forged = issuer
        .forge(&Forgery::unpublished_key(AccessTokenSpec::user("m")))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let status = env.initialize_status(Some(&forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Readiness: the IdP down at start → /readyz 503 and tokens refused with 503 (fail closed),
/// /healthz 200; once the IdP is back the server becomes ready with no restart and no request.
#[tokio::test]
async fn readiness_waits_for_the_keys_and_recovers_without_restart() {
    let env = TestEnv::setup()
        .idp_fault_at_start(Endpoint::Jwks, Fault::status(503))
        .no_wait()
        .start()
        .await;
    let ready = env.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let healthy = env.get("/healthz").await;
    assert_eq!(healthy.status(), StatusCode::OK, "alive while not ready");
    let token = env.token().await;
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    env.idp.issuer().clear_faults();
    env.wait_until_ready(Duration::from_secs(10)).await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// G02: metadata naming another issuer is never used; the server does not start.
#[tokio::test]
async fn metadata_naming_another_issuer_stops_the_start() {
    let idp = mock_idp::MockIdp::builder()
        .keys(conformance::fixture_supply())
        .start()
        .await
        .unwrap();
    let mut settings = Settings::new(
        Issuer::parse(&format!("{}/", idp.url())).unwrap(),
        ResourceUrl::local(8000),
        "127.0.0.1:0".parse().unwrap(),
    );
    settings
        .issuers
        .primary_mut()
        .authorization_server
        .metadata_url = Some(FetchUrl::parse(&idp.issuer().openid_configuration_url()).unwrap());
    let error = Server::builder(settings)
        .handler(DefaultTools::new)
        .build(std::sync::Arc::new(SystemClock))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("names issuer"), "{error}");
}

/// Stale keys are refetched on demand once the IdP answers again.
#[tokio::test]
async fn stale_keys_are_refetched_on_demand() {
    let env = TestEnv::start().await;
    let issuer = env.idp.issuer();
    issuer.set_fault(Endpoint::Jwks, Fault::status(500));
    env.advance(100_000);
    assert!(!env.app().is_ready());
    issuer.clear_faults();
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    assert!(env.app().is_ready());
}

/// The verified-token cache never outlives a key: a token accepted (and remembered) under a key
/// is refused as soon as the server's next look at the JWKS finds the key gone, even though the
/// token itself has not expired.
#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_leaves_the_jwks() {
    let env = TestEnv::setup()
        .idp_settings(mock_idp::IssuerSettings {
            grace_period: Duration::ZERO,
            jwks_max_age: Duration::from_secs(60),
            ..mock_idp::IssuerSettings::default()
        })
        .start()
        .await;
    let token = env
        .mint(AccessTokenSpec::user("alice").expires_in(Duration::from_secs(3600)))
        .await;
    for _ in 0..3 {
        assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    }
    env.idp.issuer().rotate(None).await.unwrap();
    // Past the JWKS freshness (60 s), well within the cache's maximum age (300 s), the server
    // refetches on the next request and finds the key gone.
    env.advance(61);
    let response = env.post(Some(&token), None, &initialize_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_description"], "token signed by an unknown key");
}
