//! The bearer layer: `Authorization` header in, [`Principal`] or a challenge out (RFC 6750,
//! checklist C01-C07). The token comes from the header only (C03: query tokens are ignored),
//! the scheme is case-insensitive (C02), exactly one credential is accepted (B13), and the
//! token is never logged (D11).

pub(crate) mod authorization_server;
pub(crate) mod challenge;
pub(crate) mod claims;
pub(crate) mod dpop;
pub(crate) mod fetch;
pub(crate) mod issuers;
pub(crate) mod key_set;
pub(crate) mod keys;
pub(crate) mod policy;
pub(crate) mod principal;
pub(crate) mod remote;
pub(crate) mod scopes;
pub(crate) mod token;
pub(crate) mod token_cache;
pub(crate) mod token_error;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use challenge::{AuthError, Challenger, DpopRefusal};
use issuers::{IssuerVerifier, Route, Verifiers};
use key_set::KeyFingerprint;
pub use principal::{Principal, TokenKind, VerifiedBy};
use scopes::ScopePolicy;
use token_cache::{TokenCache, TokenHash, token_hash};
use token_error::TokenError;

use crate::clock::Clock;
use crate::guard::request_host;
use crate::jsonrpc::{Envelope, ErrorCode, InitializeRequest, error_response};
use crate::telemetry::{AUDIT_TARGET, Metrics, request_id};

/// A bearer token exactly as the client sent it. Not `Display` or `Serialize`, so it cannot reach
/// a log line or a response by accident; [`BearerToken::expose`] is the only way to its bytes.
pub(crate) struct BearerToken<'a>(&'a str);

impl BearerToken<'_> {
    /// The raw token, for the validator only.
    pub(crate) fn expose(&self) -> &str {
        self.0
    }
}

impl fmt::Debug for BearerToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// Everything the auth layers need: the trusted issuers (rules, keys, remote verifiers), the
/// clock, the scope policy and the challenge builder. Shared by all requests.
#[derive(Debug)]
pub(crate) struct Authenticator {
    verifiers: Verifiers,
    cache: TokenCache,
    clock: Arc<dyn Clock>,
    challenger: Challenger,
    scopes: ScopePolicy,
    metrics: Arc<Metrics>,
    /// DPoP proofs, when DPoP is on.
    dpop: Option<DpopCheck>,
    /// What is shared with other replicas, when a store is configured.
    shared: Option<SharedChecks>,
}

/// The checks that consult state shared by replicas: DPoP proofs seen anywhere, and revocations.
#[derive(Debug)]
pub(crate) struct SharedChecks {
    /// The store.
    pub(crate) store: Arc<dyn crate::shared_state::SharedStore>,
    /// What the replay check does when the store fails.
    pub(crate) replay_on_failure: crate::shared_state::OnFailure,
    /// The revocations read from the store.
    pub(crate) revocations: Arc<crate::shared_state::revocations::RevocationList>,
}

/// What checking DPoP proofs needs, when DPoP is on.
#[derive(Debug)]
pub(crate) struct DpopCheck {
    policy: dpop::ProofPolicy,
    replay: dpop::ReplayCache,
    /// The resource's URLs, each spelling, normalised once: a proof's `htu` must be one of them.
    urls: Vec<String>,
    required: bool,
}

impl DpopCheck {
    /// Whether only DPoP-bound tokens are accepted.
    pub(crate) fn required(&self) -> bool {
        self.required
    }

    /// The `DPoP-Nonce` a client should use next, when nonces are on (RFC 9449 §8.2, §9).
    fn nonce_header(&self, now: i64) -> Option<HeaderValue> {
        let nonce = self.policy.nonces.as_ref()?.current(now);
        HeaderValue::from_str(&nonce).ok()
    }

