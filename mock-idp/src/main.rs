//! `cargo run -p mock-idp`: a standards-correct OAuth provider on a laptop in one command.
//! Prints, once ready, the issuer, a ready client and a curl command that obtains a token.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use mock_idp::{Algorithm, Client, IdpConfig, IssuerSettings, MockIdp, TokenTyp};

/// A mock OAuth 2.x / OIDC identity provider for tests and local demos.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "MOCK_IDP_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "MOCK_IDP_PORT", default_value_t = 9400)]
    port: u16,
    /// The issuer URL clients see, when it is not http://HOST:PORT (behind a proxy or in a container).
    #[arg(long, env = "MOCK_IDP_ISSUER")]
    issuer: Option<String>,
    /// JSON configuration file: clients, settings, tenants (see mock-idp/idp.example.json).
    #[arg(long, env = "MOCK_IDP_CONFIG")]
    config: Option<PathBuf>,
    /// Register a client as ID:SECRET (repeatable); it gets the --resource and --scope values.
    #[arg(long = "client", value_name = "ID:SECRET")]
    clients: Vec<String>,
    /// A resource (audience) clients may request (repeatable): the --client clients, and clients
    /// that register themselves or sign users in.
    #[arg(long = "resource", value_name = "URL", default_values_t = ["http://localhost:8000/mcp".to_owned(), "http://127.0.0.1:8000/mcp".to_owned()])]
    resources: Vec<String>,
    /// A scope the --client clients may request (repeatable).
    #[arg(long = "scope", default_values_t = ["mcp:tools".to_owned(), "mcp:read".to_owned(), "mcp:write".to_owned()])]
    scopes: Vec<String>,
    /// Signing algorithm: RS256, PS256, ES256 or EdDSA.
    #[arg(long, env = "MOCK_IDP_ALG", default_value = "RS256", value_parser = parse_alg)]
    alg: Algorithm,
    /// The access tokens' `typ` header: at+jwt (RFC 9068) or JWT (as Entra ID and Keycloak send).
    #[arg(long, env = "MOCK_IDP_TYP", value_enum, default_value_t = Typ::AtJwt)]
    typ: Typ,
    /// Access token lifetime, seconds.
    #[arg(long, env = "MOCK_IDP_TOKEN_LIFETIME", default_value_t = 300)]
    token_lifetime: u64,
    /// Rotate the signing key every this many seconds (default: only on request).
    #[arg(long, env = "MOCK_IDP_ROTATE_EVERY")]
    rotate_every: Option<u64>,
    /// How long a retired key stays in the JWKS, seconds.
    #[arg(long, env = "MOCK_IDP_GRACE", default_value_t = 3600)]
    grace: u64,
    /// Issue opaque access tokens (introspect them) for this resource (repeatable).
    #[arg(long = "opaque-resource", value_name = "URL")]
    opaque_resources: Vec<String>,
    /// Sign this user in without showing the login page (for scripted clients).
    #[arg(long, env = "MOCK_IDP_AUTO_LOGIN", value_name = "USERNAME")]
    auto_login: Option<String>,
    /// The admin test API (mint any token, rotate, faults, clock): auto = on for loopback only.
    #[arg(long, env = "MOCK_IDP_ADMIN", value_enum, default_value_t = Admin::Auto)]
    admin: Admin,
    /// Require this secret as `Authorization: Bearer ...` on every admin request (default: none;
    /// the admin API refuses web pages and other hosts either way).
    #[arg(
        long,
        env = "MOCK_IDP_ADMIN_TOKEN",
        value_name = "SECRET",
        hide_env_values = true
    )]
    admin_token: Option<Secret>,
}

/// A secret given on the command line or in the environment; `Debug` prints `[redacted]`, so
/// printing the arguments cannot leak it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Typ {
    #[value(name = "at+jwt")]
    AtJwt,
    #[value(name = "JWT")]
    Jwt,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Admin {
    Auto,
    On,
    Off,
}

