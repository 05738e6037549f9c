//! The demo: `cargo run --example demo` starts the mock identity provider in-process on a random
//! loopback port, the server on `http://localhost:8000/mcp` trusting it, and prints a ready token,
//! a curl command, and the commands of clients that sign a user in by themselves (the MCP
//! Inspector, the `user_client` example) or obtain a machine token (`machine_client`). The server's own flags and variables apply
//! (`--stateless`, `PORT`, `--required-scopes`...), except the issuer, which is the mock's.
//!
//! It is an example of the server crate, not part of the shipped binary: the production server
//! links no mock, no key generation and no token minting.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use mcp_oauth_server::settings::Transport;
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Args, Server, SystemClock};
use mock_idp::{AccessTokenSpec, Client, IssuerSettings, MockIdp};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs piped to a file or a collector stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut args = Args::parse();
    // The demo listens on loopback unless HOST says otherwise (T04).
    let host = *args.host.get_or_insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let listener = TcpListener::bind((host, args.port))
        .await
        .with_context(|| format!("binding {host}:{}", args.port))?;
    // PORT=0 took a free port: the derived resource URL must name the real one.
    args.port = listener.local_addr()?.port();
    let configured = args.resource_url.clone();
    let resource = configured
        .clone()
        .unwrap_or_else(|| format!("http://localhost:{}/mcp", args.port));

    // Both loopback spellings: a client that connected to the address (as the official Python
    // SDK checks) is told that spelling as the resource, and gets tokens for it.
    let literal = match host {
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    let loopback_alias = format!("http://{literal}:{}/mcp", args.port);
    let client = Client::new("demo-client", "demo-secret", resource.clone())
        .resources([loopback_alias.clone()])
        .scopes(["mcp:tools", "mcp:read", "mcp:write"])
        .default_scopes(["mcp:tools"]);
    // Clients that sign a user in (MCP Inspector, desktop assistants) register themselves and ask
    // for the resource and scopes they discover; these are what they may have. The demo users
    // (alice, bob) are offered on the login page.
    let mut builder = MockIdp::builder()
        .client(client)
        .resource(resource.clone())
        .resource(loopback_alias);
    for scope in ["mcp:tools", "mcp:read", "mcp:write"] {
        builder = builder.scope(scope);
    }
    let idp = builder
        .settings(IssuerSettings {
            default_audience: resource.clone(),
            ..IssuerSettings::default()
        })
        .admin(true)
        .start()
        .await
        .context("starting the demo identity provider")?;
    args.issuer = Some(idp.url().to_owned());
    // Unset on loopback: the server derives `localhost` and answers each client in the
    // spelling it used, as the server binary does (A21).
    args.resource_url = configured.or_else(|| (!host.is_loopback()).then_some(resource));
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let token = idp
        .issuer()
        .mint(
            &AccessTokenSpec::user("demo-user")
                .client_id("demo-client")
                .scope(["mcp:tools"])
                .claim("uid", "00u-demo-user")
                .expires_in(Duration::from_secs(3600)),
        )
        .await?;
    let app = Server::builder(settings)
        .handler(DefaultTools::new)
        .build(Arc::new(SystemClock))
        .await?;
    let endpoint = app.settings().resource.url.to_string();
    let stateless = app.settings().transport == Transport::Stateless;
    tracing::info!(address = %listener.local_addr()?, %endpoint, issuer = %idp.url(), "mcp-oauth-server demo listening");
    // A closed stdout must not stop a running server: the write error is ignored.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{}",
        banner(&idp, &token, &endpoint, stateless)
    );
    app.serve(listener, tokio_graceful::default_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// What a user needs to try the server. In session mode the curl commands walk a session as MCP
/// has it: `initialize` (its answer's `Mcp-Session-Id` header names the session), the
/// `notifications/initialized` notification, then the `get_me` call, each later request carrying
/// the session id and the protocol version; in stateless mode one request calls `get_me`.
fn banner(idp: &MockIdp, token: &str, endpoint: &str, stateless: bool) -> String {
    let issuer = idp.issuer();
    let get_me = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_me","arguments":{}}}"#;
    let curl = if stateless {
        format!(
            "call get_me with curl, in one request (stateless mode):\n\
             \x20 curl -s {endpoint} -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n\
             \x20      -H 'Accept: application/json, text/event-stream' -d '{get_me}'\n"
        )
    } else {
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#;
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let in_session = format!(
            "curl -s {endpoint} -H \"Authorization: Bearer $TOKEN\" -H \"Mcp-Session-Id: $SESSION\" \\\n\
             \x20      -H 'MCP-Protocol-Version: 2025-06-18' -H 'Content-Type: application/json' \\\n\
             \x20      -H 'Accept: application/json, text/event-stream'"
        );
        format!(
            "call get_me with curl: open a session (its id comes back in the Mcp-Session-Id header),\n\
             confirm it, then call the tool in it (or start the demo with --stateless: one request):\n\
             \x20 export SESSION=$(curl -s -o /dev/null -D - {endpoint} -H \"Authorization: Bearer $TOKEN\" \\\n\
             \x20      -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \\\n\
             \x20      -d '{initialize}' \\\n\
             \x20      | awk 'tolower($1) == \"mcp-session-id:\" {{ print $2 }}' | tr -d '\\r')\n\
             \x20 {in_session} \\\n\
             \x20      -d '{initialized}'\n\
             \x20 {in_session} \\\n\
             \x20      -d '{get_me}'\n"
        )
    };
    format!(
        "mcp-oauth-server demo\n\
         \x20 MCP endpoint:  {endpoint}\n\
         \x20 issuer (mock): {issuer}\n\
         export TOKEN={token}\n\
         {curl}\
         MCP Inspector 2.x (Node 22.19+), signing a user in (alice or bob) at the mock IdP's login page:\n\
         \x20 npx -y @modelcontextprotocol/inspector@2 --transport http --server-url {endpoint}\n\
         the Rust example clients, signing a user in / as a machine:\n\
         \x20 cargo run --example user_client -- --server-url {endpoint}\n\
         \x20 cargo run --example machine_client -- --server-url {endpoint} --client-id demo-client --client-secret demo-secret\n\
         a fresh machine-to-machine token:\n\
         \x20 curl -s -u demo-client:demo-secret -d grant_type=client_credentials {token_endpoint}\n",
        issuer = issuer.url(),
        token_endpoint = issuer.token_endpoint(),
    )
}
