//! MCP sessions (stateful mode), bound to the principal that opened them and bounded (checklist
//! K03, K04, K06, R02-R04). rmcp does not bind sessions to callers, so this layer records who
//! initialized each session and refuses that session id to anyone else with 404, exactly as for a
//! session that does not exist; a session id this layer never saw is also 404, so ending a
//! binding can only end a session, never open it to others. A principal that opens one session
//! too many loses its own longest-idle one; at the global cap room is made fairly (see
//! [`registry`]), and `initialize` gets 503 only when every principal holds about the same share;
//! idle sessions end.

mod manager;
mod registry;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
pub(crate) use manager::OwnedSessionManager;
use registry::{AtCapacity, Owner, SessionRegistry};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager as _};

use crate::auth::{Principal, no_principal_attached};
use crate::jsonrpc::{ErrorCode, InitializeRequest, error_response};

/// How MCP requests relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// MCP sessions (`Mcp-Session-Id`), answers over SSE, each session bound to its principal.
    Sessions(SessionLimits),
    /// No sessions, JSON answers: every request stands alone, so any instance can serve it
    /// (horizontal scaling).
    Stateless,
}

impl Default for Transport {
    fn default() -> Self {
        Self::Sessions(SessionLimits::default())
    }
}

/// What sessions may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Sessions one principal (issuer + subject) may hold; one more ends its own longest-idle.
    pub max_per_principal: NonZeroUsize,
    /// Sessions all principals together may hold. At the cap the principal holding the most
    /// sessions loses its longest-idle one to a newcomer, while it holds at least two more than
    /// the newcomer would; only when all hold about the same share does `initialize` get 503.
    pub max_total: NonZeroUsize,
    /// A session with no traffic for this long ends (rmcp's keep-alive).
    pub idle: Duration,
}

impl Default for SessionLimits {
    /// 16 per principal (several clients and reconnects of one user), 5,000 in all (each holds
    /// tens of kilobytes), ten minutes idle (an agent thinking between calls keeps its session).
    fn default() -> Self {
        Self {
            max_per_principal: NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN),
            max_total: NonZeroUsize::new(5_000).unwrap_or(NonZeroUsize::MIN),
            idle: Duration::from_secs(600),
        }
    }
}

/// The MCP session header (case-insensitive on the wire, K08).
pub(crate) static SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// The session bookkeeping, and where sessions live: in rmcp (sharing the registry through its
/// session manager), or at a gateway's upstream.
#[derive(Debug)]
pub(crate) struct Sessions {
    registry: Arc<SessionRegistry>,
    home: Home,
}

/// Where sessions run, so that one the registry lets go of is ended there too.
#[derive(Debug)]
enum Home {
    Rmcp(Arc<OwnedSessionManager>),
    Upstream(Arc<dyn EndsSessions>),
}

/// A server elsewhere whose sessions are bound here (a gateway's upstream): how to end one there.
pub(crate) trait EndsSessions: std::fmt::Debug + Send + Sync + 'static {
    /// Ends `session` at the server that runs it (best effort).
    fn end_session(&self, session: SessionId) -> futures_util::future::BoxFuture<'static, ()>;
}

impl Sessions {
    /// Sessions run by rmcp here.
    pub(crate) fn new(limits: &SessionLimits) -> Self {
        let registry = Self::registry(limits);
        let manager = Arc::new(OwnedSessionManager::new(limits, Arc::clone(&registry)));
        Self {
            registry,
            home: Home::Rmcp(manager),
        }
    }

    /// Sessions run by a gateway's upstream: bound here to their principals, with the same caps,
    /// and ended there with a DELETE when the caps end them here.
    pub(crate) fn at_upstream(limits: &SessionLimits, upstream: Arc<dyn EndsSessions>) -> Self {
        Self {
            registry: Self::registry(limits),
            home: Home::Upstream(upstream),
        }
    }

    fn registry(limits: &SessionLimits) -> Arc<SessionRegistry> {
        Arc::new(SessionRegistry::new(
            limits.max_per_principal,
            limits.max_total,
        ))
    }

    /// The manager to hand to rmcp (none at a gateway).
    pub(crate) fn manager(&self) -> Option<Arc<OwnedSessionManager>> {
        match &self.home {
            Home::Rmcp(manager) => Some(Arc::clone(manager)),
            Home::Upstream(_) => None,
        }
    }

