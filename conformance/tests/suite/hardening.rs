//! What a hostile client, a slow client or a bad deployment can do, each over real sockets
//! (checklist R01-R09, H08, G09, G10, A21, D07): session floods, slowloris, scope-less GET and
//! DELETE, request floods, redirects, withdrawn keys, the origin-root resource, loopback
//! spellings and audience case.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use conformance::{TestEnv, challenge_params, eventually, fixtures_dir, initialize_request};
use mcp_oauth_server::settings::{
    Audience, FetchUrl, RateLimit, Resource, ResourceUrl, SessionLimits, Transport,
};
use mock_idp::AccessTokenSpec;
use mock_idp::attack::Forgery;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn sessions(change: impl FnOnce(&mut SessionLimits)) -> Transport {
    let mut limits = SessionLimits::default();
    change(&mut limits);
    Transport::Sessions(limits)
}

fn nonzero(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
}

async fn user(env: &TestEnv, name: &str) -> String {
    env.mint(AccessTokenSpec::user(name).scope(["mcp:tools"]))
        .await
}

/// R02, K04: a principal opening one session over its cap loses its own oldest session (404,
/// and freed), never another principal's.
#[tokio::test]
async fn a_principal_over_its_session_cap_loses_only_its_own_oldest_session() {
    let env = TestEnv::setup()
        .configure(|s| s.transport = sessions(|l| l.max_per_principal = nonzero(2)))
        .start()
        .await;
    let (alice, bob) = (user(&env, "alice").await, user(&env, "bob").await);
    let bobs = env.initialize(&bob).await.unwrap();
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(env.initialize(&alice).await.unwrap());
    }
    let status = async |token: &str, session: &str| {
        env.post(Some(token), Some(session), &list()).await.status()
    };
    assert_eq!(
        status(&alice, &alices[0]).await,
        StatusCode::NOT_FOUND,
        "oldest ended"
    );
    assert_eq!(status(&alice, &alices[1]).await, StatusCode::OK);
    assert_eq!(status(&alice, &alices[2]).await, StatusCode::OK);
    assert_eq!(status(&bob, &bobs).await, StatusCode::OK, "bob untouched");
    assert_eq!(env.app().open_sessions(), 3);
}

/// R03: at the global cap with every principal at an equal share, `initialize` gets 503 with
/// Retry-After and a JSON-RPC error; the open sessions keep working, and a session ended makes
/// room again.
#[tokio::test]
async fn at_the_global_session_cap_with_equal_shares_initialize_gets_503() {
    let env = TestEnv::setup()
        .configure(|s| s.transport = sessions(|l| l.max_total = nonzero(2)))
        .start()
        .await;
    let (alice, bob, carol) = (
        user(&env, "alice").await,
        user(&env, "bob").await,
        user(&env, "carol").await,
    );
    let a = env.initialize(&alice).await.unwrap();
    let b = env.initialize(&bob).await.unwrap();
    let refused = env.post(Some(&carol), None, &initialize_request()).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32000, "{body}");
    for (token, session) in [(&alice, &a), (&bob, &b)] {
        assert_eq!(
            env.post(Some(token), Some(session), &list()).await.status(),
            StatusCode::OK
        );
    }
    let deleted = env
        .http
        .delete(&env.endpoint)
        .headers(env.mcp_headers(Some(&bob), Some(&b)))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert!(env.initialize(&carol).await.is_some(), "room again");
}

