//! The server under test, in-process on a loopback listener: started from typed settings, stopped
//! when dropped. Shared by every harness (the mock IdP's and the real IdP's).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mcp_oauth_server::{App, Clock, Settings};
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
    /// The app (readiness, open sessions).
    pub app: App,
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

    /// Starts the server on `listener`.
    pub async fn start(listener: TcpListener, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let port = listener.local_addr().unwrap().port();
        let app = App::start(settings.clone(), clock).await.unwrap();
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

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}