    /// For `settings` (`None` when DPoP is off) at `resource`, with the algorithm allow-list
    /// `algorithms`.
    pub(crate) fn new(
        settings: &dpop::DpopSettings,
        resource: &crate::resource::Resource,
        algorithms: policy::AlgorithmAllowList,
    ) -> Option<Self> {
        if settings.mode == dpop::DpopMode::Off {
            return None;
        }
        Some(Self {
            policy: dpop::ProofPolicy {
                algorithms,
                window: settings.window,
                nonces: settings
                    .nonce
                    .as_ref()
                    .map(|secret| dpop::Nonces::new(secret, settings.window)),
            },
            replay: dpop::ReplayCache::new(settings.window, settings.max_replay_entries),
            urls: resource
                .spellings()
                .filter_map(|url| dpop::normalized_htu(url.as_str()))
                .collect(),
            required: settings.mode == dpop::DpopMode::Required,
        })
    }
}

/// How the client presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

impl Authenticator {
    /// Assembles the auth layers' state.
    pub(crate) fn new(
        verifiers: Verifiers,
        cache: TokenCache,
        clock: Arc<dyn Clock>,
        challenger: Challenger,
        scopes: ScopePolicy,
        metrics: Arc<Metrics>,
        dpop: Option<DpopCheck>,
    ) -> Self {
        Self {
            verifiers,
            cache,
            clock,
            challenger,
            scopes,
            metrics,
            dpop,
            shared: None,
        }
    }

    /// The same, consulting the state replicas share (when `shared` is given).
    pub(crate) fn with_shared_state(mut self, shared: Option<SharedChecks>) -> Self {
        self.shared = shared;
        self
    }

    /// The response for an auth failure of a request addressed to `host`.
    fn respond(&self, error: &AuthError, host: Option<&str>) -> Response {
        self.challenger.respond(error, host)
    }

