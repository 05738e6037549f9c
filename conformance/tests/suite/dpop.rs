//! DPoP at the resource server (RFC 9449 §4.3, §7.1, §7.2; checklist B15, D13, J48): with
//! `MCP_DPOP=allowed` or `required`, a DPoP-bound token is accepted with a proof of its key for
//! this request, once, and refused without one or as a bearer token; challenges and the RFC 9728
//! document say what is accepted.

use std::time::{SystemTime, UNIX_EPOCH};

use conformance::{TestEnv, initialize_request};
use mcp_oauth_server::settings::{DpopMode, NonceSecret};
use mock_idp::{AccessTokenSpec, Algorithm, KeyPair, dpop};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A client's proof key (a fixture P-256 key).
struct ProofKey(KeyPair);

impl ProofKey {
    fn fixture(stem: &str) -> Self {
        Self(conformance::fixture_key(stem))
    }

    /// RFC 7638: what a token bound to this key carries in `cnf.jkt` (the key's `kid`).
    fn thumbprint(&self) -> &str {
        self.0.kid()
    }

    /// A proof for `method` at `htu` with `token` and `jti`, its claims changed as `change` says.
    fn proof(
        &self,
        method: &str,
        htu: &str,
        token: &str,
        jti: &str,
        change: impl FnOnce(&mut Value),
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut claims = dpop::claims(method, htu, token, jti, i64::try_from(now).unwrap());
        change(&mut claims);
        dpop::sign(&self.0, Algorithm::ES256, &dpop::header(&self.0), &claims).unwrap()
    }
}

async fn env(mode: DpopMode) -> TestEnv {
    TestEnv::setup()
        .configure(move |settings| settings.dpop.mode = mode)
        .start()
        .await
}

async fn bound_token(env: &TestEnv, key: &ProofKey) -> String {
    env.mint(
        AccessTokenSpec::user("alice")
            .scope(["mcp:tools"])
            .claim("cnf", json!({"jkt": key.thumbprint()})),
    )
    .await
}

/// `initialize` with `authorization` and, when given, one `DPoP` header.
async fn call(env: &TestEnv, authorization: &str, proof: Option<&str>) -> reqwest::Response {
    let mut request = env
        .http
        .post(&env.endpoint)
        .headers(env.mcp_headers(None, None))
        .header("authorization", authorization)
        .json(&initialize_request());
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.unwrap()
}

