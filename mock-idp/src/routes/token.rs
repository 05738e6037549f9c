//! The token endpoint (RFC 6749 §3.2): the `client_credentials` grant (§4.4), the
//! `authorization_code` grant with PKCE (§4.1.3, RFC 7636 §4.6), and the `refresh_token` grant
//! with rotation (§6, OAuth 2.1 §4.3.1). Client authentication by `client_secret_basic`,
//! `client_secret_post` or, for public clients, `none` (exactly one method, §2.3); RFC 8707
//! `resource` as `aud`; ID tokens when `openid` was granted; §5.2 errors for everything else.
//! A request with a DPoP proof (RFC 9449 §5) gets tokens bound to its key: `token_type` `DPoP`,
//! `cnf.jkt` in the access token and its introspection, and a public client's refresh token
//! usable only with a proof of that key.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::client_auth::authenticated_request;
use super::form::{Form, invalid_request};
use super::permissions::{audience, granted_resources, granted_scopes};
use super::{IdpState, TenantName, internal_error, serve_endpoint};
use crate::clients::{Client, GrantType};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::faults::Endpoint;
use crate::grants::{AccessRecord, CodeRefusal, GrantRefusal, RefreshGrant};
use crate::issuer::Issuer;
use crate::proofs::{ProofRefusal, ProofTarget, proof_key};
use crate::tokens::AccessTokenSpec;

pub(super) async fn token(
    State(state): State<IdpState>,
    tenant: TenantName,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let routes = state.clone();
    serve_endpoint(&routes, tenant, Endpoint::Token, |issuer| async move {
        let mut response = match issue(&state, &issuer, &headers, &body).await {
            Ok(response) => response,
            Err(Refused::OAuth(refusal)) => refusal.into_response(),
            Err(Refused::Internal(error)) => internal_error(&error),
        };
        // RFC 9449 §8: the nonce to use next, on every answer while nonces are required.
        if issuer.settings.dpop_nonce
            && let Ok(nonce) = HeaderValue::from_str(&issuer.proofs.nonce(issuer.clock.now()))
        {
            response.headers_mut().insert("dpop-nonce", nonce);
        }
        response
    })
    .await
}

/// Why no token was issued.
enum Refused {
    OAuth(OAuthError),
    Internal(crate::error::IdpError),
}

impl From<OAuthError> for Refused {
    fn from(error: OAuthError) -> Self {
        Self::OAuth(error)
    }
}

impl From<crate::error::IdpError> for Refused {
    fn from(error: crate::error::IdpError) -> Self {
        Self::Internal(error)
    }
}

async fn issue(
    state: &IdpState,
    issuer: &Issuer,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Refused> {
    let (form, client) = authenticated_request(state, headers, body, issuer.clock.now()).await?;
    let grant = match form.single("grant_type")? {
        None => return Err(invalid_request("grant_type is required").into()),
        Some(value) => GrantType::parse(value).ok_or_else(|| {
            OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "supported grants: client_credentials, authorization_code, refresh_token",
            )
        })?,
    };
    if !client.allows(grant) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use this grant",
        )
        .into());
    }
    let target = ProofTarget {
        htu: &format!("{}/token", issuer.url),
        now: issuer.clock.now(),
        nonce_required: issuer.settings.dpop_nonce,
    };
    let jkt = proof_key(headers, &target, &issuer.proofs).map_err(|refusal| match refusal {
        ProofRefusal::Invalid(why) => OAuthError::new(OAuthErrorCode::InvalidDpopProof, why),
        ProofRefusal::UseNonce => OAuthError::new(
            OAuthErrorCode::UseDpopNonce,
            "the DPoP proof must carry the nonce in DPoP-Nonce",
        ),
    })?;
    let jkt = jkt.as_deref();
    match grant {
        GrantType::ClientCredentials => client_credentials(state, &client, issuer, &form, jkt),
        GrantType::AuthorizationCode => authorization_code(state, &client, issuer, &form, jkt),
        GrantType::RefreshToken => refresh(state, &client, issuer, &form, jkt),
    }
}