    /// Authenticates a request from its headers.
    ///
    /// # Errors
    /// [`AuthError`] for missing, malformed or invalid credentials, or unavailable keys or
    /// introspection.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
        method: &Method,
        client: Option<IpAddr>,
    ) -> Result<(Principal, Scheme), AuthError> {
        let (scheme, token) = credentials(headers, self.dpop.as_ref())?;
        let principal = self.judge(&token, client).await?;
        if let Some(shared) = &self.shared {
            let claims = principal.claims();
            let facts = crate::shared_state::revocations::TokenFacts {
                issuer: &claims.issuer,
                subject: &claims.subject,
                issued_at: claims.issued_at,
                token_id: claims.token_id.as_deref(),
            };
            if shared.revocations.revokes(
                &crate::shared_state::token_fingerprint(token.expose()),
                &facts,
            ) {
                return Err(AuthError::InvalidToken(TokenError::Revoked));
            }
        }
        self.check_binding(scheme, &token, &principal, headers, method)
            .await?;
        Ok((principal, scheme))
    }

    /// Records a proof's `jti` where replays are looked for: the shared store when there is one
    /// (a proof replayed at another replica is caught), else this process's cache.
    async fn first_use_of_proof(&self, check: &DpopCheck, jti: &str) -> Result<(), AuthError> {
        let replayed = || AuthError::Dpop(DpopRefusal::Proof(dpop::ProofError::Replayed));
        // Recorded here too, whatever the store says: a replay at this replica is caught even
        // while the store is down (and costs no call).
        if !check.replay.first_use(jti) {
            return Err(replayed());
        }
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let key = format!("mcp:dpop:{}", crate::shared_state::hex(&token_hash(jti)));
        match shared
            .store
            .first_use(&key, check.policy.window.saturating_mul(2))
            .await
        {
            Ok(first) => {
                self.metrics.shared_state("dpop_replay", true);
                if first { Ok(()) } else { Err(replayed()) }
            }
            Err(error) => {
                self.metrics.shared_state("dpop_replay", false);
                tracing::warn!(%error, "DPoP replay check: the shared state failed");
                match shared.replay_on_failure {
                    // Already recorded in this replica's cache above.
                    crate::shared_state::OnFailure::Local => Ok(()),
                    crate::shared_state::OnFailure::Refuse => Err(AuthError::StateUnavailable),
                }
            }
        }
    }

    /// The nonce to hand out with an answer, when nonces are on.
    fn next_nonce(&self) -> Option<HeaderValue> {
        self.dpop.as_ref()?.nonce_header(self.clock.now())
    }

    /// A token presented as `Bearer` must not be bound to a key (RFC 9449 §7.2, J48); one
    /// presented as `DPoP` must be, to the key of a valid proof for this request (§7.1).
    async fn check_binding(
        &self,
        scheme: Scheme,
        token: &BearerToken<'_>,
        principal: &Principal,
        headers: &HeaderMap,
        method: &Method,
    ) -> Result<(), AuthError> {
        let bound_to = principal.claims().dpop_jkt.as_deref();
        match (scheme, bound_to, &self.dpop) {
            (Scheme::Bearer, None, _) => Ok(()),
            (Scheme::Bearer, Some(_), _) => {
                Err(AuthError::InvalidToken(TokenError::SenderConstrained))
            }
            (Scheme::Dpop, _, None) => Err(AuthError::MissingToken),
            (Scheme::Dpop, None, Some(_)) => Err(AuthError::Dpop(DpopRefusal::NotBound)),
            (Scheme::Dpop, Some(jkt), Some(check)) => {
                let mut proofs = headers.get_all("dpop").iter();
                let (Some(proof), None) = (proofs.next(), proofs.next()) else {
                    return Err(AuthError::Dpop(DpopRefusal::NotOneProof));
                };
                let proof = proof
                    .to_str()
                    .map_err(|_| AuthError::Dpop(DpopRefusal::NotOneProof))?;
                let target = dpop::ProofTarget {
                    method: method.as_str(),
                    urls: &check.urls,
                    access_token: token.expose(),
                    now: self.clock.now(),
                };
                let proven = dpop::verify_proof(proof, &target, &check.policy)
                    .map_err(|error| AuthError::Dpop(DpopRefusal::Proof(error)))?;
                if proven.thumbprint != jkt {
                    return Err(AuthError::Dpop(DpopRefusal::KeyMismatch));
                }
                self.first_use_of_proof(check, &proven.jti).await
            }
        }
    }

    /// The verdict on the token itself, from the cache or its issuer.
    async fn judge(
        &self,
        token: &BearerToken<'_>,
        client: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let hash = token_hash(token.expose());
        if let Some(claims) = self.remembered(&hash).await? {
            self.metrics.authenticated("jwt_cached");
            return Ok(Principal::new(claims, VerifiedBy::Jwt));
        }
        let (judged, verified_by) = match self.verifiers.route(token.expose()) {
            Route::Local(index, verifier) => {
                let judged = self.verify_locally(verifier, token.expose()).await?;
                let judged = judged.map(|(claims, key)| {
                    let claims = Arc::new(claims);
                    self.cache.insert(
                        hash,
                        Arc::clone(&claims),
                        index,
                        key,
                        self.clock.now(),
                        verifier.policy.leeway().secs(),
                    );
                    claims
                });
                (judged, VerifiedBy::Jwt)
            }
            Route::Remote(remote) => (
                remote
                    .verify(token.expose(), hash, client)
                    .await?
                    .map(Arc::new),
                remote.verified_by(),
            ),
        };
        match judged {
            Ok(claims) => {
                self.metrics.authenticated(verified_by.as_str());
                Ok(Principal::new(claims, verified_by))
            }
            Err(error) => {
                tracing::debug!(reason = %error, "bearer token refused");
                Err(error.into())
            }
        }
    }

    /// The claims of a JWT verified before, if that verification still holds: within its time,
    /// and its key still among its issuer's current keys (refreshed as on any request).
    async fn remembered(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<Arc<claims::VerifiedClaims>>, AuthError> {
        let Some(cached) = self.cache.lookup(hash) else {
            return Ok(None);
        };
        let Some(source) = self.verifiers.keys_of(cached.issuer()) else {
            return Ok(None);
        };
        let keys = source.keys().await?;
        Ok(self
            .cache
            .still_holds(hash, &cached, self.clock.now(), &keys)
            .then(|| Arc::clone(cached.claims())))
    }

    /// Checks a JWT with its issuer's keys; an unknown `kid` refetches them once (rate-limited).
    async fn verify_locally(
        &self,
        verifier: &IssuerVerifier,
        token: &str,
    ) -> Result<Result<(claims::VerifiedClaims, KeyFingerprint), TokenError>, AuthError> {
        let Some(source) = &verifier.keys else {
            // An issuer whose access tokens are never JWTs (Google): a JWT from it is an ID token.
            return Ok(Err(TokenError::NotAnAccessToken));
        };
        let keys = source.keys().await?;
        let policy = &verifier.policy;
        Ok(
            match token::validate_with_key(token, &keys, self.clock.now(), policy) {
                Err(error @ (TokenError::UnknownKey | TokenError::NoUsableKey)) => {
                    let refreshed = source.refresh_for_unknown_kid().await?;
                    if Arc::ptr_eq(&refreshed, &keys) {
                        Err(error)
                    } else {
                        token::validate_with_key(token, &refreshed, self.clock.now(), policy)
                    }
                }
                other => other,
            },
        )
    }
}

