//! OAuth-protected MCP server: serves MCP tools only to callers holding a valid access token.
//!
//! The bearer layer, configuration and tools are built in the next step (see the README's
//! roadmap); until then the workspace's runnable product is the mock IdP (`cargo run -p mock-idp`).
