//! Gateway mode (`MCP_UPSTREAM_URL`): the same checks in front of MCP servers with no auth of
//! their own, written with other SDKs: rmcp (in-process) and the official TypeScript SDK (a Node
//! process). Each upstream logs every request that reaches it: a refused request must never
//! appear there, and no `Authorization` header ever.

use std::time::Duration;

use conformance::upstream::{RequestLog, Upstream};
use conformance::{Setup, TestEnv, challenge_params, jsonrpc_body};
use futures_util::StreamExt as _;
use mock_idp::AccessTokenSpec;
use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
enum Sdk {
    Rmcp,
    TypeScript,
    Python,
}

/// A test for each upstream: `name::rmcp` always, `name::typescript` where Node and the project's
/// packages are installed, `name::python` where the Python SDK is (both always in CI).
macro_rules! against_each_upstream {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn rmcp() {
                super::$check(super::Sdk::Rmcp).await;
            }

            #[tokio::test]
            #[cfg_attr(
                missing_node_modules,
                ignore = "needs Node 22 and its packages: npm ci --prefix conformance/real-idp"
            )]
            async fn typescript() {
                super::$check(super::Sdk::TypeScript).await;
            }

            #[tokio::test]
            #[cfg_attr(
                missing_python_sdk,
                ignore = "needs the MCP Python SDK: python3 -m venv conformance/python-upstream/.venv && conformance/python-upstream/.venv/bin/pip install -r conformance/python-upstream/requirements.txt"
            )]
            async fn python() {
                super::$check(super::Sdk::Python).await;
            }
        }
    )*};
}

against_each_upstream!(
    no_attack_in_the_corpus_reaches_an_upstream,
    an_upstream_session_belongs_to_the_principal_that_opened_it,
    a_tool_scope_is_enforced_before_the_upstream,
    the_upstream_learns_the_caller_from_the_gateway_alone,
    a_jwt_signed_by_the_gateway_tells_the_upstream_who_calls,
);

async fn upstream(sdk: Sdk) -> Upstream {
    match sdk {
        Sdk::Rmcp => Upstream::rmcp().await,
        Sdk::TypeScript => Upstream::typescript(&conformance::real_idp::node()),
        Sdk::Python => Upstream::python(),
    }
}

/// A gateway to `upstream` where `whoami` needs `profile:read` (`MCP_TOOL_SCOPES`).
fn gateway(upstream: &Upstream) -> Setup {
    TestEnv::setup()
        .gateway_to(&upstream.url)
        .configure(|settings| {
            settings.scopes.require_for_tool("whoami", ["profile:read"]);
        })
}

fn call(name: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": {}}})
}

/// The identity headers `whoami` says it received.
async fn whoami(response: reqwest::Response) -> Value {
    let answer = jsonrpc_body(response).await;
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no whoami answer: {answer}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("whoami answered {text:?}: {e}"))
}

fn posts(log: &RequestLog) -> usize {
    log.all()
        .iter()
        .filter(|seen| seen.method == "POST")
        .count()
}

fn assert_no_authorization_ever(log: &RequestLog) {
    assert!(log.count() > 0, "the upstream saw nothing at all");
    for seen in log.all() {
        assert!(
            !seen.headers.contains_key("authorization"),
            "the client's token reached the upstream: {seen:?}"
        );
    }
}

/// J01-J50 through the gateway: every attack refused as in front of our own tools, none reaching
/// the upstream; the token never forwarded.
async fn no_attack_in_the_corpus_reaches_an_upstream(sdk: Sdk) {
    let upstream = upstream(sdk).await;
    let setup = || TestEnv::setup().gateway_to(&upstream.url);
    crate::attacks::no_attack_is_accepted_by(&setup, "whoami", Some(&upstream)).await;
    assert_no_authorization_ever(upstream.settled_log().await);
}

