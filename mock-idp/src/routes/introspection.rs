//! Token introspection (RFC 7662) and revocation (RFC 7009), for resource servers that judge
//! opaque tokens and for clients that end their tokens. Introspection is for confidential clients
//! (a resource server authenticates, RFC 7662 §2.1); revocation for any client, of its own tokens.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::authenticated_request;
use super::form::{Form, invalid_request};
use super::{IdpState, TenantName, error_response, serve_endpoint};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::faults::Endpoint;

/// `POST /introspect`.
pub(super) async fn introspect(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routes = state.clone();
    serve_endpoint(
        &routes,
        tenant,
        Endpoint::Introspection,
        |issuer| async move {
            let answer = async {
                let now = issuer.clock.now();
                let (form, client) = authenticated_request(&state, &headers, &body, now).await?;
                if client.is_public() {
                    return Err(OAuthError::new(
                        OAuthErrorCode::InvalidClient,
                        "introspection is for confidential clients",
                    ));
                }
                let token = form
                    .single("token")?
                    .ok_or_else(|| invalid_request("token is required"))?;
                Ok(match issuer.grants.active_access(token, now) {
                    None => json!({"active": false}),
                    Some(record) => {
                        let mut answer = json!({
                            "active": true,
                            "iss": issuer.url,
                            "sub": record.subject,
                            "client_id": record.client_id,
                            "token_type": "Bearer",
                            "iat": record.issued_at,
                            "exp": record.expires_at,
                        });
                        if !record.scopes.is_empty() {
                            answer["scope"] = record.scopes.join(" ").into();
                        }
                        // RFC 9449 §6.2: a bound token says so, and to which key.
                        if let Some(jkt) = &record.dpop_jkt {
                            answer["token_type"] = "DPoP".into();
                            answer["cnf"] = json!({ "jkt": jkt });
                        }
                        match record.audience.as_slice() {
                            [] => {}
                            [one] => answer["aud"] = one.clone().into(),
                            many => answer["aud"] = json!(many),
                        }
                        answer
                    }
                })
            };
            match answer.await {
                Ok(answer) => {
                    let mut response = Json(answer).into_response();
                    response
                        .headers_mut()
                        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    response
                }
                Err(error) => error.into_response(),
            }
        },
    )
    .await
}

/// `GET` or `POST /tokeninfo`: what Google's token-information endpoint answers about an access
/// token (`access_token` in the query or the form): the client it was issued to as `aud` and
/// `azp`, `sub`, `scope`, and `exp` / `expires_in` as strings, as Google sends them; 400
/// `Invalid Value` for a token that is unknown, expired or revoked.
pub(super) async fn token_info(
    State(state): State<IdpState>,
    tenant: TenantName,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routes = state.clone();
    serve_endpoint(&routes, tenant, Endpoint::TokenInfo, |issuer| async move {
        let from_query = query.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == "access_token")
                .map(|(_, value)| value.into_owned())
        });
        let token = match from_query {
            Some(token) => Some(token),
            None if !body.is_empty() => match Form::parse(&headers, &body) {
                Ok(form) => form
                    .single("access_token")
                    .ok()
                    .flatten()
                    .map(str::to_owned),
                Err(error) => return error.into_response(),
            },
            None => None,
        };
        let now = issuer.clock.now();
        let Some(record) = token.and_then(|token| issuer.grants.active_access(&token, now)) else {
            // Google's answer for a token it does not know (or no longer honours).
            return error_response(StatusCode::BAD_REQUEST, "invalid_token", "Invalid Value");
        };
        let mut answer = json!({
            "azp": record.client_id,
            "aud": record.client_id,
            "sub": record.subject,
            "scope": record.scopes.join(" "),
            "exp": record.expires_at.to_string(),
            "expires_in": (record.expires_at - now).to_string(),
            "access_type": "online",
        });
        if let Some(email) = state
            .sign_in
            .users
            .find(&record.subject)
            .and_then(|user| user.email.clone())
        {
            answer["email"] = email.into();
            answer["email_verified"] = "true".into();
        }
        let mut response = Json(answer).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    })
    .await
}

/// `POST /revoke`.
pub(super) async fn revoke(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routes = state.clone();
    serve_endpoint(&routes, tenant, Endpoint::Revocation, |issuer| async move {
        let done = async {
            let (form, client) =
                authenticated_request(&state, &headers, &body, issuer.clock.now()).await?;
            let token = form
                .single("token")?
                .ok_or_else(|| invalid_request("token is required"))?;
            // RFC 7009 §2.2: an unknown (or someone else's) token is answered 200 all the same.
            issuer.grants.revoke(token, &client.client_id);
            Ok::<_, OAuthError>(())
        };
        match done.await {
            Ok(()) => StatusCode::OK.into_response(),
            Err(error) => error.into_response(),
        }
    })
    .await
}
