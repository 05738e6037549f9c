//! Fault injection per endpoint (status, delay, malformed body, connection drop; cleared on
//! demand), request counters, and the same through the admin API.

use std::time::{Duration, Instant};

use mock_idp::{Endpoint, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{http, start};

#[tokio::test]
async fn an_injected_status_is_served_until_cleared_and_only_on_that_endpoint() {
    let idp = start().await;
    let issuer = idp.issuer();
    issuer.set_fault(Endpoint::Jwks, Fault::status(503));
    assert_eq!(
        http().get(issuer.jwks_uri()).send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        http()
            .get(issuer.openid_configuration_url())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    issuer.clear_faults();
    assert_eq!(
        http().get(issuer.jwks_uri()).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_malformed_body_is_not_json() {
    let idp = start().await;
    idp.issuer()
        .set_fault(Endpoint::Jwks, Fault::malformed_body());
    let response = http().get(idp.issuer().jwks_uri()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.json::<Value>().await.is_err());
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_not_an_http_answer() {
    let idp = start().await;
    idp.issuer()
        .set_fault(Endpoint::Token, Fault::drop_connection());
    let outcome = async {
        let response = http().post(idp.issuer().token_endpoint()).send().await?;
        response.bytes().await
    }
    .await;
    assert!(
        outcome.is_err(),
        "expected a transport error, got {outcome:?}"
    );
}

#[tokio::test]
async fn a_delay_holds_the_answer_long_enough_for_a_client_timeout_to_fire() {
    let idp = start().await;
    idp.issuer()
        .set_fault(Endpoint::Jwks, Fault::delay(Duration::from_secs(30)));
    let started = Instant::now();
    let error = http()
        .get(idp.issuer().jwks_uri())
        .timeout(Duration::from_millis(200))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fault held, the client gave up"
    );
    // A delay followed by an action: both apply.
    idp.issuer().set_fault(
        Endpoint::Jwks,
        Fault::status(500).after(Duration::from_millis(50)),
    );
    let started = Instant::now();
    let response = http().get(idp.issuer().jwks_uri()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn counters_count_each_endpoint_including_faulted_requests_and_reset() {
    let idp = start().await;
    let issuer = idp.issuer();
    for _ in 0..3 {
        http().get(issuer.jwks_uri()).send().await.unwrap();
    }
    issuer.set_fault(Endpoint::Jwks, Fault::status(500));
    http().get(issuer.jwks_uri()).send().await.unwrap();
    http()
        .get(issuer.openid_configuration_url())
        .send()
        .await
        .unwrap();
    assert_eq!(issuer.requests(Endpoint::Jwks), 4);
    assert_eq!(issuer.requests(Endpoint::OpenidConfiguration), 1);
    assert_eq!(issuer.requests(Endpoint::OauthAuthorizationServer), 0);
    assert_eq!(issuer.requests(Endpoint::Token), 0);
    let other = idp.tenant("other").await.unwrap();
    assert_eq!(other.requests(Endpoint::Jwks), 0, "counters are per issuer");
    issuer.reset_counters();
    assert_eq!(issuer.requests(Endpoint::Jwks), 0);
}

#[tokio::test]
async fn faults_and_counters_are_driven_through_the_admin_api_too() {
    let idp = start().await;
    let base = idp.url();
    let set = http()
        .put(format!("{base}/admin/faults/jwks"))
        .json(&json!({"action": {"status": 502}, "delay_ms": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        http()
            .get(idp.issuer().jwks_uri())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_GATEWAY
    );
    let drop = http()
        .put(format!("{base}/admin/faults/token"))
        .json(&json!({"action": "drop_connection"}))
        .send()
        .await
        .unwrap();
    assert_eq!(drop.status(), StatusCode::NO_CONTENT);
    assert!(
        http()
            .post(idp.issuer().token_endpoint())
            .send()
            .await
            .is_err()
    );

    let counters: Value = http()
        .get(format!("{base}/admin/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        counters,
        json!({"openid-configuration": 0, "oauth-authorization-server": 0, "jwks": 1, "token": 1, "introspect": 0, "revoke": 0, "tokeninfo": 0})
    );
    assert_eq!(
        http()
            .delete(format!("{base}/admin/faults"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http()
            .get(idp.issuer().jwks_uri())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        http()
            .delete(format!("{base}/admin/counters"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let counters: Value = http()
        .get(format!("{base}/admin/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["jwks"], 0);

    let unknown = http()
        .put(format!("{base}/admin/faults/authorize"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let tenant = http()
        .put(format!("{base}/t1/admin/faults/jwks"))
        .json(&json!({"action": "malformed_body"}))
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), StatusCode::NO_CONTENT);
    assert!(
        http()
            .get(format!("{base}/t1/jwks"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_err()
    );
    assert_eq!(
        http()
            .get(idp.issuer().jwks_uri())
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the root issuer is unaffected"
    );
}
