//! The operator's configuration: CLI flags, environment variables and a `.env` file, turned into
//! [`Settings`] once at start-up. This is the only module that knows the variable names; every
//! value is parsed into its typed policy here, every failure names its variable, and all failures
//! are reported together. Nothing security-relevant defaults to "off".
//!
//! The Python sample's contract is kept: `OAUTH_WELL_KNOWN_URL`, `OAUTH_JWKS_URI`, `OAUTH_ISSUER`,
//! `OAUTH_AUDIENCE`, `HOST` and `PORT` (8000).

mod args;
mod issuers_file;
mod providers;
mod variables;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

pub(crate) use args::ArgsError;
pub use args::{
    Args, AsMetadataArg, ClientAuthArg, DpopArg, IntrospectArg, IntrospectionAudienceArg,
    OnFailureArg, OnOff, TokenTypesArg, UpstreamIdentityArg,
};
use std::sync::Arc;
pub(crate) use variables::unknown_variables;

use crate::auth::authorization_server::{AuthorizationServerSettings, Issuer};
use crate::auth::dpop::{DpopMode, DpopSettings, NonceSecret};
use crate::auth::fetch::FetchUrl;
use crate::auth::issuers::TrustedIssuer;
use crate::auth::keys::KeySourceSettings;
use crate::auth::policy::{
    AlgorithmAllowList, Audience, ClientIdAudience, Leeway, PermissionClaims, TokenTypePolicy,
};
use crate::auth::token_cache::TokenCacheSettings;
use crate::edge::Limits;
use crate::gateway::{CallerIdentity, IdentitySigner, Upstream};
use crate::guard::{AllowedHost, AllowedOrigin, GuardPolicy};
use crate::metadata::AsMetadataMode;
use crate::rate_limit::RateLimit;
use crate::resource::ResourceUrl;
use crate::session::{SessionLimits, Transport};
use crate::settings::Settings;
use crate::shared_state::{OnFailure, SharedStateSettings, StateUrl};

/// Everything wrong with the configuration, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// One entry per problem, in the order of `--help`.
    pub problems: Vec<ConfigProblem>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable (and flag) at fault.
    pub variable: Cow<'static, str>,
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
            "Set them in the environment, a .env file, or as flags (--help). To try the server \
             without an identity provider, run the demo: cargo run --example demo"
        )
    }
}

