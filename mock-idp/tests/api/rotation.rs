//! Key rotation (OIDC Core §10.1.1): the new key signs at once, the old one stays published for
//! the grace period and then leaves the JWKS; rotation on demand (library and admin API) and on
//! a schedule driven by the clock.

use std::time::Duration;

use mock_idp::{AccessTokenSpec, Algorithm, IssuerSettings};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{DEMO_AUDIENCE, builder, fetch_jwks, http, inspect, start, verify};

/// A clock standing still at the real now: boundaries are exact, and tokens still verify
/// against jsonwebtoken's system-clock `exp` check.
fn frozen_now() -> mock_idp::Clock {
    mock_idp::Clock::frozen_at(mock_idp::Clock::system().now())
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_old_key_verifies_during_the_grace_period_and_not_after() {
    let idp = builder()
        .settings(IssuerSettings {
            grace_period: Duration::from_secs(600),
            ..IssuerSettings::default()
        })
        .clock(frozen_now())
        .start()
        .await
        .unwrap();
    let issuer = idp.issuer();
    let old_kid = issuer.current_kid();
    let old_token = issuer.mint(&AccessTokenSpec::user("alice")).await.unwrap();

    let rotation = issuer.rotate(None).await.unwrap();
    assert_eq!(rotation.retired_kid, old_kid);
    assert_ne!(rotation.new_kid, old_kid);
    let new_token = issuer.mint(&AccessTokenSpec::user("alice")).await.unwrap();
    assert_eq!(
        inspect(&new_token).0["kid"],
        rotation.new_kid,
        "the new key signs at once"
    );

    idp.clock().advance(Duration::from_secs(599));
    let during = fetch_jwks(&issuer.jwks_uri()).await;
    assert_eq!(kids(&during), [rotation.new_kid.clone(), old_kid.clone()]);
    verify(&old_token, &during, issuer.url(), DEMO_AUDIENCE)
        .expect("old key verifies during grace");
    verify(&new_token, &during, issuer.url(), DEMO_AUDIENCE).expect("new key verifies");

    idp.clock().advance(Duration::from_secs(1));
    let after = fetch_jwks(&issuer.jwks_uri()).await;
    assert_eq!(kids(&after), vec![rotation.new_kid.clone()]);
    let refused = verify(&old_token, &after, issuer.url(), DEMO_AUDIENCE).unwrap_err();
    assert!(refused.contains("not in the JWKS"), "{refused}");
}

#[tokio::test]
async fn a_scheduled_rotation_happens_when_the_clock_reaches_it() {
    let idp = builder()
        .settings(IssuerSettings {
            rotation_period: Some(Duration::from_secs(3600)),
            ..IssuerSettings::default()
        })
        .clock(frozen_now())
        .start()
        .await
        .unwrap();
    let issuer = idp.issuer();
    let first = issuer.current_kid();
    idp.clock().advance(Duration::from_secs(3599));
    assert_eq!(
        kids(&fetch_jwks(&issuer.jwks_uri()).await),
        vec![first.clone()]
    );
    idp.clock().advance(Duration::from_secs(1));
    let jwks = fetch_jwks(&issuer.jwks_uri()).await;
    let second = issuer.current_kid();
    assert_ne!(second, first);
    assert_eq!(
        kids(&jwks),
        [second.clone(), first.clone()],
        "rotated on the JWKS request, old key in grace"
    );
    idp.clock().advance(Duration::from_secs(3600));
    let token = issuer.mint(&AccessTokenSpec::user("a")).await.unwrap();
    assert_ne!(
        inspect(&token).0["kid"],
        second,
        "minting also honours the schedule"
    );
}

#[tokio::test]
async fn the_admin_endpoint_rotates_and_can_switch_algorithm() {
    let idp = start().await;
    let issuer = idp.issuer();
    let old = issuer.current_kid();
    let response = http()
        .post(format!("{}/admin/rotate", idp.url()))
        .json(&json!({"alg": "ES256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let rotation: Value = response.json().await.unwrap();
    assert_eq!(rotation["retired_kid"], old);
    assert_eq!(rotation["new_kid"], issuer.current_kid());
    let jwks = fetch_jwks(&issuer.jwks_uri()).await;
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    assert_eq!(jwks["keys"][1]["alg"], "RS256");
    let token = issuer.mint(&AccessTokenSpec::user("a")).await.unwrap();
    assert_eq!(inspect(&token).0["alg"], Algorithm::ES256.as_str());
    verify(&token, &jwks, issuer.url(), DEMO_AUDIENCE).unwrap();

    let empty_body = http()
        .post(format!("{}/admin/rotate", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(empty_body.status(), StatusCode::OK, "the body is optional");
    let bad = http()
        .post(format!("{}/admin/rotate", idp.url()))
        .json(&json!({"alg": "HS256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
