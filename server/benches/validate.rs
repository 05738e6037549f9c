//! The cost of validating one access token: strict parsing, key selection, signature, claims.
//! Run: `cargo bench -p mcp-oauth-server --bench validate` (results in BENCHMARKS.md).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark"
)]

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use mcp_oauth_server::settings::{AlgorithmAllowList, Audience, Issuer, ValidationPolicy};
use mcp_oauth_server::validation::{KeySet, VerificationKey, validate};
use mock_idp::attack::Forgery;
use mock_idp::{AccessTokenSpec, Algorithm, KeyPair, KeySupply, MockIdp};

fn key(stem: &str) -> KeyPair {
    let path = format!("{}/../fixtures/keys/{stem}.pem", env!("CARGO_MANIFEST_DIR"));
    KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bench_validate(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let audience = "https://mcp.example.com/mcp";
    for alg in [
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let supply = KeySupply::new(
            [
                "rsa-1",
                "rsa-2",
                "p256-1",
                "p256-2",
                "ed25519-1",
                "ed25519-2",
            ]
            .map(key),
        );
        let idp = runtime
            .block_on(MockIdp::builder().keys(supply).algorithm(alg).start())
            .unwrap();
        let spec = AccessTokenSpec::user("alice")
            .audience(audience)
            .scope(["mcp:tools", "mcp:read"]);
        let token = runtime.block_on(idp.issuer().mint(&spec)).unwrap();
        let forged = runtime
            .block_on(idp.issuer().forge(&Forgery::unpublished_key(spec)))
            .unwrap();
        let keys = KeySet::new(
            idp.issuer().jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    VerificationKey::from_jwk(&serde_json::from_value::<Jwk>(k.clone()).unwrap())
                        .unwrap()
                })
                .collect(),
        );
        let policy = ValidationPolicy::new(
            Issuer::parse(idp.url()).unwrap(),
            Audience::new(audience).unwrap(),
        )
        .with_algorithms(AlgorithmAllowList::new([alg.as_str().parse().unwrap()]).unwrap());
        let now = idp.clock().now();
        c.bench_function(&format!("validate {alg} (valid)"), |b| {
            b.iter(|| validate(std::hint::black_box(&token), &keys, now, &policy).unwrap())
        });
        c.bench_function(&format!("validate {alg} (unknown kid)"), |b| {
            b.iter(|| validate(std::hint::black_box(&forged), &keys, now, &policy).unwrap_err())
        });
    }
}

criterion_group!(benches, bench_validate);
criterion_main!(benches);
