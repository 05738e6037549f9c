//! Who called: the verified claims of the caller's token, as tools and the session binding see
//! them. A `Principal` exists only after validation succeeded, so holding one is the proof.

use std::sync::Arc;

use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};

use super::claims::VerifiedClaims;

/// An authenticated caller: who the token names, with which scopes, verified how.
///
/// In a tool, ask for it as a parameter; the server put it there after checking the token, so a
/// tool that has one knows the caller was authenticated:
///
/// ```
/// use mcp_oauth_server::Principal;
/// use rmcp::tool_router;
///
/// #[derive(Clone)]
/// struct Greeter;
///
/// #[tool_router]
/// impl Greeter {
///     /// Greets the caller by subject.
///     #[rmcp::tool(description = "Say hello to the caller")]
///     async fn hello(&self, caller: Principal) -> String {
///         format!("hello, {} of {}", caller.subject(), caller.issuer())
///     }
/// }
/// # assert!(Greeter::tool_router().has_route("hello"));
/// ```
///
/// A handler that implements `ServerHandler` by hand reads it with [`Principal::of_request`].
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    claims: Arc<VerifiedClaims>,
    verified_by: VerifiedBy,
}

/// How the token was verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifiedBy {
    /// Signature and claims checked here, with the issuer's published keys.
    Jwt,
    /// RFC 7662 introspection at the issuer.
    Introspection,
    /// Google's token-information endpoint.
    TokenInfo,
}

impl VerifiedBy {
    /// `jwt`, `introspection`, `tokeninfo`: as `get_me` reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jwt => "jwt",
            Self::Introspection => "introspection",
            Self::TokenInfo => "tokeninfo",
        }
    }
}

/// Whether a person or a service holds the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user's token: `sub` names someone other than the client.
    User,
    /// A client-credentials token: `sub` is the client itself (RFC 9068 §2.2).
    Machine,
}

impl Principal {
    pub(crate) fn new(claims: Arc<VerifiedClaims>, verified_by: VerifiedBy) -> Self {
        Self {
            claims,
            verified_by,
        }
    }

    /// How the token was verified.
    pub fn verified_by(&self) -> VerifiedBy {
        self.verified_by
    }

    /// The verified claims.
    pub fn claims(&self) -> &VerifiedClaims {
        &self.claims
    }

    /// User or machine-to-machine.
    pub fn kind(&self) -> TokenKind {
        match &self.claims.client_id {
            Some(client) if *client == self.claims.subject => TokenKind::Machine,
            _ => TokenKind::User,
        }
    }

    /// What identifies the caller across requests: issuer and subject (K04 binds sessions to it).
    pub fn identity(&self) -> (&str, &str) {
        (&self.claims.issuer, &self.claims.subject)
    }

    /// Whether the token grants `scope` itself (a configured scope hierarchy is the scope gate's
    /// business: a tool that declared its scopes runs only for callers the gate let through).
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scopes.iter().any(|granted| granted == scope)
    }

    /// The subject (`sub`): who the token was issued for.
    pub fn subject(&self) -> &str {
        &self.claims.subject
    }

    /// The issuer (`iss`): the authorization server that issued the token.
    pub fn issuer(&self) -> &str {
        &self.claims.issuer
    }

    /// The OAuth client the token was issued to, when the token says.
    pub fn client_id(&self) -> Option<&str> {
        self.claims.client_id.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.claims.scopes
    }

    /// The caller of the MCP request `context` belongs to; `None` only outside this server's
    /// checks (a handler served some other way).
    pub fn of_request(context: &RequestContext<RoleServer>) -> Option<&Self> {
        context
            .extensions
            .get::<http::request::Parts>()?
            .extensions
            .get::<Self>()
    }
}

/// A tool's `caller: Principal` parameter.
impl<C: AsRequestContext> FromContextPart<C> for Principal {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        Self::of_request(context.as_request_context())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("no authenticated caller on this request", None)
            })
    }
}
