//! Configuration from CLI flags, environment variables and a `.env` file, parsed and
//! cross-checked once at start-up. Every failure names its variable, all failures are reported
//! together, and nothing security-relevant defaults to "off".
//!
//! The Python sample's contract is kept: `OAUTH_WELL_KNOWN_URL`, `OAUTH_JWKS_URI`, `OAUTH_ISSUER`,
//! `OAUTH_AUDIENCE`, `HOST` (0.0.0.0) and `PORT` (8000).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use jsonwebtoken::Algorithm;
use url::Url;

/// The command line and environment, before validation. `--help` documents every setting.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-oauth-server",
    version,
    about = "An MCP server that serves tools only to callers holding a valid OAuth 2.x access token."
)]
pub struct Args {
    /// Start a mock identity provider in-process on loopback and print a ready token.
    #[arg(long)]
    pub demo: bool,
    /// The authorization server's issuer identifier; `iss` must equal it byte for byte.
    #[arg(long, env = "OAUTH_ISSUER")]
    pub issuer: Option<String>,
    /// Accepted token audiences, comma-separated (default: the canonical resource URL).
    #[arg(long, env = "OAUTH_AUDIENCE", value_delimiter = ',')]
    pub audience: Vec<String>,
    /// The JWKS URL (default: `jwks_uri` from the issuer's RFC 8414 or OIDC metadata).
    #[arg(long, env = "OAUTH_JWKS_URI")]
    pub jwks_uri: Option<String>,
    /// The authorization server metadata URL that `/.well-known/oauth-authorization-server`
    /// forwards to (default: the issuer's RFC 8414 URL).
    #[arg(long, env = "OAUTH_WELL_KNOWN_URL")]
    pub well_known_url: Option<String>,
    /// Address to listen on (default 0.0.0.0; 127.0.0.1 with --demo).
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on (0: any free port, which the derived resource URL then names).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// The canonical URL of the MCP endpoint, as clients reach it (e.g. https://mcp.example.com/mcp).
    /// Derived as http://localhost:PORT/mcp when listening on loopback or all interfaces.
    #[arg(long, env = "MCP_RESOURCE_URL")]
    pub resource_url: Option<String>,
    /// Human-readable name in the RFC 9728 metadata.
    #[arg(long, env = "MCP_RESOURCE_NAME", default_value = "MCP server")]
    pub resource_name: String,
    /// Accepted signature algorithms, comma-separated; asymmetric only.
    #[arg(
        long,
        env = "OAUTH_ALGORITHMS",
        value_delimiter = ',',
        default_value = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA"
    )]
    pub algorithms: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    #[arg(long, env = "OAUTH_LEEWAY_SECS", default_value_t = 60)]
    pub leeway_secs: u64,
    /// Scopes every MCP request needs, space-separated.
    #[arg(long, env = "OAUTH_REQUIRED_SCOPES", value_delimiter = ' ')]
    pub required_scopes: Vec<String>,
    /// Per-tool scopes overriding the code's, as TOOL=SCOPE[ SCOPE...], comma-separated
    /// (e.g. "get_me=mcp:read").
    #[arg(long, env = "MCP_TOOL_SCOPES", value_delimiter = ',')]
    pub tool_scopes: Vec<String>,
    /// Scope hierarchy: a broader scope satisfies narrower ones, as SCOPE=IMPLIED[ IMPLIED...],
    /// comma-separated (e.g. "mcp:admin=mcp:read mcp:write").
    #[arg(long, env = "OAUTH_SCOPE_IMPLIES", value_delimiter = ',')]
    pub scope_implies: Vec<String>,
    /// Which token `typ` headers are accepted: `default` (none, JWT, at+jwt) or `strict`
    /// (at+jwt only, RFC 9068).
    #[arg(long, env = "OAUTH_TOKEN_TYPES", value_enum, default_value_t = TokenTypePolicy::Default)]
    pub token_types: TokenTypePolicy,
    /// Accepted `Host` values (host or host:port), comma-separated (default: the resource URL's
    /// host, plus localhost, 127.0.0.1 and [::1] when listening locally).
    #[arg(long, env = "MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Accepted browser `Origin` values, comma-separated (default: the resource URL's origin,
    /// plus any loopback origin when listening locally). Requests without `Origin` are fine.
    #[arg(long, env = "MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Stateless mode: no MCP sessions, JSON responses, for horizontal scaling.
    #[arg(long, env = "MCP_STATELESS", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub stateless: bool,
    /// `/.well-known/oauth-authorization-server`: `redirect` (307, as the sample) or `proxy`
    /// (serve a cached copy, for browser clients that do not follow cross-origin redirects).
    #[arg(long, env = "OAUTH_AS_METADATA", value_enum, default_value_t = AsMetadataMode::Redirect)]
    pub as_metadata: AsMetadataMode,
    /// Timeout of each JWKS or metadata fetch, seconds.
    #[arg(long, env = "OAUTH_JWKS_TIMEOUT_SECS", default_value_t = 5)]
    pub jwks_timeout_secs: u64,
    /// Largest JWKS or metadata document accepted, bytes.
    #[arg(long, env = "OAUTH_JWKS_MAX_BYTES", default_value_t = 256 * 1024)]
    pub jwks_max_bytes: usize,
    /// Minimum time between two JWKS fetches triggered by unknown `kid`s, seconds.
    #[arg(long, env = "OAUTH_JWKS_COOLDOWN_SECS", default_value_t = 30)]
    pub jwks_cooldown_secs: u64,
    /// How long the last good JWKS is used after its freshness ends while refreshes fail, seconds.
    #[arg(long, env = "OAUTH_JWKS_STALE_SECS", default_value_t = 3600)]
    pub jwks_stale_secs: u64,
    /// Largest accepted MCP request body, bytes.
    #[arg(long, env = "MCP_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Largest accepted total of request header fields, bytes (larger: 431).
    #[arg(long, env = "MCP_MAX_HEADER_BYTES", default_value_t = 32 * 1024)]
    pub max_header_bytes: usize,
}

