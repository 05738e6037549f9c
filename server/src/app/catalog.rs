//! The handler's tools, read once when the server is built: the scope gate, the metrics and the
//! resource metadata need what each tool declares before any request arrives.

use std::time::Duration;

use rmcp::ServerHandler;
use rmcp::model::{NumberOrString, PaginatedRequestParams, Tool};
use rmcp::service::{RequestContext, serve_directly};

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
}

/// Every tool `handler` lists, following `nextCursor`. A handler that serves no tools (its
/// `tools/list` fails) has none. Asked outside any request: a handler whose list depends on the
/// caller is read as it answers no one in particular.
pub(super) async fn list_tools<H: ServerHandler>(handler: H) -> Result<Vec<Tool>, CatalogError> {
    // An in-memory MCP connection, only for a `Peer` the request context needs; nothing is
    // sent over it.
    let (transport, _client) = tokio::io::duplex(64);
    let running = serve_directly(handler, transport, None);
    let listing = async {
        let mut tools = Vec::new();
        let mut cursor = None;
        for page in 0..MAX_PAGES {
            let context = RequestContext::new(
                NumberOrString::Number(i64::try_from(page).unwrap_or(i64::MAX)),
                running.peer().clone(),
            );
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let Ok(result) = running.service().list_tools(Some(params), context).await else {
                return Ok(tools);
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
    listed
}
