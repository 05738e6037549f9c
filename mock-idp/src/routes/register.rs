//! Dynamic client registration (RFC 7591 §3), as MCP clients register themselves: public clients
//! (`token_endpoint_auth_method: none`, PKCE) and confidential ones (a secret is issued).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{IdpState, TenantName, resolve};
use crate::error::{OAuthError, OAuthErrorCode};

/// `POST /register`.
pub(super) async fn register(
    State(state): State<IdpState>,
    tenant: TenantName,
    body: Bytes,
) -> Response {
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    let metadata: Value = match serde_json::from_slice(&body) {
        Ok(metadata @ Value::Object(_)) => metadata,
        _ => {
            return OAuthError::new(
                OAuthErrorCode::InvalidClientMetadata,
                "the body must be a JSON object of client metadata",
            )
            .into_response();
        }
    };
    match state.clients.register(&metadata, issuer.clock.now()) {
        Ok(registered) => {
            let mut response = (StatusCode::CREATED, Json(registered)).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => error.into_response(),
    }
}
