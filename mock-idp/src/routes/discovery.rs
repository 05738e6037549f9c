//! OIDC Discovery 1.0 and RFC 8414 metadata. Both list exactly the endpoints that exist: this
//! provider has no authorization endpoint, so it advertises no response types or flows it lacks.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{IdpState, TenantName, serve_endpoint};
use crate::clients::ClientRegistry;
use crate::faults::Endpoint;
use crate::issuer::Issuer;

pub(super) async fn openid_configuration(
    State(state): State<IdpState>,
    tenant: TenantName,
) -> Response {
    let clients = Arc::clone(&state.clients);
    serve_endpoint(
        &state,
        tenant,
        Endpoint::OpenidConfiguration,
        |issuer| async move { Json(metadata(&clients, &issuer)).into_response() },
    )
    .await
}

pub(super) async fn authorization_server(
    State(state): State<IdpState>,
    tenant: TenantName,
) -> Response {
    let clients = Arc::clone(&state.clients);
    serve_endpoint(
        &state,
        tenant,
        Endpoint::OauthAuthorizationServer,
        |issuer| async move { Json(metadata(&clients, &issuer)).into_response() },
    )
    .await
}

fn metadata(clients: &ClientRegistry, issuer: &Issuer) -> Value {
    let mut scopes: Vec<&str> = clients
        .all()
        .iter()
        .flat_map(|c| c.scopes.iter().map(String::as_str))
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let url = &issuer.url;
    json!({
        "issuer": url,
        "token_endpoint": format!("{url}/token"),
        "jwks_uri": format!("{url}/jwks"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": scopes,
    })
}
