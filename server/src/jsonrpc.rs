//! JSON-RPC error answers given before rmcp sees a request (a refused Host or Origin, an unknown
//! session, a body that is not JSON), built in one place so their shape cannot drift: a JSON-RPC
//! 2.0 error object with `id: null`, since the request's id is unknown or untrusted at that point.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Request-extension marker: the body is (or its batch holds) an `initialize` request, so this
/// request may open a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitializeRequest;

/// Whether a JSON-RPC message (or batch) holds an `initialize` request.
pub(crate) fn is_initialize(message: &Value) -> bool {
    let is_one = |m: &Value| m.get("method").and_then(Value::as_str) == Some("initialize");
    match message {
        Value::Array(batch) => batch.iter().any(is_one),
        single => is_one(single),
    }
}

/// The JSON-RPC error codes these answers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
    /// -32700: the body is not JSON (JSON-RPC 2.0 §5.1).
    ParseError,
    /// -32600: the request is refused as a whole.
    InvalidRequest,
    /// -32001: the session does not exist (or is not the caller's), as rmcp answers.
    SessionNotFound,
    /// -32000: the server will not take this request now (a cap or a rate limit); try later.
    ServerBusy,
}

impl ErrorCode {
    fn code(self) -> i32 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::SessionNotFound => -32001,
            Self::ServerBusy => -32000,
        }
    }
}

/// `status` with a JSON-RPC error body.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body =
        json!({"jsonrpc": "2.0", "id": null, "error": {"code": code.code(), "message": message}});
    (status, Json(body)).into_response()
}
