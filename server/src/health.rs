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
use crate::gateway::Forwarder;

/// `GET /healthz`.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// What readiness depends on: the keys, and a gateway's upstream.
#[derive(Clone)]
pub(crate) struct Readiness {
    pub(crate) keys: Arc<KeySources>,
    pub(crate) upstream: Option<Arc<Forwarder>>,
}

/// `GET /readyz`: 200 when keys are loaded (and a gateway's upstream answers), 503 otherwise.
pub(crate) async fn readyz(State(readiness): State<Readiness>) -> Response {
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "reason": reason})),
        )
            .into_response()
    };
    if !readiness.keys.is_ready() {
        return not_ready("authorization server keys not loaded");
    }
    if let Some(upstream) = &readiness.upstream
        && !upstream.probe().await
    {
        return not_ready("the upstream MCP server does not answer");
    }
    Json(json!({"status": "ready"})).into_response()
}
