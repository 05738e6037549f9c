//! A user signs in, end to end, the way MCP clients do it (checklist A01-A05, B01-B03, E03, D03;
//! MCP "Authorization Flow"): a client with no token meets the 401, follows `resource_metadata`
//! to our RFC 9728 document, finds the authorization server's metadata, identifies itself (by
//! dynamic registration, or by a client ID metadata document), sends the user to the
//! authorization URL (auto-login here), exchanges the code with its PKCE verifier for a token for
//! our resource (RFC 8707), calls get_me as that user, and refreshes.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use conformance::{TestEnv, challenge_params, initialize_request, no_redirects};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{
    AuthClient, AuthorizationManager, AuthorizationRequest, AuthorizationSession,
};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig,
};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const REDIRECT: &str = "http://127.0.0.1:7890/callback";

async fn signing_in(user: &'static str) -> TestEnv {
    TestEnv::setup()
        .idp(move |idp| idp.auto_login(user))
        .start()
        .await
}

/// Follows the authorization URL the way a browser would up to the client's redirect URI, and
/// returns that redirect (the IdP signs the user in at once: auto-login).
async fn sign_in(authorization_url: &str) -> String {
    let response = no_redirects().get(authorization_url).send().await.unwrap();
    assert_eq!(
        response.status(),
        302,
        "{}",
        response.text().await.unwrap_or_default()
    );
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn get_me<C: StreamableHttpClient>(transport: StreamableHttpClientTransport<C>) -> Value {
    let client = ().serve(transport).await.expect("the client connects");
    let result = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap();
    client.cancel().await.unwrap();
    result.structured_content.expect("structured content")
}

/// Dynamic registration, through the official Rust SDK's OAuth client: discovery from our
/// endpoint, RFC 7591 registration, authorization code + PKCE, the token for our resource, get_me
/// as the signed-in user, then a refresh whose token works too.
#[tokio::test]
async fn the_rust_sdk_client_signs_a_user_in_by_dynamic_registration() {
    let env = signing_in("alice").await;
    let mut manager = AuthorizationManager::new(env.endpoint.as_str())
        .await
        .unwrap();
    let resolution = manager.resolve_metadata().await.unwrap();
    manager.set_metadata(resolution.metadata);
    let session = AuthorizationSession::new(
        manager,
        AuthorizationRequest::new(REDIRECT)
            .with_scopes(["openid", "mcp:tools"])
            .with_client_name("conformance (rmcp)"),
    )
    .await
    .map_err(|(_, error)| error)
    .expect("registered and ready to authorize");
    let callback = sign_in(session.get_authorization_url()).await;
    assert!(callback.starts_with(REDIRECT), "{callback}");
    session.handle_callback_url(&callback).await.unwrap();
    let manager = session.auth_manager;
    let first = manager.get_access_token().await.unwrap();
    manager.refresh_token().await.expect("a refresh");
    let refreshed = manager.get_access_token().await.unwrap();
    assert_ne!(refreshed, first, "a new access token");

    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(env.endpoint.clone()),
    );
    let me = get_me(transport).await;
    assert_eq!(me["user_id"], "alice", "{me}");
    assert!(
        me["client_id"].as_str().unwrap().starts_with("dyn-"),
        "{me}"
    );
    assert_eq!(
        me["audience"], env.endpoint,
        "RFC 8707: the resource as the client spelled it"
    );
    assert_eq!(
        env.initialize_status(Some(&first)).await,
        200,
        "the first token still works"
    );
}

