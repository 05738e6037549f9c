#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
//! The example clients a user copies (`server/examples/machine_client.rs`, `user_client.rs`),
//! run as processes against the server and the mock IdP: a machine client that obtains, keeps and
//! renews a client-credentials token (what the Python sample's `TokenManager` did), and a user
//! client that starts with no token and signs a user in through the login page (checklist
//! A01-A05, B01-B03, D03). And the library's examples (`custom_tools`, `axum_embed`), run as a
//! user runs them, with the server's variables, against the mock IdP.

use std::collections::HashSet;
use std::time::Duration;

use conformance::examples::{RunningExample, ServingExample};
use conformance::{TestEnv, challenge_params, eventually, fixture_supply, jsonrpc_body};
use mcp_oauth_server::settings::{DpopMode, Transport};
use mock_idp::{AccessTokenSpec, Endpoint, Fault, IssuerSettings, MockIdp};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

/// Tokens that live 2 s are renewed 1 s before expiry: three calls 1 s apart each go out with a
/// new token (a call waits at least the renewal margin after the previous token arrived), all
/// in one MCP session, and all succeed.
#[tokio::test]
async fn the_machine_client_example_renews_its_token_before_it_expires() {
    let env = TestEnv::setup()
        .confidential_client("agent", "agent-secret")
        .idp_settings(IssuerSettings {
            token_lifetime: Duration::from_secs(2),
            ..IssuerSettings::default()
        })
        .start()
        .await;
    let example = RunningExample::start(
        "machine_client",
        &[
            "--server-url",
            &env.endpoint,
            "--client-id",
            "agent",
            "--scope",
            "mcp:tools,mcp:read",
            "--calls",
            "3",
            "--interval",
            "1",
        ],
        &[("MCP_CLIENT_SECRET", "agent-secret")],
    );
    let (lines, status) = example.finish(DEADLINE).await;
    assert!(status.success(), "{status}: {lines:?}");
    let calls: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(calls.len(), 3, "{lines:?}");
    for me in &calls {
        assert_eq!(me["client_id"], "agent", "{me}");
        assert_eq!(me["audience"], env.endpoint, "RFC 8707 resource: {me}");
        assert_eq!(me["scopes"], serde_json::json!(["mcp:tools", "mcp:read"]));
    }
    let token_ids: HashSet<&str> = calls
        .iter()
        .map(|me| me["token_id"].as_str().unwrap())
        .collect();
    assert_eq!(token_ids.len(), 3, "a new token for every call: {calls:?}");
    // RFC 3339 UTC timestamps of one shape compare as strings.
    let first_expiry = calls[0]["expires_at"].as_str().unwrap();
    let last_issue = calls[2]["issued_at"].as_str().unwrap();
    assert!(
        last_issue >= first_expiry,
        "the session outlives its first token: {calls:?}"
    );
}

/// D14-D18 and RFC 9449 §5 end to end with the example a user copies: with `--dpop` the machine
/// client binds its token to a key it makes (the mock IdP checks the token request's proof and
/// says `token_type: DPoP`) and proves that key on every request of its session. The server
/// requires DPoP, so a bearer token could not have passed. `--print-curl` prints one call that
/// works as printed against a stateless server.
#[tokio::test]
async fn the_machine_client_example_binds_its_token_with_dpop() {
    for stateless in [false, true] {
        let env = TestEnv::setup()
            .confidential_client("agent", "agent-secret")
            .configure(move |settings| {
                settings.dpop.mode = DpopMode::Required;
                if stateless {
                    settings.transport = Transport::Stateless;
                }
            })
            .start()
            .await;
        let base = [
            "--server-url",
            env.endpoint.as_str(),
            "--client-id",
            "agent",
            "--dpop",
        ];
        let secret = [("MCP_CLIENT_SECRET", "agent-secret")];
        let extra: &[&str] = if stateless {
            &["--print-curl"]
        } else {
            &["--calls", "2"]
        };
        let args = [&base[..], extra].concat();
        let (lines, status) = RunningExample::start("machine_client", &args, &secret)
            .finish(DEADLINE)
            .await;
        assert!(
            status.success(),
            "stateless {stateless}: {status}: {lines:?}"
        );
        let outputs = match stateless {
            false => lines,
            true => {
                let curl = lines.last().expect("a curl line").clone();
                assert!(
                    curl.contains("'authorization: DPoP ") && curl.contains("'dpop: "),
                    "{curl}"
                );
                let output = tokio::process::Command::new("bash")
                    .arg("-c")
                    .arg(&curl)
                    .kill_on_drop(true)
                    .output()
                    .await
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
                let answer: Value =
                    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
                vec![answer["result"]["structuredContent"].to_string()]
            }
        };
        assert!(!outputs.is_empty());
        for line in outputs {
            let me: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(me["client_id"], "agent", "stateless {stateless}: {me}");
        }
    }
}

