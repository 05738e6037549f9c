//! OAuth-protected MCP server: serves MCP tools only to callers holding a valid access token.
//!
//! - `config`: flags, environment and `.env` ([`Args`]) → [`Settings`], every problem reported
//!   at once; the only module that knows the variable names.
//! - `settings`: [`Settings`], the typed policies the server runs with; tests build it directly.
//! - `resource`: the canonical resource URL ([`ResourceUrl`]) and what derives from it.
//! - `auth`: the bearer layer: `Authorization` header → verified JWT → [`Principal`]; the
//!   authorization server (discovery), its keys, the validator ([`validate`]), challenges, scopes.
//! - `edge`: size limits applied before anything reads the request.
//! - `guard`: Origin and Host checks (DNS rebinding).
//! - `session`: MCP sessions bound to the principal that opened them, within caps.
//! - `rate_limit`: a request budget per principal.
//! - `serve`: the accept loop (timeouts, connection cap, graceful drain).
//! - `metadata`: RFC 9728 resource metadata and authorization-server metadata forwarding.
//! - `jsonrpc`: the JSON-RPC errors answered before rmcp runs.
//! - [`tools`]: `get_me` for any handler, and how a tool declares its scopes; tools see a
//!   [`Principal`], never a token.
//! - `health`: liveness and readiness.
//! - `app`: [`Server`], built over the user's rmcp handler: the one place routes and layers are
//!   assembled; [`Server::serve`] runs them.
//! - `clock`: time as a dependency ([`Clock`]).


// Also set for the workspace; stated here because this crate is published.
#![warn(missing_docs)]
mod app;
mod auth;
mod clock;
mod config;
mod edge;
mod guard;
mod health;
mod jsonrpc;
mod metadata;
mod rate_limit;
mod resource;
mod run;
mod serve;
mod session;
mod settings;
mod telemetry;
pub mod tools;

pub use app::{CatalogError, NoHandler, Server, ServerBuilder, StartError};
pub use auth::authorization_server::{AuthorizationServerSettings, DiscoveryError, Issuer};
pub use auth::claims::VerifiedClaims;
pub use auth::fetch::{FetchError, FetchUrl, UrlError};
pub use auth::issuers::{TrustError, TrustedIssuer, TrustedIssuers};
pub use auth::key_set::{JwksError, KeyRejection, KeySet, VerificationKey};
pub use auth::keys::{KeySourceSettings, RefreshError};
pub use auth::policy::{
    AlgorithmAllowList, AlgorithmError, Audience, ClientIdAudience, EmptyAudience, Leeway,
    LeewayTooLong, PermissionClaims, PermissionClaimsError, TokenTypePolicy, ValidationPolicy,
};
pub use auth::remote::{
    ClientAuthMethod, ClientSecret, IntrospectedAudience, IntrospectionSettings, RemoteUnavailable,
    RemoteVerification, TokenInfoSettings,
};
pub use auth::scopes::ScopePolicy;
pub use auth::token::validate;
pub use auth::token_cache::TokenCacheSettings;
pub use auth::token_error::TokenError;
pub use auth::{Principal, TokenKind, VerifiedBy};
pub use clock::{Clock, OffsetClock, SystemClock};
pub use config::{
    Args, ArgsError, AsMetadataArg, ClientAuthArg, ConfigError, ConfigProblem, IntrospectArg,
    IntrospectionAudienceArg, TokenTypesArg, UnknownVariable, unknown_variables,
};
pub use edge::Limits;
pub use guard::{AllowedHost, AllowedOrigin, GuardEntryError, GuardPolicy};
pub use metadata::AsMetadataMode;
pub use rate_limit::RateLimit;
pub use resource::{Resource, ResourceUrl};
pub use run::{RunError, Startup, run};
pub use session::{SessionLimits, Transport};
pub use settings::Settings;
pub use telemetry::AUDIT_TARGET;
