#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The binary as a user meets it: refusing to start without configuration (and saying what to
//! set), reading `.env`, stopping on SIGTERM; and the demo (`cargo run --example demo`) printing
//! a token that works.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::json;

/// The running binary; killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_binary() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_mcp-oauth-server"))
}

/// The demo example's executable. `cargo test` builds examples alongside the tests; when a
/// single test target is run alone, it is built here. It is looked for beside this test binary,
/// not under `../target/debug`: Cargo puts test binaries in `<target>/<profile>/deps/` and
/// examples in `<target>/<profile>/examples/`, wherever the target directory is
/// (`CARGO_TARGET_DIR`, `--target-dir`, `build.target-dir`) and whichever the profile.
fn demo_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("a test binary lives in <target>/<profile>/deps");
    let demo = profile_dir
        .join("examples")
        .join(format!("demo{}", std::env::consts::EXE_SUFFIX));
    if !demo.exists() {
        // `debug` is the dev profile's directory; any other profile's bears its name.
        let profile = match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => "dev",
            Some(name) => name,
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "mcp-oauth-server", "--example", "demo"])
            .arg("--target-dir")
            .arg(profile_dir.parent().unwrap())
            .args(["--profile", profile])
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(demo.exists(), "{} was not built", demo.display());
    demo
}

/// Config errors: without OAUTH_ISSUER the server refuses to start and names what to set (and
/// where the demo is); it never falls back to a mock by itself.
#[test]
fn without_configuration_the_server_refuses_to_start_and_says_what_to_set() {
    let output = Command::new(server_binary())
        .env_remove("OAUTH_ISSUER")
        .env_remove("OAUTH_JWKS_URI")
        .env("HOST", "10.1.2.3")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OAUTH_ISSUER: required"), "{stderr}");
    assert!(
        stderr.contains("MCP_RESOURCE_URL: required when HOST is not loopback"),
        "{stderr}"
    );
    assert!(stderr.contains("cargo run --example demo"), "{stderr}");
}

/// The demo: the printed token works against the printed endpoint, which listens on loopback
/// (T04).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_a_token_that_works() {
    let (_running, token, endpoint) = start_demo(&[]);
    assert!(
        endpoint.starts_with("http://localhost:") && endpoint.ends_with("/mcp"),
        "{endpoint}"
    );
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("mcp-session-id"));
}

/// A21: a client that reaches the demo at 127.0.0.1 is told that spelling as the resource (the
/// official Python SDK refuses metadata whose resource differs from the URL it was given), and a
/// token the demo IdP issues for that spelling works there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_answers_a_client_in_the_loopback_spelling_it_used() {
    let (_running, _token, endpoint) = start_demo(&["--stateless"]);
    let by_address = endpoint.replacen("localhost", "127.0.0.1", 1);
    let origin = by_address.trim_end_matches("/mcp");
    let http = reqwest::Client::new();
    let metadata: serde_json::Value = http
        .get(format!("{origin}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], by_address.as_str(), "{metadata}");
    let issuer = metadata["authorization_servers"][0].as_str().unwrap();
    let token: serde_json::Value = http
        .post(format!("{issuer}/token"))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools"),
            ("resource", by_address.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("an access token");
    let response = http
        .post(&by_address)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["result"]["structuredContent"]["audience"],
        by_address.as_str()
    );
}

/// The demo with --stateless: the printed token calls get_me in one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stateless_demo_token_calls_get_me_directly() {
    let (_running, token, endpoint) = start_demo(&["--stateless"]);
    let response = reqwest::Client::new()
        .post(&endpoint)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_me", "arguments": {}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["result"]["structuredContent"]["user_id"], "demo-user");
}

/// Starts the demo on a free port; returns the process and the banner's token and endpoint.
fn start_demo(extra: &[&str]) -> (Running, String, String) {
    let mut child = Command::new(demo_binary())
        .args(["--port", "0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep draining after the test stops listening: a closed pipe would make the
            // child's next write fail.
            let _ = tx.send(line);
        }
    });
    let (mut token, mut endpoint) = (None, None);
    while token.is_none() || endpoint.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo banner");
        if let Some(value) = line.strip_prefix("export TOKEN=") {
            token = Some(value.to_owned());
        }
        if let Some(value) = line.trim().strip_prefix("MCP endpoint:") {
            endpoint = Some(value.trim().to_owned());
        }
    }
    (Running(child), token.unwrap(), endpoint.unwrap())
}

