//! User sign-in: authorization code with PKCE, the login page, dynamic registration, client ID
//! metadata documents, refresh-token rotation, ID tokens, userinfo, introspection and revocation,
//! and every refusal a client must meet (RFC 6749 §4.1, §5.2, §6; RFC 7636; RFC 7591; RFC 8252;
//! RFC 8707; RFC 9207; RFC 7662; RFC 7009; OIDC Core).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_idp::{Client, MockIdp, User};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{builder, fixture_supply, http, inspect};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// A PKCE pair: (verifier, S256 challenge).
fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    (verifier, challenge)
}

async fn idp_with(auto_login: bool) -> MockIdp {
    let mut builder = builder()
        .client(Client::demo())
        .client(Client::public("app", [REDIRECT]).scopes([
            "openid",
            "profile",
            "email",
            "mcp:tools",
        ]))
        .client(Client::public("other", [REDIRECT]))
        .user(
            User::new("alice")
                .name("Alice Example")
                .email("alice@example.com"),
        )
        .user(User::new("bob"))
        .resource(RESOURCE);
    if auto_login {
        builder = builder.auto_login("alice");
    }
    builder.start().await.unwrap()
}

/// The authorization URL of a typical request of `client`.
fn authorize_url(idp: &MockIdp, client: &str, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&idp.issuer().authorization_endpoint()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("state", "st-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("scope", "openid profile mcp:tools")
        .append_pair("resource", RESOURCE)
        .append_pair("nonce", "n-1");
    for (name, value) in extra {
        url.query_pairs_mut().append_pair(name, value);
    }
    url.to_string()
}

/// Follows nothing: the `Location` of a 302, parsed, with its query as pairs.
fn redirected(response: &reqwest::Response) -> (url::Url, Vec<(String, String)>) {
    assert_eq!(response.status(), StatusCode::FOUND, "not a redirect");
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let pairs = url.query_pairs().into_owned().collect();
    (url, pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn token(idp: &MockIdp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = http()
        .post(idp.issuer().token_endpoint())
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn code_for(idp: &MockIdp, challenge: &str) -> String {
    let response = http()
        .get(authorize_url(idp, "app", challenge, &[]))
        .send()
        .await
        .unwrap();
    let (_, pairs) = redirected(&response);
    param(&pairs, "code").unwrap().to_owned()
}

/// The whole code flow with auto-login: the redirect carries code, state and iss (RFC 9207);
/// the code and its verifier give an at+jwt for the resource (RFC 8707), a refresh token and an
/// ID token with the nonce; userinfo answers; the refresh token rotates, and reusing the old one
/// revokes the family.
#[tokio::test]
async fn the_code_flow_gives_tokens_for_the_resource_and_refresh_rotates() {
    let idp = idp_with(true).await;
    let (verifier, challenge) = pkce();
    let response = http()
        .get(authorize_url(&idp, "app", &challenge, &[]))
        .send()
        .await
        .unwrap();
    let (url, pairs) = redirected(&response);
    assert_eq!(url.as_str().split('?').next(), Some(REDIRECT));
    assert_eq!(param(&pairs, "state"), Some("st-1"));
    assert_eq!(param(&pairs, "iss"), Some(idp.url()));
    let code = param(&pairs, "code").unwrap();

    let (status, body) = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (header, claims) = inspect(body["access_token"].as_str().unwrap());
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "app");
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["scope"], "openid profile mcp:tools");
    let (_, id) = inspect(body["id_token"].as_str().unwrap());
    assert_eq!(id["aud"], "app");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["name"], "Alice Example");
    let userinfo: Value = http()
        .get(format!("{}/userinfo", idp.url()))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["name"], "Alice Example");

    let first_refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", &first_refresh),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(
        inspect(refreshed["access_token"].as_str().unwrap()).1["aud"],
        RESOURCE
    );

    let (status, reused) = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", &first_refresh),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");
    let (_, after) = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "app"),
            ("refresh_token", &second_refresh),
        ],
    )
    .await;
    assert_eq!(
        after["error"], "invalid_grant",
        "the whole family is revoked"
    );
}

