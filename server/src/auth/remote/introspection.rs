//! RFC 7662 token introspection: the request (this server authenticates as a client, §2.1) and
//! the judgement of the answer. A token is accepted only when `active` is `true` and `aud` names
//! this server (a missing `aud` only where the deployment says its authorization server never
//! sends one); `exp`, `nbf`, `iss` and `token_type` are checked when present; a `cnf.jkt` (or
//! `token_type: DPoP`) binds the token to a DPoP key as for JWTs, any other `cnf` is refused
//! (checklist P01-P03, D04).

use serde_json::Value;

use super::super::claims::{VerifiedClaims, dpop_binding, numeric_date, scopes};
use super::super::fetch::{ClientAuth, FetchError, FetchUrl, Fetcher};
use super::super::policy::ValidationPolicy;
use super::super::token_error::TokenError;
use super::{ClientAuthMethod, IntrospectedAudience, IntrospectionSettings};

/// Asks `endpoint` about `token` (a JSON object comes back, or the endpoint failed).
pub(super) async fn introspect(
    fetcher: &Fetcher,
    endpoint: &FetchUrl,
    settings: &IntrospectionSettings,
    token: &str,
) -> Result<Value, FetchError> {
    let (id, secret) = (settings.client_id.as_str(), settings.client_secret.expose());
    let auth = match settings.client_auth {
        ClientAuthMethod::Basic => ClientAuth::Basic { id, secret },
        ClientAuthMethod::Post => ClientAuth::Post { id, secret },
    };
    fetcher
        .post_form(
            endpoint,
            &[("token", token), ("token_type_hint", "access_token")],
            auth,
        )
        .await
        .map(|fetched| fetched.document)
}

