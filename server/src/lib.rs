//! An MCP server that serves tools only to callers holding a valid OAuth 2.x access token: the
//! resource-server half of the MCP authorization spec, in front of any [rmcp] handler.
//!
//! Put your tools behind it, with each tool's scopes declared where the tool is:
//!
//! ```no_run
//! use mcp_oauth_server::Principal;
//! use mcp_oauth_server::tools::{get_me, requires_scopes};
//! use rmcp::handler::server::router::tool::ToolRouter;
//! use rmcp::{ServerHandler, tool, tool_handler, tool_router};
//!
//! #[derive(Clone)]
//! struct Greeter {
//!     tool_router: ToolRouter<Self>,
//! }
//!
//! #[tool_router]
//! impl Greeter {
//!     /// Needs `greet`; the caller comes from the verified token.
//!     #[tool(description = "Greet the caller", meta = requires_scopes(["greet"]))]
//!     async fn greet(&self, caller: Principal) -> String {
//!         format!("hello, {}", caller.subject())
//!     }
//! }
//!
//! #[tool_handler(router = self.tool_router)]
//! impl ServerHandler for Greeter {}
//!
//! #[tokio::main]
//! async fn main() -> Result<(), mcp_oauth_server::RunError> {
//!     // The binary's settings (OAUTH_ISSUER, MCP_RESOURCE_URL, ...); get_me added beside greet.
//!     mcp_oauth_server::run(|| Greeter {
//!         tool_router: Greeter::tool_router().with_route(get_me()),
//!     })
//!     .await
//! }
//! ```
//!
//! What you use:
//! - [`run`]: what the `mcp-oauth-server` binary does, for your handler ([`Startup`] for its
//!   settings and listener alone).
//! - [`Server`]: built with [`Server::builder`] over [`Settings`] and your handler; then
//!   [`Server::serve`], or [`Server::router`] to merge into an axum app of yours.
//! - [`tools`]: [`tools::get_me`] for any tool router, [`tools::requires_scopes`] for a tool's
//!   scopes. In a tool, the caller is a [`Principal`] parameter.
//! - [`settings`]: [`Settings`] and the typed policies it is made of, for building them in code;
//!   [`config`]'s [`Args`] makes them from flags and environment as the binary does.
//! - [`gateway`]: the same checks in front of an MCP server in any language
//!   ([`ServerBuilder::gateway`], `MCP_UPSTREAM_URL`), forwarding what passes them.
//! - [`validation`]: the token validator as a pure function, for checking tokens offline.
//! - [`Clock`]: time as a dependency ([`SystemClock`], or [`OffsetClock`] in tests).
//!
//! Inside, one concept per module: [`config`] (flags and environment → [`Settings`], the only
//! module that knows the variable names), `resource` (the canonical resource URL), `auth` (the
//! bearer layer: `Authorization` header → verified token → [`Principal`], discovery, keys,
//! challenges, scopes), `edge` (size limits), `guard` (Origin and Host), `session` (sessions bound
//! to their principal), `rate_limit`, `serve` (the accept loop), `metadata` (RFC 9728),
//! `jsonrpc` (errors answered before rmcp), [`gateway`] (forwarding to an upstream), `health`, `telemetry` (metrics and the audit trail),
//! `app` (where routes and layers are assembled around the handler).

// Also set for the workspace; stated here because this crate is published.
#![warn(missing_docs)]

mod admission;
mod app;
mod auth;
mod clock;
pub mod config;
mod digest;
mod edge;
pub mod gateway;
mod guard;
mod health;
mod jsonrpc;
mod metadata;
mod rate_limit;
mod resource;
mod revoke;
mod run;
mod serve;
mod session;
pub mod settings;
pub mod shared_state;
mod telemetry;
pub mod tools;
pub mod validation;

pub use app::{CatalogError, Forwarding, NoHandler, Server, ServerBuilder, StartError};
pub use auth::authorization_server::DiscoveryError;
pub use auth::claims::VerifiedClaims;
pub use auth::fetch::FetchError;
pub use auth::keys::RefreshError;
pub use auth::{Principal, TokenKind, VerifiedBy};
pub use clock::{Clock, OffsetClock, SystemClock};
pub use config::{Args, ConfigError};
pub use run::{RunError, Startup, flush_logs, run};
pub use settings::Settings;
pub use telemetry::AUDIT_TARGET;
