//! Tools for any handler, and how a tool says which scopes it needs.
//!
//! A tool declares its scopes in its own definition ([`requires_scopes`], read back by
//! [`declared_scopes`]): the scope gate, the check where the tool is dispatched, `tools/list` and
//! the RFC 9728 `scopes_supported` all read that one declaration (or, where a deployment set
//! `MCP_TOOL_SCOPES` for the tool, that setting), so they cannot disagree. [`get_me`] is our one tool, a route any rmcp
//! [`ToolRouter`] can add; [`DefaultTools`] serves it alone, as the binary does. Tools see the
//! caller as a [`Principal`] (a tool parameter), never a token.

use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::wrapper::Json;
use rmcp::model::{Implementation, MetaObject, ServerCapabilities, ServerConfig, Tool};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::auth::principal::Principal;

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
/// assert_eq!(declared_scopes(&tools[0]).unwrap(), ["notes:write"]);
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
/// it never grants more than every declaration allows. A `noauth` scheme grants nothing here:
/// every request needs a valid token.
///
/// # Errors
/// [`DeclarationError`] for a declaration the server cannot read with certainty (not a list,
/// an unknown scheme type, a scope that is not an RFC 6749 scope token): the server refuses to
/// start rather than guess, and refuses to run such a tool added later.
pub fn declared_scopes(tool: &Tool) -> Result<Vec<String>, DeclarationError> {
    let Some(schemes) = tool
        .meta
        .as_ref()
        .and_then(|meta| meta.0.get("securitySchemes"))
    else {
        return Ok(Vec::new());
    };
    let schemes = schemes.as_array().ok_or(DeclarationError::NotAList)?;
    let mut scopes: Vec<String> = Vec::new();
    for scheme in schemes {
        match scheme.get("type").and_then(Value::as_str) {
            Some("noauth") => continue,
            Some("oauth2") => {}
            _ => return Err(DeclarationError::UnknownScheme(scheme.to_string())),
        }
        let named = match scheme.get("scopes") {
            None => continue,
            Some(named) => named.as_array().ok_or(DeclarationError::NotAList)?,
        };
        for scope in named {
            let scope = scope
                .as_str()
                .filter(|scope| is_scope_token(scope))
                .ok_or_else(|| DeclarationError::NotAScope(scope.to_string()))?;
            if !scopes.iter().any(|known| known == scope) {
                scopes.push(scope.to_owned());
            }
        }
    }
    Ok(scopes)
}

/// Why a tool's scope declaration cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeclarationError {
    /// `securitySchemes`, or a scheme's `scopes`, is not a list.
    #[error("securitySchemes and each scheme's scopes must be lists")]
    NotAList,
    /// A scheme whose `type` is neither `oauth2` nor `noauth`.
    #[error("unknown security scheme {0}: use type oauth2 (or noauth)")]
    UnknownScheme(String),
    /// A scope that is not an RFC 6749 scope token (printable ASCII, no space, `"` or `\`).
    #[error("{0} is not a scope (RFC 6749 section 3.3)")]
    NotAScope(String),
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
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
        assert_eq!(declared_scopes(&tool).unwrap(), ["a", "b"]);
    }

    #[test]
    fn every_oauth2_scheme_is_required_and_noauth_grants_nothing() {
        let tool = tool_with(json!({"securitySchemes": [
            {"type": "noauth"},
            {"type": "oauth2", "scopes": ["read"]},
            {"type": "oauth2", "scopes": ["write", "read"]},
        ]}));
        assert_eq!(declared_scopes(&tool).unwrap(), ["read", "write"]);
    }

    #[test]
    fn a_tool_without_a_declaration_needs_nothing_of_its_own() {
        assert!(
            declared_scopes(&who_is_calling_tool_attr())
                .unwrap()
                .is_empty()
        );
        assert!(
            declared_scopes(&tool_with(json!({"other": 1})))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_declaration_read_with_doubt_is_an_error_not_no_scopes() {
        for (meta, error) in [
            (
                json!({"securitySchemes": "oauth2"}),
                DeclarationError::NotAList,
            ),
            (
                json!({"securitySchemes": [{"type": "oauth2", "scopes": "write"}]}),
                DeclarationError::NotAList,
            ),
            (
                json!({"securitySchemes": [{"type": "OAuth2", "scopes": ["write"]}]}),
                DeclarationError::UnknownScheme(r#"{"type":"OAuth2","scopes":["write"]}"#.into()),
            ),
            (
                json!({"securitySchemes": [{"type": "oauth2", "scopes": ["write", 7]}]}),
                DeclarationError::NotAScope("7".into()),
            ),
            (
                json!({"securitySchemes": [{"type": "oauth2", "scopes": ["a b"]}]}),
                DeclarationError::NotAScope(r#""a b""#.into()),
            ),
        ] {
            assert_eq!(
                declared_scopes(&tool_with(meta.clone())),
                Err(error),
                "{meta}"
            );
        }
    }
}
