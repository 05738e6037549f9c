//! Gateway mode: every check of `/mcp` in front of an MCP server of yours, in any language,
//! instead of this server's own tools. A request that passes them all is forwarded to one fixed
//! upstream endpoint and its answer streamed back (SSE as it comes); one that does not never
//! reaches the upstream.
//!
//! What the upstream is told, and what it is not:
//! - never the client's token (the MCP authorization spec forbids passing it through): the
//!   client's `Authorization` header is not forwarded, and neither is any header outside the short
//!   list MCP needs (the four `Mcp-*` headers, content negotiation, the request id and trace
//!   context);
//! - who the caller is, in the `X-MCP-Subject`, `X-MCP-Issuer`, `X-MCP-Client-Id` and
//!   `X-MCP-Scopes` headers, set by the gateway alone: the same headers from a client are dropped,
//!   so they cannot be forged through it. The upstream must be reachable only through the gateway
//!   (loopback, a pod-local sidecar, a NetworkPolicy): anyone who can reach it directly can send
//!   them;
//! - or, with [`CallerIdentity::SignedJwt`], who the caller is as a one-minute ES256 token the
//!   gateway signs for the upstream (`Authorization: Bearer`, audience the upstream's URL), which
//!   the upstream checks with any JWT library against the gateway's `/.well-known/jwks.json`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use mcp_oauth_server::gateway::Upstream;
//! use mcp_oauth_server::{Server, Startup, SystemClock};
//!
//! let Startup { mut settings, listener } = Startup::read().await?;
//! settings.upstream = Some(Upstream::parse("http://127.0.0.1:8000/mcp")?);
//! Server::builder(settings)
//!     .gateway()
//!     .build(Arc::new(SystemClock))
//!     .await?
//!     .serve(listener, tokio_graceful::default_signal())
//!     .await?;
//! # Ok(()) }
//! ```

mod forward;
mod identity;

use std::time::Duration;

pub(crate) use forward::Forwarder;
pub use identity::{CallerIdentity, IdentitySigner, SigningKeyError};
use url::Url;

/// The one MCP endpoint a gateway forwards to, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    url: Url,
    /// How long the upstream may take to start answering (connecting included): past it, 504.
    pub timeout: Duration,
    /// The largest JSON answer passed on; a longer one is cut off (an SSE stream has no total
    /// bound: it lasts as long as the client keeps it).
    pub max_response_bytes: usize,
    /// How the upstream learns who the caller is.
    pub identity: CallerIdentity,
}

/// Why an upstream URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// Not a URL.
    #[error("the upstream URL is not a URL: {0}")]
    Parse(#[from] url::ParseError),
    /// Not `http` or `https`.
    #[error("the upstream URL must be http or https, not {0}")]
    Scheme(String),
    /// Credentials, a query or a fragment: the upstream is one endpoint, named by scheme, host,
    /// port and path alone.
    #[error("the upstream URL must not carry credentials, a query or a fragment")]
    Extra,
}

impl Upstream {
    /// The upstream at `url` (`http://127.0.0.1:8000/mcp`), with a 30 s answer timeout, answers
    /// of at most 4 MiB, and the caller in headers.
    ///
    /// # Errors
    /// [`UpstreamError`] for anything but a plain `http` or `https` URL.
    pub fn parse(url: &str) -> Result<Self, UpstreamError> {
        let url = Url::parse(url)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UpstreamError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || url.host().is_none()
        {
            return Err(UpstreamError::Extra);
        }
        Ok(Self {
            url,
            timeout: Duration::from_secs(30),
            max_response_bytes: 4 * 1024 * 1024,
            identity: CallerIdentity::Headers,
        })
    }

    /// Where requests go.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// Bytes no scope is passed on with as they are: controls, `%`, and the space that separates
/// scopes.
const NOT_SCOPE_SAFE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%').add(b' ');

/// The caller's scopes as the upstream is told them (`X-MCP-Scopes`, an identity token's
/// `scope`): space separated, as in a token, each percent-encoded so that a space inside one
/// scope (a role name) cannot make it arrive as two.
fn scope_list(principal: &crate::Principal) -> String {
    let scopes: Vec<String> = principal
        .scopes()
        .iter()
        .map(|scope| percent_encoding::utf8_percent_encode(scope, NOT_SCOPE_SAFE).to_string())
        .collect();
    scopes.join(" ")
}

/// The headers that tell the upstream who the caller is. Only the gateway sets them: the same
/// names from a client are dropped.
pub const IDENTITY_HEADERS: [&str; 4] = [
    "x-mcp-subject",
    "x-mcp-issuer",
    "x-mcp-client-id",
    "x-mcp-scopes",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_one_plain_http_endpoint() {
        assert!(Upstream::parse("http://127.0.0.1:8000/mcp").is_ok());
        assert!(Upstream::parse("https://tools.internal/mcp").is_ok());
        assert_eq!(
            Upstream::parse("ftp://host/mcp"),
            Err(UpstreamError::Scheme("ftp".into()))
        );
        for extra in [
            "http://user:pw@host/mcp",
            "http://host/mcp?x=1",
            "http://host/mcp#f",
        ] {
            assert_eq!(Upstream::parse(extra), Err(UpstreamError::Extra), "{extra}");
        }
        assert!(matches!(
            Upstream::parse("not a url"),
            Err(UpstreamError::Parse(_))
        ));
    }
}
