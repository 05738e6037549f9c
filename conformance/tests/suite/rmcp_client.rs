//! The official Rust SDK's client connects with a bearer token and calls get_me (C01, C04: its
//! every request, the GET stream included, carries the token).

use conformance::TestEnv;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

#[tokio::test]
async fn the_rmcp_client_calls_get_me_with_a_bearer_token() {
    let env = TestEnv::setup()
        .required_scopes(&["mcp:tools"])
        .start()
        .await;
    let token = env.token().await;
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(env.endpoint.clone()).auth_header(token),
    );
    let client = ().serve(transport).await.expect("the client connects");
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.as_ref()).collect::<Vec<_>>(),
        ["get_me"]
    );
    let result = client
        .call_tool(CallToolRequestParams::new("get_me"))
        .await
        .unwrap();
    let me = result.structured_content.expect("structured content");
    assert_eq!(me["user_id"], "alice");
    assert_eq!(me["scopes"], serde_json::json!(["mcp:tools"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn the_rmcp_client_without_a_token_is_refused() {
    let env = TestEnv::start().await;
    let transport = StreamableHttpClientTransport::from_uri(env.endpoint.clone());
    assert!(().serve(transport).await.is_err());
}