/// K03/K04 at the gateway: the upstream's session belongs to the principal that opened it; another
/// principal's request with its id is 404 and never reaches the upstream.
async fn an_upstream_session_belongs_to_the_principal_that_opened_it(sdk: Sdk) {
    let upstream = upstream(sdk).await;
    let env = gateway(&upstream).start().await;
    let alice = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "profile:read"]))
        .await;
    let mallory = env
        .mint(AccessTokenSpec::user("mallory").scope(["mcp:tools", "profile:read"]))
        .await;
    let session = env.initialize(&alice).await;
    let session = session.unwrap_or_else(|| panic!("{sdk:?}: the upstream opened no session"));
    let before = posts(upstream.settled_log().await);
    let stolen = env
        .post(Some(&mallory), Some(&session), &call("whoami"))
        .await;
    assert_eq!(stolen.status(), 404, "{sdk:?}");
    assert_eq!(
        posts(upstream.settled_log().await),
        before,
        "{sdk:?}: it reached the upstream"
    );
    let own = env
        .post(Some(&alice), Some(&session), &call("whoami"))
        .await;
    assert_eq!(own.status(), 200, "{sdk:?}");
    assert_eq!(whoami(own).await["x-mcp-subject"], "alice", "{sdk:?}");
    // Ended by its owner: a DELETE goes through, and the id is then refused here.
    let ended = env
        .http
        .delete(&env.endpoint)
        .headers(env.mcp_headers(Some(&alice), Some(&session)))
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{sdk:?}: {}", ended.status());
    let after = env
        .post(Some(&alice), Some(&session), &call("whoami"))
        .await;
    assert_eq!(after.status(), 404, "{sdk:?}");
    assert_no_authorization_ever(upstream.settled_log().await);
}

/// H02/H05 at the gateway: `MCP_TOOL_SCOPES` decides from the `tools/call` name; a caller
/// without the tool's scope gets the 403 step-up and the upstream never sees the call.
async fn a_tool_scope_is_enforced_before_the_upstream(sdk: Sdk) {
    let upstream = upstream(sdk).await;
    let env = gateway(&upstream).start().await;
    let basic = env.token().await;
    let session = env.initialize(&basic).await;
    let before = posts(upstream.settled_log().await);
    let refused = env
        .post(Some(&basic), session.as_deref(), &call("whoami"))
        .await;
    assert_eq!(refused.status(), 403, "{sdk:?}");
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    let params = challenge_params(challenge);
    assert!(
        params
            .iter()
            .any(|(n, v)| n == "error" && v == "insufficient_scope"),
        "{challenge}"
    );
    assert!(
        params
            .iter()
            .any(|(n, v)| n == "scope" && v.split(' ').any(|s| s == "profile:read")),
        "{challenge}"
    );
    assert_eq!(
        posts(upstream.settled_log().await),
        before,
        "{sdk:?}: it reached the upstream"
    );
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let listed = env.post(Some(&basic), session.as_deref(), &list).await;
    assert_eq!(listed.status(), 200, "{sdk:?}: other methods pass");
    assert_eq!(posts(upstream.settled_log().await), before + 1);
}

/// The caller's identity reaches the upstream from the verified token alone: identity headers a
/// client sends are dropped, and claims no header can carry arrive percent-encoded.
async fn the_upstream_learns_the_caller_from_the_gateway_alone(sdk: Sdk) {
    let upstream = upstream(sdk).await;
    let env = gateway(&upstream).start().await;
    let token = env
        .mint(
            AccessTokenSpec::user("zoë\nroot")
                .client_id("agent-1")
                .scope(["mcp:tools", "profile:read"]),
        )
        .await;
    let session = env.initialize(&token).await;
    let forged = [
        ("x-mcp-subject", "root"),
        ("x-mcp-scopes", "admin"),
        ("x-mcp-issuer", "https://evil.example"),
    ];
    let response = env
        .post_with(Some(&token), session.as_deref(), &forged, &call("whoami"))
        .await;
    assert_eq!(response.status(), 200, "{sdk:?}");
    let identity = whoami(response).await;
    assert_eq!(identity["x-mcp-subject"], "zo%C3%AB%0Aroot", "{sdk:?}");
    assert_eq!(identity["x-mcp-issuer"], env.idp.url(), "{sdk:?}");
    assert_eq!(identity["x-mcp-client-id"], "agent-1", "{sdk:?}");
    assert_eq!(
        identity["x-mcp-scopes"], "mcp:tools profile:read",
        "{sdk:?}"
    );
    let last = upstream
        .settled_log()
        .await
        .all()
        .into_iter()
        .rfind(|seen| seen.method == "POST")
        .unwrap();
    assert_eq!(last.headers["x-mcp-subject"], "zo%C3%AB%0Aroot");
    assert_no_authorization_ever(upstream.settled_log().await);
}

