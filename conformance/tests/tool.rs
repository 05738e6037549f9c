#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The conformance tool (`conformance check`, issue 22) run as a user runs it, against our server
//! (every MUST passes, and everything else too) and against a server built with the official
//! TypeScript SDK and its recommended auth (`requireBearerAuth` with a `jose` JWT verifier):
//! that report is kept in `docs/conformance-report-typescript-sdk.md`, whatever it says, and this
//! test holds the tool to it (`UPDATE_CONFORMANCE=1` rewrites it after a reviewed change).

use std::process::Stdio;
use std::time::Duration;

use conformance::examples::server_binary;
use conformance::server::RunningServer;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

const DEADLINE: Duration = Duration::from_secs(300);

/// The tool, started for `url`; returns it once it printed its issuer, and that issuer.
async fn start_tool(url: &str, json: &std::path::Path, extra: &[&str]) -> (Child, String) {
    let mut tool = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["check", "--url", url, "--json"])
        .arg(json)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("the tool starts");
    let mut lines = BufReader::new(tool.stdout.take().unwrap()).lines();
    let issuer = loop {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .expect("the tool prints its issuer")
            .unwrap()
            .expect("a line");
        if let Some(issuer) = line.strip_prefix("issuer: ") {
            break issuer.to_owned();
        }
    };
    // Keep reading, so the tool never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (tool, issuer)
}

/// Our server binary trusting `issuer` at `url` (listening on `port`), with `env` beside;
/// killed when dropped.
fn our_server(issuer: &str, url: &str, port: u16, env: &[(&str, &str)]) -> Child {
    Command::new(server_binary())
        .env("OAUTH_ISSUER", issuer)
        .env("MCP_RESOURCE_URL", url)
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The tool's exit code and report, once it is done.
async fn finish(mut tool: Child, json: &std::path::Path) -> (Option<i32>, Value) {
    let status = tokio::time::timeout(DEADLINE, tool.wait())
        .await
        .expect("the tool finishes")
        .unwrap();
    let report = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (status.code(), report)
}

fn failures(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["result"] == "fail")
        .map(|f| format!("{} {} {}: {}", f["id"], f["level"], f["check"], f["why"]))
        .collect()
}

/// D01, A02, A04, B01-B04, B08, T02, T05, K04, K06 and the whole corpus, through the tool: our
/// server, configured only with what the tool prints (issuer and resource URL, `mcp:tools`
/// required), passes every check, and the tool exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_passes_our_server() {
    let (listener, port) = RunningServer::bind().await;
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let json = std::env::temp_dir().join(format!("conformance-ours-{port}.json"));
    let (tool, issuer) = start_tool(&url, &json, &[]).await;
    let _server = our_server(
        &issuer,
        &url,
        port,
        &[("OAUTH_REQUIRED_SCOPES", "mcp:tools")],
    );
    let (code, report) = finish(tool, &json).await;
    let failed = failures(&report);
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(code, Some(0));
    let findings = report["findings"].as_array().unwrap();
    assert!(findings.len() > 100, "the corpus ran: {}", findings.len());
    for f in findings {
        assert!(f["sent"].is_string() && f["received"].is_string() && f["level"].is_string());
    }
}

/// `--scope ''`: a server that requires no scope of every request. The three cases of a token
/// without the required scope cannot apply, and say so; everything else passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_required_scope_the_scope_cases_are_skipped() {
    let (listener, port) = RunningServer::bind().await;
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let json = std::env::temp_dir().join(format!("conformance-noscope-{port}.json"));
    let (tool, issuer) = start_tool(&url, &json, &["--scope", ""]).await;
    let _server = our_server(&issuer, &url, port, &[]);
    let (code, report) = finish(tool, &json).await;
    let failed = failures(&report);
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(code, Some(0));
    let j49: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["id"] == "J49")
        .collect();
    assert_eq!(j49.len(), 3);
    assert!(j49.iter().all(|f| f["result"] == "skip"), "{j49:?}");
}