/// Refused, and nothing issued: a wrong verifier, a reused code (which also revokes what it gave),
/// a redirect URI that differs at the token endpoint, a redemption that names no client.
#[tokio::test]
async fn codes_are_bound_to_their_verifier_client_and_redirect_and_used_once() {
    let idp = idp_with(true).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&idp, &challenge).await;
    let wrong = "w".repeat(43);
    let (status, body) = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body.get("access_token").is_none());

    let code = code_for(&idp, &challenge).await;
    let redeem = |code: String, redirect: &'static str| {
        let idp = &idp;
        let verifier = verifier.clone();
        async move {
            token(
                idp,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "app"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (status, _) = redeem(code.clone(), "http://127.0.0.1:7777/other").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "redirect_uri mismatch");
    let code = code_for(&idp, &challenge).await;
    let (status, first) = redeem(code.clone(), REDIRECT).await;
    assert_eq!(status, StatusCode::OK);
    let (status, second) = redeem(code, REDIRECT).await;
    assert_eq!(
        (status, second["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let userinfo = http()
        .get(format!("{}/userinfo", idp.url()))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        userinfo.status(),
        StatusCode::UNAUTHORIZED,
        "the first redemption's token is revoked after the reuse"
    );

    let code = code_for(&idp, &challenge).await;
    let (status, body) = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

/// A code and a refresh token serve only the client they were issued to: another client (even
/// one with the same redirect URI and the right verifier) gets `invalid_grant` and nothing else.
#[tokio::test]
async fn codes_and_refresh_tokens_serve_only_their_own_client() {
    let idp = idp_with(true).await;
    let (verifier, challenge) = pkce();
    let exchange = |client: &'static str, code: String| {
        let (idp, verifier) = (&idp, verifier.clone());
        async move {
            token(
                idp,
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await
        }
    };
    let (status, body) = exchange("other", code_for(&idp, &challenge).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body.get("access_token").is_none(), "{body}");

    let (status, body) = exchange("app", code_for(&idp, &challenge).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap();
    let (status, body) = token(
        &idp,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "other"),
            ("refresh_token", refresh),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(body.get("access_token").is_none(), "{body}");
}

/// Errors before anything is issued: an unknown client and an unregistered redirect URI end on an
/// error page (never a redirect); missing PKCE, `plain`, no method, a wrong response type, an
/// unknown scope or resource are redirected with the §4.1.2.1 error, `state` and `iss`. Loopback
/// redirect URIs may use any port (RFC 8252 §7.3).
#[tokio::test]
async fn authorization_errors_are_shown_or_redirected_as_rfc_6749_says() {
    let idp = idp_with(true).await;
    let (_, challenge) = pkce();
    for (url, why) in [
        (
            authorize_url(&idp, "nobody", &challenge, &[]),
            "unknown client",
        ),
        (
            authorize_url(&idp, "app", &challenge, &[]).replace("7777%2Fcallback", "7777%2Fevil"),
            "unregistered redirect URI",
        ),
    ] {
        let response = http().get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        assert!(response.headers().get("location").is_none(), "{why}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }
    let base = |params: &[(&str, &str)]| {
        let mut url = url::Url::parse(&idp.issuer().authorization_endpoint()).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", "app")
            .append_pair("redirect_uri", "http://127.0.0.1:9999/callback")
            .append_pair("state", "s");
        for (n, v) in params {
            url.query_pairs_mut().append_pair(n, v);
        }
        url.to_string()
    };
    for (params, error) in [
        (vec![("response_type", "code")], "invalid_request"),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("response_type", "code"), ("code_challenge", &challenge)],
            "invalid_request",
        ),
        (
            vec![
                ("response_type", "token"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
            ],
            "unsupported_response_type",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("scope", "admin"),
            ],
            "invalid_scope",
        ),
        (
            vec![
                ("response_type", "code"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("resource", "https://other.example/mcp"),
            ],
            "invalid_target",
        ),
    ] {
        let response = http().get(base(&params)).send().await.unwrap();
        let (url, pairs) = redirected(&response);
        assert_eq!(url.port(), Some(9999), "loopback: any port");
        assert_eq!(param(&pairs, "error"), Some(error), "{params:?}");
        assert_eq!(param(&pairs, "state"), Some("s"));
        assert_eq!(param(&pairs, "iss"), Some(idp.url()));
        assert!(param(&pairs, "code").is_none());
    }
}

/// The login page lists the users and signs in the one chosen (or typed); an unknown name is
/// refused on the page itself, and an expired or unknown sign-in handle cannot be used.
#[tokio::test]
async fn the_login_page_signs_in_the_chosen_user() {
    let idp = idp_with(false).await;
    let (verifier, challenge) = pkce();
    let page = http()
        .get(authorize_url(&idp, "app", &challenge, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    // Browsers check `form-action` on the redirect after the form too: the client's origin, and
    // no other, is allowed (the browser test shows Chromium following it).
    let client_origin = url::Url::parse(REDIRECT)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        policy.contains(&format!("form-action 'self' {client_origin};")),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Alice Example") && html.contains(r#"value="bob""#),
        "{html}"
    );
    let handle = html
        .split(r#"name="handle" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let login = |form: Vec<(&'static str, String)>| {
        http()
            .post(idp.issuer().authorization_endpoint())
            .form(&form)
            .send()
    };
    let unknown = login(vec![
        ("handle", handle.clone()),
        ("other", "mallory".into()),
    ])
    .await
    .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    assert!(unknown.text().await.unwrap().contains("No such user"));
    let chosen = login(vec![("handle", handle.clone()), ("username", "bob".into())])
        .await
        .unwrap();
    let (_, pairs) = redirected(&chosen);
    let code = param(&pairs, "code").unwrap();
    let (_, body) = token(
        &idp,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "app"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        inspect(body["access_token"].as_str().unwrap()).1["sub"],
        "bob"
    );
    let again = login(vec![("handle", handle), ("username", "bob".into())])
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a handle signs in once"
    );
}

/// RFC 7591: a public client registers (no secret issued) and a confidential one (a secret
/// issued); an http redirect URI off loopback is refused.
#[tokio::test]
async fn clients_register_themselves() {
    let idp = idp_with(true).await;
    let register = |metadata: Value| {
        http()
            .post(idp.issuer().registration_endpoint())
            .json(&metadata)
            .send()
    };
    let public = register(json!({
        "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "client_name": "Inspector"
    }))
    .await
    .unwrap();
    assert_eq!(public.status(), StatusCode::CREATED);
    let public: Value = public.json().await.unwrap();
    assert!(public["client_id"].as_str().unwrap().starts_with("dyn-"));
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["client_name"], "Inspector");
    let confidential: Value = register(json!({"redirect_uris": [REDIRECT]}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        confidential["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() > 20)
    );
    let refused = register(
        json!({"redirect_uris": ["http://app.example/cb"], "token_endpoint_auth_method": "none"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["error"], "invalid_redirect_uri");
}

/// RFC 7662 / RFC 7009: a confidential client introspects a token (active, with scope, client and
/// audience); after revocation it is inactive. Public clients may not introspect.
#[tokio::test]
async fn tokens_are_introspected_and_revoked() {
    let idp = MockIdp::builder()
        .keys(fixture_supply())
        .client(Client::demo())
        .start()
        .await
        .unwrap();
    let (_, issued) = token(
        &idp,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo-client"),
            ("client_secret", "demo-secret"),
        ],
    )
    .await;
    let access = issued["access_token"].as_str().unwrap();
    let introspect = || {
        http()
            .post(format!("{}/introspect", idp.url()))
            .basic_auth("demo-client", Some("demo-secret"))
            .form(&[("token", access)])
            .send()
    };
    let active: Value = introspect().await.unwrap().json().await.unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "demo-client");
    assert_eq!(active["aud"], "http://localhost:8000/mcp");
    assert_eq!(active["scope"], "mcp:tools");
    let revoked = http()
        .post(format!("{}/revoke", idp.url()))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let inactive: Value = introspect().await.unwrap().json().await.unwrap();
    assert_eq!(inactive, json!({"active": false}));
    let unknown = http()
        .post(format!("{}/revoke", idp.url()))
        .basic_auth("demo-client", Some("demo-secret"))
        .form(&[("token", "never-issued")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK, "RFC 7009 §2.2");
}

/// RFC 7591 registrations are checked like configured clients (`Client::validate`): a public
/// client (`token_endpoint_auth_method: none`) cannot register for `client_credentials`, nor can
/// a confidential one (a registered client has no resource of its own to get a machine token
/// for); the answer is `invalid_client_metadata` (§3.2.2) and nothing is registered.
#[tokio::test]
async fn registered_clients_are_checked_like_configured_ones() {
    let idp = idp_with(true).await;
    for metadata in [
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "grant_types": ["client_credentials"]}),
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "client_credentials"]}),
        json!({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
        json!({"grant_types": ["client_credentials"]}),
    ] {
        let response = http()
            .post(idp.issuer().registration_endpoint())
            .json(&metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{metadata}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata", "{metadata}");
        assert!(body.get("client_id").is_none(), "{metadata}");
    }
}

/// Registration never stops working: past the cap (1,000) the oldest registration is forgotten
/// to make room, and the newer ones keep working.
#[tokio::test]
async fn registration_forgets_the_oldest_client_instead_of_refusing() {
    let idp = idp_with(true).await;
    let (_, challenge) = pkce();
    let http = http();
    let mut ids = Vec::new();
    for i in 0..1_001 {
        let response = http
            .post(idp.issuer().registration_endpoint())
            .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "registration {i}");
        let body: Value = response.json().await.unwrap();
        ids.push(body["client_id"].as_str().unwrap().to_owned());
    }
    let authorize = |client: &str| {
        let url = authorize_url(&idp, client, &challenge, &[])
            .replace("scope=openid+profile+mcp%3Atools&", "");
        http.get(url).send()
    };
    let oldest = authorize(&ids[0]).await.unwrap();
    assert_eq!(
        oldest.status(),
        StatusCode::BAD_REQUEST,
        "the oldest is gone"
    );
    for id in [&ids[1], &ids[1_000]] {
        let response = authorize(id).await.unwrap();
        let (_, pairs) = redirected(&response);
        assert!(param(&pairs, "code").is_some(), "{id}: {pairs:?}");
    }
}

/// A redemption that fails (a wrong verifier, another client, another redirect URI, a failed
/// client authentication) does not spend the code: the client it was issued to still redeems it
/// (RFC 9700 §2.1.1, §4.2.4). A stranger's replay after that is refused and revokes nothing; the
/// client's own replay revokes what the code gave (RFC 6749 §4.1.2).
#[tokio::test]
async fn a_failed_redemption_leaves_the_code_for_its_client() {
    let idp = idp_with(true).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&idp, &challenge).await;
    let wrong_verifier = "w".repeat(43);
    let attempts: [(&[(&str, &str)], StatusCode); 4] = [
        (
            &[
                ("client_id", "app"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &wrong_verifier),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                ("client_id", "other"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                ("client_id", "app"),
                ("redirect_uri", "http://127.0.0.1:7777/elsewhere"),
                ("code_verifier", &verifier),
            ],
            StatusCode::BAD_REQUEST,
        ),
        (
            &[
                ("client_id", "app"),
                ("client_secret", "guess"),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
            StatusCode::UNAUTHORIZED,
        ),
    ];
    let with_code = |extra: &[(&'static str, &str)]| {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
        ];
        form.extend(extra.iter().map(|(n, v)| (*n, *v)));
        form.into_iter()
            .map(|(n, v)| (n, v.to_owned()))
            .collect::<Vec<_>>()
    };
    let token_endpoint = idp.issuer().token_endpoint();
    let post = |form: Vec<(&'static str, String)>| {
        let token_endpoint = token_endpoint.clone();
        async move {
            let response = http()
                .post(token_endpoint)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    for (extra, expected) in attempts {
        let (status, body) = post(with_code(extra)).await;
        assert_eq!(status, expected, "{extra:?}: {body}");
        assert!(body.get("access_token").is_none(), "{extra:?}");
    }
    let genuine = with_code(&[
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &verifier),
    ]);
    let (status, body) = post(genuine.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the real client still redeems it: {body}"
    );
    let access = body["access_token"].as_str().unwrap().to_owned();
    let userinfo = || {
        http()
            .get(format!("{}/userinfo", idp.url()))
            .bearer_auth(&access)
            .send()
    };
    let (status, _) = post(with_code(&[
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", &wrong_verifier),
    ]))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        userinfo().await.unwrap().status(),
        StatusCode::OK,
        "a stranger's replay revokes nothing"
    );
    let (status, body) = post(genuine).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "a replay with the verifier revokes what the code gave"
    );
}

/// RFC 9700 §4.11.2: the IdP redirects unasked only to a redirect URI it trusts: a configured
/// client's, or loopback. A client anyone could register with `https://…` gets its errors on a
/// page (no redirect), and no silent sign-in (the login page, even with auto-login); a
/// configured client with the same URI, and a registered loopback one, get the redirect.
#[tokio::test]
async fn errors_go_back_only_to_redirect_uris_the_idp_trusts() {
    const WEB: &str = "https://app.example/callback";
    let idp = builder()
        .client(Client::public("web", [WEB]))
        .auto_login("alice")
        .resource(RESOURCE)
        .start()
        .await
        .unwrap();
    let register = |redirect: &'static str| {
        let idp = &idp;
        async move {
            let body: Value = http()
                .post(idp.issuer().registration_endpoint())
                .json(&json!({"redirect_uris": [redirect], "token_endpoint_auth_method": "none"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["client_id"].as_str().unwrap().to_owned()
        }
    };
    let (_, challenge) = pkce();
    let request = |client: &str, redirect: &str, scope: &str| {
        let mut url = url::Url::parse(&idp.issuer().authorization_endpoint()).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "s")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", scope);
        http().get(url.to_string()).send()
    };
    let stranger = register(WEB).await;
    let bad = request(&stranger, WEB, "no-such-scope").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.headers().get("location").is_none());
    assert!(bad.text().await.unwrap().contains("invalid_scope"));
    let good = request(&stranger, WEB, "openid").await.unwrap();
    assert_eq!(
        good.status(),
        StatusCode::OK,
        "the login page, not a silent redirect"
    );
    assert!(good.headers().get("location").is_none());
    assert!(good.text().await.unwrap().contains("Sign in"));

    let configured = request("web", WEB, "no-such-scope").await.unwrap();
    let (url, pairs) = redirected(&configured);
    assert_eq!(url.host_str(), Some("app.example"));
    assert_eq!(param(&pairs, "error"), Some("invalid_scope"));
    let local = register(REDIRECT).await;
    let bad = request(&local, REDIRECT, "no-such-scope").await.unwrap();
    let (_, pairs) = redirected(&bad);
    assert_eq!(param(&pairs, "error"), Some("invalid_scope"));
    let good = request(&local, REDIRECT, "openid").await.unwrap();
    let (_, pairs) = redirected(&good);
    assert!(param(&pairs, "code").is_some());
}
