//! The authorization endpoint (RFC 6749 §4.1.1, OAuth 2.1 §4.1): authorization code with PKCE
//! (S256 only, RFC 7636), exact redirect URIs (loopback ports may vary, RFC 8252 §7.3), `state`
//! and the RFC 9207 `iss` on every redirect, RFC 8707 `resource`s carried through to the token's
//! `aud`, OIDC `nonce`. A request whose client or redirect URI is invalid ends on an error page,
//! never a redirect (RFC 6749 §4.1.2.1). Other errors are redirected only to a redirect URI this
//! IdP trusts (RFC 9700 §4.11.2: an authorization server must not be an open redirector): one of
//! a configured client, or a loopback one (RFC 8252 §7.3: the user's own machine). Anyone can
//! register a client, or publish a metadata document, naming any https redirect URI; such a
//! client's errors are shown on a page, and it gets a code only after the user acts on the login
//! page (no auto-login). Then the login page (or auto-login) and the code.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::form::Form;
use super::login_page::{LoginPage, error_page};
use super::permissions::{granted_resources, granted_scopes};
use super::{IdpState, TenantName, resolve};
use crate::clients::{Client, GrantType, Lookup, is_loopback_http};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::grants::{CodeGrant, PendingAuthorization};
use crate::issuer::Issuer;

/// `GET /authorize`.
pub(super) async fn authorize(
    State(state): State<IdpState>,
    tenant: TenantName,
    RawQuery(query): RawQuery,
) -> Response {
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    let params = Form::from_bytes(query.unwrap_or_default().as_bytes());
    let now = issuer.clock.now();
    let Target {
        client,
        redirect_uri,
        trusted,
    } = match target(&state, &params, now).await {
        Ok(target) => target,
        Err(page) => return page,
    };
    let client_state = params.single("state").ok().flatten().map(str::to_owned);
    let redirect = Redirect {
        uri: &redirect_uri,
        state: client_state.as_deref(),
        issuer: &issuer.url,
    };
    let pending = match check(&state, &client, &params) {
        Ok(checked) => PendingAuthorization {
            client_id: client.client_id.clone(),
            client_name: client.client_name.clone(),
            redirect_uri: redirect_uri.clone(),
            state: client_state.clone(),
            code_challenge: checked.code_challenge,
            scopes: checked.scopes,
            resources: checked.resources,
            nonce: checked.nonce,
            expires_at: now + PENDING_LIFETIME_SECS,
        },
        Err(error) if trusted => return redirect.error(&error),
        Err(error) => return untrusted_error(&error),
    };
    if let Some(username) = &state.sign_in.auto_login
        && trusted
    {
        return complete(&issuer, pending, username);
    }
    let handle = issuer.grants.hold(pending.clone(), now);
    login_page(&state, &issuer, &pending, &handle, None)
}

/// `POST /authorize`: the login form.
pub(super) async fn sign_in(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let issuer = match resolve(&state, tenant).await {
        Ok(issuer) => issuer,
        Err(response) => return response,
    };
    let Ok(form) = Form::parse(&headers, &body) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad sign-in",
            "The sign-in form was not sent as a form.",
        );
    };
    let handle = form.single("handle").ok().flatten().unwrap_or_default();
    let now = issuer.clock.now();
    let Some(pending) = issuer.grants.held(handle, now) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in is unknown or took too long. Start again from the application.",
        );
    };
    let username = form
        .single("username")
        .ok()
        .flatten()
        .or(form.single("other").ok().flatten())
        .unwrap_or_default();
    if state.sign_in.users.find(username).is_none() {
        return login_page(&state, &issuer, &pending, handle, Some("No such user."));
    }
    issuer.grants.release(handle);
    complete(&issuer, pending, username)
}

/// The user signed in: a code, sent back to the client.
fn complete(issuer: &Issuer, pending: PendingAuthorization, username: &str) -> Response {
    let now = issuer.clock.now();
    let code = issuer.grants.issue_code(
        CodeGrant {
            client_id: pending.client_id,
            redirect_uri: pending.redirect_uri.clone(),
            code_challenge: pending.code_challenge,
            username: username.to_owned(),
            scopes: pending.scopes,
            resources: pending.resources,
            nonce: pending.nonce,
            auth_time: now,
            expires_at: now + CODE_LIFETIME_SECS,
        },
        now,
    );
    tracing::debug!(issuer = %issuer.url, "authorization code issued");
    Redirect {
        uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
        issuer: &issuer.url,
    }
    .with(&[("code", &code)])
}

fn login_page(
    state: &IdpState,
    issuer: &Issuer,
    pending: &PendingAuthorization,
    handle: &str,
    problem: Option<&str>,
) -> Response {
    LoginPage {
        issuer: &issuer.url,
        action: &format!("{}/authorize", issuer.url),
        handle,
        client: pending.client_name.as_deref().unwrap_or(&pending.client_id),
        scopes: &pending.scopes,
        redirect_uri: &pending.redirect_uri,
        users: state.sign_in.users.all(),
        problem,
    }
    .render()
}

