//! The accept loop: hyper (through hyper-util) with a timer, so the header-read timeout actually
//! fires (`axum::serve` runs hyper without one), a cap on connections served at once, `TCP_NODELAY`
//! on every socket, and a graceful drain bounded in time (checklist R05, R06).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::edge::Limits;

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, runs
/// `on_shutdown` (which ends MCP sessions and their streams) and lets open connections finish for
/// at most [`DRAIN`].
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
    on_shutdown: impl FnOnce(),
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEP_ALIVE)
        .keep_alive_timeout(HTTP2_KEEP_ALIVE);
    let slots = Arc::new(Semaphore::new(limits.max_connections.get()));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // Take a slot before accepting: at the cap, new connections wait in the listen backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                // Out of file descriptors or a connection reset before accept: keep serving.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        // rmcp answers over SSE in several small writes: without TCP_NODELAY each request waits
        // for Nagle + delayed ACK (~44 ms).
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    on_shutdown();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("connections still open after {DRAIN:?}; stopping anyway");
        }
    }
}

/// How long open connections may finish after shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);
/// A pause after a failed accept (EMFILE), so a full descriptor table is not a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// HTTP/2 pings: a peer that stops answering is dropped after this long.
const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(30);