/// Admission: every request to `/mcp` must carry a valid bearer token (C04); the caller's
/// [`Principal`] goes into the request extensions for the steps and tools after it.
pub(crate) async fn require_bearer(
    auth: &Authenticator,
    mut request: Request,
) -> Result<Request, Response> {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip());
    match auth
        .authenticate(request.headers(), request.method(), client)
        .await
    {
        Ok((principal, scheme)) => {
            tracing::debug!(
                iss = principal.claims().issuer.as_str(),
                client_id = principal.claims().client_id.as_deref(),
                "authenticated"
            );
            request.extensions_mut().insert(principal);
            if scheme == Scheme::Dpop
                && let Some(nonce) = auth.next_nonce()
            {
                request.extensions_mut().insert(NextDpopNonce(nonce));
            }
            Ok(request)
        }
        Err(error) => {
            auth.metrics.refused(error.refusal());
            audit_refusal(&request, &error);
            let mut response = auth.respond(&error, request_host(request.headers(), request.uri()));
            if let Some(nonce) = auth.next_nonce() {
                response.headers_mut().insert(DPOP_NONCE, nonce);
            }
            Err(response)
        }
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8.1).
const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The nonce a DPoP client should use next, for the answer to its request (RFC 9449 §8.2):
/// with nonces on, every answer to a DPoP request carries the current one, so a client never
/// needs a refused request to learn that it rotated.
#[derive(Debug, Clone)]
pub(crate) struct NextDpopNonce(HeaderValue);

impl NextDpopNonce {
    /// The nonce of `request`, taken before it is handed on.
    pub(crate) fn of(request: &Request) -> Option<Self> {
        request.extensions().get::<Self>().cloned()
    }

    /// `response`, with the nonce.
    pub(crate) fn stamp(nonce: Option<Self>, mut response: Response) -> Response {
        if let Some(Self(nonce)) = nonce {
            response.headers_mut().insert(DPOP_NONCE, nonce);
        }
        response
    }
}

/// The answer of a layer behind the bearer layer that finds no principal on the request: the
/// layers were wired in the wrong order, and nothing may pass.
pub(crate) fn no_principal_attached() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "authentication layer missing",
    )
        .into_response()
}

/// The audit event of a request refused by the bearer layer: no caller is known.
fn audit_refusal(request: &Request, error: &AuthError) {
    let (outcome, reason) = error.refusal();
    tracing::info!(
        target: AUDIT_TARGET,
        request_id = request_id(request.headers()),
        http_method = request.method().as_str(),
        outcome,
        reason,
        "authorization decision"
    );
}

/// The audit event of an authenticated request's authorization decision.
fn audit_decision(
    request_id: &str,
    principal: &Principal,
    operation: &Operation<'_>,
    required: &[String],
    denied: bool,
) {
    let claims = principal.claims();
    tracing::info!(
        target: AUDIT_TARGET,
        request_id,
        // Every value a token or a request chose is recorded as a `&str`, never with `%`: both
        // log formats escape string fields, so a `sub` holding a newline or a quote cannot
        // write a line of its own.
        issuer = claims.issuer.as_str(),
        subject = claims.subject.as_str(),
        client_id = claims.client_id.as_deref().unwrap_or(""),
        verified_by = principal.verified_by().as_str(),
        method = at_most(operation.method, AUDITED_NAME_BYTES),
        tool = at_most(operation.tool.unwrap_or(""), AUDITED_NAME_BYTES),
        scopes_required = required.join(" ").as_str(),
        scopes_granted = claims.scopes.join(" ").as_str(),
        outcome = if denied { "denied" } else { "allowed" },
        reason = if denied { "insufficient_scope" } else { "" },
        "authorization decision"
    );
}