impl Args {
    /// Validates the flags and variables into [`Settings`].
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem at once.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        self.settings_with(Vec::new())
    }

    /// [`Args::settings`], after the problems parsing already found (values that did not parse,
    /// from [`Args::parse_reporting_every_problem`]): all of them are reported together.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem at once, `earlier` first.
    pub(crate) fn settings_with(
        &self,
        earlier: Vec<ConfigProblem>,
    ) -> Result<Settings, ConfigError> {
        let mut problems = Problems(earlier);
        let host = self.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let loopback = host.is_loopback();

        let issuer = match non_empty(self.issuer.as_deref()) {
            None => {
                problems.add(
                    "OAUTH_ISSUER",
                    "required: the issuer identifier of your authorization server",
                );
                None
            }
            Some(issuer) => problems.check("OAUTH_ISSUER", Issuer::parse(issuer)),
        };
        let resource = match non_empty(self.resource_url.as_deref()) {
            Some(url) => problems
                .check("MCP_RESOURCE_URL", ResourceUrl::parse(url))
                .map(Some),
            None if loopback => Some(None),
            None => {
                problems.add(
                    "MCP_RESOURCE_URL",
                    "required when HOST is not loopback: the URL clients use for /mcp, e.g. https://mcp.example.com/mcp",
                );
                None
            }
        };
        let jwks_uri = non_empty(self.jwks_uri.as_deref())
            .and_then(|url| problems.check("OAUTH_JWKS_URI", FetchUrl::parse(url)));
        let well_known = non_empty(self.well_known_url.as_deref())
            .and_then(|url| problems.check("OAUTH_WELL_KNOWN_URL", FetchUrl::parse(url)));
        let algorithms = self.algorithms(&mut problems);
        let leeway = problems.check(
            "OAUTH_LEEWAY_SECS",
            Leeway::new(Duration::from_secs(self.leeway_secs)),
        );
        let audiences: Vec<Audience> = self
            .audience
            .iter()
            .filter_map(|a| non_empty(Some(a.trim())))
            .filter_map(|a| problems.check("OAUTH_AUDIENCE", Audience::new(a)))
            .collect();
        let tool_scopes = assignments(
            &self.tool_scopes,
            "MCP_TOOL_SCOPES",
            "TOOL=SCOPE[ SCOPE...]",
            &mut problems,
        );
        let scope_implies = assignments(
            &self.scope_implies,
            "OAUTH_SCOPE_IMPLIES",
            "SCOPE=IMPLIED[ IMPLIED...]",
            &mut problems,
        );
        let allowed_hosts: Vec<AllowedHost> = self
            .allowed_hosts
            .iter()
            .filter_map(|h| non_empty(Some(h.trim())))
            .filter_map(|h| problems.check("MCP_ALLOWED_HOSTS", AllowedHost::parse(h)))
            .collect();
        let allowed_origins: Vec<AllowedOrigin> = self
            .allowed_origins
            .iter()
            .filter_map(|o| non_empty(Some(o.trim())))
            .filter_map(|o| problems.check("MCP_ALLOWED_ORIGINS", AllowedOrigin::parse(o)))
            .collect();
        self.check_bounds(&mut problems);
        let remote = self.remote_verification(&mut problems);
        let client_audience = if self
            .audience_client_ids
            .iter()
            .any(|id| !id.trim().is_empty())
        {
            problems.check(
                "OAUTH_AUDIENCE_CLIENT_IDS",
                ClientIdAudience::new(
                    self.audience_client_ids
                        .iter()
                        .map(|id| id.trim())
                        .filter(|id| !id.is_empty()),
                ),
            )
        } else {
            None
        };
        let permissions = problems.check(
            "OAUTH_PERMISSION_CLAIMS",
            PermissionClaims::from_names(self.permission_claims.iter().map(String::as_str)),
        );
        let extra_issuers: Vec<Issuer> = self
            .extra_issuers
            .iter()
            .filter_map(|i| non_empty(Some(i.trim())))
            .filter_map(|i| problems.check("OAUTH_EXTRA_ISSUERS", Issuer::parse(i)))
            .collect();
        let file_issuers = match &self.issuers_file {
            Some(path) => problems
                .check("OAUTH_ISSUERS_FILE", issuers_file::read(path))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let at_least_one = |problems: &mut Problems, variable, value| {
            let checked = NonZeroUsize::new(value);
            if checked.is_none() {
                problems.add(variable, "must be at least 1");
            }
            checked
        };
        let max_per_principal = at_least_one(
            &mut problems,
            "MCP_MAX_SESSIONS_PER_PRINCIPAL",
            self.max_sessions_per_principal,
        );
        let max_total = at_least_one(&mut problems, "MCP_MAX_SESSIONS", self.max_sessions);
        let max_connections =
            at_least_one(&mut problems, "MCP_MAX_CONNECTIONS", self.max_connections);

        let (
            Some(issuer),
            Some(resource),
            Some(algorithms),
            Some(leeway),
            Some(permissions),
            Some(max_per_principal),
            Some(max_total),
            Some(max_connections),
        ) = (
            issuer,
            resource,
            algorithms,
            leeway,
            permissions,
            max_per_principal,
            max_total,
            max_connections,
        )
        else {
            return Err(problems.into_error());
        };
        if !problems.0.is_empty() {
            return Err(problems.into_error());
        }

        let listen = SocketAddr::new(host, self.port);
        let mut settings = match resource {
            Some(url) => Settings::new(issuer, url, listen),
            // Not configured and listening on loopback: derived, with its loopback spellings.
            None => Settings::local(issuer, listen),
        };
        settings.resource.name = self.resource_name.clone();
        let primary = settings.issuers.primary_mut();
        let mut audiences = audiences.into_iter();
        if let Some(first) = audiences.next() {
            primary.validation = primary.validation.clone().with_audiences(first, audiences);
        }
        primary.validation = primary
            .validation
            .clone()
            .with_algorithms(algorithms)
            .with_leeway(leeway)
            .with_token_types(match self.token_types {
                TokenTypesArg::Default => TokenTypePolicy::Default,
                TokenTypesArg::Strict => TokenTypePolicy::Strict,
            })
            .with_permission_claims(permissions);
        if let Some(rule) = client_audience {
            primary.validation = primary.validation.clone().with_client_audience(rule);
        }
        primary.authorization_server = AuthorizationServerSettings {
            metadata_url: well_known,
            jwks_uri,
        };
        primary.remote = remote;
        let rules = primary.validation.clone();
        let extras = extra_issuers
            .into_iter()
            .map(|issuer| {
                (
                    "OAUTH_EXTRA_ISSUERS",
                    TrustedIssuer::new(rules.for_issuer(issuer)),
                )
            })
            .chain(
                file_issuers
                    .into_iter()
                    .map(|issuer| ("OAUTH_ISSUERS_FILE", issuer.trusted(&rules))),
            );
        for (variable, issuer) in extras {
            problems.check(variable, settings.issuers.trust(issuer));
        }
        settings.upstream = self
            .upstream_url
            .as_deref()
            .and_then(|url| problems.check("MCP_UPSTREAM_URL", Upstream::parse(url)))
            .map(|mut upstream| {
                upstream.timeout = Duration::from_secs(self.upstream_timeout_secs);
                upstream
            });
        settings.dpop = DpopSettings {
            mode: match self.dpop {
                DpopArg::Off => DpopMode::Off,
                DpopArg::Allowed => DpopMode::Allowed,
                DpopArg::Required => DpopMode::Required,
            },
            window: Duration::from_secs(self.dpop_window_secs),
            ..DpopSettings::default()
        };
        let on_failure = |arg: OnFailureArg| match arg {
            OnFailureArg::Local => OnFailure::Local,
            OnFailureArg::Refuse => OnFailure::Refuse,
        };
        settings.shared_state = self
            .state_url
            .as_deref()
            .and_then(|url| problems.check("MCP_STATE_URL", StateUrl::parse(url)))
            .and_then(|url| match &self.state_password_file {
                None => Some(url),
                Some(path) => {
                    problems.check("MCP_STATE_PASSWORD_FILE", with_password_file(url, path))
                }
            })
            .map(|url| SharedStateSettings {
                timeout: Duration::from_millis(self.state_timeout_ms),
                revocation_poll: Duration::from_millis(self.state_revocation_poll_ms),
                rate_limit_on_failure: on_failure(self.state_rate_limit_on_failure),
                dpop_replay_on_failure: on_failure(self.state_dpop_replay_on_failure),
                ..SharedStateSettings::new(url)
            });
        if self.state_url.is_none() && self.state_password_file.is_some() {
            problems.add(
                "MCP_STATE_PASSWORD_FILE",
                "the password is for the shared state store: set MCP_STATE_URL too",
            );
        }
        settings.dpop.nonce = match (self.dpop_nonce, &self.dpop_nonce_secret_file) {
            (OnOff::Off, None) => None,
            (OnOff::Off, Some(_)) => {
                problems.add(
                    "MCP_DPOP_NONCE_SECRET_FILE",
                    "the secret makes DPoP nonces: set MCP_DPOP_NONCE=on too",
                );
                None
            }
            (OnOff::On, None) => problems.check(
                "MCP_DPOP_NONCE",
                NonceSecret::random().map_err(|_| "the random source failed"),
            ),
            (OnOff::On, Some(path)) => problems.check(
                "MCP_DPOP_NONCE_SECRET_FILE",
                read_bounded(path, 4_096).and_then(|bytes| {
                    NonceSecret::from_bytes(bytes)
                        .ok_or_else(|| format!("{} holds fewer than 32 bytes", path.display()))
                }),
            ),
        };
        if settings.upstream.is_none() && self.upstream_identity == UpstreamIdentityArg::Jwt {
            problems.add(
                "MCP_UPSTREAM_IDENTITY",
                "jwt is for gateway mode: set MCP_UPSTREAM_URL too",
            );
        }
        if self.upstream_signing_key_file.is_some()
            && self.upstream_identity != UpstreamIdentityArg::Jwt
        {
            problems.add(
                "MCP_UPSTREAM_SIGNING_KEY_FILE",
                "the key signs identity tokens: set MCP_UPSTREAM_IDENTITY=jwt too",
            );
        }
        if let Some(upstream) = settings.upstream.as_mut()
            && self.upstream_identity == UpstreamIdentityArg::Jwt
        {
            let signer = match &self.upstream_signing_key_file {
                Some(path) => read_text_bounded(path, 64 * 1024)
                    .and_then(|pem| IdentitySigner::from_pem(&pem).map_err(|e| e.to_string())),
                None => IdentitySigner::generate().map_err(|e| e.to_string()),
            };
            if let Some(signer) = problems.check("MCP_UPSTREAM_SIGNING_KEY_FILE", signer) {
                upstream.identity = CallerIdentity::SignedJwt(Arc::new(signer));
            }
        }
        if !problems.0.is_empty() {
            return Err(problems.into_error());
        }
        settings.as_metadata = match self.as_metadata {
            AsMetadataArg::Redirect => AsMetadataMode::Redirect,
            AsMetadataArg::Proxy => AsMetadataMode::Proxy,
        };
        settings.metrics_addr = self.metrics_addr;
        settings.token_cache = TokenCacheSettings {
            max_bytes: self.token_cache_max_bytes,
            max_age: Duration::from_secs(self.token_cache_max_age_secs),
        };
        settings.keys = KeySourceSettings {
            timeout: Duration::from_secs(self.jwks_timeout_secs),
            max_bytes: self.jwks_max_bytes,
            cooldown: Duration::from_secs(self.jwks_cooldown_secs),
            stale_for: Duration::from_secs(self.jwks_stale_secs),
        };
        settings.scopes.require_for_every_request(
            self.required_scopes
                .iter()
                .filter(|s| !s.is_empty())
                .cloned(),
        );
        for (tool, scopes) in tool_scopes {
            settings.scopes.require_for_tool(tool, scopes);
        }
        settings.scopes.with_hierarchy(&scope_implies);
        if !allowed_hosts.is_empty() || !allowed_origins.is_empty() {
            let default = settings.guard.clone();
            settings.guard = GuardPolicy::new(
                if allowed_hosts.is_empty() {
                    default.hosts().to_vec()
                } else {
                    allowed_hosts
                },
                if allowed_origins.is_empty() {
                    default.origins().to_vec()
                } else {
                    allowed_origins
                },
            );
        }
        settings.limits = Limits {
            max_body_bytes: self.max_body_bytes,
            max_header_bytes: self.max_header_bytes,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_connections,
        };
        settings.rate_limit = RateLimit {
            per_minute: NonZeroU32::new(self.rate_limit_per_minute),
            remote_checks_per_address: NonZeroU32::new(self.introspection_budget_per_minute),
        };
        settings.transport = if self.stateless {
            Transport::Stateless
        } else {
            Transport::Sessions(SessionLimits {
                max_per_principal,
                max_total,
                idle: Duration::from_secs(self.session_idle_secs),
            })
        };
        Ok(settings)
    }

    fn algorithms(&self, problems: &mut Problems) -> Option<AlgorithmAllowList> {
        let named: Vec<_> = self
            .algorithms
            .iter()
            .filter_map(|a| non_empty(Some(a.trim())))
            .filter_map(|a| problems.check("OAUTH_ALGORITHMS", AlgorithmAllowList::parse_one(a)))
            .collect();
        if problems.names("OAUTH_ALGORITHMS") {
            return None;
        }
        problems.check("OAUTH_ALGORITHMS", AlgorithmAllowList::new(named))
    }

    fn check_bounds(&self, problems: &mut Problems) {
        for (name, value) in [
            ("OAUTH_JWKS_TIMEOUT_SECS", self.jwks_timeout_secs),
            ("OAUTH_JWKS_COOLDOWN_SECS", self.jwks_cooldown_secs),
            ("MCP_SESSION_IDLE_SECS", self.session_idle_secs),
            (
                "MCP_HEADER_READ_TIMEOUT_SECS",
                self.header_read_timeout_secs,
            ),
            ("MCP_REQUEST_TIMEOUT_SECS", self.request_timeout_secs),
            ("MCP_UPSTREAM_TIMEOUT_SECS", self.upstream_timeout_secs),
            ("MCP_DPOP_WINDOW_SECS", self.dpop_window_secs),
            ("MCP_STATE_TIMEOUT_MS", self.state_timeout_ms),
            (
                "MCP_STATE_REVOCATION_POLL_MS",
                self.state_revocation_poll_ms,
            ),
        ] {
            if value == 0 {
                problems.add(name, "must be at least 1");
            }
        }
        if self.max_header_bytes < 8 * 1024 {
            problems.add(
                "MCP_MAX_HEADER_BYTES",
                "must be at least 8192 bytes (tokens are a few KiB)",
            );
        }
        for (name, value) in [
            ("OAUTH_JWKS_MAX_BYTES", self.jwks_max_bytes),
            ("MCP_MAX_BODY_BYTES", self.max_body_bytes),
        ] {
            if value < 1024 {
                problems.add(name, "must be at least 1024 bytes");
            }
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
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

/// Collects problems so all of them are reported at once.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn add(&mut self, variable: &'static str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            variable: Cow::Borrowed(variable),
            message: message.into(),
        });
    }

    fn check<T, E: fmt::Display>(
        &mut self,
        variable: &'static str,
        result: Result<T, E>,
    ) -> Option<T> {
        result
            .map_err(|error| self.add(variable, error.to_string()))
            .ok()
    }

    fn names(&self, variable: &str) -> bool {
        self.0.iter().any(|p| p.variable == variable)
    }

    fn into_error(self) -> ConfigError {
        ConfigError { problems: self.0 }
    }
}

