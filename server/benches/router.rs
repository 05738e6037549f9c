//! One `tools/call get_me` through the whole router in-process (no sockets), with every check
//! on and on the bench-only build with the checks removed: what the checks cost, without the
//! network; and admission alone (the checks over a service that answers at once, against that
//! service alone). Needs the `bench-unchecked` feature:
//! `cargo bench -p mcp-oauth-server --features bench-unchecked --bench router`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use mcp_oauth_server::settings::{Issuer, Transport};
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Server, Settings, SystemClock};
use mock_idp::{AccessTokenSpec, KeyPair, KeySupply, MockIdp};
use tower::ServiceExt as _;

fn key(stem: &str) -> KeyPair {
    let path = format!("{}/../fixtures/keys/{stem}.pem", env!("CARGO_MANIFEST_DIR"));
    KeyPair::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn call(id: u64, token: &str) -> Request<Body> {
    Request::post("/mcp")
        .header(header::HOST, "127.0.0.1:8000")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(Body::from(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"get_me","arguments":{{}}}}}}"#
        )))
        .unwrap()
}

fn bench_router(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let idp = runtime
        .block_on(
            MockIdp::builder()
                .keys(KeySupply::new(["rsa-1"].map(key)))
                .start(),
        )
        .unwrap();
    let mut settings = Settings::local(
        Issuer::parse(idp.url()).unwrap(),
        SocketAddr::from(([127, 0, 0, 1], 8000)),
    );
    settings.transport = Transport::Stateless;
    settings.rate_limit.per_minute = None;
    let token = runtime
        .block_on(
            idp.issuer().mint(
                &AccessTokenSpec::user("alice")
                    .audience("http://localhost:8000/mcp")
                    .scope(["mcp:tools"])
                    .expires_in(std::time::Duration::from_secs(86_400)),
            ),
        )
        .unwrap();
    let app = runtime
        .block_on(
            Server::builder(settings)
                .handler(DefaultTools::new)
                .build(Arc::new(SystemClock)),
        )
        .unwrap();
    let checked = app.router();
    let unchecked = app.unchecked_router();
    let ids = AtomicU64::new(1);
    let run = |router: &Router| {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let response = runtime.block_on(async {
            let response = router.clone().oneshot(call(id, &token)).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, body)
        });
        assert_eq!(response.0, StatusCode::OK, "{:?}", response.1);
    };
    let mut group = c.benchmark_group("get_me in-process (stateless)");
    group.bench_function("every check", |b| b.iter(|| run(&checked)));
    group.bench_function("checks removed (bench build)", |b| {
        b.iter(|| run(&unchecked))
    });
    group.finish();

    // Admission alone: the checks over a service that answers at once, against that service
    // alone; a cached token (warmed by the runs above), a tools/call body.
    let admission = app.admission_router();
    let answered = app.answered_router();
    let answer = |router: &Router| {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let status = runtime.block_on(async {
            router
                .clone()
                .oneshot(call(id, &token))
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, StatusCode::OK);
    };
    let answer_2026 = |router: &Router| {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let mut request = call(id, &token);
        let headers = request.headers_mut();
        headers.insert("mcp-protocol-version", "2026-07-28".parse().unwrap());
        headers.insert("mcp-method", "tools/call".parse().unwrap());
        headers.insert("mcp-name", "get_me".parse().unwrap());
        let status =
            runtime.block_on(async { router.clone().oneshot(request).await.unwrap().status() });
        assert_eq!(status, StatusCode::OK);
    };
    let mut group = c.benchmark_group("admission alone (stateless, cached token)");
    group.bench_function("every check, then 200", |b| b.iter(|| answer(&admission)));
    group.bench_function(
        "every check, 2026-07-28 headers (body not read), then 200",
        |b| b.iter(|| answer_2026(&admission)),
    );
    group.bench_function("200 alone (baseline)", |b| b.iter(|| answer(&answered)));
    group.finish();
}

criterion_group!(benches, bench_router);
criterion_main!(benches);
