//! The admin test API, for tests in other languages and for poking at a running demo: mint any
//! token (valid or forged), rotate keys, inject faults, read counters, move the clock. Served only
//! when enabled; the dev binary enables it on loopback only.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{TenantName, error_response, internal_error, resolve};
use crate::attack::{Forgery, KeyChoice, Signature};
use crate::error::IdpError;
use crate::faults::{Endpoint, Fault};
use crate::keys::Algorithm;
use crate::server::Shared;
use crate::tokens::{AccessTokenSpec, Audience};

pub(super) fn router() -> Router<Arc<Shared>> {
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

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({ "now": shared.clock.now() })).into_response()
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
    State(shared): State<Arc<Shared>>,
    change: Result<Json<ClockChange>, axum::extract::rejection::JsonRejection>,
) -> Response {
    match change {
        Ok(Json(ClockChange::AdvanceSecs(secs))) => {
            shared.clock.advance(std::time::Duration::from_secs(secs))
        }
        Ok(Json(ClockChange::Set(at))) => shared.clock.set(at),
        Ok(Json(ClockChange::Reset(true))) => shared.clock.reset(),
        Ok(Json(ClockChange::Reset(false))) => {}
        Err(rejection) => return bad_request(&rejection.body_text()),
    }
    clock(State(shared)).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    alg: Option<Algorithm>,
}

async fn rotate(
    State(shared): State<Arc<Shared>>,
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
    let issuer = match resolve(&shared, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    match issuer.rotate(&shared, request.alg).await {
        Ok(rotation) => Json(rotation).into_response(),
        Err(error) => internal_error(&error),
    }
}

async fn encryption_key(State(shared): State<Arc<Shared>>, tenant: TenantName) -> Response {
    let issuer = match resolve(&shared, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    match issuer.publish_encryption_key(&shared).await {
        Ok(kid) => Json(json!({ "kid": kid })).into_response(),
        Err(error) => internal_error(&error),
    }
}

/// A token request of the admin API: a valid token by default, every part overridable.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MintRequest {
    #[serde(default = "default_subject")]
    subject: String,
    client_id: Option<String>,
    audience: Option<Audience>,
    /// Space-separated, as in the `scope` claim.
    scope: Option<String>,
    /// Seconds from now; negative for an expired token.
    expires_in: Option<i64>,
    /// Seconds from now for `nbf`.
    not_before_in: Option<i64>,
    #[serde(default)]
    claims: Map<String, Value>,
    #[serde(default)]
    remove_claims: Vec<String>,
    #[serde(default)]
    header: Map<String, Value>,
    #[serde(default)]
    remove_header: Vec<String>,
    #[serde(default)]
    signature: MintSignature,
    /// Sign with this algorithm instead of the key's own (J04-J06).
    sign_alg: Option<jsonwebtoken::Algorithm>,
}

fn default_subject() -> String {
    "alice".into()
}

/// `"current"`, `"unpublished"`, `"empty"`, `{"kid": "..."}`, `{"hmac_secret": "..."}`,
/// `{"bytes_b64url": "..."}` or `{"segment": "..."}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum MintSignature {
    #[default]
    Current,
    Unpublished,
    Empty,
    Kid(String),
    HmacSecret(String),
    BytesB64url(String),
    Segment(String),
}

impl MintRequest {
    fn into_forgery(self) -> Result<Forgery, String> {
        let mut spec = AccessTokenSpec::user(self.subject);
        if let Some(client_id) = self.client_id {
            spec = spec.client_id(client_id);
        }
        if let Some(audience) = self.audience {
            spec = spec.audience(audience);
        }
        if let Some(scope) = self.scope {
            spec = spec.scope(scope.split(' ').filter(|s| !s.is_empty()));
        }
        if let Some(offset) = self.expires_in {
            spec.expires_at_offset = offset;
            spec.issued_at_offset = spec.issued_at_offset.min(offset.saturating_sub(60));
        }
        spec.not_before_offset = self.not_before_in;
        let signature = match self.signature {
            MintSignature::Current => Signature::Key {
                key: KeyChoice::Current,
                alg: self.sign_alg,
            },
            MintSignature::Unpublished => Signature::Key {
                key: KeyChoice::Unpublished,
                alg: self.sign_alg,
            },
            MintSignature::Kid(kid) => Signature::Key {
                key: KeyChoice::Kid(kid),
                alg: self.sign_alg,
            },
            MintSignature::Empty => Signature::Empty,
            MintSignature::HmacSecret(secret) => Signature::Hmac {
                secret: secret.into_bytes(),
                alg: self.sign_alg.unwrap_or(jsonwebtoken::Algorithm::HS256),
            },
            MintSignature::BytesB64url(bytes) => Signature::Bytes(
                URL_SAFE_NO_PAD
                    .decode(bytes)
                    .map_err(|e| format!("bytes_b64url: {e}"))?,
            ),
            MintSignature::Segment(segment) => Signature::Segment(segment),
        };
        let mut forgery = Forgery::new(spec).signature(signature);
        for (name, value) in self.claims {
            forgery = forgery.claim(name, value);
        }
        for name in self.remove_claims {
            forgery = forgery.without_claim(name);
        }
        for (name, value) in self.header {
            forgery = forgery.header(name, value);
        }
        for name in self.remove_header {
            forgery = forgery.without_header(name);
        }
        Ok(forgery)
    }
}

async fn mint(
    State(shared): State<Arc<Shared>>,
    tenant: TenantName,
    body: axum::body::Bytes,
) -> Response {
    let request: MintRequest =
        match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
            Ok(request) => request,
            Err(error) => return bad_request(&error.to_string()),
        };
    let forgery = match request.into_forgery() {
        Ok(forgery) => forgery,
        Err(error) => return bad_request(&error),
    };
    let issuer = match resolve(&shared, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    if let Err(error) = issuer.rotate_if_due(&shared).await {
        return internal_error(&error);
    }
    match issuer.forge(&forgery, &shared).await {
        Ok(token) => Json(json!({ "access_token": token, "token_type": "Bearer" })).into_response(),
        Err(error @ (IdpError::InvalidKey(_) | IdpError::Signing(_))) => {
            bad_request(&error.to_string())
        }
        Err(error) => internal_error(&error),
    }
}

async fn set_fault(
    State(shared): State<Arc<Shared>>,
    tenant: TenantName,
    Path(params): Path<std::collections::HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let endpoint: Endpoint = match params.get("endpoint").map(|e| e.parse()) {
        Some(Ok(endpoint)) => endpoint,
        _ => {
            return bad_request(
                "endpoint must be one of openid-configuration, oauth-authorization-server, jwks, token",
            );
        }
    };
    let fault: Fault = match serde_json::from_slice(&body) {
        Ok(fault) => fault,
        Err(error) => return bad_request(&error.to_string()),
    };
    let issuer = match resolve(&shared, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    issuer.monitor.set_fault(endpoint, fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>, tenant: TenantName) -> Response {
    match resolve(&shared, tenant).await {
        Ok(issuer) => {
            issuer.monitor.clear_faults();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

async fn counters(State(shared): State<Arc<Shared>>, tenant: TenantName) -> Response {
    match resolve(&shared, tenant).await {
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

async fn reset_counters(State(shared): State<Arc<Shared>>, tenant: TenantName) -> Response {
    match resolve(&shared, tenant).await {
        Ok(issuer) => {
            issuer.monitor.reset_counts();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(response) => response,
    }
}

fn bad_request(description: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "invalid_request", description)
}
