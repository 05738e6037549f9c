//! What a client may ask for: scopes (RFC 6749 §3.3) and resources (RFC 8707 §2). A client with
//! its own lists is held to them; registered and metadata-document clients, which have none, to
//! the IdP's.

use super::SignIn;
use crate::clients::Client;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::tokens::Audience;

/// The requested scopes if all are allowed, the client's defaults if none were requested.
pub(crate) fn granted_scopes(
    client: &Client,
    sign_in: &SignIn,
    requested: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(client.granted_by_default().to_vec());
    };
    let allowed = if client.scopes.is_empty() {
        &sign_in.scopes
    } else {
        &client.scopes
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == scope) {
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

/// Each `resource` is an absolute URI without a fragment, allowed for the client; none requested
/// means the client's first resource (or none, for a client without its own list).
pub(crate) fn granted_resources(
    client: &Client,
    sign_in: &SignIn,
    requested: &[&str],
) -> Result<Vec<String>, OAuthError> {
    let invalid_target = |what: &str| OAuthError::new(OAuthErrorCode::InvalidTarget, what);
    let allowed = if client.resources.is_empty() {
        &sign_in.resources
    } else {
        &client.resources
    };
    let mut resources: Vec<String> = Vec::new();
    for resource in requested {
        let url = url::Url::parse(resource)
            .map_err(|_| invalid_target("resource must be an absolute URI"))?;
        if url.fragment().is_some() {
            return Err(invalid_target("resource must not contain a fragment"));
        }
        if !allowed.iter().any(|a| a == resource) {
            return Err(invalid_target(
                "the requested resource is not allowed for this client",
            ));
        }
        if !resources.iter().any(|r| r == resource) {
            resources.push((*resource).to_owned());
        }
    }
    if resources.is_empty()
        && let Some(first) = client.resources.first()
    {
        resources.push(first.clone());
    }
    Ok(resources)
}

/// `aud` for `resources`: one as a string, several as an array; `None` for none (the issuer's
/// default audience then applies).
pub(crate) fn audience(resources: &[String]) -> Option<Audience> {
    match resources {
        [] => None,
        [one] => Some(Audience::One(one.clone())),
        many => Some(Audience::Many(many.to_vec())),
    }
}
