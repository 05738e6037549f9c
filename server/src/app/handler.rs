//! The user's rmcp handler behind one type: the server is not generic over it, and handing a
//! request to rmcp costs one reference count.
//!
//! Each layer in front of `/mcp` clones the service it wraps for every request (tower's
//! `Service::call` takes `&mut self`), and cloning rmcp's `StreamableHttpService` clones its whole
//! configuration, cancellation token (a lock) included. Measured under load, those clones,
//! repeated at every layer, were a large part of what the request checks cost (BENCHMARKS.md):
//! so the service lives behind one `Arc`.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use futures_util::future::BoxFuture;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::scoped::ScopedTools;
use crate::auth::scopes::ScopePolicy;
use crate::session::OwnedSessionManager;

/// Makes a new handler for each MCP session (or stateless request), whatever its type.
pub(super) trait HandlerFactory: Send + Sync {
    /// rmcp's Streamable HTTP service over new handlers (each wrapped in [`ScopedTools`]), with
    /// sessions kept by `sessions`, or stateless when there is none.
    fn service(
        &self,
        sessions: Option<Arc<OwnedSessionManager>>,
        config: StreamableHttpServerConfig,
    ) -> McpService;
}

/// The user's factory closure, and the scopes its tools run under.
pub(super) struct Factory<F> {
    make: Arc<F>,
    scopes: Arc<ScopePolicy>,
}

impl<F> Factory<F> {
    pub(super) fn new(make: Arc<F>, scopes: Arc<ScopePolicy>) -> Self {
        Self { make, scopes }
    }
}

impl<F, H> HandlerFactory for Factory<F>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: ServerHandler,
{
    fn service(
        &self,
        sessions: Option<Arc<OwnedSessionManager>>,
        config: StreamableHttpServerConfig,
    ) -> McpService {
        let (make, scopes) = (Arc::clone(&self.make), Arc::clone(&self.scopes));
        let handlers = move || Ok(ScopedTools::new(make(), Arc::clone(&scopes)));
        match sessions {
            Some(manager) => McpService::new(StreamableHttpService::new(handlers, manager, config)),
            None => McpService::new(StreamableHttpService::new(
                handlers,
                Arc::new(NeverSessionManager::default()),
                config
                    .with_legacy_session_mode(false)
                    .with_json_response(true),
            )),
        }
    }
}

type Handle = dyn Fn(Request) -> BoxFuture<'static, Result<Response, Infallible>> + Send + Sync;

/// rmcp's Streamable HTTP service, shared: cloning it is one `Arc` increment.
#[derive(Clone)]
pub(super) struct McpService(Arc<Handle>);

impl McpService {
    fn new<S, M>(service: StreamableHttpService<S, M>) -> Self
    where
        S: ServerHandler + Send + 'static,
        M: rmcp::transport::streamable_http_server::SessionManager,
    {
        let service = Arc::new(service);
        Self(Arc::new(move |request| {
            let service = Arc::clone(&service);
            Box::pin(async move { Ok(service.handle(request).await.into_response()) })
        }))
    }
}

impl McpService {
    /// A gateway's service: each request to the upstream, sessions kept in `sessions`.
    pub(super) fn forwarding(
        forwarder: Arc<crate::gateway::Forwarder>,
        sessions: Option<Arc<crate::session::Sessions>>,
    ) -> Self {
        Self(Arc::new(move |request| {
            let forwarder = Arc::clone(&forwarder);
            let sessions = sessions.clone();
            Box::pin(async move { Ok(forwarder.forward(sessions.as_deref(), request).await) })
        }))
    }
}

impl tower::Service<Request> for McpService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        (self.0)(request)
    }
}