/// Wrong credentials: the example stops with the provider's refusal and a non-zero status.
#[tokio::test]
async fn the_machine_client_example_reports_refused_credentials() {
    let env = TestEnv::setup()
        .confidential_client("agent", "agent-secret")
        .start()
        .await;
    let example = RunningExample::start(
        "machine_client",
        &["--server-url", &env.endpoint, "--client-id", "agent"],
        &[("MCP_CLIENT_SECRET", "not-the-secret")],
    );
    let (lines, status) = example.finish(DEADLINE).await;
    assert!(!status.success());
    assert!(lines.is_empty(), "nothing called: {lines:?}");
}

/// The user client starts with no token: it discovers the IdP from the server, registers
/// itself, prints the authorization URL and waits on its loopback redirect URI. A person opens
/// the URL (here: plain HTTP doing what the browser does) and picks bob on the login page; the
/// IdP redirects to the client, which exchanges the code and calls get_me as bob.
///
/// With `--dpop` (D14-D18, RFC 9449 §5) against a server that requires DPoP, the same sign-in
/// ends with get_me answered: the code exchange bound the token to the client's key, and each
/// MCP request proved it.
#[tokio::test]
async fn the_user_client_example_signs_a_user_in_through_the_login_page() {
    for dpop in [false, true] {
        let env = TestEnv::setup()
            .configure(move |settings| {
                if dpop {
                    settings.dpop.mode = DpopMode::Required;
                }
            })
            .start()
            .await;
        sign_in_with_the_user_client(&env, dpop).await;
    }
}

async fn sign_in_with_the_user_client(env: &TestEnv, dpop: bool) {
    let mut args = vec!["--server-url", env.endpoint.as_str(), "--timeout", "60"];
    if dpop {
        args.push("--dpop");
    }
    let mut example = RunningExample::start("user_client", &args, &[]);
    let url = loop {
        let line = example.next_line(DEADLINE).await.expect("a URL to open");
        if line.starts_with("http") {
            break line;
        }
    };
    sign_in_on_the_login_page(&url, "bob").await;

    let (lines, status) = example.finish(DEADLINE).await;
    assert!(status.success(), "{status}: {lines:?}");
    let me: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(me["user_id"], "bob", "{me}");
    assert_eq!(me["audience"], env.endpoint, "{me}");
    assert!(
        me["client_id"].as_str().unwrap().starts_with("dyn-"),
        "{me}"
    );
}

