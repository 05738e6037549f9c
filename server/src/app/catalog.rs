//! The handler's tools, read once when the server is built: the scope gate, the metrics and the
//! resource metadata need what each tool declares before any request arrives.

use std::collections::BTreeMap;
use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::model::{ErrorCode, NumberOrString, PaginatedRequestParams, Tool};
use rmcp::service::{RequestContext, serve_directly};
use tokio::io::AsyncReadExt as _;

use crate::auth::scopes::ScopePolicy;
use crate::tools::{DeclarationError, declared_scopes};

/// How long listing may take, and how many pages and tools it may return: a handler is the
/// user's code, and a start must not hang on it.
const LISTING_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_PAGES: usize = 100;
const MAX_TOOLS: usize = 10_000;

/// Why the handler's tools could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// `tools/list` did not answer within the bound.
    #[error("the handler did not list its tools within {0:?}")]
    Timeout(Duration),
    /// More pages or tools than the bounds allow.
    #[error("the handler lists more than {MAX_TOOLS} tools or {MAX_PAGES} pages")]
    TooMany,
    /// `tools/list` failed after the first page, or failed on the first with another error than
    /// "no tools here".
    #[error("the handler's tools/list failed: {0}")]
    Listing(String),
    /// A tool's scope declaration cannot be read.
    #[error("tool {tool}: {source}")]
    Declaration {
        /// The tool.
        tool: String,
        /// What is wrong with its declaration.
        #[source]
        source: DeclarationError,
    },
}

/// Every tool `handler` lists, following `nextCursor`. A handler that serves no tools (its first
/// `tools/list` answers "method not found") has none; any other failure stops the start, since
/// the tools after it would run without their scopes being known. Asked outside any request: a
/// handler whose list depends on the caller is read as it answers no one in particular.
pub(super) async fn list_tools<H: ServerHandler>(handler: H) -> Result<Vec<Tool>, CatalogError> {
    // An in-memory MCP connection, only for a `Peer` the request context needs; nothing is
    // sent over it.
    let (transport, mut client) = tokio::io::duplex(64);
    let running = serve_directly(handler, transport, None);
    // Whatever the handler sends its peer while listing (a log notification) is read and
    // dropped, so it never waits on a full pipe.
    let drain = tokio::spawn(async move {
        let mut sink = [0_u8; 1024];
        while matches!(client.read(&mut sink).await, Ok(read) if read > 0) {}
    });
    let listing = async {
        let mut tools = Vec::new();
        let mut cursor = None;
        for page in 0..MAX_PAGES {
            let context = RequestContext::new(
                NumberOrString::Number(i64::try_from(page).unwrap_or(i64::MAX)),
                running.peer().clone(),
            );
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let result = match running.service().list_tools(Some(params), context).await {
                Ok(result) => result,
                Err(error) if page == 0 && error.code == ErrorCode::METHOD_NOT_FOUND => {
                    return Ok(tools);
                }
                Err(error) => return Err(CatalogError::Listing(error.message.into_owned())),
            };
            tools.extend(result.tools);
            if tools.len() > MAX_TOOLS {
                return Err(CatalogError::TooMany);
            }
            match result.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(tools),
            }
        }
        Err(CatalogError::TooMany)
    };
    let listed = tokio::time::timeout(LISTING_TIMEOUT, listing)
        .await
        .unwrap_or(Err(CatalogError::Timeout(LISTING_TIMEOUT)));
    let _ = running.cancel().await;
    drain.abort();
    listed
}

/// What each listed tool declares. A name listed twice needs what both declare.
///
/// # Errors
/// [`CatalogError::Declaration`] for a declaration that cannot be read.
pub(super) fn declarations(tools: &[Tool]) -> Result<BTreeMap<String, Vec<String>>, CatalogError> {
    let mut declared: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for tool in tools {
        let scopes = declared_scopes(tool).map_err(|source| CatalogError::Declaration {
            tool: tool.name.to_string(),
            source,
        })?;
        let known = declared.entry(tool.name.to_string()).or_default();
        for scope in scopes {
            if !known.contains(&scope) {
                known.push(scope);
            }
        }
    }
    Ok(declared)
}

