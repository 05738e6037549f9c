//! The real authorization server: panva/oidc-provider (OpenID Certified), run by Node from
//! `conformance/real-idp` (installed by `npm ci --prefix conformance/real-idp`, pinned by its
//! lockfile, on the Node 22 the lockfile also pins). A [`RealIdp`] is one running provider; it is
//! killed when dropped.
//!
//! Without what they need (the Node project installed, a headless Chromium for the browser test)
//! the tests are compiled ignored, outside CI: see [`prerequisites`]. A test that runs anyway (in
//! CI, or with `--include-ignored`) fails saying what is missing: [`node`], [`browser`].

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub mod prerequisites;

/// The confidential client the provider knows (client_secret_basic, scope `mcp:tools`).
pub const CLIENT_ID: &str = "mcp-client";
/// Its secret.
pub const CLIENT_SECRET: &str = "mcp-client-secret";
/// The resource the provider issues opaque tokens for.
pub const OPAQUE_RESOURCE: &str = "urn:mcp:opaque";
/// The resource server's own client at the provider, for introspection.
pub const INTROSPECTOR_ID: &str = "mcp-server";
/// Its secret.
pub const INTROSPECTOR_SECRET: &str = "mcp-server-secret";

/// The Node project holding the provider and the TypeScript SDK client.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("real-idp")
}

/// One of the project's Node scripts (`name`, e.g. `client.mjs`), run by `node` in the project
/// directory; add its arguments, then hand it to [`report_of`].
pub fn script(node: &std::path::Path, name: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(node);
    command.arg(name).current_dir(project_dir());
    command
}

/// Runs a script to completion and returns the JSON report it prints on stdout. Panics, with
/// what the script printed, if it fails or outlives `deadline`; the process is killed then, or
/// when the test ends first.
pub async fn report_of(mut command: tokio::process::Command, deadline: Duration) -> Value {
    command.kill_on_drop(true);
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .unwrap_or_else(|_| panic!("the script did not finish within {deadline:?}"))
        .unwrap_or_else(|e| panic!("the script cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the script failed: {stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("the script's report is not JSON ({e}): {stdout}"))
}

/// The Node 22 binary the project pins. Panics, saying what to install, if the project is not
/// installed.
pub fn node() -> PathBuf {
    if let Some(absence) = prerequisites::real_idp_absence(&project_dir()) {
        panic!("{}", absence.remedy());
    }
    project_dir().join("node_modules/.bin/node")
}

/// The Node binary and a headless Chromium for puppeteer-core (`CHROMIUM`, else the first of
/// [`prerequisites::CHROMIUM_PATHS`] installed). Panics, saying what to install, without them.
pub fn browser() -> (PathBuf, PathBuf) {
    let node = node();
    let chromium = prerequisites::find_chromium(std::env::var_os("CHROMIUM").map(PathBuf::from));
    let Some(chromium) = chromium else {
        panic!("{}", prerequisites::Absence::Chromium.remedy());
    };
    (node, chromium)
}

/// A running oidc-provider.
pub struct RealIdp {
    child: Child,
    /// Its issuer identifier, `http://127.0.0.1:PORT`.
    pub issuer: String,
    /// Its port (restart on it to rotate the keys under the same issuer).
    pub port: u16,
    /// The resources it issues JWT access tokens for.
    jwt_resources: Vec<String>,
    http: reqwest::Client,
}

impl RealIdp {
    /// Starts the provider on `port` (0: any), issuing JWT access tokens for `jwt_resources`.
    pub fn start(node: &std::path::Path, port: u16, jwt_resources: &[String]) -> Self {
        let mut child = Command::new(node)
            .arg("idp.mjs")
            .current_dir(project_dir())
            .env("PORT", port.to_string())
            .env("JWT_RESOURCES", jwt_resources.join(","))
            .env("OPAQUE_RESOURCE", OPAQUE_RESOURCE)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("INTROSPECTOR_ID", INTROSPECTOR_ID)
            .env("INTROSPECTOR_SECRET", INTROSPECTOR_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining: a closed pipe would break the provider's next write.
            for _ in lines {}
        });
        let (err_tx, err_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let stderr = err_rx
                    .recv_timeout(Duration::from_secs(5))
                    .unwrap_or_default();
                panic!("the real IdP did not start ({other:?}): {stderr}");
            }
        };
        let started: Value = serde_json::from_str(&line).unwrap();
        Self {
            child,
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            port: u16::try_from(started["port"].as_u64().unwrap()).unwrap(),
            jwt_resources: jwt_resources.to_vec(),
            http: reqwest::Client::new(),
        }
    }

    /// Stops this provider and starts a new one on the same port: the same issuer, a new key.
    pub fn restart(mut self, node: &std::path::Path) -> Self {
        let (port, resources) = (self.port, std::mem::take(&mut self.jwt_resources));
        drop(self);
        Self::start(node, port, &resources)
    }

    /// A client-credentials access token for `resource` (RFC 8707), scope `mcp:tools`.
    pub async fn client_credentials(&self, resource: &str) -> String {
        let response: Value = self
            .http
            .post(format!("{}/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "mcp:tools"),
                ("resource", resource),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        response["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token for {resource}: {response}"))
            .to_owned()
    }
}

impl RealIdp {
    /// Revokes `token` (RFC 7009) as the client it was issued to, at the endpoint the provider's
    /// metadata names.
    pub async fn revoke(&self, token: &str) {
        let metadata: Value = self
            .http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let endpoint = metadata["revocation_endpoint"].as_str().unwrap();
        let response = self
            .http
            .post(endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "revocation");
    }
}

impl Drop for RealIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
