//! Secrets, tokens and private keys never reach a log line, even at `trace` level.
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

use mock_idp::AccessTokenSpec;

use mock_idp::{KeySupply, MockIdp};

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

/// A current-thread runtime runs the server on this thread, so the thread-local subscriber
/// sees every event the IdP emits.
#[tokio::test(flavor = "current_thread")]
async fn no_secret_token_or_key_reaches_the_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

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

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("signing key rotated"),
        "the capture works: {logs}"
    );
    assert!(!logs.contains("demo-secret"));
    assert!(!logs.contains(&token) && !logs.contains(token.split('.').nth(2).unwrap()));
    assert!(!logs.contains(minted.split('.').nth(2).unwrap()));
    assert!(!logs.contains("PRIVATE KEY"));
}
