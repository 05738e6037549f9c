//! How a client authenticates at the endpoints it calls directly (token, introspection,
//! revocation): `client_secret_basic`, `client_secret_post`, or its `client_id` alone for a
//! public client; exactly one method (RFC 6749 §2.3).

use axum::http::{HeaderMap, header};

use super::IdpState;
use super::form::{Form, invalid_request};
use crate::clients::{Client, PresentedCredentials};
use crate::error::{OAuthError, OAuthErrorCode};

/// The form of a client's request and the client it authenticates, as of `now`.
pub(super) async fn authenticated_request(
    state: &IdpState,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(Form, Client), OAuthError> {
    let form = Form::parse(headers, body)?;
    let client = state
        .clients
        .authenticate(&credentials(headers, &form)?, now)
        .await?;
    Ok((form, client))
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
        (None, None) => match post_id {
            Some(client_id) => Ok(PresentedCredentials::None {
                client_id: client_id.to_owned(),
            }),
            None => Err(OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication required",
            )),
        },
    }
}
