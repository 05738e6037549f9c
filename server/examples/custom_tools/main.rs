//! Your own tools behind OAuth: the notes tools (`notes.rs`), each declaring its scopes, served
//! with every check the `mcp-oauth-server` binary has. It takes the binary's settings (the same
//! variables, flags and `.env`), so point it at the mock IdP or your provider as the README
//! shows for the binary:
//!
//! ```text
//! OAUTH_ISSUER=https://your-tenant.example.com/ cargo run -p mcp-oauth-server --example custom_tools
//! ```

mod notes;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mcp_oauth_server::run(notes::Notes::factory()).await?;
    Ok(())
}