/// The shared state store at `url`, with the password `path` holds (trailing newline ignored)
/// instead of any in the URL: what `MCP_STATE_PASSWORD_FILE` and `revoke --state-password-file`
/// mean.
pub(crate) fn with_password_file(
    url: StateUrl,
    path: &std::path::Path,
) -> Result<StateUrl, String> {
    let password = read_text_bounded(path, 4_096)?;
    url.with_password(password.trim_end())
}

/// A secret file's text, at most `max` bytes of UTF-8.
pub(crate) fn read_text_bounded(path: &std::path::Path, max: u64) -> Result<String, String> {
    String::from_utf8(read_bounded(path, max)?)
        .map_err(|_| format!("{} is not UTF-8 text", path.display()))
}

/// A secret file's bytes, at most `max` of them (a larger file is a mistake, not a secret).
fn read_bounded(path: &std::path::Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
        return Err(format!("{} is larger than {max} bytes", path.display()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::remote::RemoteVerification;

    fn args(pairs: &[&str]) -> Args {
        Args::parse_without_environment(
            std::iter::once("mcp-oauth-server").chain(pairs.iter().copied()),
        )
        .unwrap()
    }

    #[test]
    fn a_minimal_local_configuration_derives_the_resource_and_audience() {
        let settings = args(&["--issuer", "https://idp.example.com/oauth2/default"])
            .settings()
            .unwrap();
        assert_eq!(
            settings.listen.to_string(),
            "127.0.0.1:8000",
            "T04: loopback by default"
        );
        assert_eq!(settings.resource.url.as_str(), "http://localhost:8000/mcp");
        assert_eq!(
            settings.validation().audiences(),
            [
                Audience::new("http://localhost:8000/mcp").unwrap(),
                Audience::new("http://127.0.0.1:8000/mcp").unwrap()
            ]
        );
        assert_eq!(
            settings.resource.url.metadata_url(),
            "http://localhost:8000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(settings.validation().leeway().secs(), 60);
        assert_eq!(
            settings.validation().token_types(),
            TokenTypePolicy::Default
        );
        assert!(settings.guard.host_allowed("localhost:8000"));
        assert!(settings.guard.host_allowed("127.0.0.1:8000"));
        assert_eq!(
            settings.resource.aliases,
            [ResourceUrl::parse("http://127.0.0.1:8000/mcp").unwrap()],
            "A21: the derived resource answers to the loopback address too"
        );
        assert!(matches!(settings.transport, Transport::Sessions(_)));
        assert_eq!(settings.rate_limit.per_minute, NonZeroU32::new(600));
    }

    /// T04, T07: any non-loopback address (0.0.0.0 included) needs a configured resource URL, and
    /// then allows no loopback Host or Origin.
    #[test]
    fn a_non_loopback_bind_needs_the_resource_url_and_allows_no_loopback_origin() {
        let error = args(&["--issuer", "https://as.example.com", "--host", "0.0.0.0"])
            .settings()
            .unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_RESOURCE_URL");
        let settings = args(&[
            "--issuer",
            "https://as.example.com",
            "--host",
            "0.0.0.0",
            "--resource-url",
            "https://mcp.example.com/mcp",
        ])
        .settings()
        .unwrap();
        assert!(!settings.guard.origin_allowed("http://localhost:6274"));
        assert!(!settings.guard.host_allowed("localhost:8000"));
        assert!(settings.resource.aliases.is_empty());
    }

    /// R08: a resource URL at the origin root is a valid configuration (served at `/`), not a
    /// panic at start.
    #[test]
    fn a_resource_url_at_the_origin_root_is_accepted() {
        let settings = args(&[
            "--issuer",
            "https://as.example.com",
            "--resource-url",
            "http://localhost:8000",
        ])
        .settings()
        .unwrap();
        assert_eq!(settings.resource.url.as_str(), "http://localhost:8000/");
        assert_eq!(
            settings.resource.url.metadata_url(),
            "http://localhost:8000/.well-known/oauth-protected-resource"
        );
    }

    /// R08: limits are parsed and checked; zero where one is needed is a named problem.
    #[test]
    fn limits_parse_and_zeroes_are_refused_where_they_make_no_sense() {
        let settings = args(&[
            "--issuer",
            "https://as.example.com",
            "--max-sessions-per-principal",
            "2",
            "--session-idle-secs",
            "5",
            "--rate-limit-per-minute",
            "0",
        ])
        .settings()
        .unwrap();
        assert_eq!(settings.rate_limit.per_minute, None, "0 turns it off");
        let Transport::Sessions(limits) = settings.transport else {
            panic!("sessions by default");
        };
        assert_eq!(limits.max_per_principal.get(), 2);
        assert_eq!(limits.idle, Duration::from_secs(5));
        let error = args(&[
            "--issuer",
            "https://as.example.com",
            "--max-sessions",
            "0",
            "--max-connections",
            "0",
            "--header-read-timeout-secs",
            "0",
        ])
        .settings()
        .unwrap_err();
        let variables: Vec<&str> = error.problems.iter().map(|p| &*p.variable).collect();
        assert_eq!(
            variables,
            [
                "MCP_HEADER_READ_TIMEOUT_SECS",
                "MCP_MAX_SESSIONS",
                "MCP_MAX_CONNECTIONS"
            ]
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_naming_its_variable() {
        let error = args(&[
            "--host",
            "10.0.0.5",
            "--jwks-uri",
            "http://idp.example.com/keys",
            "--algorithms",
            "RS256,HS256,none",
            "--tool-scopes",
            "oops",
        ])
        .settings()
        .unwrap_err();
        let variables: Vec<&str> = error.problems.iter().map(|p| &*p.variable).collect();
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

    /// A16, T07: a configured resource URL is checked and its host and origin are the only
    /// ones allowed off loopback.
    #[test]
    fn a_configured_resource_url_sets_the_allowed_host_and_origin() {
        let error = args(&[
            "--issuer",
            "https://as.example.com",
            "--resource-url",
            "http://mcp.example.com/mcp",
        ])
        .settings()
        .unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_RESOURCE_URL");
        let settings = args(&[
            "--issuer",
            "https://as.example.com",
            "--resource-url",
            "https://MCP.example.com/mcp",
            "--host",
            "10.0.0.5",
        ])
        .settings()
        .unwrap();
        assert_eq!(
            settings.resource.url.as_str(),
            "https://mcp.example.com/mcp"
        );
        assert!(settings.guard.host_allowed("mcp.example.com"));
        assert!(!settings.guard.host_allowed("localhost"));
        assert!(settings.guard.origin_allowed("https://mcp.example.com"));
        assert!(!settings.guard.origin_allowed("http://localhost:6274"));
    }

    #[test]
    fn audiences_and_scopes_parse_from_their_delimiters() {
        let settings = args(&[
            "--issuer",
            "http://127.0.0.1:9400",
            "--audience",
            "api://default,https://mcp.example.com/mcp",
            "--required-scopes",
            "mcp:tools",
            "--tool-scopes",
            "get_me=mcp:read mcp:profile",
            "--stateless",
        ])
        .settings()
        .unwrap();
        assert_eq!(
            settings.validation().audiences(),
            [
                Audience::new("api://default").unwrap(),
                Audience::new("https://mcp.example.com/mcp").unwrap()
            ]
        );
        assert_eq!(settings.scopes.basic(), ["mcp:tools"]);
        assert_eq!(
            settings.scopes.all_scopes(),
            ["mcp:profile", "mcp:read", "mcp:tools"]
        );
        assert_eq!(settings.transport, Transport::Stateless);
    }

    /// The environment is never read when a caller asks for flags only.
    #[test]
    fn flags_can_be_parsed_without_the_environment() {
        let args = args(&["--issuer", "https://as.example.com"]);
        assert_eq!(args.port, 8000, "the default, whatever PORT says");
        assert!(args.audience.is_empty());
    }

    /// P01, P04, P06, P08, P09: the provider settings parse into their policies, and what cannot
    /// work together is refused, naming the variable.
    #[test]
    fn provider_settings_parse_and_conflicts_are_refused() {
        let settings = args(&[
            "--issuer",
            "https://login.microsoftonline.com/t/v2.0",
            "--client-id",
            "mcp",
            "--client-secret",
            "s3cret",
            "--introspect",
            "all",
            "--permission-claims",
            "scp,roles",
            "--audience-client-ids",
            "app-1,app-2",
            "--extra-issuers",
            "https://sts.windows.net/t/",
        ])
        .settings()
        .unwrap();
        let primary = settings.issuers.primary();
        match &primary.remote {
            Some(RemoteVerification::Introspection(introspection)) => {
                assert!(introspection.every_token);
                assert_eq!(introspection.client_id, "mcp");
                assert_eq!(introspection.endpoint, None, "discovered");
                assert!(!format!("{introspection:?}").contains("s3cret"), "redacted");
            }
            other => panic!("{other:?}"),
        }
        assert!(primary.validation.permission_claims().roles);
        assert!(!primary.validation.permission_claims().scope);
        assert!(primary.validation.client_audience().is_some());
        let issuers: Vec<&str> = settings
            .issuers
            .iter()
            .map(|i| i.issuer().as_str())
            .collect();
        assert_eq!(
            issuers,
            [
                "https://login.microsoftonline.com/t/v2.0",
                "https://sts.windows.net/t/"
            ]
        );

        let problems = |argv: &[&str]| -> Vec<String> {
            let mut all = vec!["--issuer", "https://as.example.com"];
            all.extend_from_slice(argv);
            args(&all)
                .settings()
                .unwrap_err()
                .problems
                .iter()
                .map(|p| p.variable.to_string())
                .collect()
        };
        assert_eq!(problems(&["--client-id", "mcp"]), ["OAUTH_CLIENT_SECRET"]);
        assert_eq!(
            problems(&["--introspection-url", "https://as.example.com/introspect"]),
            ["OAUTH_CLIENT_ID"]
        );
        assert_eq!(
            problems(&[
                "--google-client-ids",
                "x",
                "--client-id",
                "mcp",
                "--client-secret",
                "s"
            ]),
            ["OAUTH_GOOGLE_CLIENT_IDS"]
        );
        assert_eq!(
            problems(&["--permission-claims", "groups"]),
            ["OAUTH_PERMISSION_CLAIMS"]
        );
        assert_eq!(
            problems(&["--extra-issuers", "https://as.example.com"]),
            ["OAUTH_EXTRA_ISSUERS"],
            "the same issuer twice"
        );
        assert_eq!(
            problems(&[
                "--introspection-url",
                "http://as.example.com/i",
                "--client-id",
                "m",
                "--client-secret",
                "s"
            ]),
            ["OAUTH_INTROSPECTION_URL"],
            "plain http off loopback"
        );
    }

    /// P09: the issuers file gives each issuer its own rules; unknown fields and missing secrets
    /// are refused with the file and issuer named.
    #[test]
    fn the_issuers_file_adds_issuers_with_their_own_rules() {
        let dir = std::env::temp_dir().join(format!("issuers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("issuers.json");
        let with_file = |contents: &str| {
            std::fs::write(&file, contents).unwrap();
            args(&[
                "--issuer",
                "https://as.example.com",
                "--issuers-file",
                file.to_str().unwrap(),
            ])
            .settings()
        };
        let settings = with_file(
            r#"[{"issuer": "https://partner.example.com", "audiences": ["api://partner"],
                 "algorithms": ["ES256"], "permission_claims": ["roles"]},
                {"issuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_A",
                 "audience_client_ids": ["4k9"]}]"#,
        )
        .unwrap();
        let partner = settings.issuers.iter().nth(1).unwrap();
        assert_eq!(partner.issuer().as_str(), "https://partner.example.com");
        assert_eq!(partner.validation.audiences()[0].as_str(), "api://partner");
        assert!(partner.validation.permission_claims().roles);
        let cognito = settings.issuers.iter().nth(2).unwrap();
        assert!(cognito.validation.client_audience().is_some());

        let error =
            with_file(r#"[{"issuer": "https://p.example.com", "audience": "typo"}]"#).unwrap_err();
        assert_eq!(error.problems[0].variable, "OAUTH_ISSUERS_FILE");
        assert!(error.problems[0].message.contains("audience"), "{error}");
        // An issuer whose tokens could carry no permission is a mistake, as in the environment.
        let error = with_file(r#"[{"issuer": "https://p.example.com", "permission_claims": []}]"#)
            .unwrap_err();
        assert!(
            error.problems[0]
                .message
                .contains("permission_claims: name at least one of scope, scp, roles"),
            "{error}"
        );
        let error = with_file(
            r#"[{"issuer": "https://p.example.com", "introspection": {"client_id": "m", "client_secret_env": "MCP_TEST_UNSET_SECRET_VARIABLE"}}]"#,
        )
        .unwrap_err();
        assert!(
            error.problems[0]
                .message
                .contains("MCP_TEST_UNSET_SECRET_VARIABLE is not set"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Gateway mode from the environment: the upstream, its timeout, and the caller as headers
    /// (the default) or as a JWT signed with the key file given, or a key made at start.
    #[test]
    fn the_upstream_and_how_it_learns_the_caller_come_from_the_environment() {
        let base = ["--issuer", "https://as.example.com"];
        let with = |extra: &[&str]| {
            let all: Vec<&str> = base.iter().chain(extra).copied().collect();
            args(&all).settings()
        };
        assert_eq!(with(&[]).unwrap().upstream, None);
        let settings = with(&[
            "--upstream-url",
            "http://127.0.0.1:3000/mcp",
            "--upstream-timeout-secs",
            "5",
        ])
        .unwrap();
        let upstream = settings.upstream.unwrap();
        assert_eq!(upstream.url().as_str(), "http://127.0.0.1:3000/mcp");
        assert_eq!(upstream.timeout, Duration::from_secs(5));
        assert_eq!(upstream.identity, CallerIdentity::Headers);

        let jwt = [
            "--upstream-url",
            "http://127.0.0.1:3000/mcp",
            "--upstream-identity",
            "jwt",
        ];
        let made = with(&jwt).unwrap().upstream.unwrap();
        assert!(matches!(made.identity, CallerIdentity::SignedJwt(_)));
        let p256 = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-1.pem");
        let from_file = [&jwt[..], &["--upstream-signing-key-file", p256]].concat();
        let first = with(&from_file).unwrap().upstream.unwrap().identity;
        let again = with(&from_file).unwrap().upstream.unwrap().identity;
        assert_eq!(first, again, "one key file, one key id");
        let rsa = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/rsa-1.pem");
        let wrong = [&jwt[..], &["--upstream-signing-key-file", rsa]].concat();
        let error = with(&wrong).unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_UPSTREAM_SIGNING_KEY_FILE");
        let error = with(&["--upstream-url", "ftp://host/mcp"]).unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_UPSTREAM_URL");
        let error = with(&["--upstream-identity", "jwt"]).unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_UPSTREAM_IDENTITY");
        let error = with(&[
            "--upstream-url",
            "http://127.0.0.1:3000/mcp",
            "--upstream-signing-key-file",
            p256,
        ])
        .unwrap_err();
        assert_eq!(error.problems[0].variable, "MCP_UPSTREAM_SIGNING_KEY_FILE");
    }

    /// `MCP_DPOP_NONCE=on` makes a secret, or reads a shared one; a short or unused secret file
    /// is a mistake said at start.
    #[test]
    fn dpop_nonces_need_a_secret_of_32_bytes_when_shared() {
        let with = |extra: &[&str]| {
            args(&[&["--issuer", "https://idp.example.com"], extra].concat()).settings()
        };
        assert_eq!(with(&[]).unwrap().dpop.nonce, None, "off by default");
        assert!(with(&["--dpop-nonce", "on"]).unwrap().dpop.nonce.is_some());
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/keys/p256-1.pem");
        let shared = ["--dpop-nonce", "on", "--dpop-nonce-secret-file", key];
        assert_eq!(
            with(&shared).unwrap().dpop.nonce,
            with(&shared).unwrap().dpop.nonce,
            "one file, one secret"
        );
        let short = std::env::temp_dir().join(format!("nonce-secret-{}", std::process::id()));
        std::fs::write(&short, [1; 31]).unwrap();
        let short = short.to_str().unwrap();
        for wrong in [
            &["--dpop-nonce-secret-file", key][..],
            &[
                "--dpop-nonce",
                "on",
                "--dpop-nonce-secret-file",
                "/nonexistent",
            ][..],
            &["--dpop-nonce", "on", "--dpop-nonce-secret-file", short][..],
        ] {
            let error = with(wrong).unwrap_err();
            assert_eq!(
                error.problems[0].variable, "MCP_DPOP_NONCE_SECRET_FILE",
                "{wrong:?}"
            );
        }
        let _ = std::fs::remove_file(short);
    }
}
