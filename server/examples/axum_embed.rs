//! A protected MCP endpoint inside an axum app of yours: your routes stay as they are (public
//! here), and the server's router, merged in, brings `/mcp` with every check, its RFC 9728
//! metadata (root and path-suffixed) and health routes. It takes the binary's settings (the same
//! variables, flags and `.env`); `MCP_RESOURCE_URL=https://api.example.com/api/mcp` mounts the
//! endpoint at `/api/mcp` instead.
//!
//! ```text
//! OAUTH_ISSUER=https://your-tenant.example.com/ cargo run -p mcp-oauth-server --example axum_embed
//! ```
//!
//! `Server::serve_app` serves the merged app with the server's own accept loop (connection cap,
//! header-read timeout, idle connections closed, bounded drain) and runs the key loading beside
//! it. To serve it with `axum::serve` instead, call `server.spawn_background()` first,
//! `server.shutdown()` when it stops, and serve
//! `app.into_make_service_with_connect_info::<SocketAddr>()`; the connection-level bounds are then
//! yours to set.

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Server, Startup, SystemClock};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Startup { settings, listener } = Startup::read().await?;
    let server = Server::builder(settings)
        .handler(DefaultTools::new)
        .build(Arc::new(SystemClock))
        .await?;
    let app = Router::new()
        .route(
            "/app",
            get(|| async { "your app: its own routes, and MCP at the resource path" }),
        )
        .route("/version", get(|| async { env!("CARGO_PKG_VERSION") }))
        .merge(server.router());
    tracing::info!(
        address = %listener.local_addr()?,
        endpoint = %server.settings().resource.url,
        "axum app with an MCP endpoint listening"
    );
    let served = server
        .serve_app(listener, app, tokio_graceful::default_signal())
        .await;
    // The log lines still queued, written before the process exits.
    mcp_oauth_server::flush_logs();
    Ok(served?)
}
