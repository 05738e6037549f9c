//! Token validation as a pure function of (token, keys, time, policy): what the server runs for
//! every JWT, for tests and tools that check tokens offline.
//!
//! ```
//! use mcp_oauth_server::settings::{Audience, Issuer, ValidationPolicy};
//! use mcp_oauth_server::validation::{KeySet, TokenError, validate};
//!
//! let issuer = Issuer::parse("https://idp.example.com").unwrap();
//! let policy = ValidationPolicy::new(issuer, Audience::new("https://mcp.example.com/mcp").unwrap());
//! // The issuer's published keys, as its JWKS document says.
//! let jwks = serde_json::json!({"keys": [{
//!     "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256",
//!     "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
//!     "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
//! }]});
//! let keys = KeySet::from_jwks(&jwks).unwrap();
//! assert_eq!(
//!     validate("not-a-jwt", &keys, 1_800_000_000, &policy),
//!     Err(TokenError::Malformed("not a compact JWS"))
//! );
//! ```

pub use crate::auth::key_set::{JwksError, KeyRejection, KeySet, VerificationKey};
pub use crate::auth::token::validate;
pub use crate::auth::token_error::TokenError;
