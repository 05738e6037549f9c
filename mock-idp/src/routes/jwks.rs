//! The JWKS: current key, retired keys in their grace period, and any extra test keys, with a
//! `Cache-Control: max-age` so resource servers can cache it as real IdPs let them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{TenantName, serve_endpoint};
use crate::faults::Endpoint;
use crate::server::Shared;

pub(super) async fn jwks(State(shared): State<Arc<Shared>>, tenant: TenantName) -> Response {
    let clock = shared.clock.clone();
    serve_endpoint(&shared, tenant, Endpoint::Jwks, |issuer| async move {
        let max_age = issuer.settings.jwks_max_age.as_secs();
        let mut response = Json(issuer.jwks(clock.now())).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
            response.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        response
    })
    .await
}