/// The `typ` headers a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenTypePolicy {
    /// No `typ`, `JWT`, `at+jwt` or `application/at+jwt`: what Okta, Entra ID and Keycloak send.
    Default,
    /// Only `at+jwt` / `application/at+jwt` (RFC 9068 §4).
    Strict,
}

/// What `/.well-known/oauth-authorization-server` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AsMetadataMode {
    /// 307 to the metadata URL, as the Python sample does.
    Redirect,
    /// Serve a cached copy of the document.
    Proxy,
}

/// The validated configuration. Code below `main` receives this, never the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub bind: SocketAddr,
    /// The trusted issuer, compared byte for byte with `iss` (RFC 9068 §4, E02).
    pub issuer: String,
    /// The canonical URL of `/mcp`: the RFC 9728 `resource` and the default audience (A03, D06).
    pub resource: Url,
    /// Human-readable name of the resource (A14).
    pub resource_name: String,
    /// Audiences a token may carry to be accepted here (D03).
    pub audiences: Vec<String>,
    /// The JWKS URL, when configured rather than discovered.
    pub jwks_uri: Option<Url>,
    /// Where the AS metadata route forwards to.
    pub as_metadata_url: Url,
    /// Redirect or proxy the AS metadata.
    pub as_metadata_mode: AsMetadataMode,
    /// Whether `as_metadata_url` came from `OAUTH_WELL_KNOWN_URL` (then discovery uses it too).
    pub well_known_configured: bool,
    /// The signature algorithm allow-list (E04).
    pub algorithms: Vec<Algorithm>,
    /// Tolerance on `exp` and `nbf`.
    pub leeway: Duration,
    /// Scopes every MCP request needs.
    pub required_scopes: Vec<String>,
    /// Per-tool scope overrides.
    pub tool_scopes: BTreeMap<String, Vec<String>>,
    /// Scope hierarchy: each scope and the narrower ones it grants (D08).
    pub scope_implies: BTreeMap<String, Vec<String>>,
    /// Accepted `typ` headers.
    pub token_types: TokenTypePolicy,
    /// Accepted `Host` values (T05).
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values (T02).
    pub allowed_origins: Vec<String>,
    /// Stateless JSON mode instead of sessions and SSE.
    pub stateless: bool,
    /// Bounds of JWKS and metadata fetching.
    pub jwks: JwksSettings,
    /// Largest MCP request body.
    pub max_body_bytes: usize,
    /// Largest total of request header fields.
    pub max_header_bytes: usize,
}