fn client_credentials(
    state: &IdpState,
    client: &Client,
    issuer: &Issuer,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Response, Refused> {
    let scopes = granted_scopes(client, &state.sign_in, form.single("scope")?)?;
    let resources = granted_resources(client, &state.sign_in, &form.all("resource"))?;
    let lifetime = issuer.settings.token_lifetime;
    let mut spec = client
        .claims
        .iter()
        .fold(
            AccessTokenSpec::machine(&client.client_id),
            |spec, (name, value)| spec.claim(name, value.clone()),
        )
        .scope(scopes.iter().cloned())
        .expires_in(lifetime);
    if let Some(audience) = audience(&resources) {
        spec = spec.audience(audience);
    }
    if let Some(jkt) = jkt {
        spec = spec.claim("cnf", json!({ "jkt": jkt }));
    }
    let access_token = if issuer.opaque_for(&resources) {
        crate::grants::random_token()
    } else {
        issuer.mint(&spec)?
    };
    let now = issuer.clock.now();
    issuer.grants.record_access(
        &access_token,
        AccessRecord::new(
            client.client_id.clone(),
            client.client_id.clone(),
            scopes.clone(),
            resources,
            (now, now + secs(lifetime)),
        )
        .bound_to(jkt),
        None,
    );
    tracing::debug!(client_id = %client.client_id, scope = %scopes.join(" "), "access token issued (client_credentials)");
    Ok(token_response(
        &access_token,
        lifetime,
        &scopes,
        jkt.is_some(),
        None,
        None,
    ))
}

fn authorization_code(
    state: &IdpState,
    client: &Client,
    issuer: &Issuer,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Response, Refused> {
    let invalid_grant = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    let code = form
        .single("code")?
        .ok_or_else(|| invalid_request("code is required"))?;
    let verifier = form
        .single("code_verifier")?
        .ok_or_else(|| invalid_request("code_verifier is required (PKCE)"))?;
    let redirect_uri = form.single("redirect_uri")?;
    let now = issuer.clock.now();
    // Every check of the request against the code runs before the code is spent: a wrong
    // verifier, another client or another redirect URI leaves it for the client it was issued
    // to (see `Grants::redeem_code`). A failed client authentication never got this far.
    let (grant, family) = issuer
        .grants
        .redeem_code(code, now, |grant| {
            if grant.client_id != client.client_id {
                return Err(invalid_grant("the code was issued to another client"));
            }
            if redirect_uri != Some(grant.redirect_uri.as_str()) {
                return Err(invalid_grant(
                    "redirect_uri differs from the authorization request",
                ));
            }
            if !verifier_matches(verifier, &grant.code_challenge) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            Ok(())
        })
        .map_err(|refusal| match refusal {
            CodeRefusal::Binding(error) => error,
            CodeRefusal::Grant(GrantRefusal::Unknown) => {
                invalid_grant("the code is invalid or expired")
            }
            CodeRefusal::Grant(GrantRefusal::Reused) => {
                invalid_grant("the code was used before; the tokens issued with it are revoked")
            }
        })?;
    user_tokens(
        state,
        issuer,
        client,
        UserGrant {
            username: grant.username,
            scopes: grant.scopes,
            resources: grant.resources,
            nonce: grant.nonce,
            auth_time: grant.auth_time,
            family,
            dpop_jkt: jkt.map(str::to_owned),
        },
    )
}

fn refresh(
    state: &IdpState,
    client: &Client,
    issuer: &Issuer,
    form: &Form,
    jkt: Option<&str>,
) -> Result<Response, Refused> {
    let invalid_grant = |why: &str| OAuthError::new(OAuthErrorCode::InvalidGrant, why);
    let token = form
        .single("refresh_token")?
        .ok_or_else(|| invalid_request("refresh_token is required"))?;
    let now = issuer.clock.now();
    let grant = issuer
        .grants
        .use_refresh(token, now, |grant| {
            if grant.client_id != client.client_id {
                return Err(invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            // RFC 9449 §5: a public client's bound refresh token needs a proof of its key.
            match (&grant.dpop_jkt, jkt) {
                (Some(bound), Some(jkt)) if bound == jkt => Ok(()),
                (Some(_), Some(_)) => Err(invalid_grant(
                    "the refresh token is bound to another DPoP key",
                )),
                (Some(_), None) => Err(invalid_grant(
                    "the refresh token is bound to a DPoP key: send a proof of it",
                )),
                (None, _) => Ok(()),
            }
        })
        .map_err(|refusal| match refusal {
            CodeRefusal::Binding(error) => error,
            CodeRefusal::Grant(GrantRefusal::Unknown) => {
                invalid_grant("the refresh token is invalid or expired")
            }
            CodeRefusal::Grant(GrantRefusal::Reused) => {
                invalid_grant("the refresh token was used before; its whole family is revoked")
            }
        })?;
    // §6: a narrower scope (and, RFC 8707 §2.2, narrower resources) may be asked for, never more.
    let scopes = match form.single("scope")? {
        None => grant.scopes.clone(),
        Some(requested) => {
            let requested: Vec<String> = requested
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if requested.iter().any(|s| !grant.scopes.contains(s)) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    "a refresh cannot widen the scope",
                )
                .into());
            }
            requested
        }
    };
    let requested_resources = form.all("resource");
    let resources = if requested_resources.is_empty() {
        grant.resources.clone()
    } else if requested_resources
        .iter()
        .all(|r| grant.resources.iter().any(|g| g == r))
    {
        requested_resources
            .iter()
            .map(|r| (*r).to_owned())
            .collect()
    } else {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidTarget,
            "a refresh cannot add resources",
        )
        .into());
    };
    user_tokens(
        state,
        issuer,
        client,
        UserGrant {
            username: grant.username,
            scopes,
            resources,
            nonce: None,
            auth_time: grant.auth_time,
            family: grant.family,
            dpop_jkt: jkt.map(str::to_owned),
        },
    )
}