/// How much of a method or tool name the audit trail records: the body chose them, and one line
/// per request must stay small (a queued log line holds its bytes until written).
const AUDITED_NAME_BYTES: usize = 128;

/// The first `max` bytes of `value` (cut at a character boundary).
fn at_most(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// What a request asks to do, as the audit trail names it.
struct Operation<'a> {
    /// The JSON-RPC method (`batch` for a batch), or the HTTP method of a request with no body.
    method: &'a str,
    /// The tool of a `tools/call`.
    tool: Option<&'a str>,
}

impl<'a> Operation<'a> {
    fn of(message: &'a Envelope<'_>) -> Self {
        match (message.batch, message.messages.first()) {
            (false, Some(single)) => {
                let method = single.method.as_deref().unwrap_or("response");
                Self {
                    method,
                    tool: (method == "tools/call")
                        .then_some(single.name.as_deref())
                        .flatten(),
                }
            }
            _ => Self {
                method: "batch",
                tool: None,
            },
        }
    }
}

/// Admission, behind the body limit: a request whose JSON-RPC method (or tool) needs scopes the
/// token lacks gets a 403 before rmcp sees it (H02); requests without a JSON-RPC body (the GET stream, DELETE) need the
/// scopes every request needs (H08). Bodies over the limit (set by the body-limit layer in front)
/// get 413; bodies that are not JSON get the JSON-RPC parse error (-32700) with 400. The parsed
/// body says whether this is an `initialize`, for the session binding after this step.
pub(crate) async fn require_scopes(
    auth: &Authenticator,
    request: Request,
) -> Result<Request, Response> {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return Err(no_principal_attached());
    };
    if request.method() != Method::POST {
        let operation = Operation {
            method: request.method().as_str(),
            tool: None,
        };
        let decision = auth.scopes.check(&principal, auth.scopes.basic());
        audit_decision(
            request_id(request.headers()),
            &principal,
            &operation,
            auth.scopes.basic(),
            decision.is_err(),
        );
        if let Err(error) = decision {
            auth.metrics.scope_denied(None);
            return Err(auth.respond(&error, request_host(request.headers(), request.uri())));
        }
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response());
    };
    let Ok(message) = serde_json::from_slice::<Envelope<'_>>(&bytes) else {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            ErrorCode::ParseError,
            "Parse error: the body is not JSON",
        ));
    };
    let operation = Operation::of(&message);
    let required = auth.scopes.required_for_envelope(&message);
    let decision = auth.scopes.check(&principal, &required);
    audit_decision(
        request_id(&parts.headers),
        &principal,
        &operation,
        &required,
        decision.is_err(),
    );
    if let Err(error) = decision {
        auth.metrics.scope_denied(operation.tool);
        return Err(auth.respond(&error, request_host(&parts.headers, &parts.uri)));
    }
    let initialize = message.is_initialize();
    drop(message);
    if initialize {
        parts.extensions.insert(InitializeRequest);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The one credential of a request and its scheme: `Bearer`, or `DPoP` when DPoP is on (and
/// only `DPoP` when it is required: a bearer token is then no credential for this resource).
fn credentials<'h>(
    headers: &'h HeaderMap,
    dpop: Option<&DpopCheck>,
) -> Result<(Scheme, BearerToken<'h>), AuthError> {
    let scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().split(|b| *b == b' ').next())
        .map(|name| {
            if name.eq_ignore_ascii_case(b"dpop") {
                Scheme::Dpop
            } else {
                Scheme::Bearer
            }
        })
        .unwrap_or(Scheme::Bearer);
    match (scheme, dpop) {
        (Scheme::Dpop, Some(_)) => Ok((Scheme::Dpop, credential_of(headers, "dpop")?)),
        (Scheme::Bearer, Some(check)) if check.required => {
            // B12: only DPoP counts here; the challenge says so.
            credential_of(headers, "bearer")?;
            Err(AuthError::MissingToken)
        }
        _ => Ok((Scheme::Bearer, bearer_token(headers)?)),
    }
}

