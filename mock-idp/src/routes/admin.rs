//! The admin test API, for tests in other languages and for poking at a running demo: mint any
//! token (valid or forged), rotate keys, inject faults, read counters, move the clock. Served only
//! when enabled (the dev binary enables it on loopback only), without CORS, and behind
//! `guard::check_admin`: no request from a web page, none for another host, and the admin token
//! when one is configured.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{IdpState, TenantName, error_response, internal_error, resolve};
use crate::attack::Forgery;
use crate::error::IdpError;
use crate::faults::{Endpoint, Fault};
use crate::keys::Algorithm;

pub(super) fn router() -> Router<IdpState> {
    Router::new()
        .route("/admin/clock", get(clock).post(set_clock))
        .route("/admin/rotate", post(rotate))
        .route("/{tenant}/admin/rotate", post(rotate))
        .route("/admin/mint", post(mint))
        .route("/{tenant}/admin/mint", post(mint))
        .route("/admin/encryption-key", post(encryption_key))
        .route("/{tenant}/admin/encryption-key", post(encryption_key))
        .route("/admin/faults", delete(clear_faults))
        .route("/{tenant}/admin/faults", delete(clear_faults))
        .route("/admin/faults/{endpoint}", put(set_fault))
        .route("/{tenant}/admin/faults/{endpoint}", put(set_fault))
        .route("/admin/counters", get(counters).delete(reset_counters))
        .route(
            "/{tenant}/admin/counters",
            get(counters).delete(reset_counters),
        )
}

async fn clock(State(state): State<IdpState>) -> Response {
    Json(json!({ "now": state.issuers.clock().now() })).into_response()
}

/// `{"advance_secs": 600}`, `{"set": 1700000000}` or `{"reset": true}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum ClockChange {
    AdvanceSecs(u64),
    Set(i64),
    Reset(bool),
}

async fn set_clock(
    State(state): State<IdpState>,
    change: Result<Json<ClockChange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let clock_now = state.issuers.clock();
    match change {
        Ok(Json(ClockChange::AdvanceSecs(secs))) => {
            clock_now.advance(std::time::Duration::from_secs(secs))
        }
        Ok(Json(ClockChange::Set(at))) => clock_now.set(at),
        Ok(Json(ClockChange::Reset(true))) => clock_now.reset(),
        Ok(Json(ClockChange::Reset(false))) => {}
        Err(rejection) => return bad_request(&rejection.body_text()),
    }
    clock(State(state)).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    alg: Option<Algorithm>,
}

async fn rotate(
    State(state): State<IdpState>,
    tenant: TenantName,
    body: axum::body::Bytes,
) -> Response {
    let request: RotateRequest = if body.is_empty() {
        RotateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(error) => return bad_request(&error.to_string()),
        }
    };
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    match issuer.rotate(request.alg).await {
        Ok(rotation) => Json(rotation).into_response(),
        Err(error) => internal_error(&error),
    }
}

async fn encryption_key(State(state): State<IdpState>, tenant: TenantName) -> Response {
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    match issuer.publish_encryption_key().await {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(error) => internal_error(&error),
    }
}

/// `?count=N` on `/admin/mint`: N tokens of one recipe, one per line (each with its own `jti`),
/// for load tests that need many distinct tokens.
#[derive(serde::Deserialize)]
struct MintCount {
    count: Option<u32>,
}

/// The most tokens one `/admin/mint?count=` call makes.
const MAX_MINT_COUNT: u32 = 200_000;

async fn mint(
    State(state): State<IdpState>,
    tenant: TenantName,
    axum::extract::Query(MintCount { count }): axum::extract::Query<MintCount>,
    body: axum::body::Bytes,
) -> Response {
    let forgery: Forgery = match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body })
    {
        Ok(forgery) => forgery,
        Err(error) => return bad_request(&error.to_string()),
    };
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    if let Err(error) = issuer.rotate_if_due().await {
        return internal_error(&error);
    }
    if let Some(count) = count {
        if count == 0 || count > MAX_MINT_COUNT {
            return bad_request(&format!("count must be 1 to {MAX_MINT_COUNT}"));
        }
        let mut lines = String::new();
        for _ in 0..count {
            match issuer.forge(&forgery).await {
                Ok(token) => {
                    lines.push_str(&token);
                    lines.push('\n');
                }
                Err(error) => return bad_request(&error_chain(&error)),
            }
        }
        return lines.into_response();
    }
    match issuer.forge(&forgery).await {
        Ok(token) => Json(json!({ "access_token": token, "token_type": "Bearer" })).into_response(),
        Err(
            error @ (IdpError::UnknownKid(_)
            | IdpError::Signing(_)
            | IdpError::RsaPem(_)
            | IdpError::RsaSigning(_)
            | IdpError::NotRsa),
        ) => bad_request(&error_chain(&error)),
        Err(error) => internal_error(&error),
    }
}

async fn set_fault(
    State(state): State<IdpState>,
    tenant: TenantName,
    Path(params): Path<std::collections::HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let endpoint: Endpoint = match params.get("endpoint").map(|e| e.parse()) {
        Some(Ok(endpoint)) => endpoint,
        _ => {
            let names = Endpoint::ALL.map(Endpoint::as_str).join(", ");
            return bad_request(&format!("endpoint must be one of {names}"));
        }
    };
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(error) => return bad_request(&error.to_string()),
    };
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    issuer.monitor.set_fault(endpoint, fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(state): State<IdpState>, tenant: TenantName) -> Response {
    match resolve(&state, tenant).await {
        Ok(issuer) => {
            issuer.monitor.clear_faults();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

async fn counters(State(state): State<IdpState>, tenant: TenantName) -> Response {
    match resolve(&state, tenant).await {
        Ok(issuer) => {
            let counts: Map<String, Value> = Endpoint::ALL
                .iter()
                .map(|e| (e.as_str().to_owned(), issuer.monitor.count(*e).into()))
                .collect();
            Json(Value::Object(counts)).into_response()
        }
        Err(response) => response,
    }
}

async fn reset_counters(State(state): State<IdpState>, tenant: TenantName) -> Response {
    match resolve(&state, tenant).await {
        Ok(issuer) => {
            issuer.monitor.reset_counts();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

/// An error and its sources, `: `-separated, for the caller of a test API.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn bad_request(description: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request", description)
}
