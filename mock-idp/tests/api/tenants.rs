//! Several issuers in one process, by path: each with its own keys, so a token of one issuer
//! fails against another's keys and issuer name (checklist E07, J29).

use mock_idp::{AccessTokenSpec, Algorithm, IssuerSettings};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{DEMO_AUDIENCE, builder, demo_token, fetch_jwks, http, start, verify};

#[tokio::test]
async fn each_tenant_is_an_issuer_of_its_own_and_tokens_do_not_cross() {
    let idp = start().await;
    let a = idp.tenant("a").await.unwrap();
    let b = idp.tenant("b").await.unwrap();
    assert_eq!(a.url(), format!("{}/a", idp.url()));
    assert_ne!(a.current_kid(), b.current_kid());
    assert_ne!(a.current_kid(), idp.issuer().current_kid());

    let discovery: Value = http()
        .get(a.openid_configuration_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], a.url());
    let rfc8414 = http()
        .get(a.authorization_server_metadata_url())
        .send()
        .await
        .unwrap();
    assert_eq!(
        a.authorization_server_metadata_url(),
        format!("{}/.well-known/oauth-authorization-server/a", idp.url())
    );
    assert_eq!(rfc8414.json::<Value>().await.unwrap()["issuer"], a.url());

    let token_a = demo_token(&a.token_endpoint()).await;
    let jwks_a = fetch_jwks(&a.jwks_uri()).await;
    let jwks_b = fetch_jwks(&b.jwks_uri()).await;
    assert_eq!(
        verify(&token_a, &jwks_a, a.url(), DEMO_AUDIENCE).unwrap()["iss"],
        a.url()
    );
    let refused = verify(&token_a, &jwks_b, b.url(), DEMO_AUDIENCE).unwrap_err();
    assert!(refused.contains("not in the JWKS"), "{refused}");
    // Even when B's key set were used with A's issuer name, the key is A's own.
    assert!(verify(&token_a, &jwks_b, a.url(), DEMO_AUDIENCE).is_err());
}

#[tokio::test]
async fn tenants_are_created_by_their_first_request_with_configured_or_default_settings() {
    let idp = builder()
        .tenant(
            "edwards",
            IssuerSettings {
                algorithm: Algorithm::EdDSA,
                ..IssuerSettings::default()
            },
        )
        .start()
        .await
        .unwrap();
    let jwks: Value = http()
        .get(format!("{}/edwards/jwks", idp.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let jwks: Value = http()
        .get(format!("{}/fresh/jwks", idp.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let token = idp
        .tenant("fresh")
        .await
        .unwrap()
        .mint(&AccessTokenSpec::user("u"))
        .await
        .unwrap();
    assert!(
        verify(
            &token,
            &jwks,
            &format!("{}/fresh", idp.url()),
            DEMO_AUDIENCE
        )
        .is_ok()
    );
}

#[tokio::test]
async fn invalid_tenant_names_and_tenants_past_the_cap_are_not_found() {
    let idp = builder().max_tenants(1).start().await.unwrap();
    for bad in ["admin", "-dash", "a%20b", &"x".repeat(65)] {
        let response = http()
            .get(format!("{}/{bad}/jwks", idp.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    assert_eq!(
        http()
            .get(format!("{}/one/jwks", idp.url()))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        http()
            .get(format!("{}/two/jwks", idp.url()))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert!(matches!(
        idp.tenant("three").await,
        Err(mock_idp::IdpError::TooManyTenants(1))
    ));
}
