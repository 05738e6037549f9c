//! Everything the server needs to run, as typed policies. Each piece lives beside the code that
//! enforces it and has a default or a constructor, so a test or an embedding program builds a
//! [`Settings`] directly; the command line and environment ([`crate::Args`]) are one way to make
//! one, and the only place that reads them.

use std::net::SocketAddr;

use crate::auth::authorization_server::{AuthorizationServerSettings, Issuer};
use crate::auth::keys::KeySourceSettings;
use crate::auth::policy::ValidationPolicy;
use crate::auth::scopes::ScopePolicy;
use crate::edge::Limits;
use crate::guard::GuardPolicy;
use crate::metadata::AsMetadataMode;
use crate::resource::{Resource, ResourceUrl};
use crate::session::Transport;
use crate::tools::TOOL_SCOPES;

/// The whole configuration of one server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The protected resource: canonical URL (the RFC 9728 `resource`) and name.
    pub resource: Resource,
    /// Where the authorization server's metadata and keys are, when not discovered.
    pub authorization_server: AuthorizationServerSettings,
    /// What `/.well-known/oauth-authorization-server` does.
    pub as_metadata: AsMetadataMode,
    /// How keys are fetched and cached.
    pub keys: KeySourceSettings,
    /// What a token must satisfy.
    pub validation: ValidationPolicy,
    /// Which scopes each request needs.
    pub scopes: ScopePolicy,
    /// Accepted `Host` and `Origin` values.
    pub guard: GuardPolicy,
    /// Request size bounds.
    pub limits: Limits,
    /// Sessions or stateless.
    pub transport: Transport,
}

impl Settings {
    /// A server at `resource` trusting `issuer`, listening on `listen`, with every other setting at
    /// its default: tokens must name the resource URL as audience; `Host` and `Origin` must be
    /// the resource's own (plus loopback spellings when `listen` is loopback or all interfaces);
    /// tools need the scopes their code declares.
    pub fn new(issuer: Issuer, resource: ResourceUrl, listen: SocketAddr) -> Self {
        let local = listen.ip().is_loopback() || listen.ip().is_unspecified();
        Self {
            listen,
            guard: GuardPolicy::for_resource(&resource, local),
            validation: ValidationPolicy::new(issuer, resource.audience()),
            resource: Resource::new(resource),
            authorization_server: AuthorizationServerSettings::default(),
            as_metadata: AsMetadataMode::default(),
            keys: KeySourceSettings::default(),
            scopes: ScopePolicy::for_tools(TOOL_SCOPES),
            limits: Limits::default(),
            transport: Transport::default(),
        }
    }

    /// The trusted issuer.
    pub fn issuer(&self) -> &Issuer {
        self.validation.issuer()
    }
}