fn challenges(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// §4.3, §7.1: a bound token with a correct proof is accepted; the same proof again is a replay;
/// each other fault is refused with the DPoP challenge naming it.
#[tokio::test]
async fn a_bound_token_needs_a_fresh_proof_of_its_key_for_this_request() {
    let env = env(DpopMode::Allowed).await;
    let key = ProofKey::fixture("p256-1");
    let token = bound_token(&env, &key).await;
    let dpop = format!("DPoP {token}");
    let proof = key.proof("POST", &env.endpoint, &token, "first", |_| {});
    assert_eq!(
        call(&env, &dpop, Some(&proof)).await.status(),
        StatusCode::OK
    );

    let replayed = call(&env, &dpop, Some(&proof)).await;
    assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
    let other = ProofKey::fixture("p256-2");
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        (
            "replayed",
            Some(proof.clone()),
            "invalid_dpop_proof",
            "already used",
        ),
        ("no proof", None, "invalid_dpop_proof", "one DPoP proof"),
        (
            "another method",
            Some(key.proof("GET", &env.endpoint, &token, "m", |_| {})),
            "invalid_dpop_proof",
            "another HTTP method",
        ),
        (
            "another URL",
            Some(key.proof("POST", "https://elsewhere.example/mcp", &token, "u", |_| {})),
            "invalid_dpop_proof",
            "another URL",
        ),
        (
            "another token",
            Some(key.proof("POST", &env.endpoint, "other-token", "t", |_| {})),
            "invalid_dpop_proof",
            "another access token",
        ),
        (
            "old",
            Some(key.proof("POST", &env.endpoint, &token, "o", |c| {
                c["iat"] = json!(c["iat"].as_u64().unwrap() - 3_600)
            })),
            "invalid_dpop_proof",
            "too old",
        ),
        (
            "another key",
            Some(other.proof("POST", &env.endpoint, &token, "k", |_| {})),
            "invalid_token",
            "not the one the access token is bound to",
        ),
    ];
    for (what, proof, code, description) in cases {
        let response = call(&env, &dpop, proof.as_deref()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let dpop_challenge = challenges(&response)
            .into_iter()
            .find(|c| c.starts_with("DPoP "))
            .unwrap_or_else(|| panic!("{what}: no DPoP challenge"));
        assert!(
            dpop_challenge.contains(&format!("error=\"{code}\"")),
            "{what}: {dpop_challenge}"
        );
        assert!(
            dpop_challenge.contains(description),
            "{what}: {dpop_challenge}"
        );
        assert!(
            dpop_challenge.contains("algs=\""),
            "{what}: {dpop_challenge}"
        );
    }
}

/// D13, J48 (RFC 9449 §7.2): a DPoP-bound token presented as a bearer token is refused, in every
/// mode; an unbound token presented with the DPoP scheme is not a DPoP token.
#[tokio::test]
async fn a_bound_token_is_never_a_bearer_token_and_a_bearer_token_is_not_dpop() {
    let key = ProofKey::fixture("p256-1");
    for mode in [DpopMode::Off, DpopMode::Allowed] {
        let env = env(mode).await;
        let token = bound_token(&env, &key).await;
        let response = call(&env, &format!("Bearer {token}"), None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{mode:?}");
        assert!(
            challenges(&response)[0].contains("error=\"invalid_token\""),
            "{mode:?}"
        );
    }
    let env = env(DpopMode::Allowed).await;
    let plain = env.token().await;
    assert_eq!(
        call(&env, &format!("Bearer {plain}"), None).await.status(),
        StatusCode::OK
    );
    let proof = key.proof("POST", &env.endpoint, &plain, "p", |_| {});
    let response = call(&env, &format!("DPoP {plain}"), Some(&proof)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        challenges(&response)
            .iter()
            .any(|c| c.contains("not bound to a DPoP key"))
    );
}

/// B15, RFC 9449 §7.1 and RFC 9728 §2: off, nothing mentions DPoP; allowed, a `DPoP` challenge
/// beside the Bearer one and the metadata's algorithms; required, only the `DPoP` challenge, a
/// bearer token is no credential, and the metadata says bound tokens are required.
#[tokio::test]
async fn challenges_and_metadata_say_what_is_accepted() {
    let key = ProofKey::fixture("p256-1");
    for (mode, schemes, required) in [
        (DpopMode::Off, vec!["Bearer"], None),
        (DpopMode::Allowed, vec!["Bearer", "DPoP"], Some(false)),
        (DpopMode::Required, vec!["DPoP"], Some(true)),
    ] {
        let env = env(mode).await;
        let anonymous = env.post(None, None, &initialize_request()).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        let offered: Vec<String> = challenges(&anonymous)
            .iter()
            .map(|c| c.split(' ').next().unwrap().to_owned())
            .collect();
        assert_eq!(offered, schemes, "{mode:?}");
        for challenge in challenges(&anonymous) {
            assert!(
                challenge.contains("resource_metadata=\""),
                "{mode:?}: {challenge}"
            );
            assert!(
                !challenge.contains("error="),
                "{mode:?}: no credentials, no error: {challenge}"
            );
        }
        let metadata: Value = env
            .get("/.well-known/oauth-protected-resource/mcp")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata
                .get("dpop_bound_access_tokens_required")
                .and_then(Value::as_bool),
            required,
            "{mode:?}"
        );
        if required.is_some() {
            let algs = metadata["dpop_signing_alg_values_supported"]
                .as_array()
                .unwrap();
            assert!(algs.iter().any(|a| a == "ES256") && !algs.iter().any(|a| a == "HS256"));
        }
        let body: Value = anonymous.json().await.unwrap();
        let expected = if mode == DpopMode::Required {
            "DPoP-bound token and proof required"
        } else {
            "Bearer token required"
        };
        assert_eq!(body["error_description"], expected, "{mode:?}");
        if mode == DpopMode::Required {
            let plain = env.token().await;
            let bearer = call(&env, &format!("Bearer {plain}"), None).await;
            assert_eq!(
                bearer.status(),
                StatusCode::UNAUTHORIZED,
                "a bearer token is no credential"
            );
            let token = bound_token(&env, &key).await;
            let proof = key.proof("POST", &env.endpoint, &token, "r", |_| {});
            assert_eq!(
                call(&env, &format!("DPoP {token}"), Some(&proof))
                    .await
                    .status(),
                StatusCode::OK
            );
        }
    }
}

/// D19 (RFC 9449 §8, §9): with `MCP_DPOP_NONCE=on`, a proof without the server's nonce is refused with
/// `use_dpop_nonce` and a `DPoP-Nonce` to retry with; the retry passes, and its answer carries the
/// current nonce. Two rotation periods later that nonce is refused and a new one handed out. A
/// bearer request is untouched.
#[tokio::test]
async fn with_nonces_on_a_proof_carries_the_nonce_the_server_provides() {
    let env = TestEnv::setup()
        .configure(|settings| {
            settings.dpop.nonce = Some(NonceSecret::from_bytes(vec![7; 32]).unwrap());
        })
        .start()
        .await;
    let key = ProofKey::fixture("p256-1");
    let token = bound_token(&env, &key).await;
    let nonce_of = |response: &reqwest::Response| {
        response.headers()["dpop-nonce"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let with_nonce = |token: &str, nonce: &str, jti: &str, later: i64| {
        let nonce = nonce.to_owned();
        key.proof("POST", &env.endpoint, token, jti, move |claims| {
            claims["nonce"] = json!(nonce);
            claims["iat"] = json!(claims["iat"].as_i64().unwrap() + later);
        })
    };
    let use_nonce = |response: &reqwest::Response, what: &str| {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        let dpop_challenge = challenges(response)
            .into_iter()
            .find(|c| c.starts_with("DPoP "))
            .unwrap();
        assert!(
            dpop_challenge.contains("error=\"use_dpop_nonce\""),
            "{what}: {dpop_challenge}"
        );
    };

    let dpop = format!("DPoP {token}");
    let without = call(
        &env,
        &dpop,
        Some(&key.proof("POST", &env.endpoint, &token, "a", |_| {})),
    )
    .await;
    use_nonce(&without, "no nonce");
    let nonce = nonce_of(&without);
    let retried = call(&env, &dpop, Some(&with_nonce(&token, &nonce, "b", 0))).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(
        nonce_of(&retried),
        nonce,
        "the current nonce, on a success too"
    );
    let forged = call(
        &env,
        &dpop,
        Some(&with_nonce(&token, "AAAAAABrSeA", "c", 0)),
    )
    .await;
    use_nonce(&forged, "a nonce the server never made");

    // Ten minutes on, with a token minted then (the first has expired).
    env.advance(600);
    let token = bound_token(&env, &key).await;
    let dpop = format!("DPoP {token}");
    let rotated_out = call(&env, &dpop, Some(&with_nonce(&token, &nonce, "d", 600))).await;
    use_nonce(&rotated_out, "two periods on");
    let fresh = nonce_of(&rotated_out);
    assert_ne!(fresh, nonce, "rotated");
    let again = call(&env, &dpop, Some(&with_nonce(&token, &fresh, "e", 600))).await;
    assert_eq!(again.status(), StatusCode::OK);

    let plain = env.token().await;
    let bearer = call(&env, &format!("Bearer {plain}"), None).await;
    assert_eq!(bearer.status(), StatusCode::OK);
    assert!(
        bearer.headers().get("dpop-nonce").is_none(),
        "bearer answers are untouched"
    );
}
