//! The fetcher against a scripted peer (wiremock) doing what real authorization servers and the
//! networks between do wrong (checklist G01, D12): an HTML error page with 200, a body that never
//! comes, an oversized JWKS, a right document with the wrong content type. What is not a usable
//! JWKS loads nothing (the server stays unready and refuses tokens with 503, never 200); a valid
//! JWKS is used whatever its content type says.

use std::time::Duration;

use conformance::{TestEnv, fixtures_dir};
use mcp_oauth_server::settings::FetchUrl;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn serving(response: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(response)
        .mount(&server)
        .await;
    server
}

async fn env_with_jwks_at(
    server: &MockServer,
    setup: impl FnOnce(&mut mcp_oauth_server::Settings) + 'static,
) -> TestEnv {
    let jwks = format!("{}/jwks", server.uri());
    TestEnv::setup()
        .configure(move |s| {
            s.issuers.primary_mut().authorization_server.jwks_uri =
                Some(FetchUrl::parse(&jwks).unwrap());
            setup(s);
        })
        .no_wait()
        .start()
        .await
}

fn jwks() -> Value {
    let key: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures_dir().join("keys/rsa-1.jwk.json")).unwrap(),
    )
    .unwrap();
    json!({ "keys": [key] })
}

/// D12, G01: an HTML error page served with 200, a JWKS that never arrives (past the fetch
/// timeout) and one over the size limit all load nothing: tokens get 503, readiness stays false.
#[tokio::test]
async fn what_is_not_a_usable_jwks_loads_nothing() {
    let html = serving(
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/html")
            .set_body_string("<html><body>Service temporarily unavailable</body></html>"),
    )
    .await;
    let slow = serving(
        ResponseTemplate::new(200)
            .set_body_json(jwks())
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let mut big_keys = jwks();
    big_keys["padding"] = json!("x".repeat(8 * 1024));
    let oversized = serving(ResponseTemplate::new(200).set_body_json(big_keys)).await;
    for (what, server, limit) in [
        ("an HTML page", &html, None),
        ("a body that never comes", &slow, Some(("timeout", 1))),
        ("an oversized JWKS", &oversized, Some(("bytes", 4096))),
    ] {
        let env = env_with_jwks_at(server, move |s| match limit {
            Some(("timeout", secs)) => s.keys.timeout = Duration::from_secs(secs),
            Some((_, bytes)) => s.keys.max_bytes = bytes as usize,
            None => {}
        })
        .await;
        let token = env.token().await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what}"
        );
        assert!(!env.app().is_ready(), "{what}");
    }
}

/// D12: a JWKS sent without a length (chunked) is held to the size limit while it is read, not
/// only by its `Content-Length`: an oversized one loads nothing.
#[tokio::test]
async fn an_oversized_jwks_without_a_length_loads_nothing() {
    let mut big_keys = jwks();
    big_keys["padding"] = json!("x".repeat(8 * 1024));
    let document = big_keys.to_string().into_bytes();
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let halves: Vec<Result<Vec<u8>, std::io::Error>> = document
                .chunks(document.len() / 2 + 1)
                .map(|half| Ok(half.to_vec()))
                .collect();
            async move { axum::body::Body::from_stream(futures_util::stream::iter(halves)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks = format!("http://{}/jwks", listener.local_addr().unwrap());
    let peer = tokio::spawn(async move { axum::serve(listener, app).await });
    let chunked = reqwest::get(&jwks).await.unwrap();
    assert!(chunked.content_length().is_none(), "sent without a length");
    drop(chunked);
    let env = TestEnv::setup()
        .configure(move |s| {
            s.issuers.primary_mut().authorization_server.jwks_uri =
                Some(FetchUrl::parse(&jwks).unwrap());
            s.keys.max_bytes = 4096;
        })
        .no_wait()
        .start()
        .await;
    let token = env.token().await;
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(!env.app().is_ready());
    peer.abort();
}

/// G01: a valid JWKS is used whatever content type it is labelled with (`text/plain` here, as
/// misconfigured proxies send): what decides is that it parses as a JWKS.
#[tokio::test]
async fn a_valid_jwks_with_the_wrong_content_type_is_used() {
    let server = serving(
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/plain")
            .set_body_string(jwks().to_string()),
    )
    .await;
    let env = env_with_jwks_at(&server, |_| {}).await;
    env.wait_until_ready(Duration::from_secs(10)).await;
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}
