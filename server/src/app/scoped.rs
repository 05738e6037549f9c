//! The user's handler, wrapped so that each tool runs only for callers holding the scopes it
//! needs, checked again where the tool is dispatched.
//!
//! The scope gate in front of rmcp answers a missing scope with the HTTP 403 step-up, from what
//! the tools declared when the server was built. A handler can change its tools later (rmcp's
//! `enable_route`, routes added to one session's handler): the gate cannot see those, so this
//! wrapper asks the session's own handler at the moment of the call, and refuses what it
//! cannot judge. Every other method is passed through unchanged, in the manner of rmcp's own
//! `impl ServerHandler for Arc<H>`.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;

use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};
use rmcp::{ErrorData as McpError, ServerHandler};

use crate::auth::Principal;
use crate::auth::scopes::{CallRequirement, ScopePolicy};
use crate::tools::requires_scopes;

/// A handler whose tools run only for callers with their scopes.
pub(super) struct ScopedTools<H> {
    inner: H,
    scopes: Arc<ScopePolicy>,
}

impl<H: ServerHandler> ScopedTools<H> {
    pub(super) fn new(inner: H, scopes: Arc<ScopePolicy>) -> Self {
        Self { inner, scopes }
    }

    /// Why `tool` may not run for this request's caller, if it may not.
    fn refusal(&self, tool: &str, context: &RequestContext<RoleServer>) -> Option<McpError> {
        let Some(caller) = Principal::of_request(context) else {
            return Some(McpError::internal_error(
                "no authenticated caller on this request",
                None,
            ));
        };
        let definition = self.inner.get_tool(tool);
        match self.scopes.required_for_call(tool, definition.as_ref()) {
            CallRequirement::Scopes(required) => {
                self.scopes.check(caller, &required).err().map(|_| {
                    McpError::invalid_request(
                        format!("insufficient_scope: {tool} needs {}", required.join(" ")),
                        None,
                    )
                })
            }
            // As rmcp's tool router answers a name it does not have.
            CallRequirement::Unknown => Some(McpError::invalid_params("tool not found", None)),
            CallRequirement::Unreadable => Some(McpError::internal_error(
                "the tool's scope declaration cannot be read; it is not run",
                None,
            )),
        }
    }

    /// Shows a configured override in the tool's `_meta`, as [`requires_scopes`] would.
    fn show_configured_scopes(&self, tool: &mut Tool) {
        if let Some(scopes) = self.scopes.configured_for(&tool.name) {
            let shown = requires_scopes(scopes.iter().cloned());
            let meta = tool.meta.get_or_insert_with(MetaObject::default);
            for (key, value) in shown.0 {
                meta.0.insert(key, value);
            }
        }
    }
}

// The legacy methods (logging, resources/subscribe) are passed through, as rmcp's own wrappers do.
#[allow(deprecated)]
impl<H: ServerHandler> ServerHandler for ScopedTools<H> {
    /// Runs the tool only for a caller holding the scopes it needs, asked of this session's own
    /// handler at the moment of the call: a tool enabled or added after the server was built is
    /// covered, and one whose needs cannot be read is refused.
    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + MaybeSendFuture + '_ {
        let refusal = self.refusal(&request.name, &context);
        async move {
            match refusal {
                Some(error) => Err(error),
                None => self.inner.call_tool(request, context).await,
            }
        }
    }

    /// The handler's tools, each showing the scopes it needs here (a configured override
    /// replaces the tool's own declaration).
    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut listed = self.inner.list_tools(request, context).await?;
        for tool in &mut listed.tools {
            self.show_configured_scopes(tool);
        }
        Ok(listed)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let mut tool = self.inner.get_tool(name)?;
        self.show_configured_scopes(&mut tool);
        Some(tool)
    }

    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }

    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_prompt(request, context)
    }

    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_prompts(request, context)
    }

    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_resources(request, context)
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }

    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.read_resource(request, context)
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }

    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.subscribe(request, context)
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}
