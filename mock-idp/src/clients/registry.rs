//! The clients one IdP knows, three ways (MCP "Client Registration"): configured ones,
//! dynamically registered ones (RFC 7591; checked like configured ones; the oldest forgotten once
//! [`MAX_REGISTERED`] are held), and clients whose `client_id` is the https URL of their metadata
//! document (client ID metadata documents, [`Documents`]), fetched and checked on first use.

use std::sync::{Mutex, PoisonError};

use serde::Deserialize;
use serde_json::{Value, json};

use super::address_policy::AddressPolicy;
use super::bounded::BoundedMap;
use super::documents::{DocumentError, Documents};
use super::{Client, ClientSecret, GrantType, PresentedCredentials, is_https_or_loopback_http};
use crate::error::{IdpError, OAuthError, OAuthErrorCode};
use crate::grants::random_token;

/// Configured, registered and metadata-document clients.
#[derive(Debug)]
pub(crate) struct ClientRegistry {
    configured: Vec<Client>,
    registered: Mutex<BoundedMap<Client>>,
    documents: Documents,
}

/// Why [`ClientRegistry::find`] found no client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No such client, or its metadata document is unusable (the caller is told no more).
    Unknown,
    /// Its metadata document cannot be fetched now: too many fetches under way.
    Busy,
}

impl ClientRegistry {
    /// The configured clients; metadata documents may come from the addresses `documents` allows.
    pub(crate) fn new(configured: Vec<Client>, documents: AddressPolicy) -> Self {
        Self {
            configured,
            registered: Mutex::new(BoundedMap::new(MAX_REGISTERED)),
            documents: Documents::new(documents),
        }
    }

    /// The configured clients.
    pub(crate) fn all(&self) -> &[Client] {
        &self.configured
    }

    /// Whether `client_id` is a configured client: its redirect URIs were chosen by whoever runs
    /// the IdP, unlike those of registered and metadata-document clients, which anyone chooses.
    pub(crate) fn is_configured(&self, client_id: &str) -> bool {
        self.configured.iter().any(|c| c.client_id == client_id)
    }

    /// How many metadata-document requests were sent (see [`Documents::fetches`]).
    pub(crate) fn document_fetches(&self) -> u64 {
        self.documents.fetches()
    }

