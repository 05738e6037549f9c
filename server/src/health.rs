//! Liveness and readiness for orchestrators: `/healthz` answers while the process serves;
//! `/readyz` only once every trusted authorization server's keys are loaded (and not past their stale
//! window), so traffic is not routed to an instance that would refuse every token.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::keys::KeySources;

/// `GET /healthz`.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: 200 when keys are loaded, 503 otherwise.
pub(crate) async fn readyz(State(keys): State<Arc<KeySources>>) -> Response {
    if keys.is_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": "authorization server keys not loaded"})),
        )
            .into_response()
    }
}
