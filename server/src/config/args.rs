//! The command line and environment, before validation: a thin clap shell whose only job is to
//! hold the operator's text until [`Args::settings`] turns it into typed policies.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::net::IpAddr;

use clap::builder::ValueParser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::parser::ValueSource;
use clap::{Arg, Command, CommandFactory as _, FromArgMatches as _, Parser, ValueEnum};

use super::{ConfigError, ConfigProblem};

/// The command line and environment, before validation. `--help` documents every setting.
// The fields' doc comments are the `--help` text, written for a terminal, not for rustdoc.
#[allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links)]
#[derive(Debug, Clone, Parser)]
#[command(
    name = "mcp-oauth-server",
    version,
    about = "An MCP server that serves tools only to callers holding a valid OAuth 2.x access token."
)]
pub struct Args {
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
    /// Address to listen on (default 127.0.0.1). Any other address needs MCP_RESOURCE_URL.
    #[arg(long, env = "HOST")]
    pub host: Option<IpAddr>,
    /// Port to listen on (0: any free port, which the derived resource URL then names).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// The canonical URL of the MCP endpoint, as clients reach it (e.g. https://mcp.example.com/mcp).
    /// Derived as http://localhost:PORT/mcp when listening on loopback; required otherwise.
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
    #[arg(long, env = "OAUTH_TOKEN_TYPES", value_enum, default_value_t = TokenTypesArg::Default)]
    pub token_types: TokenTypesArg,
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
    /// Sessions one principal (issuer + subject) may hold; one more ends its own longest-idle.
    #[arg(long, env = "MCP_MAX_SESSIONS_PER_PRINCIPAL", default_value_t = 16)]
    pub max_sessions_per_principal: usize,
    /// Sessions all principals together may hold; at the cap the largest holder's longest-idle
    /// session makes room for a newcomer, and initialize gets 503 only with equal shares.
    #[arg(long, env = "MCP_MAX_SESSIONS", default_value_t = 5_000)]
    pub max_sessions: usize,
    /// A session with no traffic for this long ends, seconds.
    #[arg(long, env = "MCP_SESSION_IDLE_SECS", default_value_t = 600)]
    pub session_idle_secs: u64,
    /// Requests per minute per principal on /mcp (bursts up to the same number); 0 turns it off.
    #[arg(long, env = "MCP_RATE_LIMIT_PER_MINUTE", default_value_t = 600)]
    pub rate_limit_per_minute: u32,
    /// Introspection (or Google token-information) calls per minute per client address for
    /// tokens not in the cache (bursts up to the same number); 0 turns it off.
    #[arg(
        long,
        env = "OAUTH_INTROSPECTION_BUDGET_PER_MINUTE",
        default_value_t = 60
    )]
    pub introspection_budget_per_minute: u32,
    /// How long a client may take to send a request's headers (and an idle keep-alive connection
    /// may wait for the next request), seconds.
    #[arg(long, env = "MCP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// How long a request may take until its response starts, seconds (larger: 408).
    #[arg(long, env = "MCP_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    #[arg(long, env = "MCP_MAX_CONNECTIONS", default_value_t = 1_000)]
    pub max_connections: usize,
    /// `/.well-known/oauth-authorization-server`: `redirect` (307, as the sample) or `proxy`
    /// (serve a cached copy, for browser clients that do not follow cross-origin redirects).
    #[arg(long, env = "OAUTH_AS_METADATA", value_enum, default_value_t = AsMetadataArg::Redirect)]
    pub as_metadata: AsMetadataArg,
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
    /// Where to serve Prometheus metrics (`GET /metrics`), e.g. `0.0.0.0:9100`; off unless set.
    /// A listener of its own, so the MCP port never exposes them.
    #[arg(long, env = "MCP_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// DPoP-bound tokens (RFC 9449): `off` (a bound token is refused), `allowed` (beside bearer
    /// tokens, with a proof per request) or `required` (bearer tokens refused).
    #[arg(long, env = "MCP_DPOP", value_enum, default_value_t = DpopArg::Allowed)]
    pub dpop: DpopArg,
    /// How far a DPoP proof's `iat` may be from now, either way, seconds.
    #[arg(long, env = "MCP_DPOP_WINDOW_SECS", default_value_t = 300)]
    pub dpop_window_secs: u64,
    /// Server-provided DPoP nonces (RFC 9449 §9): `on` makes every proof carry a nonce this
    /// server handed out (in `DPoP-Nonce`) within the last one to two windows.
    #[arg(long, env = "MCP_DPOP_NONCE", value_enum, default_value_t = OnOff::Off)]
    pub dpop_nonce: OnOff,
    /// At least 32 bytes the nonces are made with, shared by replicas (without it each process
    /// makes its own, and replicas behind one address refuse each other's nonces).
    #[arg(long, env = "MCP_DPOP_NONCE_SECRET_FILE")]
    pub dpop_nonce_secret_file: Option<std::path::PathBuf>,
    /// State shared by replicas on Redis or Valkey (`redis://host:6379/0`, `rediss://` for TLS):
    /// one rate-limit budget per principal, one DPoP replay cache, revocations pushed once.
    /// Unset: each process keeps its own.
    #[arg(long, env = "MCP_STATE_URL")]
    pub state_url: Option<String>,
    /// A file holding the store's password (instead of one in the URL).
    #[arg(long, env = "MCP_STATE_PASSWORD_FILE")]
    pub state_password_file: Option<std::path::PathBuf>,
    /// The longest one call to the store may take, milliseconds (longer counts as a failure).
    #[arg(long, env = "MCP_STATE_TIMEOUT_MS", default_value_t = 100)]
    pub state_timeout_ms: u64,
    /// How often each replica reads new revocations, milliseconds: how late one may take effect.
    #[arg(long, env = "MCP_STATE_REVOCATION_POLL_MS", default_value_t = 1000)]
    pub state_revocation_poll_ms: u64,
    /// When the store fails, the rate limit uses this replica's own budget (`local`) or answers
    /// 503 (`refuse`).
    #[arg(long, env = "MCP_STATE_RATE_LIMIT_ON_FAILURE", value_enum, default_value_t = OnFailureArg::Local)]
    pub state_rate_limit_on_failure: OnFailureArg,
    /// When the store fails, the DPoP replay check answers 503 (`refuse`) or uses this replica's
    /// own cache (`local`).
    #[arg(long, env = "MCP_STATE_DPOP_REPLAY_ON_FAILURE", value_enum, default_value_t = OnFailureArg::Refuse)]
    pub state_dpop_replay_on_failure: OnFailureArg,
    /// Gateway mode: forward every request that passes the checks to this MCP endpoint (e.g.
    /// `http://127.0.0.1:8000/mcp`, a server with no auth of its own) instead of serving this
    /// server's tools. It must be reachable only through the gateway.
    #[arg(long, env = "MCP_UPSTREAM_URL")]
    pub upstream_url: Option<String>,
    /// How long the upstream may take to start answering, seconds (longer: 504).
    #[arg(long, env = "MCP_UPSTREAM_TIMEOUT_SECS", default_value_t = 30)]
    pub upstream_timeout_secs: u64,
    /// How the upstream learns who the caller is: `headers` (X-MCP-Subject, -Issuer, -Client-Id,
    /// -Scopes) or `jwt` (a one-minute ES256 token the gateway signs, as `Authorization: Bearer`;
    /// its key set at `/.well-known/jwks.json`).
    #[arg(long, env = "MCP_UPSTREAM_IDENTITY", value_enum, default_value_t = UpstreamIdentityArg::Headers)]
    pub upstream_identity: UpstreamIdentityArg,
    /// The PKCS#8 P-256 private key (PEM) identity tokens are signed with; without it a key is
    /// made at start (fine for one replica; replicas must share one).
    #[arg(long, env = "MCP_UPSTREAM_SIGNING_KEY_FILE")]
    pub upstream_signing_key_file: Option<std::path::PathBuf>,
    /// Estimated bytes the verified-token cache may hold (0 turns it off): a JWT seen before costs
    /// a hash and a lookup instead of a signature check.
    #[arg(long, env = "OAUTH_TOKEN_CACHE_MAX_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub token_cache_max_bytes: u64,
    /// The longest a verified JWT is remembered, seconds (never past its `exp`).
    #[arg(long, env = "OAUTH_TOKEN_CACHE_MAX_AGE_SECS", default_value_t = 300)]
    pub token_cache_max_age_secs: u64,
    /// This server's OAuth client id at the authorization server, for token introspection.
    /// Setting it turns introspection on for tokens that are not JWTs.
    #[arg(long, env = "OAUTH_CLIENT_ID")]
    pub client_id: Option<String>,
    /// That client's secret.
    #[arg(long, env = "OAUTH_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// How the client authenticates at the introspection endpoint: `basic` or `post`.
    #[arg(long, env = "OAUTH_CLIENT_AUTH", value_enum, default_value_t = ClientAuthArg::Basic)]
    pub client_auth: ClientAuthArg,
    /// The RFC 7662 introspection endpoint (default: the metadata's `introspection_endpoint`).
    #[arg(long, env = "OAUTH_INTROSPECTION_URL")]
    pub introspection_url: Option<String>,
    /// Which tokens are introspected: `opaque` (tokens that are not JWTs) or `all` (JWTs too, so
    /// a revoked token is refused as soon as the cache lets go).
    #[arg(long, env = "OAUTH_INTROSPECT", value_enum, default_value_t = IntrospectArg::Opaque)]
    pub introspect: IntrospectArg,
    /// How long an introspection (or Google token-information) answer is reused, seconds: a
    /// revoked token is refused at most this long after its revocation.
    #[arg(long, env = "OAUTH_INTROSPECTION_CACHE_SECS", default_value_t = 60)]
    pub introspection_cache_secs: u64,
    /// Whether an introspection answer must name this server in `aud` (`required`), or may
    /// leave `aud` out because the authorization server never sends it (`when-present`).
    #[arg(long, env = "OAUTH_INTROSPECTION_AUDIENCE", value_enum, default_value_t = IntrospectionAudienceArg::Required)]
    pub introspection_audience: IntrospectionAudienceArg,
    /// Google: the OAuth client ids (comma-separated) whose Google access tokens are accepted,
    /// verified at Google's token-information endpoint. Use with OAUTH_ISSUER=https://accounts.google.com.
    #[arg(long, env = "OAUTH_GOOGLE_CLIENT_IDS", value_delimiter = ',')]
    pub google_client_ids: Vec<String>,
    /// Google's token-information endpoint.
    #[arg(
        long,
        env = "OAUTH_TOKENINFO_URL",
        default_value = "https://oauth2.googleapis.com/tokeninfo"
    )]
    pub tokeninfo_url: String,
    /// AWS Cognito: app client ids (comma-separated) whose access tokens are for this server.
    /// Cognito access tokens carry no `aud`; with this set, a token without `aud` is accepted
    /// when `token_use` is `access` and its `client_id` is listed. Off by default.
    #[arg(long, env = "OAUTH_AUDIENCE_CLIENT_IDS", value_delimiter = ',')]
    pub audience_client_ids: Vec<String>,
    /// The claims that carry permissions, comma-separated, from `scope`, `scp`, `roles` (Entra ID
    /// app-only permissions).
    #[arg(
        long,
        env = "OAUTH_PERMISSION_CLAIMS",
        value_delimiter = ',',
        default_value = "scope,scp"
    )]
    pub permission_claims: Vec<String>,
    /// More issuers trusted with the same audiences and rules, comma-separated, each with its own
    /// discovery and keys (Entra ID v1 next to v2: https://sts.windows.net/TENANT/).
    #[arg(long, env = "OAUTH_EXTRA_ISSUERS", value_delimiter = ',')]
    pub extra_issuers: Vec<String>,
    /// A JSON file of more issuers, each with its own audiences and rules (see docs/issuers.md).
    #[arg(long, env = "OAUTH_ISSUERS_FILE")]
    pub issuers_file: Option<std::path::PathBuf>,
}

