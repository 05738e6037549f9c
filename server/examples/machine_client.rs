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
//! every MCP request carry a proof signed by it ([`ProofKey`]), so a token that leaks is useless
//! without the key. `--print-curl` prints one ready `curl` call of `get_me` with such a token and
//! proof (for a `--stateless` server; the proof is good once, for five minutes) instead of calling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
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
    let dpop = if args.dpop {
        Some(ProofKey::generate().context("making a DPoP key")?)
    } else {
        None
    };
    let tokens = TokenManager::discover(&args.server_url, credentials, dpop)
        .await
        .context("discovering the authorization server")?;
    if args.print_curl {
        println!("{}", tokens.curl_call(&args.server_url).await?);
        return Ok(());
    }
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
    /// The token endpoint, for DPoP token requests (rmcp's grant cannot carry a proof).
    token_endpoint: String,
    /// With DPoP, the key tokens are bound to.
    dpop: Option<ProofKey>,
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
        dpop: Option<ProofKey>,
    ) -> Result<Self, AuthError> {
        let mut manager = AuthorizationManager::new(server_url).await?;
        let resolution = manager.resolve_metadata().await?;
        let token_endpoint = resolution.metadata.token_endpoint.clone();
        manager.set_metadata(resolution.metadata);
        manager.validate_client_credentials_metadata(&credentials)?;
        manager.configure_client_credentials(&credentials)?;
        Ok(Self {
            manager,
            credentials,
            token_endpoint,
            dpop,
            current: Mutex::new(None),
        })
    }

    /// A new token and its lifetime, by rmcp's grant or, with DPoP, by a token request with a
    /// proof (retried once with the authorization server's nonce if it asks for one, §8).
    async fn new_token(&self) -> Result<(String, Option<Duration>), AuthError> {
        let Some(key) = &self.dpop else {
            let response = self
                .manager
                .exchange_client_credentials(&self.credentials)
                .await?;
            return Ok((
                response.access_token().secret().clone(),
                response.expires_in(),
            ));
        };
        let ClientCredentialsConfig::ClientSecret {
            client_id,
            client_secret,
            scopes,
            resource,
        } = &self.credentials
        else {
            return Err(AuthError::TokenExchangeFailed(
                "DPoP here needs a client secret".into(),
            ));
        };
        let failed = |e: &dyn std::fmt::Display| AuthError::TokenExchangeFailed(e.to_string());
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource.clone()));
        }
        let mut nonce = None;
        for _ in 0..2 {
            let proof = key
                .proof("POST", &self.token_endpoint, None, nonce.as_deref())
                .map_err(|e| failed(&e))?;
            let response = reqwest::Client::new()
                .post(&self.token_endpoint)
                .basic_auth(client_id, Some(client_secret))
                .header("dpop", proof)
                .form(&form)
                .send()
                .await
                .map_err(|e| failed(&e))?;
            let asked_nonce = response
                .headers()
                .get("dpop-nonce")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: serde_json::Value = response.json().await.map_err(|e| failed(&e))?;
            if body["error"] == "use_dpop_nonce" && nonce.is_none() && asked_nonce.is_some() {
                nonce = asked_nonce;
                continue;
            }
            let token = body["access_token"].as_str();
            if body["token_type"].as_str().map(str::to_ascii_lowercase) != Some("dpop".into())
                || token.is_none()
            {
                return Err(AuthError::TokenExchangeFailed(format!(
                    "no DPoP-bound token: {}",
                    body["error_description"]
                        .as_str()
                        .unwrap_or("the provider ignored the proof")
                )));
            }
            let lifetime = body["expires_in"].as_u64().map(Duration::from_secs);
            return Ok((token.unwrap_or_default().to_owned(), lifetime));
        }
        Err(AuthError::TokenExchangeFailed(
            "the provider asked for a nonce twice".into(),
        ))
    }

    /// The headers that authorize a `method` request to `url` with `token`: `Authorization:
    /// Bearer`, or with DPoP `Authorization: DPoP` and a fresh proof.
    fn authorization(
        &self,
        method: &str,
        url: &str,
        token: &str,
    ) -> anyhow::Result<Vec<(HeaderName, HeaderValue)>> {
        let Some(key) = &self.dpop else {
            return Ok(vec![(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            )]);
        };
        Ok(vec![
            (
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("DPoP {token}"))?,
            ),
            (
                HeaderName::from_static("dpop"),
                HeaderValue::from_str(&key.proof(method, url, Some(token), None)?)?,
            ),
        ])
    }

    /// A ready `curl` call of `get_me` at `server_url` (one stateless request).
    async fn curl_call(&self, server_url: &str) -> anyhow::Result<String> {
        let token = self.access_token().await?;
        let mut call = format!("curl -s {server_url}");
        for (name, value) in self.authorization("POST", server_url, &token)? {
            call.push_str(&format!(" -H '{name}: {}'", value.to_str()?));
        }
        call.push_str(concat!(
            " -H 'MCP-Protocol-Version: 2025-06-18' -H 'Content-Type: application/json'",
            " -H 'Accept: application/json, text/event-stream'",
            r#" -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{}}}'"#
        ));
        Ok(call)
    }

    /// The token to send now.
    async fn access_token(&self) -> Result<String, AuthError> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.new_token().await?;
        // Without `expires_in` the token is kept until the server refuses it.
        let lifetime = lifetime.unwrap_or(Duration::MAX);
        let renew_at = Instant::now()
            .checked_add(lifetime.saturating_sub(Self::renew_margin(lifetime)))
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        tracing::info!(
            expires_in_secs = lifetime.as_secs(),
            dpop = self.dpop.is_some(),
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
    /// Runs `call` with `custom_headers` plus the headers that authorize a `method` request to
    /// `uri` (rmcp's own `Bearer` header is not used: a DPoP request needs two headers); after a
    /// 401, once more with a new token.
    async fn with_token<T, F, Fut>(
        &self,
        method: &str,
        uri: &str,
        custom_headers: &HashMap<HeaderName, HeaderValue>,
        call: F,
    ) -> Result<T, StreamableHttpError<reqwest::Error>>
    where
        F: Fn(HashMap<HeaderName, HeaderValue>) -> Fut,
        Fut: Future<Output = Result<T, StreamableHttpError<reqwest::Error>>>,
    {
        let headers = |token: String| {
            let mut headers = custom_headers.clone();
            let authorization = self
                .tokens
                .authorization(method, uri, &token)
                .map_err(|e| AuthError::InternalError(e.to_string()))?;
            headers.extend(authorization);
            Ok::<_, StreamableHttpError<reqwest::Error>>(headers)
        };
        let token = self.tokens.access_token().await?;
        match call(headers(token)?).await {
            Err(StreamableHttpError::AuthRequired(_)) => {
                self.tokens.forget().await;
                call(headers(self.tokens.access_token().await?)?).await
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
        self.with_token("POST", &uri, &custom_headers, |headers| {
            self.http.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                None,
                headers,
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
        self.with_token("POST", &uri, &custom_headers, |headers| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                None,
                headers,
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
        self.with_token("DELETE", &uri, &custom_headers, |headers| {
            self.http
                .delete_session(uri.clone(), session_id.clone(), None, headers)
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
        self.with_token("GET", &uri, &custom_headers, |headers| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
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
        self.with_token("GET", &uri, &custom_headers, |headers| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}

/// A DPoP key (RFC 9449): a P-256 key made at start and never written anywhere. Tokens are bound
/// to its RFC 7638 thumbprint, and each request carries a fresh proof it signs (§4.2): for this
/// method and URL, now, once, and with the token's hash.
struct ProofKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl ProofKey {
    fn generate() -> anyhow::Result<Self> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|_| anyhow::anyhow!("the random source failed"))?;
        let key = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
        jwk.common = Default::default();
        Ok(Self { key, jwk })
    }

    /// A proof for a `method` request to `url`, with `access_token`'s hash when one is sent and
    /// the server's `nonce` when it asked for one.
    fn proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.jwk.clone());
        let mut htu = url::Url::parse(url)?;
        htu.set_query(None);
        htu.set_fragment(None);
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| anyhow::anyhow!("the random source failed"))?;
        let mut claims = serde_json::json!({
            "jti": URL_SAFE_NO_PAD.encode(jti),
            "htm": method,
            "htu": htu.as_str(),
            "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        });
        if let Some(token) = access_token {
            let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            claims["ath"] = URL_SAFE_NO_PAD.encode(hash).into();
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = nonce.into();
        }
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}
