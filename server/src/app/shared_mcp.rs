//! rmcp's service behind one `Arc`, so that handing it a request costs one reference count.
//!
//! Each middleware in front of `/mcp` clones the service it wraps for every request (tower's
//! `Service::call` takes `&mut self`), and cloning rmcp's `StreamableHttpService` clones its
//! whole configuration, cancellation token (a lock) included. Measured under load, those
//! clones, repeated at every layer, were a large part of what the request checks cost
//! (BENCHMARKS.md).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse as _, Response};
use futures_util::future::BoxFuture;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::{SessionManager, StreamableHttpService};

/// rmcp's Streamable HTTP service, shared: cloning it is one `Arc` increment.
pub(super) struct SharedMcp<S, M>(Arc<StreamableHttpService<S, M>>);

impl<S, M> SharedMcp<S, M> {
    pub(super) fn new(service: StreamableHttpService<S, M>) -> Self {
        Self(Arc::new(service))
    }
}

impl<S, M> Clone for SharedMcp<S, M> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S, M> tower::Service<Request> for SharedMcp<S, M>
where
    S: ServerHandler + Send + 'static,
    M: SessionManager,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { Ok(service.handle(request).await.into_response()) })
    }
}
