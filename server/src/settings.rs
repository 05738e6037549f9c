//! Everything the server needs to run, as typed policies. Each piece lives beside the code that
//! enforces it and has a default or a constructor, so a test or an embedding program builds a
//! [`Settings`] directly; the command line and environment ([`crate::Args`]) are one way to make
//! one, and the only place that reads them. The building blocks are re-exported here, so a
//! program that configures the server in code finds them in one place.

use std::net::{IpAddr, SocketAddr};

pub use crate::auth::authorization_server::{AuthorizationServerSettings, Issuer};
pub use crate::auth::dpop::{DpopMode, DpopSettings, NonceSecret};
pub use crate::auth::fetch::{FetchUrl, UrlError};
pub use crate::auth::issuers::{TrustError, TrustedIssuer, TrustedIssuers};
pub use crate::auth::keys::KeySourceSettings;
pub use crate::auth::policy::{
    AlgorithmAllowList, AlgorithmError, Audience, ClientIdAudience, EmptyAudience, Leeway,
    LeewayTooLong, PermissionClaims, PermissionClaimsError, TokenTypePolicy, ValidationPolicy,
};
pub use crate::auth::remote::{
    ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings,
    RemoteVerification, TokenInfoSettings,
};
pub use crate::auth::scopes::ScopePolicy;
pub use crate::auth::token_cache::TokenCacheSettings;
pub use crate::edge::Limits;
pub use crate::gateway::Upstream;
pub use crate::guard::{AllowedHost, AllowedOrigin, GuardEntryError, GuardPolicy};
pub use crate::metadata::AsMetadataMode;
pub use crate::rate_limit::RateLimit;
pub use crate::resource::{Resource, ResourceUrl};
pub use crate::session::{SessionLimits, Transport};
pub use crate::shared_state::{OnFailure, SharedStateSettings, StateUrl};

/// The whole configuration of one server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The protected resource: canonical URL (the RFC 9728 `resource`) and name.
    pub resource: Resource,
    /// The authorization servers whose tokens are accepted, each with its rules, discovery and
    /// verification; the first is where `/.well-known/oauth-authorization-server` forwards.
    pub issuers: TrustedIssuers,
    /// What `/.well-known/oauth-authorization-server` does.
    pub as_metadata: AsMetadataMode,
    /// How keys (and introspection answers) are fetched: timeouts, sizes, caching.
    pub keys: KeySourceSettings,
    /// How many verified JWTs are remembered, and for how long.
    pub token_cache: TokenCacheSettings,
    /// Which scopes each request needs.
    pub scopes: ScopePolicy,
    /// Accepted `Host` and `Origin` values.
    pub guard: GuardPolicy,
    /// Request size, time and connection bounds.
    pub limits: Limits,
    /// Requests per principal.
    pub rate_limit: RateLimit,
    /// Sessions (with their caps) or stateless.
    pub transport: Transport,
    /// Where `/metrics` is served (its own listener); `None`: nowhere.
    pub metrics_addr: Option<SocketAddr>,
    /// DPoP-bound tokens (RFC 9449): off, allowed beside bearer tokens, or required.
    pub dpop: DpopSettings,
    /// Gateway mode: the MCP endpoint requests are forwarded to once they pass every check
    /// ([`crate::ServerBuilder::gateway`]); `None`: the server's own tools answer.
    pub upstream: Option<Upstream>,
    /// State shared by replicas (rate limits, DPoP proofs, revocations) on Redis or Valkey;
    /// `None`: each process keeps its own.
    pub shared_state: Option<SharedStateSettings>,
}

impl Settings {
    /// A server at the configured `resource` trusting `issuer`, listening on `listen`, with every
    /// other setting at its default: tokens must name the resource URL as audience; `Host` and
    /// `Origin` must be the resource's own (plus any loopback name and origin when `listen` is a
    /// loopback address: T04, T05); tools need the scopes their code declares.
    pub fn new(issuer: Issuer, resource: ResourceUrl, listen: SocketAddr) -> Self {
        Self::with_resource(issuer, Resource::new(resource), listen)
    }

    /// A local server trusting `issuer` on the loopback address `listen`, its resource URL
    /// derived as `http://localhost:PORT/mcp`: clients may also call it by the address itself
    /// (`127.0.0.1` or `[::1]`), see that spelling as the resource, and bring tokens for it (A21).
    pub fn local(issuer: Issuer, listen: SocketAddr) -> Self {
        let literal = match listen.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Self::with_resource(issuer, Resource::local(listen.port(), &[&literal]), listen)
    }

    fn with_resource(issuer: Issuer, resource: Resource, listen: SocketAddr) -> Self {
        let loopback = listen.ip().is_loopback();
        let mut audiences = resource.spellings().map(ResourceUrl::audience);
        let first = audiences.next().unwrap_or_else(|| resource.url.audience());
        Self {
            listen,
            guard: GuardPolicy::for_resource(&resource.url, loopback),
            issuers: TrustedIssuers::new(TrustedIssuer::new(
                ValidationPolicy::new(issuer, first.clone()).with_audiences(first, audiences),
            )),
            resource,
            as_metadata: AsMetadataMode::default(),
            keys: KeySourceSettings::default(),
            token_cache: TokenCacheSettings::default(),
            scopes: ScopePolicy::default(),
            limits: Limits::default(),
            rate_limit: RateLimit::default(),
            transport: Transport::default(),
            metrics_addr: None,
            upstream: None,
            dpop: DpopSettings::default(),
            shared_state: None,
        }
    }

    /// The first trusted issuer.
    pub fn issuer(&self) -> &Issuer {
        self.issuers.primary().issuer()
    }

    /// The first trusted issuer's rules (most deployments trust one).
    pub fn validation(&self) -> &ValidationPolicy {
        &self.issuers.primary().validation
    }

    /// The first trusted issuer's rules, to change them.
    pub fn validation_mut(&mut self) -> &mut ValidationPolicy {
        &mut self.issuers.primary_mut().validation
    }
}
