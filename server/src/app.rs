//! The one place routes and layers are assembled around the user's handler, and
//! [`Server::serve`] runs them.
//!
//! A request to `/mcp` walks one line of layers: CORS (answers preflights) → Origin/Host guard
//! (403) → bearer authentication (401/400) → rate limit (429) → request timeout (408) → body
//! limit (413) → scope gate (403) → session binding (404, 503) → rmcp. Metadata, AS forwarding and
//! health routes stand beside it, outside authentication.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::extract::Request;
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::ServerHandler;
use rmcp::transport::streamable_http_server::StreamableHttpServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::admission::{Admission, admit, authenticate, authorize};
use crate::auth::challenge::{Challenger, DpopChallenge};
use crate::auth::fetch::Fetcher;
use crate::auth::issuers::Verifiers;
use crate::auth::keys::{KeySources, RefreshError};
use crate::auth::policy::AlgorithmAllowList;
use crate::auth::scopes::ToolLookup;
use crate::auth::token_cache::TokenCache;
use crate::auth::{Authenticator, DpopCheck, SharedChecks};
use crate::clock::Clock;
use crate::edge::limit_headers;
use crate::gateway::{CallerIdentity, Forwarder};
use crate::guard::GuardPolicy;
use crate::metadata::{self, Metadata};
use crate::rate_limit::RateLimiter;
use crate::resource::metadata_path;
use crate::session::{EndsSessions, SESSION_HEADER, SessionLimits, Sessions, Transport};
use crate::settings::Settings;
use crate::shared_state::redis_store::RedisStore;
use crate::shared_state::revocations::RevocationList;
use crate::shared_state::{SharedStateSettings, SharedStore};
use crate::telemetry::{
    ClientRequestId, Metrics, count_requests, exposition, request_id, response_failed,
    take_client_request_id,
};
use crate::tools::declared_scopes;
use crate::{health, serve};

mod background;
mod catalog;
mod handler;
mod scoped;
mod trust;
#[cfg(feature = "bench-unchecked")]
mod unchecked;

pub use catalog::CatalogError;
use handler::{Factory, HandlerFactory, McpService};
use trust::issuer_verifier;

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
    /// The handler's tools could not be listed.
    #[error("cannot read the handler's tools: {0}")]
    Tools(#[from] CatalogError),
    /// A gateway was asked for, but the settings name no upstream.
    #[error("gateway mode needs an upstream: set MCP_UPSTREAM_URL (Settings::upstream)")]
    NoUpstream,
    /// Identity tokens signed for the upstream name the caller by `sub` under the gateway's own
    /// `iss`: with several trusted issuers, two of their users could share a `sub`.
    #[error(
        "MCP_UPSTREAM_IDENTITY=jwt names callers by sub alone, and several issuers are trusted: use headers (X-MCP-Issuer beside X-MCP-Subject)"
    )]
    IdentityAcrossIssuers,
    /// The settings name an upstream, and the builder was given tools to serve instead.
    #[error(
        "the settings name an upstream (MCP_UPSTREAM_URL) but the server was given its own tools: build it with `gateway()`, or unset the upstream"
    )]
    UpstreamAndTools,
    /// The shared state store's URL cannot be used.
    #[error("MCP_STATE_URL: {0}")]
    SharedState(String),
}

/// An OAuth-protected MCP server over an rmcp handler: every check in front of the handler's
/// tools, the discovery documents beside them, and the tasks that keep keys loaded.
///
/// Built with [`Server::builder`]; then [`Server::serve`] runs it on a listener, or
/// [`Server::router`] hands its routes to an axum app of yours (start [`Server::spawn_background`]
/// then, and stop it with [`Server::shutdown`]).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mcp_oauth_server::{Server, Startup, SystemClock, tools::DefaultTools};
///
/// // The binary's settings and a bound listener (or build `Settings` yourself).
/// let Startup { settings, listener } = Startup::read().await?;
/// Server::builder(settings)
///     .handler(DefaultTools::new)
///     .build(Arc::new(SystemClock))
///     .await?
///     .serve(listener, tokio_graceful::default_signal())
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Server {
    settings: Arc<Settings>,
    serving: Serving,
    admission: Arc<Admission>,
    auth: Arc<Authenticator>,
    keys: Arc<KeySources>,
    sessions: Option<Arc<Sessions>>,
    rate_limiter: Option<Arc<RateLimiter>>,
    guard: Arc<GuardPolicy>,
    metadata: Arc<Metadata>,
    metrics: Arc<Metrics>,
    /// The store replicas share, and the revocations read from it.
    shared: Option<SharedState>,
    shutdown: CancellationToken,
    /// Whether the background tasks were started.
    background: Arc<std::sync::atomic::AtomicBool>,
}

