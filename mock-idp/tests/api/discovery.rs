//! OIDC discovery and RFC 8414 metadata: the issuer, every endpoint and choice a client needs
//! (and only endpoints that answer).

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
            serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
        );
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(
            doc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        let mut endpoints: Vec<(&str, &str)> = doc
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| name.ends_with("_endpoint") || name.as_str() == "jwks_uri")
            .map(|(name, url)| (name.as_str(), url.as_str().unwrap()))
            .collect();
        endpoints.sort_unstable();
        assert_eq!(
            endpoints.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
            [
                "authorization_endpoint",
                "introspection_endpoint",
                "jwks_uri",
                "registration_endpoint",
                "revocation_endpoint",
                "token_endpoint",
                "userinfo_endpoint"
            ]
        );
        for (name, url) in endpoints {
            let get = http().get(url).send().await.unwrap().status();
            let post = http().post(url).send().await.unwrap().status();
            assert!(
                get != StatusCode::NOT_FOUND || post != StatusCode::NOT_FOUND,
                "{name} is listed but does not answer"
            );
        }
    }
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
        .get(format!("{}/no/such/endpoint", idp.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
}
