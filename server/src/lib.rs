//! OAuth-protected MCP server: serves MCP tools only to callers holding a valid access token.
//!
//! - [`config`]: flags, environment and `.env`, parsed and cross-checked once at start-up.
//! - [`auth`]: the bearer layer: `Authorization` header → verified JWT → [`auth::Principal`];
//!   keys, discovery, challenges, scopes.
//! - [`edge`]: limits applied before anything reads the request.
//! - [`guard`]: Origin and Host checks (DNS rebinding).
//! - [`session`]: MCP sessions bound to the principal that opened them.
//! - [`metadata`]: RFC 9728 resource metadata and authorization-server metadata forwarding.
//! - [`tools`]: the MCP tools (`get_me`); they see a [`auth::Principal`], never a token.
//! - [`health`]: liveness and readiness.
//! - [`app`]: the one place routes and layers are assembled; [`App::serve`] runs them.
//! - [`clock`]: time as a dependency.
//! - `demo` (feature `demo`): the mock IdP in-process for `--demo`.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod edge;
pub mod guard;
pub mod health;
pub mod metadata;
pub mod session;
pub mod tools;

pub use app::{App, StartError};
pub use config::{Args, Config, ConfigError};