/// Bounds of every fetch from the authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksSettings {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Largest document.
    pub max_bytes: usize,
    /// Minimum interval between refreshes triggered by unknown `kid`s (G05).
    pub cooldown: Duration,
    /// How long stale keys are used while refreshes fail (D12 bounds it).
    pub stale_for: Duration,
}

/// Everything wrong with the configuration, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// One entry per problem.
    pub problems: Vec<ConfigProblem>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable (and flag) at fault.
    pub variable: &'static str,
    /// What is wrong and what to set.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  {}: {}", problem.variable, problem.message)?;
        }
        write!(
            f,
            "Set them in the environment, a .env file, or as flags (--help); or try --demo."
        )
    }
}

impl Config {
    /// Validates `args` into a configuration.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem at once.
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        let host = args.host.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let local = host.is_loopback() || host.is_unspecified();

        let issuer = match args.issuer.as_deref().filter(|s| !s.is_empty()) {
            None => {
                problems.add(
                    "OAUTH_ISSUER",
                    "required: the issuer identifier of your authorization server",
                );
                None
            }
            Some(issuer) => problems
                .check("OAUTH_ISSUER", issuer_url(issuer))
                .map(|_| issuer.to_owned()),
        };
        let resource = match args.resource_url.as_deref().filter(|s| !s.is_empty()) {
            Some(url) => problems.check("MCP_RESOURCE_URL", resource_url(url)),
            None if local => Url::parse(&format!("http://localhost:{}/mcp", args.port)).ok(),
            None => {
                problems.add(
                    "MCP_RESOURCE_URL",
                    "required when HOST is not loopback: the URL clients use for /mcp, e.g. https://mcp.example.com/mcp",
                );
                None
            }
        };
        let jwks_uri = args
            .jwks_uri
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|url| problems.check("OAUTH_JWKS_URI", fetchable_url(url)));
        let well_known = args
            .well_known_url
            .as_deref()
            .filter(|s| !s.is_empty())
            .and_then(|url| problems.check("OAUTH_WELL_KNOWN_URL", fetchable_url(url)));
        let algorithms: Vec<Algorithm> = args
            .algorithms
            .iter()
            .filter(|a| !a.trim().is_empty())
            .filter_map(|a| problems.check("OAUTH_ALGORITHMS", allowed_algorithm(a.trim())))
            .collect();
        if algorithms.is_empty() && !problems.names("OAUTH_ALGORITHMS") {
            problems.add("OAUTH_ALGORITHMS", "at least one algorithm is required");
        }
        if args.leeway_secs > 300 {
            problems.add(
                "OAUTH_LEEWAY_SECS",
                "at most 300 seconds (RFC 9068: a few minutes)",
            );
        }
        let tool_scopes = assignments(
            &args.tool_scopes,
            "MCP_TOOL_SCOPES",
            "TOOL=SCOPE[ SCOPE...]",
            &mut problems,
        );
        let scope_implies = assignments(
            &args.scope_implies,
            "OAUTH_SCOPE_IMPLIES",
            "SCOPE=IMPLIED[ IMPLIED...]",
            &mut problems,
        );
        for (name, value) in [
            ("OAUTH_JWKS_TIMEOUT_SECS", args.jwks_timeout_secs),
            ("OAUTH_JWKS_COOLDOWN_SECS", args.jwks_cooldown_secs),
        ] {
            if value == 0 {
                problems.add(name, "must be at least 1");
            }
        }
        if args.max_header_bytes < 8 * 1024 {
            problems.add(
                "MCP_MAX_HEADER_BYTES",
                "must be at least 8192 bytes (tokens are a few KiB)",
            );
        }
        if args.jwks_max_bytes < 1024 || args.max_body_bytes < 1024 {
            let variable = if args.jwks_max_bytes < 1024 {
                "OAUTH_JWKS_MAX_BYTES"
            } else {
                "MCP_MAX_BODY_BYTES"
            };
            problems.add(variable, "must be at least 1024 bytes");
        }
        if !problems.0.is_empty() {
            return Err(ConfigError {
                problems: problems.0,
            });
        }
        let (Some(issuer), Some(resource)) = (issuer, resource) else {
            return Err(ConfigError {
                problems: problems.0,
            });
        };

        let audiences = match args
            .audience
            .iter()
            .map(|a| a.trim())
            .filter(|a| !a.is_empty())
            .collect::<Vec<_>>()
        {
            list if list.is_empty() => vec![resource.as_str().to_owned()],
            list => list.into_iter().map(str::to_owned).collect(),
        };
        let as_metadata_url = match &well_known {
            Some(url) => url.clone(),
            None => rfc8414_url(&issuer).ok_or_else(|| ConfigError {
                problems: vec![ConfigProblem {
                    variable: "OAUTH_ISSUER",
                    message: "not a valid URL".into(),
                }],
            })?,
        };
        let resource_host = authority(&resource);
        let allowed_hosts = if args.allowed_hosts.iter().any(|h| !h.trim().is_empty()) {
            args.allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        } else {
            let mut hosts = vec![resource_host];
            if local {
                hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
            }
            hosts
        };
        let allowed_origins = if args.allowed_origins.iter().any(|o| !o.trim().is_empty()) {
            args.allowed_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        } else {
            let mut origins = vec![resource.origin().ascii_serialization()];
            if local {
                origins.extend(
                    ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
                        .map(str::to_owned),
                );
            }
            origins
        };
        Ok(Self {
            bind: SocketAddr::new(host, args.port),
            issuer,
            resource,
            resource_name: args.resource_name.clone(),
            audiences,
            jwks_uri,
            as_metadata_url,
            as_metadata_mode: args.as_metadata,
            well_known_configured: well_known.is_some(),
            algorithms,
            leeway: Duration::from_secs(args.leeway_secs),
            required_scopes: args
                .required_scopes
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect(),
            tool_scopes,
            scope_implies,
            token_types: args.token_types,
            allowed_hosts,
            allowed_origins,
            stateless: args.stateless,
            jwks: JwksSettings {
                timeout: Duration::from_secs(args.jwks_timeout_secs),
                max_bytes: args.jwks_max_bytes,
                cooldown: Duration::from_secs(args.jwks_cooldown_secs),
                stale_for: Duration::from_secs(args.jwks_stale_secs),
            },
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes,
        })
    }

    /// The RFC 9728 metadata URL for the resource: the well-known segment inserted before the
    /// path (`https://h/.well-known/oauth-protected-resource/mcp`, RFC 9728 §3.1, A05).
    pub fn resource_metadata_url(&self) -> String {
        let path = self.resource.path().trim_end_matches('/');
        format!(
            "{}/.well-known/oauth-protected-resource{path}",
            self.resource.origin().ascii_serialization()
        )
    }
}