/// The client of an authorization request, the redirect URI to answer to, and whether this IdP
/// trusts that URI enough to redirect to it unasked (RFC 9700 §4.11.2).
struct Target {
    client: Client,
    redirect_uri: String,
    trusted: bool,
}

/// The request's [`Target`], or the error page when its client or redirect URI is missing or
/// invalid (RFC 6749 §4.1.2.1: inform the user, never redirect). The page says no more than that
/// the client is unknown: why a metadata document was refused goes to the log only.
async fn target(state: &IdpState, params: &Form, now: i64) -> Result<Target, Response> {
    let bad = |detail: &str| error_page(StatusCode::BAD_REQUEST, "Invalid request", detail);
    let client_id = match params.single("client_id") {
        Ok(Some(id)) => id,
        _ => return Err(bad("client_id is missing or repeated.")),
    };
    let client = match state.clients.find(client_id, now).await {
        Ok(client) => client,
        Err(Lookup::Unknown) => {
            return Err(bad(
                "The client is unknown, or its metadata document cannot be used.",
            ));
        }
        Err(Lookup::Busy) => {
            return Err(error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The client's metadata document cannot be fetched now. Try again shortly.",
            ));
        }
    };
    let redirect_uri = match params.single("redirect_uri") {
        Ok(Some(uri)) => uri.to_owned(),
        Ok(None) if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        Ok(None) => return Err(bad("redirect_uri is required: the client has several.")),
        Err(_) => return Err(bad("redirect_uri is repeated.")),
    };
    if !client.accepts_redirect(&redirect_uri) {
        return Err(bad(
            "redirect_uri is not one of the client's registered redirect URIs.",
        ));
    }
    let trusted = state.clients.is_configured(&client.client_id)
        || url::Url::parse(&redirect_uri).is_ok_and(|url| is_loopback_http(&url));
    Ok(Target {
        client,
        redirect_uri,
        trusted,
    })
}

/// An error of a request whose redirect URI is not trusted: shown to the user, not redirected
/// (RFC 9700 §4.11.2), so a self-registered client cannot use the IdP's URL to send people to a
/// page of its choosing.
fn untrusted_error(error: &OAuthError) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid request",
        &format!(
            "The application's request was refused ({}: {}). The answer is not sent back to it: \
             its redirect URI is not one this IdP can vouch for.",
            error.error.as_str(),
            error.error_description
        ),
    )
}

/// What passed the checks of an authorization request.
struct Checked {
    code_challenge: String,
    scopes: Vec<String>,
    resources: Vec<String>,
    nonce: Option<String>,
}

fn check(state: &IdpState, client: &Client, params: &Form) -> Result<Checked, OAuthError> {
    let invalid = |why: &str| OAuthError::new(OAuthErrorCode::InvalidRequest, why);
    match params.single("response_type")? {
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(invalid("response_type is required")),
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the authorization code grant",
        ));
    }
    let code_challenge = params
        .single("code_challenge")?
        .ok_or_else(|| invalid("code_challenge is required (PKCE, RFC 7636)"))?;
    // RFC 7636 §4.3 makes an absent method mean `plain`: refused like `plain` itself.
    if params.single("code_challenge_method")? != Some("S256") {
        return Err(invalid("code_challenge_method must be S256"));
    }
    let well_formed = code_challenge.len() == 43
        && code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !well_formed {
        return Err(invalid("code_challenge is not a base64url SHA-256"));
    }
    let scopes = granted_scopes(client, &state.sign_in, params.single("scope")?)?;
    let resources = granted_resources(client, &state.sign_in, &params.all("resource"))?;
    Ok(Checked {
        code_challenge: code_challenge.to_owned(),
        scopes,
        resources,
        nonce: params.single("nonce")?.map(str::to_owned),
    })
}

/// A redirect back to the client, always with `state` (when given) and `iss` (RFC 9207 §2).
struct Redirect<'a> {
    uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl Redirect<'_> {
    fn error(&self, error: &OAuthError) -> Response {
        self.with(&[
            ("error", error.error.as_str()),
            ("error_description", &error.error_description),
        ])
    }

    fn with(&self, params: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(self.uri) else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The redirect URI is not a URL.",
            );
        };
        {
            let mut query = url.query_pairs_mut();
            for (name, value) in params {
                query.append_pair(name, value);
            }
            if let Some(state) = self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", self.issuer);
        }
        let mut response = StatusCode::FOUND.into_response();
        match HeaderValue::from_str(url.as_str()) {
            Ok(location) => {
                response.headers_mut().insert(header::LOCATION, location);
                response
                    .headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response
            }
            Err(_) => error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The redirect URI cannot be used.",
            ),
        }
    }
}

/// How long an authorization code may wait to be redeemed (RFC 6749 §4.1.2: 10 minutes at most).
const CODE_LIFETIME_SECS: i64 = 60;
/// How long the login page may stay open.
const PENDING_LIFETIME_SECS: i64 = 600;
