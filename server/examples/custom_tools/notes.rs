//! The `custom_tools` example's tools: notes kept per caller, behind two scopes. `save_note` needs
//! `notes:write`, `list_notes` needs `notes:read`, and `get_me` (the library's) needs only the
//! server's basic scopes. Each tool declares its scopes where it is defined; the server answers a
//! caller without them with HTTP 403 `insufficient_scope` before the tool runs.
//!
//! The conformance suite compiles this same file and runs its checks against these tools.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcp_oauth_server::Principal;
use mcp_oauth_server::tools::{get_me, requires_scopes};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::{self, JsonSchema};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

/// The store is bounded: this many callers, each keeping this many notes of at most this many
/// characters.
const MAX_CALLERS: usize = 10_000;
const MAX_NOTES: usize = 100;
const MAX_NOTE_CHARS: usize = 1_000;

/// Each caller's notes, by issuer and subject.
type Store = Arc<Mutex<HashMap<(String, String), Vec<String>>>>;

/// The tools. One is made per MCP session; they share one store.
#[derive(Debug, Clone)]
pub(crate) struct Notes {
    tool_router: ToolRouter<Self>,
    store: Store,
}

/// `save_note`'s arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct NewNote {
    /// The note's text (at most 1,000 characters).
    pub(crate) text: String,
}

/// `list_notes`' answer.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NoteList {
    /// The caller's notes, oldest first.
    pub(crate) notes: Vec<String>,
}

impl Notes {
    /// What the server builder takes: a maker of handlers sharing one store. It is called for
    /// every session, so the tool router is built once and cloned.
    pub(crate) fn factory() -> impl Fn() -> Self + Send + Sync + 'static {
        let store = Store::default();
        let tool_router = Self::tool_router().with_route(get_me());
        move || Self {
            tool_router: tool_router.clone(),
            store: Arc::clone(&store),
        }
    }

    fn notes_of(&self, caller: &Principal) -> Result<Vec<String>, ErrorData> {
        let store = self.store.lock().map_err(|_| poisoned())?;
        let key = (caller.issuer().to_owned(), caller.subject().to_owned());
        Ok(store.get(&key).cloned().unwrap_or_default())
    }
}

#[tool_router]
impl Notes {
    /// Saves a note for the caller: who they are comes from their verified token.
    #[tool(
        description = "Save a note for the caller.",
        meta = requires_scopes(["notes:write"])
    )]
    async fn save_note(
        &self,
        caller: Principal,
        Parameters(note): Parameters<NewNote>,
    ) -> Result<String, ErrorData> {
        if note.text.chars().count() > MAX_NOTE_CHARS {
            return Err(ErrorData::invalid_params(
                "a note has at most 1,000 characters",
                None,
            ));
        }
        let mut store = self.store.lock().map_err(|_| poisoned())?;
        let key = (caller.issuer().to_owned(), caller.subject().to_owned());
        if !store.contains_key(&key) && store.len() >= MAX_CALLERS {
            return Err(ErrorData::invalid_request("the note store is full", None));
        }
        let notes = store.entry(key).or_default();
        if notes.len() >= MAX_NOTES {
            return Err(ErrorData::invalid_params(
                "a caller keeps at most 100 notes",
                None,
            ));
        }
        notes.push(note.text);
        Ok(format!(
            "saved note {} for {}",
            notes.len(),
            caller.subject()
        ))
    }

    /// The caller's notes, and no one else's.
    #[tool(
        description = "List the caller's notes.",
        meta = requires_scopes(["notes:read"])
    )]
    async fn list_notes(&self, caller: Principal) -> Result<Json<NoteList>, ErrorData> {
        Ok(Json(NoteList {
            notes: self.notes_of(&caller)?,
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Notes {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info.server_info = Implementation::new("notes", env!("CARGO_PKG_VERSION"));
        info.instructions = Some("Notes per caller: save_note, list_notes, get_me.".into());
        info
    }
}

fn poisoned() -> ErrorData {
    ErrorData::internal_error("the note store is unavailable", None)
}
