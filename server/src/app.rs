//! The one place routes and layers are assembled, and [`App::serve`] runs them.
//!
//! A request to `/mcp` walks one line of layers: CORS (answers preflights) → Origin/Host guard
//! (403) → bearer authentication (401/400) → session binding (404) → scope gate (403) → rmcp.
//! Metadata, AS forwarding and health routes stand beside it, outside authentication.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::MatchedPath;
use axum::http::{HeaderName, Method, Request, header};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::challenge::Challenger;
use crate::auth::discovery::{FetchError, Fetcher};
use crate::auth::keys::{JwksLocation, KeySource};
use crate::auth::scopes::ScopePolicy;
use crate::auth::token::ValidationPolicy;
use crate::auth::{Authenticator, require_bearer, require_scopes};
use crate::clock::Clock;
use crate::config::Config;
use crate::edge::{HeaderLimit, limit_headers};
use crate::guard::{Guard, check_origin_and_host};
use crate::metadata::{self, Metadata};
use crate::session::{SessionBindings, bind_sessions};
use crate::tools::{McpTools, TOOL_SCOPES};
use crate::{health, session};

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client for the authorization server cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    /// The authorization server's metadata names another issuer (G02): a configuration error.
    #[error(
        "{0}; check OAUTH_ISSUER (it must equal the metadata's issuer byte for byte) or OAUTH_WELL_KNOWN_URL"
    )]
    Discovery(FetchError),
}

/// A configured server: state shared by all requests, and the router over it.
#[derive(Debug, Clone)]
pub struct App {
    config: Arc<Config>,
    auth: Arc<Authenticator>,
    sessions: Arc<SessionBindings>,
    guard: Arc<Guard>,
    metadata: Arc<Metadata>,
    shutdown: CancellationToken,
}

impl App {
    /// Builds the server and makes a first attempt to load the keys. A metadata document naming
    /// another issuer stops the start; an unreachable authorization server does not: readiness
    /// stays false and a background task keeps trying (call [`App::spawn_key_loader`]).
    ///
    /// # Errors
    /// [`StartError`] when the HTTP client cannot be built or discovery finds another issuer.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let fetcher = Fetcher::new(config.jwks.timeout, config.jwks.max_bytes)?;
        let location = match &config.jwks_uri {
            Some(uri) => JwksLocation::Configured(uri.clone()),
            None => JwksLocation::Discover {
                issuer: config.issuer.clone(),
                preferred: config
                    .well_known_configured
                    .then(|| config.as_metadata_url.clone()),
            },
        };
        let keys = Arc::new(KeySource::new(
            fetcher.clone(),
            location,
            config.jwks,
            Arc::clone(&clock),
        ));
        if let Err(error) = keys.refresh().await
            && error.is_permanent()
        {
            return Err(StartError::Discovery(error));
        }
        let mut tool_scopes: std::collections::BTreeMap<String, Vec<String>> = TOOL_SCOPES
            .iter()
            .map(|(tool, scopes)| {
                (
                    (*tool).to_owned(),
                    scopes.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect();
        tool_scopes.extend(config.tool_scopes.clone());
        let scopes = ScopePolicy::new(config.required_scopes.clone(), tool_scopes)
            .with_hierarchy(&config.scope_implies);
        let policy = ValidationPolicy {
            issuer: config.issuer.clone(),
            audiences: config.audiences.clone(),
            algorithms: config.algorithms.clone(),
            leeway_secs: i64::try_from(config.leeway.as_secs()).unwrap_or(300),
            token_types: config.token_types,
        };
        let challenger = Challenger::new(config.resource_metadata_url(), scopes.basic().to_vec());
        let metadata = Arc::new(Metadata::new(
            &config,
            scopes.all_scopes(),
            fetcher,
            Arc::clone(&keys),
            Arc::clone(&clock),
        ));
        let auth = Arc::new(Authenticator::new(
            policy,
            keys,
            clock,
            challenger,
            scopes,
            config.max_body_bytes,
        ));
        let guard = Arc::new(Guard::new(
            config.allowed_hosts.clone(),
            config.allowed_origins.clone(),
        ));
        Ok(Self {
            config: Arc::new(config),
            auth,
            sessions: Arc::new(SessionBindings::default()),
            guard,
            metadata,
            shutdown: CancellationToken::new(),
        })
    }

    /// Keeps trying to load the keys until it succeeds (1 s, doubling to 30 s between tries), so
    /// an authorization server that was down at start is picked up without a restart.
    pub fn spawn_key_loader(&self) -> tokio::task::JoinHandle<()> {
        let keys = Arc::clone(self.auth.keys());
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            while !keys.is_ready() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                match keys.refresh().await {
                    Ok(()) => return,
                    Err(error) if error.is_permanent() => {
                        tracing::error!(%error, "authorization server metadata names another issuer; tokens will be refused");
                        return;
                    }
                    Err(_) => backoff = (backoff * 2).min(Duration::from_secs(30)),
                }
            }
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The auth layers' state (keys, policy), for readiness and tests.
    pub fn auth(&self) -> &Arc<Authenticator> {
        &self.auth
    }

    /// The routes and layers.
    pub fn router(&self) -> Router {
        let public = Router::new()
            .route(
                &format!(
                    "/.well-known/oauth-protected-resource{}",
                    self.config.resource.path()
                ),
                get(metadata::protected_resource),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                get(metadata::protected_resource),
            )
            .with_state(Arc::clone(&self.metadata))
            .layer(
                CorsLayer::new()
                    .allow_origin(Any)
                    .allow_methods([Method::GET]),
            );
        let forwarding = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::authorization_server),
            )
            .with_state(Arc::clone(&self.metadata))
            .layer(
                CorsLayer::new()
                    .allow_origin(Any)
                    .allow_methods([Method::GET]),
            );
        let health = Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(Arc::clone(self.auth.keys()));
        Router::new()
            .merge(self.mcp_router())
            .merge(public)
            .merge(forwarding)
            .merge(health)
            .layer(
                ServiceBuilder::new()
                    .layer(from_fn_with_state(
                        HeaderLimit(self.config.max_header_bytes),
                        limit_headers,
                    ))
                    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                    .layer(TraceLayer::new_for_http().make_span_with(request_span))
                    .layer(PropagateRequestIdLayer::x_request_id()),
            )
    }

