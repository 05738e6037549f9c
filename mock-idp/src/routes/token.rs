//! The token endpoint, `client_credentials` grant (RFC 6749 §4.4): client authentication by
//! `client_secret_basic` or `client_secret_post` (§2.3.1), `scope` (§3.3), RFC 8707 `resource`
//! as `aud`, and §5.2 errors for everything else.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{IdpState, TenantName, internal_error, serve_endpoint};
use crate::clients::{Client, ClientRegistry, PresentedCredentials};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::faults::Endpoint;
use crate::issuer::Issuer;
use crate::tokens::{AccessTokenSpec, Audience};

pub(super) async fn token(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let clients = Arc::clone(&state.clients);
    serve_endpoint(&state, tenant, Endpoint::Token, |issuer| async move {
        match issue(&clients, &issuer, &headers, &body) {
            Ok(response) => response,
            Err(refusal) => refusal.into_response(),
        }
    })
    .await
}

fn issue(
    clients: &ClientRegistry,
    issuer: &Issuer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, OAuthError> {
    let form = Form::parse(headers, body)?;
    let client = clients.authenticate(&credentials(headers, &form)?)?;
    match form.single("grant_type")? {
        None => return Err(invalid_request("grant_type is required")),
        Some("client_credentials") => {}
        Some(_) => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "only the client_credentials grant is supported",
            ));
        }
    }
    let scopes = granted_scopes(client, form.single("scope")?)?;
    let audience = audience(client, form.all("resource"))?;
    let lifetime = issuer.settings.token_lifetime;
    let spec = client
        .claims
        .iter()
        .fold(
            AccessTokenSpec::machine(&client.client_id),
            |spec, (name, value)| spec.claim(name, value.clone()),
        )
        .audience(audience)
        .scope(scopes.iter().cloned())
        .expires_in(lifetime);
    let access_token = match issuer.mint(&spec) {
        Ok(token) => token,
        Err(error) => return Ok(internal_error(&error)),
    };
    tracing::debug!(client_id = %client.client_id, scope = %scopes.join(" "), "access token issued");
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime.as_secs(),
    });
    if !scopes.is_empty() {
        body["scope"] = scopes.join(" ").into();
    }
    let mut response = Json(body).into_response();
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The client's credentials, from exactly one method (RFC 6749 §2.3: "MUST NOT use more than one").
fn credentials(headers: &HeaderMap, form: &Form) -> Result<PresentedCredentials, OAuthError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| invalid_request("malformed Authorization header"))?;
            match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    Some(PresentedCredentials::from_basic(rest)?)
                }
                _ => {
                    return Err(OAuthError::new(
                        OAuthErrorCode::InvalidClient,
                        "unsupported client authentication scheme (use Basic)",
                    ));
                }
            }
        }
    };
    let post_id = form.single("client_id")?;
    let post_secret = form.single("client_secret")?;
    match (basic, post_secret) {
        (Some(_), Some(_)) => Err(invalid_request(
            "more than one client authentication method",
        )),
        (Some(PresentedCredentials::Basic { client_id, secret }), None) => {
            if post_id.is_some_and(|id| id != client_id) {
                return Err(invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(PresentedCredentials::Basic { client_id, secret })
        }
        (Some(other), None) => Ok(other),
        (None, Some(secret)) => {
            let client_id =
                post_id.ok_or_else(|| invalid_request("client_secret without client_id"))?;
            Ok(PresentedCredentials::Post {
                client_id: client_id.to_owned(),
                secret: secret.to_owned(),
            })
        }
        (None, None) => Err(OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication required",
        )),
    }
}

/// The requested scopes if all are allowed, the client's defaults if none were requested.
fn granted_scopes(client: &Client, requested: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(client.granted_by_default().to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|allowed| allowed == scope) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                "a requested scope is not allowed for this client",
            ));
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    Ok(scopes)
}

/// RFC 8707 §2: each `resource` is an absolute URI without a fragment, allowed for the client;
/// none requested means the client's first resource.
fn audience(client: &Client, requested: Vec<&str>) -> Result<Audience, OAuthError> {
    let invalid_target = |what: &str| OAuthError::new(OAuthErrorCode::InvalidTarget, what);
    let mut audiences: Vec<String> = Vec::new();
    for resource in requested {
        let url = url::Url::parse(resource)
            .map_err(|_| invalid_target("resource must be an absolute URI"))?;
        if url.fragment().is_some() {
            return Err(invalid_target("resource must not contain a fragment"));
        }
        if !client.resources.iter().any(|allowed| allowed == resource) {
            return Err(invalid_target(
                "the requested resource is not allowed for this client",
            ));
        }
        if !audiences.iter().any(|a| a == resource) {
            audiences.push(resource.to_owned());
        }
    }
    match audiences.len() {
        0 => client
            .resources
            .first()
            .map(|r| Audience::One(r.clone()))
            .ok_or_else(|| invalid_target("the client has no resource")),
        1 => Ok(Audience::One(audiences.swap_remove(0))),
        _ => Ok(Audience::Many(audiences)),
    }
}

/// A parsed `application/x-www-form-urlencoded` body. Empty values count as absent (§3.1).
struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let params = url::form_urlencoded::parse(body)
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Ok(Self { params })
    }

    /// A parameter that may appear at most once (§3.2: "MUST NOT be included more than once").
    fn single(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.all(name).into_iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(invalid_request(&format!("parameter {name} is repeated")));
        }
        Ok(first)
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

fn invalid_request(description: &str) -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidRequest, description)
}
