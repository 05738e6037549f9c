//! D11: no token ever reaches a log line, at any level, whatever happens to it.
//!
//! Its own test binary: tracing caches per-callsite interest process-wide, so a thread-local
//! capture shares a process badly with tests that log nowhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use conformance::{TestEnv, initialize_request};
use mock_idp::AccessTokenSpec;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// D11: a valid, an expired and an unscoped token, a session and a bad session id: none of the
/// tokens (nor their signatures) appear in the logs at trace level.
///
/// A current-thread runtime runs the server on this thread, so the thread-local subscriber sees
/// every event the server emits.
#[tokio::test(flavor = "current_thread")]
async fn tokens_never_reach_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
