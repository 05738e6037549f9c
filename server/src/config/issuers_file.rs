//! `OAUTH_ISSUERS_FILE`: more trusted issuers, each with its own rules, as JSON. Anything an
//! entry does not say is taken from the first issuer's rules (algorithms, leeway, token types,
//! permission claims); its audiences default to the first issuer's too.
//!
//! ```json
//! [
//!   {"issuer": "https://partner.example.com", "audiences": ["https://mcp.example.com/mcp"]},
//!   {"issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
//!    "audience_client_ids": ["4k9..."]},
//!   {"issuer": "https://idp.example.com/realms/ops",
//!    "introspection": {"client_id": "mcp", "client_secret_env": "OPS_SECRET", "every_token": true}}
//! ]
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::auth::authorization_server::{AuthorizationServerSettings, Issuer};
use crate::auth::fetch::FetchUrl;
use crate::auth::issuers::TrustedIssuer;
use crate::auth::policy::{
    AlgorithmAllowList, Audience, ClientIdAudience, PermissionClaims, TokenTypePolicy,
    ValidationPolicy,
};
use crate::auth::remote::{
    ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings, RemoteVerification,
};

/// One entry, checked: every value already parsed into its policy type.
#[derive(Debug)]
pub(super) struct FileIssuer {
    issuer: Issuer,
    audiences: Vec<Audience>,
    algorithms: Option<AlgorithmAllowList>,
    token_types: Option<TokenTypePolicy>,
    permissions: Option<PermissionClaims>,
    client_audience: Option<ClientIdAudience>,
    authorization_server: AuthorizationServerSettings,
    remote: Option<RemoteVerification>,
}

impl FileIssuer {
    /// The trusted issuer, with `defaults` where the entry says nothing.
    pub(super) fn trusted(self, defaults: &ValidationPolicy) -> TrustedIssuer {
        let mut validation = defaults.for_issuer(self.issuer);
        let mut audiences = self.audiences.into_iter();
        if let Some(first) = audiences.next() {
            validation = validation.with_audiences(first, audiences);
        }
        if let Some(algorithms) = self.algorithms {
            validation = validation.with_algorithms(algorithms);
        }
        if let Some(token_types) = self.token_types {
            validation = validation.with_token_types(token_types);
        }
        if let Some(permissions) = self.permissions {
            validation = validation.with_permission_claims(permissions);
        }
        if let Some(rule) = self.client_audience {
            validation = validation.with_client_audience(rule);
        }
        TrustedIssuer {
            validation,
            authorization_server: self.authorization_server,
            remote: self.remote,
        }
    }
}

/// Why the file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum FileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: issuer {issuer:?}: {message}")]
    Entry {
        path: String,
        issuer: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    issuer: String,
    #[serde(default)]
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    well_known_url: Option<String>,
    algorithms: Option<Vec<String>>,
    token_types: Option<String>,
    permission_claims: Option<Vec<String>>,
    audience_client_ids: Option<Vec<String>>,
    introspection: Option<IntrospectionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntrospectionEntry {
    url: Option<String>,
    client_id: String,
    /// The secret itself; prefer `client_secret_env`, so the file holds no secret.
    client_secret: Option<String>,
    /// The environment variable holding the secret.
    client_secret_env: Option<String>,
    #[serde(default)]
    client_auth: Option<String>,
    #[serde(default)]
    every_token: bool,
    #[serde(default = "default_cache_secs")]
    cache_secs: u64,
    /// `"required"` (the default) or `"when-present"`, as `OAUTH_INTROSPECTION_AUDIENCE`.
    audience: Option<String>,
}

fn default_cache_secs() -> u64 {
    60
}

/// Reads and checks the file.
pub(super) fn read(path: &Path) -> Result<Vec<FileIssuer>, FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: shown.clone(),
        source,
    })?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|source| FileError::Json {
        path: shown.clone(),
        source,
    })?;
    entries
        .into_iter()
        .map(|entry| {
            let issuer = entry.issuer.clone();
            entry.check().map_err(|message| FileError::Entry {
                path: shown.clone(),
                issuer,
                message,
            })
        })
        .collect()
}

impl Entry {
    fn check(self) -> Result<FileIssuer, String> {
        let issuer = Issuer::parse(&self.issuer).map_err(|e| e.to_string())?;
        let audiences = self
            .audiences
            .iter()
            .map(|a| Audience::new(a.as_str()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let url = |value: &Option<String>| {
            value
                .as_deref()
                .map(FetchUrl::parse)
                .transpose()
                .map_err(|e| e.to_string())
        };
        let algorithms = match &self.algorithms {
            Some(names) => Some(
                AlgorithmAllowList::new(
                    names
                        .iter()
                        .map(|n| AlgorithmAllowList::parse_one(n))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())?,
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let token_types = match self.token_types.as_deref() {
            None => None,
            Some("default") => Some(TokenTypePolicy::Default),
            Some("strict") => Some(TokenTypePolicy::Strict),
            Some(other) => return Err(format!("token_types {other:?} is not default or strict")),
        };
        let permissions = self
            .permission_claims
            .map(|names| {
                PermissionClaims::from_names(names.iter().map(String::as_str))
                    .map_err(|e| format!("permission_claims: {e}"))
            })
            .transpose()?;
        let client_audience = self
            .audience_client_ids
            .map(|ids| ClientIdAudience::new(ids).map_err(|e| e.to_string()))
            .transpose()?;
        let remote = match self.introspection {
            None => None,
            Some(introspection) => {
                let secret = match (
                    &introspection.client_secret,
                    &introspection.client_secret_env,
                ) {
                    (Some(secret), None) => secret.clone(),
                    (None, Some(variable)) => std::env::var(variable)
                        .map_err(|_| format!("introspection: {variable} is not set"))?,
                    _ => {
                        return Err(
                            "introspection: give client_secret_env (or client_secret), not both"
                                .to_owned(),
                        );
                    }
                };
                Some(RemoteVerification::Introspection(IntrospectionSettings {
                    endpoint: url(&introspection.url)?,
                    client_id: introspection.client_id,
                    client_secret: ClientSecret::new(secret),
                    client_auth: match introspection.client_auth.as_deref() {
                        None | Some("basic") => ClientAuthMethod::Basic,
                        Some("post") => ClientAuthMethod::Post,
                        Some(other) => {
                            return Err(format!("client_auth {other:?} is not basic or post"));
                        }
                    },
                    every_token: introspection.every_token,
                    cache_for: Duration::from_secs(introspection.cache_secs),
                    audience: match introspection.audience.as_deref() {
                        None | Some("required") => IntrospectedAudience::Required,
                        Some("when-present") => IntrospectedAudience::CheckedWhenPresent,
                        Some(other) => {
                            return Err(format!(
                                "introspection audience {other:?} is not required or when-present"
                            ));
                        }
                    },
                }))
            }
        };
        Ok(FileIssuer {
            issuer,
            audiences,
            algorithms,
            token_types,
            permissions,
            client_audience,
            authorization_server: AuthorizationServerSettings {
                metadata_url: url(&self.well_known_url)?,
                jwks_uri: url(&self.jwks_uri)?,
            },
            remote,
        })
    }
}
