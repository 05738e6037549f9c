//! Tools for any handler, and how a tool says which scopes it needs.
//!
//! A tool declares its scopes in its own definition ([`requires_scopes`], read back by
//! [`declared_scopes`]): the scope gate, `tools/list` and the RFC 9728 `scopes_supported` all read
//! that one declaration, so they cannot disagree. [`get_me`] is our one tool, a route any rmcp
//! [`ToolRouter`] can add; [`DefaultTools`] serves it alone, as the binary does. Tools see the
//! caller as a [`Principal`] (a tool parameter), never a token.

use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{Implementation, MetaObject, ServerCapabilities, ServerConfig, Tool};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::Principal;

/// The `_meta` of a tool that needs `scopes`: put it in the tool's definition
/// (`#[tool(meta = requires_scopes(["notes:write"]))]`). The server then answers a caller without
/// them with HTTP 403 `insufficient_scope` naming them, before the tool runs; `tools/list` shows
/// them to clients; the resource metadata lists them in `scopes_supported`. The shape is the
/// per-tool `securitySchemes` of OpenAI's Apps SDK: `{"securitySchemes": [{"type": "oauth2",
/// "scopes": [...]}]}`. A tool without it needs only the server's basic scopes
/// (`OAUTH_REQUIRED_SCOPES`); `MCP_TOOL_SCOPES` overrides either per deployment.
///
/// ```
/// use mcp_oauth_server::tools::{declared_scopes, requires_scopes};
/// use rmcp::{tool, tool_router};
///
/// #[derive(Clone)]
/// struct Notes;
///
/// #[tool_router]
/// impl Notes {
///     /// Forgets every note; the caller needs `notes:write`.
///     #[tool(description = "Forget every note", meta = requires_scopes(["notes:write"]))]
///     async fn clear_notes(&self) -> String {
///         "cleared".to_owned()
///     }
/// }
///
/// let tools = Notes::tool_router().list_all();
/// assert_eq!(declared_scopes(&tools[0]), ["notes:write"]);
/// ```
pub fn requires_scopes<S: Into<String>>(scopes: impl IntoIterator<Item = S>) -> MetaObject {
    let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
    let mut meta = MetaObject::default();
    meta.0.insert(
        "securitySchemes".to_owned(),
        json!([{ "type": "oauth2", "scopes": scopes }]),
    );
    meta
}

/// The scopes `tool` declares (see [`requires_scopes`]), in order and without repeats. Several
/// `oauth2` schemes are alternatives to a client, but the server requires all of their scopes:
/// it never grants more than every declaration allows. Schemes of other types (`noauth`) grant
/// nothing here: every request needs a valid token.
pub fn declared_scopes(tool: &Tool) -> Vec<String> {
    let schemes = tool
        .meta
        .as_ref()
        .and_then(|meta| meta.0.get("securitySchemes"))
        .and_then(Value::as_array);
    let mut scopes: Vec<String> = Vec::new();
    for scheme in schemes.into_iter().flatten() {
        if scheme.get("type").and_then(Value::as_str) != Some("oauth2") {
            continue;
        }
        let named = scheme.get("scopes").and_then(Value::as_array);
        for scope in named.into_iter().flatten().filter_map(Value::as_str) {
            if !scopes.iter().any(|known| known == scope) {
                scopes.push(scope.to_owned());
            }
        }
    }
    scopes
}

/// `get_me`: who the caller is, from the verified token (the Python sample's tool). Add it to
/// your own tools: `Self::tool_router().with_route(get_me())`.
///
/// ```
/// use mcp_oauth_server::tools::get_me;
/// use rmcp::handler::server::router::tool::ToolRouter;
///
/// struct MyTools;
/// let router: ToolRouter<MyTools> = ToolRouter::new().with_route(get_me());
/// assert!(router.has_route("get_me"));
/// ```
pub fn get_me<S: Send + Sync + 'static>() -> ToolRoute<S> {
    ToolRoute::new(who_is_calling_tool_attr(), who_is_calling)
}

/// `get_me`'s definition (name, description, output schema) and body.
#[tool(
    name = "get_me",
    description = "Get authenticated user information from the verified access token."
)]
async fn who_is_calling(caller: Principal) -> Result<Json<Me>, ErrorData> {
    Ok(Json(Me::of(&caller)))
}

/// The binary's tools: [`get_me`] alone.
///
/// ```no_run
/// # async fn run(settings: mcp_oauth_server::Settings) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use mcp_oauth_server::{Server, SystemClock, tools::DefaultTools};
///
/// let server = Server::builder(settings)
///     .handler(DefaultTools::new)
///     .build(Arc::new(SystemClock))
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DefaultTools {
    tool_router: ToolRouter<Self>,
}

/// `get_me`'s answer: the Python sample's fields, in its order.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
struct Me {
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
    fn of(principal: &Principal) -> Self {
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

impl DefaultTools {
    /// The tools, ready to serve.
    pub fn new() -> Self {
        Self {
            tool_router: ToolRouter::new().with_route(get_me()),
        }
    }
}

impl Default for DefaultTools {
    fn default() -> Self {
        Self::new()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DefaultTools {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_with(meta: Value) -> Tool {
        let mut tool = who_is_calling_tool_attr();
        tool.meta = serde_json::from_value(meta).ok();
        tool
    }

    #[test]
    fn declared_scopes_read_back_what_requires_scopes_wrote() {
        let mut tool = who_is_calling_tool_attr();
        tool.meta = Some(requires_scopes(["a", "b", "a"]));
        assert_eq!(declared_scopes(&tool), ["a", "b"]);
    }

    #[test]
    fn every_oauth2_scheme_is_required_and_other_schemes_grant_nothing() {
        let tool = tool_with(json!({"securitySchemes": [
            {"type": "noauth"},
            {"type": "oauth2", "scopes": ["read"]},
            {"type": "oauth2", "scopes": ["write", 7]},
        ]}));
        assert_eq!(declared_scopes(&tool), ["read", "write"]);
    }

    #[test]
    fn a_tool_without_a_declaration_needs_nothing_of_its_own() {
        assert!(declared_scopes(&who_is_calling_tool_attr()).is_empty());
        assert!(declared_scopes(&tool_with(json!({"securitySchemes": "oauth2"}))).is_empty());
    }
}