/// R03: a crowd of principals holding every session at the global cap cannot lock a newcomer
/// out: the largest holder loses its longest-idle session (404 from then on), its sessions in
/// use and everyone else's keep working.
#[tokio::test]
async fn a_crowd_at_the_global_session_cap_cannot_lock_a_newcomer_out() {
    let env = TestEnv::setup()
        .configure(|s| {
            s.transport = sessions(|l| {
                l.max_total = nonzero(6);
                l.max_per_principal = nonzero(3);
            });
        })
        .start()
        .await;
    let crowd = [user(&env, "crowd-1").await, user(&env, "crowd-2").await];
    let mut held = Vec::new();
    for token in &crowd {
        for _ in 0..3 {
            held.push((token.clone(), env.initialize(token).await.unwrap()));
        }
    }
    assert_eq!(env.app().open_sessions(), 6);
    // Every session but crowd-1's second is used again: that one is the longest idle.
    for (token, session) in held.iter().filter(|(_, s)| *s != held[1].1) {
        assert_eq!(
            env.post(Some(token), Some(session), &list()).await.status(),
            StatusCode::OK
        );
    }
    let newcomer = user(&env, "newcomer").await;
    let mine = env
        .initialize(&newcomer)
        .await
        .expect("a newcomer at the cap");
    assert_eq!(
        env.post(Some(&newcomer), Some(&mine), &list())
            .await
            .status(),
        StatusCode::OK
    );
    let (token, ended) = &held[1];
    let gone = eventually(Duration::from_secs(10), || async {
        env.post(Some(token), Some(ended), &list()).await.status() == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        gone,
        "the largest holder's longest-idle session still works"
    );
    for (token, session) in held.iter().filter(|(_, s)| s != ended) {
        assert_eq!(
            env.post(Some(token), Some(session), &list()).await.status(),
            StatusCode::OK,
            "a session in use was ended"
        );
    }
    assert_eq!(env.app().open_sessions(), 6);
}

/// R04: a session idle past its limit ends, and is freed (no longer counted).
#[tokio::test]
async fn an_idle_session_ends_and_is_freed() {
    let env = TestEnv::setup()
        .configure(|s| s.transport = sessions(|l| l.idle = Duration::from_secs(1)))
        .start()
        .await;
    let alice = user(&env, "alice").await;
    let session = env.initialize(&alice).await.unwrap();
    assert_eq!(env.app().open_sessions(), 1);
    // Polled without touching the session: any request to it would keep it alive.
    let freed = eventually(Duration::from_secs(10), || async {
        env.app().open_sessions() == 0
    })
    .await;
    assert!(freed, "the idle session was not ended");
    assert_eq!(
        env.post(Some(&alice), Some(&session), &list())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// R05: a client that never finishes its request headers is disconnected by the header-read
/// timeout, and so is an idle keep-alive connection; the server keeps serving.
#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let env = TestEnv::setup()
        .configure(|s| s.limits.header_read_timeout = Duration::from_secs(1))
        .start()
        .await;
    let addr = env.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(10)).await,
        "half a request is still open"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut idle, Duration::from_secs(10)).await,
        "an idle keep-alive connection is still open"
    );
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// An HTTP/2 cleartext connection to the server made by `builder`: a sender ready for a request,
/// and the task driving the connection (it answers PINGs; it ends when the server closes).
async fn h2c(
    env: &TestEnv,
    builder: &h2::client::Builder,
) -> (
    h2::client::SendRequest<&'static [u8]>,
    tokio::task::JoinHandle<Result<(), h2::Error>>,
) {
    let socket = TcpStream::connect(env.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (sender, connection) = builder.handshake(socket).await.unwrap();
    let connection = tokio::spawn(connection);
    (sender.ready().await.unwrap(), connection)
}

fn healthz(env: &TestEnv) -> axum::http::Request<()> {
    axum::http::Request::get(format!("{}/healthz", env.base))
        .body(())
        .unwrap()
}

/// Reads until the peer closes (true) or `deadline` passes (false).
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    let mut buffer = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// R05, R06: HTTP/2 cleartext connections that send their preface and settings, then only answer
/// PINGs, and a connection that sends nothing at all, are closed once idle for the header-read
/// timeout, so a client holding every connection slot this way cannot keep others out.
#[tokio::test]
async fn idle_http2_connections_at_the_cap_are_closed() {
    const CAP: usize = 5;
    let env = TestEnv::setup()
        .configure(|s| {
            s.limits.max_connections = nonzero(CAP);
            s.limits.header_read_timeout = Duration::from_secs(1);
        })
        .no_wait()
        .start()
        .await;
    assert!(eventually(Duration::from_secs(10), || async { env.app().is_ready() }).await);
    let addr = env.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::new();
    for _ in 0..CAP - 1 {
        let socket = TcpStream::connect(&addr).await.unwrap();
        // The handshake sends the preface and SETTINGS; the connection task answers PINGs.
        let (sender, connection) = h2::client::handshake(socket).await.unwrap();
        idle.push((sender, tokio::spawn(connection)));
    }
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(30)).await,
        "a connection that sent nothing is still open"
    );
    for (_sender, connection) in idle {
        let ended = tokio::time::timeout(Duration::from_secs(30), connection).await;
        assert!(ended.is_ok(), "an idle HTTP/2 connection is still open");
    }
    let healthz = reqwest::Client::new()
        .get(format!("{}/healthz", env.base))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(healthz.status(), StatusCode::OK);
}

