//! Google's token-information endpoint: Google access tokens are opaque, so Google says whether
//! one is live, to which OAuth client it was issued (`aud`, `azp`) and for which scopes. A token
//! is accepted when it is live and was issued to one of the configured client ids (checklist
//! P04). The token goes in a POST body, never in a URL.

use serde_json::Value;

use super::super::claims::{VerifiedClaims, scopes};
use super::super::fetch::{ClientAuth, FetchError, Fetcher};
use super::super::policy::ValidationPolicy;
use super::super::token_error::TokenError;
use super::TokenInfoSettings;

/// Asks Google about `token`: its answer, a refusal (Google answers 400 `Invalid Value` for a
/// token it does not know or that expired), or the endpoint failed.
pub(super) async fn ask(
    fetcher: &Fetcher,
    settings: &TokenInfoSettings,
    token: &str,
) -> Result<Result<Value, TokenError>, FetchError> {
    match fetcher
        .post_form(
            &settings.endpoint,
            &[("access_token", token)],
            ClientAuth::None,
        )
        .await
    {
        Ok(fetched) => Ok(Ok(fetched.document)),
        Err(FetchError::Status { status: 400, .. }) => Ok(Err(TokenError::Inactive)),
        Err(error) => Err(error),
    }
}

/// Judges Google's answer at `now`.
pub(super) fn judge(
    answer: &Value,
    now: i64,
    settings: &TokenInfoSettings,
    policy: &ValidationPolicy,
) -> Result<VerifiedClaims, TokenError> {
    let text = |name: &'static str| answer.get(name).and_then(Value::as_str).map(str::to_owned);
    let (aud, azp) = (text("aud"), text("azp"));
    let ours = [&aud, &azp]
        .into_iter()
        .flatten()
        .any(|client| settings.client_ids.allows(client));
    if !ours {
        return Err(TokenError::WrongAudience);
    }
    // Google sends numbers as strings ("exp": "1700000000", "expires_in": "3599").
    let number = |name: &'static str| -> Result<Option<i64>, TokenError> {
        match answer.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(TokenError::InvalidClaim(name)),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| TokenError::InvalidClaim(name)),
            Some(_) => Err(TokenError::InvalidClaim(name)),
        }
    };
    let expires_at = match (number("exp")?, number("expires_in")?) {
        (Some(exp), _) => exp,
        (None, Some(expires_in)) => now.saturating_add(expires_in),
        (None, None) => return Err(TokenError::MissingClaim("exp")),
    };
    if now >= expires_at || number("expires_in")?.is_some_and(|left| left <= 0) {
        return Err(TokenError::Expired);
    }
    let subject = text("sub")
        .or_else(|| azp.clone())
        .ok_or(TokenError::MissingClaim("sub"))?;
    Ok(VerifiedClaims {
        issuer: policy.issuer().as_str().to_owned(),
        subject,
        audience: aud.clone().map_or(Value::Null, Value::String),
        expires_at: Some(expires_at),
        issued_at: None,
        token_id: None,
        client_id: azp.or(aud),
        scopes: scopes(answer.get("scope"))?,
        uid: None,
        dpop_jkt: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::authorization_server::Issuer;
    use crate::auth::fetch::FetchUrl;
    use crate::auth::policy::{Audience, ClientIdAudience};

    /// P04: a live token issued to one of our clients passes; another client's, or an expired
    /// one, does not. Google's string-typed numbers are read.
    #[test]
    fn google_answers_are_judged() {
        let settings = TokenInfoSettings {
            endpoint: FetchUrl::parse("https://oauth2.googleapis.com/tokeninfo").unwrap(),
            client_ids: ClientIdAudience::new(["ours.apps.googleusercontent.com"]).unwrap(),
            cache_for: std::time::Duration::from_secs(60),
        };
        let policy = ValidationPolicy::new(
            Issuer::parse("https://accounts.google.com").unwrap(),
            Audience::new("https://mcp.example/mcp").unwrap(),
        );
        let now = 1_700_000_000;
        let answer = json!({"azp": "ours.apps.googleusercontent.com",
            "aud": "ours.apps.googleusercontent.com", "sub": "1234", "scope": "openid email",
            "exp": (now + 3599).to_string(), "expires_in": "3599", "email": "a@example.com"});
        let claims = judge(&answer, now, &settings, &policy).unwrap();
        assert_eq!(claims.subject, "1234");
        assert_eq!(claims.scopes, ["openid", "email"]);
        assert_eq!(claims.issuer, "https://accounts.google.com");
        let mut theirs = answer.clone();
        theirs["aud"] = json!("theirs.apps.googleusercontent.com");
        theirs["azp"] = json!("theirs.apps.googleusercontent.com");
        assert_eq!(
            judge(&theirs, now, &settings, &policy),
            Err(TokenError::WrongAudience)
        );
        let with = |change: Value| {
            let mut changed = answer.clone();
            for (name, value) in change.as_object().unwrap() {
                if value.is_null() {
                    changed.as_object_mut().unwrap().remove(name);
                } else {
                    changed[name] = value.clone();
                }
            }
            judge(&changed, now, &settings, &policy)
        };
        // Either field says the token is spent: each is enough on its own.
        assert_eq!(with(json!({"expires_in": "0"})), Err(TokenError::Expired));
        assert_eq!(
            with(json!({"exp": now.to_string(), "expires_in": null})),
            Err(TokenError::Expired)
        );
        let by_expires_in = with(json!({"exp": null, "expires_in": "60"})).unwrap();
        assert_eq!(by_expires_in.expires_at, Some(now + 60));
        assert_eq!(
            with(json!({"exp": null, "expires_in": null})),
            Err(TokenError::MissingClaim("exp"))
        );
    }
}