/// `--client-auth`: RFC 6749 §2.3.1 client authentication at the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientAuthArg {
    /// `client_secret_basic`.
    Basic,
    /// `client_secret_post`.
    Post,
}

/// `--introspection-audience`: whether an introspection answer must carry `aud`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntrospectionAudienceArg {
    /// `aud` must be present and name this server.
    Required,
    /// A missing `aud` is accepted (the authorization server never sends it); a present one is
    /// checked.
    WhenPresent,
}

/// `--introspect`: which tokens go to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntrospectArg {
    /// Tokens that are not JWTs.
    Opaque,
    /// Every token.
    All,
}

/// `--token-types`: the `typ` headers a token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenTypesArg {
    /// No `typ`, `JWT`, `at+jwt` or `application/at+jwt`: what Okta, Entra ID and Keycloak send.
    Default,
    /// Only `at+jwt` / `application/at+jwt` (RFC 9068 §4).
    Strict,
}

/// `--dpop`: whether DPoP-bound tokens are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DpopArg {
    /// Bearer tokens only.
    Off,
    /// Bearer tokens, and DPoP-bound tokens with their proofs.
    Allowed,
    /// DPoP-bound tokens with their proofs only.
    Required,
}

/// What a use of the shared state does when the store fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailureArg {
    /// This replica's own state, as without a store.
    Local,
    /// 503 with `Retry-After`.
    Refuse,
}