/// What a user's tokens are issued for.
struct UserGrant {
    username: String,
    scopes: Vec<String>,
    resources: Vec<String>,
    nonce: Option<String>,
    auth_time: i64,
    family: u64,
    /// The key of the request's DPoP proof: its tokens are bound to it.
    dpop_jkt: Option<String>,
}

/// An access token for the user, a rotated refresh token when the client may refresh, and an ID
/// token when `openid` was granted.
fn user_tokens(
    state: &IdpState,
    issuer: &Issuer,
    client: &Client,
    grant: UserGrant,
) -> Result<Response, Refused> {
    let now = issuer.clock.now();
    let lifetime = issuer.settings.token_lifetime;
    let user = state.sign_in.users.find(&grant.username);
    let mut spec = AccessTokenSpec::user(&grant.username)
        .client_id(&client.client_id)
        .scope(grant.scopes.iter().cloned())
        .expires_in(lifetime);
    if let Some(audience) = audience(&grant.resources) {
        spec = spec.audience(audience);
    }
    for (name, value) in user.map(|u| &u.claims).into_iter().flatten() {
        spec = spec.claim(name, value.clone());
    }
    if let Some(jkt) = &grant.dpop_jkt {
        spec = spec.claim("cnf", json!({ "jkt": jkt }));
    }
    let access_token = if issuer.opaque_for(&grant.resources) {
        crate::grants::random_token()
    } else {
        issuer.mint(&spec)?
    };
    issuer.grants.record_access(
        &access_token,
        AccessRecord::new(
            grant.username.clone(),
            client.client_id.clone(),
            grant.scopes.clone(),
            grant.resources.clone(),
            (now, now + secs(lifetime)),
        )
        .bound_to(grant.dpop_jkt.as_deref()),
        Some(grant.family),
    );
    let refresh_token = client.allows(GrantType::RefreshToken).then(|| {
        issuer.grants.issue_refresh(
            RefreshGrant {
                client_id: client.client_id.clone(),
                username: grant.username.clone(),
                scopes: grant.scopes.clone(),
                resources: grant.resources.clone(),
                auth_time: grant.auth_time,
                expires_at: now + REFRESH_LIFETIME_SECS,
                family: grant.family,
                // §5: a confidential client's refresh token is bound to its authentication.
                dpop_jkt: grant.dpop_jkt.clone().filter(|_| client.is_public()),
            },
            now,
        )
    });
    let id_token = if grant.scopes.iter().any(|s| s == "openid") {
        let mut claims: Map<String, Value> = user
            .map(|u| u.profile_claims(&grant.scopes))
            .unwrap_or_default();
        claims.insert("iss".into(), issuer.url.clone().into());
        claims.insert("sub".into(), grant.username.clone().into());
        claims.insert("aud".into(), client.client_id.clone().into());
        claims.insert("azp".into(), client.client_id.clone().into());
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + ID_TOKEN_LIFETIME_SECS).into());
        claims.insert("auth_time".into(), grant.auth_time.into());
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), nonce.clone().into());
        }
        Some(issuer.sign_id_token(&claims)?)
    } else {
        None
    };
    tracing::debug!(client_id = %client.client_id, "user tokens issued");
    Ok(token_response(
        &access_token,
        lifetime,
        &grant.scopes,
        grant.dpop_jkt.is_some(),
        refresh_token.as_deref(),
        id_token.as_deref(),
    ))
}

/// RFC 7636 §4.6: BASE64URL(SHA256(verifier)) equals the challenge; the verifier is 43-128
/// unreserved characters (§4.1).
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes())) == challenge
}

fn token_response(
    access_token: &str,
    lifetime: Duration,
    scopes: &[String],
    dpop_bound: bool,
    refresh_token: Option<&str>,
    id_token: Option<&str>,
) -> Response {
    let mut body = json!({
        "access_token": access_token,
        "token_type": if dpop_bound { "DPoP" } else { "Bearer" },
        "expires_in": lifetime.as_secs(),
    });
    if !scopes.is_empty() {
        body["scope"] = scopes.join(" ").into();
    }
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = refresh_token.into();
    }
    if let Some(id_token) = id_token {
        body["id_token"] = id_token.into();
    }
    let mut response = Json(body).into_response();
    // RFC 6749 §5.1: responses carrying tokens must not be cached.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// How long a refresh token lives: a day.
const REFRESH_LIFETIME_SECS: i64 = 86_400;
/// How long an ID token is valid: five minutes (it is consumed at sign-in).
const ID_TOKEN_LIFETIME_SECS: i64 = 300;
