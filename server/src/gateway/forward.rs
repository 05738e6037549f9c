//! The forwarding itself: what goes to the upstream (the MCP headers, the body, who the caller
//! is), what comes back (its answer, streamed, without hop-by-hop headers), and what a client is
//! told when the upstream fails (503 unreachable, 504 slow, 502 anything it should not answer).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use futures_util::StreamExt as _;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rmcp::transport::streamable_http_server::SessionId;

use super::{CallerIdentity, IDENTITY_HEADERS, Upstream, scope_list};
use crate::auth::{Principal, no_principal_attached};
use crate::clock::Clock;
use crate::jsonrpc::{Envelope, ErrorCode, error_response};
use crate::session::{EndsSessions, SESSION_HEADER, Sessions};
use crate::telemetry::{AUDIT_TARGET, Metrics, request_id};

/// The upstream and the one HTTP client that reaches it.
#[derive(Debug)]
pub(crate) struct Forwarder {
    client: reqwest::Client,
    upstream: Upstream,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    /// The `iss` of the identity tokens it signs.
    issuer: String,
    /// The last readiness probe: when, and whether the upstream answered. Held while a probe
    /// runs, so concurrent `/readyz` requests wait for one probe instead of each sending one.
    last_probe: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

/// How long a readiness probe's answer stands: `/readyz` needs no authentication, so it must not
/// become a way to send the upstream one request per request.
const PROBE_FOR: Duration = Duration::from_secs(2);

impl Forwarder {
    /// A client for `upstream`: no redirects followed (a redirect would name another endpoint),
    /// no proxy from the environment, connecting within the upstream's timeout.
    /// `issuer` names the gateway in the identity tokens it signs (its origin); `clock` dates them.
    pub(crate) fn new(
        upstream: Upstream,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        issuer: String,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(upstream.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            client,
            upstream,
            metrics,
            clock,
            issuer,
            last_probe: tokio::sync::Mutex::new(None),
        })
    }

    /// Whether the upstream answers at all (any HTTP status): an MCP `GET` with no session,
    /// within a second; at most one every two seconds, whatever asks.
    pub(crate) async fn probe(&self) -> bool {
        let mut last = self.last_probe.lock().await;
        if let Some((at, answered)) = *last
            && at.elapsed() < PROBE_FOR
        {
            return answered;
        }
        let probe = self
            .client
            .get(self.upstream.url().clone())
            .header(header::ACCEPT, "text/event-stream")
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        *last = Some((std::time::Instant::now(), probe.is_ok()));
        probe.is_ok()
    }

