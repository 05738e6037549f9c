//! When a connection is idle: no request in progress and no response still streaming. hyper
//! closes an idle HTTP/1 connection by its header-read timeout, but offers no such bound for
//! HTTP/2, where a peer that sent its preface and answers PINGs holds a connection slot forever
//! (and a connection that sends nothing at all never even picks a protocol). So the accept loop
//! counts each connection's open streams here and closes the connection once none has been open
//! for the header-read timeout, whatever the protocol.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;
use tower::ServiceExt as _;

/// The streams (requests with their responses) open on one connection.
#[derive(Debug, Default)]
pub(super) struct OpenStreams {
    open: AtomicUsize,
    /// Woken when the count leaves or reaches zero.
    changed: Notify,
}

impl OpenStreams {
    /// Serves `request` from `peer` with `router` (the peer's address in the request's
    /// extensions, as axum's [`ConnectInfo`]), counting it as open until its response body is
    /// done.
    pub(super) async fn serve<B>(
        self: Arc<Self>,
        router: Router,
        peer: SocketAddr,
        request: Request<B>,
    ) -> Result<Response, Infallible>
    where
        B: HttpBody<Data = Bytes, Error: Into<axum::BoxError>> + Send + 'static,
    {
        let stream = self.open();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.oneshot(request).await;
        Ok(response.map_or_else(
            |never| match never {},
            |response| {
                response.map(|body| {
                    Body::new(CountedBody {
                        body,
                        stream: Some(stream),
                    })
                })
            },
        ))
    }

    /// Resolves once no stream has been open for `period`.
    pub(super) async fn idle_for(&self, period: Duration) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the count is read, so no change between the two is missed.
            changed.as_mut().enable();
            if self.open.load(Ordering::Acquire) == 0 {
                tokio::select! {
                    () = tokio::time::sleep(period) => return,
                    () = changed => {}
                }
            } else {
                changed.await;
            }
        }
    }

    fn open(self: &Arc<Self>) -> OpenStream {
        if self.open.fetch_add(1, Ordering::AcqRel) == 0 {
            self.changed.notify_waiters();
        }
        OpenStream(Arc::clone(self))
    }
}

/// One open stream; dropping it closes it.
#[derive(Debug)]
struct OpenStream(Arc<OpenStreams>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.changed.notify_waiters();
        }
    }
}

/// A response body that keeps its stream open until it has produced its last frame (or is
/// dropped): an SSE stream is open for as long as it runs. Not until hyper drops it: a peer that
/// grants no flow-control window keeps a produced body unsent, and must not keep its connection
/// open that way.
struct CountedBody {
    body: Body,
    stream: Option<OpenStream>,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_))))
            || self.body.is_end_stream()
        {
            self.stream = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