/// R05: a client that grants no flow-control window keeps a produced response unsent; that
/// stream must not count as open forever, or one request would keep a connection slot.
#[tokio::test]
async fn an_http2_peer_granting_no_window_cannot_hold_its_connection() {
    let env = TestEnv::setup()
        .configure(|s| s.limits.header_read_timeout = Duration::from_secs(1))
        .start()
        .await;
    let (mut sender, connection) =
        h2c(&env, h2::client::Builder::new().initial_window_size(0)).await;
    let (response, _) = sender.send_request(healthz(&env), true).unwrap();
    // The headers arrive; the body never can. The response is held, unread.
    let _held = response.await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), connection).await;
    assert!(
        ended.is_ok(),
        "a connection with an unsendable body is still open"
    );
}

/// An HTTP/2 connection with a stream open is not idle: a request over h2c is served, and the
/// connection stays usable for the next one.
#[tokio::test]
async fn an_http2_connection_in_use_is_served() {
    let env = TestEnv::setup()
        .configure(|s| s.limits.header_read_timeout = Duration::from_secs(1))
        .start()
        .await;
    let (mut sender, _connection) = h2c(&env, &h2::client::Builder::new()).await;
    for _ in 0..2 {
        let (response, _) = sender.send_request(healthz(&env), true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        sender = sender.ready().await.unwrap();
    }
}

/// R06: the connection cap holds (a third client waits until a slot frees), and a request that
/// does not finish in time gets 408.
#[tokio::test]
async fn connections_are_capped_and_slow_requests_time_out() {
    let env = TestEnv::setup()
        .configure(|s| {
            s.limits.max_connections = nonzero(2);
            s.limits.header_read_timeout = Duration::from_secs(30);
            s.limits.request_timeout = Duration::from_secs(1);
        })
        // Readiness is awaited without HTTP: a pooled connection of the harness would hold a slot.
        .no_wait()
        .start()
        .await;
    assert!(eventually(Duration::from_secs(10), || async { env.app().is_ready() }).await);
    let addr = env.base.trim_start_matches("http://").to_owned();
    // A fresh client, so no pooled connection of the harness holds a slot.
    let client = reqwest::Client::new();
    let healthz = format!("{}/healthz", env.base);
    let first = TcpStream::connect(&addr).await.unwrap();
    let mut second = TcpStream::connect(&addr).await.unwrap();
    let waiting = client
        .get(&healthz)
        .timeout(Duration::from_millis(800))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a third connection was served: {waiting:?}"
    );
    drop(first);
    let served = eventually(Duration::from_secs(10), || async {
        client
            .get(&healthz)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(served, "a freed slot was not reused");

    let token = env.token().await;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: 100\r\n\r\n{{\"jsonrpc\":"
    );
    second.write_all(request.as_bytes()).await.unwrap();
    let mut response = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), second.read(&mut response))
        .await
        .expect("an answer within the deadline")
        .unwrap();
    let head = String::from_utf8_lossy(&response[..read]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

/// H08: the scopes every request needs are enforced on the GET stream and on DELETE too, so a
/// token without them cannot read or end even its owner's session.
#[tokio::test]
async fn scopes_are_enforced_on_get_and_delete() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let scoped = user(&env, "alice").await;
    let unscoped = env.mint(AccessTokenSpec::user("alice")).await;
    let session = env.initialize(&scoped).await.unwrap();
    let get = env
        .http
        .get(&env.endpoint)
        .headers(env.mcp_headers(Some(&unscoped), Some(&session)))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let delete = env
        .http
        .delete(&env.endpoint)
        .headers(env.mcp_headers(Some(&unscoped), Some(&session)))
        .send()
        .await
        .unwrap();
    for (what, response) in [("GET", get), ("DELETE", delete)] {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge_params(challenge).contains(&("error".into(), "insufficient_scope".into())),
            "{what}: {challenge}"
        );
    }
    assert_eq!(
        env.post(Some(&scoped), Some(&session), &list())
            .await
            .status(),
        StatusCode::OK,
        "the session survived"
    );
}

/// R01: over its budget a principal gets 429 with Retry-After and a JSON-RPC error; other
/// principals are unaffected; requests refused before authentication spend no one's budget.
#[tokio::test]
async fn a_principal_over_its_rate_limit_gets_429_and_no_one_else_does() {
    let env = TestEnv::setup()
        .configure(|s| {
            s.transport = Transport::Stateless;
            s.rate_limit = RateLimit {
                per_minute: NonZeroU32::new(5),
                ..RateLimit::default()
            };
        })
        .start()
        .await;
    let (alice, bob) = (user(&env, "alice").await, user(&env, "bob").await);
    let forged_alice = env
        .idp
        .issuer()
        .forge(&Forgery::unpublished_key(AccessTokenSpec::user("alice")))
        .await
        .unwrap();
    for _ in 0..20 {
        assert_eq!(
            env.post(Some(&forged_alice), None, &list()).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for n in 0..5 {
        assert_eq!(
            env.post(Some(&alice), None, &list()).await.status(),
            StatusCode::OK,
            "request {n} within the budget (forged tokens spent none of it)"
        );
    }
    let limited = env.post(Some(&alice), None, &list()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32000, "{body}");
    assert_eq!(
        env.post(Some(&bob), None, &list()).await.status(),
        StatusCode::OK,
        "bob has his own budget"
    );
}

/// A JWKS served by a scripted peer (the fixture key the mock IdP signs with first).
async fn scripted_jwks(keys: Value, max_age: u32) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "keys": keys }))
                .insert_header("cache-control", format!("max-age={max_age}").as_str()),
        )
        .mount(&server)
        .await;
    server
}

