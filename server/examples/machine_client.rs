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
use rmcp::transport::auth::{AuthError, AuthorizationManager, ClientCredentialsConfig};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError,
    StreamableHttpPostResponse, StreamableHttpResponseLimits,
};
use tokio::sync::Mutex;

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
    let tokens = TokenManager::discover(&args.server_url, credentials)
        .await
        .context("discovering the authorization server")?;
    let transport = StreamableHttpClientTransport::with_client(
        RenewingClient {
            http: reqwest::Client::new(),
            tokens: Arc::new(tokens),
        },
        StreamableHttpClientTransportConfig::with_uri(args.server_url),
    );
    let client = ().serve(transport).await.context("connecting")?;
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
    ) -> Result<Self, AuthError> {
        let mut manager = AuthorizationManager::new(server_url).await?;
        let resolution = manager.resolve_metadata().await?;
        manager.set_metadata(resolution.metadata);
        manager.validate_client_credentials_metadata(&credentials)?;
        manager.configure_client_credentials(&credentials)?;
        Ok(Self {
            manager,
            credentials,
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
        let response = self
            .manager
            .exchange_client_credentials(&self.credentials)
            .await?;
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

    /// Forgets the token (the server refused it: revoked, or the keys changed).
    async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// rmcp's reqwest client, with the token from a [`TokenManager`] on every request, and one new
/// token and one retry when the server answers 401.
#[derive(Clone)]
struct RenewingClient {
    http: reqwest::Client,
    tokens: Arc<TokenManager>,
}

impl RenewingClient {
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

impl StreamableHttpClient for RenewingClient {
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
