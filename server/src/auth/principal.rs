//! Who called: the verified claims of the caller's token, as tools and the session binding see
//! them. A `Principal` exists only after validation succeeded, so holding one is the proof.

use std::sync::Arc;

use super::claims::VerifiedClaims;

/// An authenticated caller.
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

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scopes.iter().any(|granted| granted == scope)
    }
}
