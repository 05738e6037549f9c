//! The clients one IdP knows, three ways (MCP "Client Registration"): configured ones,
//! dynamically registered ones (RFC 7591, bounded), and clients whose `client_id` is the https URL
//! of their metadata document (client ID metadata documents), fetched and checked on first use.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{Client, ClientSecret, GrantType, PresentedCredentials, is_https_or_loopback_http};
use crate::error::{OAuthError, OAuthErrorCode};
use crate::grants::random_token;

/// Configured, registered and metadata-document clients.
#[derive(Debug)]
pub(crate) struct ClientRegistry {
    configured: Vec<Client>,
    registered: RwLock<HashMap<String, Client>>,
    documents: RwLock<HashMap<String, (Client, i64)>>,
    http: reqwest::Client,
}

impl ClientRegistry {
    pub(crate) fn new(configured: Vec<Client>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DOCUMENT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            configured,
            registered: RwLock::new(HashMap::new()),
            documents: RwLock::new(HashMap::new()),
            http,
        }
    }

    /// The configured clients.
    pub(crate) fn all(&self) -> &[Client] {
        &self.configured
    }

    /// The client with this id: configured, registered, or (for an https or loopback http URL)
    /// described by the metadata document at that URL.
    ///
    /// # Errors
    /// [`OAuthError`] `invalid_client` for an unknown id or an unusable metadata document.
    pub(crate) async fn find(&self, client_id: &str, now: i64) -> Result<Client, OAuthError> {
        if let Some(client) = self.configured.iter().find(|c| c.client_id == client_id) {
            return Ok(client.clone());
        }
        if let Some(client) = read(&self.registered).get(client_id) {
            return Ok(client.clone());
        }
        if client_id.starts_with("https://") || client_id.starts_with("http://") {
            return self.metadata_document(client_id, now).await;
        }
        Err(unknown_client())
    }

    /// The client these credentials prove, or `invalid_client`. Unknown ids, wrong secrets and a
    /// method the client is not registered for get the same answer.
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
        match presented {
            PresentedCredentials::Basic { client_id, secret }
            | PresentedCredentials::Post { client_id, secret } => {
                let client = self.find(client_id, now).await.map_err(|_| failed())?;
                match &client.client_secret {
                    Some(expected) if expected.matches(secret) => Ok(client),
                    _ => Err(failed()),
                }
            }
            PresentedCredentials::None { client_id } => {
                let client = self.find(client_id, now).await.map_err(|_| failed())?;
                if client.is_public() {
                    Ok(client)
                } else {
                    Err(failed())
                }
            }
        }
    }

    /// RFC 7591 §3: registers a client from its metadata; the answer (§3.2.1) echoes it with the
    /// issued `client_id` (and `client_secret` for a confidential client).
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
        {
            let mut registered = self
                .registered
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if registered.len() >= MAX_REGISTERED {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidClientMetadata,
                    "too many registered clients",
                ));
            }
            registered.insert(client_id.clone(), client);
        }
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

    /// A client ID metadata document: fetched (https, or http to loopback only; bounded in time
    /// and size; no redirects), its `client_id` equal to its URL, a public client with redirect
    /// URIs. Cached for a minute.
    async fn metadata_document(&self, url: &str, now: i64) -> Result<Client, OAuthError> {
        if let Some((client, fetched_at)) = read(&self.documents).get(url)
            && now < fetched_at + DOCUMENT_CACHE_SECS
        {
            return Ok(client.clone());
        }
        let invalid = |why: &str| {
            OAuthError::new(
                OAuthErrorCode::InvalidClient,
                format!("client metadata document {url}: {why}"),
            )
        };
        let parsed = url::Url::parse(url).map_err(|_| invalid("not a URL"))?;
        if !is_https_or_loopback_http(&parsed)
            || parsed.fragment().is_some()
            || parsed.path() == "/"
        {
            return Err(invalid(
                "the client_id must be an https URL with a path (http only to loopback)",
            ));
        }
        let mut response = self
            .http
            .get(parsed.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|_| invalid("cannot be fetched"))?;
        if !response.status().is_success() {
            return Err(invalid("answered with an error status"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|_| invalid("the body broke off"))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > DOCUMENT_MAX_BYTES {
                return Err(invalid("is too large"));
            }
        }
        let document: Value = serde_json::from_slice(&body).map_err(|_| invalid("is not JSON"))?;
        if document.get("client_id").and_then(Value::as_str) != Some(url) {
            return Err(invalid("its client_id is not its own URL"));
        }
        let request: Registration = serde_json::from_value(document.clone())
            .map_err(|_| invalid("has invalid metadata"))?;
        if request
            .token_endpoint_auth_method
            .as_deref()
            .is_some_and(|m| m != "none")
        {
            return Err(invalid(
                "only public clients (token_endpoint_auth_method none) are supported",
            ));
        }
        if request.redirect_uris.is_empty() {
            return Err(invalid("has no redirect_uris"));
        }
        check_redirect_uris(&request.redirect_uris)
            .map_err(|_| invalid("has an invalid redirect URI"))?;
        let client = Client {
            client_name: request.client_name,
            ..Client::public(url, request.redirect_uris)
        };
        let mut documents = self
            .documents
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if documents.len() >= MAX_REGISTERED {
            documents.clear();
        }
        documents.insert(url.to_owned(), (client.clone(), now));
        Ok(client)
    }
}

/// The client metadata this IdP reads (RFC 7591 §2); other members are kept in the answer only.
#[derive(Deserialize)]
struct Registration {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
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
fn check_redirect_uris(uris: &[String]) -> Result<(), OAuthError> {
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

fn unknown_client() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidClient, "unknown client")
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    // Writers insert or clear whole entries; a poisoned lock still holds a consistent map.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Bounds what registration and metadata documents can make this IdP hold.
const MAX_REGISTERED: usize = 1_000;
/// How long a fetched metadata document is used.
const DOCUMENT_CACHE_SECS: i64 = 60;
/// The largest metadata document accepted.
const DOCUMENT_MAX_BYTES: usize = 16 * 1024;
/// How long fetching a metadata document may take.
const DOCUMENT_TIMEOUT: Duration = Duration::from_secs(5);
