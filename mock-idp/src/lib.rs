//! A mock OAuth 2.x / OpenID Connect provider for tests and local demos: real signed tokens,
//! offline, on demand, including deliberately broken ones.
//!
//! - [`MockIdp`] / [`MockIdpBuilder`]: start one on a random port, in-process; dropping it stops it.
//! - [`IssuerHandle`]: one issuer (the root one or `/{tenant}`, each with its own keys): mint,
//!   forge, rotate, fault injection, request counters.
//! - [`AccessTokenSpec`]: what a valid RFC 9068 access token says.
//! - [`attack`]: everything that makes invalid tokens ([`attack::Forgery`]).
//! - [`Clock`]: the controllable clock behind `iat`, `exp`, rotation and grace periods.
//! - [`Fault`] / [`Endpoint`]: make an endpoint fail, hang, lie or hang up.
//! - [`Client`]: registered clients for the `client_credentials` grant.
//! - [`KeyPair`] / [`KeySupply`]: signing keys, pre-made (fixtures) or generated.
//!
//! Endpoints per issuer: `/.well-known/openid-configuration`, RFC 8414 metadata, `/jwks`,
//! `/token`; with admin enabled, `/admin/...` (see the README).

pub mod attack;
mod clients;
mod clock;
mod config;
pub mod dpop;
mod error;
mod faults;
mod grants;
mod issuer;
mod issuers;
mod keys;
mod proofs;
mod routes;
mod server;
mod tokens;
mod users;

pub use clients::{Client, ClientSecret, GrantType};
pub use clock::Clock;
pub use config::IdpConfig;
pub use error::{IdpError, OAuthError, OAuthErrorCode};
pub use faults::{Endpoint, Fault, FaultAction};
pub use issuer::{IssuerHandle, IssuerSettings};
pub use keys::{Algorithm, KeyFamily, KeyPair, KeySupply, Rotation};
pub use server::{MockIdp, MockIdpBuilder};
pub use tokens::{AccessTokenSpec, Audience, TokenTyp};
pub use users::User;