fn fixture_jwk(stem: &str) -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join(format!("keys/{stem}.jwk.json")));
    serde_json::from_str(&text.unwrap()).unwrap()
}

/// G09, D12: a well-formed JWKS without the old key (here: with no key at all) replaces the
/// cached set once it expires: the old key's tokens are refused with a clear reason, readiness
/// drops; the key's return is picked up again. A document that is no JWKS is a failure and
/// keeps the last good keys.
#[tokio::test]
async fn a_jwks_that_withdraws_every_key_is_obeyed_not_ignored() {
    let server = scripted_jwks(json!([fixture_jwk("rsa-1")]), 60).await;
    let jwks = format!("{}/jwks", server.uri());
    let env = TestEnv::setup()
        .configure(move |s| {
            s.issuers.primary_mut().authorization_server.jwks_uri =
                Some(FetchUrl::parse(&jwks).unwrap())
        })
        .start()
        .await;
    let token = env
        .mint(AccessTokenSpec::user("alice").expires_in(Duration::from_secs(86_400)))
        .await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"not": "a jwks"})))
        .mount(&server)
        .await;
    env.advance(61);
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::OK,
        "not a JWKS: a failure, the last good keys serve"
    );

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"keys": []})))
        .mount(&server)
        .await;
    env.advance(61);
    let refused = env.post(Some(&token), None, &initialize_request()).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("publishes no usable signing key"),
        "{challenge}"
    );
    let ready = env.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    let too_many: Vec<Value> = (0..65).map(|_| fixture_jwk("rsa-1")).collect();
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "keys": too_many })))
        .mount(&server)
        .await;
    env.advance(61);
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "65 keys: none is held"
    );

    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"keys": [fixture_jwk("rsa-1")]})),
        )
        .mount(&server)
        .await;
    env.advance(61);
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// G10, T07: a JWKS fetch follows a redirect only to https or loopback http, at most three hops;
/// a redirect to plain http elsewhere is never followed (nothing is loaded, tokens get 503).
#[tokio::test]
async fn jwks_redirects_are_held_to_the_https_or_loopback_rule() {
    let server = MockServer::start().await;
    let redirect = |to: String| ResponseTemplate::new(302).insert_header("location", to.as_str());
    Mock::given(method("GET"))
        .and(path("/to-plain-http"))
        .respond_with(redirect("http://jwks.example.com/jwks".into()))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/to-loopback"))
        .respond_with(redirect(format!("{}/jwks", server.uri())))
        .mount(&server)
        .await;
    for hop in 0..4 {
        Mock::given(method("GET"))
            .and(path(format!("/loop{hop}")))
            .respond_with(redirect(format!("{}/loop{}", server.uri(), hop + 1)))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/jwks"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"keys": [fixture_jwk("rsa-1")]})),
        )
        .mount(&server)
        .await;
    let start = |route: &str| {
        let jwks = format!("{}{route}", server.uri());
        TestEnv::setup()
            .configure(move |s| {
                s.issuers.primary_mut().authorization_server.jwks_uri =
                    Some(FetchUrl::parse(&jwks).unwrap())
            })
            .no_wait()
            .start()
    };
    for refused in ["/to-plain-http", "/loop0"] {
        let env = start(refused).await;
        let token = env.token().await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "{refused}: keys must not load"
        );
        assert!(!env.app().is_ready(), "{refused}");
    }
    let env = start("/to-loopback").await;
    env.wait_until_ready(Duration::from_secs(10)).await;
    let token = env.token().await;
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// G10, G02: in proxy mode the forwarding route serves only metadata that passed the issuer
/// check: a metadata URL whose document names another issuer gets 502, never the document.
#[tokio::test]
async fn proxied_metadata_naming_another_issuer_is_not_served() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/metadata"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}),
        ))
        .mount(&server)
        .await;
    let metadata = format!("{}/metadata", server.uri());
    let env = TestEnv::setup()
        .configure_with_idp(move |s, idp| {
            s.as_metadata = mcp_oauth_server::settings::AsMetadataMode::Proxy;
            s.issuers.primary_mut().authorization_server.jwks_uri =
                Some(FetchUrl::parse(&idp.issuer().jwks_uri()).unwrap());
            s.issuers.primary_mut().authorization_server.metadata_url =
                Some(FetchUrl::parse(&metadata).unwrap());
        })
        .start()
        .await;
    let response = env.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(!response.text().await.unwrap().contains("evil.example"));
}

