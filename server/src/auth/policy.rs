//! What a token must satisfy to be accepted here: the trusted issuer, this server's audiences, the
//! signature algorithms on the allow-list, the clock leeway and the accepted `typ` headers
//! (checklist D03-D07, E02-E09, J01-J04, J35-J38). Each part is a type that cannot hold a wrong
//! value: no HMAC or `none` in the allow-list, no empty audience list, no leeway over five minutes.

use std::str::FromStr as _;
use std::time::Duration;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::authorization_server::Issuer;

/// The rules one issuer's tokens are judged by.
#[derive(Debug, Clone)]
pub struct ValidationPolicy {
    issuer: Issuer,
    audiences: Vec<Audience>,
    client_audience: Option<ClientIdAudience>,
    permissions: PermissionClaims,
    algorithms: AlgorithmAllowList,
    leeway: Leeway,
    token_types: TokenTypePolicy,
}

impl ValidationPolicy {
    /// Tokens of `issuer` for `audience`, with the default algorithms, leeway and token types.
    pub fn new(issuer: Issuer, audience: Audience) -> Self {
        Self {
            issuer,
            audiences: vec![audience],
            client_audience: None,
            permissions: PermissionClaims::default(),
            algorithms: AlgorithmAllowList::default(),
            leeway: Leeway::default(),
            token_types: TokenTypePolicy::default(),
        }
    }

    /// The same rules for tokens of another issuer (Entra ID's v1 issuer next to its v2 one),
    /// except the Cognito client-id rule: client ids are one issuer's, and another issuer's
    /// token naming the same id must not pass without an `aud` (P06).
    pub fn for_issuer(&self, issuer: Issuer) -> Self {
        Self {
            issuer,
            client_audience: None,
            ..self.clone()
        }
    }

    /// Accepts tokens naming any of `audiences` (D03); `first` makes the list non-empty.
    pub fn with_audiences(
        mut self,
        first: Audience,
        more: impl IntoIterator<Item = Audience>,
    ) -> Self {
        self.audiences = std::iter::once(first).chain(more).collect();
        self
    }

    /// Also accepts tokens with no `aud` that name an allowed client instead (Cognito). Opt-in:
    /// without it, a token must name one of our audiences (D04).
    pub fn with_client_audience(mut self, rule: ClientIdAudience) -> Self {
        self.client_audience = Some(rule);
        self
    }

    /// Which claims carry the granted permissions.
    pub fn with_permission_claims(mut self, permissions: PermissionClaims) -> Self {
        self.permissions = permissions;
        self
    }

    /// The signature algorithms accepted.
    pub fn with_algorithms(mut self, algorithms: AlgorithmAllowList) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// The clock skew tolerated on `exp` and `nbf`.
    pub fn with_leeway(mut self, leeway: Leeway) -> Self {
        self.leeway = leeway;
        self
    }

    /// The `typ` headers accepted.
    pub fn with_token_types(mut self, token_types: TokenTypePolicy) -> Self {
        self.token_types = token_types;
        self
    }

    /// `iss` must equal this byte for byte (E02).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// `aud` must name one of these.
    pub fn audiences(&self) -> &[Audience] {
        &self.audiences
    }

    /// The Cognito-style rule, when opted in.
    pub fn client_audience(&self) -> Option<&ClientIdAudience> {
        self.client_audience.as_ref()
    }

    /// The claims read as permissions.
    pub fn permission_claims(&self) -> PermissionClaims {
        self.permissions
    }

    /// The allow-list.
    pub fn algorithms(&self) -> &AlgorithmAllowList {
        &self.algorithms
    }

    /// The leeway.
    pub fn leeway(&self) -> Leeway {
        self.leeway
    }

    /// The accepted `typ` headers.
    pub fn token_types(&self) -> TokenTypePolicy {
        self.token_types
    }

    /// Whether any audience of a token is one of ours.
    pub(crate) fn accepts_audience(&self, token_audience: &str) -> bool {
        self.audiences
            .iter()
            .any(|ours| ours.matches(token_audience))
    }
}

/// An audience this server accepts in `aud` (RFC 9068 §4, RFC 8707): usually the canonical
/// resource URL, or what the provider puts there (`api://default`, a client id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(String);