/// `--issuer`: the server under test is started first, trusting a mock IdP already running (the
/// `mock-idp` binary, admin API on); the tool drives that IdP through its admin API. With
/// `--tool get_me --tool-scope profile:read` (our server told so by `MCP_TOOL_SCOPES`) the 403
/// step-up is checked too (H01, H03). Everything passes but the one case the admin API cannot
/// set up, which says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_drives_an_idp_already_running() {
    let (idp_listener, idp_port) = RunningServer::bind().await;
    drop(idp_listener);
    let _idp = Command::new(conformance::examples::mock_idp_binary())
        .args(["--port", &idp_port.to_string(), "--admin", "on"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    assert!(
        conformance::eventually(DEADLINE, || {
            let url = format!("{issuer}/jwks");
            async move {
                reqwest::get(url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        })
        .await
    );
    let (listener, port) = RunningServer::bind().await;
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let _server = our_server(
        &issuer,
        &url,
        port,
        &[
            ("OAUTH_REQUIRED_SCOPES", "mcp:tools"),
            ("MCP_TOOL_SCOPES", "get_me=profile:read"),
        ],
    );
    let json = std::env::temp_dir().join(format!("conformance-remote-{port}.json"));
    let mut tool = Command::new(env!("CARGO_BIN_EXE_conformance"))
        .args(["check", "--url", &url, "--issuer", &issuer])
        .args(["--tool", "get_me", "--tool-scope", "profile:read", "--json"])
        .arg(&json)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(DEADLINE, tool.wait())
        .await
        .expect("the tool finishes")
        .unwrap();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let failed = failures(&report);
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(status.code(), Some(0));
    let findings = report["findings"].as_array().unwrap();
    let result_of = |id: &str| {
        findings
            .iter()
            .filter(|f| f["id"] == id)
            .map(|f| f["result"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(result_of("H01"), ["pass"], "the step-up was checked");
    assert_eq!(result_of("H03"), ["pass"]);
    assert_eq!(
        result_of("J22"),
        ["skip"],
        "needs the IdP in process, and says so"
    );
}

/// Issue 22's second server: the official TypeScript SDK's recommended setup, judged by the tool.
/// Its report is whatever it honestly is: this test asserts it equals the one kept in `docs/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    missing_node_modules,
    ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
)]
async fn the_tool_reports_on_a_typescript_sdk_server() {
    let node = conformance::real_idp::node();
    let (listener, port) = RunningServer::bind().await;
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/mcp");
    let json = std::env::temp_dir().join(format!("conformance-ts-{port}.json"));
    let (tool, issuer) = start_tool(&url, &json, &[]).await;
    let mut server = conformance::real_idp::script(&node, "protected-server.mjs");
    server
        .args([&port.to_string(), &issuer, &url])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let _server = server.spawn().unwrap();
    let (code, report) = finish(tool, &json).await;
    let report: conformance::check::Report = serde_json::from_value(report).unwrap();
    let mut kept = format!(
        "# The conformance tool on the official TypeScript SDK\n\n\
         `conformance check` (issue 22) against `conformance/real-idp/protected-server.mjs`: an MCP\n\
         server as the SDK documents it, `requireBearerAuth` with a JWT verifier on `jose`\n\
         (`jwtVerify` with the issuer's JWKS, `issuer` and `audience`), the SDK's RFC 9728 metadata\n\
         router, stateless Streamable HTTP. Generated by `conformance/tests/tool.rs`\n\
         (`UPDATE_CONFORMANCE=1 cargo test -p conformance --test tool`); CI asserts it, not a pass.\n\n\
         The tool's exit status: {}.\n\n",
        code.map_or("killed".to_owned(), |c| c.to_string())
    );
    kept.push_str(&conformance::check::table(&report));
    let path = conformance::coverage::repo_root().join("docs/conformance-report-typescript-sdk.md");
    if std::env::var_os("UPDATE_CONFORMANCE").is_some() {
        std::fs::write(&path, &kept).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        on_disk, kept,
        "the report changed: review it, then UPDATE_CONFORMANCE=1 cargo test -p conformance --test tool"
    );
}
