//! `get_me`: the Python sample's fields in its order, as structuredContent with an outputSchema
//! and as text, for an Okta-shaped token and an RFC 9068 token (user and machine).

use conformance::TestEnv;
use mock_idp::AccessTokenSpec;
use serde_json::{Value, json};

const FIELDS: [&str; 10] = [
    "user_id",
    "uid",
    "issuer",
    "audience",
    "client_id",
    "scopes",
    "issued_at",
    "expires_at",
    "token_id",
    "verified_by",
];

async fn get_me(env: &TestEnv, token: &str) -> Value {
    let session = env.initialize(token).await;
    let response = env.call_tool(token, session.as_deref(), "get_me").await;
    let result = &response["result"];
    assert_eq!(result["isError"], false, "{response}");
    let structured = result["structuredContent"].clone();
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, structured, "the text block carries the same object");
    let keys: Vec<&str> = structured
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys, FIELDS,
        "the sample's fields, in its order, then how the token was verified"
    );
    structured
}

/// The sample's contract on an Okta-shaped token: `scp` array, `cid`, `uid`, audience string.
#[tokio::test]
async fn get_me_reports_an_okta_shaped_token() {
    let env = TestEnv::start().await;
    let spec = AccessTokenSpec::user("00u1abcd@example.com")
        .client_id("ignored")
        .claim("client_id", Value::Null)
        .claim("cid", "0oa-okta-client")
        .claim("uid", "00u1abcd")
        .claim("scp", json!(["mcp:tools", "profile"]))
        .claim("jti", "AT.okta-jti");
    let token = env
        .idp
        .issuer()
        .forge(
            &mock_idp::attack::Forgery::new(spec)
                .without_claim("client_id")
                .header("typ", "JWT"),
        )
        .await
        .unwrap();
    let me = get_me(&env, &token).await;
    assert_eq!(me["user_id"], "00u1abcd@example.com");
    assert_eq!(me["uid"], "00u1abcd");
    assert_eq!(me["issuer"], env.idp.url());
    assert_eq!(me["audience"], env.resource());
    assert_eq!(
        me["client_id"], "0oa-okta-client",
        "cid when there is no client_id"
    );
    assert_eq!(me["scopes"], json!(["mcp:tools", "profile"]));
    assert_eq!(me["token_id"], "AT.okta-jti");
    for time in ["issued_at", "expires_at"] {
        let text = me[time].as_str().unwrap();
        assert!(
            text.ends_with('Z') && text.len() == 20,
            "RFC 3339 UTC: {text}"
        );
    }
}

/// An RFC 9068 client-credentials token from the token endpoint: `scope` string split, array
/// audience kept as an array, client_id.
#[tokio::test]
async fn get_me_reports_a_machine_to_machine_rfc_9068_token() {
    let env = TestEnv::setup()
        .idp(|idp| {
            idp.client(
                mock_idp::Client::new("svc", "svc-secret", "https://placeholder.example/mcp")
                    .resources(["http://localhost:1/never"])
                    .scopes(["mcp:tools", "mcp:read"]),
            )
        })
        .start()
        .await;
    // The client's resources must include this server's resource, which has a random port:
    // mint through the same code path with the issuer's spec instead.
    let spec = AccessTokenSpec::machine("svc")
        .audience(vec![
            "https://other.example".to_owned(),
            env.resource().to_owned(),
        ])
        .scope(["mcp:tools", "mcp:read"]);
    let token = env.mint(spec).await;
    let me = get_me(&env, &token).await;
    assert_eq!(me["user_id"], "svc");
    assert_eq!(me["client_id"], "svc");
    assert_eq!(me["uid"], Value::Null);
    assert_eq!(
        me["audience"],
        json!(["https://other.example", env.resource()])
    );
    assert_eq!(me["scopes"], json!(["mcp:tools", "mcp:read"]));
    assert!(me["token_id"].as_str().is_some_and(|jti| jti.len() == 32));
}

/// `tools/list` declares get_me with an output schema.
#[tokio::test]
async fn get_me_is_listed_with_an_output_schema() {
    let env = TestEnv::start().await;
    let token = env.token().await;
    let session = env.initialize(&token).await;
    let response = env
        .post(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
        )
        .await;
    let list = conformance::jsonrpc_body(response).await;
    let tool = &list["result"]["tools"][0];
    assert_eq!(tool["name"], "get_me");
    assert_eq!(
        tool["description"],
        "Get authenticated user information from the verified access token."
    );
    let properties = tool["outputSchema"]["properties"].as_object().unwrap();
    for field in FIELDS {
        assert!(properties.contains_key(field), "outputSchema lacks {field}");
    }
}
