//! Every provider the sample names, over real sockets: opaque tokens judged by RFC 7662
//! introspection (P01-P03, P05, P07, F01-F05), Google access tokens by Google's token information (P04),
//! Cognito access tokens by the opt-in client-id rule (P06), Entra ID app roles as permissions
//! (P08), and several trusted issuers, each token routed by its `iss` (P09).

use std::time::Duration;

use conformance::{TestEnv, initialize_request};
use mcp_oauth_server::Clock as _;
use mcp_oauth_server::Settings;
use mcp_oauth_server::settings::{
    ClientAuthMethod, ClientIdAudience, ClientSecret, FetchUrl, IntrospectedAudience,
    IntrospectionSettings, Issuer, PermissionClaims, RemoteVerification, TokenInfoSettings,
    TrustedIssuer,
};
use mock_idp::attack::Forgery;
use mock_idp::{AccessTokenSpec, Endpoint, Fault};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn introspection(every_token: bool) -> RemoteVerification {
    RemoteVerification::Introspection(IntrospectionSettings {
        endpoint: None,
        client_id: "mcp-server".into(),
        client_secret: ClientSecret::new("server-secret"),
        client_auth: ClientAuthMethod::Basic,
        every_token,
        cache_for: Duration::from_secs(30),
        audience: IntrospectedAudience::Required,
    })
}

/// The server introspects at the mock IdP as `mcp-server`; `agent` is a client of the IdP.
async fn introspecting(every_token: bool) -> TestEnv {
    TestEnv::setup()
        .confidential_client("mcp-server", "server-secret")
        .confidential_client("agent", "agent-secret")
        .configure(move |s| {
            s.keys.timeout = Duration::from_secs(1);
            s.issuers.primary_mut().remote = Some(introspection(every_token));
        })
        .start()
        .await
}

async fn opaque(env: &TestEnv, spec: AccessTokenSpec) -> String {
    env.idp.issuer().mint_opaque(&spec).await.unwrap()
}

fn alice() -> AccessTokenSpec {
    AccessTokenSpec::user("alice")
        .client_id("agent")
        .scope(["mcp:tools"])
}

/// get_me's structured content for `token` (stateful: initialize first).
async fn get_me(env: &TestEnv, token: &str) -> Value {
    let session = env.initialize(token).await;
    let response = env.call_tool(token, session.as_deref(), "get_me").await;
    response["result"]["structuredContent"].clone()
}

