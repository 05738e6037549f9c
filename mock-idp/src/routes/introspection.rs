//! Token introspection (RFC 7662) and revocation (RFC 7009), for resource servers that judge
//! opaque tokens and for clients that end their tokens. Introspection is for confidential clients
//! (a resource server authenticates, RFC 7662 §2.1); revocation for any client, of its own tokens.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::form::{Form, invalid_request};
use super::token::credentials;
use super::{IdpState, TenantName, serve_endpoint};
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
                let form = Form::parse(&headers, &body)?;
                let now = issuer.clock.now();
                let client = state
                    .clients
                    .authenticate(&credentials(&headers, &form)?, now)
                    .await?;
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
            let form = Form::parse(&headers, &body)?;
            let client = state
                .clients
                .authenticate(&credentials(&headers, &form)?, issuer.clock.now())
                .await?;
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
