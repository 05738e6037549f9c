//! The claims of a signature-checked token, judged against the policy: `iss` exact, `aud` names
//! one of ours, `exp` required and `nbf` honoured with the leeway, a non-empty `sub`, no `cnf`
//! (checklist D02-D07, D13, E02-E09, E13, J23-J34, J48). What passes becomes [`VerifiedClaims`],
//! the only form in which the rest of the server sees a token's contents.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::policy::{PermissionClaims, ValidationPolicy};
use super::token_error::TokenError;

/// The claims of an accepted token, as the tools see them (and as replicas share an
/// introspection answer, in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, string or array as in the token (`null` for a Cognito access token, which names
    /// its client instead).
    pub audience: Value,
    /// `exp`, seconds (an introspection answer may not say).
    pub expires_at: Option<i64>,
    /// `iat`, seconds.
    pub issued_at: Option<i64>,
    /// `jti`.
    pub token_id: Option<String>,
    /// `client_id`, else Okta's `cid`, else `azp`, else Entra v1's `appid`.
    pub client_id: Option<String>,
    /// `scope` split on spaces, else `scp` (array or string), plus `roles` when the policy reads
    /// them.
    pub scopes: Vec<String>,
    /// Okta's `uid`.
    pub uid: Option<String>,
    /// `cnf.jkt`: the RFC 7638 thumbprint of the key the token is bound to (RFC 9449 DPoP); such a
    /// token is accepted only with a proof made with that key.
    pub dpop_jkt: Option<String>,
}

/// The registered and provider claims this server reads; everything else is ignored.
#[derive(Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<AudienceClaim>,
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iat: Option<Value>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    roles: Option<Value>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    uid: Option<Value>,
    #[serde(default)]
    cnf: Option<Value>,
}

