//! `mcp-oauth-server`: load `.env`, parse the configuration, start tracing, serve until
//! SIGTERM/SIGINT. Nothing else lives here.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use mcp_oauth_server::clock::SystemClock;
use mcp_oauth_server::{App, Args, Config};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A missing .env is fine; a malformed one is an error worth stopping for.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(error) if error.not_found() => {}
        Err(error) => return Err(error).context("reading .env"),
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut args = Args::parse();
    // PORT=0: take a free port now, so the derived resource URL names the real one.
    let early = if args.port == 0 {
        let fallback = if args.demo {
            Ipv4Addr::LOCALHOST
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        let host = args.host.unwrap_or(IpAddr::V4(fallback));
        let listener = TcpListener::bind((host, 0))
            .await
            .context("binding a free port")?;
        args.port = listener.local_addr()?.port();
        Some(listener)
    } else {
        None
    };

    #[cfg(feature = "demo")]
    let (demo, config) = if args.demo {
        let (demo, config) = mcp_oauth_server::demo::Demo::start(&args).await?;
        (Some(demo), config)
    } else {
        (None, config_or_exit(&args))
    };
    #[cfg(not(feature = "demo"))]
    let config = {
        anyhow::ensure!(
            !args.demo,
            "this build has no --demo (built without the `demo` feature)"
        );
        config_or_exit(&args)
    };

    let listener = match early {
        Some(listener) => listener,
        None => TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?,
    };
    let app = App::start(config, Arc::new(SystemClock)).await?;
    let endpoint = app.config().resource.to_string();
    #[cfg(feature = "demo")]
    let stateless = app.config().stateless;
    tracing::info!(address = %listener.local_addr()?, %endpoint, issuer = %app.config().issuer, "mcp-oauth-server listening");
    #[cfg(feature = "demo")]
    if let Some(demo) = &demo {
        // A closed stdout must not stop a running server: the write error is ignored.
        let _ = writeln!(
            std::io::stdout().lock(),
            "{}",
            demo.banner(&endpoint, stateless)
        );
    }
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

fn config_or_exit(args: &Args) -> Config {
    match Config::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
