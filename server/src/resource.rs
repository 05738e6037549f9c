//! The protected resource: the canonical URL of `/mcp` as clients reach it (MCP "Canonical Server
//! URI", RFC 8707 §2, RFC 9728 §2). It is the RFC 9728 `resource`, the default token audience and
//! the place the metadata URL is derived from, so it is validated once and never taken from a
//! request (checklist A03, A05, A16, A18, D06, D07).

use std::fmt;

use url::Url;

use crate::auth::fetch::{FetchUrl, UrlError};
use crate::auth::policy::Audience;

/// The canonical resource URL: https (or http to loopback), lower-case scheme and host, no query,
/// fragment or trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUrl(Url);

impl ResourceUrl {
    /// Parses and checks a resource URL (`MCP_RESOURCE_URL`).
    ///
    /// # Errors
    /// [`UrlError`] when it is not https (nor http to loopback), or has a query, fragment or
    /// trailing slash.
    pub fn parse(value: &str) -> Result<Self, UrlError> {
        let url = FetchUrl::parse(value)?.as_url().clone();
        if url.fragment().is_some() || url.query().is_some() {
            return Err(UrlError::QueryOrFragment {
                value: value.to_owned(),
                what: "the resource URL",
            });
        }
        if url.path().ends_with('/') && url.path() != "/" {
            return Err(UrlError::TrailingSlash {
                value: value.to_owned(),
            });
        }
        Ok(Self(url))
    }

    /// `http://localhost:{port}/mcp`: the sample's endpoint, used when listening on loopback
    /// and no resource URL is configured.
    #[expect(
        clippy::expect_used,
        reason = "invariant: http://localhost:PORT/mcp parses for every u16 port"
    )]
    pub fn local(port: u16) -> Self {
        Self(Url::parse(&format!("http://localhost:{port}/mcp")).expect("a valid URL"))
    }

    /// The URL.
    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// The URL as text, as it appears in `resource` and the default `aud`.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The path the MCP endpoint is served at.
    pub fn path(&self) -> &str {
        self.0.path()
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }

    /// `host[:port]` as a `Host` header carries it.
    pub fn authority(&self) -> String {
        let host = self.0.host_str().unwrap_or_default();
        match self.0.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// The RFC 9728 metadata URL for the resource: the well-known segment inserted before the
    /// path (`https://h/.well-known/oauth-protected-resource/mcp`, RFC 9728 §3.1, A05).
    pub fn metadata_url(&self) -> String {
        format!(
            "{}{}",
            self.origin(),
            metadata_path(self.path().trim_end_matches('/'))
        )
    }

    /// The default audience: the resource URL itself (D06).
    pub fn audience(&self) -> Audience {
        Audience::from_url(&self.0)
    }
}

impl fmt::Display for ResourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The resource as described to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The canonical URL.
    pub url: ResourceUrl,
    /// Human-readable name in the RFC 9728 document (A14).
    pub name: String,
    /// Other spellings of the same URL that clients may use and see as the resource: the loopback
    /// names of a local server whose URL was derived rather than configured (A04, A21). Never
    /// taken from a request: a request only picks one of these.
    pub aliases: Vec<ResourceUrl>,
}

impl Resource {
    /// `url` named "MCP server", without aliases.
    pub fn new(url: ResourceUrl) -> Self {
        Self {
            url,
            name: "MCP server".into(),
            aliases: Vec::new(),
        }
    }

    /// A local server's resource: `http://localhost:{port}{path}` and, as aliases, the same URL
    /// with each of `loopback_hosts` (`127.0.0.1`, `[::1]`).
    pub fn local(port: u16, loopback_hosts: &[&str]) -> Self {
        let url = ResourceUrl::local(port);
        let aliases = loopback_hosts
            .iter()
            .filter_map(|host| ResourceUrl::parse(&format!("http://{host}:{port}/mcp")).ok())
            .filter(|alias| *alias != url)
            .collect();
        Self {
            url,
            name: "MCP server".into(),
            aliases,
        }
    }

    /// Every spelling, canonical first.
    pub fn spellings(&self) -> impl Iterator<Item = &ResourceUrl> {
        std::iter::once(&self.url).chain(&self.aliases)
    }

    /// The spelling a request addressed, by its `Host`: one of the aliases when the host names
    /// one, else the canonical URL.
    pub(crate) fn spelled_for(&self, host: Option<&str>) -> &ResourceUrl {
        host.and_then(|host| {
            self.aliases
                .iter()
                .find(|alias| alias.authority().eq_ignore_ascii_case(host))
        })
        .unwrap_or(&self.url)
    }
}

/// `/.well-known/oauth-protected-resource` followed by the resource's path.
pub(crate) fn metadata_path(resource_path: &str) -> String {
    format!("/.well-known/oauth-protected-resource{resource_path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A03, A16, T07, D07: the resource URL is https off loopback, canonical (lowercase host,
    /// no trailing slash, query or fragment).
    #[test]
    fn resource_urls_must_be_canonical_and_tls_outside_loopback() {
        for bad in [
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "https://mcp.example.com/mcp#x",
            "https://mcp.example.com/mcp?a=1",
        ] {
            assert!(ResourceUrl::parse(bad).is_err(), "{bad}");
        }
        let url = ResourceUrl::parse("https://MCP.example.com/mcp").unwrap();
        assert_eq!(url.as_str(), "https://mcp.example.com/mcp");
        assert_eq!(url.authority(), "mcp.example.com");
        assert_eq!(url.origin(), "https://mcp.example.com");
    }

    /// A05: the metadata URL inserts the well-known segment before the resource's path.
    #[test]
    fn the_metadata_url_inserts_the_well_known_segment() {
        let local = ResourceUrl::local(8000);
        assert_eq!(local.as_str(), "http://localhost:8000/mcp");
        assert_eq!(
            local.metadata_url(),
            "http://localhost:8000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(local.authority(), "localhost:8000");
    }
}
