//! End to end with Keycloak 26 in a container (testcontainers), the realm imported from
//! `fixtures/keycloak/mcp-realm.json`: a client-credentials client whose tokens carry our resource
//! in `aud` through an audience mapper, and one whose tokens do not. Keycloak signs `typ: JWT`
//! access tokens, which the default token-type policy accepts (E01 note).
//!
//! The container tests need a Docker daemon, which development machines here lack, so they are
//! ignored by default; GitHub's runners run them:
//! `cargo test -p conformance --test keycloak -- --ignored`.
//! The realm file itself is checked everywhere.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use conformance::server::RunningServer;
use conformance::{eventually, fixtures_dir, initialize_request, no_redirects};
use mcp_oauth_server::settings::{Issuer, ResourceUrl};
use mcp_oauth_server::{Settings, SystemClock};
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;
use testcontainers::core::{IntoContainerPort as _, WaitFor};
use testcontainers::runners::AsyncRunner as _;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};

/// The resource the realm's audience mapper names.
const RESOURCE: &str = "http://localhost:8000/mcp";
const IMAGE_TAG: &str = "26.4";

fn realm() -> Value {
    let path = fixtures_dir().join("keycloak/mcp-realm.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn client<'a>(realm: &'a Value, id: &str) -> &'a Value {
    realm["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == id)
        .unwrap_or_else(|| panic!("no client {id}"))
}

/// The client's protocol mapper of this kind (`oidc-audience-mapper`, `oidc-sub-mapper`).
fn mapper<'a>(client: &'a Value, kind: &str) -> Option<&'a Value> {
    client["protocolMappers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["protocolMapper"] == kind)
}

/// The realm file is valid JSON that Keycloak 26 imports: a confidential client-credentials client
/// with an audience mapper for our resource, a second client without one, `sub` mapped for both,
/// and the `mcp:tools` scope in their tokens. Runs everywhere, Docker or not.
#[test]
fn the_realm_file_has_the_clients_and_the_audience_mapper() {
    let realm = realm();
    assert_eq!(realm["realm"], "mcp");
    let mcp = client(&realm, "mcp-client");
    assert_eq!(mcp["serviceAccountsEnabled"], true);
    assert_eq!(mcp["publicClient"], false);
    assert_eq!(mcp["clientAuthenticatorType"], "client-secret");
    let audience = mapper(mcp, "oidc-audience-mapper").expect("an audience mapper");
    assert_eq!(audience["config"]["included.custom.audience"], RESOURCE);
    assert_eq!(audience["config"]["access.token.claim"], "true");
    assert!(
        mapper(client(&realm, "other-client"), "oidc-audience-mapper").is_none(),
        "no audience for us"
    );
    // Keycloak 25+ adds `sub` through the "basic" scope, which an imported realm that lists its own
    // client scopes does not get: each client maps it itself (E13, a token without sub is refused).
    for id in ["mcp-client", "other-client"] {
        assert!(
            mapper(client(&realm, id), "oidc-sub-mapper").is_some(),
            "{id} maps sub"
        );
    }
    for id in ["mcp-client", "other-client"] {
        assert_eq!(
            client(&realm, id)["defaultClientScopes"],
            serde_json::json!(["mcp:tools"])
        );
    }
    assert!(
        realm["clientScopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "mcp:tools")
    );
}

/// Keycloak with the realm imported, and its issuer as seen from here.
async fn keycloak() -> (ContainerAsync<GenericImage>, String) {
    let container = GenericImage::new("quay.io/keycloak/keycloak", IMAGE_TAG)
        .with_exposed_port(8080.tcp())
        .with_wait_for(WaitFor::message_on_either_std("Listening on:"))
        .with_copy_to(
            "/opt/keycloak/data/import/mcp-realm.json",
            fixtures_dir().join("keycloak/mcp-realm.json"),
        )
        .with_env_var("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
        .with_env_var("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin")
        .with_cmd(["start-dev", "--import-realm"])
        .with_startup_timeout(Duration::from_secs(180))
        .start()
        .await
        .expect("Keycloak starts (this test needs Docker)");
    let port = container.get_host_port_ipv4(8080).await.unwrap();
    (container, format!("http://127.0.0.1:{port}/realms/mcp"))
}

/// The server as an operator runs it: OAUTH_ISSUER and MCP_RESOURCE_URL (the audience), the JWKS
/// found by discovery.
async fn server(issuer: &str) -> RunningServer {
    let (listener, port) = RunningServer::bind().await;
    let settings = Settings::new(
        Issuer::parse(issuer).unwrap(),
        ResourceUrl::parse(RESOURCE).unwrap(),
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    );
    let server = RunningServer::start(listener, settings, Arc::new(SystemClock)).await;
    assert!(eventually(Duration::from_secs(30), || async { server.app.is_ready() }).await);
    server
}

async fn client_credentials(issuer: &str, id: &str, secret: &str) -> String {
    let response: Value = reqwest::Client::new()
        .post(format!("{issuer}/protocol/openid-connect/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

/// G01, G03, D03, E01 (Keycloak's `typ: JWT`), C01: a Keycloak client-credentials token carrying our
/// audience calls get_me through the official Rust SDK client; a token of a client without the
/// audience mapper is refused.
#[tokio::test]
#[ignore = "needs Docker: cargo test -p conformance --test keycloak -- --ignored"]
async fn keycloak_tokens_with_our_audience_call_get_me_and_others_are_refused() {
    let (_keycloak, issuer) = keycloak().await;
    let server = server(&issuer).await;
    let token = client_credentials(&issuer, "mcp-client", "mcp-client-secret").await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(server.endpoint.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("the client connects");
    let me = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap()
        .structured_content
        .expect("structured content");
    assert_eq!(me["issuer"], issuer);
    assert_eq!(
        me["client_id"], "mcp-client",
        "Keycloak names the client in azp"
    );
    assert!(
        me["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "mcp:tools"),
        "{me}"
    );
    client.cancel().await.unwrap();

    let other = client_credentials(&issuer, "other-client", "other-client-secret").await;
    let refused = no_redirects()
        .post(&server.endpoint)
        .bearer_auth(other)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize_request())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("token audience is not this server"),
        "{challenge}"
    );
}

/// G05: a new active key at Keycloak (a higher-priority RSA provider) is used for new tokens, which
/// the server accepts without a restart; once the old key is removed, its tokens are refused.
#[tokio::test]
#[ignore = "needs Docker: cargo test -p conformance --test keycloak -- --ignored"]
async fn a_keycloak_key_rotation_is_followed_without_a_restart() {
    let (_keycloak, issuer) = keycloak().await;
    let server = server(&issuer).await;
    let before = client_credentials(&issuer, "mcp-client", "mcp-client-secret").await;
    let status = |token: String| {
        let endpoint = server.endpoint.clone();
        async move {
            no_redirects()
                .post(endpoint)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .json(&initialize_request())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(before.clone()).await, 200);

    let admin = Admin::login(&issuer).await;
    let old = admin.rsa_key_providers().await;
    admin.add_rsa_key_provider("rotated", 500).await;
    let after = client_credentials(&issuer, "mcp-client", "mcp-client-secret").await;
    assert_eq!(
        status(after.clone()).await,
        200,
        "the new key, found by one refresh"
    );
    for id in old {
        admin.delete_component(&id).await;
    }
    // The old key leaves the JWKS; an unknown kid refreshes at most once per cooldown (30 s).
    let refused = eventually(Duration::from_secs(45), || {
        let token = before.clone();
        let status = &status;
        async move { status(token).await == 401 }
    })
    .await;
    assert!(refused, "the removed key's token is still accepted");
    assert_eq!(status(after).await, 200);
}

/// Keycloak's admin REST API, as much as the rotation test needs.
struct Admin {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Admin {
    async fn login(issuer: &str) -> Self {
        let base = issuer.trim_end_matches("/realms/mcp").to_owned();
        let http = reqwest::Client::new();
        let response: Value = http
            .post(format!(
                "{base}/realms/master/protocol/openid-connect/token"
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", "admin"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            base,
            token: response["access_token"].as_str().unwrap().to_owned(),
            http,
        }
    }

    async fn rsa_key_providers(&self) -> Vec<String> {
        let components: Value = self
            .http
            .get(format!(
                "{}/admin/realms/mcp/components?type=org.keycloak.keys.KeyProvider",
                self.base
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        components
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["providerId"] == "rsa-generated")
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn add_rsa_key_provider(&self, name: &str, priority: u32) {
        let realm: Value = self
            .http
            .get(format!("{}/admin/realms/mcp", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let response = self
            .http
            .post(format!("{}/admin/realms/mcp/components", self.base))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({
                "name": name,
                "providerId": "rsa-generated",
                "providerType": "org.keycloak.keys.KeyProvider",
                "parentId": realm["id"],
                "config": {"priority": [priority.to_string()], "keySize": ["2048"], "algorithm": ["RS256"]}
            }))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }

    async fn delete_component(&self, id: &str) {
        let response = self
            .http
            .delete(format!("{}/admin/realms/mcp/components/{id}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
    }
}