/// A server's link to the state replicas share.
#[derive(Clone)]
struct SharedState {
    store: Arc<dyn SharedStore>,
    revocations: Arc<RevocationList>,
    settings: SharedStateSettings,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Server")
            .field("resource", &self.settings.resource.url.as_str())
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

/// What [`Server::builder`] returns: settings, and (once [`ServerBuilder::handler`] is called)
/// the handler to protect. Without a handler there is no `build`.
#[derive(Debug)]
#[must_use = "a builder does nothing until built"]
pub struct ServerBuilder<F = NoHandler> {
    settings: Settings,
    handler: F,
}

/// A [`ServerBuilder`] still waiting for its handler.
#[derive(Debug, Clone, Copy)]
pub struct NoHandler;

/// A [`ServerBuilder`] for a gateway: requests that pass the checks go to
/// [`Settings::upstream`].
#[derive(Debug, Clone, Copy)]
pub struct Forwarding;

/// What `/mcp` serves once a request passes the checks.
#[derive(Clone)]
enum Serving {
    /// The user's tools, through rmcp.
    Tools(Arc<dyn HandlerFactory>),
    /// An upstream MCP server (gateway mode).
    Upstream(Arc<Forwarder>),
}

impl ServerBuilder<NoHandler> {
    /// Gateway mode: instead of tools of its own, the server forwards every request that passes
    /// its checks to [`Settings::upstream`], an MCP server in any language with no auth of its
    /// own (see [`crate::gateway`]). Tool scopes come from [`Settings::scopes`]
    /// (`MCP_TOOL_SCOPES`), decided from each `tools/call`'s name.
    pub fn gateway(self) -> ServerBuilder<Forwarding> {
        ServerBuilder {
            settings: self.settings,
            handler: Forwarding,
        }
    }

    /// The tools to protect: `make` returns a new rmcp handler for each MCP session (or, in
    /// stateless mode, each request), as rmcp's `StreamableHttpService` asks, and rmcp calls it
    /// for some requests outside sessions too: keep it cheap (build your `ToolRouter` once and
    /// clone it). Tools read their caller as a [`crate::Principal`] parameter and declare their
    /// scopes with [`crate::tools::requires_scopes`]. Each handler is wrapped so that a tool runs
    /// only for callers holding its scopes, also for tools it adds after start (it must then
    /// describe them in `get_tool`, as `#[tool_handler]` does: a tool it cannot describe is not
    /// run).
    pub fn handler<F, H>(self, make: F) -> ServerBuilder<F>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: ServerHandler,
    {
        ServerBuilder {
            settings: self.settings,
            handler: make,
        }
    }
}

impl<F, H> ServerBuilder<F>
where
    F: Fn() -> H + Send + Sync + 'static,
    H: ServerHandler,
{
    /// Builds the server: reads what the handler's tools declare, and makes a first attempt to
    /// load the keys. A metadata document naming another issuer stops the start; an unreachable
    /// authorization server does not: readiness stays false and a background task keeps trying
    /// (started by [`Server::serve`] or [`Server::spawn_background`]).
    ///
    /// # Errors
    /// [`StartError`] when the HTTP client cannot be built, discovery finds another issuer, or
    /// the handler does not list its tools in time.
    pub async fn build(self, clock: Arc<dyn Clock>) -> Result<Server, StartError> {
        if self.settings.upstream.is_some() {
            return Err(StartError::UpstreamAndTools);
        }
        let make = Arc::new(self.handler);
        let tools = catalog::list_tools(make()).await?;
        let mut settings = self.settings;
        let declared = catalog::declarations(&tools)?;
        catalog::warn_about_overrides(&settings.scopes, &declared);
        // For a tool not listed now: what a handler kept for the purpose says it declares.
        let prototype = make();
        let lookup = ToolLookup(Arc::new(move |name| {
            prototype
                .get_tool(name)
                .and_then(|tool| declared_scopes(&tool).ok())
        }));
        settings.scopes.with_declared(declared, lookup);
        let handler = Arc::new(Factory::new(make, Arc::new(settings.scopes.clone())));
        let tools = tools.iter().map(|tool| tool.name.to_string()).collect();
        Server::start(settings, Some(handler), tools, clock).await
    }
}

impl ServerBuilder<Forwarding> {
    /// Builds the gateway, as [`ServerBuilder::build`] builds a server of tools; the upstream is
    /// not called until the first request (or `/readyz`).
    ///
    /// # Errors
    /// [`StartError::NoUpstream`] when [`Settings::upstream`] is `None`, and as
    /// [`ServerBuilder::build`] otherwise.
    pub async fn build(self, clock: Arc<dyn Clock>) -> Result<Server, StartError> {
        let Some(upstream) = &self.settings.upstream else {
            return Err(StartError::NoUpstream);
        };
        if matches!(upstream.identity, CallerIdentity::SignedJwt(_))
            && self.settings.issuers.iter().nth(1).is_some()
        {
            return Err(StartError::IdentityAcrossIssuers);
        }
        // The tools the gateway knows of are the ones its configuration names scopes for.
        let tools = self
            .settings
            .scopes
            .configured()
            .map(|(tool, _)| tool.clone())
            .collect();
        Server::start(self.settings, None, tools, clock).await
    }
}

impl Server {
    /// Starts building a server with `settings`; give it a handler next.
    pub fn builder(settings: Settings) -> ServerBuilder<NoHandler> {
        ServerBuilder {
            settings,
            handler: NoHandler,
        }
    }

