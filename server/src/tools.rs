//! The MCP tools. They see the caller's [`Principal`] (put into the HTTP request extensions by the
//! bearer layer, reached through rmcp's `Extension<http::request::Parts>`), never a token.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use crate::auth::Principal;

/// Scopes each tool needs unless configuration overrides them (`MCP_TOOL_SCOPES`).
pub(crate) const TOOL_SCOPES: &[(&str, &[&str])] = &[("get_me", &[])];

/// The MCP server: its tools and server info.
#[derive(Debug, Clone)]
pub(crate) struct McpTools {
    tool_router: ToolRouter<Self>,
}

/// `get_me`'s answer: the Python sample's fields, in its order.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct Me {
    /// The caller's subject identifier (the token's `sub`).
    user_id: String,
    /// Okta's user id (`uid`), when the token has one.
    uid: Option<String>,
    /// The authorization server that issued the token (`iss`).
    issuer: String,
    /// The token's audience (`aud`): a string or an array, as in the token.
    audience: Value,
    /// The OAuth client the token was issued to (`client_id`, else Okta's `cid`, else `azp`).
    client_id: Option<String>,
    /// The granted scopes (`scope` split on spaces, or `scp`).
    scopes: Vec<String>,
    /// When the token was issued (`iat`), RFC 3339 UTC.
    issued_at: Option<String>,
    /// When the token expires (`exp`), RFC 3339 UTC (an introspection answer may not say).
    expires_at: Option<String>,
    /// The token's unique id (`jti`), when it has one.
    token_id: Option<String>,
    /// How this server verified the token: `jwt` (locally), `introspection` (RFC 7662) or `tokeninfo` (Google).
    verified_by: &'static str,
}

impl Me {
    /// The answer for `principal`.
    pub(crate) fn of(principal: &Principal) -> Self {
        let claims = principal.claims();
        Self {
            user_id: claims.subject.clone(),
            uid: claims.uid.clone(),
            issuer: claims.issuer.clone(),
            audience: claims.audience.clone(),
            client_id: claims.client_id.clone(),
            scopes: claims.scopes.clone(),
            issued_at: claims.issued_at.map(rfc3339),
            expires_at: claims.expires_at.map(rfc3339),
            token_id: claims.token_id.clone(),
            verified_by: principal.verified_by().as_str(),
        }
    }
}

#[tool_router]
impl McpTools {
    /// The tools, ready to serve.
    pub(crate) fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// Who the caller is, from the verified token.
    #[tool(description = "Get authenticated user information from the verified access token.")]
    async fn get_me(
        &self,
        Extension(parts): Extension<http::request::Parts>,
    ) -> Result<Json<Me>, ErrorData> {
        let principal = parts.extensions.get::<Principal>().ok_or_else(|| {
            ErrorData::internal_error("no authenticated caller on this request", None)
        })?;
        Ok(Json(Me::of(principal)))
    }
}

impl Default for McpTools {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for McpTools {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info.server_info = Implementation::new("mcp-oauth-server", env!("CARGO_PKG_VERSION"));
        info.instructions =
            Some("Tools behind OAuth: call get_me to see who the server thinks you are.".into());
        info
    }
}

/// Unix seconds as RFC 3339 UTC (`2026-11-27T10:00:00Z`); the sample printed naive local time.
fn rfc3339(seconds: i64) -> String {
    let time = u64::try_from(seconds)
        .ok()
        .and_then(|secs| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs)))
        .unwrap_or(std::time::UNIX_EPOCH);
    humantime::format_rfc3339_seconds(time).to_string()
}
