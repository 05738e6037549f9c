//! The binary as a new user meets it: `mock-idp` prints its issuer, a client and a curl command,
//! and running that exact command yields a token that verifies.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{DEMO_AUDIENCE, fetch_jwks, verify};

/// The running binary; killed when dropped, so a failing test leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary on a free port and collects its banner (until the last banner line).
fn start_binary(extra: &[&str]) -> (Running, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-idp"))
        .args(["--port", "0"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // Keep draining after the test stops listening: a closed pipe would make the
            // child's next write fail.
            let _ = lines_tx.send(line);
        }
    });
    let mut banner = Vec::new();
    while !banner
        .last()
        .is_some_and(|l: &String| l.starts_with("other issuers:"))
    {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the banner within 30 s");
        banner.push(line);
    }
    (running, banner)
}

fn value_of<'a>(banner: &'a [String], label: &str) -> &'a str {
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .map(str::trim)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_curl_command_yields_a_token_that_verifies() {
    let (_running, banner) = start_binary(&[]);
    assert_eq!(banner[0], "mock-idp ready");
    let issuer = value_of(&banner, "issuer:").to_owned();
    assert_eq!(value_of(&banner, "client id:"), "demo-client");
    assert_eq!(value_of(&banner, "client secret:"), "demo-secret");
    let curl = banner
        .iter()
        .find(|l| l.trim_start().starts_with("curl "))
        .unwrap()
        .trim()
        .to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("sh").arg("-c").arg(curl).output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let token = body["access_token"].as_str().unwrap();
    let jwks = fetch_jwks(&format!("{issuer}/jwks")).await;
    verify(token, &jwks, &issuer, DEMO_AUDIENCE).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_choose_the_algorithm_and_the_public_issuer_url() {
    let (_running, banner) =
        start_binary(&["--alg", "ES256", "--issuer", "https://idp.example.test/"]);
    assert_eq!(
        value_of(&banner, "issuer:"),
        "https://idp.example.test",
        "no trailing slash"
    );
    let jwks_line = value_of(&banner, "jwks:");
    assert_eq!(jwks_line, "https://idp.example.test/jwks");
}

#[test]
fn an_unsupported_algorithm_stops_the_start_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_mock-idp"))
        .args(["--alg", "HS256"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unsupported signing algorithm"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_configuration_file_is_valid_and_applied() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/idp.example.json");
    let (_running, banner) = start_binary(&["--config", path]);
    let issuer = value_of(&banner, "issuer:").to_owned();
    let jwks: serde_json::Value = crate::harness::http()
        .get(format!("{issuer}/edwards/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
    let token: serde_json::Value = crate::harness::http()
        .post(format!("{issuer}/entra-like/token"))
        .basic_auth("okta-shaped", Some("okta-shaped-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (header, claims) = crate::harness::inspect(token["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "JWT");
    assert_eq!(claims["uid"], "00u1a2b3c4d5e6f7g8h9");
}
