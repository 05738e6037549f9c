//! The HTTP surface: every issuer (root and `/{tenant}`) gets discovery, RFC 8414 metadata, a
//! JWKS and a token endpoint; the admin test API is added only when enabled. CORS only where a
//! browser-based client needs it (not the authorization endpoint, a page the browser navigates
//! to; never the admin API); the [`guard`] checks `Host` and guards the admin API.

mod admin;
mod authorize;
mod client_auth;
mod discovery;
mod form;
mod guard;
mod introspection;
mod jwks;
mod login_page;
mod permissions;
mod register;
mod token;
mod userinfo;

pub(crate) use guard::{AdminToken, Guard};

use std::future::Future;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::cors::{Any, CorsLayer};

use crate::clients::ClientRegistry;
use crate::error::IdpError;
use crate::faults::Endpoint;
use crate::issuer::Issuer;
use crate::issuers::Issuers;
use crate::users::Users;

/// What the routes read, handed down by the server that builds them.
#[derive(Debug, Clone)]
pub(crate) struct IdpState {
    pub(crate) issuers: Arc<Issuers>,
    pub(crate) clients: Arc<ClientRegistry>,
    pub(crate) sign_in: Arc<SignIn>,
    /// Whether the `/admin/...` test API is served.
    pub(crate) admin: bool,
    /// The `Host` and admin checks.
    pub(crate) guard: Arc<Guard>,
}

/// What user sign-in offers: who can sign in, whether the login page is skipped, and the scopes
/// and resources clients without their own lists may ask for.
#[derive(Debug)]
pub(crate) struct SignIn {
    pub(crate) users: Users,
    /// Sign this user in without showing the login page (headless tests).
    pub(crate) auto_login: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) resources: Vec<String>,
}

pub(crate) fn router(state: IdpState) -> Router {
    let guard = Arc::clone(&state.guard);
    // Browser-based MCP clients (the MCP Inspector) call discovery, registration, the token
    // endpoint and the rest from their own origin. No cookies are used, so no credentials. The
    // MCP SDKs send `MCP-Protocol-Version` on discovery requests too.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE]);
    let mut router = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/{tenant}",
            get(discovery::authorization_server),
        )
        // Not RFC 8414's form, but what many clients try for a path issuer; serving it costs nothing.
        .route(
            "/{tenant}/.well-known/oauth-authorization-server",
            get(discovery::authorization_server),
        )
        .route("/jwks", get(jwks::jwks))
        .route("/{tenant}/jwks", get(jwks::jwks))
        .route("/token", post(token::token))
        .route("/{tenant}/token", post(token::token))
        .route("/register", post(register::register))
        .route("/{tenant}/register", post(register::register))
        .route("/userinfo", get(userinfo::userinfo))
        .route("/{tenant}/userinfo", get(userinfo::userinfo))
        .route("/introspect", post(introspection::introspect))
        .route("/{tenant}/introspect", post(introspection::introspect))
        .route(
            "/tokeninfo",
            get(introspection::token_info).post(introspection::token_info),
        )
        .route(
            "/{tenant}/tokeninfo",
            get(introspection::token_info).post(introspection::token_info),
        )
        .route("/revoke", post(introspection::revoke))
        .route("/{tenant}/revoke", post(introspection::revoke))
        .layer(cors)
        // The browser comes here by navigation, not by `fetch`: no CORS, so no page can read
        // what this endpoint answers (it may fetch a client metadata document, see
        // `clients::documents`).
        .route(
            "/authorize",
            get(authorize::authorize).post(authorize::sign_in),
        )
        .route(
            "/{tenant}/authorize",
            get(authorize::authorize).post(authorize::sign_in),
        );
    if state.admin {
        router = router.merge(
            admin::router().route_layer(from_fn_with_state(Arc::clone(&guard), guard::check_admin)),
        );
    }
    router
        .fallback(|| async {
            error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        // Token requests and admin calls are small; a larger body is a mistake or an attack.
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn_with_state(guard, guard::check_host))
        .with_state(state)
}

/// The `{tenant}` path segment, if the route has one.
pub(crate) struct TenantName(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for TenantName {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state).await.ok();
        let tenant = params.and_then(|params| {
            params
                .iter()
                .find(|(name, _)| *name == "tenant")
                .map(|(_, value)| value.to_owned())
        });
        Ok(Self(tenant))
    }
}

/// Runs an issuer endpoint: resolves the issuer, counts the request, applies any injected fault,
/// performs a due key rotation, then answers with `respond`.
pub(crate) async fn serve_endpoint<F, Fut>(
    state: &IdpState,
    tenant: TenantName,
    endpoint: Endpoint,
    respond: F,
) -> Response
where
    F: FnOnce(Arc<Issuer>) -> Fut,
    Fut: Future<Output = Response>,
{
    let issuer = match resolve(state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    if let Some(fault) = issuer.monitor.enter(endpoint)
        && let Some(response) = fault.apply().await
    {
        return response;
    }
    if let Err(error) = issuer.rotate_if_due().await {
        return internal_error(&error);
    }
    respond(issuer).await
}

/// The issuer a request names, or the response explaining why there is none.
pub(crate) async fn resolve(state: &IdpState, tenant: TenantName) -> Result<Arc<Issuer>, Response> {
    state
        .issuers
        .get(tenant.0.as_deref())
        .await
        .map_err(|error| match error {
            IdpError::InvalidTenant(_) | IdpError::TooManyTenants(_) => {
                error_response(StatusCode::NOT_FOUND, "not_found", &error.to_string())
            }
            other => internal_error(&other),
        })
}

/// A 500 whose body reveals nothing; the detail goes to the log once, here.
pub(crate) fn internal_error(error: &IdpError) -> Response {
    tracing::error!(
        error = error as &dyn std::error::Error,
        "mock IdP internal error"
    );
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "internal error",
    )
}

/// A JSON error body in the RFC 6749 §5.2 shape, for non-token endpoints.
pub(crate) fn error_response(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
