//! A machine-to-machine MCP client: `cargo run --example machine_client -- --client-id ID
//! --client-secret SECRET` calls `get_me` on the server with a client-credentials token.
//!
//! It does what the Python sample's `TokenManager` did: obtain a token, keep it, and obtain a new
//! one shortly before it expires, so a long-running agent never sends an expired token. rmcp
//! discovers the authorization server from the MCP server (RFC 9728, then RFC 8414) and performs
//! the grant with the RFC 8707 `resource`; rmcp renews *user* tokens with their refresh token, but
//! a client-credentials grant has none, so renewal here is a new grant, made by [`TokenManager`]
//! and used on every request through [`RenewingClient`].
//!
//! Against the demo (`cargo run --example demo`): `--client-id demo-client --client-secret
//! demo-secret`. Against a real provider: a confidential client allowed the client-credentials
//! grant and the scopes the server requires.
//!
//! With `--dpop` the token is bound to a key this process makes (RFC 9449): the token request and
//! every MCP request carry a proof signed by it (`shared/dpop.rs`), so a token that leaks is
//! useless without the key. `--print-curl` prints one ready `curl` call of `get_me` with such a
//! token and proof (for a `--stateless` server; the proof is good once, for five minutes).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use oauth2::TokenResponse as _;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientJsonRpcMessage};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthError, AuthorizationManager, ClientCredentialsConfig, default_oauth_http_client,
};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use tokio::sync::Mutex;

#[path = "shared/dpop.rs"]
mod dpop;
use dpop::{DpopHttp, DpopOAuthHttpClient, ProofKey};

/// Calls `get_me` with a client-credentials token, renewing the token before it expires.
#[derive(Parser)]
#[command(about)]
struct Args {
    /// The MCP endpoint.
    #[arg(
        long,
        env = "MCP_SERVER_URL",
        default_value = "http://localhost:8000/mcp"
    )]
    server_url: String,
    /// The client's id at the authorization server.
    #[arg(long, env = "MCP_CLIENT_ID")]
    client_id: String,
    /// The client's secret (prefer the environment variable: arguments show in `ps`).
    #[arg(long, env = "MCP_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Scopes to ask for (repeatable or comma-separated).
    #[arg(
        long = "scope",
        env = "MCP_CLIENT_SCOPES",
        value_delimiter = ',',
        default_value = "mcp:tools"
    )]
    scopes: Vec<String>,
    /// The RFC 8707 resource to ask a token for (default: the MCP endpoint, as the MCP
    /// authorization spec says).
    #[arg(long, env = "MCP_CLIENT_RESOURCE")]
    resource: Option<String>,
    /// How many times to call `get_me` (one MCP session).
    #[arg(long, default_value_t = 1)]
    calls: u32,
    /// Seconds between calls: long enough apart, the token is renewed in between.
    #[arg(long, default_value_t = 0.0)]
    interval: f64,
    /// Bind the token to a key of this process and prove it on every request (DPoP, RFC 9449).
    #[arg(long)]
    dpop: bool,
    /// Print a ready `curl` call of `get_me` (one stateless request) instead of calling.
    #[arg(long)]
    print_curl: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "machine_client=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let interval = Duration::try_from_secs_f64(args.interval).context("--interval")?;
    let credentials = ClientCredentialsConfig::ClientSecret {
        client_id: args.client_id,
        client_secret: args.client_secret,
        scopes: args.scopes,
        resource: Some(args.resource.unwrap_or_else(|| args.server_url.clone())),
    };
    let key = if args.dpop {
        Some(Arc::new(ProofKey::generate().context("making a DPoP key")?))
    } else {
        None
    };
    let tokens = Arc::new(
        TokenManager::discover(&args.server_url, credentials, key.clone())
            .await
            .context("discovering the authorization server")?,
    );
    if args.print_curl {
        println!("{}", tokens.curl_call(&args.server_url).await?);
        return Ok(());
    }
    let config = StreamableHttpClientTransportConfig::with_uri(args.server_url);
    let http = reqwest::Client::new();
    let client = match key {
        None => {
            let client = RenewingClient { http, tokens };
            ().serve(StreamableHttpClientTransport::with_client(client, config))
                .await
        }
        Some(key) => {
            let client = RenewingClient {
                http: DpopHttp { http, key },
                tokens,
            };
            ().serve(StreamableHttpClientTransport::with_client(client, config))
                .await
        }
    }
    .context("connecting")?;
    for call in 1..=args.calls {
        if call > 1 {
            tokio::time::sleep(interval).await;
        }
        let result = client
            .call_tool(CallToolRequestParams::new("get_me"))
            .await
            .context("calling get_me")?;
        let me = result
            .structured_content
            .context("get_me returned no structured content")?;
        println!("{me}");
    }
    client.cancel().await.context("closing the session")?;
    Ok(())
}