/// R08: a resource URL at the origin root is served there, with its metadata at the root
/// well-known path; nothing panics.
#[tokio::test]
async fn a_resource_at_the_origin_root_is_served() {
    let env = TestEnv::setup()
        .configure(|s| {
            let url = ResourceUrl::parse(&format!("http://127.0.0.1:{}", s.listen.port())).unwrap();
            *s.validation_mut() = s.validation().clone().with_audiences(url.audience(), []);
            s.resource = Resource::new(url);
        })
        .start()
        .await;
    assert_eq!(env.endpoint, format!("{}/", env.base));
    let token = env
        .mint(AccessTokenSpec::user("alice").audience(env.endpoint.clone()))
        .await;
    assert!(env.initialize(&token).await.is_some());
    let challenge = env.post(None, None, &initialize_request()).await;
    let header = challenge.headers()["www-authenticate"].to_str().unwrap();
    let metadata_url = format!("{}/.well-known/oauth-protected-resource", env.base);
    assert!(header.contains(&metadata_url), "{header}");
    let doc: Value = env
        .http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], env.endpoint);
}

/// A21, A04: a derived local resource answers to each loopback spelling: the metadata and the
/// challenge name the URL the client used, and a token for either spelling is accepted. A
/// configured resource URL is never replaced by a request's spelling.
#[tokio::test]
async fn a_derived_local_resource_follows_the_loopback_spelling_the_client_used() {
    let env = TestEnv::start().await;
    let port = env.settings.listen.port();
    let via_ip = format!("http://127.0.0.1:{port}/mcp");
    let via_name = format!("http://localhost:{port}/mcp");
    let prm = |host: String| {
        let request = env
            .http
            .get(format!(
                "{}/.well-known/oauth-protected-resource/mcp",
                env.base
            ))
            .header("host", host);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(prm(format!("127.0.0.1:{port}")).await["resource"], via_ip);
    assert_eq!(prm(format!("localhost:{port}")).await["resource"], via_name);
    assert_eq!(prm(format!("LOCALHOST:{port}")).await["resource"], via_name);
    for audience in [&via_ip, &via_name] {
        let token = env
            .mint(AccessTokenSpec::user("alice").audience(audience.as_str()))
            .await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::OK,
            "{audience}"
        );
    }
    let foreign = env
        .mint(AccessTokenSpec::user("alice").audience(format!("http://127.0.0.2:{port}/mcp")))
        .await;
    assert_eq!(
        env.initialize_status(Some(&foreign)).await,
        StatusCode::UNAUTHORIZED
    );

    let configured = TestEnv::setup()
        .configure(|s| {
            let url = ResourceUrl::parse("https://mcp.example.com/mcp").unwrap();
            *s.validation_mut() = s.validation().clone().with_audiences(url.audience(), []);
            s.resource = Resource::new(url);
        })
        .start()
        .await;
    let doc: Value = configured
        .get("/.well-known/oauth-protected-resource/mcp")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
}

/// D07, J34: http(s) audiences fold only the case of scheme and host; an `api://` audience is
/// compared byte for byte.
#[tokio::test]
async fn only_the_scheme_and_host_of_http_audiences_fold_case() {
    let env = TestEnv::setup()
        .configure(|s| {
            let resource = s.resource.url.audience();
            *s.validation_mut() = s
                .validation()
                .clone()
                .with_audiences(Audience::new("api://Orders-API").unwrap(), [resource]);
        })
        .start()
        .await;
    let port = env.settings.listen.port();
    for (audience, expected) in [
        ("api://Orders-API".to_owned(), StatusCode::OK),
        ("api://orders-api".to_owned(), StatusCode::UNAUTHORIZED),
        (format!("HTTP://LOCALHOST:{port}/mcp"), StatusCode::OK),
        (
            format!("http://localhost:{port}/MCP"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            format!("http://alice@localhost:{port}/mcp"),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let token = env
            .mint(AccessTokenSpec::user("alice").audience(audience.as_str()))
            .await;
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            expected,
            "{audience}"
        );
    }
}