/// A feature switched on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Off.
    Off,
    /// On.
    On,
}

/// `--upstream-identity`: how a gateway's upstream learns who the caller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpstreamIdentityArg {
    /// The `X-MCP-*` headers.
    Headers,
    /// A JWT the gateway signs.
    Jwt,
}

/// `--as-metadata`: what `/.well-known/oauth-authorization-server` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AsMetadataArg {
    /// 307 to the metadata URL, as the Python sample does.
    Redirect,
    /// Serve the (issuer-checked) document discovery holds.
    Proxy,
}

/// Why the command line and environment could not become [`Args`].
#[derive(Debug)]
pub(crate) enum ArgsError {
    /// Not a problem with a value: `--help`, `--version`, an unknown flag, a flag without its
    /// value. [`clap::Error::exit`] prints it as clap does.
    Clap(clap::Error),
    /// Values that do not parse, at least one of them given on the command line (values from the
    /// environment alone fall back to their defaults, see [`Args::parse_reporting_every_problem`]).
    Values(ConfigError),
}

impl Args {
    /// Parses flags and environment as [`Parser::parse`] does, except that a value that does not
    /// parse does not stop at the first: each one becomes a [`ConfigProblem`] naming its
    /// variable (and the flag, when it came from the command line). A malformed variable then
    /// leaves its setting at the default, so that [`Args::settings_with`] can add every other
    /// problem to the list, which `main` prints at once.
    ///
    /// # Errors
    /// [`ArgsError::Clap`] for what is not a value (help, version, unknown flags);
    /// [`ArgsError::Values`] when a malformed value came from the command line, listing every
    /// malformed value.
    pub(crate) fn parse_reporting_every_problem<I, T>(
        argv: I,
    ) -> Result<(Self, Vec<ConfigProblem>), ArgsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
        let typed = Self::command();
        // First every value as raw text, so that one bad value cannot hide the others.
        let raw = typed
            .clone()
            .mut_args(|arg| arg.value_parser(ValueParser::os_string()));
        let matches = raw.try_get_matches_from(&argv).map_err(ArgsError::Clap)?;
        let mut problems = Vec::new();
        let mut malformed_variables = Vec::new();
        let mut from_command_line = false;
        for arg in typed.get_arguments() {
            let id = arg.get_id().as_str();
            let source = matches.value_source(id);
            if !matches!(
                source,
                Some(ValueSource::EnvVariable | ValueSource::CommandLine)
            ) {
                continue;
            }
            let Some(values) = matches.get_raw(id) else {
                continue;
            };
            let mut malformed = false;
            for value in values {
                if let Some(problem) = value_problem(arg, source, value) {
                    problems.push(problem);
                    malformed = true;
                }
            }
            if malformed {
                from_command_line |= source == Some(ValueSource::CommandLine);
                malformed_variables.push(id.to_owned());
            }
        }
        if from_command_line {
            return Err(ArgsError::Values(ConfigError { problems }));
        }
        // Malformed variables are dropped: their settings keep their defaults.
        let command = malformed_variables.iter().fold(typed, |command, id| {
            command.mut_arg(id, |arg| arg.env(None::<&str>))
        });
        let matches = command
            .try_get_matches_from(&argv)
            .map_err(ArgsError::Clap)?;
        let args = Self::from_arg_matches(&matches).map_err(ArgsError::Clap)?;
        Ok((args, problems))
    }

    /// Parses flags only, ignoring every environment variable: for tests and embedding programs
    /// that must not pick up a developer's own `OAUTH_*` settings.
    ///
    /// # Errors
    /// clap's error for unknown flags or malformed values.
    pub fn parse_without_environment<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let command = Self::command().mut_args(|arg| arg.env(None::<&str>));
        Self::from_arg_matches(&command.try_get_matches_from(argv)?)
    }
}