    /// Starts a server of `handler`'s tools, or a gateway to `settings.upstream` when there is
    /// no handler. `tools` bound the metrics' `tool` label.
    async fn start(
        settings: Settings,
        handler: Option<Arc<dyn HandlerFactory>>,
        tools: Vec<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let fetcher = Fetcher::new(settings.keys.timeout, settings.keys.max_bytes)?;
        let metrics = Arc::new(Metrics::new(tools));
        let shared = match &settings.shared_state {
            None => None,
            Some(shared) => {
                let store = RedisStore::new(shared)
                    .map_err(|error| StartError::SharedState(error.to_string()))?;
                metrics.shared_state_expected();
                Some(SharedState {
                    store: Arc::new(store),
                    revocations: Arc::new(RevocationList::default()),
                    settings: shared.clone(),
                    clock: Arc::clone(&clock),
                })
            }
        };
        let mut sources = Vec::new();
        let store = shared.as_ref().map(|state| &state.store);
        let first = issuer_verifier(
            settings.issuers.primary(),
            &settings,
            &fetcher,
            &clock,
            &metrics,
            &mut sources,
            store,
        )
        .await?;
        let mut more = Vec::new();
        for trusted in settings.issuers.iter().skip(1) {
            more.push(
                issuer_verifier(
                    trusted,
                    &settings,
                    &fetcher,
                    &clock,
                    &metrics,
                    &mut sources,
                    store,
                )
                .await?,
            );
        }
        let verifiers = Verifiers::new(first, more);
        // The 401 names what to ask for first (B10): the basic scopes, the least that serves; the
        // 403 step-up names a tool's own when it is called (H05). With no basic scopes
        // configured, every scope the tools declare: what a client would take from
        // `scopes_supported` anyway, said in the challenge.
        // DPoP proofs are judged with the allow-list every token is (asymmetric algorithms only).
        let proof_algorithms = AlgorithmAllowList::default();
        let dpop = DpopCheck::new(&settings.dpop, &settings.resource, proof_algorithms.clone());
        let challenger = Challenger::new(&settings.resource, settings.scopes.first_request())
            .with_dpop(dpop.as_ref().map(|check| DpopChallenge {
                algs: proof_algorithms.names().join(" "),
                required: check.required(),
            }));
        let metadata = Arc::new(Metadata::new(
            &settings.resource,
            settings.scopes.all_scopes(),
            settings.as_metadata,
            &verifiers,
            dpop.as_ref()
                .map(|check| (proof_algorithms.names(), check.required())),
        ));
        let auth = Arc::new(
            Authenticator::new(
                verifiers,
                TokenCache::new(settings.token_cache),
                Arc::clone(&clock),
                challenger,
                settings.scopes.clone(),
                Arc::clone(&metrics),
                dpop,
            )
            .with_shared_state(shared.as_ref().map(|state| SharedChecks {
                store: Arc::clone(&state.store),
                replay_on_failure: state.settings.dpop_replay_on_failure,
                revocations: Arc::clone(&state.revocations),
            })),
        );
        let keys = Arc::new(KeySources::new(sources));
        let (serving, sessions) = match (handler, &settings.upstream) {
            (Some(handler), _) => {
                let sessions = match &settings.transport {
                    Transport::Sessions(limits) => Some(Arc::new(Sessions::new(limits))),
                    Transport::Stateless => None,
                };
                (Serving::Tools(handler), sessions)
            }
            (None, Some(upstream)) => {
                let forwarder = Arc::new(Forwarder::new(
                    upstream.clone(),
                    Arc::clone(&metrics),
                    Arc::clone(&clock),
                    settings.resource.url.origin(),
                )?);
                // Whatever this server's own transport, the upstream may open sessions: each
                // one is bound to the principal that opened it, with the configured caps.
                let limits = match &settings.transport {
                    Transport::Sessions(limits) => *limits,
                    Transport::Stateless => SessionLimits::default(),
                };
                let sessions =
                    Sessions::at_upstream(&limits, Arc::clone(&forwarder) as Arc<dyn EndsSessions>);
                (Serving::Upstream(forwarder), Some(Arc::new(sessions)))
            }
            (None, None) => return Err(StartError::NoUpstream),
        };
        let rate_limiter = settings.rate_limit.per_minute.map(|per_minute| {
            let shared_budget = shared.as_ref().map(|state| {
                (
                    Arc::clone(&state.store),
                    state.settings.rate_limit_on_failure,
                )
            });
            Arc::new(RateLimiter::new(
                per_minute,
                Arc::clone(&metrics),
                shared_budget,
            ))
        });
        let guard = Arc::new(settings.guard.clone());
        let admission = Arc::new(Admission {
            guard: Arc::clone(&guard),
            auth: Arc::clone(&auth),
            rate_limiter: rate_limiter.clone(),
            sessions: sessions.clone(),
        });
        Ok(Self {
            guard,
            admission,
            settings: Arc::new(settings),
            serving,
            auth,
            keys,
            sessions,
            rate_limiter,
            metadata,
            metrics,
            shared,
            shutdown: CancellationToken::new(),
            background: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the authorization server's keys are loaded and not past their stale window (and,
    /// with a shared state store, the revocations in force read once): what `/readyz` answers.
    pub fn is_ready(&self) -> bool {
        self.keys.is_ready()
            && self
                .shared
                .as_ref()
                .is_none_or(|state| state.revocations.caught_up())
    }

    /// How many MCP sessions are open (0 in stateless mode).
    pub fn open_sessions(&self) -> usize {
        self.sessions.as_ref().map_or(0, |sessions| sessions.len())
    }

    /// Every route, each with its layers: the MCP endpoint at the resource URL's path with every
    /// check in front of the handler, the RFC 9728 metadata at the origin's root (path-suffixed
    /// and plain), authorization-server metadata forwarding, `/healthz` and `/readyz`.
    ///
    /// To add it to an axum app of yours, `merge` it (`Router::new().route("/", ...).merge(
    /// server.router())`) and serve with `into_make_service_with_connect_info::<SocketAddr>()`
    /// (the peer address bounds authorization-server calls per client). To serve MCP at another
    /// path, set the resource URL (`MCP_RESOURCE_URL=https://host/api/mcp`) rather than
    /// `Router::nest`: the metadata must stay at the origin's root, where clients look for it.
    /// Served this way, start [`Server::spawn_background`] and call [`Server::shutdown`] when
    /// your server stops.
    pub fn router(&self) -> Router {
        let resource_path = self.settings.resource.url.path();
        // The discovery documents: public, and readable from any origin.
        let mut discovery = Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(metadata::protected_resource),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(metadata::authorization_server),
            );
        let path_form = metadata_path(resource_path.trim_end_matches('/'));
        if path_form != "/.well-known/oauth-protected-resource" {
            discovery = discovery.route(&path_form, get(metadata::protected_resource));
        }
        let discovery = discovery.with_state(Arc::clone(&self.metadata)).layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET])
                // Browser-based MCP clients send it on discovery: without it in the preflight
                // answer, the browser blocks the request (the SDK then retries without it).
                .allow_headers([HeaderName::from_static("mcp-protocol-version")]),
        );
        let mut router = Router::new()
            .merge(self.mcp_router())
            .merge(discovery)
            .merge(self.health_router());
        if let Some(upstream) = &self.settings.upstream
            && let CallerIdentity::SignedJwt(signer) = &upstream.identity
        {
            // Public, as any issuer's key set is: the upstream verifies identity tokens with it.
            let jwks = Arc::new(signer.jwks());
            router = router.route(
                "/.well-known/jwks.json",
                get(move || {
                    let jwks = Arc::clone(&jwks);
                    async move { axum::Json(jwks.as_ref().clone()) }
                }),
            );
        }
        self.with_edge_layers(router)
    }

