//! `cargo run -p conformance -- check --url http://127.0.0.1:3000/mcp`: judges any MCP server's
//! resource-server side of the MCP authorization spec, black-box. See `docs/conformance-tool.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use conformance::check::{self, Options};
use conformance::target::{Idp, RemoteIdp};

#[derive(Parser)]
#[command(
    name = "conformance",
    about = "The MCP resource-server conformance tool"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the mock IdP, waits for the server under test to trust it, and judges the server.
    Check {
        /// The MCP endpoint of the server under test (also the audience its tokens name).
        #[arg(long)]
        url: String,
        /// Scopes every request needs (repeatable or comma-separated).
        #[arg(long = "scope", value_delimiter = ',', default_value = "mcp:tools")]
        scopes: Vec<String>,
        /// A tool that needs a scope beyond those: the 403 step-up is checked with it.
        #[arg(long, requires = "tool_scope")]
        tool: Option<String>,
        /// The scope `--tool` needs.
        #[arg(long, requires = "tool")]
        tool_scope: Option<String>,
        /// The mock IdP's port (0: any); fix it to configure the server before starting the tool.
        #[arg(long, default_value_t = 0, conflicts_with = "issuer")]
        idp_port: u16,
        /// Use a mock IdP already running at this issuer URL (started with `--admin on`, e.g.
        /// `cargo run -p mock-idp -- --port 9400`) instead of starting one: start the server
        /// under test first, then the tool.
        #[arg(long)]
        issuer: Option<String>,
        /// Write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the report as JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// How long to wait for the server to answer, seconds.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let Command::Check {
        url,
        scopes,
        tool,
        tool_scope,
        idp_port,
        issuer,
        json,
        junit,
        wait_secs,
    } = Cli::parse().command;
    // `--scope ''` says no scope is required: no empty scope name.
    let scopes: Vec<String> = scopes.into_iter().filter(|s| !s.is_empty()).collect();
    let (in_process, remote) = match &issuer {
        None => match check::start_idp(idp_port, &url).await {
            Ok(idp) => (Some(idp), None),
            Err(why) => {
                eprintln!("{why}");
                return ExitCode::from(2);
            }
        },
        Some(issuer) => match RemoteIdp::connect(issuer).await {
            Ok(idp) => (None, Some(idp)),
            Err(why) => {
                eprintln!("{why}");
                return ExitCode::from(2);
            }
        },
    };
    let idp = match (&in_process, &remote) {
        (Some(idp), _) => Idp::InProcess(idp),
        (None, Some(idp)) => Idp::Remote(idp),
        (None, None) => return ExitCode::from(2),
    };
    let issuer = idp.url();
    let jwks = format!("{issuer}/jwks");
    println!("issuer: {issuer}");
    println!("jwks: {jwks}");
    println!("audience: {url}");
    println!("configure the server under test to trust them, for example:");
    let port = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(8000);
    println!(
        "  mcp-oauth-server: PORT={port} OAUTH_ISSUER={issuer} MCP_RESOURCE_URL={url} mcp-oauth-server"
    );
    println!(
        "  TypeScript SDK:   requireBearerAuth({{ verifier }}), the verifier jose's jwtVerify(token, createRemoteJWKSet(new URL('{jwks}')), {{ issuer: '{issuer}', audience: '{url}' }})"
    );
    println!(
        "  FastMCP:          JWTVerifier(jwks_uri=\"{jwks}\", issuer=\"{issuer}\", audience=\"{url}\")"
    );
    println!("waiting for {url} ...");
    if let Err(why) = check::wait_for(&url, Duration::from_secs(wait_secs)).await {
        eprintln!("{why}");
        return ExitCode::from(2);
    }
    let options = Options {
        url,
        scopes,
        scoped_tool: tool.zip(tool_scope),
    };
    let report = check::run(&options, idp).await;
    print!("{}", check::table(&report));
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, text) {
            eprintln!("{}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = junit
        && let Err(e) = std::fs::write(&path, check::junit(&report))
    {
        eprintln!("{}: {e}", path.display());
        return ExitCode::from(2);
    }
    if report.must_failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
