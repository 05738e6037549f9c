//! Edge limits that apply before anything else reads the request: the total size of the header
//! fields (RFC 6585 §5: 431) and of the body (413), so an oversized request costs a cheap
//! refusal and the server keeps serving (checklist C07, J39); and the time and connection bounds
//! the accept loop ([`crate::App::serve`]) enforces against slow and greedy clients (R05, R06).

use std::num::NonZeroUsize;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// What one request and one connection may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest MCP request body, bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Largest total of request header names and values, bytes (larger: 431).
    pub max_header_bytes: usize,
    /// How long a connection may take to send a request's headers, and how long an idle
    /// keep-alive connection waits for the next request, before it is closed (slowloris).
    pub header_read_timeout: Duration,
    /// How long a request may take, body included, until its response starts (larger: 408).
    /// SSE streams are not cut: their response starts at once.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: NonZeroUsize,
}

impl Default for Limits {
    /// 1 MiB bodies (MCP messages are small; tool arguments rarely reach kilobytes), 32 KiB of
    /// headers (a few KiB of token plus the usual headers), 10 s for headers (a real client
    /// sends them in one packet), 60 s per request, and 1,000 connections: under the common
    /// soft limit of 1,024 file descriptors, leaving room for the server's own (raise both
    /// together).
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 32 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_connections: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

/// Middleware: 431 when the header fields together exceed `max_header_bytes`.
pub(crate) async fn limit_headers(
    State(limits): State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let total: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if total > limits.max_header_bytes {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        )
            .into_response();
    }
    next.run(request).await
}