fn parse_alg(value: &str) -> Result<Algorithm, String> {
    value.parse().map_err(|e: mock_idp::IdpError| e.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs piped to a file or a collector stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();

    let mut builder = MockIdp::builder().bind(SocketAddr::new(args.host, args.port));
    if let Some(path) = &args.config {
        builder = builder.config(IdpConfig::from_file(path)?);
    } else {
        builder = builder.settings(IssuerSettings {
            algorithm: args.alg,
            typ: match args.typ {
                Typ::AtJwt => TokenTyp::AtJwt,
                Typ::Jwt => TokenTyp::Jwt,
            },
            token_lifetime: Duration::from_secs(args.token_lifetime),
            rotation_period: args.rotate_every.map(Duration::from_secs),
            grace_period: Duration::from_secs(args.grace),
            opaque_resources: args.opaque_resources.clone(),
            ..IssuerSettings::default()
        });
    }
    for spec in &args.clients {
        let (id, secret) = spec.split_once(':').context("--client takes ID:SECRET")?;
        let mut resources = args.resources.iter();
        let first = resources
            .next()
            .context("--client needs at least one --resource")?;
        builder = builder.client(
            Client::new(id, secret, first)
                .resources(resources.cloned())
                .scopes(args.scopes.iter().cloned()),
        );
    }
    if let Some(issuer) = &args.issuer {
        builder = builder.public_url(issuer);
    }
    for resource in &args.resources {
        builder = builder.resource(resource);
    }
    for scope in &args.scopes {
        builder = builder.scope(scope);
    }
    if let Some(user) = &args.auto_login {
        builder = builder.auto_login(user);
    }
    let admin = match args.admin {
        Admin::On => true,
        Admin::Off => false,
        Admin::Auto => args.host.is_loopback(),
    };
    if let Some(Secret(token)) = &args.admin_token {
        builder = builder.admin_token(token);
    }
    let idp = builder
        .admin(admin)
        .start()
        .await
        .context("starting the mock IdP")?;
    print_banner(&idp, args.admin_token.is_some());
    tokio_graceful::default_signal().await;
    idp.shutdown().await;
    Ok(())
}

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

fn print_banner(idp: &MockIdp, admin_token: bool) {
    // Written in one go, ignoring errors: a closed stdout must not stop a running IdP.
    let mut out = String::new();
    let issuer = idp.issuer();
    outln!(out, "mock-idp ready");
    outln!(out, "  issuer:         {}", issuer.url());
    outln!(
        out,
        "  discovery:      {}",
        issuer.openid_configuration_url()
    );
    outln!(out, "  jwks:           {}", issuer.jwks_uri());
    outln!(out, "  token endpoint: {}", issuer.token_endpoint());
    outln!(
        out,
        "  authorization:  {} (login page: {})",
        issuer.authorization_endpoint(),
        idp.users()
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(out, "  registration:   {}", issuer.registration_endpoint());
    let confidential = idp
        .clients()
        .iter()
        .find_map(|c| c.client_secret.as_ref().map(|secret| (c, secret)));
    if let Some((client, secret)) = confidential {
        // The demo credentials are printed on purpose: they are what the user asked for.
        let secret = secret.expose();
        let resource = client
            .resources
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        outln!(out, "  client id:      {}", client.client_id);
        outln!(out, "  client secret:  {secret}");
        outln!(out, "get a token:");
        outln!(
            out,
            "  curl -s -u '{}:{secret}' -d grant_type=client_credentials -d resource={resource} {}",
            client.client_id,
            issuer.token_endpoint()
        );
    }
    let admin = match (idp.admin_enabled(), admin_token) {
        (true, false) => "on (POST /admin/mint, /admin/rotate, ...)",
        (true, true) => "on, with the admin token (POST /admin/mint, /admin/rotate, ...)",
        (false, _) => "off",
    };
    outln!(out, "  admin API:      {admin}");
    outln!(
        out,
        "other issuers:    {}/<tenant> (any name, own keys)",
        issuer.url()
    );
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}
