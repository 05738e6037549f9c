//! DPoP for the example clients (RFC 9449), shared by `machine_client` and `user_client`: a key
//! the process makes ([`ProofKey`]), token requests that carry a proof of it
//! ([`DpopOAuthHttpClient`], under rmcp's OAuth support) and MCP requests that send the token as
//! `Authorization: DPoP` with a fresh proof ([`DpopHttp`], under rmcp's transport). The token
//! that comes back is bound to the key (`cnf.jkt`), so it is useless to anyone without it.

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue, Method};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::auth::{OAuthHttpClient, OAuthHttpClientFuture, OAuthHttpRequest};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};

/// A P-256 key made at start and never written anywhere: tokens are bound to its RFC 7638
/// thumbprint, and each request carries a fresh proof it signs (§4.2): for this method and URL,
/// now, once, with the token's hash.
pub(crate) struct ProofKey {
    key: EncodingKey,
    jwk: Jwk,
}

impl ProofKey {
    pub(crate) fn generate() -> anyhow::Result<Self> {
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
    /// the server's `nonce` when it asked for one (§8, §9).
    pub(crate) fn proof(
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

    /// The headers that send `token` to a `method` request at `url`: `Authorization: DPoP` and
    /// a fresh proof.
    pub(crate) fn authorization(
        &self,
        method: &str,
        url: &str,
        token: &str,
    ) -> anyhow::Result<[(HeaderName, HeaderValue); 2]> {
        Ok([
            (
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&format!("DPoP {token}"))?,
            ),
            (
                HeaderName::from_static("dpop"),
                HeaderValue::from_str(&self.proof(method, url, Some(token), None)?)?,
            ),
        ])
    }
}

/// rmcp's OAuth HTTP client with a proof on every token request (a form POST). The nonce an
/// authorization server hands out (`DPoP-Nonce`, §8) goes into the next proof; a request it
/// refused with `use_dpop_nonce` fails, and the caller asks again.
pub(crate) struct DpopOAuthHttpClient<C> {
    pub(crate) inner: C,
    pub(crate) key: Arc<ProofKey>,
    pub(crate) nonce: std::sync::Mutex<Option<String>>,
}

impl<C> DpopOAuthHttpClient<C> {
    pub(crate) fn new(inner: C, key: Arc<ProofKey>) -> Self {
        Self {
            inner,
            key,
            nonce: std::sync::Mutex::new(None),
        }
    }

    fn nonce(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl<C: OAuthHttpClient> OAuthHttpClient for DpopOAuthHttpClient<C> {
    fn execute(&self, mut request: OAuthHttpRequest) -> OAuthHttpClientFuture<'_> {
        Box::pin(async move {
            let is_token_request = request.request.method() == Method::POST
                && request
                    .request
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .is_some_and(|v| {
                        v.as_bytes()
                            .starts_with(b"application/x-www-form-urlencoded")
                    });
            if !is_token_request {
                return self.inner.execute(request).await;
            }
            let url = request.request.uri().to_string();
            let nonce = self.nonce().clone();
            let proof = self
                .key
                .proof("POST", &url, None, nonce.as_deref())
                .map_err(|e| e.to_string())?;
            request
                .request
                .headers_mut()
                .insert("dpop", HeaderValue::from_str(&proof)?);
            let response = self.inner.execute(request).await?;
            if let Some(nonce) = response.headers().get("dpop-nonce")
                && let Ok(nonce) = nonce.to_str()
            {
                *self.nonce() = Some(nonce.to_owned());
            }
            Ok(response)
        })
    }
}

/// rmcp's reqwest transport, sending the token it is given as a DPoP-bound one.
#[derive(Clone)]
pub(crate) struct DpopHttp {
    pub(crate) http: reqwest::Client,
    pub(crate) key: Arc<ProofKey>,
}

impl DpopHttp {
    /// `custom_headers` plus the DPoP headers for `token`, when there is one.
    fn headers(
        &self,
        method: &str,
        uri: &str,
        token: Option<String>,
        mut custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<HashMap<HeaderName, HeaderValue>, StreamableHttpError<reqwest::Error>> {
        if let Some(token) = token {
            let headers = self
                .key
                .authorization(method, uri, &token)
                .map_err(|e| rmcp::transport::auth::AuthError::InternalError(e.to_string()))?;
            custom_headers.extend(headers);
        }
        Ok(custom_headers)
    }
}

impl StreamableHttpClient for DpopHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.headers("POST", &uri, auth_token, custom_headers)?;
        self.http
            .post_message(uri, message, session_id, None, headers)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        let headers = self.headers("POST", &uri, auth_token, custom_headers)?;
        self.http
            .post_message_with_response_limits(uri, message, session_id, None, headers, limits)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let headers = self.headers("DELETE", &uri, auth_token, custom_headers)?;
        self.http
            .delete_session(uri, session_id, None, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        let headers = self.headers("GET", &uri, auth_token, custom_headers)?;
        self.http
            .get_stream(uri, session_id, last_event_id, None, headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_token: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<
        BoxStream<'static, Result<sse_stream::Sse, SseError>>,
        StreamableHttpError<Self::Error>,
    > {
        let headers = self.headers("GET", &uri, auth_token, custom_headers)?;
        self.http
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                None,
                headers,
                max_sse_event_size,
            )
            .await
    }
}
