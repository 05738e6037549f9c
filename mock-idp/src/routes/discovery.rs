//! OIDC Discovery 1.0 and RFC 8414 metadata: every endpoint and choice a client needs to pick its
//! flow (authorization code with S256 PKCE, client credentials, refresh; registration by RFC 7591
//! or by client ID metadata document; RFC 9207 `iss` on redirects), and nothing it does not do.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{IdpState, SignIn, TenantName, serve_endpoint};
use crate::faults::Endpoint;
use crate::issuer::Issuer;

pub(super) async fn openid_configuration(
    State(state): State<IdpState>,
    tenant: TenantName,
) -> Response {
    let sign_in = Arc::clone(&state.sign_in);
    serve_endpoint(
        &state,
        tenant,
        Endpoint::OpenidConfiguration,
        |issuer| async move { Json(metadata(&sign_in, &issuer)).into_response() },
    )
    .await
}

pub(super) async fn authorization_server(
    State(state): State<IdpState>,
    tenant: TenantName,
) -> Response {
    let sign_in = Arc::clone(&state.sign_in);
    serve_endpoint(
        &state,
        tenant,
        Endpoint::OauthAuthorizationServer,
        |issuer| async move { Json(metadata(&sign_in, &issuer)).into_response() },
    )
    .await
}

/// The metadata document. `scopes_supported` is every scope a client may ask for: the builder
/// already made that the union of the configured clients' scopes and the IdP's own.
fn metadata(sign_in: &SignIn, issuer: &Issuer) -> Value {
    let mut scopes: Vec<&str> = sign_in.scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    scopes.dedup();
    let url = &issuer.url;
    json!({
        "issuer": url,
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "registration_endpoint": format!("{url}/register"),
        "userinfo_endpoint": format!("{url}/userinfo"),
        "introspection_endpoint": format!("{url}/introspect"),
        "revocation_endpoint": format!("{url}/revoke"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "jwks_uri": format!("{url}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": crate::proofs::PROOF_ALGORITHMS
            .iter()
            .map(|alg| format!("{alg:?}"))
            .collect::<Vec<_>>(),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [issuer.settings.algorithm.as_str()],
        "scopes_supported": scopes,
        "claims_supported": ["sub", "name", "preferred_username", "email", "email_verified"],
    })
}