/// Operations: SIGTERM stops the server gracefully (exit 0), even with an SSE stream open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_gracefully() {
    let (mut running, token, endpoint) = start_demo(&[]);
    let client = reqwest::Client::new();
    let initialize = client
        .post(&endpoint)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
        }))
        .send()
        .await
        .unwrap();
    let status = initialize.status();
    let headers = initialize.headers().clone();
    assert_eq!(
        status,
        200,
        "initialize: {headers:?} {}",
        initialize.text().await.unwrap_or_default()
    );
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let _stream = client
        .get(&endpoint)
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    let pid = running.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}");
}

/// The sample's `.env` contract: variables are read from `.env` in the working directory;
/// a malformed `.env` stops the start.
#[test]
fn settings_are_read_from_a_dot_env_file() {
    let dir = std::env::temp_dir().join(format!("mcp-oauth-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(".env"),
        "OAUTH_ISSUER=https://idp.example.com\nHOST=10.1.2.3\n",
    )
    .unwrap();
    let output = Command::new(server_binary())
        .env_remove("OAUTH_ISSUER")
        .env_remove("HOST")
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("OAUTH_ISSUER"),
        "OAUTH_ISSUER came from .env: {stderr}"
    );
    assert!(
        stderr.contains("MCP_RESOURCE_URL"),
        "HOST came from .env: {stderr}"
    );
    std::fs::write(dir.join(".env"), "OAUTH_ISSUER='unterminated\n").unwrap();
    let output = Command::new(server_binary())
        .env_remove("OAUTH_ISSUER")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains(".env"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// R07: `.env` is read from the working directory only; one in a parent directory is ignored
/// (dotenvy's default search would have let it set OAUTH_JWKS_URI).
#[test]
fn a_dot_env_in_a_parent_directory_is_ignored() {
    let parent = std::env::temp_dir().join(format!("mcp-oauth-parent-{}", std::process::id()));
    let child = parent.join("child");
    std::fs::create_dir_all(&child).unwrap();
    std::fs::write(
        parent.join(".env"),
        "OAUTH_ISSUER=https://attacker.example\nOAUTH_JWKS_URI=https://attacker.example/jwks\n",
    )
    .unwrap();
    let output = Command::new(server_binary())
        .env_remove("OAUTH_ISSUER")
        .env_remove("OAUTH_JWKS_URI")
        .env_remove("HOST")
        .current_dir(&child)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("OAUTH_ISSUER: required"),
        "the parent's .env was read: {stderr}"
    );
    std::fs::remove_dir_all(&parent).unwrap();
}

/// R09, T04: without HOST the server listens on 127.0.0.1 only; HOST=0.0.0.0 without
/// MCP_RESOURCE_URL is refused, naming the variable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_listens_on_loopback_unless_told_otherwise() {
    let idp = mock_idp::MockIdp::builder().start().await.unwrap();
    let mut child = Command::new(server_binary())
        .env("OAUTH_ISSUER", idp.url())
        .env("PORT", "0")
        .env("RUST_LOG", "info")
        .env_remove("HOST")
        .env_remove("MCP_RESOURCE_URL")
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let address = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the listening line");
        if let Some(at) = line.find("address=") {
            let rest = &line[at + "address=".len()..];
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    let healthz = reqwest::get(format!("http://{address}/healthz"))
        .await
        .unwrap();
    assert_eq!(healthz.status(), 200);
    drop(running);

    let output = Command::new(server_binary())
        .env("OAUTH_ISSUER", idp.url())
        .env("HOST", "0.0.0.0")
        .env_remove("MCP_RESOURCE_URL")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("MCP_RESOURCE_URL: required when HOST is not loopback"),
        "{stderr}"
    );
}