/// What is wrong with one value of `arg`, judged by its own parser alone (`None`: nothing).
fn value_problem(arg: &Arg, source: Option<ValueSource>, value: &OsStr) -> Option<ConfigProblem> {
    let long = arg.get_long()?;
    let mut flag = OsString::from(format!("--{long}="));
    flag.push(value);
    let alone = Command::new("value")
        .no_binary_name(true)
        .arg(arg.clone().env(None::<&str>).required(false));
    let error = alone.try_get_matches_from([flag]).err()?;
    // A secret's value is never echoed, even one that is malformed (not UTF-8).
    let shown = if arg.is_hide_env_values_set() {
        "[redacted]".into()
    } else {
        value.to_string_lossy()
    };
    let reason = match error.kind() {
        ErrorKind::InvalidValue => match error.get(ContextKind::ValidValue) {
            Some(ContextValue::Strings(valid)) => format!("use one of: {}", valid.join(", ")),
            _ => "not one of the accepted values".to_owned(),
        },
        ErrorKind::InvalidUtf8 => "not valid UTF-8".to_owned(),
        _ => std::error::Error::source(&error).map_or_else(
            || error.kind().as_str().unwrap_or("not valid").to_owned(),
            ToString::to_string,
        ),
    };
    let message = match source {
        Some(ValueSource::CommandLine) => format!("--{long} {shown:?} is not valid: {reason}"),
        _ => format!("{shown:?} is not valid: {reason}"),
    };
    let variable = arg.get_env().map_or_else(
        || format!("--{long}"),
        |env| env.to_string_lossy().into_owned(),
    );
    Some(ConfigProblem {
        variable: Cow::Owned(variable),
        message,
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::{Args, ArgsError};

    /// Every malformed value on the command line is reported, not only the first, each under
    /// its variable with the flag it was given as.
    #[test]
    fn every_malformed_flag_value_is_reported_at_once() {
        let Err(ArgsError::Values(error)) = Args::parse_reporting_every_problem([
            "mcp-oauth-server",
            "--port",
            "abc",
            "--leeway-secs=-1",
            "--as-metadata",
            "mirror",
            "--issuer",
            "https://idp.example.com",
        ]) else {
            panic!("malformed values must be refused");
        };
        let variables: Vec<&str> = error.problems.iter().map(|p| &*p.variable).collect();
        assert_eq!(
            variables,
            ["PORT", "OAUTH_LEEWAY_SECS", "OAUTH_AS_METADATA"]
        );
        assert!(
            error.problems[0]
                .message
                .starts_with("--port \"abc\" is not valid")
        );
        assert!(
            error.problems[2]
                .message
                .ends_with("use one of: redirect, proxy"),
            "{error}"
        );
    }

    /// D11: a malformed secret is reported by its variable, never by its value.
    #[cfg(unix)]
    #[test]
    fn a_malformed_secret_is_reported_without_its_value() {
        use std::os::unix::ffi::OsStringExt as _;
        let secret = std::ffi::OsString::from_vec(b"s3cret-\xff-value".to_vec());
        let Err(ArgsError::Values(error)) = Args::parse_reporting_every_problem([
            "mcp-oauth-server".into(),
            "--client-secret".into(),
            secret,
        ]) else {
            panic!("a secret that is not UTF-8 must be refused");
        };
        assert_eq!(&*error.problems[0].variable, "OAUTH_CLIENT_SECRET");
        let message = error.to_string();
        assert!(!message.contains("s3cret"), "{message}");
        assert!(message.contains("[redacted]"), "{message}");
    }

    /// Well-formed values parse as clap parses them, with nothing to report.
    #[test]
    fn well_formed_values_parse_with_no_problem() {
        let (args, problems) = Args::parse_reporting_every_problem([
            "mcp-oauth-server",
            "--port",
            "9000",
            "--stateless",
            "--audience",
            "a,b",
        ])
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(args.port, 9000);
        assert!(args.stateless);
        assert_eq!(args.audience, ["a", "b"]);
    }

    /// The README's configuration table is the reference users read: every setting the server
    /// accepts must be a row of it, with its flag.
    #[test]
    fn the_readme_configuration_table_lists_every_setting() {
        let readme = include_str!("../../../docs/configuration.md");
        let command = Args::command();
        let mut missing = Vec::new();
        for arg in command.get_arguments() {
            let (Some(env), Some(flag)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let row = format!("| `{}` | `--{flag}` |", env.to_string_lossy());
            if !readme.contains(&row) {
                missing.push(row);
            }
        }
        assert!(
            missing.is_empty(),
            "docs/configuration.md rows missing: {missing:#?}"
        );
    }
}