/// A client ID metadata document: the client's id is the URL of its metadata, which the IdP
/// fetches and checks; the rest of the flow as above, here driven step by step (the SDK clients
/// insist on https for the document, which a loopback test cannot serve). A document whose
/// `client_id` is not its own URL is refused before any code is issued.
#[tokio::test]
async fn a_client_identified_by_its_metadata_document_signs_a_user_in() {
    let env = signing_in("bob").await;
    let documents = MockServer::start().await;
    let client_id = format!("{}/client.json", documents.uri());
    let impostor_id = format!("{}/impostor.json", documents.uri());
    for (route, id) in [
        ("/client.json", client_id.clone()),
        ("/impostor.json", client_id.clone()),
    ] {
        Mock::given(method("GET"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "client_id": id,
                "client_name": "conformance (metadata document)",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"]
            })))
            .mount(&documents)
            .await;
    }

    // 1. No token: the challenge names our RFC 9728 document.
    let refused = env.post(None, None, &initialize_request()).await;
    assert_eq!(refused.status(), 401);
    let params = challenge_params(refused.headers()["www-authenticate"].to_str().unwrap());
    let prm_url = params
        .iter()
        .find(|(n, _)| n == "resource_metadata")
        .unwrap()
        .1
        .clone();
    let prm: Value = env
        .http
        .get(&prm_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resource = prm["resource"].as_str().unwrap().to_owned();
    assert_eq!(resource, env.endpoint);
    // 2. The authorization server's metadata says metadata documents are supported.
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    let metadata: Value = env
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    // 3. Authorize with PKCE; the user signs in (auto-login); the code comes back with iss.
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    let authorize = |id: &str| {
        let mut url =
            url::Url::parse(metadata["authorization_endpoint"].as_str().unwrap()).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", id)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("state", "s-1")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("scope", "mcp:tools")
            .append_pair("resource", &resource);
        url.to_string()
    };
    let impostor = no_redirects()
        .get(authorize(&impostor_id))
        .send()
        .await
        .unwrap();
    assert_eq!(
        impostor.status(),
        400,
        "a document that is not its own client's"
    );
    assert!(impostor.headers().get("location").is_none());
    let callback = url::Url::parse(&sign_in(&authorize(&client_id)).await).unwrap();
    let pairs: Vec<(String, String)> = callback.query_pairs().into_owned().collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("iss").as_deref(), Some(issuer), "RFC 9207");
    assert_eq!(get("state").as_deref(), Some("s-1"));
    // 4. The code and the verifier give a token for our resource (a public client: no secret).
    let tokens: Value = env
        .http
        .post(metadata["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &get("code").unwrap()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
            ("resource", &resource),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned();
    let me = get_me(StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(env.endpoint.clone()).auth_header(access),
    ))
    .await;
    assert_eq!(me["user_id"], "bob");
    assert_eq!(me["client_id"], client_id);
    // 5. Refresh: a new token that works as well.
    let refreshed: Value = env
        .http
        .post(metadata["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let renewed = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_ne!(renewed, tokens["access_token"].as_str().unwrap());
    assert_eq!(env.initialize_status(Some(&renewed)).await, 200);
}

/// A client running in a browser page (the MCP Inspector at `http://localhost:6274`) makes every
/// discovery, registration and token request from its own origin: each answer, and each
/// preflight, lets it read the response (CORS), including the 401's `WWW-Authenticate`.
#[tokio::test]
async fn a_browser_based_client_can_follow_the_whole_chain_from_its_origin() {
    const ORIGIN: &str = "http://localhost:6274";
    let env = signing_in("alice").await;
    let issuer = env.idp.issuer();
    let preflight = |url: String, method: &'static str, headers: &'static str| {
        let http = env.http.clone();
        async move {
            let response = http
                .request(reqwest::Method::OPTIONS, &url)
                .header("origin", ORIGIN)
                .header("access-control-request-method", method)
                .header("access-control-request-headers", headers)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            let allowed_origin = response.headers()["access-control-allow-origin"]
                .to_str()
                .unwrap();
            assert!(allowed_origin == ORIGIN || allowed_origin == "*", "{url}");
            let allowed = response.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase();
            for header in headers.split(',') {
                assert!(
                    allowed == "*" || allowed.contains(header),
                    "{url}: {header} not in {allowed}"
                );
            }
        }
    };
    let metadata_path = env.metadata_url();
    let as_metadata = format!("{}/.well-known/oauth-authorization-server", issuer.url());
    preflight(
        env.endpoint.clone(),
        "POST",
        "authorization,content-type,mcp-protocol-version",
    )
    .await;
    preflight(metadata_path.clone(), "GET", "mcp-protocol-version").await;
    preflight(as_metadata.clone(), "GET", "mcp-protocol-version").await;
    preflight(issuer.registration_endpoint(), "POST", "content-type").await;
    preflight(
        issuer.token_endpoint(),
        "POST",
        "authorization,content-type",
    )
    .await;

    let unauthorized = env
        .http
        .post(&env.endpoint)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    assert_eq!(
        unauthorized.headers()["access-control-allow-origin"],
        ORIGIN
    );
    assert!(
        unauthorized.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("www-authenticate"),
        "the page reads the challenge"
    );
    for url in [metadata_path, as_metadata] {
        let response = env
            .http
            .get(&url)
            .header("origin", ORIGIN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{url}");
        assert!(
            response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{url}"
        );
    }
}