/// The one bearer credential of a request, or why there is none.
fn bearer_token(headers: &HeaderMap) -> Result<BearerToken<'_>, AuthError> {
    credential_of(headers, "bearer")
}

/// The one credential of `scheme` (lower case) of a request, or why there is none.
fn credential_of<'h>(headers: &'h HeaderMap, scheme: &str) -> Result<BearerToken<'h>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedRequest(
            "more than one Authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::MalformedRequest("the Authorization header is not ASCII"))?;
    let (named, credentials) = value.split_once(' ').unwrap_or((value, ""));
    if !named.eq_ignore_ascii_case(scheme) {
        // B12: another scheme is "no authentication information" for this resource.
        return Err(AuthError::MissingToken);
    }
    let credentials = credentials.trim_start_matches(' ');
    if credentials.is_empty() {
        return Err(AuthError::MalformedRequest("empty bearer token"));
    }
    if credentials.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::InvalidToken(TokenError::Malformed(
            "token too large",
        )));
    }
    if !is_token68(credentials) {
        return Err(AuthError::MalformedRequest(
            "the bearer credentials are not one token68 value",
        ));
    }
    // Borrowed from the header: the token is never copied.
    Ok(BearerToken(credentials))
}

/// RFC 9110 §11.2 token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// Every byte is looked at, without an early exit: the loop vectorises, and a valid token (the
/// usual case) is read in full anyway.
fn is_token68(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().fold(true, |all, b| {
            all & (b.is_ascii_alphanumeric() | matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/'))
        })
}

/// Real access tokens are a few KiB; this bound keeps hostile ones from costing more (J39).
const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The audit trail records at most 128 bytes of a name the body chose, cut between
    /// characters.
    #[test]
    fn audited_names_are_cut_at_a_character_boundary() {
        assert_eq!(at_most("tools/call", AUDITED_NAME_BYTES), "tools/call");
        assert_eq!(at_most(&"m".repeat(1 << 20), AUDITED_NAME_BYTES).len(), 128);
        assert_eq!(at_most("ééé", 3), "é");
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                header::AUTHORIZATION,
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        headers
    }

    /// D11: a bearer token cannot reach a log line through `Debug`.
    #[test]
    fn bearer_tokens_debug_as_redacted() {
        assert_eq!(
            format!("{:?}", BearerToken("secret")),
            "BearerToken([redacted])"
        );
    }

    /// C01, C02: the scheme is case-insensitive.
    #[test]
    fn the_scheme_matches_case_insensitively() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} abc.def.ghi");
            assert_eq!(
                bearer_token(&headers(&[value.as_bytes()]))
                    .unwrap()
                    .expose(),
                "abc.def.ghi"
            );
        }
    }

    /// B01, B12: no header, or another scheme, is "no credentials".
    #[test]
    fn no_header_or_another_scheme_is_a_missing_token() {
        assert_eq!(
            bearer_token(&HeaderMap::new()).unwrap_err(),
            AuthError::MissingToken
        );
        assert_eq!(
            bearer_token(&headers(&[b"Basic dTpw"])).unwrap_err(),
            AuthError::MissingToken
        );
        assert_eq!(
            bearer_token(&headers(&[b"DPoP abc"])).unwrap_err(),
            AuthError::MissingToken
        );
    }

    /// B13, C05: repeated, empty, spaced or non-ASCII credentials are malformed requests.
    #[test]
    fn malformed_credentials_are_invalid_requests() {
        for value in [
            &b"Bearer "[..],
            b"Bearer",
            b"Bearer a b",
            "Bearer äöü".as_bytes(),
            b"Bearer a=b",
        ] {
            assert!(
                matches!(
                    bearer_token(&headers(&[value])),
                    Err(AuthError::MalformedRequest(_))
                ),
                "{value:?}"
            );
        }
        assert!(matches!(
            bearer_token(&headers(&[b"Bearer a", b"Bearer b"])),
            Err(AuthError::MalformedRequest(_))
        ));
    }

    /// J39: oversized tokens are refused before any parsing.
    #[test]
    fn oversized_tokens_are_refused() {
        let value = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(matches!(
            bearer_token(&headers(&[value.as_bytes()])),
            Err(AuthError::InvalidToken(_))
        ));
    }
}
