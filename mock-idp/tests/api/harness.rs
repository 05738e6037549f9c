//! The one harness of these tests: fixture keys, a started IdP, an HTTP client, and token
//! inspection and verification with jsonwebtoken (independent of the IdP's signing path).

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use mock_idp::{KeyPair, KeySupply, MockIdp, MockIdpBuilder};
use serde_json::Value;

/// The repository's `fixtures/keys` folder.
pub(crate) fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/keys")
}

/// A fixture private key by file stem (`rsa-1`, `p256-2`, `ed25519-1`).
pub(crate) fn fixture_key(stem: &str) -> KeyPair {
    let pem = std::fs::read_to_string(keys_dir().join(format!("{stem}.pem"))).unwrap();
    KeyPair::from_pem(&pem).unwrap()
}

/// Every strong fixture key, so no test waits for key generation.
pub(crate) fn fixture_supply() -> KeySupply {
    let stems = [
        "rsa-1",
        "rsa-2",
        "rsa-3",
        "rsa-4",
        "p256-1",
        "p256-2",
        "ed25519-1",
        "ed25519-2",
    ];
    KeySupply::new(stems.into_iter().map(fixture_key))
}

/// A builder with fixture keys and the admin API on.
pub(crate) fn builder() -> MockIdpBuilder {
    MockIdp::builder().keys(fixture_supply()).admin(true)
}

/// An IdP with the defaults of [`builder`].
pub(crate) async fn start() -> MockIdp {
    builder().start().await.unwrap()
}

/// An HTTP client that never follows redirects.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The decoded header and claims of a compact JWS, without verifying anything.
pub(crate) fn inspect(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode =
        || serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    (decode(), decode())
}

/// Verifies `token` against `jwks` like a strict resource server: the key by `kid`, the algorithm
/// from the key, `iss`, `aud` and `exp` checked (against the system clock).
pub(crate) fn verify(
    token: &str,
    jwks: &Value,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let alg = jwk.common.key_algorithm.ok_or("JWK has no alg")?;
    let alg: jsonwebtoken::Algorithm = alg.to_string().parse().map_err(|_| "JWK alg unknown")?;
    if alg != header.alg {
        return Err(format!(
            "header alg {:?} does not match the key's {alg:?}",
            header.alg
        ));
    }
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// The JWKS the IdP serves over HTTP at `jwks_uri`.
pub(crate) async fn fetch_jwks(jwks_uri: &str) -> Value {
    http()
        .get(jwks_uri)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A client-credentials token for the demo client, over HTTP.
pub(crate) async fn demo_token(token_endpoint: &str) -> String {
    let body: Value = http()
        .post(token_endpoint)
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The demo client's default audience.
pub(crate) const DEMO_AUDIENCE: &str = "http://localhost:8000/mcp";
