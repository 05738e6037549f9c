//! What an operator watches: Prometheus metrics (a registry per server, served on its own
//! listener at `MCP_METRICS_ADDR`) and the audit trail (one event per authorization decision on
//! `/mcp`, under the `mcp_oauth_server::audit` target).
//!
//! Every label has a bounded set of values: routes are the router's patterns, reasons are the
//! fixed refusal kinds, tools are the ones this server has (anything else is `other`), issuers are
//! the configured ones. A subject, a client id or a token never becomes a label.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower_http::classify::ServerErrorsFailureClass;

/// The target of audit events, for routing them apart from the other logs.
pub const AUDIT_TARGET: &str = "mcp_oauth_server::audit";

/// How many lines the process's log writer dropped (set once, where logging is set up).
static DROPPED_LOG_LINES: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Reports `counter`, the log writer's dropped lines, in every server's `/metrics`.
pub(crate) fn count_dropped_log_lines(counter: tracing_appender::non_blocking::ErrorCounter) {
    let _ = DROPPED_LOG_LINES.set(counter);
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FetchLabels {
    issuer: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UseLabel {
    purpose: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuerLabel {
    issuer: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily<RouteLabel>,
    auth: Family<AuthLabels, Counter>,
    scope_denials: Family<ToolLabel, Counter>,
    jwks_fetches: Family<FetchLabels, Counter>,
    jwks_age: Family<IssuerLabel, Gauge>,
    sessions: Gauge,
    rate_limited: Counter,
    log_lines_dropped: Counter,
    upstream: Family<OutcomeLabel, Counter>,
    shared_state_failures: Family<UseLabel, Counter>,
    shared_state_up: Gauge,
    /// How many dropped log lines `log_lines_dropped` has counted so far.
    log_lines_counted: std::sync::atomic::AtomicU64,
    /// The tools this server has: a denial for any other name is counted as `other`.
    tools: Vec<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~13 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 19))
}

impl Metrics {
    /// A fresh registry with every series declared; `tools` bounds the `tool` label.
    pub(crate) fn new(tools: impl IntoIterator<Item = String>) -> Self {
        let mut registry = Registry::with_prefix("mcp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route pattern and status",
            requests.clone(),
        );
        let latency: HistogramFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route pattern",
            latency.clone(),
        );
        let auth = Family::<AuthLabels, Counter>::default();
        registry.register(
            "auth_decisions",
            "Bearer authentication outcomes on /mcp: accepted (by how), refused (by reason), unavailable",
            auth.clone(),
        );
        let scope_denials = Family::<ToolLabel, Counter>::default();
        registry.register(
            "scope_denials",
            "403 insufficient_scope by tool (`-` for requests that are not a tool call)",
            scope_denials.clone(),
        );
        let jwks_fetches = Family::<FetchLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "JWKS fetches by issuer and outcome",
            jwks_fetches.clone(),
        );
        let jwks_age = Family::<IssuerLabel, Gauge>::default();
        registry.register(
            "jwks_age_seconds",
            "Seconds since the issuer's keys were last fetched successfully (-1: never)",
            jwks_age.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Live MCP sessions", sessions.clone());
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited",
            "Requests refused 429 by the per-principal rate limit",
            rate_limited.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines (audit events included) dropped because the log writer's queue was full",
            log_lines_dropped.clone(),
        );
        let upstream = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "upstream_answers",
            "Gateway mode: requests forwarded to the upstream, by outcome (answered, unreachable, timeout, invalid, refused)",
            upstream.clone(),
        );
        let shared_state_failures = Family::<UseLabel, Counter>::default();
        registry.register(
            "shared_state_failures",
            "Calls to the shared state store (MCP_STATE_URL) that failed or timed out, by purpose (rate_limit, dpop_replay, revocations, introspection); each met its configured fallback",
            shared_state_failures.clone(),
        );
        let shared_state_up = Gauge::default();
        registry.register(
            "shared_state_up",
            "1 while the shared state store answered the last call, 0 after a failure; -1 without a store",
            shared_state_up.clone(),
        );
        shared_state_up.set(-1);
        Self {
            upstream,
            shared_state_failures,
            shared_state_up,
            registry,
            requests,
            latency,
            auth,
            scope_denials,
            jwks_fetches,
            jwks_age,
            sessions,
            rate_limited,
            log_lines_dropped,
            log_lines_counted: std::sync::atomic::AtomicU64::new(0),
            tools: tools.into_iter().collect(),
        }
    }

    /// An authentication outcome.
    pub(crate) fn authenticated(&self, how: &'static str) {
        self.auth
            .get_or_create(&AuthLabels {
                outcome: "accepted",
                reason: how,
            })
            .inc();
    }

    /// A refusal (or a failure to judge) by the bearer layer: its outcome and reason, as
    /// `AuthError::refusal` names them.
    pub(crate) fn refused(&self, (outcome, reason): (&'static str, &'static str)) {
        self.auth
            .get_or_create(&AuthLabels { outcome, reason })
            .inc();
    }

    /// A 403 for missing scopes on `tool` (`None`: not a tool call).
    pub(crate) fn scope_denied(&self, tool: Option<&str>) {
        let tool = match tool {
            None => "-".to_owned(),
            Some(name) if self.tools.iter().any(|t| t == name) => name.to_owned(),
            Some(_) => "other".to_owned(),
        };
        self.scope_denials.get_or_create(&ToolLabel { tool }).inc();
    }

    /// A JWKS fetch for `issuer`.
    pub(crate) fn jwks_fetched(&self, issuer: &str, ok: bool) {
        self.jwks_fetches
            .get_or_create(&FetchLabels {
                issuer: issuer.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
    }

    /// A gateway's request to its upstream, by outcome.
    pub(crate) fn upstream_answered(&self, outcome: &'static str) {
        self.upstream.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// A call to the shared state store for `purpose`: whether it answered.
    pub(crate) fn shared_state(&self, purpose: &'static str, answered: bool) {
        self.shared_state_up.set(i64::from(answered));
        if !answered {
            self.shared_state_failures
                .get_or_create(&UseLabel { purpose })
                .inc();
        }
    }

    /// A store is configured: down until it first answers.
    pub(crate) fn shared_state_expected(&self) {
        self.shared_state_up.set(0);
    }

    /// Whether the shared state store answered its last call (`None` without a store).
    pub(crate) fn shared_state_is_up(&self) -> Option<bool> {
        match self.shared_state_up.get() {
            -1 => None,
            up => Some(up == 1),
        }
    }

    /// A 429.
    pub(crate) fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    /// The text exposition, after setting the gauges read at scrape time: `jwks_age` per issuer
    /// (seconds, or -1 when never fetched) and the live sessions.
    pub(crate) fn render(&self, jwks_ages: &[(String, Option<i64>)], sessions: usize) -> String {
        for (issuer, age) in jwks_ages {
            self.jwks_age
                .get_or_create(&IssuerLabel {
                    issuer: issuer.clone(),
                })
                .set(age.unwrap_or(-1));
        }
        self.sessions
            .set(i64::try_from(sessions).unwrap_or(i64::MAX));
        if let Some(dropped) = DROPPED_LOG_LINES.get() {
            let dropped = u64::try_from(dropped.dropped_lines()).unwrap_or(u64::MAX);
            let counted = self
                .log_lines_counted
                .fetch_max(dropped, std::sync::atomic::Ordering::Relaxed);
            self.log_lines_dropped
                .inc_by(dropped.saturating_sub(counted));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The request id the edge layer set (`x-request-id`), or `-`. Always the server's own: the
/// client's header is taken off the request by [`take_client_request_id`] before the id is set.
pub(crate) fn request_id(headers: &HeaderMap) -> &str {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The `x-request-id` a client sent, kept only to be logged beside the server's own id (as
/// `client_request_id`): the client chooses it, so it never becomes the request id, which would
/// let a client make its requests look like another's in the logs. At most
/// [`MAX_CLIENT_REQUEST_ID_BYTES`], and logged as a string field, so it is escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientRequestId(String);

impl ClientRequestId {
    /// The header value: lossily decoded, cut to the bound on a character boundary.
    fn from_header(value: &HeaderValue) -> Self {
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut end = text.len().min(MAX_CLIENT_REQUEST_ID_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(text.get(..end).unwrap_or_default().to_owned())
    }

    /// The id, for a log field (recorded as a `&str`, which both log formats escape).
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Middleware, in front of the layer that sets the request id: takes every `x-request-id` the
/// client sent off the request and keeps the first as a [`ClientRequestId`] extension, so the id
/// set next (and returned in the response's `x-request-id`) is always generated here.
pub(crate) async fn take_client_request_id(mut request: Request, next: Next) -> Response {
    if let Some(value) = request.headers_mut().remove(REQUEST_ID_HEADER) {
        let client = ClientRequestId::from_header(&value);
        request.extensions_mut().insert(client);
    }
    next.run(request).await
}

/// The request span's verdict on a 5xx: `error`, except 503, which is logged at `debug`. A 503 is
/// a state this server is in (keys not loaded, introspection down, readiness not reached), and
/// that state is logged once when it begins; orchestrators probe `/readyz` every few seconds, and
/// each probe of a server that is not ready must not page anyone.
pub(crate) fn response_failed(
    failure: ServerErrorsFailureClass,
    latency: Duration,
    _span: &tracing::Span,
) {
    let latency_ms = latency.as_millis();
    match failure {
        ServerErrorsFailureClass::StatusCode(status)
            if status == StatusCode::SERVICE_UNAVAILABLE =>
        {
            tracing::debug!(status = 503, latency_ms, "service unavailable");
        }
        failure => tracing::error!(classification = %failure, latency_ms, "response failed"),
    }
}

/// Middleware: counts every request by route pattern and status, and times it.
pub(crate) async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .latency
        .get_or_create(&RouteLabel {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// `GET /metrics`, in the Prometheus text format.
pub(crate) fn exposition(text: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// The longest client `x-request-id` kept for the logs: enough for any id scheme (a UUID is 36
/// bytes, a W3C traceparent 55), small enough that a client cannot fill log lines with it.
const MAX_CLIENT_REQUEST_ID_BYTES: usize = 128;

/// The header carrying the request id: the server's own in requests past the edge layers and in
/// every response.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";