/// The status and `error_description` of an initialize with `token`.
async fn refusal(env: &TestEnv, token: &str) -> (StatusCode, String) {
    let response = env.post(Some(token), None, &initialize_request()).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// P01, F01, F05: an opaque token is introspected at the endpoint the metadata names, with the server's
/// client credentials; get_me reports the answer and says how the token was verified.
#[tokio::test]
async fn an_opaque_token_is_introspected_and_get_me_says_so() {
    let env = introspecting(false).await;
    let token = opaque(&env, alice()).await;
    let me = get_me(&env, &token).await;
    assert_eq!(me["user_id"], "alice", "{me}");
    assert_eq!(me["client_id"], "agent");
    assert_eq!(me["issuer"], env.idp.url());
    assert_eq!(me["audience"], env.resource());
    assert_eq!(me["scopes"], json!(["mcp:tools"]));
    assert!(me["expires_at"].is_string());
    assert_eq!(me["verified_by"], "introspection");
    // JWTs are still verified locally.
    let jwt = env.token().await;
    assert_eq!(get_me(&env, &jwt).await["verified_by"], "jwt");
}

/// P05, F04: answers are cached by a hash of the token (one call for many requests); a token revoked
/// at the IdP is still accepted while its answer may be reused, and refused once that bound
/// (30 s here) passes.
#[tokio::test]
async fn a_revoked_token_is_refused_within_the_cache_bound() {
    let env = introspecting(false).await;
    // 29 s of a 30 s bound must stay 29 s on a busy machine.
    env.freeze_clocks();
    let issuer = env.idp.issuer();
    let token = opaque(&env, alice()).await;
    let before = issuer.requests(Endpoint::Introspection);
    for _ in 0..5 {
        assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    }
    assert_eq!(
        issuer.requests(Endpoint::Introspection) - before,
        1,
        "cached"
    );
    let revoked = reqwest::Client::new()
        .post(issuer.revocation_endpoint())
        .basic_auth("agent", Some("agent-secret"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    // A busy machine: real seconds pass before the next request. A running clock would now be
    // past 30 s at the next step; the frozen one is not.
    let real_start = mcp_oauth_server::SystemClock.now();
    let passed = conformance::eventually(Duration::from_secs(10), || async {
        mcp_oauth_server::SystemClock.now() >= real_start + 2
    })
    .await;
    assert!(passed);
    env.advance(29);
    assert_eq!(
        env.initialize_status(Some(&token)).await,
        StatusCode::OK,
        "within the bound, the cached answer stands"
    );
    env.advance(2);
    assert_eq!(
        refusal(&env, &token).await,
        (StatusCode::UNAUTHORIZED, "token is not active".to_owned())
    );
    assert_eq!(issuer.requests(Endpoint::Introspection) - before, 2);
}

/// P05: an answer is never reused past the token's own `exp`, however long the cache time: an
/// expired opaque token is asked about again, and refused.
#[tokio::test]
async fn a_cached_answer_ends_with_the_token() {
    let env = introspecting(false).await;
    let issuer = env.idp.issuer();
    let token = opaque(&env, alice().expires_in(Duration::from_secs(10))).await;
    let before = issuer.requests(Endpoint::Introspection);
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
    env.advance(12);
    assert_eq!(
        refusal(&env, &token).await,
        (StatusCode::UNAUTHORIZED, "token is not active".to_owned())
    );
    assert_eq!(issuer.requests(Endpoint::Introspection) - before, 2);
}

/// P05: concurrent requests with one token share one introspection call.
#[tokio::test]
async fn concurrent_requests_share_one_introspection() {
    let env = introspecting(false).await;
    let issuer = env.idp.issuer();
    let token = opaque(&env, alice()).await;
    issuer.set_fault(
        Endpoint::Introspection,
        Fault::delay(Duration::from_millis(300)),
    );
    let before = issuer.requests(Endpoint::Introspection);
    let statuses =
        futures_util::future::join_all((0..8).map(|_| env.initialize_status(Some(&token)))).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(issuer.requests(Endpoint::Introspection) - before, 1);
}

/// P02, F02, F03: an answer that does not fit is a refusal: `active: false` (unknown, expired, revoked),
/// an audience that is not ours, an expired token.
#[tokio::test]
async fn introspection_answers_that_do_not_fit_are_refused() {
    let env = introspecting(false).await;
    for (token, expected) in [
        (
            "not-a-token-the-idp-issued".to_owned(),
            "token is not active",
        ),
        (
            opaque(&env, alice().audience("https://other.example/mcp")).await,
            "token audience is not this server",
        ),
        (
            opaque(&env, alice().expired_since(Duration::from_secs(600))).await,
            "token is not active",
        ),
    ] {
        assert_eq!(
            refusal(&env, &token).await,
            (StatusCode::UNAUTHORIZED, expected.to_owned())
        );
    }
}

/// D04, P02: an introspection answer without `aud` is refused by default (a resource server MUST
/// check that a token was issued for it); a deployment whose authorization server never sends
/// `aud` opts out (`OAUTH_INTROSPECTION_AUDIENCE=when-present`), and a present `aud` is still
/// checked.
#[tokio::test]
async fn an_introspection_answer_without_an_audience_is_refused_unless_opted_out() {
    let introspector = MockServer::start().await;
    let answer =
        json!({"active": true, "sub": "alice", "client_id": "agent", "scope": "mcp:tools"});
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .mount(&introspector)
        .await;
    for (rule, expected) in [
        (IntrospectedAudience::Required, StatusCode::UNAUTHORIZED),
        (IntrospectedAudience::CheckedWhenPresent, StatusCode::OK),
    ] {
        let endpoint = FetchUrl::parse(&format!("{}/introspect", introspector.uri())).unwrap();
        let env = TestEnv::setup()
            .configure(move |s| {
                let mut remote = introspection(false);
                if let RemoteVerification::Introspection(settings) = &mut remote {
                    settings.endpoint = Some(endpoint);
                    settings.audience = rule;
                }
                s.issuers.primary_mut().remote = Some(remote);
            })
            .start()
            .await;
        let (status, description) = refusal(&env, "c2VjcmV0LW9wYXF1ZS10b2tlbi0xMjM0NTY").await;
        assert_eq!(status, expected, "{rule:?}: {description}");
        if expected == StatusCode::UNAUTHORIZED {
            assert!(description.contains("aud"), "{description}");
        }
    }
}

/// P03, R01: made-up opaque tokens cannot burn the authorization server's quota: a token too short
/// to be an access token is refused unasked; a refused token's answer is kept (even with a cache
/// time of 0), so repeating it costs nothing; and each client address may cause only its budget
/// of calls for tokens not in the cache (429 with Retry-After past it).
#[tokio::test]
async fn made_up_opaque_tokens_cost_at_most_the_address_budget() {
    const BUDGET: u32 = 5;
    let env = TestEnv::setup()
        .confidential_client("mcp-server", "server-secret")
        .confidential_client("agent", "agent-secret")
        .configure(|s| {
            let mut remote = introspection(false);
            if let RemoteVerification::Introspection(settings) = &mut remote {
                settings.cache_for = Duration::ZERO;
            }
            s.issuers.primary_mut().remote = Some(remote);
            s.transport = mcp_oauth_server::settings::Transport::Stateless;
            s.rate_limit.remote_checks_per_address = std::num::NonZeroU32::new(BUDGET);
        })
        .start()
        .await;
    env.freeze_clocks();
    let issuer = env.idp.issuer();
    let calls = || issuer.requests(Endpoint::Introspection);
    let before = calls();
    let status = |token: String| {
        let env = &env;
        async move { env.post(Some(&token), None, &initialize_request()).await }
    };

    for short in ["abc123", "a.b.c", "x.y.z0123456789"] {
        let refused = status(short.to_owned()).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{short}");
    }
    let huge = format!("x.y.{}", "z".repeat(8000));
    assert_eq!(status(huge).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        calls() - before,
        0,
        "a token too short or too long was asked about"
    );

    let real = opaque(&env, alice()).await;
    assert_eq!(status(real.clone()).await.status(), StatusCode::OK);
    let made_up = "bWFkZS11cC10b2tlbi1vbmUtdHdvLXRocmVl".to_owned();
    for _ in 0..3 {
        assert_eq!(
            status(made_up.clone()).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(calls() - before, 2, "a refusal was asked about again");

    let mut limited = 0;
    for n in 0..200 {
        let response = status(format!("made-up-opaque-token-number-{n:04}")).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                limited += 1;
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&wait), "Retry-After {wait}");
            }
            other => panic!("made-up token {n}: {other}"),
        }
    }
    let asked = calls() - before;
    assert!(
        asked <= u64::from(BUDGET),
        "{asked} introspection calls for 200 made-up tokens and a budget of {BUDGET}"
    );
    assert!(limited >= 190, "only {limited} refused for the budget");
    // With cache time 0 a valid token is asked about each time, but a token accepted before
    // spends no budget: it keeps working while its address is over budget.
    let before_real = calls();
    assert_eq!(status(real).await.status(), StatusCode::OK, "a known token");
    assert_eq!(calls() - before_real, 1, "asked about again (cache time 0)");
    // Past the refusal's 30 s, a refused token asked about again spends the budget like a new
    // one: a stock of refused tokens is no free way to the authorization server.
    env.advance(31);
    assert_eq!(
        status(made_up).await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a refused token over budget"
    );
}

/// R01: a token whose answer is cached costs no call, so it keeps working while its address is
/// over the budget for unknown tokens.
#[tokio::test]
async fn a_cached_token_works_while_its_address_is_over_budget() {
    let env = TestEnv::setup()
        .confidential_client("mcp-server", "server-secret")
        .confidential_client("agent", "agent-secret")
        .configure(|s| {
            s.issuers.primary_mut().remote = Some(introspection(false));
            s.transport = mcp_oauth_server::settings::Transport::Stateless;
            s.rate_limit.remote_checks_per_address = std::num::NonZeroU32::new(2);
        })
        .start()
        .await;
    let real = opaque(&env, alice()).await;
    assert_eq!(env.initialize_status(Some(&real)).await, StatusCode::OK);
    let mut statuses = Vec::new();
    for n in 0..5 {
        let made_up = format!("made-up-opaque-token-number-{n:04}");
        statuses.push(env.initialize_status(Some(&made_up)).await);
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(env.initialize_status(Some(&real)).await, StatusCode::OK);
}

/// P03: while the metadata that names the introspection endpoint cannot be had, opaque tokens
/// fail closed (503) and cost the authorization server one discovery per cooldown, not one per
/// token.
#[tokio::test]
async fn an_undiscoverable_introspection_endpoint_is_not_rediscovered_per_token() {
    let env = TestEnv::setup()
        .confidential_client("mcp-server", "server-secret")
        .idp_fault_at_start(Endpoint::OauthAuthorizationServer, Fault::status(500))
        .idp_fault_at_start(Endpoint::OpenidConfiguration, Fault::status(500))
        .configure(|s| {
            s.issuers.primary_mut().remote = Some(introspection(true));
            s.transport = mcp_oauth_server::settings::Transport::Stateless;
        })
        .no_wait()
        .start()
        .await;
    env.freeze_clocks();
    let issuer = env.idp.issuer();
    let fetches = || {
        issuer.requests(Endpoint::OauthAuthorizationServer)
            + issuer.requests(Endpoint::OpenidConfiguration)
    };
    let before = fetches();
    for n in 0..6 {
        let token = format!("an-opaque-token-while-discovery-fails-{n}");
        assert_eq!(
            env.initialize_status(Some(&token)).await,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let asked = fetches() - before;
    assert!(
        asked <= 3,
        "{asked} metadata fetches for 6 tokens: one discovery tries at most 3 URLs"
    );
}

/// P02: a token refused as not yet valid is asked about again (it may become valid); only other
/// refusals are kept for at least 30 s whatever the cache time.
#[tokio::test]
async fn a_token_not_yet_valid_is_asked_about_again() {
    let introspector = MockServer::start().await;
    let not_before = mcp_oauth_server::SystemClock.now() + 3600;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true, "sub": "alice", "scope": "mcp:tools", "nbf": not_before,
        })))
        .expect(2)
        .mount(&introspector)
        .await;
    let endpoint = FetchUrl::parse(&format!("{}/introspect", introspector.uri())).unwrap();
    let env = TestEnv::setup()
        .configure(move |s| {
            let mut remote = introspection(false);
            if let RemoteVerification::Introspection(settings) = &mut remote {
                settings.endpoint = Some(endpoint);
                settings.cache_for = Duration::ZERO;
                settings.audience = IntrospectedAudience::CheckedWhenPresent;
            }
            s.issuers.primary_mut().remote = Some(remote);
        })
        .start()
        .await;
    for _ in 0..2 {
        let (status, description) = refusal(&env, "an-opaque-token-valid-only-later").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{description}");
    }
    introspector.verify().await;
}