    /// Lets go of a session that ended elsewhere (the upstream said it is gone, or a DELETE
    /// ended it).
    pub(crate) fn forget(&self, session: &str) {
        self.registry.unbind(session);
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        self.registry.len()
    }

    /// Ends sessions the registry has already let go of, in rmcp too (in the background: the
    /// request that made room does not wait for them).
    fn close(&self, ended: Vec<SessionId>) {
        for session in ended {
            match &self.home {
                Home::Rmcp(manager) => {
                    let manager = Arc::clone(manager);
                    tokio::spawn(async move {
                        if let Err(error) = manager.close_session(&session).await {
                            tracing::debug!(
                                error = &error as &dyn std::error::Error,
                                "ending a session"
                            );
                        }
                    });
                }
                Home::Upstream(upstream) => {
                    self.registry.unbind(&session);
                    tokio::spawn(upstream.end_session(session));
                }
            }
        }
    }
}

/// Admission's last step (after authentication and the scope gate): a request naming a session
/// must come from its owner; an `initialize` is admitted within the caps and binds the new
/// session to the caller; sessions over the caller's cap are ended.
pub(crate) async fn bind_sessions(sessions: &Sessions, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>() else {
        return no_principal_attached();
    };
    let (issuer, subject) = principal.identity();
    if let Some(session) = request.headers().get(&SESSION_HEADER) {
        let owned = session
            .to_str()
            .is_ok_and(|id| sessions.registry.use_session(id, issuer, subject));
        if !owned {
            tracing::debug!("session id refused: unknown or owned by another principal");
            return session_not_found();
        }
        return next.run(request).await;
    }
    if request.extensions().get::<InitializeRequest>().is_none() {
        return next.run(request).await;
    }
    let owner = Owner::new(issuer, subject);
    let Ok(reservation) = Reservation::take(&sessions.registry, owner) else {
        tracing::warn!(
            open = sessions.registry.len(),
            "session limit reached with every principal at its share; initialize refused"
        );
        return too_many_sessions();
    };
    let response = next.run(request).await;
    let created = response
        .headers()
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|_| response.status().is_success());
    if let Some(id) = created {
        let evicted = reservation.bind(id.into());
        if !evicted.is_empty() {
            tracing::debug!(
                "longest-idle sessions ended: over a principal's cap or the global one"
            );
        }
        sessions.close(evicted);
    }
    response
}

/// Room for one session of an owner while its `initialize` runs. Given back when dropped
/// unbound: an `initialize` that fails, times out, or whose client goes away must not keep room
/// (nor, at the global cap, count toward its owner's share) for ever.
struct Reservation {
    registry: Arc<SessionRegistry>,
    owner: Option<Owner>,
}

impl Reservation {
    fn take(registry: &Arc<SessionRegistry>, owner: Owner) -> Result<Self, AtCapacity> {
        registry.reserve(&owner)?;
        Ok(Self {
            registry: Arc::clone(registry),
            owner: Some(owner),
        })
    }

    /// Binds the new session; the sessions to end in exchange.
    fn bind(mut self, session: SessionId) -> Vec<SessionId> {
        match self.owner.take() {
            Some(owner) => self.registry.bind(session, owner),
            None => Vec::new(),
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            self.registry.release(&owner);
        }
    }
}

fn session_not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorCode::SessionNotFound,
        "Session not found",
    )
}

fn too_many_sessions() -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::ServerBusy,
        "Too many open sessions; try again later",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// R03: an `initialize` whose future is dropped (its client went away, or the request
    /// timed out) gives its room back; only a bound session keeps it.
    #[test]
    fn a_reservation_dropped_unbound_gives_its_room_back() {
        let one = NonZeroUsize::MIN;
        let registry = Arc::new(SessionRegistry::new(one, one));
        let alice = || Owner::new("i", "alice");
        let bob = || Owner::new("i", "bob");
        let abandoned = Reservation::take(&registry, alice()).unwrap();
        assert!(
            Reservation::take(&registry, bob()).is_err(),
            "the room is taken"
        );
        drop(abandoned);
        let kept = Reservation::take(&registry, bob()).expect("the room was given back");
        assert!(kept.bind("b".into()).is_empty());
        assert!(
            Reservation::take(&registry, alice()).is_err(),
            "bob's session holds it"
        );
    }
}
