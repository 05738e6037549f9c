//! OIDC discovery and RFC 8414 metadata: the issuer, and exactly the endpoints that exist.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{http, start};

#[tokio::test]
async fn both_metadata_documents_name_the_issuer_and_only_endpoints_that_answer() {
    let idp = start().await;
    let issuer = idp.issuer();
    for url in [
        issuer.openid_configuration_url(),
        issuer.authorization_server_metadata_url(),
    ] {
        let response = http().get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer.url(), "{url}");
        assert_eq!(doc["jwks_uri"], issuer.jwks_uri());
        assert_eq!(doc["token_endpoint"], issuer.token_endpoint());
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!(["client_credentials"])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post"])
        );
        let mut endpoints: Vec<&str> = doc
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.ends_with("_endpoint") || name.as_str() == "jwks_uri")
            .map(|(name, _)| name.as_str())
            .collect();
        endpoints.sort_unstable();
        assert_eq!(
            endpoints,
            ["jwks_uri", "token_endpoint"],
            "only endpoints that exist are listed"
        );
    }
    assert_eq!(
        http().get(issuer.jwks_uri()).send().await.unwrap().status(),
        StatusCode::OK
    );
    let token = http().post(issuer.token_endpoint()).send().await.unwrap();
    assert_ne!(token.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_jwks_is_cacheable_and_holds_only_public_signing_keys() {
    let idp = start().await;
    let response = http().get(idp.issuer().jwks_uri()).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["kid"], idp.issuer().current_kid());
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            key.get(private).is_none(),
            "private member {private} published"
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_a_json_404() {
    let idp = start().await;
    let response = http()
        .get(format!("{}/authorize", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