/// 2026-07-28 headers that disagree with the body are refused at the gateway (400), so an
/// upstream routing by `Mcp-Method`/`Mcp-Name` cannot be told another tool than the one whose
/// scopes were checked.
#[tokio::test]
async fn mcp_headers_that_disagree_with_the_body_never_reach_the_upstream() {
    let upstream = Upstream::rmcp().await;
    let env = gateway(&upstream).start().await;
    let token = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "profile:read"]))
        .await;
    let session = env.initialize(&token).await;
    let before = posts(upstream.settled_log().await);
    for headers in [
        &[("mcp-method", "tools/list")][..],
        &[
            ("mcp-method", "tools/call"),
            ("mcp-name", "delete_everything"),
        ][..],
    ] {
        let response = env
            .post_with(Some(&token), session.as_deref(), headers, &call("whoami"))
            .await;
        assert_eq!(response.status(), 400, "{headers:?}");
    }
    assert_eq!(posts(upstream.settled_log().await), before);
    let agreeing = [("mcp-method", "tools/call"), ("mcp-name", "whoami")];
    let response = env
        .post_with(Some(&token), session.as_deref(), &agreeing, &call("whoami"))
        .await;
    assert_eq!(response.status(), 200);
}

/// An unreachable upstream: 503 with `Retry-After` and a JSON-RPC error body, never a hang, and
/// `/readyz` says so.
#[tokio::test]
async fn an_unreachable_upstream_is_a_503_and_not_ready() {
    let gone = Upstream::rmcp().await;
    let url = gone.url.clone();
    drop(gone);
    let env = TestEnv::setup().gateway_to(&url).no_wait().start().await;
    let ready =
        conformance::eventually(Duration::from_secs(10), || async { env.app().is_ready() }).await;
    assert!(ready, "the keys load");
    let token = env.token().await;
    let response = env
        .post(Some(&token), None, &conformance::initialize_request())
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32603, "{body}");
    assert_eq!(env.get("/readyz").await.status(), 503);
}

/// Progress notifications stream through as the upstream sends them: the first arrives while
/// the upstream still holds back the others (a buffering gateway would deliver none until the
/// last).
#[tokio::test]
async fn progress_streams_through_as_it_is_sent() {
    let upstream = Upstream::rmcp().await;
    let env = TestEnv::setup().gateway_to(&upstream.url).start().await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let message = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "stream_progress", "arguments": {}, "_meta": {"progressToken": "p"}}});
    let response = env.post(Some(&token), session.as_deref(), &message).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut seen = String::new();
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("notifications/progress") {
            let chunk = body.next().await.expect("the stream ended").unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(
        first.is_ok(),
        "the first progress event did not arrive while the upstream held back the rest: {seen}"
    );
    assert!(
        !seen.contains("\"result\""),
        "the answer came first: {seen}"
    );
    upstream.release_progress.notify_one();
    while let Some(chunk) = body.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if seen.contains("\"result\"") {
            break;
        }
    }
    assert_eq!(seen.matches("notifications/progress").count(), 3, "{seen}");
    assert!(seen.contains("done"), "{seen}");
}