/// Warns about `MCP_TOOL_SCOPES` entries that name no listed tool (a misspelling protects
/// nothing) or that drop a scope the tool declares (a deliberate relaxation, said aloud).
pub(super) fn warn_about_overrides(scopes: &ScopePolicy, declared: &BTreeMap<String, Vec<String>>) {
    for (tool, configured) in scopes.configured() {
        match declared.get(tool) {
            None => tracing::warn!(
                tool = tool.as_str(),
                "MCP_TOOL_SCOPES names a tool the handler does not list"
            ),
            Some(own) => {
                let dropped: Vec<&str> = own
                    .iter()
                    .filter(|scope| !configured.contains(scope))
                    .map(String::as_str)
                    .collect();
                if !dropped.is_empty() {
                    tracing::warn!(
                        tool = tool.as_str(),
                        dropped = dropped.join(" ").as_str(),
                        "MCP_TOOL_SCOPES lets this tool run without scopes it declares"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::ErrorData;
    use rmcp::model::{ListToolsResult, ServerCapabilities, ServerConfig};
    use rmcp::service::RoleServer;

    use super::*;
    use crate::tools::requires_scopes;

    /// Lists `pages` pages of one tool each, failing on page `fails_on` if set.
    struct Paged {
        pages: usize,
        fails_on: Option<usize>,
    }

    fn tool(n: usize) -> Tool {
        Tool::new(
            format!("tool{n}"),
            "a tool",
            Arc::new(serde_json::Map::new()),
        )
        .with_meta(requires_scopes([format!("scope{n}")]))
    }

    impl ServerHandler for Paged {
        fn get_info(&self) -> ServerConfig {
            let mut info = ServerConfig::default();
            info.capabilities = ServerCapabilities::builder().enable_tools().build();
            info
        }

        async fn list_tools(
            &self,
            request: Option<PaginatedRequestParams>,
            _: RequestContext<RoleServer>,
        ) -> Result<ListToolsResult, ErrorData> {
            let page: usize = request
                .and_then(|params| params.cursor)
                .and_then(|cursor| cursor.parse().ok())
                .unwrap_or(0);
            if self.fails_on == Some(page) {
                return Err(ErrorData::internal_error("the tool database is down", None));
            }
            let mut result = ListToolsResult::with_all_items(vec![tool(page)]);
            result.next_cursor = (page + 1 < self.pages).then(|| (page + 1).to_string());
            Ok(result)
        }
    }

    /// A handler without tools: rmcp answers `tools/list` with "method not found".
    struct NoTools;

    impl ServerHandler for NoTools {}

    #[tokio::test]
    async fn every_page_is_read() {
        let tools = list_tools(Paged {
            pages: 3,
            fails_on: None,
        })
        .await
        .unwrap();
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_ref()).collect();
        assert_eq!(names, ["tool0", "tool1", "tool2"]);
    }

    #[tokio::test]
    async fn a_failure_after_the_first_page_stops_the_start() {
        let failed = list_tools(Paged {
            pages: 3,
            fails_on: Some(1),
        })
        .await;
        assert!(
            matches!(failed, Err(CatalogError::Listing(_))),
            "{failed:?}"
        );
        let failed = list_tools(Paged {
            pages: 1,
            fails_on: Some(0),
        })
        .await;
        assert!(
            matches!(failed, Err(CatalogError::Listing(_))),
            "{failed:?}"
        );
    }

    #[tokio::test]
    async fn a_handler_without_tools_has_none() {
        assert!(list_tools(NoTools).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn endless_pages_are_refused() {
        let endless = list_tools(Paged {
            pages: usize::MAX,
            fails_on: None,
        })
        .await;
        assert!(matches!(endless, Err(CatalogError::TooMany)), "{endless:?}");
    }

    #[test]
    fn a_name_listed_twice_needs_what_both_declare() {
        let mut twice = tool(1);
        twice.name = "tool0".into();
        let declared = declarations(&[tool(0), twice]).unwrap();
        assert_eq!(declared["tool0"], ["scope0", "scope1"]);
    }

    #[test]
    fn an_unreadable_declaration_is_an_error() {
        let mut bad = tool(0);
        bad.meta = serde_json::from_value(serde_json::json!({"securitySchemes": "oauth2"})).ok();
        assert!(matches!(
            declarations(&[bad]),
            Err(CatalogError::Declaration { .. })
        ));
    }
}