/// RFC 8414 §3.1: `https://as/.well-known/oauth-authorization-server` plus the issuer's path.
pub(crate) fn rfc8414_url(issuer: &str) -> Option<Url> {
    let url = Url::parse(issuer).ok()?;
    let path = url.path().trim_end_matches('/');
    Url::parse(&format!(
        "{}/.well-known/oauth-authorization-server{path}",
        url.origin().ascii_serialization()
    ))
    .ok()
}

/// OIDC Discovery §4: the issuer plus `/.well-known/openid-configuration`.
pub(crate) fn oidc_discovery_url(issuer: &str) -> Option<Url> {
    Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .ok()
}

/// `host` or `host:port` as a `Host` header carries it.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// `NAME=VALUE[ VALUE...]` entries into a map; malformed entries are reported under `variable`.
fn assignments(
    entries: &[String],
    variable: &'static str,
    shape: &str,
    problems: &mut Problems,
) -> BTreeMap<String, Vec<String>> {
    let mut map = BTreeMap::new();
    for entry in entries.iter().filter(|e| !e.trim().is_empty()) {
        match entry.split_once('=') {
            Some((name, values)) if !name.trim().is_empty() => {
                map.insert(
                    name.trim().to_owned(),
                    values.split_whitespace().map(str::to_owned).collect(),
                );
            }
            _ => problems.add(variable, format!("{entry:?} is not {shape}")),
        }
    }
    map
}

