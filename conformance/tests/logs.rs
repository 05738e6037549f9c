//! D11: no token, client secret or private key ever reaches a log line, at any level, in the
//! server or in the mock IdP, whatever happens to them.
//!
//! Its own test binary: tracing caches per-callsite interest process-wide, so a thread-local
//! capture shares a process badly with tests that log nowhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use conformance::logs::LogCapture;
use conformance::{TestEnv, initialize_request};
use mcp_oauth_server::settings::{
    ClientAuthMethod, ClientSecret, IntrospectionSettings, RemoteVerification,
};
use mock_idp::{AccessTokenSpec, Endpoint, Fault, KeySupply, MockIdp};

/// D11: a valid, an expired and an unscoped token, a session and a bad session id: none of the
/// tokens (nor their signatures) appear in the server's logs at trace level.
///
/// A current-thread runtime runs the server on this thread, so the thread-local subscriber sees
/// every event the server emits.
#[tokio::test(flavor = "current_thread")]
async fn tokens_never_reach_the_logs() {
    let (captured, _guard) = LogCapture::start();
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let valid = env.token().await;
    let expired = env
        .mint(
            AccessTokenSpec::user("a")
                .scope(["mcp:tools"])
                .expired_since(std::time::Duration::from_secs(900)),
        )
        .await;
    let unscoped = env.mint(AccessTokenSpec::user("a")).await;
    let session = env.initialize(&valid).await;
    env.call_tool(&valid, session.as_deref(), "get_me").await;
    for token in [&expired, &unscoped] {
        env.post(Some(token), None, &initialize_request()).await;
    }
    env.post(Some(&valid), Some("bogus-session"), &initialize_request())
        .await;

    let logs = captured.text();
    assert!(
        logs.contains("bearer token refused"),
        "the capture works and refusals are logged: {logs:.400}"
    );
    for token in [&valid, &expired, &unscoped] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(token.as_str()) && !logs.contains(signature),
            "a token reached the logs"
        );
    }
    assert!(!logs.to_ascii_lowercase().contains("authorization: bearer"));
    assert!(
        logs.contains("request_id="),
        "request spans carry the request id"
    );
}

/// D11, P05: introspected tokens and the server's own client secret never reach the logs, also
/// when the introspection endpoint fails.
#[tokio::test(flavor = "current_thread")]
async fn introspected_tokens_and_client_secrets_never_reach_the_logs() {
    let (captured, _guard) = LogCapture::start();
    let secret = "server-secret-that-must-not-be-logged";
    let env = TestEnv::setup()
        .confidential_client("mcp-server", secret)
        .configure(move |s| {
            s.keys.timeout = std::time::Duration::from_secs(1);
            s.issuers.primary_mut().remote =
                Some(RemoteVerification::Introspection(IntrospectionSettings {
                    endpoint: None,
                    client_id: "mcp-server".into(),
                    client_secret: ClientSecret::new(secret),
                    client_auth: ClientAuthMethod::Post,
                    every_token: false,
                    cache_for: std::time::Duration::from_secs(30),
                    audience: mcp_oauth_server::settings::IntrospectedAudience::Required,
                }));
        })
        .start()
        .await;
    let issuer = env.idp.issuer();
    let good = issuer
        .mint_opaque(&AccessTokenSpec::user("alice").scope(["mcp:tools"]))
        .await
        .unwrap();
    let session = env.initialize(&good).await;
    env.call_tool(&good, session.as_deref(), "get_me").await;
    env.post(
        Some("unknown-opaque-token-value"),
        None,
        &initialize_request(),
    )
    .await;
    issuer.set_fault(Endpoint::Introspection, Fault::status(500));
    let failing = issuer
        .mint_opaque(&AccessTokenSpec::user("bob"))
        .await
        .unwrap();
    env.post(Some(&failing), None, &initialize_request()).await;

    let logs = captured.text();
    assert!(
        logs.contains("remote token verification unavailable"),
        "the failure is logged: {logs:.400}"
    );
    for value in [
        good.as_str(),
        failing.as_str(),
        "unknown-opaque-token-value",
        secret,
    ] {
        assert!(!logs.contains(value), "{value} reached the logs");
    }
}

/// An introspection endpoint that fails is warned about once when the outage begins, not on every
/// request that meets it; an answer again ends the outage, and the next failure warns again.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_introspection_endpoint_warns_once_per_outage() {
    let (captured, _guard) = LogCapture::start();
    let env = TestEnv::setup()
        .confidential_client("mcp-server", "server-secret")
        .configure(|s| {
            s.keys.timeout = std::time::Duration::from_secs(1);
            s.issuers.primary_mut().remote =
                Some(RemoteVerification::Introspection(IntrospectionSettings {
                    endpoint: None,
                    client_id: "mcp-server".into(),
                    client_secret: ClientSecret::new("server-secret"),
                    client_auth: ClientAuthMethod::Basic,
                    every_token: false,
                    cache_for: std::time::Duration::from_secs(30),
                    audience: mcp_oauth_server::settings::IntrospectedAudience::Required,
                }));
        })
        .start()
        .await;
    let warnings = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains(" WARN ") && l.contains("remote token verification unavailable"))
            .count()
    };
    let issuer = env.idp.issuer();
    let ask = |n: usize| {
        let env = &env;
        async move {
            let token = format!("an-opaque-token-nobody-issued-{n:03}");
            env.post(Some(&token), None, &initialize_request())
                .await
                .status()
        }
    };
    issuer.set_fault(Endpoint::Introspection, Fault::status(500));
    for n in 0..4 {
        assert_eq!(ask(n).await, 503);
    }
    assert_eq!(warnings(&captured.text()), 1, "{}", captured.text());
    issuer.clear_faults();
    assert_eq!(ask(10).await, 401, "answered: not active");
    assert!(
        captured
            .text()
            .contains("remote token verification answers again")
    );
    issuer.set_fault(Endpoint::Introspection, Fault::status(500));
    for n in 20..23 {
        assert_eq!(ask(n).await, 503);
    }
    let logs = captured.text();
    assert_eq!(warnings(&logs), 2, "a new outage warns again:\n{logs}");
}

