//! The JWKS: current key, retired keys in their grace period, and any extra test keys, with a
//! `Cache-Control: max-age` so resource servers can cache it as real IdPs let them.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::IdpState;
use super::{TenantName, serve_endpoint};
use crate::faults::Endpoint;

pub(super) async fn jwks(State(state): State<IdpState>, tenant: TenantName) -> Response {
    serve_endpoint(&state, tenant, Endpoint::Jwks, |issuer| async move {
        let max_age = issuer.settings.jwks_max_age.as_secs();
        let mut response = Json(issuer.jwks()).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
            response.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        response
    })
    .await
}