/// Judges an introspection answer at `now` under `policy`.
pub(super) fn judge(
    answer: &Value,
    now: i64,
    policy: &ValidationPolicy,
    audience_rule: IntrospectedAudience,
) -> Result<VerifiedClaims, TokenError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(TokenError::Inactive);
    }
    let text = |name: &'static str| -> Result<Option<String>, TokenError> {
        match answer.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(TokenError::InvalidClaim(name)),
        }
    };
    // RFC 7662 §2.2 `token_type` is an RFC 6749 §7.1 type; a refresh token that an authorization
    // server introspects anyway is not an access token. RFC 9449 §6.2: a DPoP-bound one is `DPoP`.
    let token_type = text("token_type")?.map(|kind| kind.to_ascii_lowercase());
    let says_dpop = token_type.as_deref() == Some("dpop");
    if let Some(kind) = &token_type
        && !says_dpop
        && !["bearer", "access_token"].contains(&kind.as_str())
    {
        return Err(TokenError::NotAnAccessToken);
    }
    if let Some(issuer) = text("iss")?
        && issuer != policy.issuer().as_str()
    {
        return Err(TokenError::WrongIssuer);
    }
    let audience = match answer.get("aud") {
        None | Some(Value::Null) => match audience_rule {
            IntrospectedAudience::Required => return Err(TokenError::MissingClaim("aud")),
            IntrospectedAudience::CheckedWhenPresent => Value::Null,
        },
        Some(Value::String(one)) if policy.accepts_audience(one) => Value::String(one.clone()),
        Some(Value::Array(many))
            if many
                .iter()
                .any(|aud| aud.as_str().is_some_and(|aud| policy.accepts_audience(aud))) =>
        {
            Value::Array(many.clone())
        }
        Some(Value::String(_) | Value::Array(_)) => return Err(TokenError::WrongAudience),
        Some(_) => return Err(TokenError::InvalidClaim("aud")),
    };
    let leeway = policy.leeway().secs();
    let expires_at = answer
        .get("exp")
        .map(|exp| numeric_date(exp, "exp"))
        .transpose()?;
    if let Some(exp) = expires_at
        && now > exp.saturating_add(leeway)
    {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = answer.get("nbf")
        && now.saturating_add(leeway) < numeric_date(nbf, "nbf")?
    {
        return Err(TokenError::NotYetValid);
    }
    // Bound to a DPoP key: kept for the bearer layer, which then needs a proof of that key.
    let dpop_jkt = dpop_binding(answer.get("cnf"))?;
    // A `DPoP` token whose key the answer does not name cannot be held to it: never a bearer one.
    if says_dpop && dpop_jkt.is_none() {
        return Err(TokenError::SenderConstrained);
    }
    let client_id = text("client_id")?;
    // A client-credentials token may have no `sub`: the client is the caller then.
    let subject = text("sub")?
        .or_else(|| client_id.clone())
        .filter(|sub| !sub.trim().is_empty())
        .ok_or(TokenError::MissingClaim("sub"))?;
    Ok(VerifiedClaims {
        issuer: policy.issuer().as_str().to_owned(),
        subject,
        audience,
        expires_at,
        issued_at: answer
            .get("iat")
            .map(|iat| numeric_date(iat, "iat"))
            .transpose()?,
        token_id: text("jti")?,
        client_id,
        scopes: scopes(answer.get("scope"))?,
        uid: None,
        dpop_jkt,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::auth::authorization_server::Issuer;
    use crate::auth::policy::Audience;

    fn policy() -> ValidationPolicy {
        ValidationPolicy::new(
            Issuer::parse("https://as.example").unwrap(),
            Audience::new("https://mcp.example/mcp").unwrap(),
        )
    }

    /// P02: only `active: true` passes; a present `exp`, `iss`, `aud` or `token_type` must fit.
    #[test]
    fn answers_are_judged_field_by_field() {
        let now = 1_000_000;
        let good = json!({"active": true, "sub": "alice", "client_id": "app", "scope": "mcp:tools",
            "exp": now + 60, "iss": "https://as.example", "aud": "https://mcp.example/mcp",
            "token_type": "Bearer"});
        let claims = judge(&good, now, &policy(), IntrospectedAudience::Required).unwrap();
        assert_eq!(claims.subject, "alice");
        assert_eq!(claims.scopes, ["mcp:tools"]);
        assert_eq!(claims.expires_at, Some(now + 60));
        let with = |change: Value| {
            let mut answer = good.clone();
            for (name, value) in change.as_object().unwrap() {
                answer[name] = value.clone();
            }
            judge(&answer, now, &policy(), IntrospectedAudience::Required)
        };
        assert_eq!(with(json!({"active": false})), Err(TokenError::Inactive));
        assert_eq!(with(json!({"active": "true"})), Err(TokenError::Inactive));
        assert_eq!(with(json!({"exp": now - 61})), Err(TokenError::Expired));
        assert_eq!(with(json!({"nbf": now + 61})), Err(TokenError::NotYetValid));
        assert!(with(json!({"nbf": now + 59})).is_ok(), "within the leeway");
        assert_eq!(
            with(json!({"iss": "https://other.example"})),
            Err(TokenError::WrongIssuer)
        );
        assert_eq!(
            with(json!({"aud": ["https://other.example/mcp"]})),
            Err(TokenError::WrongAudience)
        );
        assert_eq!(
            with(json!({"token_type": "refresh_token"})),
            Err(TokenError::NotAnAccessToken)
        );
        assert_eq!(
            with(json!({"cnf": {"jkt": "x"}})).map(|claims| claims.dpop_jkt),
            Ok(Some("x".to_owned())),
            "a DPoP binding is kept for the bearer layer to check"
        );
        assert_eq!(
            with(json!({"token_type": "DPoP", "cnf": {"jkt": "x"}})).map(|c| c.dpop_jkt),
            Ok(Some("x".to_owned())),
            "RFC 9449 §6.2: a bound token's type is DPoP (oidc-provider says so)"
        );
        assert_eq!(
            with(json!({"token_type": "DPoP"})),
            Err(TokenError::SenderConstrained),
            "a DPoP token with no key named is never a bearer token"
        );
        for other in [
            json!({"x5t#S256": "y"}),
            json!({"jkt": ""}),
            json!({"jkt": "x", "x5t#S256": "y"}),
            json!("x"),
        ] {
            assert_eq!(
                with(json!({ "cnf": other })),
                Err(TokenError::SenderConstrained),
                "{other}"
            );
        }
        assert_eq!(
            judge(
                &json!({"active": false}),
                now,
                &policy(),
                IntrospectedAudience::Required
            ),
            Err(TokenError::Inactive)
        );
        let machine = judge(
            &json!({"active": true, "client_id": "svc", "aud": "https://mcp.example/mcp"}),
            now,
            &policy(),
            IntrospectedAudience::Required,
        )
        .unwrap();
        assert_eq!(machine.subject, "svc", "no sub: the client is the caller");
        assert_eq!(machine.expires_at, None);
        assert_eq!(
            judge(
                &json!({"active": true, "aud": "https://mcp.example/mcp"}),
                now,
                &policy(),
                IntrospectedAudience::Required
            ),
            Err(TokenError::MissingClaim("sub"))
        );
    }

    /// D04: an answer without `aud` is refused unless the deployment opted out for an
    /// authorization server that never sends one; a present `aud` is checked either way.
    #[test]
    fn the_audience_is_required_unless_the_deployment_opts_out() {
        let now = 1_000_000;
        let without = json!({"active": true, "sub": "alice"});
        assert_eq!(
            judge(&without, now, &policy(), IntrospectedAudience::Required),
            Err(TokenError::MissingClaim("aud"))
        );
        let lenient = IntrospectedAudience::CheckedWhenPresent;
        assert!(judge(&without, now, &policy(), lenient).is_ok());
        let wrong = json!({"active": true, "sub": "alice", "aud": "https://other.example"});
        assert_eq!(
            judge(&wrong, now, &policy(), lenient),
            Err(TokenError::WrongAudience)
        );
    }
}
