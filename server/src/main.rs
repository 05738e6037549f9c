//! `mcp-oauth-server`: the library's [`mcp_oauth_server::run`] over our own tools (`get_me`).
//! Nothing else lives here.

use mcp_oauth_server::tools::DefaultTools;

/// jemalloc rather than glibc's malloc: under a minute of hostile load glibc's heap held on to
/// about 15 KiB per short-lived session for a minute or more (RSS +7%), jemalloc's stays flat
/// (+1%) at the same size (BENCHMARKS.md, soak).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // anyhow prints the error with its causes, as a person reading a failed start needs.
    mcp_oauth_server::run(DefaultTools::new).await?;
    Ok(())
}
