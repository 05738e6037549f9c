//! Tools the server cannot see when it is built: a tool's scopes are still enforced where the
//! tool is dispatched, asked of the session's own handler (H01, D02). A hand-written handler
//! whose tools change after start stands in for rmcp's `enable_route` and routes added to one
//! session's handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conformance::server::Tools;
use conformance::{TestEnv, jsonrpc_body};
use mcp_oauth_server::tools::requires_scopes;
use mock_idp::AccessTokenSpec;
use reqwest::StatusCode;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;

/// Which handlers show the `vault` tool (it needs `vault:open`).
#[derive(Clone, Copy)]
enum Shows {
    /// Neither in `tools/list` nor in `get_tool`; `call_tool` still runs it (a hand-written
    /// dispatch that forgot `get_tool`).
    Never,
    /// Not to the handlers made while the server is built (the first two), but to every one made
    /// after: a tool added later.
    Later,
    /// Never in `tools/list`, always in `get_tool` (a tool enabled after the listing).
    Unlisted,
}

struct Shifty {
    shows_vault: bool,
    lists_vault: bool,
}

impl Shifty {
    fn vault() -> Tool {
        Tool::new("vault", "Opens the vault", Arc::new(serde_json::Map::new()))
            .with_meta(requires_scopes(["vault:open"]))
    }

    fn tools(shows: Shows) -> Tools {
        let made = Arc::new(AtomicUsize::new(0));
        Tools::of(move || {
            let n = made.fetch_add(1, Ordering::SeqCst);
            Shifty {
                shows_vault: match shows {
                    Shows::Never => false,
                    Shows::Later => n >= 2,
                    Shows::Unlisted => true,
                },
                lists_vault: matches!(shows, Shows::Later) && n >= 2,
            }
        })
    }
}

impl ServerHandler for Shifty {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = if self.lists_vault {
            vec![Self::vault()]
        } else {
            Vec::new()
        };
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        (self.shows_vault && name == "vault").then(Self::vault)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name == "vault" {
            Ok(CallToolResult::success(vec![ContentBlock::text("the vault is open")]).into())
        } else {
            Err(ErrorData::invalid_params("tool not found", None))
        }
    }
}

fn call_vault() -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "vault", "arguments": {}}})
}

/// What calling `vault` with `scopes` gives: the HTTP status and the JSON-RPC message.
async fn open_the_vault(env: &TestEnv, scopes: &[&'static str]) -> (StatusCode, serde_json::Value) {
    let token = env
        .mint(AccessTokenSpec::user("alice").scope(scopes.iter().copied()))
        .await;
    let session = env.initialize(&token).await;
    let response = env
        .post(Some(&token), session.as_deref(), &call_vault())
        .await;
    let status = response.status();
    if status != StatusCode::OK {
        return (status, serde_json::Value::Null);
    }
    (status, jsonrpc_body(response).await)
}

/// A tool added after the server was built runs only for callers with the scopes it declares:
/// refused where it is dispatched (a JSON-RPC error; the tool never runs), served with them.
#[tokio::test]
async fn a_tool_added_after_start_needs_the_scopes_it_declares() {
    let env = TestEnv::setup()
        .tools(Shifty::tools(Shows::Later))
        .start()
        .await;
    let (status, refused) = open_the_vault(&env, &[]).await;
    assert_eq!(status, StatusCode::OK, "the gate could not know it");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("insufficient_scope") && m.contains("vault:open")),
        "refused where dispatched: {refused}"
    );
    let (status, opened) = open_the_vault(&env, &["vault:open"]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        opened["result"]["content"][0]["text"], "the vault is open",
        "{opened}"
    );
}

/// A tool the handler runs but never describes (no listing, no `get_tool`): its scopes cannot
/// be known, so it is refused as unknown, even to a caller holding everything.
#[tokio::test]
async fn a_tool_the_handler_never_describes_is_not_run() {
    let env = TestEnv::setup()
        .tools(Shifty::tools(Shows::Never))
        .start()
        .await;
    let (status, refused) = open_the_vault(&env, &["vault:open"]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refused["error"]["message"], "tool not found", "{refused}");
}

/// H01, H02: a tool the handler describes (`get_tool`) but did not list when the server was
/// built gets the HTTP 403 step-up naming its scopes, before rmcp runs.
#[tokio::test]
async fn an_unlisted_tool_the_handler_describes_gets_the_403_step_up() {
    let env = TestEnv::setup()
        .tools(Shifty::tools(Shows::Unlisted))
        .start()
        .await;
    let (status, _) = open_the_vault(&env, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, opened) = open_the_vault(&env, &["vault:open"]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        opened["result"]["content"][0]["text"], "the vault is open",
        "{opened}"
    );
}
