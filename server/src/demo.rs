//! `--demo`: the mock IdP in-process on loopback, the server pointed at it, and a ready token,
//! curl command and MCP Inspector command printed. It is only ever entered by the flag: without
//! configuration and without `--demo` the server refuses to start.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mock_idp::{AccessTokenSpec, Client, IssuerSettings, MockIdp};

use crate::config::{Args, Config, ConfigError};

/// A running demo identity provider and the token it minted.
#[derive(Debug)]
pub struct Demo {
    idp: MockIdp,
    token: String,
}

/// Why the demo cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The mock IdP failed to start.
    #[error("the demo identity provider failed: {0}")]
    Idp(#[from] mock_idp::IdpError),
    /// The derived configuration is invalid (e.g. a bad PORT).
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Demo {
    /// Starts the mock IdP on 127.0.0.1 (random port) and returns the server configuration that
    /// trusts it; `args` still set PORT and the other options. Listens on 127.0.0.1 unless HOST
    /// says otherwise (T04).
    ///
    /// # Errors
    /// [`DemoError`] when the IdP cannot start or the configuration is invalid.
    pub async fn start(args: &Args) -> Result<(Self, Config), DemoError> {
        let resource = match &args.resource_url {
            Some(url) => url.clone(),
            None => format!("http://localhost:{}/mcp", args.port),
        };
        let client = Client::new("demo-client", "demo-secret", resource.clone())
            .resources([format!("http://127.0.0.1:{}/mcp", args.port)])
            .scopes(["mcp:tools", "mcp:read", "mcp:write"])
            .default_scopes(["mcp:tools"]);
        let settings = IssuerSettings {
            default_audience: resource.clone(),
            ..IssuerSettings::default()
        };
        let idp = MockIdp::builder()
            .client(client)
            .settings(settings)
            .admin(true)
            .start()
            .await?;
        let mut server_args = args.clone();
        server_args.issuer = Some(idp.url().to_owned());
        server_args.resource_url = Some(resource);
        server_args.host = Some(args.host.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let config = Config::from_args(&server_args)?;
        let token = idp
            .issuer()
            .mint(
                &AccessTokenSpec::user("demo-user")
                    .client_id("demo-client")
                    .scope(["mcp:tools"])
                    .claim("uid", "00u-demo-user")
                    .expires_in(Duration::from_secs(3600)),
            )
            .await?;
        Ok((Self { idp, token }, config))
    }

    /// The ready-made access token (valid for an hour).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The in-process IdP.
    pub fn idp(&self) -> &MockIdp {
        &self.idp
    }

    /// What a user needs to try the server, printed once it listens on `endpoint`. In session
    /// mode the curl command initializes a session (MCP needs that before tool calls); in
    /// stateless mode it calls `get_me` directly.
    pub fn banner(&self, endpoint: &str, stateless: bool) -> String {
        let issuer = self.idp.issuer();
        let request = if stateless {
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{}}}"#
        } else {
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}"#
        };
        let what = if stateless {
            "call get_me"
        } else {
            "initialize a session (add --stateless to call get_me in one request)"
        };
        format!(
            "mcp-oauth-server demo\n\
             \x20 MCP endpoint:  {endpoint}\n\
             \x20 issuer (mock): {issuer}\n\
             export TOKEN={token}\n\
             {what}:\n\
             \x20 curl -s {endpoint} -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n\
             \x20      -H 'Accept: application/json, text/event-stream' -d '{request}'\n\
             MCP Inspector (then call get_me):\n\
             \x20 npx @modelcontextprotocol/inspector --transport http --server-url {endpoint} --header \"Authorization: Bearer $TOKEN\"\n\
             a fresh machine-to-machine token:\n\
             \x20 curl -s -u demo-client:demo-secret -d grant_type=client_credentials {token_endpoint}\n",
            issuer = issuer.url(),
            token = self.token,
            token_endpoint = issuer.token_endpoint(),
        )
    }
}
