//! What each MCP request needs: the scopes every request needs, plus those of the tool a
//! `tools/call` names (declared in code, overridable by configuration). Decided from the request
//! body before rmcp runs, so a missing scope is an HTTP 403 with a step-up challenge, never a
//! JSON-RPC error inside a 200 (checklist H01-H05, N4).

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::Tool;
use serde_json::Value;

use super::challenge::AuthError;
use super::principal::Principal;
use crate::jsonrpc::Envelope;
use crate::tools::declared_scopes;

/// Scopes per operation: the basic scopes every request needs, each tool's own (declared with
/// the tool, read from the handler when the server is built), configured overrides per tool, and
/// the scope hierarchy.
#[derive(Debug, Clone, Default)]
pub struct ScopePolicy {
    every_request: Vec<String>,
    /// Configured per deployment (`MCP_TOOL_SCOPES`): replaces what the tool declares.
    per_tool: BTreeMap<String, Vec<String>>,
    /// What each tool declares ([`crate::tools::requires_scopes`]).
    declared: BTreeMap<String, Vec<String>>,
    /// Each scope and every narrower scope it grants, transitively (D08).
    grants: BTreeMap<String, Vec<String>>,
    /// What a tool the handler did not list when the server was built declares (tools added
    /// later): asked of the handler, so such a tool is never gated by the basic scopes alone.
    undeclared: Option<ToolLookup>,
}

/// What a call of a tool needs where it is dispatched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallRequirement {
    /// These scopes.
    Scopes(Vec<String>),
    /// Nothing is known of the tool: neither the handler nor the configuration names it.
    Unknown,
    /// The tool's declaration cannot be read: it is not run.
    Unreadable,
}

/// The scopes a tool declares, by name; `None` for a tool the handler does not have (or whose
/// declaration cannot be read: the check where it is dispatched refuses it).
type DeclaredScopes = dyn Fn(&str) -> Option<Vec<String>> + Send + Sync;

/// Asks the handler what a tool declares.
#[derive(Clone)]
pub(crate) struct ToolLookup(pub(crate) Arc<DeclaredScopes>);

impl std::fmt::Debug for ToolLookup {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("ToolLookup")
    }
}

impl ScopePolicy {
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

    /// `tools/call` of `tool` needs `scopes`, replacing what the tool declares
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

    /// What the handler's tools declare, `(tool, scopes)`; read when the server is built.
    pub(crate) fn with_declared(
        &mut self,
        tools: impl IntoIterator<Item = (String, Vec<String>)>,
        undeclared: ToolLookup,
    ) -> &mut Self {
        self.declared = tools.into_iter().collect();
        self.undeclared = Some(undeclared);
        self
    }

    /// What `tools/call` of `tool` needs besides the basic scopes: the configured override, else
    /// what the tool declared.
    fn of_tool(&self, tool: &str) -> Option<&Vec<String>> {
        self.per_tool.get(tool).or_else(|| self.declared.get(tool))
    }

    /// Every tool the deployment configured (`MCP_TOOL_SCOPES`), with its scopes.
    pub(crate) fn configured(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.per_tool.iter()
    }

    /// A deployment's setting for `tool` (`MCP_TOOL_SCOPES`), if it has one.
    pub(crate) fn configured_for(&self, tool: &str) -> Option<&Vec<String>> {
        self.per_tool.get(tool)
    }

    /// What a call of `tool` needs where it is dispatched, given its definition as the session's
    /// handler has it now: the basic scopes and the configured scopes, else those the definition
    /// declares, else those it declared when the server was built.
    pub(crate) fn required_for_call(
        &self,
        tool: &str,
        definition: Option<&Tool>,
    ) -> CallRequirement {
        let own = match (self.per_tool.get(tool), definition) {
            (Some(configured), _) => configured.clone(),
            (None, Some(definition)) => match declared_scopes(definition) {
                Ok(declared) => declared,
                Err(_) => return CallRequirement::Unreadable,
            },
            (None, None) => match self.declared.get(tool) {
                Some(declared) => declared.clone(),
                None => return CallRequirement::Unknown,
            },
        };
        let mut required = self.every_request.clone();
        for scope in own {
            if !required.contains(&scope) {
                required.push(scope);
            }
        }
        CallRequirement::Scopes(required)
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

    /// Every scope some request needs, for `scopes_supported` and the 401 challenge: the basic
    /// scopes and each tool's (as configured, else as declared).
    pub fn all_scopes(&self) -> Vec<String> {
        let tools = self
            .declared
            .keys()
            .chain(self.per_tool.keys())
            .filter_map(|tool| self.of_tool(tool));
        let mut all: Vec<String> = self
            .every_request
            .iter()
            .chain(tools.flatten())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// What a client should ask for first (B10): the basic scopes, or, when there are none, every
    /// scope some tool needs.
    pub fn first_request(&self) -> Vec<String> {
        if self.every_request.is_empty() {
            self.all_scopes()
        } else {
            self.every_request.clone()
        }
    }

    /// The scopes every request needs.
    pub fn basic(&self) -> &[String] {
        &self.every_request
    }

    /// The scopes a JSON-RPC message (or batch) needs, in a stable order without repeats.
    pub fn required_for(&self, message: &Value) -> Vec<String> {
        let messages: Vec<&Value> = match message {
            Value::Array(batch) => batch.iter().collect(),
            single => vec![single],
        };
        self.required_for_calls(messages.into_iter().map(|message| {
            (
                message.get("method").and_then(Value::as_str),
                message.pointer("/params/name").and_then(Value::as_str),
            )
        }))
    }

    /// [`Self::required_for`] of a body read as an [`Envelope`], as the scope gate reads it.
    pub(crate) fn required_for_envelope(&self, envelope: &Envelope<'_>) -> Vec<String> {
        self.required_for_calls(
            envelope
                .messages
                .iter()
                .map(|call| (call.method.as_deref(), call.name.as_deref())),
        )
    }

    /// The scopes messages need, given each one's method and `params.name`.
    fn required_for_calls<'a>(
        &self,
        calls: impl Iterator<Item = (Option<&'a str>, Option<&'a str>)>,
    ) -> Vec<String> {
        let mut required = self.every_request.clone();
        for (method, name) in calls {
            if method == Some("tools/call") {
                let tool = name.unwrap_or_default();
                let looked_up;
                let scopes = match self.of_tool(tool) {
                    Some(scopes) => Some(scopes),
                    None => {
                        looked_up = self.undeclared.as_ref().and_then(|lookup| (lookup.0)(tool));
                        looked_up.as_ref()
                    }
                };
                for scope in scopes.into_iter().flatten() {
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