    /// What every route gets, outermost first: the header-size limit (431), a request id of our
    /// own (the client's `x-request-id` is only logged beside it), and the request span.
    fn with_edge_layers(&self, router: Router) -> Router {
        router.layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(self.settings.limits, limit_headers))
                .layer(from_fn(take_client_request_id))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_failure(response_failed),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(from_fn_with_state(
                    Arc::clone(&self.metrics),
                    count_requests,
                )),
        )
    }

    /// The Prometheus text exposition of this server's metrics, as `/metrics` serves it.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(&self.keys.ages(), self.open_sessions())
    }

    /// `GET /metrics`: what `MCP_METRICS_ADDR` serves (on its own listener, so the MCP port
    /// never exposes it).
    pub fn metrics_router(&self) -> Router {
        let app = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let app = app.clone();
                async move { exposition(app.metrics_text()) }
            }),
        )
    }

    fn mcp_router(&self) -> Router {
        self.mcp_router_with(Checks::All)
    }

    fn mcp_router_with(&self, checks: Checks) -> Router {
        let rmcp_config = StreamableHttpServerConfig::default()
            // Host and Origin are decided by our guard, before authentication.
            .disable_allowed_hosts()
            .disable_allowed_origins()
            .with_max_request_body_bytes(self.settings.limits.max_body_bytes)
            .with_cancellation_token(self.shutdown.child_token());
        let service = match &self.serving {
            Serving::Tools(handler) => {
                let sessions = self
                    .sessions
                    .as_ref()
                    .and_then(|sessions| sessions.manager());
                handler.service(sessions, rmcp_config)
            }
            Serving::Upstream(forwarder) => {
                McpService::forwarding(Arc::clone(forwarder), self.sessions.clone())
            }
        };
        self.mount(self.checked(service, checks))
    }

    /// The request checks in front of rmcp, outermost first. One `ServiceBuilder` stack
    /// mounted once: every `Router::layer` would add a boxed route, and a route clones all it
    /// wraps on every request.
    fn checked<S>(
        &self,
        mcp: S,
        checks: Checks,
    ) -> BoxCloneSyncService<Request, Response, Infallible>
    where
        S: tower::Service<Request, Response = Response, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let limits = self.settings.limits;
        // The time to a response (408) and the body size (413): checked or not, every request.
        let bounded = ServiceBuilder::new()
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.request_timeout,
            ))
            .map_response(IntoResponse::into_response)
            .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
            .map_request(|request: Request<_>| request.map(Body::new));
        #[cfg(feature = "bench-unchecked")]
        if checks == Checks::None {
            return BoxCloneSyncService::new(
                ServiceBuilder::new()
                    .layer(axum::Extension(unchecked::principal(&self.settings)))
                    .layer(bounded)
                    .service(mcp),
            );
        }
        let _ = checks;
        BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(self.cors())
                .layer(from_fn_with_state(Arc::clone(&self.admission), admit))
                .layer(bounded)
                .layer(from_fn_with_state(Arc::clone(&self.admission), authorize))
                .service(mcp),
        )
    }

    /// `/healthz` and `/readyz`.
    fn health_router(&self) -> Router {
        Router::new()
            .route("/healthz", get(health::healthz))
            .route("/readyz", get(health::readyz))
            .with_state(health::Readiness {
                keys: Arc::clone(&self.keys),
                upstream: match &self.serving {
                    Serving::Upstream(forwarder) => Some(Arc::clone(forwarder)),
                    Serving::Tools(_) => None,
                },
                metrics: Arc::clone(&self.metrics),
                revocations: self
                    .shared
                    .as_ref()
                    .map(|state| Arc::clone(&state.revocations)),
            })
    }

    /// Puts `routes` behind this server's bearer authentication alone: the same trusted issuers,
    /// token checks, caches and challenges, the caller's [`crate::Principal`] in each request's
    /// extensions. Not the rest of what guards `/mcp`: no basic-scope check, no Host/Origin guard,
    /// no rate limit and no body limit; add what your routes need.
    pub fn protect(&self, routes: Router) -> Router {
        routes.layer(from_fn_with_state(Arc::clone(&self.auth), authenticate))
    }

    /// The MCP service at the resource's path; at the origin root when the resource has no path.
    fn mount<S>(&self, service: S) -> Router
    where
        S: tower::Service<
                axum::extract::Request,
                Error = std::convert::Infallible,
                Response: axum::response::IntoResponse,
                Future: Send,
            > + Clone
            + Send
            + Sync
            + 'static,
    {
        match self.settings.resource.url.path() {
            "/" | "" => Router::new().route_service("/", service),
            path => Router::new().nest_service(path, service),
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
                SESSION_HEADER.clone(),
                HeaderName::from_static("mcp-protocol-version"),
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("mcp-method"),
                HeaderName::from_static("mcp-name"),
                // RFC 9449: a browser client sends its proof, and reads the nonce to use next.
                HeaderName::from_static("dpop"),
            ])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                header::RETRY_AFTER,
                SESSION_HEADER.clone(),
                HeaderName::from_static("mcp-protocol-version"),
                HeaderName::from_static("dpop-nonce"),
            ])
            .max_age(Duration::from_secs(600))
    }

    /// Serves on `listener` until `shutdown` completes, then ends MCP sessions and drains open
    /// connections for a bounded time. The background tasks ([`Server::spawn_background`]) run
    /// while it serves, and `/metrics` on its own listener when configured.
    ///
    /// # Errors
    /// When the metrics listener cannot be bound.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        self.serve_router(listener, router, shutdown).await
    }

    async fn serve_router(
        self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if let Some(addr) = self.settings.metrics_addr {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(address = %listener.local_addr()?, "metrics listening (GET /metrics)");
            let router = self.metrics_router();
            let stop = self.shutdown.clone();
            let limits = self.settings.limits;
            tokio::spawn(async move {
                serve::serve(listener, router, limits, stop.cancelled_owned(), || {}).await;
            });
        }
        self.spawn_background();
        let server = self.clone();
        serve::serve(
            listener,
            router,
            self.settings.limits,
            shutdown,
            move || server.shutdown(),
        )
        .await;
        Ok(())
    }

    /// Serves `app`, an axum router of yours with [`Server::router`] merged in, as
    /// [`Server::serve`] serves the server's own: the same accept loop (connection cap,
    /// header-read timeout, idle connections closed, bounded drain), `/metrics` when configured,
    /// the background tasks, and the sessions ended at `shutdown`.
    ///
    /// # Errors
    /// When the metrics listener cannot be bound.
    pub async fn serve_app(
        self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.serve_router(listener, app, shutdown).await
    }

    /// Starts the tasks that run beside requests: loading keys the authorization server did not
    /// give at start (so it is picked up without a restart), and forgetting idle rate-limit state.
    /// [`Server::serve`] starts them itself; call this when you serve [`Server::router`] yourself.
    /// They run until [`Server::shutdown`]; a second call starts nothing more. Call it inside a
    /// Tokio runtime.
    pub fn spawn_background(&self) {
        if self
            .background
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        self.spawn_key_loaders();
        self.spawn_rate_limit_pruner();
        self.spawn_revocation_follower();
    }

    /// Ends every MCP session and stops the background tasks: call it when the server serving
    /// [`Server::router`] stops ([`Server::serve`] does it for you). It is final, for every clone:
    /// requests after it are still checked, but find no session. Dropping the `Server` does not
    /// stop the background tasks; this does.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

fn request_span<B>(request: &Request<B>) -> tracing::Span {
    // The matched route, never the raw URI: query strings can carry codes and tokens.
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = request_id(request.headers());
    let client_id = request
        .extensions()
        .get::<ClientRequestId>()
        .map(ClientRequestId::as_str);
    // Recorded as `&str`, never with `%`: both log formats escape a string field, so a value a
    // client chose cannot break a log line (the id is ours, but the method can be any token).
    tracing::info_span!(
        "request",
        method = request.method().as_str(),
        path,
        request_id = id,
        client_request_id = client_id
    )
}

/// Which of the request checks `/mcp` runs: all of them, always, except in the benchmark build
/// that measures their cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checks {
    All,
    #[cfg(feature = "bench-unchecked")]
    None,
}