/// Obtains a client-credentials token, keeps it, and obtains a new one when less than
/// [`TokenManager::renew_margin`] of its lifetime is left.
struct TokenManager {
    manager: AuthorizationManager,
    credentials: ClientCredentialsConfig,
    /// With DPoP, the key tokens are bound to.
    dpop: Option<Arc<ProofKey>>,
    /// The token in use and when to stop using it; the lock also makes concurrent requests
    /// share one renewal.
    current: Mutex<Option<(String, Instant)>>,
}

impl TokenManager {
    /// Finds the authorization server from the MCP server's metadata and checks that it accepts
    /// the client's credentials method.
    async fn discover(
        server_url: &str,
        credentials: ClientCredentialsConfig,
        dpop: Option<Arc<ProofKey>>,
    ) -> Result<Self, AuthError> {
        let mut manager = match &dpop {
            None => AuthorizationManager::new(server_url).await?,
            Some(key) => {
                let client =
                    DpopOAuthHttpClient::new(default_oauth_http_client()?, Arc::clone(key));
                AuthorizationManager::new_with_oauth_http_client(server_url, Arc::new(client))
                    .await?
            }
        };
        let resolution = manager.resolve_metadata().await?;
        manager.set_metadata(resolution.metadata);
        manager.validate_client_credentials_metadata(&credentials)?;
        manager.configure_client_credentials(&credentials)?;
        Ok(Self {
            manager,
            credentials,
            dpop,
            current: Mutex::new(None),
        })
    }

    /// The token to send now.
    async fn access_token(&self) -> Result<String, AuthError> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let response = match self
            .manager
            .exchange_client_credentials(&self.credentials)
            .await
        {
            // The authorization server may have asked for a DPoP nonce (RFC 9449 §8): the proof
            // of the second request carries it.
            Err(_) if self.dpop.is_some() => {
                self.manager
                    .exchange_client_credentials(&self.credentials)
                    .await?
            }
            response => response?,
        };
        // RFC 9449 §5: a provider that ignored the proof sent a bearer token.
        if self.dpop.is_some() && !response.token_type().as_ref().eq_ignore_ascii_case("dpop") {
            return Err(AuthError::TokenExchangeFailed(
                "the provider did not bind the token to the DPoP key".into(),
            ));
        }
        let token = response.access_token().secret().clone();
        // Without `expires_in` the token is kept until the server refuses it.
        let lifetime = response.expires_in().unwrap_or(Duration::MAX);
        let renew_at = Instant::now()
            .checked_add(lifetime.saturating_sub(Self::renew_margin(lifetime)))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        tracing::info!(
            expires_in_secs = lifetime.as_secs(),
            "obtained a client-credentials token"
        );
        *current = Some((token.clone(), renew_at));
        Ok(token)
    }

    /// A minute before expiry, or half the lifetime of a short-lived token: clocks differ and
    /// requests take time, so a token is never sent in its last moments.
    fn renew_margin(lifetime: Duration) -> Duration {
        Duration::from_secs(60).min(lifetime / 2)
    }

    /// A ready `curl` call of `get_me` at `server_url` (one stateless request).
    async fn curl_call(&self, server_url: &str) -> anyhow::Result<String> {
        let token = self.access_token().await?;
        let authorization = match &self.dpop {
            Some(key) => key
                .authorization("POST", server_url, &token)?
                .iter()
                .map(|(name, value)| Ok(format!(" -H '{name}: {}'", value.to_str()?)))
                .collect::<anyhow::Result<String>>()?,
            None => format!(" -H 'authorization: Bearer {token}'"),
        };
        Ok(format!(
            "curl -s {server_url}{authorization}{}",
            concat!(
                " -H 'MCP-Protocol-Version: 2025-06-18' -H 'Content-Type: application/json'",
                " -H 'Accept: application/json, text/event-stream'",
                r#" -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{}}}'"#
            )
        ))
    }

    /// Forgets the token (the server refused it: revoked, or the keys changed).
    async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// rmcp's reqwest client (or, with DPoP, [`DpopHttp`]), with the token from a [`TokenManager`]
/// on every request, and one new token and one retry when the server answers 401.
#[derive(Clone)]
struct RenewingClient<C> {
    http: C,
    tokens: Arc<TokenManager>,
}

impl<C: StreamableHttpClient<Error = reqwest::Error>> RenewingClient<C> {
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, StreamableHttpError<reqwest::Error>>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        let token = self.tokens.access_token().await?;
        match call(token).await {
            Err(StreamableHttpError::AuthRequired(_)) => {
                self.tokens.forget().await;
                call(self.tokens.access_token().await?).await
            }
            result => result,
        }
    }
}

impl<C> StreamableHttpClient for RenewingClient<C>
where
    C: StreamableHttpClient<Error = reqwest::Error> + Clone + Send + Sync + 'static,
{
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.with_token(|token| {
            self.http.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.with_token(|token| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.with_token(|token| {
            self.http.delete_session(
                uri.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        self.with_token(|token| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        self.with_token(|token| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