/// What a person does in the browser: opens the authorization URL, picks `user` on the login
/// page (its form, as served), and follows the redirect to the client's callback.
async fn sign_in_on_the_login_page(url: &str, user: &str) {
    let http = conformance::no_redirects();
    let page = http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let attribute = |prefix: &str| {
        html.split(prefix)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no {prefix} on the login page: {html}"))
            .replace("&amp;", "&")
    };
    let action = attribute(r#"<form method="post" action=""#);
    let handle = attribute(r#"name="handle" value=""#);
    let signed_in = http
        .post(&action)
        .form(&[("handle", handle.as_str()), ("username", user)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 302);
    let callback = signed_in.headers()["location"].to_str().unwrap().to_owned();
    let landed = http.get(&callback).send().await.unwrap();
    assert_eq!(landed.status(), 200);
    assert!(landed.text().await.unwrap().contains("Signed in"));
}

/// The demo's banner commands work as printed: the user client signs alice in at the demo's
/// login page, and the machine client gets a token with the demo client's credentials; both
/// call get_me on the demo's endpoint.
#[tokio::test]
async fn the_demo_serves_the_clients_its_banner_prints() {
    let mut demo = RunningExample::start("demo", &[], &[("PORT", "0")]);
    let mut banner = Vec::new();
    while !banner
        .last()
        .is_some_and(|line: &String| line.contains("grant_type=client_credentials"))
    {
        banner.push(demo.next_line(DEADLINE).await.expect("the banner"));
    }
    let endpoint = banner
        .iter()
        .find_map(|line| line.trim().strip_prefix("MCP endpoint:"))
        .unwrap()
        .trim()
        .to_owned();
    let command = |example: &str| -> Vec<String> {
        let marker = format!("cargo run --example {example} -- ");
        let line = banner
            .iter()
            .find_map(|line| line.split_once(&marker).map(|(_, args)| args.to_owned()))
            .unwrap_or_else(|| panic!("no {example} command in {banner:?}"));
        line.split_whitespace().map(str::to_owned).collect()
    };

    let machine_args = command("machine_client");
    let machine_args: Vec<&str> = machine_args.iter().map(String::as_str).collect();
    let (lines, status) = RunningExample::start("machine_client", &machine_args, &[])
        .finish(DEADLINE)
        .await;
    assert!(status.success(), "{status}: {lines:?}");
    let me: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(me["client_id"], "demo-client", "{me}");
    assert_eq!(me["audience"], endpoint, "{me}");

    let user_args = command("user_client");
    let user_args: Vec<&str> = user_args.iter().map(String::as_str).collect();
    let mut user = RunningExample::start("user_client", &user_args, &[]);
    let url = loop {
        let line = user.next_line(DEADLINE).await.expect("a URL to open");
        if line.starts_with("http") {
            break line;
        }
    };
    sign_in_on_the_login_page(&url, "alice").await;
    let (lines, status) = user.finish(DEADLINE).await;
    assert!(status.success(), "{status}: {lines:?}");
    let me: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(me["user_id"], "alice", "{me}");
    assert_eq!(me["audience"], endpoint, "{me}");
}

/// The demo's curl walk works as printed, with sessions (initialize, the session id from the
/// `Mcp-Session-Id` header, `notifications/initialized`, then `tools/call`) and stateless (one
/// request): the banner's `export TOKEN=` line and the commands under "call get_me with curl",
/// run by bash, end with get_me's answer for the demo user. (Needs bash, curl and awk, as the
/// printed commands do.)
#[tokio::test]
async fn the_demo_banner_curl_walk_calls_get_me() {
    for flags in [&[][..], &["--stateless"][..]] {
        let mut demo = RunningExample::start("demo", flags, &[("PORT", "0"), ("RUST_LOG", "warn")]);
        let mut banner = Vec::new();
        while !banner
            .last()
            .is_some_and(|line: &String| line.contains("grant_type=client_credentials"))
        {
            banner.push(demo.next_line(DEADLINE).await.expect("the banner"));
        }
        let mut script = vec!["set -euo pipefail".to_owned()];
        script.extend(
            banner
                .iter()
                .filter(|line| line.starts_with("export TOKEN="))
                .cloned(),
        );
        let walk: Vec<&String> = banner
            .iter()
            .skip_while(|line| !line.starts_with("call get_me with curl"))
            .skip(1)
            .take_while(|line| !line.starts_with("MCP Inspector"))
            .filter(|line| line.starts_with("  "))
            .collect();
        assert!(
            walk.iter().any(|line| line.contains("tools/call")),
            "{flags:?}: no curl walk in {banner:?}"
        );
        script.extend(walk.into_iter().cloned());
        let run = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(script.join("\n"))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(DEADLINE, run)
            .await
            .expect("the curl walk within the deadline")
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{flags:?}: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(r#""user_id":"demo-user""#),
            "{flags:?}: get_me did not answer for the demo user: {stdout}"
        );
    }
}

/// One stateless JSON-RPC request to `endpoint` with `token`.
async fn call(endpoint: &str, token: Option<&str>, message: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(endpoint)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", conformance::PROTOCOL_VERSION)
        .json(message);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn tool_call(name: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}})
}

/// H01, H03: the `custom_tools` example, configured as the binary is, protects its own tools with
/// the scopes they declare (403 step-up before the tool runs), and a tool reads its caller.
#[tokio::test]
async fn the_custom_tools_example_protects_its_tools_with_their_scopes() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    let example = ServingExample::start(
        "custom_tools",
        &[("OAUTH_ISSUER", idp.url()), ("MCP_STATELESS", "true")],
        DEADLINE,
    )
    .await;
    let endpoint = format!("http://{}/mcp", example.address);
    let mint = |scopes: &'static [&'static str]| {
        let spec = AccessTokenSpec::user("alice")
            .audience(example.endpoint.as_str())
            .scope(scopes.iter().copied());
        let issuer = idp.issuer().clone();
        async move { issuer.mint(&spec).await.unwrap() }
    };
    let reader = mint(&["notes:read"]).await;
    let refused = call(
        &endpoint,
        Some(&reader),
        &tool_call("save_note", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(refused.status(), 403);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge_params(&challenge).contains(&("scope".to_owned(), "notes:write".to_owned())),
        "{challenge}"
    );
    let writer = mint(&["notes:read", "notes:write"]).await;
    let saved = call(
        &endpoint,
        Some(&writer),
        &tool_call("save_note", json!({"text": "hi"})),
    )
    .await;
    assert_eq!(saved.status(), 200);
    let listed = call(
        &endpoint,
        Some(&reader),
        &tool_call("list_notes", json!({})),
    )
    .await;
    assert_eq!(listed.status(), 200);
    let listed = jsonrpc_body(listed).await;
    assert_eq!(
        listed["result"]["structuredContent"],
        json!({"notes": ["hi"]}),
        "{listed}"
    );
}