    /// Forwards a request that passed every check, and passes the answer back.
    pub(crate) async fn forward(&self, sessions: Option<&Sessions>, request: Request) -> Response {
        let Some(principal) = request.extensions().get::<Principal>().cloned() else {
            return no_principal_attached();
        };
        let (parts, body) = request.into_parts();
        if !matches!(parts.method, Method::GET | Method::POST | Method::DELETE) {
            let mut refused = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::InvalidRequest,
                "Streamable HTTP takes GET, POST and DELETE",
            );
            refused
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return refused;
        }
        if let Some(refused) = repeated_mcp_header(&parts.headers) {
            return refused;
        }
        let identity = match &self.upstream.identity {
            CallerIdentity::Headers => Identity::Headers,
            CallerIdentity::SignedJwt(signer) => {
                let signed = signer.token_for(
                    &principal,
                    &self.issuer,
                    self.upstream.url().as_str(),
                    self.clock.now(),
                );
                match signed {
                    Ok(token) => Identity::Token(token),
                    Err(_) => {
                        return error_response(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            ErrorCode::UpstreamFailed,
                            "the caller's identity token could not be signed",
                        );
                    }
                }
            }
        };
        let mut outgoing = self
            .client
            .request(parts.method.clone(), self.upstream.url().clone())
            .headers(forwarded_headers(&parts.headers, &principal, &identity));
        if parts.method == Method::POST {
            // Already read by the scope gate: this takes the bytes it kept, it copies nothing.
            let Ok(bytes) = to_bytes(body, usize::MAX).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
            };
            if let Some(refused) = read_otherwise_upstream(&bytes) {
                return refused;
            }
            if let Some(refused) = headers_disagree_with_body(&parts.headers, &bytes) {
                return refused;
            }
            outgoing = outgoing.body(bytes);
        }
        let session = parts
            .headers
            .get(&SESSION_HEADER)
            .and_then(|v| v.to_str().ok());
        let answer = tokio::time::timeout(self.upstream.timeout, outgoing.send()).await;
        let answer = match answer {
            Err(_elapsed) => return self.failed(&parts.headers, Failure::Timeout),
            Ok(Err(error)) if error.is_connect() => {
                return self.failed(&parts.headers, Failure::Unreachable);
            }
            Ok(Err(_)) => return self.failed(&parts.headers, Failure::Invalid),
            Ok(Ok(answer)) => answer,
        };
        let status = answer.status();
        if status.is_redirection() {
            // A redirect would send the client somewhere the gateway does not guard.
            return self.failed(&parts.headers, Failure::Invalid);
        }
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            // The gateway authenticated the caller; an upstream that wants credentials of its own
            // is misconfigured, and its challenge would send the client to the wrong place.
            return self.failed(&parts.headers, Failure::Refused);
        }
        if let (Some(sessions), Some(session)) = (sessions, session) {
            let ended = status == StatusCode::NOT_FOUND
                || (parts.method == Method::DELETE && status.is_success());
            if ended {
                sessions.forget(session);
            }
        }
        let event_stream = is_event_stream(answer.headers());
        if parts.method == Method::POST
            && status.is_success()
            && status != StatusCode::ACCEPTED
            && !event_stream
            && !is_json(answer.headers())
        {
            return self.failed(&parts.headers, Failure::Invalid);
        }
        let too_long = answer
            .content_length()
            .is_some_and(|length| length > self.upstream.max_response_bytes as u64);
        if !event_stream && too_long {
            return self.failed(&parts.headers, Failure::Invalid);
        }
        self.metrics.upstream_answered("answered");
        let mut response = Response::builder().status(status);
        if let Some(headers) = response.headers_mut() {
            copy_response_headers(answer.headers(), headers);
        }
        let body = if event_stream {
            Body::from_stream(answer.bytes_stream())
        } else {
            Body::from_stream(bounded(
                answer,
                self.upstream.max_response_bytes,
                self.upstream.timeout,
            ))
        };
        response.body(body).unwrap_or_else(|_| {
            error_response(
                StatusCode::BAD_GATEWAY,
                ErrorCode::UpstreamFailed,
                "the upstream's answer could not be passed on",
            )
        })
    }

    fn failed(&self, headers: &HeaderMap, failure: Failure) -> Response {
        self.metrics.upstream_answered(failure.outcome());
        // In the audit trail beside the decision that let the request through: what became of it.
        tracing::warn!(
            target: AUDIT_TARGET,
            request_id = request_id(headers),
            upstream = self.upstream.url().as_str(),
            outcome = failure.outcome(),
            "upstream failed"
        );
        let (status, message) = match failure {
            Failure::Unreachable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the upstream is unreachable",
            ),
            Failure::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "the upstream did not answer in time",
            ),
            Failure::Invalid => (
                StatusCode::BAD_GATEWAY,
                "the upstream's answer is not a valid MCP answer",
            ),
            Failure::Refused => (
                StatusCode::BAD_GATEWAY,
                "the upstream refused the gateway's request",
            ),
        };
        let mut response = error_response(status, ErrorCode::UpstreamFailed, message);
        if matches!(failure, Failure::Unreachable | Failure::Timeout) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

impl EndsSessions for Forwarder {
    /// A DELETE with the session's id (one the gateway let go of: evicted, or over a cap).
    fn end_session(&self, session: SessionId) -> futures_util::future::BoxFuture<'static, ()> {
        let request = HeaderValue::from_str(&session).ok().map(|id| {
            self.client
                .delete(self.upstream.url().clone())
                .header(&SESSION_HEADER, id)
                .timeout(self.upstream.timeout)
        });
        Box::pin(async move {
            let Some(request) = request else {
                return;
            };
            if request.send().await.is_err() {
                tracing::debug!("the upstream did not answer a session's DELETE");
            }
        })
    }
}

/// How an upstream failed a request.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// No connection.
    Unreachable,
    /// No answer within the timeout.
    Timeout,
    /// An answer that is not HTTP, not MCP, or too long.
    Invalid,
    /// 401 or 403: the upstream wants credentials of its own.
    Refused,
}

impl Failure {
    fn outcome(self) -> &'static str {
        match self {
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Invalid => "invalid",
            Self::Refused => "refused",
        }
    }
}