    fn mcp_router(&self) -> Router {
        let path = self.config.resource.path().to_owned();
        let rmcp_config = StreamableHttpServerConfig::default()
            // Host and Origin are decided by our guard, before authentication.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(self.config.max_body_bytes)
            .with_cancellation_token(self.shutdown.child_token());
        let (mcp, bind) = if self.config.stateless {
            let config = rmcp_config
                .with_legacy_session_mode(false)
                .with_json_response(true);
            let service = StreamableHttpService::new(
                || Ok(McpTools::new()),
                Arc::new(NeverSessionManager::default()),
                config,
            );
            (Router::new().nest_service(&path, service), false)
        } else {
            let service = StreamableHttpService::new(
                || Ok(McpTools::new()),
                Arc::new(LocalSessionManager::default()),
                rmcp_config,
            );
            (Router::new().nest_service(&path, service), true)
        };
        let inner = ServiceBuilder::new()
            .layer(self.cors())
            .layer(from_fn_with_state(
                Arc::clone(&self.guard),
                check_origin_and_host,
            ))
            .layer(from_fn_with_state(Arc::clone(&self.auth), require_bearer));
        if bind {
            mcp.layer(
                inner
                    .layer(from_fn_with_state(
                        Arc::clone(&self.sessions),
                        bind_sessions,
                    ))
                    .layer(from_fn_with_state(Arc::clone(&self.auth), require_scopes)),
            )
        } else {
            mcp.layer(inner.layer(from_fn_with_state(Arc::clone(&self.auth), require_scopes)))
        }
    }

    /// CORS for browser clients (N16): preflights are answered without authentication, and the
    /// challenge and session headers are exposed.
    fn cors(&self) -> CorsLayer {
        let guard = Arc::clone(&self.guard);
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
            }))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                session::SESSION_HEADER.clone(),
                HeaderName::from_static("mcp-protocol-version"),
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("mcp-method"),
                HeaderName::from_static("mcp-name"),
            ])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                session::SESSION_HEADER.clone(),
                HeaderName::from_static("mcp-protocol-version"),
            ])
            .max_age(Duration::from_secs(600))
    }

    /// Serves on `listener` until `shutdown` completes, then stops MCP sessions and drains.
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let loader = self.spawn_key_loader();
        let stop = self.shutdown.clone();
        let app = self.router();
        // rmcp answers over SSE in several small writes: without TCP_NODELAY each request waits
        // for Nagle + delayed ACK (~44 ms).
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await;
        loader.abort();
        result
    }
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    // The matched route, never the raw URI: query strings can carry codes and tokens.
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %request.method(), path, request_id = %id)
}
