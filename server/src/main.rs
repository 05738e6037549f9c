//! `mcp-oauth-server`: load `.env`, turn flags and environment into settings, start tracing,
//! serve until SIGTERM/SIGINT. Nothing else lives here.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context as _;
use mcp_oauth_server::{App, Args, ArgsError, ConfigError, SystemClock, unknown_variables};
use tokio::net::TcpListener;

/// jemalloc rather than glibc's malloc: under a minute of hostile load glibc's heap held on to
/// about 15 KiB per short-lived session for a minute or more (RSS +7%), jemalloc's stays flat
/// (+1%) at the same size (BENCHMARKS.md, soak).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `.env` in the working directory only (R07): dotenvy::dotenv() would search every parent
    // directory, so a file above the project could set OAUTH_JWKS_URI. A missing .env is fine; a
    // malformed one is an error worth stopping for.
    match dotenvy::from_path(".env") {
        Ok(_) => {}
        Err(error) if error.not_found() => {}
        Err(error) => return Err(error).context("reading .env"),
    }
    init_logging()?;
    // After .env, so a misspelling there is caught too.
    let names = std::env::vars_os().filter_map(|(name, _)| name.into_string().ok());
    for unknown in unknown_variables(names) {
        match &unknown.suggestion {
            Some(suggestion) => tracing::warn!(
                variable = unknown.name.as_str(),
                suggestion = suggestion.as_str(),
                "unknown variable ignored; did you mean {suggestion}?"
            ),
            None => tracing::warn!(
                variable = unknown.name.as_str(),
                "unknown variable ignored: no setting reads it"
            ),
        }
    }
    let (mut args, problems) = match Args::parse_reporting_every_problem(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(ArgsError::Clap(error)) => error.exit(),
        Err(ArgsError::Values(error)) => exit_with(&error),
    };
    // PORT=0: take a free port now, so the derived resource URL names the real one.
    let early = if args.port == 0 {
        let host = args.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let listener = TcpListener::bind((host, 0))
            .await
            .context("binding a free port")?;
        args.port = listener.local_addr()?.port();
        Some(listener)
    } else {
        None
    };
    // A malformed variable fell back to its default; its problem is reported with all the rest.
    let settings = match args.settings_with(problems) {
        Ok(settings) => settings,
        Err(error) => exit_with(&error),
    };
    let listener = match early {
        Some(listener) => listener,
        None => TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?,
    };
    let app = App::start(settings, Arc::new(SystemClock)).await?;
    tracing::info!(
        address = %listener.local_addr()?,
        endpoint = %app.settings().resource.url,
        issuer = %app.settings().issuer(),
        "mcp-oauth-server listening"
    );
    app.serve(listener, tokio_graceful::default_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Prints every configuration problem and exits with status 2, as clap does for usage errors.
fn exit_with(error: &ConfigError) -> ! {
    eprintln!("{error}");
    std::process::exit(2);
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): text, or with `LOG_FORMAT=json` one
/// JSON object per line (the audit events under the `mcp_oauth_server::audit` target).
fn init_logging() -> anyhow::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
        Ok("text") | Err(std::env::VarError::NotPresent) => builder
            // Colour only for a terminal: logs piped to a file or a collector stay plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Ok(other) => anyhow::bail!("LOG_FORMAT={other:?}: use text or json"),
        Err(error) => anyhow::bail!("LOG_FORMAT: {error}"),
    }
    Ok(())
}
