//! What the bearer layer costs per request, in-process (no sockets): a trivial service alone, and
//! behind [`Server::protect`] with a valid token on a verified-token cache hit, on a miss (cache off:
//! every request verifies the RS256 signature), and with each kind of bad token. Also the scope
//! gate's JSON parse of a typical `tools/call` body, which rmcp parses again. And a DPoP-bound
//! token with a fresh proof per request (`MCP_DPOP=allowed`) against the same bearer token, cache
//! hit and miss: what a DPoP request costs over a bearer one (the proof's signing, the client's
//! work, is outside the timing).
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
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_oauth_server::settings::{DpopMode, Issuer, ResourceUrl, TokenCacheSettings};
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

/// The mock IdP, RS256 with the fixture keys.
async fn start_idp() -> MockIdp {
    MockIdp::builder()
        .keys(KeySupply::new(["rsa-1", "rsa-2"].map(key)))
        .algorithm(Algorithm::RS256)
        .start()
        .await
        .unwrap()
}

fn trivial() -> Router {
    Router::new().route("/", get(|| async { "ok" }))
}

async fn app(idp: &MockIdp, cache: TokenCacheSettings) -> Server {
    app_with(idp, cache, DpopMode::Off).await
}

async fn app_with(idp: &MockIdp, cache: TokenCacheSettings, dpop: DpopMode) -> Server {
    let mut settings = Settings::new(
        Issuer::parse(idp.url()).unwrap(),
        ResourceUrl::parse(RESOURCE).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    );
    settings.token_cache = cache;
    settings.dpop.mode = dpop;
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
    let idp = runtime.block_on(start_idp());
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

/// A fresh proof (its own `jti`) by `client` for `GET` of the resource with `token`.
fn proof(client: &KeyPair, token: &str, jti: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = i64::try_from(now).unwrap();
    mock_idp::dpop::proof(client, "GET", RESOURCE, token, &jti.to_string(), now).unwrap()
}

fn bench_dpop(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let idp = runtime.block_on(start_idp());
    let client = key("p256-1");
    let spec = || {
        AccessTokenSpec::user("alice")
            .audience(RESOURCE)
            .scope(["mcp:tools"])
            .expires_in(std::time::Duration::from_secs(86_400))
    };
    let issuer = idp.issuer();
    let bearer = runtime.block_on(issuer.mint(&spec())).unwrap();
    let bound = runtime
        .block_on(issuer.mint(&spec().claim("cnf", serde_json::json!({"jkt": client.kid()}))))
        .unwrap();
    let no_cache = TokenCacheSettings {
        max_bytes: 0,
        ..TokenCacheSettings::default()
    };
    let hit = runtime
        .block_on(app_with(
            &idp,
            TokenCacheSettings::default(),
            DpopMode::Allowed,
        ))
        .protect(trivial());
    let miss = runtime
        .block_on(app_with(&idp, no_cache, DpopMode::Allowed))
        .protect(trivial());
    let call = |router: &Router, request: Request<Body>| {
        let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    };
    let dpop_request = |proof: String| {
        Request::get("/")
            .header(header::AUTHORIZATION, format!("DPoP {bound}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    let mut group = c.benchmark_group("dpop");
    let mut jti = 0u64;
    for (cache, router) in [("cache hit", &hit), ("cache miss", &miss)] {
        group.bench_function(format!("bearer RS256, {cache}"), |b| {
            b.iter(|| call(router, request(&bearer)));
        });
        group.bench_function(format!("DPoP RS256 + ES256 proof, {cache}"), |b| {
            b.iter_batched(
                || {
                    jti += 1;
                    dpop_request(proof(&client, &bound, jti))
                },
                |request| call(router, request),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench_bearer, bench_dpop);
criterion_main!(benches);
