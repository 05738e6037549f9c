//! What the `mcp-oauth-server` binary does, for any handler: read `.env`, flags and environment
//! into settings (every problem reported at once), log to stderr, bind, serve until SIGTERM or
//! SIGINT. A program with its own tools is then three lines, and takes the same settings as the
//! binary.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rmcp::ServerHandler;
use tokio::net::TcpListener;

use crate::app::{Server, StartError};
use crate::clock::SystemClock;
use crate::config::{Args, ArgsError, ConfigError, unknown_variables};
use crate::settings::Settings;

/// Why [`run`] or [`Startup::read`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `.env` exists but cannot be read.
    #[error("reading .env: {0}")]
    DotEnv(#[from] dotenvy::Error),
    /// `LOG_FORMAT` names no format.
    #[error("LOG_FORMAT={0:?}: use text or json")]
    LogFormat(String),
    /// The listener cannot be bound, or serving failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The server cannot start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// `mcp-oauth-server revoke` failed.
    #[error("{0}")]
    Revoke(String),
}

/// Settings read as the binary reads them, and the listener bound for them.
#[derive(Debug)]
pub struct Startup {
    /// The settings (flags, then environment, then `.env`).
    pub settings: Settings,
    /// Bound to `settings.listen` (with `PORT=0`, a free port, already named in `settings`).
    pub listener: TcpListener,
}

impl Startup {
    /// Reads `.env` (in the working directory only, never a parent's), starts logging to stderr
    /// (`RUST_LOG`, `LOG_FORMAT=text|json`), warns about unknown variables, turns flags and
    /// environment into [`Settings`] and binds the listener. It is a program's start, not a
    /// library call: it reads the process's own arguments, installs the global log subscriber
    /// (unless one is set), and, like clap with a usage error, prints every configuration problem
    /// and exits the process with status 2. A program with its own command line builds
    /// [`Settings`] itself (or with [`crate::Args`]) and calls [`Server::builder`].
    ///
    /// # Errors
    /// [`RunError`] when `.env` is unreadable, `LOG_FORMAT` is unknown or the address cannot
    /// be bound.
    pub async fn read() -> Result<Self, RunError> {
        // `.env` in the working directory only (R07): dotenvy::dotenv() would search every parent
        // directory, so a file above the project could set OAUTH_JWKS_URI. A missing .env is fine;
        // a malformed one is an error worth stopping for.
        match dotenvy::from_path(".env") {
            Ok(()) => {}
            Err(error) if error.not_found() => {}
            Err(error) => return Err(error.into()),
        }
        init_logging()?;
        // After .env, so a misspelling there is caught too.
        warn_about_unknown_variables();
        let (mut args, problems) = match Args::parse_reporting_every_problem(std::env::args_os()) {
            Ok(parsed) => parsed,
            Err(ArgsError::Clap(error)) => {
                flush_logs();
                error.exit()
            }
            Err(ArgsError::Values(error)) => exit_with(&error),
        };
        // PORT=0: take a free port now, so the derived resource URL names the real one.
        let early = if args.port == 0 {
            let host = args.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let listener = TcpListener::bind((host, 0))
                .await
                .map_err(|source| io_error("binding a free port", source))?;
            args.port = listener
                .local_addr()
                .map_err(|source| io_error("reading the bound address", source))?
                .port();
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
                .map_err(|source| io_error(&format!("binding {}", settings.listen), source))?,
        };
        Ok(Self { settings, listener })
    }
}

/// Serves the tools `make` returns, protected, exactly as the `mcp-oauth-server` binary serves
/// its own: [`Startup::read`], then [`Server::serve`] until SIGTERM or SIGINT. When the settings
/// name an upstream (`MCP_UPSTREAM_URL`), it runs as a gateway to it instead, and `make` is not
/// used.
///
/// ```no_run
/// use mcp_oauth_server::tools::DefaultTools;
///
/// #[tokio::main]
/// async fn main() -> Result<(), mcp_oauth_server::RunError> {
///     mcp_oauth_server::run(DefaultTools::new).await
/// }
/// ```
///
/// # Errors
/// [`RunError`] when the settings cannot be read, the listener bound or the server started.
pub async fn run<F, H>(make: F) -> Result<(), RunError>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: ServerHandler,
{
    if crate::revoke::asked() {
        // Its own small command: the server's settings do not apply.
        return match crate::revoke::run().await {
            Ok(done) => {
                println!("{done}");
                Ok(())
            }
            Err(message) => Err(RunError::Revoke(message)),
        };
    }
    let served = serve_until_signalled(make).await;
    flush_logs();
    served
}

async fn serve_until_signalled<F, H>(make: F) -> Result<(), RunError>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: ServerHandler,
{
    let Startup { settings, listener } = Startup::read().await?;
    let clock = Arc::new(SystemClock);
    let server = if let Some(upstream) = &settings.upstream {
        tracing::info!(upstream = %upstream.url(), "gateway mode: forwarding to the upstream");
        Server::builder(settings).gateway().build(clock).await?
    } else {
        Server::builder(settings).handler(make).build(clock).await?
    };
    let address = listener
        .local_addr()
        .map_err(|source| io_error("reading the bound address", source))?;
    tracing::info!(
        %address,
        endpoint = %server.settings().resource.url,
        issuer = %server.settings().issuer(),
        "mcp-oauth-server listening"
    );
    server
        .serve(listener, tokio_graceful::default_signal())
        .await
        .map_err(|source| io_error("serving", source))?;
    tracing::info!("stopped");
    Ok(())
}

