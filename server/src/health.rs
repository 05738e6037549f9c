//! Liveness and readiness for orchestrators: `/healthz` answers while the process serves;
//! `/readyz` only once every trusted authorization server's keys are loaded (and not past their stale
//! window), so traffic is not routed to an instance that would refuse every token.
//!
//! With a shared state store, a replica is ready only once it has read the revocations in force
//! (at start), so a new replica never serves a token revoked before it booted.
//!
//! A shared state store that does not answer later is reported in the body (`"shared_state": "down"`)
//! but does not make the instance unready: every use of it has a configured fallback, and taking
//! every replica out of rotation at once would turn a store outage into a full one. Alert on
//! `mcp_shared_state_up` instead.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::keys::KeySources;
use crate::gateway::Forwarder;
use crate::shared_state::revocations::RevocationList;
use crate::telemetry::Metrics;

/// `GET /healthz`.
pub(crate) async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// What readiness depends on: the keys, and a gateway's upstream.
#[derive(Clone)]
pub(crate) struct Readiness {
    pub(crate) keys: Arc<KeySources>,
    pub(crate) upstream: Option<Arc<Forwarder>>,
    pub(crate) metrics: Arc<Metrics>,
    /// With a shared state store: the revocations, read to the end once before traffic comes.
    pub(crate) revocations: Option<Arc<RevocationList>>,
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
    if readiness
        .revocations
        .as_ref()
        .is_some_and(|list| !list.caught_up())
    {
        return not_ready("the revocations in force have not been read from the shared state");
    }
    if let Some(upstream) = &readiness.upstream
        && !upstream.probe().await
    {
        return not_ready("the upstream MCP server does not answer");
    }
    match readiness.metrics.shared_state_is_up() {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(up) => {
            Json(json!({"status": "ready", "shared_state": if up { "up" } else { "down" }}))
                .into_response()
        }
    }
}
