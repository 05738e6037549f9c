//! RFC 9728 protected resource metadata (checklist A01-A18) and the Python sample's
//! `/.well-known/oauth-authorization-server` forwarding (A20): a 307 to the AS metadata, or a
//! cached copy for browser clients that do not follow cross-origin redirects.

use std::sync::{Arc, PoisonError, RwLock};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use url::Url;

use crate::auth::discovery::Fetcher;
use crate::auth::keys::KeySource;
use crate::clock::Clock;
use crate::config::{AsMetadataMode, Config};

/// The RFC 9728 document and the forwarding target, built once from configuration: nothing in
/// them comes from the request (`Host`, `X-Forwarded-*`), so they cannot be spoofed (A18).
#[derive(Debug)]
pub struct Metadata {
    document: Value,
    as_metadata_url: Url,
    /// When `OAUTH_WELL_KNOWN_URL` is unset, the URL discovery found wins over the default.
    as_metadata_configured: bool,
    keys: Arc<KeySource>,
    mode: AsMetadataMode,
    fetcher: Fetcher,
    clock: Arc<dyn Clock>,
    cached: RwLock<Option<(Value, i64)>>,
}

impl Metadata {
    /// Builds the document for `config`, listing `scopes` as `scopes_supported` (A10, A11).
    pub fn new(
        config: &Config,
        scopes: Vec<String>,
        fetcher: Fetcher,
        keys: Arc<KeySource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut document = json!({
            "resource": config.resource.as_str(),
            "authorization_servers": [config.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": config.resource_name,
        });
        let scopes: Vec<String> = scopes
            .into_iter()
            .filter(|s| s != "offline_access")
            .collect();
        if !scopes.is_empty() {
            // A08: zero-valued members are omitted.
            document["scopes_supported"] = json!(scopes);
        }
        Self {
            document,
            as_metadata_url: config.as_metadata_url.clone(),
            as_metadata_configured: config.well_known_configured,
            keys,
            mode: config.as_metadata_mode,
            fetcher,
            clock,
            cached: RwLock::new(None),
        }
    }

    /// The RFC 9728 document.
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// Where the AS metadata lives: `OAUTH_WELL_KNOWN_URL`, else where discovery found it, else
    /// the issuer's RFC 8414 URL.
    pub fn as_metadata_url(&self) -> Url {
        match (self.as_metadata_configured, self.keys.metadata_url()) {
            (false, Some(discovered)) => discovered,
            _ => self.as_metadata_url.clone(),
        }
    }
}

/// `GET /.well-known/oauth-protected-resource/mcp` (and the root form): public, cacheable JSON.
pub async fn protected_resource(State(metadata): State<Arc<Metadata>>) -> Response {
    let mut response = Json(metadata.document.clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `GET|HEAD /.well-known/oauth-authorization-server`: 307 to the AS metadata (as the sample), or
/// in proxy mode its cached copy.
pub async fn authorization_server(State(metadata): State<Arc<Metadata>>) -> Response {
    match metadata.mode {
        AsMetadataMode::Redirect => {
            match HeaderValue::from_str(metadata.as_metadata_url().as_str()) {
                Ok(location) => (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response(),
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            }
        }
        AsMetadataMode::Proxy => proxied(&metadata).await,
    }
}

async fn proxied(metadata: &Metadata) -> Response {
    let now = metadata.clock.now();
    let cached = metadata
        .cached
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let document = match cached {
        Some((document, fetched_at)) if now < fetched_at.saturating_add(PROXY_TTL_SECS) => document,
        _ => match metadata.fetcher.json(&metadata.as_metadata_url()).await {
            Ok((document, _)) => {
                *metadata
                    .cached
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some((document.clone(), now));
                document
            }
            Err(error) => {
                tracing::warn!(%error, "authorization server metadata unavailable");
                return (
                    StatusCode::BAD_GATEWAY,
                    Json(json!({"error": "authorization server metadata unavailable"})),
                )
                    .into_response();
            }
        },
    };
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// How long a proxied copy of the AS metadata is served before it is fetched again.
const PROXY_TTL_SECS: i64 = 300;
