//! Every request check of `/mcp`, as two steps rather than a stack of middlewares each boxing
//! its future: admission (Host/Origin guard 403 → bearer 401/400/503 → per-principal budget
//! 429), then, behind the request timeout (408) and the body limit (413), authorization (scope
//! gate 403 → session binding 404/503). The order of decisions and every answer are those of the
//! separate layers they replace; the two halves stand apart only because the timeout and the
//! body limit sit between them, as they always did.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::auth::{Authenticator, NextDpopNonce, Principal, require_bearer, require_scopes};
use crate::guard::{GuardPolicy, check_origin_and_host};
use crate::rate_limit::{RateLimiter, limit_rate};
use crate::session::{Sessions, bind_sessions};

/// What the checks of `/mcp` need, built once per server.
#[derive(Debug)]
pub(crate) struct Admission {
    pub(crate) guard: Arc<GuardPolicy>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) rate_limiter: Option<Arc<RateLimiter>>,
    pub(crate) sessions: Option<Arc<Sessions>>,
}

/// The first step: who may ask at all.
pub(crate) async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = check_origin_and_host(&admission.guard, &request) {
        return refused;
    }
    let request = match require_bearer(&admission.auth, request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    if let Some(limiter) = &admission.rate_limiter
        && let Some(refused) =
            limit_rate(limiter, request.extensions().get::<Principal>().cloned()).await
    {
        return refused;
    }
    let nonce = NextDpopNonce::of(&request);
    NextDpopNonce::stamp(nonce, next.run(request).await)
}

/// The second step, behind the timeout and the body limit: what the caller may do, and in which
/// session.
pub(crate) async fn authorize(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let request = match require_scopes(&admission.auth, request).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    match &admission.sessions {
        Some(sessions) => bind_sessions(sessions, request, next).await,
        None => next.run(request).await,
    }
}

/// The bearer check alone, for routes of the user's ([`crate::Server::protect`]).
pub(crate) async fn authenticate(
    State(auth): State<Arc<Authenticator>>,
    request: Request,
    next: Next,
) -> Response {
    match require_bearer(&auth, request).await {
        Ok(request) => {
            let nonce = NextDpopNonce::of(&request);
            NextDpopNonce::stamp(nonce, next.run(request).await)
        }
        Err(refused) => refused,
    }
}
