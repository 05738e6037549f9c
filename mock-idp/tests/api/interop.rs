//! Tokens verify with an implementation that shares no code with ours: panva's `jose` on Node,
//! fetching the JWKS over HTTP like a resource server. Needs Node and the package (`npm ci --prefix
//! mock-idp/tests/interop`, which `.ci/run` does): without the package `cargo test` lists the test
//! as ignored with that reason (see `build.rs`); in CI (`CI` set) it runs and fails saying so.

use std::path::PathBuf;
use std::process::Command;

use mock_idp::attack::Forgery;
use mock_idp::{AccessTokenSpec, Algorithm};
use serde_json::Value;

use crate::harness::{DEMO_AUDIENCE, builder, demo_token};

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Checks that Node and jose are here, else fails saying what is missing. Without jose the test
/// is compiled ignored outside CI (see `build.rs`), so this fails only in CI or when the test is
/// run with `--include-ignored`; Node, found on `PATH` when the test runs, is checked here only.
fn require_jose() {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        node,
        "needs Node on PATH: the jose interop test runs `node`"
    );
    let installed = interop_dir()
        .join("node_modules/jose/package.json")
        .exists();
    assert!(
        installed,
        "needs jose: npm ci --prefix mock-idp/tests/interop"
    );
}

fn jose_verify(jwks_uri: &str, issuer: &str, token: &str) -> Result<Value, String> {
    let output = Command::new("node")
        .arg(interop_dir().join("verify.mjs"))
        .args([jwks_uri, issuer, DEMO_AUDIENCE, token])
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Multi-threaded: the node process is awaited synchronously while the IdP keeps serving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_jose,
    ignore = "needs Node and jose: npm ci --prefix mock-idp/tests/interop"
)]
async fn jose_verifies_tokens_of_every_algorithm_and_refuses_a_forged_one() {
    require_jose();
    for alg in Algorithm::ALL {
        let idp = builder().algorithm(alg).start().await.unwrap();
        let issuer = idp.issuer();
        let token = demo_token(&issuer.token_endpoint()).await;
        let verified = jose_verify(&issuer.jwks_uri(), issuer.url(), &token)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(verified["header"]["alg"], alg.as_str());
        assert_eq!(verified["header"]["typ"], "at+jwt");
        assert_eq!(verified["payload"]["client_id"], "demo-client");

        let forged = issuer
            .forge(&Forgery::unpublished_key(AccessTokenSpec::user("mallory")))
            .await
            .unwrap();
        let refused = jose_verify(&issuer.jwks_uri(), issuer.url(), &forged).unwrap_err();
        assert!(
            refused.contains("ERR_JWKS_NO_MATCHING_KEY"),
            "{alg}: {refused}"
        );
    }
}