/// P03: an introspection endpoint that errs, sends garbage, hangs past the timeout or drops the
/// connection fails closed (503, never 200); when it recovers, the same token passes (failures
/// are not cached).
#[tokio::test]
async fn an_introspection_endpoint_that_fails_fails_closed() {
    let env = introspecting(false).await;
    let issuer = env.idp.issuer();
    let token = opaque(&env, alice()).await;
    for fault in [
        Fault::status(500),
        Fault::status(401),
        Fault::malformed_body(),
        Fault::delay(Duration::from_secs(3)),
        Fault::drop_connection(),
    ] {
        issuer.set_fault(Endpoint::Introspection, fault.clone());
        let response = env.post(Some(&token), None, &initialize_request()).await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{fault:?}"
        );
        assert!(response.headers().contains_key("retry-after"));
        issuer.clear_faults();
    }
    assert_eq!(env.initialize_status(Some(&token)).await, StatusCode::OK);
}

/// P03, T07: the introspection request carries the token (and maybe our secret), so it is never
/// re-sent to wherever a redirect points: a 307 is a failed introspection, not a detour.
#[tokio::test]
async fn an_introspection_redirect_is_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/moved"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/introspect", elsewhere.uri())),
        )
        .mount(&elsewhere)
        .await;
    Mock::given(method("POST"))
        .and(path("/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "active": true, "sub": "alice", "client_id": "agent", "scope": "mcp:tools"
        })))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let moved = FetchUrl::parse(&format!("{}/moved", elsewhere.uri())).unwrap();
    let env = TestEnv::setup()
        .configure(move |s| {
            let mut settings = introspection(false);
            if let RemoteVerification::Introspection(introspection) = &mut settings {
                introspection.endpoint = Some(moved);
            }
            s.issuers.primary_mut().remote = Some(settings);
        })
        .start()
        .await;
    let response = env
        .post(
            Some("an-opaque-token-of-a-real-length"),
            None,
            &initialize_request(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    elsewhere.verify().await;
}

/// P07: with every token introspected, a JWT is judged by the IdP too, so its revocation is
/// felt within the cache bound.
#[tokio::test]
async fn every_token_can_be_introspected_so_revoked_jwts_are_refused() {
    let env = introspecting(true).await;
    let issuer = env.idp.issuer();
    let issued: Value = reqwest::Client::new()
        .post(issuer.token_endpoint())
        .basic_auth("agent", Some("agent-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools"),
            ("resource", env.resource()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwt = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(jwt.split('.').count(), 3, "a JWT");
    let me = get_me(&env, &jwt).await;
    assert_eq!(me["verified_by"], "introspection", "{me}");
    reqwest::Client::new()
        .post(issuer.revocation_endpoint())
        .basic_auth("agent", Some("agent-secret"))
        .form(&[("token", jwt.as_str())])
        .send()
        .await
        .unwrap();
    env.advance(31);
    assert_eq!(
        refusal(&env, &jwt).await,
        (StatusCode::UNAUTHORIZED, "token is not active".to_owned())
    );
    // A JWT the IdP never issued (minted through the admin API) is not active either, however
    // good its signature.
    let minted = env.token().await;
    assert_eq!(refusal(&env, &minted).await.0, StatusCode::UNAUTHORIZED);
}

/// P04: Google access tokens are opaque; the server asks the token-information endpoint and
/// accepts a live token issued to one of its configured OAuth clients. Another client's token
/// and a Google-issued JWT (an ID token) are refused; an unavailable endpoint fails closed.
#[tokio::test]
async fn google_tokens_are_verified_by_token_information() {
    let env = TestEnv::setup()
        .configure_with_idp(|s, idp| {
            s.keys.timeout = Duration::from_secs(1);
            s.issuers.primary_mut().remote =
                Some(RemoteVerification::TokenInfo(TokenInfoSettings {
                    endpoint: FetchUrl::parse(&idp.issuer().token_info_endpoint()).unwrap(),
                    client_ids: ClientIdAudience::new(["our-app.apps.googleusercontent.com"])
                        .unwrap(),
                    cache_for: Duration::from_secs(30),
                }));
        })
        .start()
        .await;
    let issuer = env.idp.issuer();
    let google = |client: &str| {
        AccessTokenSpec::user("bob")
            .client_id(client)
            .scope(["openid", "email"])
    };
    let token = opaque(&env, google("our-app.apps.googleusercontent.com")).await;
    let me = get_me(&env, &token).await;
    assert_eq!(me["user_id"], "bob", "{me}");
    assert_eq!(me["client_id"], "our-app.apps.googleusercontent.com");
    assert_eq!(me["verified_by"], "tokeninfo");
    assert_eq!(me["scopes"], json!(["openid", "email"]));

    let theirs = opaque(&env, google("their-app.apps.googleusercontent.com")).await;
    assert_eq!(
        refusal(&env, &theirs).await,
        (
            StatusCode::UNAUTHORIZED,
            "token audience is not this server".to_owned()
        )
    );
    assert_eq!(
        refusal(&env, "ya29.an-unknown-google-access-token").await,
        (StatusCode::UNAUTHORIZED, "token is not active".to_owned())
    );
    let id_token = env.token().await;
    assert_eq!(
        refusal(&env, &id_token).await,
        (
            StatusCode::UNAUTHORIZED,
            "token is not an access token".to_owned()
        )
    );
    issuer.set_fault(Endpoint::TokenInfo, Fault::status(503));
    let fresh = opaque(&env, google("our-app.apps.googleusercontent.com")).await;
    assert_eq!(
        env.initialize_status(Some(&fresh)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// A Cognito-shaped access token: no `aud`, `token_use: access`, the app client in `client_id`.
async fn cognito(env: &TestEnv, token_use: &str, client: &str) -> String {
    env.idp
        .issuer()
        .forge(
            &Forgery::new(
                AccessTokenSpec::user("cognito-user")
                    .client_id(client)
                    .scope(["mcp:tools"]),
            )
            .without_claim("aud")
            .claim("token_use", token_use)
            .claim("username", "cognito-user"),
        )
        .await
        .unwrap()
}

/// P06, D04: without the opt-in, a Cognito access token (no `aud`) is refused; with it, one whose
/// `client_id` is listed and whose `token_use` is `access` passes, and nothing else: an ID token,
/// another app client, a token naming another audience.
#[tokio::test]
async fn cognito_tokens_need_the_opt_in_client_id_rule() {
    let strict = TestEnv::start().await;
    let token = cognito(&strict, "access", "cognito-app").await;
    assert_eq!(
        refusal(&strict, &token).await,
        (
            StatusCode::UNAUTHORIZED,
            "token has no aud claim".to_owned()
        )
    );

    let env = TestEnv::setup()
        .configure(|s| {
            *s.validation_mut() = s
                .validation()
                .clone()
                .with_client_audience(ClientIdAudience::new(["cognito-app"]).unwrap());
        })
        .start()
        .await;
    let token = cognito(&env, "access", "cognito-app").await;
    let me = get_me(&env, &token).await;
    assert_eq!(me["user_id"], "cognito-user", "{me}");
    assert_eq!(me["client_id"], "cognito-app");
    assert_eq!(me["audience"], Value::Null);
    for (token, expected) in [
        (
            cognito(&env, "id", "cognito-app").await,
            "token is not an access token",
        ),
        (
            cognito(&env, "access", "other-app").await,
            "token audience is not this server",
        ),
        (
            env.mint(
                AccessTokenSpec::user("x")
                    .client_id("cognito-app")
                    .audience("https://other.example/mcp")
                    .claim("token_use", "access"),
            )
            .await,
            "token audience is not this server",
        ),
    ] {
        assert_eq!(
            refusal(&env, &token).await,
            (StatusCode::UNAUTHORIZED, expected.to_owned())
        );
    }
}

/// P06, P09: `OAUTH_AUDIENCE_CLIENT_IDS` is the first issuer's rule only: a token of an
/// issuers-file entry (or an extra issuer) that has no `aud` and names one of those client ids is
/// refused; an entry with its own `audience_client_ids` accepts its own clients, not the
/// first issuer's.
#[tokio::test]
async fn the_cognito_client_id_rule_belongs_to_its_own_issuer() {
    let dir = std::env::temp_dir().join(format!("cognito-issuers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("issuers.json");
    let written = file.clone();
    let env = TestEnv::setup()
        .configure_with_idp(move |s: &mut Settings, idp| {
            let entries = json!([
                {"issuer": format!("{}/plain", idp.url())},
                {"issuer": format!("{}/pool", idp.url()), "audience_client_ids": ["pool-app"]},
            ]);
            std::fs::write(&written, entries.to_string()).unwrap();
            let parsed = mcp_oauth_server::Args::parse_without_environment([
                "mcp-oauth-server",
                "--issuer",
                idp.url(),
                "--audience-client-ids",
                "cognito-app",
                "--extra-issuers",
                &format!("{}/extra", idp.url()),
                "--issuers-file",
                written.to_str().unwrap(),
            ])
            .unwrap()
            .settings()
            .unwrap();
            s.issuers = parsed.issuers;
        })
        .start()
        .await;
    let no_aud = async |tenant: &str, client: &str| {
        let handle = env.idp.tenant(tenant).await.unwrap();
        let spec = AccessTokenSpec::user("cognito-user")
            .client_id(client)
            .scope(["mcp:tools"]);
        handle
            .forge(
                &Forgery::new(spec)
                    .without_claim("aud")
                    .claim("token_use", "access"),
            )
            .await
            .unwrap()
    };
    env.wait_until_ready(Duration::from_secs(10)).await;
    let primary = cognito(&env, "access", "cognito-app").await;
    assert_eq!(env.initialize_status(Some(&primary)).await, StatusCode::OK);
    for (tenant, client, expected) in [
        ("plain", "cognito-app", StatusCode::UNAUTHORIZED),
        ("extra", "cognito-app", StatusCode::UNAUTHORIZED),
        ("pool", "cognito-app", StatusCode::UNAUTHORIZED),
        ("pool", "pool-app", StatusCode::OK),
    ] {
        let token = no_aud(tenant, client).await;
        let (status, description) = refusal(&env, &token).await;
        assert_eq!(status, expected, "{tenant} / {client}: {description}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// An Entra ID v1-shaped app-only token: `typ: JWT`, `appid`, `roles`, `ver: 1.0`, no scopes.
fn entra_app_only() -> AccessTokenSpec {
    AccessTokenSpec::machine("11111111-2222-3333-4444-555555555555")
        .claim("appid", "11111111-2222-3333-4444-555555555555")
        .claim("roles", json!(["Tools.Call"]))
        .claim("ver", "1.0")
        .claim("tid", "tenant-guid")
}

/// P08: app roles are permissions only when the operator says so: by default an app-only token
/// brings no scope and a tool needing `Tools.Call` is refused 403; with `roles` read, it passes.
#[tokio::test]
async fn entra_app_roles_are_permissions_only_when_configured() {
    let required = &["Tools.Call"];
    let strict = TestEnv::setup().required_scopes(required).start().await;
    let token = strict.mint(entra_app_only()).await;
    assert_eq!(
        strict.initialize_status(Some(&token)).await,
        StatusCode::FORBIDDEN
    );

    let env = TestEnv::setup()
        .required_scopes(required)
        .configure(|s| {
            *s.validation_mut() = s
                .validation()
                .clone()
                .with_permission_claims(PermissionClaims {
                    scope: true,
                    scp: true,
                    roles: true,
                });
        })
        .start()
        .await;
    let token = env.mint(entra_app_only()).await;
    let me = get_me(&env, &token).await;
    assert_eq!(me["scopes"], json!(["Tools.Call"]), "{me}");
    assert_eq!(me["client_id"], "11111111-2222-3333-4444-555555555555");
}

/// P09: two trusted issuers (a workforce IdP and a partner's, or Entra's v1 and v2 issuers),
/// each with its own keys: each one's tokens pass, the RFC 9728 document lists both, and a token
/// of an issuer that is not trusted is refused without any key fetch, from it or from the others.
#[tokio::test]
async fn several_issuers_are_trusted_and_tokens_are_routed_by_iss() {
    let env = TestEnv::setup()
        .configure_with_idp(|s: &mut Settings, idp| {
            let partner = Issuer::parse(&format!("{}/partner", idp.url())).unwrap();
            let rules = s.validation().for_issuer(partner);
            s.issuers.trust(TrustedIssuer::new(rules)).unwrap();
        })
        .start()
        .await;
    let root = env.idp.issuer();
    let partner = env.idp.tenant("partner").await.unwrap();
    let stranger = env.idp.tenant("stranger").await.unwrap();
    env.wait_until_ready(Duration::from_secs(10)).await;

    let spec = || AccessTokenSpec::user("carol").scope(["mcp:tools"]);
    let from_partner = partner.mint(&spec()).await.unwrap();
    let me = get_me(&env, &from_partner).await;
    assert_eq!(me["issuer"], partner.url(), "{me}");
    let from_root = root.mint(&spec()).await.unwrap();
    assert_eq!(get_me(&env, &from_root).await["issuer"], root.url());
    // K04 across issuers: the same `sub` at another issuer is someone else, kept out of the
    // first one's session.
    let session = env.initialize(&from_root).await.expect("a session");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    assert_eq!(
        env.post(Some(&from_partner), Some(&session), &list)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    let document: Value = env
        .http
        .get(env.metadata_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        document["authorization_servers"],
        json!([root.url(), partner.url()])
    );

    let fetches = |handles: &[&mock_idp::IssuerHandle]| -> u64 {
        handles.iter().map(|h| h.requests(Endpoint::Jwks)).sum()
    };
    let before = fetches(&[root, &partner, &stranger]);
    let foreign = stranger.mint(&spec()).await.unwrap();
    assert_eq!(
        refusal(&env, &foreign).await,
        (
            StatusCode::UNAUTHORIZED,
            "token issuer is not trusted".to_owned()
        )
    );
    assert_eq!(fetches(&[root, &partner, &stranger]), before, "no fetch");
}

/// P09 with one issuer: a token of another issuer, under a `kid` the trusted issuer does not
/// have, is refused without the refetch an unknown `kid` would otherwise cause.
#[tokio::test]
async fn a_foreign_issuer_costs_no_key_fetch() {
    let env = TestEnv::start().await;
    let root = env.idp.issuer();
    let stranger = env.idp.tenant("stranger").await.unwrap();
    let before = root.requests(Endpoint::Jwks) + stranger.requests(Endpoint::Jwks);
    let foreign = stranger
        .mint(&AccessTokenSpec::user("mallory"))
        .await
        .unwrap();
    assert_eq!(
        refusal(&env, &foreign).await,
        (
            StatusCode::UNAUTHORIZED,
            "token issuer is not trusted".to_owned()
        )
    );
    assert_eq!(
        root.requests(Endpoint::Jwks) + stranger.requests(Endpoint::Jwks),
        before
    );
}