/// What an upstream in another language could read otherwise than the gateway's checks did is
/// refused before it: a tool name given twice or in another case (Go's `encoding/json` matches
/// names case-insensitively and keeps the last), a `tools/call` without a name, an `Mcp-*`
/// header given twice (a session id the caller owns first, another's second), a method
/// Streamable HTTP does not have.
#[tokio::test]
async fn a_request_an_upstream_could_read_otherwise_never_reaches_it() {
    let upstream = Upstream::rmcp().await;
    let env = gateway(&upstream).start().await;
    let token = env.token().await;
    let session = env.initialize(&token).await.unwrap();
    let before = posts(upstream.settled_log().await);
    for body in [
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "tools_list_is_free", "Name": "whoami"}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/list", "Method": "tools/call", "params": {"name": "whoami"}}),
    ] {
        let response = env.post(Some(&token), Some(&session), &body).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    let other = env
        .mint(AccessTokenSpec::user("bob").scope(["mcp:tools"]))
        .await;
    let bobs = env.initialize(&other).await.unwrap();
    let before = before + 2;
    let twice = env
        .http
        .post(&env.endpoint)
        .headers(env.mcp_headers(Some(&token), Some(&session)))
        .header("mcp-session-id", &bobs)
        .json(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    let put = env
        .http
        .put(&env.endpoint)
        .headers(env.mcp_headers(Some(&token), Some(&session)))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    let log = upstream.settled_log().await;
    assert_eq!(posts(log), before, "a refused request reached the upstream");
    assert!(log.all().iter().all(|seen| seen.method != "PUT"));
}

/// An upstream that misbehaves: each failure is a JSON-RPC error with the status that says
/// what happened, never a hang and never the upstream's own answer passed on as if it were MCP.
#[tokio::test]
async fn a_misbehaving_upstream_is_a_502_or_504() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let cases = [
        (
            "not MCP",
            ResponseTemplate::new(200).set_body_raw("<html>hello</html>", "text/html"),
            502,
        ),
        (
            "a redirect",
            ResponseTemplate::new(307).insert_header("location", "https://elsewhere.example/mcp"),
            502,
        ),
        (
            "credentials of its own",
            ResponseTemplate::new(401).insert_header("www-authenticate", "Bearer realm=\"x\""),
            502,
        ),
        (
            "longer than the bound",
            ResponseTemplate::new(200).set_body_raw("x".repeat(1_000), "application/json"),
            502,
        ),
        (
            "no answer in time",
            ResponseTemplate::new(200).set_delay(Duration::from_secs(30)),
            504,
        ),
    ];
    for (what, answer, status) in cases {
        let upstream = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(answer)
            .mount(&upstream)
            .await;
        let env = TestEnv::setup()
            .gateway_to(&format!("{}/mcp", upstream.uri()))
            .configure(|settings| {
                if let Some(upstream) = settings.upstream.as_mut() {
                    upstream.timeout = Duration::from_secs(1);
                    upstream.max_response_bytes = 100;
                }
            })
            .no_wait()
            .start()
            .await;
        let token = env.token().await;
        let response = env
            .post(Some(&token), None, &conformance::initialize_request())
            .await;
        assert_eq!(response.status(), status, "{what}");
        assert!(
            response.headers().get("location").is_none()
                && response.headers().get("www-authenticate").is_none(),
            "{what}: the upstream's headers were passed on"
        );
        if status == 504 {
            assert_eq!(response.headers()["retry-after"], "5", "{what}");
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], -32603, "{what}: {body}");
    }
}

/// `/readyz` needs no token, so it must not relay one request to the upstream per request: one
/// probe stands for two seconds, and concurrent probes wait for one.
#[tokio::test]
async fn readiness_probes_of_the_upstream_are_bounded() {
    let upstream = Upstream::rmcp().await;
    let env = TestEnv::setup().gateway_to(&upstream.url).start().await;
    let gets = || {
        upstream
            .log
            .all()
            .iter()
            .filter(|seen| seen.method == "GET")
            .count()
    };
    let before = gets();
    let started = std::time::Instant::now();
    let probes = (0..50).map(|_| env.get("/readyz"));
    for answer in futures_util::future::join_all(probes).await {
        assert_eq!(answer.status(), 200);
    }
    // One probe per two seconds that passed (and one that was already standing at the start).
    let windows = started.elapsed().as_secs() / 2 + 2;
    let sent = gets() - before;
    assert!(
        sent as u64 <= windows,
        "{sent} probes for 50 readiness requests"
    );
}