/// What the upstream is sent: the headers MCP needs (every `Mcp-*` one, content negotiation, the
/// request id and trace context), then who the caller is. Nothing else: not `Authorization`,
/// not cookies, not hop-by-hop headers, not a client's own `X-MCP-*` identity headers.
fn forwarded_headers(
    incoming: &HeaderMap,
    principal: &Principal,
    identity: &Identity,
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in incoming {
        if is_forwarded(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Identity::Token(token) = identity {
        // The gateway's own token for the upstream, never the client's.
        if let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            value.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, value);
        }
        return headers;
    }
    let scopes = scope_list(principal);
    let identity = [
        principal.subject(),
        principal.issuer(),
        principal.client_id().unwrap_or(""),
        scopes.as_str(),
    ];
    for (name, value) in IDENTITY_HEADERS.into_iter().zip(identity) {
        if let Ok(value) = HeaderValue::from_str(&header_safe(value)) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

/// How this request tells the upstream who the caller is.
enum Identity {
    Headers,
    Token(Arc<str>),
}

/// The MCP transport's own headers: checked here (session ownership, agreement with the body)
/// and passed on.
const MCP_HEADERS: [&str; 4] = [
    "mcp-session-id",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

fn is_forwarded(name: &HeaderName) -> bool {
    let name = name.as_str();
    MCP_HEADERS.contains(&name)
        || matches!(
            name,
            "content-type"
                | "accept"
                | "last-event-id"
                | "user-agent"
                | "x-request-id"
                | "traceparent"
                | "tracestate"
        )
}

/// An MCP header given twice: the checks here read the first, an upstream may read the last (or
/// both joined), so one may own a session the other names. Refused, 400.
fn repeated_mcp_header(headers: &HeaderMap) -> Option<Response> {
    MCP_HEADERS
        .iter()
        .any(|name| headers.get_all(*name).iter().nth(1).is_some())
        .then(|| {
            error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "an Mcp-* header is given more than once",
            )
        })
}

/// A body the upstream could read otherwise than the scope gate did: a `method`, `params` or
/// `params.name` given twice or beside a case variant (which a lenient decoder may prefer), or a
/// `tools/call` without a string name (checked as no tool at all). Refused, 400, so the tool an
/// upstream in any language runs is the one whose scopes were checked.
fn read_otherwise_upstream(body: &Bytes) -> Option<Response> {
    let refuse = |message: &str| {
        Some(error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            message,
        ))
    };
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return refuse("Parse error: the body is not JSON");
    };
    if envelope.messages.iter().any(|message| message.ambiguous) {
        return refuse("a method, params or tool name is given twice or in another spelling");
    }
    let nameless_call = envelope
        .messages
        .iter()
        .any(|message| message.method.as_deref() == Some("tools/call") && message.name.is_none());
    if nameless_call {
        return refuse("a tools/call without a tool name");
    }
    None
}

/// Bytes a header value cannot carry as they are: percent-encoded (so a claim holding a newline,
/// a non-ASCII name or a `%` arrives whole, and decodes back with any URL library).
const NOT_HEADER_SAFE: &AsciiSet = &CONTROLS.add(b'%');

fn header_safe(value: &str) -> String {
    utf8_percent_encode(value, NOT_HEADER_SAFE).to_string()
}

/// The upstream's headers, less the hop-by-hop ones (RFC 9110 §7.6.1, and any the `Connection`
/// header names), its request id (the gateway's own is set on every answer), and what is the
/// gateway's to say for its origin: cookies, CORS, authentication challenges.
fn copy_response_headers(from: &reqwest::header::HeaderMap, to: &mut HeaderMap) {
    let named_by_connection: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        let hop_by_hop = matches!(
            name.as_str(),
            "connection"
                | "keep-alive"
                | "proxy-authenticate"
                | "proxy-authorization"
                | "proxy-connection"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "x-request-id"
                | "set-cookie"
                | "www-authenticate"
        ) || name.as_str().starts_with("access-control-")
            || named_by_connection.iter().any(|n| n == name.as_str());
        if !hop_by_hop {
            to.append(name.clone(), value.clone());
        }
    }
}