/// Writes out the log lines still queued by the logging [`Startup::read`] set up, waiting at
/// most about a second; later lines are not written. [`run`] calls it before it returns; a
/// program that calls [`Startup::read`] itself calls it last, before it exits.
pub fn flush_logs() {
    if let Ok(mut kept) = LOG_WRITER.lock() {
        kept.take();
    }
}

fn io_error(context: &str, source: io::Error) -> RunError {
    RunError::Io {
        context: context.to_owned(),
        source,
    }
}

fn warn_about_unknown_variables() {
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
}

/// Prints every configuration problem and exits with status 2, as clap does for usage errors.
fn exit_with(error: &ConfigError) -> ! {
    flush_logs();
    eprintln!("{error}");
    std::process::exit(2);
}

/// How many log lines may wait for the writer thread. Past that, lines are dropped and counted
/// (`mcp_log_lines_dropped_total`): a request never waits on stderr, and a stalled stderr never
/// grows the queue without bound (a line is at most a few KiB: the names a body chooses are cut
/// to 128 bytes). 16,384 lines is about a second of the heaviest audit traffic.
pub(crate) const LOG_QUEUE_LINES: usize = 16_384;

/// A writer that hands each line to a thread of its own through a queue of `limit` lines, which
/// writes them to `out` in batches (one write for all the lines waiting); a full queue drops the
/// line and counts it. The guard flushes what is queued when dropped.
pub(crate) fn log_writer<W: std::io::Write + Send + 'static>(
    out: W,
    limit: usize,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(limit)
        .lossy(true)
        .thread_name("mcp-oauth-server-logs")
        .finish(std::io::BufWriter::new(out))
}

/// The log writer's guard, kept for the life of the process: lines still queued at exit are
/// flushed when [`run`] returns.
static LOG_WRITER: std::sync::Mutex<Option<tracing_appender::non_blocking::WorkerGuard>> =
    std::sync::Mutex::new(None);

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): text, or with `LOG_FORMAT=json` one
/// JSON object per line (the audit events under the `mcp_oauth_server::audit` target), written by
/// [`log_writer`]. A subscriber already set (by the program, or a second call) is kept.
fn init_logging() -> Result<(), RunError> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let format = std::env::var("LOG_FORMAT");
    if let Ok(other) = format.as_deref()
        && !["json", "text"].contains(&other)
    {
        return Err(RunError::LogFormat(other.to_owned()));
    }
    if let Err(std::env::VarError::NotUnicode(_)) = format {
        return Err(RunError::LogFormat("not UTF-8".to_owned()));
    }
    let (writer, guard) = log_writer(std::io::stderr(), LOG_QUEUE_LINES);
    let counter = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = if format.as_deref() == Ok("json") {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder
            // Colour only for a terminal: logs piped to a file or a collector stay plain text.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // Only the writer of the subscriber actually installed is kept: a subscriber set before (by
    // the program, or an earlier call) keeps its own, and this one's thread ends here.
    if installed.is_ok() {
        crate::telemetry::count_dropped_log_lines(counter);
        if let Ok(mut kept) = LOG_WRITER.lock() {
            *kept = Some(guard);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::{Arc, Mutex, mpsc};

    use super::*;

    /// Stderr that does not take lines until told to: a stalled terminal or a full pipe.
    struct Stalled {
        entered: mpsc::Sender<()>,
        go: Mutex<mpsc::Receiver<()>>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl std::io::Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _ = self.entered.send(());
            if let Ok(go) = self.go.lock() {
                let _ = go.recv();
            }
            if let Ok(mut written) = self.written.lock() {
                written.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The stated choice: with the writer stalled, logging never blocks; past the queue's bound
    /// lines are dropped and counted; what was queued is written once the writer moves again.
    #[test]
    fn a_stalled_log_writer_drops_and_counts_lines_and_never_blocks() {
        let (go, wait) = mpsc::channel();
        let (entered, stalls) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let stalled = Stalled {
            entered,
            go: Mutex::new(wait),
            written: Arc::clone(&written),
        };
        let (mut writer, guard) = log_writer(stalled, 4);
        let counter = writer.error_counter();
        // The worker takes the first line and stalls writing it out.
        writer.write_all(b"line 0\n").unwrap();
        stalls.recv().unwrap();
        // Four more wait in the queue; the other fifteen are dropped, and writing never blocks.
        for n in 1..20 {
            writer.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        let dropped = counter.dropped_lines();
        assert_eq!(dropped, 15);
        for _ in 0..20 {
            let _ = go.send(());
        }
        drop(guard);
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert_eq!(written.lines().count() + dropped, 20, "{written}");
    }

    #[test]
    fn the_log_writer_writes_every_line_in_order() {
        let written = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (mut writer, guard) = log_writer(Shared(Arc::clone(&written)), LOG_QUEUE_LINES);
        for n in 0..1000 {
            writer.write_all(format!("line {n}\n").as_bytes()).unwrap();
        }
        drop(guard);
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let expected: String = (0..1000).map(|n| format!("line {n}\n")).collect();
        assert_eq!(written, expected);
    }
}
