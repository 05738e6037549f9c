//! End-to-end cost of an authenticated MCP request over loopback HTTP: Host/Origin guard,
//! bearer validation, scope gate and rmcp, for `tools/call get_me`, in stateless JSON mode and
//! in session (SSE) mode; sequential (latency) and 32 in flight (throughput).
//! Run: `cargo bench -p conformance --bench http` (results in BENCHMARKS.md). Client and server
//! share the machine's cores.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark"
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conformance::TestEnv;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_oauth_server::settings::Transport;
use serde_json::json;

fn bench_http(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (mode, transport) in [
        ("stateless", Transport::Stateless),
        ("session", Transport::default()),
    ] {
        let env = runtime.block_on(
            TestEnv::setup()
                .configure(move |s| {
                    s.transport = transport;
                    // A benchmark is one principal sending as fast as it can.
                    s.rate_limit.per_minute = None;
                })
                .start(),
        );
        let token = runtime.block_on(env.token());
        let session = runtime.block_on(env.initialize(&token));
        // JSON-RPC ids must be unique among a session's in-flight requests (rmcp ends a session
        // that reuses one), so every request gets its own.
        let next_id = AtomicU64::new(1);
        let call = || {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}})
        };
        let mut group = c.benchmark_group(format!("get_me over HTTP ({mode})"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("sequential", |b| {
            b.to_async(&runtime).iter(|| async {
                let response = env.post(Some(&token), session.as_deref(), &call()).await;
                assert_eq!(response.status(), 200);
                response.bytes().await.unwrap()
            })
        });
        group.bench_function("32 in flight", |b| {
            b.to_async(&runtime).iter_custom(|iterations| {
                let env = &env;
                let (token, session, call) = (&token, &session, &call);
                async move {
                    let started = Instant::now();
                    let mut remaining = iterations;
                    while remaining > 0 {
                        let batch = remaining.min(32);
                        let requests = (0..batch).map(|_| async {
                            let response = env.post(Some(token), session.as_deref(), &call()).await;
                            assert_eq!(response.status(), 200);
                            response.bytes().await.unwrap();
                        });
                        futures_util::future::join_all(requests).await;
                        remaining -= batch;
                    }
                    started.elapsed()
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench_http
}
criterion_main!(benches);