impl Audience {
    /// An audience value; empty ones are refused.
    ///
    /// # Errors
    /// [`EmptyAudience`] for an empty or blank value.
    pub fn new(value: impl Into<String>) -> Result<Self, EmptyAudience> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(EmptyAudience);
        }
        Ok(Self(value))
    }

    /// A URL as an audience (a URL is never empty).
    pub fn from_url(url: &url::Url) -> Self {
        Self(url.as_str().to_owned())
    }

    /// The value as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Exact comparison, except that for `http` and `https` URLs the scheme and the host may
    /// differ in case (MCP "Canonical Server URI": implementations SHOULD accept an uppercase
    /// scheme or host, D07). Userinfo, port, path and query compare byte for byte, and any other
    /// audience (`api://Orders-API`, a client id) compares byte for byte: no trailing-slash, port,
    /// path or percent-encoding folding (J34).
    pub fn matches(&self, token_audience: &str) -> bool {
        if token_audience == self.0 {
            return true;
        }
        match (
            HttpUrlParts::split(token_audience),
            HttpUrlParts::split(&self.0),
        ) {
            (Some(theirs), Some(ours)) => theirs.same_as(&ours),
            _ => false,
        }
    }
}

/// An `http` or `https` URL cut where RFC 3986 says, without any normalisation.
struct HttpUrlParts<'a> {
    scheme: &'a str,
    userinfo: &'a str,
    host: &'a str,
    port: &'a str,
    rest: &'a str,
}

impl<'a> HttpUrlParts<'a> {
    fn split(uri: &'a str) -> Option<Self> {
        let (scheme, after) = uri.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return None;
        }
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, host_port) = match authority.rfind('@') {
            Some(at) => authority.split_at(at + 1),
            None => ("", authority),
        };
        // An IPv6 literal keeps its colons inside the brackets.
        let port_from = match host_port.rfind(']') {
            Some(bracket) => host_port[bracket..].find(':').map(|c| bracket + c),
            None => host_port.find(':'),
        };
        let (host, port) = host_port.split_at(port_from.unwrap_or(host_port.len()));
        Some(Self {
            scheme,
            userinfo,
            host,
            port,
            rest,
        })
    }

    fn same_as(&self, other: &Self) -> bool {
        self.scheme.eq_ignore_ascii_case(other.scheme)
            && self.host.eq_ignore_ascii_case(other.host)
            && self.userinfo == other.userinfo
            && self.port == other.port
            && self.rest == other.rest
    }
}

/// The audience rule of providers whose access tokens name the client instead of the audience:
/// AWS Cognito's access tokens have no `aud`, but `token_use: access` and the app client's
/// `client_id`. Such a token is accepted only when its `client_id` is on this list, which is never
/// empty (checklist P06).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdAudience(Vec<String>);

impl ClientIdAudience {
    /// The app client ids whose access tokens are for this server.
    ///
    /// # Errors
    /// [`EmptyAudience`] when the list is empty or holds an empty id.
    pub fn new<S: Into<String>>(
        client_ids: impl IntoIterator<Item = S>,
    ) -> Result<Self, EmptyAudience> {
        let ids: Vec<String> = client_ids.into_iter().map(Into::into).collect();
        if ids.is_empty() || ids.iter().any(|id| id.trim().is_empty()) {
            return Err(EmptyAudience);
        }
        Ok(Self(ids))
    }

    /// Whether `client_id` is one of them (byte for byte).
    pub(crate) fn allows(&self, client_id: &str) -> bool {
        self.0.iter().any(|id| id == client_id)
    }
}

/// The claims that carry what a token permits. `scope` (RFC 9068, space-separated) and `scp`
/// (Okta, Entra ID delegated permissions: array or string) are read by default, `scope` first;
/// `roles` (Entra ID app-only permissions) only when the operator says so, because a role is not
/// a scope unless the application defines it as one (checklist P08).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PermissionClaims {
    /// Read `scope`.
    pub scope: bool,
    /// Read `scp`.
    pub scp: bool,
    /// Read `roles`.
    pub roles: bool,
}

impl Default for PermissionClaims {
    /// `scope`, else `scp`.
    fn default() -> Self {
        Self {
            scope: true,
            scp: true,
            roles: false,
        }
    }
}

impl PermissionClaims {
    /// The claims `names` lists (`scope`, `scp`, `roles`; blank names ignored), as
    /// `OAUTH_PERMISSION_CLAIMS` and the issuers file spell them.
    ///
    /// # Errors
    /// [`PermissionClaimsError`] for another name, or for a list that names none: a token would
    /// then carry no permission at all.
    pub fn from_names<'a>(
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, PermissionClaimsError> {
        let mut claims = Self {
            scope: false,
            scp: false,
            roles: false,
        };
        for name in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "scope" => claims.scope = true,
                "scp" => claims.scp = true,
                "roles" => claims.roles = true,
                other => return Err(PermissionClaimsError::Unknown(other.to_owned())),
            }
        }
        if claims.scope || claims.scp || claims.roles {
            Ok(claims)
        } else {
            Err(PermissionClaimsError::NoneNamed)
        }
    }
}

