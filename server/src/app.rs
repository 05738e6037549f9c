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
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::authorization_server::AuthorizationServer;
use crate::auth::challenge::Challenger;
use crate::auth::fetch::Fetcher;
use crate::auth::keys::{KeySource, RefreshError};
use crate::auth::{Authenticator, require_bearer, require_scopes};
use crate::clock::Clock;
use crate::edge::limit_headers;
use crate::guard::{GuardPolicy, check_origin_and_host};
use crate::metadata::{self, Metadata};
use crate::resource::metadata_path;
use crate::session::{SessionBindings, Transport, bind_sessions};
use crate::settings::Settings;
use crate::tools::McpTools;
use crate::{health, session};

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The HTTP client for the authorization server cannot be built.
    #[error("cannot build the HTTP client")]
    HttpClient(#[from] reqwest::Error),
    /// The authorization server's metadata names another issuer (G02): a configuration error.
    #[error(
        "{0}; check OAUTH_ISSUER (it must equal the metadata's issuer byte for byte) or OAUTH_WELL_KNOWN_URL"
    )]
    Discovery(#[source] RefreshError),
}

/// A configured server: state shared by all requests, and the router over it.
#[derive(Debug, Clone)]
pub struct App {
    settings: Arc<Settings>,
    auth: Arc<Authenticator>,
    keys: Arc<KeySource>,
    sessions: Arc<SessionBindings>,
    guard: Arc<GuardPolicy>,
    metadata: Arc<Metadata>,
    shutdown: CancellationToken,
}

impl App {
    /// Builds the server and makes a first attempt to load the keys. A metadata document naming
    /// another issuer stops the start; an unreachable authorization server does not: readiness
    /// stays false and a background task keeps trying (started by [`App::serve`]).
    ///
    /// # Errors
    /// [`StartError`] when the HTTP client cannot be built or discovery finds another issuer.
    pub async fn start(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let fetcher = Fetcher::new(settings.keys.timeout, settings.keys.max_bytes)?;
        let authorization_server = Arc::new(AuthorizationServer::new(
            settings.issuer().clone(),
            settings.authorization_server.clone(),
            fetcher,
            Arc::clone(&clock),
        ));
        let keys = Arc::new(KeySource::new(
            Arc::clone(&authorization_server),
            settings.keys,
            Arc::clone(&clock),
        ));
        if let Err(error) = keys.refresh().await
            && error.is_permanent()
        {
            return Err(StartError::Discovery(error));
        }
        let challenger = Challenger::new(
            settings.resource.url.metadata_url(),
            settings.scopes.basic().to_vec(),
        );
        let metadata = Arc::new(Metadata::new(
            &settings.resource,
            settings.scopes.all_scopes(),
            settings.as_metadata,
            authorization_server,
        ));
        let auth = Arc::new(Authenticator::new(
            settings.validation.clone(),
            Arc::clone(&keys),
            clock,
            challenger,
            settings.scopes.clone(),
        ));
        Ok(Self {
            guard: Arc::new(settings.guard.clone()),
            settings: Arc::new(settings),
            auth,
            keys,
            sessions: Arc::new(SessionBindings::default()),
            metadata,
            shutdown: CancellationToken::new(),
        })
    }

    /// Keeps trying to load the keys until it succeeds (1 s, doubling to 30 s between tries), so
    /// an authorization server that was down at start is picked up without a restart.
    fn spawn_key_loader(&self) -> tokio::task::JoinHandle<()> {
        let keys = Arc::clone(&self.keys);
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
                        tracing::error!(
                            error = &error as &dyn std::error::Error,
                            "authorization server metadata names another issuer; tokens will be refused"
                        );
                        return;
                    }
                    Err(_) => backoff = (backoff * 2).min(Duration::from_secs(30)),
                }
            }
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the authorization server's keys are loaded and not past their stale window: what
    /// `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        self.keys.is_ready()
    }

    /// The routes and layers.
    pub fn router(&self) -> Router {
        let public = Router::new()
            .route(
                &metadata_path(self.settings.resource.url.path()),
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
            .with_state(Arc::clone(&self.keys));
        Router::new()
            .merge(self.mcp_router())
            .merge(public)
            .merge(forwarding)
            .merge(health)
            .layer(
                ServiceBuilder::new()
                    .layer(from_fn_with_state(self.settings.limits, limit_headers))
                    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                    .layer(TraceLayer::new_for_http().make_span_with(request_span))
                    .layer(PropagateRequestIdLayer::x_request_id()),
            )
    }

    fn mcp_router(&self) -> Router {
        let path = self.settings.resource.url.path().to_owned();
        let max_body_bytes = self.settings.limits.max_body_bytes;
        let rmcp_config = StreamableHttpServerConfig::default()
            // Host and Origin are decided by our guard, before authentication.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(max_body_bytes)
            .with_cancellation_token(self.shutdown.child_token());
        let (mcp, bind) = if self.settings.transport == Transport::Stateless {
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
        // Router::layer wraps what is already there, so the innermost layer comes first: read
        // from the bottom up for the order a request meets them.
        let mut mcp = mcp.layer(from_fn_with_state(Arc::clone(&self.auth), require_scopes));
        if bind {
            mcp = mcp.layer(from_fn_with_state(
                Arc::clone(&self.sessions),
                bind_sessions,
            ));
        }
        mcp.layer(RequestBodyLimitLayer::new(max_body_bytes))
            .layer(from_fn_with_state(Arc::clone(&self.auth), require_bearer))
            .layer(from_fn_with_state(
                Arc::clone(&self.guard),
                check_origin_and_host,
            ))
            .layer(self.cors())
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
