//! A user-facing MCP client: `cargo run --example user_client` signs a user in through the
//! authorization-code flow with PKCE, as MCP desktop clients do, and calls `get_me` as that user.
//!
//! With no token it meets the server's 401, and rmcp's auth support takes it from there: the
//! server's RFC 9728 metadata names the authorization server, whose RFC 8414 metadata gives the
//! endpoints; the client registers itself (RFC 7591) unless given a client id (pre-registered) or
//! a client ID metadata document URL; it prints the authorization URL for the user to open, waits
//! on a loopback redirect URI (RFC 8252) for the code, exchanges it with the PKCE verifier for a
//! token for the server's resource (RFC 8707), and calls the tool. rmcp refreshes the token with
//! its refresh token when it nears expiry.
//!
//! With `--dpop` the tokens are bound to a key this process makes (RFC 9449): the code exchange,
//! every refresh and every MCP request carry a proof signed by it (`shared/dpop.rs`).
//!
//! Against the demo (`cargo run --example demo`): run it, open the URL, choose alice or bob.
//! Against a real provider: a public client whose redirect URI is
//! `http://127.0.0.1:PORT/callback` (`--client-id`, `--callback-port PORT`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Html;
use axum::routing::get;
use clap::Parser;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthorizationManager, AuthorizationRequest, AuthorizationSession,
    default_oauth_http_client,
};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

#[path = "shared/dpop.rs"]
mod dpop;
use dpop::{DpopHttp, DpopOAuthHttpClient, ProofKey};

/// Signs a user in and calls `get_me` as that user.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// The MCP endpoint.
    #[arg(
        long,
        env = "MCP_SERVER_URL",
        default_value = "http://localhost:8000/mcp"
    )]
    server_url: String,
    /// Scopes to ask for (repeatable or comma-separated).
    #[arg(
        long = "scope",
        env = "MCP_CLIENT_SCOPES",
        value_delimiter = ',',
        default_value = "openid,mcp:tools"
    )]
    scopes: Vec<String>,
    /// A client registered at the provider beforehand (default: register dynamically).
    #[arg(long, env = "MCP_CLIENT_ID", conflicts_with = "client_metadata_url")]
    client_id: Option<String>,
    /// The secret of a pre-registered confidential client (public clients have none).
    #[arg(
        long,
        env = "MCP_CLIENT_SECRET",
        hide_env_values = true,
        requires = "client_id"
    )]
    client_secret: Option<String>,
    /// Identify the client by the https URL of its client ID metadata document.
    #[arg(long)]
    client_metadata_url: Option<String>,
    /// Loopback port of the redirect URI `http://127.0.0.1:PORT/callback` (0: any free port,
    /// fine with dynamic registration; a pre-registered client needs the port it registered).
    #[arg(long, default_value_t = 0)]
    callback_port: u16,
    /// How long to wait for the user to sign in, seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Bind the tokens to a key of this process and prove it on every request (DPoP, RFC 9449).
    #[arg(long)]
    dpop: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "user_client=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.callback_port)))
        .await
        .context("binding the callback listener")?;
    let redirect_uri = format!("http://{}/callback", listener.local_addr()?);

    let key = if args.dpop {
        Some(Arc::new(ProofKey::generate().context("making a DPoP key")?))
    } else {
        None
    };
    let mut manager = match &key {
        None => AuthorizationManager::new(args.server_url.as_str()).await,
        Some(key) => {
            let client = DpopOAuthHttpClient::new(default_oauth_http_client()?, Arc::clone(key));
            AuthorizationManager::new_with_oauth_http_client(
                args.server_url.as_str(),
                Arc::new(client),
            )
            .await
        }
    }
    .context("reading the server URL")?;
    let resolution = manager
        .resolve_metadata()
        .await
        .context("discovering the authorization server")?;
    manager.set_metadata(resolution.metadata);
    let mut request = AuthorizationRequest::new(&redirect_uri)
        .with_scopes(&args.scopes)
        .with_client_name("mcp-oauth-server user_client example");
    if let Some(client_id) = &args.client_id {
        request = request.with_preregistered_client(client_id);
    }
    if let Some(secret) = &args.client_secret {
        request = request.with_client_secret(secret);
    }
    if let Some(url) = &args.client_metadata_url {
        request = request.with_client_metadata_url(url);
    }
    let session = AuthorizationSession::new(manager, request)
        .await
        .map_err(|(_, error)| error)
        .context("preparing the sign-in")?;

    println!("Open this URL in a browser to sign in:");
    println!("{}", session.get_authorization_url());
    let callback = tokio::time::timeout(
        Duration::from_secs(args.timeout),
        wait_for_redirect(listener),
    )
    .await
    .context("nobody signed in in time")??;
    session
        .handle_callback_url(&format!("{redirect_uri}?{callback}"))
        .await
        .context("exchanging the code")?;

    let config = StreamableHttpClientTransportConfig::with_uri(args.server_url);
    let http = reqwest::Client::new();
    let client = match key {
        None => {
            let client = AuthClient::new(http, session.auth_manager);
            ().serve(StreamableHttpClientTransport::with_client(client, config))
                .await
        }
        Some(key) => {
            let client = AuthClient::new(DpopHttp { http, key }, session.auth_manager);
            ().serve(StreamableHttpClientTransport::with_client(client, config))
                .await
        }
    }
    .context("connecting")?;
    let result = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .context("calling get_me")?;
    client.cancel().await.context("closing the session")?;
    let me = result
        .structured_content
        .context("get_me returned no structured content")?;
    println!("{me}");
    Ok(())
}

/// Serves the redirect URI until the browser arrives there, and returns the query it brought
/// (`code`, `state`, `iss`, or an `error`): rmcp checks it.
async fn wait_for_redirect(listener: TcpListener) -> anyhow::Result<String> {
    let (arrived, mut received) = mpsc::channel::<String>(1);
    let app = Router::new()
        .route("/callback", get(callback))
        .with_state(arrived);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let query = received.recv().await;
    // Graceful: the browser still gets its "signed in" page.
    let _ = stop.send(());
    let _ = server.await;
    match query {
        Some(query) => Ok(query),
        None => bail!("the callback listener stopped"),
    }
}

async fn callback(
    State(arrived): State<mpsc::Sender<String>>,
    RawQuery(query): RawQuery,
) -> Html<&'static str> {
    // Only the first arrival counts; a reload finds the channel full and changes nothing.
    let _ = arrived.try_send(query.unwrap_or_default());
    Html("<!doctype html><title>Signed in</title><p>Signed in. You can close this tab.</p>")
}
