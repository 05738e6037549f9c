//! **Benchmarks only** (feature `bench-unchecked`): `/mcp` with the request checks removed, to
//! measure what they cost (`bench/load.sh`, `benches/router.rs`). Never in a release.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use super::{App, Checks};
use crate::serve;

impl App {
    /// **Benchmarks only** (feature `bench-unchecked`, never in a release): `/mcp` with the
    /// Host/Origin guard, bearer layer, rate limit, scope gate and session binding all removed,
    /// to measure what they cost. It admits anyone.
    #[cfg(feature = "bench-unchecked")]
    pub fn unchecked_router(&self) -> Router {
        self.with_edge_layers(
            self.mcp_router_with(Checks::None)
                .merge(self.health_router()),
        )
    }

    /// **Benchmarks only**: serves [`App::unchecked_router`] as [`App::serve`] serves the real one.
    ///
    /// # Errors
    /// As [`App::serve`].
    #[cfg(feature = "bench-unchecked")]
    pub async fn serve_unchecked(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.shutdown.clone();
        serve::serve(
            listener,
            self.unchecked_router(),
            self.settings.limits,
            shutdown,
            move || stop.cancel(),
        )
        .await;
        Ok(())
    }
}