/// 2026-07-28 clients say in `Mcp-Method` and `Mcp-Name` what the body calls, and the spec has a
/// server refuse a request where they differ. Scopes are decided from the body, so a header
/// that disagrees could only mislead the upstream (one routing by header): refused here, 400.
/// `Mcp-Name` is compared where the body has a `params.name` (tools, prompts).
fn headers_disagree_with_body(headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    let method = headers.get("mcp-method");
    let name = headers.get("mcp-name");
    if method.is_none() && name.is_none() {
        return None;
    }
    let refuse = || {
        Some(error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "the Mcp-Method or Mcp-Name header does not match the body",
        ))
    };
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return refuse();
    };
    let [message] = envelope.messages.as_slice() else {
        return refuse();
    };
    if envelope.batch {
        return refuse();
    }
    let agrees = |header: Option<&HeaderValue>, body: Option<&str>| match header {
        None => true,
        Some(value) => value.to_str().ok() == body,
    };
    if !agrees(method, message.method.as_deref()) {
        return refuse();
    }
    if message.name.is_some() && !agrees(name, message.name.as_deref()) {
        return refuse();
    }
    None
}

fn content_type(headers: &reqwest::header::HeaderMap) -> &str {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn is_event_stream(headers: &reqwest::header::HeaderMap) -> bool {
    content_type(headers).starts_with("text/event-stream")
}

fn is_json(headers: &reqwest::header::HeaderMap) -> bool {
    content_type(headers).starts_with("application/json")
}

/// A JSON answer's body, ended with an error once it passes `max` bytes or is still arriving
/// `within` after its head: the client sees a cut-off answer, never an unbounded or endless one.
fn bounded(
    answer: reqwest::Response,
    max: usize,
    within: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let deadline = tokio::time::Instant::now() + within;
    let chunks = Box::pin(answer.bytes_stream());
    futures_util::stream::unfold(
        (chunks, 0usize, false),
        move |(mut chunks, seen, failed)| async move {
            if failed {
                return None;
            }
            let fail = |why: &str| std::io::Error::other(why.to_owned());
            match tokio::time::timeout_at(deadline, chunks.next()).await {
                Err(_) => Some((
                    Err(fail("the upstream's answer took too long")),
                    (chunks, seen, true),
                )),
                Ok(None) => None,
                Ok(Some(Err(error))) => {
                    Some((Err(std::io::Error::other(error)), (chunks, seen, true)))
                }
                Ok(Some(Ok(chunk))) => {
                    let seen = seen.saturating_add(chunk.len());
                    if seen > max {
                        Some((
                            Err(fail("the upstream's answer is too long")),
                            (chunks, seen, true),
                        ))
                    } else {
                        Some((Ok(chunk), (chunks, seen, false)))
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mcp_headers_and_content_negotiation_are_forwarded() {
        for name in [
            "mcp-session-id",
            "mcp-protocol-version",
            "mcp-method",
            "mcp-name",
            "content-type",
            "accept",
            "last-event-id",
            "x-request-id",
            "traceparent",
        ] {
            assert!(is_forwarded(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "authorization",
            "cookie",
            "host",
            "connection",
            "transfer-encoding",
            "x-mcp-subject",
            "x-mcp-scopes",
            "x-forwarded-for",
            "proxy-authorization",
            "mcp-user",
            "mcp-authorization",
        ] {
            assert!(!is_forwarded(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn claims_that_no_header_can_carry_arrive_percent_encoded() {
        assert_eq!(header_safe("alice"), "alice");
        assert_eq!(header_safe("a\r\nb"), "a%0D%0Ab");
        assert_eq!(header_safe("100%"), "100%25");
        assert_eq!(header_safe("zoë"), "zo%C3%AB");
        assert!(HeaderValue::from_str(&header_safe("\u{7f}x\u{0}")).is_ok());
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_stay_behind() {
        let mut from = reqwest::header::HeaderMap::new();
        from.insert("connection", HeaderValue::from_static("x-private, close"));
        from.insert("x-private", HeaderValue::from_static("1"));
        from.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        from.insert("x-request-id", HeaderValue::from_static("theirs"));
        from.insert("mcp-session-id", HeaderValue::from_static("s"));
        from.insert("set-cookie", HeaderValue::from_static("sid=1"));
        from.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        from.insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer realm=\"x\""),
        );
        from.insert(
            "content-type",
            HeaderValue::from_static("text/event-stream"),
        );
        let mut to = HeaderMap::new();
        copy_response_headers(&from, &mut to);
        let mut names: Vec<&str> = to.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "mcp-session-id"]);
    }

    /// A JSON answer is cut off, with an error, past its byte bound or its time bound, whether
    /// or not it said its length.
    #[tokio::test]
    async fn a_json_answer_past_its_bounds_is_cut_off() {
        let answer = |chunks: Vec<Result<Bytes, std::io::Error>>, stall: bool| {
            let chunks = futures_util::stream::iter(chunks);
            let body = if stall {
                reqwest::Body::wrap_stream(chunks.chain(futures_util::stream::pending()))
            } else {
                reqwest::Body::wrap_stream(chunks)
            };
            reqwest::Response::from(http::Response::new(body))
        };
        let read = |answer, max| async move {
            let mut body = Box::pin(bounded(answer, max, Duration::from_millis(50)));
            let mut passed = Vec::new();
            while let Some(chunk) = body.next().await {
                passed.push(chunk.map(|c| c.len()).map_err(|e| e.to_string()));
            }
            passed
        };
        let small = || vec![Ok(Bytes::from_static(b"{}"))];
        assert_eq!(read(answer(small(), false), 100).await, [Ok(2)]);
        let long = vec![
            Ok(Bytes::from(vec![b' '; 60])),
            Ok(Bytes::from(vec![b' '; 60])),
        ];
        assert_eq!(
            read(answer(long, false), 100).await,
            [Ok(60), Err("the upstream's answer is too long".to_owned())]
        );
        // Never finishing: the deadline ends it (whatever the machine's speed, the stream never
        // yields again, so only the deadline can).
        assert_eq!(
            read(answer(small(), true), 100).await,
            [Ok(2), Err("the upstream's answer took too long".to_owned())]
        );
    }

    #[test]
    fn a_header_that_disagrees_with_the_body_is_refused() {
        let call = Bytes::from_static(
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me"}}"#,
        );
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            headers
        };
        let refused = |pairs, body: &Bytes| {
            headers_disagree_with_body(&with(pairs), body).map(|r| r.status())
        };
        assert_eq!(refused(&[], &call), None);
        assert_eq!(refused(&[("mcp-method", "tools/call")], &call), None);
        assert_eq!(
            refused(
                &[("mcp-method", "tools/call"), ("mcp-name", "get_me")],
                &call
            ),
            None
        );
        for wrong in [
            &[("mcp-method", "tools/list")][..],
            &[("mcp-method", "tools/call"), ("mcp-name", "delete_all")][..],
            &[("mcp-name", "other")][..],
        ] {
            assert_eq!(
                refused(wrong, &call),
                Some(StatusCode::BAD_REQUEST),
                "{wrong:?}"
            );
        }
        let batch = Bytes::from(format!("[{}]", String::from_utf8_lossy(&call)));
        assert_eq!(
            refused(&[("mcp-method", "tools/call")], &batch),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}

#[cfg(test)]
mod body_tests {
    use super::*;

    fn refused(body: &str) -> bool {
        read_otherwise_upstream(&Bytes::from(body.to_owned())).is_some()
    }

    /// What a lenient upstream decoder (Go's `encoding/json`: case-insensitive names, last
    /// duplicate wins) would read otherwise than the gate: refused.
    #[test]
    fn a_body_an_upstream_could_read_otherwise_is_refused() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me"}}"#;
        assert!(!refused(call));
        assert!(!refused(&format!("[{call},{call}]")));
        for ambiguous in [
            r#"{"method":"tools/call","params":{"name":"public","Name":"delete_all"}}"#,
            r#"{"method":"tools/call","params":{"name":"public","name":"delete_all"}}"#,
            r#"{"method":"tools/list","Method":"tools/call","params":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"public"},"PARAMS":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"public"},"param\u017f":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"public","NAME":"x"}}"#,
            r#"{"method":"tools/call","params":{"name":"public","\u006eame":"x"}}"#,
            r#"{"method":"tools/call","method":"tools/list","params":{"name":"x"}}"#,
            r#"{"method":"tools/call","params":{}}"#,
            r#"{"method":"tools/call","params":{"name":7}}"#,
            r#"{"method":"tools/call"}"#,
        ] {
            assert!(refused(ambiguous), "{ambiguous}");
        }
        assert!(refused("not json"));
    }

    #[test]
    fn a_repeated_mcp_header_is_refused() {
        let mut headers = HeaderMap::new();
        headers.append("mcp-session-id", HeaderValue::from_static("mine"));
        assert!(repeated_mcp_header(&headers).is_none());
        headers.append("mcp-session-id", HeaderValue::from_static("theirs"));
        assert_eq!(
            repeated_mcp_header(&headers).map(|r| r.status()),
            Some(StatusCode::BAD_REQUEST)
        );
    }
}