/// `MCP_UPSTREAM_IDENTITY=jwt`: the upstream gets, instead of the identity headers, a one-minute
/// ES256 token the gateway signed for it (never the client's), which it verifies with any JWT
/// library against `/.well-known/jwks.json`: here jsonwebtoken for the rmcp upstream, `jose`
/// inside the TypeScript one.
async fn a_jwt_signed_by_the_gateway_tells_the_upstream_who_calls(sdk: Sdk) {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
    use mcp_oauth_server::gateway::{CallerIdentity, IdentitySigner};
    let signer = std::sync::Arc::new(IdentitySigner::generate().unwrap());
    let upstream = upstream(sdk).await;
    let identity = CallerIdentity::SignedJwt(std::sync::Arc::clone(&signer));
    let env = gateway(&upstream)
        .configure(move |settings| {
            if let Some(upstream) = settings.upstream.as_mut() {
                upstream.identity = identity;
            }
        })
        .start()
        .await;
    let issuer = env.resource().trim_end_matches("/mcp").to_owned();
    let jwks_url = format!("{}/.well-known/jwks.json", env.base);
    let jwks: JwkSet = env
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    if let Sdk::TypeScript = sdk {
        upstream.trust(&issuer, &upstream.url, &jwks_url).await;
    }
    let token = env
        .mint(
            AccessTokenSpec::user("alice")
                .client_id("agent-1")
                .scope(["mcp:tools", "profile:read"]),
        )
        .await;
    let session = env.initialize(&token).await;
    let response = env
        .post(Some(&token), session.as_deref(), &call("whoami"))
        .await;
    assert_eq!(response.status(), 200, "{sdk:?}");
    let answer = whoami(response).await;
    assert!(
        answer.get("x-mcp-subject").is_none(),
        "{sdk:?}: headers sent too: {answer}"
    );
    if let Sdk::TypeScript = sdk {
        assert_eq!(answer["verified"]["sub"], "alice", "{sdk:?}: {answer}");
        assert_eq!(answer["verified"]["scope"], "mcp:tools profile:read");
    }
    let log = upstream.settled_log().await;
    let last = log
        .all()
        .into_iter()
        .rfind(|seen| seen.method == "POST")
        .unwrap();
    let sent = last.headers["authorization"]
        .strip_prefix("Bearer ")
        .unwrap()
        .to_owned();
    assert_ne!(
        sent, token,
        "{sdk:?}: the client's token reached the upstream"
    );
    for seen in log.all() {
        let authorization = seen
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        assert!(
            !authorization.contains(&token),
            "{sdk:?}: the client's token went through"
        );
    }
    let kid = decode_header(&sent).unwrap().kid.unwrap();
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut rules = Validation::new(Algorithm::ES256);
    rules.set_issuer(&[&issuer]);
    rules.set_audience(&[&upstream.url]);
    let claims = decode::<Value>(&sent, &key, &rules).unwrap().claims;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "agent-1");
    assert_eq!(claims["idp"], env.idp.url());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        60
    );
    // Signed by the gateway's key alone: another audience or a tampered token is refused.
    let mut elsewhere = Validation::new(Algorithm::ES256);
    elsewhere.set_audience(&["http://127.0.0.1:1/other"]);
    assert!(decode::<Value>(&sent, &key, &elsewhere).is_err());
}

/// A stateless upstream (no sessions, JSON answers) works through the gateway as it is; a session
/// id it never issued is refused at the gateway (404), never passed on.
#[tokio::test]
async fn a_stateless_upstream_works_through_the_gateway() {
    let upstream = Upstream::rmcp_stateless().await;
    let env = gateway(&upstream).start().await;
    let token = env
        .mint(AccessTokenSpec::user("alice").scope(["mcp:tools", "profile:read"]))
        .await;
    let initialized = env
        .post(Some(&token), None, &conformance::initialize_request())
        .await;
    assert_eq!(initialized.status(), 200);
    assert!(initialized.headers().get("mcp-session-id").is_none());
    let response = env.post(Some(&token), None, &call("whoami")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(whoami(response).await["x-mcp-subject"], "alice");
    let before = posts(upstream.settled_log().await);
    let invented = env
        .post(Some(&token), Some("never-issued"), &call("whoami"))
        .await;
    assert_eq!(invented.status(), 404);
    assert_eq!(posts(upstream.settled_log().await), before);
}

/// Identity tokens name the caller by `sub` under the gateway's own `iss`: with two trusted
/// issuers, two providers' users could share one, so a gateway signing them refuses to start.
#[tokio::test]
async fn a_gateway_signing_identities_refuses_several_issuers() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use mcp_oauth_server::gateway::{CallerIdentity, IdentitySigner};
    use mcp_oauth_server::settings::{Issuer, TrustedIssuer};
    use mcp_oauth_server::{OffsetClock, Server, Settings, StartError};
    let mut settings = Settings::local(
        Issuer::parse("https://one.example").unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 1)),
    );
    let rules = settings
        .validation()
        .for_issuer(Issuer::parse("https://two.example").unwrap());
    settings.issuers.trust(TrustedIssuer::new(rules)).unwrap();
    let mut upstream =
        mcp_oauth_server::gateway::Upstream::parse("http://127.0.0.1:1/mcp").unwrap();
    upstream.identity = CallerIdentity::SignedJwt(Arc::new(IdentitySigner::generate().unwrap()));
    settings.upstream = Some(upstream);
    let built = Server::builder(settings)
        .gateway()
        .build(Arc::new(OffsetClock::default()))
        .await;
    assert!(
        matches!(built, Err(StartError::IdentityAcrossIssuers)),
        "{built:?}"
    );
}
