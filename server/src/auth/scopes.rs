//! What each MCP request needs: the scopes every request needs, plus those of the tool a
//! `tools/call` names (declared in code, overridable by configuration). Decided from the request
//! body before rmcp runs, so a missing scope is an HTTP 403 with a step-up challenge, never a
//! JSON-RPC error inside a 200 (checklist H01-H05, N4).

use std::collections::BTreeMap;

use serde_json::Value;

use super::challenge::AuthError;
use super::principal::Principal;

/// Scopes per operation.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    every_request: Vec<String>,
    per_tool: BTreeMap<String, Vec<String>>,
    /// Each scope and every narrower scope it grants, transitively (D08).
    grants: BTreeMap<String, Vec<String>>,
}

impl ScopePolicy {
    /// Each tool needs the scopes its code declares (`(tool, scopes)` pairs); nothing else is
    /// required until configured.
    pub fn for_tools(tools: &[(&str, &[&str])]) -> Self {
        let per_tool = tools
            .iter()
            .map(|(tool, scopes)| {
                (
                    (*tool).to_owned(),
                    scopes.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect();
        Self {
            every_request: Vec::new(),
            per_tool,
            grants: BTreeMap::new(),
        }
    }

    /// Every MCP request needs `scopes` (`OAUTH_REQUIRED_SCOPES`).
    pub fn require_for_every_request<S: Into<String>>(
        &mut self,
        scopes: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        for scope in scopes.into_iter().map(Into::into) {
            if !self.every_request.contains(&scope) {
                self.every_request.push(scope);
            }
        }
        self
    }

    /// `tools/call` of `tool` needs `scopes`, replacing what its code declares
    /// (`MCP_TOOL_SCOPES`).
    pub fn require_for_tool<S: Into<String>>(
        &mut self,
        tool: impl Into<String>,
        scopes: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.per_tool
            .insert(tool.into(), scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a scope hierarchy: `implies[broad]` lists scopes `broad` also grants (D08). Chains
    /// are followed (`admin` → `write` → `read`), cycles are harmless.
    pub fn with_hierarchy(&mut self, implies: &BTreeMap<String, Vec<String>>) -> &mut Self {
        for broad in implies.keys() {
            let mut granted: Vec<String> = Vec::new();
            let mut pending: Vec<&String> = vec![broad];
            while let Some(scope) = pending.pop() {
                for narrower in implies.get(scope).into_iter().flatten() {
                    if narrower != broad && !granted.contains(narrower) {
                        granted.push(narrower.clone());
                        pending.push(narrower);
                    }
                }
            }
            self.grants.insert(broad.clone(), granted);
        }
        self
    }

    /// Whether `principal` holds `scope`, directly or through a broader granted scope.
    fn holds(&self, principal: &Principal, scope: &str) -> bool {
        principal.has_scope(scope)
            || principal.claims().scopes.iter().any(|granted| {
                self.grants
                    .get(granted)
                    .is_some_and(|implied| implied.iter().any(|s| s == scope))
            })
    }

    /// All scopes mentioned anywhere, for `scopes_supported` (A10).
    pub fn all_scopes(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .every_request
            .iter()
            .chain(self.per_tool.values().flatten())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The scopes every request needs (the first thing a client should ask for, B10).
    pub fn basic(&self) -> &[String] {
        &self.every_request
    }

    /// The scopes a JSON-RPC message (or batch) needs, in a stable order without repeats.
    pub fn required_for(&self, message: &Value) -> Vec<String> {
        let mut required = self.every_request.clone();
        let messages: Vec<&Value> = match message {
            Value::Array(batch) => batch.iter().collect(),
            single => vec![single],
        };
        for message in messages {
            if message.get("method").and_then(Value::as_str) == Some("tools/call") {
                let tool = message
                    .pointer("/params/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                for scope in self.per_tool.get(tool).into_iter().flatten() {
                    if !required.contains(scope) {
                        required.push(scope.clone());
                    }
                }
            }
        }
        required
    }

    /// Refuses an operation for `principal` when any of the `required` scopes is missing:
    /// [`Self::basic`] for a request without a JSON-RPC body (the GET stream, a DELETE; H08),
    /// [`Self::required_for`] its message otherwise.
    ///
    /// # Errors
    /// [`AuthError::InsufficientScope`] listing every scope the operation needs.
    pub(crate) fn check(
        &self,
        principal: &Principal,
        required: &[String],
    ) -> Result<(), AuthError> {
        if required.iter().all(|scope| self.holds(principal, scope)) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                required: required.to_vec(),
            })
        }
    }
}
