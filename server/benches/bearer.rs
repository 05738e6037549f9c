//! What the bearer layer costs per request, in-process (no sockets): a trivial service alone, and
//! behind [`Server::protect`] with a valid token on a verified-token cache hit, on a miss (cache off:
//! every request verifies the RS256 signature), and with each kind of bad token. Also the scope
//! gate's JSON parse of a typical `tools/call` body, which rmcp parses again.
//! Run: `cargo bench -p mcp-oauth-server --bench bearer` (results in BENCHMARKS.md).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark"
)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use mcp_oauth_server::settings::{Issuer, ResourceUrl, TokenCacheSettings};
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Server, Settings, SystemClock};
use mock_idp::attack::{Forgery, Signature};
use mock_idp::{AccessTokenSpec, Algorithm, KeyPair, KeySupply, MockIdp};
use tower::ServiceExt as _;

const RESOURCE: &str = "https://mcp.example.com/mcp";

fn key(stem: &str) -> KeyPair {
    let path = format!("{}/../fixtures/keys/{stem}.pem", env!("CARGO_MANIFEST_DIR"));
    KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn trivial() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

async fn app(idp: &MockIdp, cache: TokenCacheSettings) -> Server {
    let mut settings = Settings::new(
        Issuer::parse(idp.url()).unwrap(),
        ResourceUrl::parse(RESOURCE).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    settings.token_cache = cache;
    let app = Server::builder(settings)
        .handler(DefaultTools::new)
        .build(Arc::new(SystemClock))
        .await
        .unwrap();
    assert!(app.is_ready());
    app
}

fn request(token: &str) -> Request<Body> {
    Request::get("/")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

fn bench_bearer(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let idp = runtime
        .block_on(
            MockIdp::builder()
                .keys(KeySupply::new(["rsa-1", "rsa-2"].map(key)))
                .algorithm(Algorithm::RS256)
                .start(),
        )
        .unwrap();
    let spec = || {
        AccessTokenSpec::user("alice")
            .audience(RESOURCE)
            .scope(["mcp:tools", "mcp:read"])
            .expires_in(std::time::Duration::from_secs(86_400))
    };
    let issuer = idp.issuer();
    let token = runtime.block_on(issuer.mint(&spec())).unwrap();
    let cached = runtime.block_on(app(&idp, TokenCacheSettings::default()));
    let uncached = runtime.block_on(app(
        &idp,
        TokenCacheSettings {
            max_bytes: 0,
            ..TokenCacheSettings::default()
        },
    ));
    let plain = trivial();
    let protected_hit = cached.protect(trivial());
    let protected_miss = uncached.protect(trivial());

    let mut group = c.benchmark_group("bearer layer");
    let call = |router: &Router, token: &str, expected: StatusCode| {
        let response = runtime
            .block_on(router.clone().oneshot(request(token)))
            .unwrap();
        assert_eq!(response.status(), expected);
    };
    group.bench_function("no layer (baseline)", |b| {
        b.iter(|| call(&plain, &token, StatusCode::OK));
    });
    group.bench_function("valid RS256, cache hit", |b| {
        b.iter(|| call(&protected_hit, &token, StatusCode::OK));
    });
    group.bench_function("valid RS256, cache miss (cache off)", |b| {
        b.iter(|| call(&protected_miss, &token, StatusCode::OK));
    });
    let bad: Vec<(&str, String)> = vec![
        ("malformed", "not-a-jwt".to_owned()),
        (
            "alg none",
            runtime
                .block_on(issuer.forge(&Forgery::alg_none(spec(), "none")))
                .unwrap(),
        ),
        (
            "unknown kid",
            runtime
                .block_on(issuer.forge(&Forgery::unknown_kid(spec(), "no-such-kid")))
                .unwrap(),
        ),
        (
            "bad signature",
            runtime
                .block_on(
                    issuer.forge(&Forgery::new(spec()).signature(Signature::Bytes(vec![7; 256]))),
                )
                .unwrap(),
        ),
        (
            "expired",
            runtime
                .block_on(
                    issuer.mint(
                        &AccessTokenSpec::user("alice")
                            .audience(RESOURCE)
                            .expired_since(std::time::Duration::from_secs(3600)),
                    ),
                )
                .unwrap(),
        ),
        (
            "another audience",
            runtime
                .block_on(
                    issuer.mint(
                        &AccessTokenSpec::user("alice").audience("https://other.example/mcp"),
                    ),
                )
                .unwrap(),
        ),
    ];
    // Warm the unknown-kid cooldown so the bench measures the steady state (no JWKS fetch).
    for (_, token) in &bad {
        call(&protected_hit, token, StatusCode::UNAUTHORIZED);
    }
    for (name, token) in &bad {
        group.bench_function(format!("refused: {name}"), |b| {
            b.iter(|| call(&protected_hit, token, StatusCode::UNAUTHORIZED));
        });
    }
    group.finish();

    let body = br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"get_me","arguments":{},"_meta":{"progressToken":17}}}"#;
    c.bench_function("scope gate: parse a tools/call body", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(std::hint::black_box(body)).unwrap());
    });
}

criterion_group!(benches, bench_bearer);
criterion_main!(benches);
