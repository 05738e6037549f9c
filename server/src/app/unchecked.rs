//! **Benchmarks only** (feature `bench-unchecked`): `/mcp` with the request checks removed, to
//! measure what they cost (`bench/load.sh`, `benches/router.rs`). Never in a release.

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

use super::{Checks, Server};
use crate::auth::claims::VerifiedClaims;
use crate::auth::{Principal, VerifiedBy};
use crate::serve;
use crate::settings::Settings;

impl Server {
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

    /// **Benchmarks only** (feature `bench-unchecked`): the request checks of `/mcp` (CORS,
    /// guard, bearer, rate limit, timeout, body limit, scope gate, session binding) over a service
    /// that answers 200 at once: what admitting a request costs, without rmcp.
    #[cfg(feature = "bench-unchecked")]
    pub fn admission_router(&self) -> Router {
        self.mount(self.checked(answered(), Checks::All))
    }

    /// **Benchmarks only**: the service [`Server::admission_router`] puts its checks over, mounted
    /// alone at the resource path: the baseline that admission is measured against.
    #[cfg(feature = "bench-unchecked")]
    pub fn answered_router(&self) -> Router {
        self.mount(answered())
    }

    /// **Benchmarks only**: serves [`Server::unchecked_router`] as [`Server::serve`] serves the real one.
    ///
    /// # Errors
    /// As [`Server::serve`].
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

/// How [`answered`] answers.
type Answer = std::future::Ready<Result<axum::response::Response, std::convert::Infallible>>;

/// A service answering every request 200 with an empty body.
#[cfg(feature = "bench-unchecked")]
fn answered() -> tower::util::ServiceFn<fn(axum::extract::Request) -> Answer> {
    tower::service_fn(|_| {
        std::future::ready(Ok(axum::response::Response::new(axum::body::Body::empty())))
    })
}

/// The principal every unchecked request runs as: `get_me` must still answer, or the comparison
/// would measure an error reply against a real one.
pub(super) fn principal(settings: &Settings) -> Principal {
    Principal::new(
        std::sync::Arc::new(VerifiedClaims {
            issuer: settings.issuer().to_string(),
            subject: "unchecked".into(),
            audience: serde_json::Value::String(settings.resource.url.to_string()),
            expires_at: Some(i64::from(i32::MAX)),
            issued_at: None,
            token_id: None,
            client_id: Some("unchecked".into()),
            scopes: vec!["mcp:tools".into()],
            uid: None,
            dpop_jkt: None,
        }),
        VerifiedBy::Jwt,
    )
}
