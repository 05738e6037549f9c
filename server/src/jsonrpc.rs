//! JSON-RPC error answers given before rmcp sees a request (a refused Host or Origin, an unknown
//! session, a body that is not JSON), built in one place so their shape cannot drift: a JSON-RPC
//! 2.0 error object with `id: null`, since the request's id is unknown or untrusted at that point.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The JSON-RPC error codes these answers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// -32700: the body is not JSON (JSON-RPC 2.0 §5.1).
    ParseError,
    /// -32600: the request is refused as a whole.
    InvalidRequest,
    /// -32001: the session does not exist (or is not the caller's), as rmcp answers.
    SessionNotFound,
}

impl ErrorCode {
    fn code(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::SessionNotFound => -32001,
        }
    }
}

/// `status` with a JSON-RPC error body.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": code.code(), "message": message}});
    (status, Json(body)).into_response()
}
