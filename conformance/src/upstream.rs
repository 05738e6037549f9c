//! MCP servers with no auth of their own, for the gateway tests: one on rmcp, in-process, and the
//! official TypeScript SDK's Streamable HTTP server as a Node process (`real-idp/upstream.mjs`).
//! Each keeps its own log of every request that reached it, which is how a test proves that a
//! refused request never did, and that no `Authorization` header ever came through.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::middleware::{Next, from_fn};
use axum::response::Response;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// One request as the upstream received it.
#[derive(Debug, Clone, Deserialize)]
pub struct Seen {
    /// The HTTP method.
    pub method: String,
    /// Every header, names in lower case (repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body, as text.
    pub body: String,
}

/// Every request an upstream received, in order.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Seen>>>);

impl RequestLog {
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// The header of the requests [`Upstream::settled_log`] sends straight to the upstream (GETs,
/// which no count of forwarded POSTs includes).
pub const MARKER_HEADER: &str = "x-log-marker";

static MARKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A running upstream. Dropping it stops it.
pub struct Upstream {
    /// Its MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
    /// What reached it.
    pub log: RequestLog,
    /// The rmcp upstream's `stream_progress` tool sends its first progress notification, then
    /// waits for this before sending the others.
    pub release_progress: Arc<Notify>,
    running: Running,
}

enum Running {
    Task(JoinHandle<()>),
    Process(Child),
}

impl Drop for Upstream {
    fn drop(&mut self) {
        match &mut self.running {
            Running::Task(task) => task.abort(),
            Running::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Upstream {
    /// The log, once it holds every request that reached the upstream before this call. The
    /// rmcp upstream logs before it answers; the Node one prints each request to a pipe that a
    /// thread reads, so a marker request is sent straight to it and awaited: the pipe keeps
    /// order, so every earlier line has been read once the marker's has.
    pub async fn settled_log(&self) -> &RequestLog {
        if let Running::Process(_) = self.running {
            let marker = MARKERS
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string();
            let _ = reqwest::Client::new()
                .get(format!("{}/log-marker", self.url))
                .header(MARKER_HEADER, &marker)
                .send()
                .await;
            let seen = crate::eventually(Duration::from_secs(10), || async {
                self.log
                    .all()
                    .iter()
                    .any(|seen| seen.headers.get(MARKER_HEADER) == Some(&marker))
            })
            .await;
            assert!(seen, "the upstream's log did not catch up");
        }
        &self.log
    }

    /// The TypeScript upstream checks the gateway's identity tokens from now on, with `jose`
    /// against the key set at `jwks_url` (`whoami` then answers the verified claims).
    pub async fn trust(&self, issuer: &str, audience: &str, jwks_url: &str) {
        let base = self.url.trim_end_matches("/mcp");
        let told = reqwest::Client::new()
            .post(format!("{base}/trust"))
            .json(
                &serde_json::json!({"issuer": issuer, "audience": audience, "jwks_url": jwks_url}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(told.status(), 204);
    }

    /// An rmcp server with sessions and no auth: tools `whoami` (the identity headers it was
    /// sent) and `stream_progress` (progress notifications over SSE, held back until
    /// [`Upstream::release_progress`]).
    pub async fn rmcp() -> Self {
        Self::rmcp_with(true).await
    }

    /// The same rmcp server, stateless: no sessions, JSON answers.
    pub async fn rmcp_stateless() -> Self {
        Self::rmcp_with(false).await
    }

    async fn rmcp_with(sessions: bool) -> Self {
        let release = Arc::new(Notify::new());
        let tools = Tools {
            tool_router: Tools::tool_router(),
            release: Arc::clone(&release),
        };
        let make = move || Ok(tools.clone());
        let service = if sessions {
            axum::routing::any_service(StreamableHttpService::new(
                make,
                Arc::new(LocalSessionManager::default()),
                StreamableHttpServerConfig::default(),
            ))
        } else {
            axum::routing::any_service(StreamableHttpService::new(
                make,
                Arc::new(NeverSessionManager::default()),
                StreamableHttpServerConfig::default()
                    .with_legacy_session_mode(false)
                    .with_json_response(true),
            ))
        };
        let log = RequestLog::default();
        let recorded = log.clone();
        let app = axum::Router::new()
            .nest_service("/mcp", service)
            .layer(from_fn(move |request: Request, next: Next| {
                let log = recorded.clone();
                async move { record(log, request, next).await }
            }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://127.0.0.1:{port}/mcp"),
            log,
            release_progress: release,
            running: Running::Task(task),
        }
    }

    /// The official TypeScript SDK's Streamable HTTP server with sessions and no auth
    /// (`real-idp/upstream.mjs`): tool `whoami`, as the rmcp one.
    pub fn typescript(node: &std::path::Path) -> Self {
        let mut command = Command::new(node);
        command
            .arg("upstream.mjs")
            .current_dir(crate::real_idp::project_dir());
        Self::process(command, "TypeScript")
    }

    /// The official Python SDK's Streamable HTTP server (`MCPServer`) with sessions and no auth
    /// (`python-upstream/upstream.py`): tool `whoami`, as the others. Panics, saying what to
    /// install, without the SDK.
    pub fn python() -> Self {
        let project = python_project();
        if let Some(remedy) = python_absence(&project) {
            panic!("{remedy}");
        }
        let mut command = Command::new(project.join(".venv/bin/python"));
        command.arg("upstream.py").current_dir(&project);
        Self::process(command, "Python")
    }

    /// A server that prints `{"port": N}` once listening, then one JSON line per request.
    fn process(mut command: Command, language: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let log = RequestLog::default();
        let recorded = log.clone();
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = port_tx.send(first);
            for line in lines.map_while(Result::ok) {
                if let Ok(seen) = serde_json::from_str::<Seen>(&line) {
                    recorded.push(seen);
                }
            }
        });
        let started = port_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_default();
        let Ok(started) = serde_json::from_str::<serde_json::Value>(&started) else {
            let _ = child.kill();
            panic!("the {language} upstream did not start: {started:?}");
        };
        let port = started["port"].as_u64().unwrap();
        Self {
            url: format!("http://127.0.0.1:{port}/mcp"),
            log,
            release_progress: Arc::new(Notify::new()),
            running: Running::Process(child),
        }
    }
}

/// The Python project of the Python upstream.
pub fn python_project() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python-upstream")
}

/// What the Python upstream misses, as the command that installs it; `None` when installed.
fn python_absence(project: &std::path::Path) -> Option<&'static str> {
    crate::real_idp::prerequisites::python_sdk_missing(project)
        .then_some(crate::real_idp::prerequisites::PYTHON_REMEDY)
}

/// Logs the request (its body read whole: these are small test requests), then serves it.
async fn record(log: RequestLog, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let mut headers = BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    log.push(Seen {
        method: parts.method.to_string(),
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The rmcp upstream's tools.
#[derive(Clone)]
struct Tools {
    tool_router: ToolRouter<Self>,
    release: Arc<Notify>,
}

#[tool_router]
impl Tools {
    /// The identity headers the gateway sent, as a JSON object.
    #[tool(description = "Who the gateway says the caller is.")]
    async fn whoami(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let mut identity = serde_json::Map::new();
        for name in mcp_oauth_server::gateway::IDENTITY_HEADERS {
            if let Some(value) = parts.and_then(|p| p.headers.get(name)) {
                identity.insert(
                    name.to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into(),
                );
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(
            serde_json::Value::Object(identity).to_string(),
        )]))
    }

    /// Three progress notifications: the first at once, the others once released.
    #[tool(description = "Reports progress three times, then answers.")]
    async fn stream_progress(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let token = context
            .meta
            .get_progress_token()
            .ok_or_else(|| ErrorData::invalid_params("no progress token", None))?;
        let notify = |step: f64| {
            let mut param = ProgressNotificationParam::new(token.clone(), step);
            param.total = Some(3.0);
            context.peer.notify_progress(param)
        };
        notify(1.0)
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        self.release.notified().await;
        for step in [2.0, 3.0] {
            notify(step)
                .await
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        }
        Ok(CallToolResult::success(vec![ContentBlock::text("done")]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info.server_info = Implementation::new("upstream", "1");
        info
    }
}