/// D11 for the mock IdP: client secrets, issued and minted tokens and private keys never reach
/// its logs, through the token endpoint, minting and key rotation.
#[tokio::test(flavor = "current_thread")]
async fn the_mock_idp_logs_no_secret_token_or_key() {
    let (captured, _guard) = LogCapture::start();
    let idp = MockIdp::builder()
        .keys(KeySupply::default())
        .start()
        .await
        .unwrap();
    let response: serde_json::Value = reqwest::Client::new()
        .post(idp.issuer().token_endpoint())
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = response["access_token"].as_str().unwrap().to_owned();
    let minted = idp
        .issuer()
        .mint(&AccessTokenSpec::user("alice"))
        .await
        .unwrap();
    idp.issuer().rotate(None).await.unwrap();

    let logs = captured.text();
    assert!(
        logs.contains("signing key rotated"),
        "the capture works: {logs}"
    );
    assert!(!logs.contains("demo-secret"));
    assert!(!logs.contains(&token) && !logs.contains(token.split('.').nth(2).unwrap()));
    assert!(!logs.contains(minted.split('.').nth(2).unwrap()));
    assert!(!logs.contains("PRIVATE KEY"));
}

/// A key source that loaded its keys and then cannot refresh them warns once when the failures
/// begin, naming the step (JWKS) and its URL, not on every retry; once it recovers and fails
/// again, that new outage is a warning of its own. Nothing is logged at `error`.
#[tokio::test(flavor = "current_thread")]
async fn a_key_source_that_starts_failing_warns_once_per_outage() {
    let (captured, _guard) = LogCapture::start();
    let env = TestEnv::start().await;
    let key_warnings = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains(" WARN ") && l.contains("mcp_oauth_server::auth::keys"))
            .count()
    };
    // Past the keys' freshness and the refresh cooldown, so each request refetches.
    let refresh = || async {
        env.advance(400);
        let token = env.token().await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            200,
            "stale keys still serve"
        );
        assert_eq!(env.get("/readyz").await.status(), 200);
    };
    env.idp
        .issuer()
        .set_fault(Endpoint::Jwks, Fault::status(500));
    for _ in 0..4 {
        refresh().await;
    }
    let logs = captured.text();
    assert_eq!(
        key_warnings(&logs),
        1,
        "one warning for one outage:\n{logs}"
    );
    let warning = logs
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("mcp_oauth_server::auth::keys"))
        .unwrap();
    assert!(warning.contains("fetching the JWKS failed"), "{warning}");
    assert!(warning.contains("step=\"JWKS\""), "{warning}");
    assert!(
        warning.contains(&format!("url=\"{}", env.idp.url())),
        "{warning}"
    );
    assert!(
        logs.contains("still cannot fetch the JWKS"),
        "retries happened"
    );

    env.idp.issuer().clear_faults();
    refresh().await;
    assert!(captured.text().contains("keys can be fetched again"));
    env.idp
        .issuer()
        .set_fault(Endpoint::Jwks, Fault::status(500));
    refresh().await;
    refresh().await;
    let logs = captured.text();
    assert_eq!(key_warnings(&logs), 2, "a new outage warns again:\n{logs}");
    assert!(!logs.contains(" ERROR "), "{logs}");
}

/// D11 at a gateway signing identity tokens: neither the client's token nor the token signed for
/// the upstream reaches the logs; an upstream that fails is named, with its outcome, in the audit
/// trail.
#[tokio::test(flavor = "current_thread")]
async fn a_gateway_logs_upstream_failures_and_no_token() {
    use conformance::upstream::Upstream;
    use mcp_oauth_server::gateway::{CallerIdentity, IdentitySigner};
    let (captured, _guard) = LogCapture::start();
    let upstream = Upstream::rmcp().await;
    let env = TestEnv::setup()
        .gateway_to(&upstream.url)
        .configure(|settings| {
            if let Some(upstream) = settings.upstream.as_mut() {
                upstream.identity = CallerIdentity::SignedJwt(std::sync::Arc::new(
                    IdentitySigner::generate().unwrap(),
                ));
            }
        })
        .start()
        .await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let message = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    assert_eq!(
        env.post(Some(&token), session.as_deref(), &message)
            .await
            .status(),
        200
    );
    let signed = upstream
        .settled_log()
        .await
        .all()
        .into_iter()
        .filter_map(|seen| seen.headers.get("authorization").cloned())
        .next_back()
        .unwrap();
    drop(upstream);
    let refused = env.post(Some(&token), None, &initialize_request()).await;
    assert_eq!(refused.status(), 503);

    let logs = captured.text();
    let signed = signed.trim_start_matches("Bearer ");
    for secret in [token.as_str(), signed] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !logs.contains(secret) && !logs.contains(signature),
            "a token reached the logs"
        );
    }
    let failure = logs
        .lines()
        .find(|line| line.contains("upstream failed"))
        .unwrap_or_else(|| panic!("no upstream failure in the logs: {logs:.2000}"));
    assert!(failure.contains("mcp_oauth_server::audit"), "{failure}");
    assert!(failure.contains("outcome=\"unreachable\""), "{failure}");
}