/// The DPoP key a token is bound to, from its `cnf` (a JWT's claim or an introspection answer's
/// member): `None` when unbound; a `cnf` holding anything but one non-empty `jkt` (an mTLS
/// `x5t#S256`, a key this server cannot check) refuses the token.
pub(crate) fn dpop_binding(cnf: Option<&Value>) -> Result<Option<String>, TokenError> {
    let Some(cnf) = cnf else {
        return Ok(None);
    };
    match cnf.as_object() {
        Some(members) if members.len() == 1 => match members.get("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.clone())),
            _ => Err(TokenError::SenderConstrained),
        },
        _ => Err(TokenError::SenderConstrained),
    }
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum AudienceClaim {
    One(String),
    Many(Vec<String>),
}

/// A member that is present, even as `null` (`Option<Value>` alone would read `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// RFC 7519 §2: a NumericDate is a JSON number of seconds (integer or finite float); `null`, a
/// string or a boolean is an invalid claim, never "absent" (checklist E14).
pub(super) fn numeric_date(value: &Value, claim: &'static str) -> Result<i64, TokenError> {
    let invalid = TokenError::InvalidClaim(claim);
    match value {
        Value::Number(number) => match (number.as_i64(), number.as_f64()) {
            (Some(secs), _) => Ok(secs),
            (None, Some(secs)) if secs.is_finite() && secs.abs() < 1e15 => Ok(secs.floor() as i64),
            _ => Err(invalid),
        },
        _ => Err(invalid),
    }
}

impl Claims {
    /// Judges the claims at `now` under `policy`.
    pub(crate) fn check(
        &self,
        now: i64,
        policy: &ValidationPolicy,
    ) -> Result<VerifiedClaims, TokenError> {
        let issuer = self.iss.as_deref().ok_or(TokenError::MissingClaim("iss"))?;
        if issuer != policy.issuer().as_str() {
            return Err(TokenError::WrongIssuer);
        }
        let client_id = self
            .client_id
            .clone()
            .or_else(|| self.cid.clone())
            .or_else(|| self.azp.clone())
            .or_else(|| self.appid.clone());
        let audience = match &self.aud {
            Some(audience) => {
                let audiences: &[String] = match audience {
                    AudienceClaim::One(one) => std::slice::from_ref(one),
                    AudienceClaim::Many(many) => many,
                };
                if !audiences.iter().any(|aud| policy.accepts_audience(aud)) {
                    return Err(TokenError::WrongAudience);
                }
                match audience {
                    AudienceClaim::One(one) => Value::String(one.clone()),
                    AudienceClaim::Many(many) => Value::from(many.clone()),
                }
            }
            // Only with the opt-in rule: a Cognito access token names its app client (P06).
            None => {
                let rule = policy
                    .client_audience()
                    .ok_or(TokenError::MissingClaim("aud"))?;
                if self.token_use.as_deref() != Some("access") {
                    return Err(TokenError::NotAnAccessToken);
                }
                let client = client_id
                    .as_deref()
                    .ok_or(TokenError::MissingClaim("client_id"))?;
                if !rule.allows(client) {
                    return Err(TokenError::WrongAudience);
                }
                Value::Null
            }
        };
        let leeway = policy.leeway().secs();
        let expires_at = numeric_date(
            self.exp.as_ref().ok_or(TokenError::MissingClaim("exp"))?,
            "exp",
        )?;
        if now > expires_at.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf) = &self.nbf
            && now.saturating_add(leeway) < numeric_date(nbf, "nbf")?
        {
            return Err(TokenError::NotYetValid);
        }
        let issued_at = self
            .iat
            .as_ref()
            .map(|iat| numeric_date(iat, "iat"))
            .transpose()?;
        let subject = self.sub.as_deref().ok_or(TokenError::MissingClaim("sub"))?;
        if subject.trim().is_empty() {
            return Err(TokenError::InvalidClaim("sub"));
        }
        // RFC 9449 §7.2 / RFC 8705: a key-bound token used without its proof must not pass. A
        // DPoP binding (`cnf` holding `jkt` alone) is kept for the bearer layer, which accepts
        // the token only with a proof of that key; any other binding (mTLS `x5t#S256`) is one this
        // server cannot check, so it is refused here (J48).
        let dpop_jkt = dpop_binding(self.cnf.as_ref())?;
        Ok(VerifiedClaims {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            audience,
            expires_at: Some(expires_at),
            issued_at,
            token_id: self.jti.clone(),
            client_id,
            scopes: self.permissions(policy.permission_claims())?,
            uid: match &self.uid {
                None | Some(Value::Null) => None,
                Some(Value::String(uid)) => Some(uid.clone()),
                Some(other) => Some(other.to_string()),
            },
            dpop_jkt,
        })
    }

    /// The permissions the policy reads: `scope`, else `scp`, then `roles` (P08).
    fn permissions(&self, read: PermissionClaims) -> Result<Vec<String>, TokenError> {
        let delegated = match (read.scope, read.scp) {
            (true, true) => self.scope.as_ref().or(self.scp.as_ref()),
            (true, false) => self.scope.as_ref(),
            (false, true) => self.scp.as_ref(),
            (false, false) => None,
        };
        let mut granted = scopes(delegated)?;
        if read.roles {
            for role in
                scopes(self.roles.as_ref()).map_err(|_| TokenError::InvalidClaim("roles"))?
            {
                if !granted.contains(&role) {
                    granted.push(role);
                }
            }
        }
        Ok(granted)
    }
}

/// `scope` is a space-separated string (RFC 9068 §2.2.3); Okta and Entra send `scp` as an array
/// or string. Anything else is an invalid claim rather than "no scopes".
pub(super) fn scopes(value: Option<&Value>) -> Result<Vec<String>, TokenError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_owned)
                    .ok_or(TokenError::InvalidClaim("scope"))
            })
            .collect(),
        Some(_) => Err(TokenError::InvalidClaim("scope")),
    }
}