#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, variable: &'static str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            variable,
            message: message.into(),
        });
    }

    fn check<T>(&mut self, variable: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.add(variable, message)).ok()
    }

    fn names(&self, variable: &str) -> bool {
        self.0.iter().any(|p| p.variable == variable)
    }
}

/// https, or http to a loopback host (T07: TLS everywhere except loopback).
fn fetchable_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not an absolute URL ({e})"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{value:?}: plain http is allowed only to loopback; use https"
        )),
        other => Err(format!("{value:?}: unsupported scheme {other:?}")),
    }
}

fn issuer_url(value: &str) -> Result<Url, String> {
    let url = fetchable_url(value)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{value:?}: an issuer has no query or fragment (RFC 8414 §2)"
        ));
    }
    Ok(url)
}

fn resource_url(value: &str) -> Result<Url, String> {
    let url = fetchable_url(value)?;
    if url.fragment().is_some() || url.query().is_some() {
        return Err(format!(
            "{value:?}: the resource URL has no query or fragment (RFC 8707 §2)"
        ));
    }
    if url.path().ends_with('/') && url.path() != "/" {
        return Err(format!(
            "{value:?}: no trailing slash (MCP canonical server URI)"
        ));
    }
    Ok(url)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn allowed_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg: Algorithm = name
        .parse()
        .map_err(|_| format!("{name:?} is not a JWS algorithm"))?;
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Err(format!(
            "{name}: HMAC is never accepted (a JWKS key must not be an HMAC secret)"
        )),
        _ => Ok(alg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("mcp-oauth-server").chain(pairs.iter().copied()))
            .unwrap()
    }

    #[test]
    fn a_minimal_local_configuration_derives_the_resource_and_audience() {
        let config = Config::from_args(&args(&[
            "--issuer",
            "https://idp.example.com/oauth2/default",
        ]))
        .unwrap();
        assert_eq!(config.bind.to_string(), "0.0.0.0:8000");
        assert_eq!(config.resource.as_str(), "http://localhost:8000/mcp");
        assert_eq!(config.audiences, ["http://localhost:8000/mcp"]);
        assert_eq!(
            config.resource_metadata_url(),
            "http://localhost:8000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            config.as_metadata_url.as_str(),
            "https://idp.example.com/.well-known/oauth-authorization-server/oauth2/default"
        );
        assert_eq!(config.leeway, Duration::from_secs(60));
        assert_eq!(config.token_types, TokenTypePolicy::Default);
        assert!(config.allowed_hosts.contains(&"localhost:8000".to_owned()));
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_variable() {
        let error = Config::from_args(&args(&[
            "--host",
            "10.0.0.5",
            "--jwks-uri",
            "http://idp.example.com/keys",
            "--algorithms",
            "RS256,HS256,none",
            "--tool-scopes",
            "oops",
        ]))
        .unwrap_err();
        let variables: Vec<&str> = error.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            variables,
            [
                "OAUTH_ISSUER",
                "MCP_RESOURCE_URL",
                "OAUTH_JWKS_URI",
                "OAUTH_ALGORITHMS",
                "OAUTH_ALGORITHMS",
                "MCP_TOOL_SCOPES"
            ]
        );
        let text = error.to_string();
        assert!(text.contains("OAUTH_ISSUER: required"), "{text}");
        assert!(text.contains("HMAC is never accepted"), "{text}");
    }

    /// A03, A16, T07, D07: the resource URL is https off loopback, canonical (lowercase host,
    /// no trailing slash, query or fragment).
    #[test]
    fn resource_urls_must_be_canonical_and_tls_outside_loopback() {
        for bad in [
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp#x",
            "https://mcp.example.com/mcp?a=1",
        ] {
            let error = Config::from_args(&args(&[
                "--issuer",
                "https://as.example.com",
                "--resource-url",
                bad,
            ]))
            .unwrap_err();
            assert_eq!(error.problems[0].variable, "MCP_RESOURCE_URL", "{bad}");
        }
        let config = Config::from_args(&args(&[
            "--issuer",
            "https://as.example.com",
            "--resource-url",
            "https://MCP.example.com/mcp",
            "--host",
            "10.0.0.5",
        ]))
        .unwrap();
        assert_eq!(config.resource.as_str(), "https://mcp.example.com/mcp");
        assert_eq!(config.allowed_hosts, ["mcp.example.com"]);
        assert_eq!(config.allowed_origins, ["https://mcp.example.com"]);
    }

    /// G04, T07: an issuer is https (http only to loopback) with no query or fragment.
    #[test]
    fn an_issuer_with_a_query_or_plain_http_off_loopback_is_refused() {
        for bad in [
            "https://as.example.com?x=1",
            "http://as.example.com",
            "not a url",
        ] {
            let error = Config::from_args(&args(&["--issuer", bad])).unwrap_err();
            assert_eq!(error.problems[0].variable, "OAUTH_ISSUER", "{bad}");
        }
    }

    /// G03: RFC 8414 inserts the well-known segment before the issuer's path; OIDC appends it.
    #[test]
    fn well_known_urls_follow_rfc_8414_and_oidc_discovery() {
        assert_eq!(
            rfc8414_url("https://as.example.com/tenant1")
                .unwrap()
                .as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server/tenant1"
        );
        assert_eq!(
            rfc8414_url("https://as.example.com/").unwrap().as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            oidc_discovery_url("https://as.example.com/tenant1")
                .unwrap()
                .as_str(),
            "https://as.example.com/tenant1/.well-known/openid-configuration"
        );
        assert_eq!(
            oidc_discovery_url("https://tenant.auth0.com/")
                .unwrap()
                .as_str(),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
    }

    #[test]
    fn audiences_and_scopes_parse_from_their_delimiters() {
        let config = Config::from_args(&args(&[
            "--issuer",
            "http://127.0.0.1:9400",
            "--audience",
            "api://default,https://mcp.example.com/mcp",
            "--required-scopes",
            "mcp:tools",
            "--tool-scopes",
            "get_me=mcp:read mcp:profile",
            "--stateless",
        ]))
        .unwrap();
        assert_eq!(
            config.audiences,
            ["api://default", "https://mcp.example.com/mcp"]
        );
        assert_eq!(config.required_scopes, ["mcp:tools"]);
        assert_eq!(config.tool_scopes["get_me"], ["mcp:read", "mcp:profile"]);
        assert!(config.stateless);
    }
}