/// The `axum_embed` example: the app's own routes answer without a token, `/mcp` beside them
/// has every check and its metadata, and the keys the IdP refused at start are loaded by the
/// background task `Server::serve_app` runs beside the merged app.
#[tokio::test]
async fn the_axum_embed_example_serves_its_routes_and_a_protected_mcp_endpoint() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .start()
        .await
        .unwrap();
    idp.issuer().set_fault(Endpoint::Jwks, Fault::status(503));
    let example = ServingExample::start(
        "axum_embed",
        &[("OAUTH_ISSUER", idp.url()), ("MCP_STATELESS", "true")],
        DEADLINE,
    )
    .await;
    let base = format!("http://{}", example.address);
    let http = reqwest::Client::new();
    let own = http.get(format!("{base}/app")).send().await.unwrap();
    assert_eq!(own.status(), 200, "the app's own route needs no token");
    let ready = || {
        let url = format!("{base}/readyz");
        async move { reqwest::get(url).await.is_ok_and(|r| r.status() == 200) }
    };
    assert!(!ready().await, "no keys yet: the IdP refused them");
    idp.issuer().clear_faults();
    assert!(
        eventually(Duration::from_secs(20), ready).await,
        "the background loader fetched the keys"
    );
    let endpoint = format!("{base}/mcp");
    let challenged = call(&endpoint, None, &tool_call("get_me", json!({}))).await;
    assert_eq!(challenged.status(), 401);
    let metadata: Value = http
        .get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A21: answered in the loopback spelling the client used.
    assert_eq!(metadata["resource"], endpoint.as_str());
    let token = idp
        .issuer()
        .mint(&AccessTokenSpec::user("alice").audience(example.endpoint.as_str()))
        .await
        .unwrap();
    let me = call(&endpoint, Some(&token), &tool_call("get_me", json!({}))).await;
    assert_eq!(me.status(), 200);
    let me = jsonrpc_body(me).await;
    assert_eq!(
        me["result"]["structuredContent"]["user_id"], "alice",
        "{me}"
    );
}
