//! The server under test, in-process on a loopback listener: started from typed settings, stopped
//! when dropped. Shared by every harness (the mock IdP's and the real IdP's).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use futures_util::future::BoxFuture;
use mcp_oauth_server::tools::DefaultTools;
use mcp_oauth_server::{Clock, NoHandler, Server, ServerBuilder, Settings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server. Dropping it stops it.
pub struct RunningServer {
    /// The settings it runs with.
    pub settings: Settings,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The MCP endpoint as requested (`http://127.0.0.1:PORT/mcp`).
    pub endpoint: String,
    /// The server (readiness, open sessions).
    pub app: Server,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// A free loopback port, bound: start the IdP knowing the server's port, then the server.
    pub async fn bind() -> (TcpListener, u16) {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    /// Starts the server with our own tools (`get_me`) on `listener`.
    pub async fn start(listener: TcpListener, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        Self::start_with(listener, settings, clock, Tools::default()).await
    }

    /// Starts the server with `tools` on `listener`.
    pub async fn start_with(
        listener: TcpListener,
        settings: Settings,
        clock: Arc<dyn Clock>,
        tools: Tools,
    ) -> Self {
        let port = listener.local_addr().unwrap().port();
        let app = (tools.build)(Server::builder(settings.clone()), clock).await;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.clone().serve(listener, async {
            let _ = stopped.await;
        }));
        let base = format!("http://127.0.0.1:{port}");
        Self {
            endpoint: format!("{base}{}", settings.resource.url.path()),
            base,
            settings,
            app,
            stop: Some(stop),
            task,
        }
    }
}

/// The tools a server under test protects: what the harness is parameterised by, so the same
/// tests run against any handler.
pub struct Tools {
    build: Box<Build>,
}

/// Gives the builder its handler and builds.
type Build = dyn FnOnce(ServerBuilder<NoHandler>, Arc<dyn Clock>) -> BoxFuture<'static, Server>;

impl Tools {
    /// The handlers `make` returns.
    pub fn of<F, H>(make: F) -> Self
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: rmcp::ServerHandler,
    {
        Self {
            build: Box::new(move |builder, clock| {
                Box::pin(async move { builder.handler(make).build(clock).await.unwrap() })
            }),
        }
    }
}

impl Tools {
    /// No tools: a gateway to the upstream its settings name.
    pub fn gateway() -> Self {
        Self {
            build: Box::new(move |builder, clock| {
                Box::pin(async move { builder.gateway().build(clock).await.unwrap() })
            }),
        }
    }
}

impl Default for Tools {
    /// Ours: `get_me`.
    fn default() -> Self {
        Self::of(DefaultTools::new)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
