//! Edge limits that apply before anything else reads the request: the total size of the header
//! fields (RFC 6585 §5: 431), so an oversized header costs a cheap refusal and the server keeps
//! serving (checklist C07, J39).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest total of header names and values accepted, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimit(pub usize);

/// Middleware: 431 when the header fields together exceed the limit.
pub async fn limit_headers(
    State(limit): State<HeaderLimit>,
    request: Request,
    next: Next,
) -> Response {
    let total: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if total > limit.0 {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request header fields too large",
        )
            .into_response();
    }
    next.run(request).await
}