/// Why a list of permission claims is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermissionClaimsError {
    /// Not `scope`, `scp` or `roles`.
    #[error("{0:?} is not one of scope, scp, roles")]
    Unknown(String),
    /// An empty list.
    #[error("name at least one of scope, scp, roles")]
    NoneNamed,
}

/// An empty audience would match nothing a provider sends, or everything a careless comparison
/// lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an audience must not be empty")]
pub struct EmptyAudience;

/// The asymmetric signature algorithms accepted (E04): never `none`, never HMAC, never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmAllowList(Vec<Algorithm>);

impl AlgorithmAllowList {
    /// An allow-list of `algorithms`.
    ///
    /// # Errors
    /// [`AlgorithmError::Hmac`] for an HMAC algorithm (a JWKS key must never be an HMAC secret),
    /// [`AlgorithmError::Empty`] for an empty list.
    pub fn new(algorithms: impl IntoIterator<Item = Algorithm>) -> Result<Self, AlgorithmError> {
        let mut list: Vec<Algorithm> = Vec::new();
        for alg in algorithms {
            if alg.family() == AlgorithmFamily::Hmac {
                return Err(AlgorithmError::Hmac(alg));
            }
            if !list.contains(&alg) {
                list.push(alg);
            }
        }
        if list.is_empty() {
            return Err(AlgorithmError::Empty);
        }
        Ok(Self(list))
    }

    /// Parses one JOSE algorithm name (case-sensitive, RFC 7515 §4.1.1) for the allow-list.
    ///
    /// # Errors
    /// [`AlgorithmError::Unknown`] or [`AlgorithmError::Hmac`].
    pub fn parse_one(name: &str) -> Result<Algorithm, AlgorithmError> {
        let alg =
            Algorithm::from_str(name).map_err(|_| AlgorithmError::Unknown(name.to_owned()))?;
        if alg.family() == AlgorithmFamily::Hmac {
            return Err(AlgorithmError::Hmac(alg));
        }
        Ok(alg)
    }

    /// The names of the allowed algorithms, space separated (`ES256 RS256`), as a DPoP challenge's
    /// `algs` and the metadata's `dpop_signing_alg_values_supported` list them.
    pub(crate) fn names(&self) -> Vec<String> {
        self.0.iter().map(|alg| format!("{alg:?}")).collect()
    }

    /// The allow-listed algorithm a header's `alg` names exactly, if any: `none`, HMAC and every
    /// other spelling never match.
    pub(crate) fn find(&self, header_alg: &str) -> Option<Algorithm> {
        let alg = Algorithm::from_str(header_alg).ok()?;
        self.0.contains(&alg).then_some(alg)
    }
}

impl Default for AlgorithmAllowList {
    /// Every asymmetric algorithm jsonwebtoken verifies: RS/PS 256-512, ES256/384, EdDSA.
    fn default() -> Self {
        Self(vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ])
    }
}

/// Why an algorithm cannot be allow-listed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlgorithmError {
    /// Not a JWS algorithm name jsonwebtoken knows.
    #[error("{0:?} is not a JWS algorithm")]
    Unknown(String),
    /// HMAC: with a JWKS, the "secret" would be a public key anyone has (J03).
    #[error("{0:?}: HMAC is never accepted (a JWKS key must not be an HMAC secret)")]
    Hmac(Algorithm),
    /// Nothing would be accepted.
    #[error("at least one algorithm is required")]
    Empty,
}

/// Clock skew tolerated on `exp` and `nbf`: at most five minutes (RFC 9068 expects "a few").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leeway(u16);

impl Leeway {
    /// The largest leeway accepted.
    pub const MAX: Duration = Duration::from_secs(300);

    /// A leeway of `duration` (whole seconds).
    ///
    /// # Errors
    /// [`LeewayTooLong`] above [`Leeway::MAX`].
    pub fn new(duration: Duration) -> Result<Self, LeewayTooLong> {
        u16::try_from(duration.as_secs())
            .ok()
            .filter(|secs| u64::from(*secs) <= Self::MAX.as_secs())
            .map(Self)
            .ok_or(LeewayTooLong)
    }

    /// In seconds, the unit of JWT NumericDate.
    pub fn secs(self) -> i64 {
        i64::from(self.0)
    }
}

impl Default for Leeway {
    /// 60 seconds: covers ordinary clock drift without stretching a token's life much.
    fn default() -> Self {
        Self(60)
    }
}

