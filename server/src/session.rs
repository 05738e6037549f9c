//! Sessions bound to the principal that opened them (checklist K03, K04, K06). rmcp does not bind
//! sessions to callers, so this layer records who initialized each session and refuses that
//! session id to anyone else with 404, exactly as for a session that does not exist; a session id
//! this layer never saw is also 404, so eviction can only end a session, never open it to others.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Principal;
use crate::jsonrpc::{ErrorCode, error_response};

/// How MCP requests relate to each other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// MCP sessions (`Mcp-Session-Id`), answers over SSE, each session bound to its principal.
    #[default]
    Sessions,
    /// No sessions, JSON answers: every request stands alone, so any instance can serve it
    /// (horizontal scaling).
    Stateless,
}

/// The MCP session header (case-insensitive on the wire, K08).
pub(crate) static SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

/// Session id → (issuer, subject) of its owner, bounded.
#[derive(Debug, Default)]
pub(crate) struct SessionBindings {
    inner: Mutex<Bindings>,
}

#[derive(Debug, Default)]
struct Bindings {
    owners: HashMap<String, (String, String)>,
    order: VecDeque<String>,
}

impl SessionBindings {
    fn owner(&self, session: &str) -> Option<(String, String)> {
        self.lock().owners.get(session).cloned()
    }

    fn bind(&self, session: String, owner: (String, String)) {
        let mut bindings = self.lock();
        if bindings.owners.insert(session.clone(), owner).is_none() {
            bindings.order.push_back(session);
        }
        while bindings.order.len() > MAX_SESSIONS {
            if let Some(oldest) = bindings.order.pop_front() {
                bindings.owners.remove(&oldest);
            }
        }
    }

    fn unbind(&self, session: &str) {
        let mut bindings = self.lock();
        bindings.owners.remove(session);
        bindings.order.retain(|s| s != session);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bindings> {
        // Each update is a few map operations with no await; a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Middleware (after authentication): a request naming a session must come from its owner; a
/// successful `initialize` binds the new session to the caller; a successful DELETE unbinds it.
pub(crate) async fn bind_sessions(
    State(sessions): State<Arc<SessionBindings>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "authentication layer missing",
        )
            .into_response();
    };
    let caller = (
        principal.identity().0.to_owned(),
        principal.identity().1.to_owned(),
    );
    let session = request
        .headers()
        .get(&SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let method = request.method().clone();
    if let Some(session) = &session
        && sessions.owner(session).as_ref() != Some(&caller)
    {
        tracing::debug!("session id refused: unknown or owned by another principal");
        return session_not_found();
    }
    let response = next.run(request).await;
    match (
        &session,
        response
            .headers()
            .get(&SESSION_HEADER)
            .and_then(|v| v.to_str().ok()),
    ) {
        (None, Some(created)) if response.status().is_success() => {
            sessions.bind(created.to_owned(), caller)
        }
        (Some(ended), _) if method == Method::DELETE && response.status().is_success() => {
            sessions.unbind(ended)
        }
        _ => {}
    }
    response
}

fn session_not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorCode::SessionNotFound,
        "Session not found",
    )
}

/// Bounds the memory sessions can take; the oldest binding goes first (its session then 404s).
const MAX_SESSIONS: usize = 100_000;
