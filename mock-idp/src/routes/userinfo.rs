//! The OpenID Connect userinfo endpoint (OIDC Core §5.3): the signed-in user's claims, as the
//! scopes of the access token release them. Only access tokens this issuer issued, still active,
//! with the `openid` scope.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::{IdpState, TenantName, resolve};
use crate::error::{OAuthError, OAuthErrorCode};

/// `GET /userinfo`.
pub(super) async fn userinfo(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
) -> Response {
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    let refused = || {
        OAuthError::new(
            OAuthErrorCode::InvalidToken,
            "the access token is not active here",
        )
        .into_response()
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return refused();
    };
    let Some(record) = issuer.grants.active_access(token, issuer.clock.now()) else {
        return refused();
    };
    if !record.scopes.iter().any(|s| s == "openid") {
        return refused();
    }
    let Some(user) = state.sign_in.users.find(&record.subject) else {
        return refused();
    };
    Json(user.profile_claims(&record.scopes)).into_response()
}