/// A leeway so long that expired tokens would live on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("at most 300 seconds (RFC 9068: a few minutes)")]
pub struct LeewayTooLong;

/// The `typ` headers a token may carry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TokenTypePolicy {
    /// No `typ`, `JWT`, `at+jwt` or `application/at+jwt`: what Okta, Entra ID and Keycloak send.
    #[default]
    Default,
    /// Only `at+jwt` / `application/at+jwt` (RFC 9068 §4).
    Strict,
}

impl TokenTypePolicy {
    /// RFC 9068 §4 step 1 and RFC 7515 §4.1.9: `typ` compared case-insensitively, `application/`
    /// implied.
    pub(crate) fn accepts(self, typ: Option<&str>) -> bool {
        let normalized = typ.map(|t| {
            let lower = t.to_ascii_lowercase();
            match lower.strip_prefix("application/") {
                Some(rest) => rest.to_owned(),
                None => lower,
            }
        });
        matches!(
            (normalized.as_deref(), self),
            (Some("at+jwt"), _) | (None | Some("jwt"), Self::Default)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E04, J03: HMAC and unknown names never reach the allow-list; an empty list is refused.
    #[test]
    fn the_allow_list_refuses_hmac_none_and_emptiness() {
        assert!(matches!(
            AlgorithmAllowList::parse_one("HS256"),
            Err(AlgorithmError::Hmac(_))
        ));
        assert!(matches!(
            AlgorithmAllowList::parse_one("none"),
            Err(AlgorithmError::Unknown(_))
        ));
        assert!(matches!(
            AlgorithmAllowList::parse_one("rs256"),
            Err(AlgorithmError::Unknown(_))
        ));
        assert_eq!(AlgorithmAllowList::new([]), Err(AlgorithmError::Empty));
        let list = AlgorithmAllowList::new([Algorithm::ES256]).unwrap();
        assert_eq!(list.find("ES256"), Some(Algorithm::ES256));
        assert_eq!(list.find("RS256"), None, "not on this list");
        assert_eq!(list.find("es256"), None, "case-sensitive (J02)");
    }

    /// D07, J34: http(s) audiences fold the case of scheme and host only; everything else, and
    /// every other kind of audience, compares byte for byte.
    #[test]
    fn audiences_fold_only_the_scheme_and_host_of_http_urls() {
        let ours = Audience::new("https://mcp.example.com/mcp").unwrap();
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.EXAMPLE.COM/mcp",
            "Https://Mcp.Example.Com/mcp",
        ] {
            assert!(ours.matches(same), "{same}");
        }
        for other in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com:443/mcp",
            "https://user@mcp.example.com/mcp",
            "https://mcp.example.com/mcp?x",
            "https://mcp.example.com.evil/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/%6Dcp",
        ] {
            assert!(!ours.matches(other), "{other}");
        }
        let with_port = Audience::new("http://[::1]:8000/mcp").unwrap();
        assert!(with_port.matches("HTTP://[::1]:8000/mcp"));
        assert!(!with_port.matches("http://[::1]:8001/mcp"));
        let userinfo = Audience::new("https://Ann@h.example/mcp").unwrap();
        assert!(userinfo.matches("https://Ann@H.EXAMPLE/mcp"));
        assert!(
            !userinfo.matches("https://ann@h.example/mcp"),
            "userinfo is exact"
        );
        let api = Audience::new("api://Orders-API").unwrap();
        assert!(api.matches("api://Orders-API"));
        assert!(
            !api.matches("api://orders-api"),
            "not http(s): byte for byte"
        );
        assert!(!api.matches("API://Orders-API"));
    }

    /// RFC 9068: the leeway is a few minutes at most.
    #[test]
    fn a_leeway_over_five_minutes_is_refused() {
        assert_eq!(Leeway::new(Duration::from_secs(300)).unwrap().secs(), 300);
        assert_eq!(Leeway::new(Duration::from_secs(301)), Err(LeewayTooLong));
    }

    /// J35-J38: `typ` per policy, case-insensitive, `application/` implied.
    #[test]
    fn token_types_follow_the_policy() {
        for typ in [
            None,
            Some("JWT"),
            Some("at+jwt"),
            Some("application/AT+JWT"),
        ] {
            assert!(TokenTypePolicy::Default.accepts(typ), "{typ:?}");
        }
        assert!(TokenTypePolicy::Strict.accepts(Some("at+JWT")));
        assert!(!TokenTypePolicy::Strict.accepts(Some("JWT")));
        assert!(!TokenTypePolicy::Strict.accepts(None));
        assert!(!TokenTypePolicy::Default.accepts(Some("id_token+jwt")));
    }
}
