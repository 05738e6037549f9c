//! DPoP at the token endpoint (RFC 9449 §5, §6, §8): a token request with a proof gets tokens
//! bound to its key, `token_type` `DPoP`, `cnf.jkt` in the access token and in introspection; a
//! bad or replayed proof is `invalid_dpop_proof`; nonces when the issuer asks for them; a public
//! client's refresh token works only with a proof of its key, and a refused attempt does not spend
//! it.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::{Client, IssuerSettings, KeyPair, MockIdp, dpop};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::harness::{builder, fixture_key, http, inspect};

const REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// A token-request proof by `key` at `idp`'s token endpoint, now by its clock.
fn proof(idp: &MockIdp, key: &KeyPair, nonce: Option<&str>) -> String {
    let jti = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    dpop::token_request_proof(
        key,
        &idp.issuer().token_endpoint(),
        &jti,
        idp.clock().now(),
        nonce,
    )
    .unwrap()
}

async fn token(
    idp: &MockIdp,
    proof: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let mut request = http().post(idp.issuer().token_endpoint()).form(form);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

const MACHINE: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("client_id", "demo-client"),
    ("client_secret", "demo-secret"),
];

/// §5, §6.1, §6.2: the token is bound to the proof's key in the JWT and in introspection; the
/// metadata lists the proof algorithms; a token request without a proof is a bearer one as ever.
#[tokio::test]
async fn a_proof_binds_the_token_to_its_key() {
    let idp = builder().start().await.unwrap();
    let key = fixture_key("p256-1");
    let (status, _, body) = token(&idp, Some(&proof(&idp, &key, None)), &MACHINE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let access = body["access_token"].as_str().unwrap();
    let (_, claims) = inspect(access);
    assert_eq!(claims["cnf"], json!({"jkt": key.kid()}));
    let introspected: Value = http()
        .post(format!("{}/introspect", idp.url()))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["token_type"], "DPoP");
    assert_eq!(introspected["cnf"], json!({"jkt": key.kid()}));

    let metadata: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            idp.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let algs = metadata["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&json!("ES256")) && !algs.contains(&json!("HS256")));

    let (_, _, plain) = token(&idp, None, &MACHINE).await;
    assert_eq!(plain["token_type"], "Bearer");
    assert!(
        inspect(plain["access_token"].as_str().unwrap())
            .1
            .get("cnf")
            .is_none()
    );
}

/// §4.3, §11.1: a proof that breaks a rule, or one used before, gets 400 `invalid_dpop_proof`
/// and no token.
#[tokio::test]
async fn a_bad_or_replayed_proof_gets_no_token() {
    let idp = builder().start().await.unwrap();
    let key = fixture_key("p256-1");
    let once = proof(&idp, &key, None);
    assert_eq!(token(&idp, Some(&once), &MACHINE).await.0, StatusCode::OK);
    let wrong_url = dpop::token_request_proof(
        &key,
        "https://elsewhere.example/token",
        "u",
        idp.clock().now(),
        None,
    )
    .unwrap();
    let stale = dpop::token_request_proof(
        &key,
        &idp.issuer().token_endpoint(),
        "s",
        idp.clock().now() - 3_600,
        None,
    )
    .unwrap();
    for (what, bad) in [
        ("replayed", once),
        ("another URL", wrong_url),
        ("an hour old", stale),
        ("not a JWS", "x.y".to_owned()),
    ] {
        let (status, _, body) = token(&idp, Some(&bad), &MACHINE).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(body["error"], "invalid_dpop_proof", "{what}: {body}");
        assert!(body.get("access_token").is_none());
    }
}

/// §8: an issuer that requires nonces answers a proof without one with `use_dpop_nonce` and a
/// `DPoP-Nonce`; the retry with it gets a bound token, and the answer carries the nonce to use.
#[tokio::test]
async fn nonces_when_the_issuer_asks_for_them() {
    let idp = builder()
        .settings(IssuerSettings {
            dpop_nonce: true,
            ..IssuerSettings::default()
        })
        .start()
        .await
        .unwrap();
    let key = fixture_key("p256-1");
    let (status, headers, body) = token(&idp, Some(&proof(&idp, &key, None)), &MACHINE).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "use_dpop_nonce");
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_owned();
    let (status, headers, body) =
        token(&idp, Some(&proof(&idp, &key, Some(&nonce))), &MACHINE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(headers["dpop-nonce"], nonce.as_str());
    let (status, _, body) = token(&idp, Some(&proof(&idp, &key, Some("made-up"))), &MACHINE).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("use_dpop_nonce"))
    );
}

/// §5: a public client's refresh token issued with a proof is bound to that key: without a proof
/// or with another key's it is `invalid_grant`, and those attempts leave it unspent; with a proof
/// of its key it rotates, and the new tokens are bound to the same key.
#[tokio::test]
async fn a_public_clients_refresh_token_needs_a_proof_of_its_key() {
    let idp = builder()
        .client(Client::public("app", [REDIRECT]).scopes(["mcp:tools"]))
        .auto_login("alice")
        .start()
        .await
        .unwrap();
    let key = fixture_key("p256-1");
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    let mut authorize = url::Url::parse(&idp.issuer().authorization_endpoint()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "app")
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scope", "mcp:tools");
    let redirect = http().get(authorize.as_str()).send().await.unwrap();
    let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1
        .into_owned();
    let (status, _, issued) = token(
        &idp,
        Some(&proof(&idp, &key, None)),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["token_type"], "DPoP");
    let refresh = issued["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", "app"),
        ("refresh_token", refresh),
    ];
    let other = fixture_key("p256-2");
    for (what, sent) in [
        ("no proof", None),
        ("another key", Some(proof(&idp, &other, None))),
    ] {
        let (status, _, body) = token(&idp, sent.as_deref(), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(body["error"], "invalid_grant", "{what}: {body}");
    }
    let (status, _, refreshed) = token(&idp, Some(&proof(&idp, &key, None)), &form).await;
    assert_eq!(status, StatusCode::OK, "still unspent: {refreshed}");
    assert_eq!(refreshed["token_type"], "DPoP");
    let (_, claims) = inspect(refreshed["access_token"].as_str().unwrap());
    assert_eq!(claims["cnf"]["jkt"], key.kid());
}
