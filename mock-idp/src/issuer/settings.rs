//! How an issuer signs and publishes: algorithm, `typ`, lifetimes, rotation, JWKS caching, the
//! default audience. The builder sets a default for all issuers and may override it per tenant;
//! the configuration file spells it in JSON with durations in seconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::keys::Algorithm;
use crate::tokens::TokenTyp;

/// How an issuer signs and publishes. The builder sets a default for all issuers and may override
/// it per tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerSettings {
    /// The algorithm new keys sign with.
    pub algorithm: Algorithm,
    /// The access tokens' `typ` header.
    pub typ: TokenTyp,
    /// `expires_in` of tokens from the token endpoint.
    #[serde(with = "secs")]
    pub token_lifetime: Duration,
    /// Rotate the signing key this often (checked on every request); `None`: only on demand.
    #[serde(with = "opt_secs")]
    pub rotation_period: Option<Duration>,
    /// How long a retired key stays in the JWKS, so tokens it signed keep verifying.
    #[serde(with = "secs")]
    pub grace_period: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    #[serde(with = "secs")]
    pub jwks_max_age: Duration,
    /// `aud` of minted tokens that name none.
    pub default_audience: String,
    /// Resources whose access tokens are opaque random strings rather than JWTs: the resource
    /// server must introspect them (RFC 7662), as Okta, Auth0 and Keycloak can be set to do.
    pub opaque_resources: Vec<String>,
    /// Whether a DPoP proof at the token endpoint must carry the nonce this issuer provides
    /// (RFC 9449 §8): without it the answer is `use_dpop_nonce` with a `DPoP-Nonce` to retry with.
    pub dpop_nonce: bool,
}

impl Default for IssuerSettings {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::RS256,
            typ: TokenTyp::AtJwt,
            token_lifetime: Duration::from_secs(300),
            rotation_period: None,
            grace_period: Duration::from_secs(3600),
            jwks_max_age: Duration::from_secs(300),
            default_audience: "http://localhost:8000/mcp".into(),
            opaque_resources: Vec::new(),
            dpop_nonce: false,
        }
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}
