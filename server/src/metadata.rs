//! RFC 9728 protected resource metadata (checklist A01-A18) and the Python sample's
//! `/.well-known/oauth-authorization-server` forwarding (A20): a 307 to the AS metadata, or, for
//! browser clients that do not follow cross-origin redirects, the issuer-checked document the
//! server already holds from discovery.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::authorization_server::{AuthorizationServer, DiscoveryError};
use crate::auth::issuers::Verifiers;
use crate::guard::request_host;
use crate::resource::Resource;

/// What `/.well-known/oauth-authorization-server` does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AsMetadataMode {
    /// 307 to the metadata URL, as the Python sample does.
    #[default]
    Redirect,
    /// Serve the metadata document discovery holds (issuer checked, G02).
    Proxy,
}

/// The RFC 9728 documents and the forwarding target, built once from configuration: nothing in
/// them comes from the request (`Host`, `X-Forwarded-*`), so they cannot be spoofed (A18); the
/// `Host` only chooses among the resource's configured spellings.
#[derive(Debug)]
pub(crate) struct Metadata {
    resource: Resource,
    /// One document per spelling of the resource (the canonical one first).
    documents: Vec<Value>,
    mode: AsMetadataMode,
    authorization_server: Arc<AuthorizationServer>,
}

impl Metadata {
    /// The document for `resource`, naming every trusted issuer (the first first, P09), listing
    /// `scopes` as `scopes_supported` (A10, A11); the forwarding goes to the first issuer.
    pub(crate) fn new(
        resource: &Resource,
        scopes: Vec<String>,
        mode: AsMetadataMode,
        verifiers: &Verifiers,
        dpop: Option<(Vec<String>, bool)>,
    ) -> Self {
        let issuers: Vec<&str> = verifiers
            .iter()
            .map(|verifier| verifier.policy.issuer().as_str())
            .collect();
        let authorization_server = Arc::clone(&verifiers.primary().authorization_server);
        let scopes: Vec<String> = scopes
            .into_iter()
            .filter(|s| s != "offline_access")
            .collect();
        let documents = resource
            .spellings()
            .map(|url| {
                let mut document = json!({
                    "resource": url.as_str(),
                    "authorization_servers": issuers,
                    "bearer_methods_supported": ["header"],
                    "resource_name": resource.name,
                });
                if !scopes.is_empty() {
                    // A08: zero-valued members are omitted.
                    document["scopes_supported"] = json!(scopes);
                }
                if let Some((algs, required)) = &dpop {
                    // RFC 9728 §2: the proof algorithms, and whether bearer tokens are refused.
                    document["dpop_signing_alg_values_supported"] = json!(algs);
                    document["dpop_bound_access_tokens_required"] = json!(required);
                }
                document
            })
            .collect();
        Self {
            resource: resource.clone(),
            documents,
            mode,
            authorization_server,
        }
    }

    /// The document for a request addressed to `host` (A04: `resource` is the URL it used, when
    /// that is one of the resource's known spellings).
    fn document_for(&self, host: Option<&str>) -> &Value {
        let spelled = self.resource.spelled_for(host);
        self.resource
            .spellings()
            .zip(&self.documents)
            .find(|(url, _)| *url == spelled)
            .map_or(&Value::Null, |(_, document)| document)
    }
}

/// `GET /.well-known/oauth-protected-resource/mcp` (and the root form): public, cacheable JSON.
pub(crate) async fn protected_resource(
    State(metadata): State<Arc<Metadata>>,
    request: axum::extract::Request,
) -> Response {
    let document = metadata.document_for(request_host(request.headers(), request.uri()));
    let mut response = Json(document.clone()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `GET|HEAD /.well-known/oauth-authorization-server`: 307 to the AS metadata (as the sample), or
/// in proxy mode the document itself.
pub(crate) async fn authorization_server(State(metadata): State<Arc<Metadata>>) -> Response {
    match metadata.mode {
        AsMetadataMode::Redirect => redirect(&metadata.authorization_server),
        AsMetadataMode::Proxy => proxied(&metadata.authorization_server).await,
    }
}

fn redirect(authorization_server: &AuthorizationServer) -> Response {
    match authorization_server
        .metadata_url()
        .and_then(|url| HeaderValue::from_str(url.as_str()).ok())
    {
        Some(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn proxied(authorization_server: &AuthorizationServer) -> Response {
    match authorization_server.metadata(PROXY_MAX_AGE).await {
        Ok(metadata) => {
            let mut response = Json(metadata.document.clone()).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        Err(error) => {
            // Warned when discovery fails; while it cools down every request would repeat it.
            if matches!(error, DiscoveryError::CoolingDown { .. }) {
                tracing::debug!(
                    error = &error as &dyn std::error::Error,
                    "authorization server metadata unavailable"
                );
            } else {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "authorization server metadata unavailable"
                );
            }
            (
                StatusCode::BAD_GATEWAY,
                Json(json!({"error": "authorization server metadata unavailable"})),
            )
                .into_response()
        }
    }
}

/// How long the held AS metadata is served in proxy mode before discovery runs again.
const PROXY_MAX_AGE: Duration = Duration::from_secs(300);
