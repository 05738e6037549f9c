//! **Benchmarks only.** The server with every request check removed (Host/Origin guard, bearer
//! layer, rate limit, scope gate, session binding): `bench/load.sh` runs it beside the real server
//! to measure what the checks cost. It admits anyone; it needs the `bench-unchecked` feature,
//! which no release enables:
//! `cargo run --release -p mcp-oauth-server --features bench-unchecked --example unchecked`.
//! Configured like the server (OAUTH_ISSUER, PORT, MCP_STATELESS...).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Args, Server, SystemClock};
use tokio::net::TcpListener;

/// The binary's allocator, so the comparison measures the checks and nothing else.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Args::parse().settings()?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let app = Server::builder(settings)
        .handler(DefaultTools::new)
        .build(Arc::new(SystemClock))
        .await?;
    eprintln!(
        "UNCHECKED benchmark server on {}: admits anyone",
        listener.local_addr()?
    );
    app.serve_unchecked(listener, tokio_graceful::default_signal())
        .await?;
    Ok(())
}