    /// The client with this id: configured, registered, or (for an https or loopback http URL)
    /// described by the metadata document at that URL.
    ///
    /// # Errors
    /// [`Lookup::Unknown`] for an unknown id or an unusable metadata document, [`Lookup::Busy`]
    /// when the document cannot be fetched now.
    pub(crate) async fn find(&self, client_id: &str, now: i64) -> Result<Client, Lookup> {
        if let Some(client) = self.configured.iter().find(|c| c.client_id == client_id) {
            return Ok(client.clone());
        }
        if let Some(client) = lock(&self.registered).get(client_id) {
            return Ok(client.clone());
        }
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self
                .documents
                .client(client_id, now)
                .await
                .map_err(|error| match error {
                    DocumentError::Unusable => Lookup::Unknown,
                    DocumentError::Busy => Lookup::Busy,
                });
        }
        Err(Lookup::Unknown)
    }

    /// The client these credentials prove, or `invalid_client`. Unknown ids, wrong secrets and a
    /// method the client is not registered for get the same answer; a metadata document that
    /// cannot be fetched now gets `temporarily_unavailable`.
    pub(crate) async fn authenticate(
        &self,
        presented: &PresentedCredentials,
        now: i64,
    ) -> Result<Client, OAuthError> {
        let failed = || {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication failed",
            )
        };
        let (client_id, secret) = match presented {
            PresentedCredentials::Basic { client_id, secret }
            | PresentedCredentials::Post { client_id, secret } => (client_id, Some(secret)),
            PresentedCredentials::None { client_id } => (client_id, None),
        };
        let client = self
            .find(client_id, now)
            .await
            .map_err(|error| match error {
                Lookup::Unknown => failed(),
                Lookup::Busy => busy(),
            })?;
        let proven = match (&client.client_secret, secret) {
            (Some(expected), Some(secret)) => expected.matches(secret),
            (None, None) => true,
            _ => false,
        };
        if proven { Ok(client) } else { Err(failed()) }
    }

    /// RFC 7591 §3: registers a client from its metadata, checked like a configured client
    /// ([`Client::validate`]: a public client cannot use `client_credentials`, and a registered
    /// client has no resource of its own to get a machine token for); the answer (§3.2.1) echoes
    /// it with the issued `client_id` (and `client_secret` for a confidential client). Once
    /// [`MAX_REGISTERED`] are held, the oldest registration is forgotten to make room.
    ///
    /// # Errors
    /// `invalid_redirect_uri` or `invalid_client_metadata` (RFC 7591 §3.2.2).
    pub(crate) fn register(&self, metadata: &Value, now: i64) -> Result<Value, OAuthError> {
        let request: Registration = serde_json::from_value(metadata.clone()).map_err(|e| {
            OAuthError::new(
                OAuthErrorCode::InvalidClientMetadata,
                format!("the client metadata is not valid: {e}"),
            )
        })?;
        let auth_method = request
            .token_endpoint_auth_method
            .as_deref()
            .unwrap_or("client_secret_basic");
        let secret = match auth_method {
            "none" => None,
            "client_secret_basic" | "client_secret_post" => Some(random_token()),
            other => {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidClientMetadata,
                    format!("token_endpoint_auth_method {other:?} is not supported"),
                ));
            }
        };
        let grant_types = grant_types(request.grant_types.as_deref())?;
        check_redirect_uris(&request.redirect_uris)?;
        if grant_types.contains(&GrantType::AuthorizationCode) && request.redirect_uris.is_empty() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRedirectUri,
                "redirect_uris is required for the authorization_code grant",
            ));
        }
        let client_id = format!("dyn-{}", &random_token()[..22]);
        let client = Client {
            client_secret: secret.clone().map(ClientSecret::new),
            grant_types: grant_types.clone(),
            client_name: request.client_name.clone(),
            ..Client::public(client_id.clone(), request.redirect_uris.clone())
        };
        client.validate().map_err(|error| {
            let problem = match error {
                IdpError::InvalidClient { problem, .. } => problem,
                _ => "the client metadata is not usable",
            };
            OAuthError::new(OAuthErrorCode::InvalidClientMetadata, problem)
        })?;
        lock(&self.registered).insert(client_id.clone(), client);
        let mut answer = metadata.as_object().cloned().unwrap_or_default();
        answer.insert("client_id".into(), client_id.into());
        answer.insert("client_id_issued_at".into(), now.into());
        answer.insert("token_endpoint_auth_method".into(), auth_method.into());
        answer.insert(
            "grant_types".into(),
            json!(grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()),
        );
        if let Some(secret) = secret {
            answer.insert("client_secret".into(), secret.into());
            answer.insert("client_secret_expires_at".into(), 0.into());
        }
        Ok(Value::Object(answer))
    }
}

/// The client metadata this IdP reads (RFC 7591 §2); other members are kept in the answer only.
#[derive(Deserialize)]
pub(super) struct Registration {
    #[serde(default)]
    pub(super) redirect_uris: Vec<String>,
    #[serde(default)]
    pub(super) token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    pub(super) client_name: Option<String>,
}

fn grant_types(requested: Option<&[String]>) -> Result<Vec<GrantType>, OAuthError> {
    let Some(requested) = requested else {
        return Ok(vec![GrantType::AuthorizationCode]);
    };
    requested
        .iter()
        .map(|g| {
            GrantType::parse(g).ok_or_else(|| {
                OAuthError::new(
                    OAuthErrorCode::InvalidClientMetadata,
                    format!("grant type {g:?} is not supported"),
                )
            })
        })
        .collect()
}

/// Redirect URIs are absolute, without fragment, and https or http to loopback (RFC 8252 §7.3;
/// OAuth 2.1 §2.3.1).
pub(super) fn check_redirect_uris(uris: &[String]) -> Result<(), OAuthError> {
    for uri in uris {
        let parsed = url::Url::parse(uri).map_err(|_| {
            OAuthError::new(
                OAuthErrorCode::InvalidRedirectUri,
                "a redirect URI is not an absolute URL",
            )
        })?;
        if !is_https_or_loopback_http(&parsed) || parsed.fragment().is_some() {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRedirectUri,
                "a redirect URI must be https, or http to a loopback address, without fragment",
            ));
        }
    }
    Ok(())
}

/// RFC 6749 §4.1.2.1's `temporarily_unavailable`, for a metadata document that cannot be
/// fetched now.
fn busy() -> OAuthError {
    OAuthError::new(
        OAuthErrorCode::TemporarilyUnavailable,
        "the client's metadata document cannot be fetched now; try again shortly",
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Writers insert whole entries; a poisoned lock still holds a consistent map.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many dynamically registered clients are held; the oldest goes first.
pub(crate) const MAX_REGISTERED: usize = 1_000;
