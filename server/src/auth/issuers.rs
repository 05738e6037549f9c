//! The authorization servers this server trusts, each with its own rules, discovery, keys and
//! remote verification. A JWT is routed to one by its `iss`, compared exactly, before any key is
//! chosen, so an untrusted issuer costs no fetch (checklist P09); a token that is not a JWT goes
//! to the one issuer that verifies tokens remotely, and to no other: a token is never shown to an
//! authorization server that did not issue it.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use super::authorization_server::{AuthorizationServer, AuthorizationServerSettings, Issuer};
use super::keys::KeySource;
use super::policy::ValidationPolicy;
use super::remote::{RemoteVerification, RemoteVerifier};
use super::token::looks_like_jwt;

/// One trusted authorization server and the rules its tokens are judged by.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// What its tokens must satisfy (the issuer, audiences, algorithms...).
    pub validation: ValidationPolicy,
    /// Where its metadata and keys are, when not discovered.
    pub authorization_server: AuthorizationServerSettings,
    /// How tokens it issues are verified at its endpoints, if at all.
    pub remote: Option<RemoteVerification>,
}

impl TrustedIssuer {
    /// An issuer whose tokens are JWTs verified here, found by discovery.
    pub fn new(validation: ValidationPolicy) -> Self {
        Self {
            validation,
            authorization_server: AuthorizationServerSettings::default(),
            remote: None,
        }
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> &Issuer {
        self.validation.issuer()
    }

    /// Whether some of its tokens are verified with its published keys (so they must be loaded).
    pub fn verifies_jwts_locally(&self) -> bool {
        match &self.remote {
            None => true,
            Some(remote) => {
                !remote.covers_jwts() && !matches!(remote, RemoteVerification::TokenInfo(_))
            }
        }
    }
}

/// The trusted issuers: never empty, no issuer twice, and at most one that judges opaque tokens.
#[derive(Debug, Clone)]
pub struct TrustedIssuers {
    first: TrustedIssuer,
    more: Vec<TrustedIssuer>,
}

/// Why an issuer cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrustError {
    /// The same issuer twice: which rules would apply?
    #[error("{0} is listed twice")]
    Duplicate(String),
    /// A second issuer that verifies opaque tokens remotely: an opaque token names no issuer, and
    /// must not be shown to an authorization server that may not have issued it.
    #[error("{0}: only one issuer may verify opaque tokens remotely")]
    SecondRemote(String),
}

impl TrustedIssuers {
    /// Trusts `first` (also the issuer `/.well-known/oauth-authorization-server` forwards to).
    pub fn new(first: TrustedIssuer) -> Self {
        Self {
            first,
            more: Vec::new(),
        }
    }

    /// Trusts one more issuer.
    ///
    /// # Errors
    /// [`TrustError`] for an issuer already trusted, or a second remote verifier.
    pub fn trust(&mut self, issuer: TrustedIssuer) -> Result<(), TrustError> {
        if self.iter().any(|known| known.issuer() == issuer.issuer()) {
            return Err(TrustError::Duplicate(issuer.issuer().to_string()));
        }
        if issuer.remote.is_some() && self.iter().any(|known| known.remote.is_some()) {
            return Err(TrustError::SecondRemote(issuer.issuer().to_string()));
        }
        self.more.push(issuer);
        Ok(())
    }

    /// The first issuer.
    pub fn primary(&self) -> &TrustedIssuer {
        &self.first
    }

    /// The first issuer, to change its rules.
    pub fn primary_mut(&mut self) -> &mut TrustedIssuer {
        &mut self.first
    }

    /// Every issuer, the first first.
    pub fn iter(&self) -> impl Iterator<Item = &TrustedIssuer> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// Every issuer, to change their rules.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut TrustedIssuer> {
        std::iter::once(&mut self.first).chain(&mut self.more)
    }
}

/// One trusted issuer at run time.
#[derive(Debug)]
pub(crate) struct IssuerVerifier {
    pub(crate) policy: ValidationPolicy,
    pub(crate) authorization_server: Arc<AuthorizationServer>,
    /// Its keys, when some of its tokens are JWTs verified here.
    pub(crate) keys: Option<Arc<KeySource>>,
    pub(crate) remote: Option<RemoteVerifier>,
}

/// Where a token goes.
pub(crate) enum Route<'a> {
    /// A JWT, verified here with the keys of the issuer at this index.
    Local(usize, &'a IssuerVerifier),
    /// Judged at the issuer's endpoint.
    Remote(&'a RemoteVerifier),
}

/// Every trusted issuer at run time, and the routing.
#[derive(Debug)]
pub(crate) struct Verifiers {
    /// Never empty; the first is the primary issuer.
    all: Vec<IssuerVerifier>,
}

impl Verifiers {
    pub(crate) fn new(first: IssuerVerifier, more: Vec<IssuerVerifier>) -> Self {
        let mut all = vec![first];
        all.extend(more);
        Self { all }
    }

    /// Every issuer.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &IssuerVerifier> {
        self.all.iter()
    }

    /// The first issuer.
    pub(crate) fn primary(&self) -> &IssuerVerifier {
        // `all` is never empty (see `new`).
        &self.all[0]
    }

    /// Where `token` goes. A JWT goes to the issuer its `iss` names; with one trusted issuer, or an
    /// `iss` that names none, to the first, whose validator refuses a foreign `iss` before it
    /// looks at a key. Anything else goes to the remote verifier, if there is one.
    pub(crate) fn route(&self, token: &str) -> Route<'_> {
        let jwt = looks_like_jwt(token);
        let chosen = if !jwt {
            self.all.iter().position(|v| v.remote.is_some())
        } else if self.all.len() > 1 {
            claimed_issuer(token).and_then(|iss| {
                self.all
                    .iter()
                    .position(|v| v.policy.issuer().as_str() == iss)
            })
        } else {
            None
        };
        // `all` is never empty (see `new`).
        let index = chosen.unwrap_or(0);
        let verifier = &self.all[index];
        match &verifier.remote {
            Some(remote) if !jwt || remote.covers_jwts() => Route::Remote(remote),
            _ => Route::Local(index, verifier),
        }
    }

    /// The key source of the issuer at `index`, if it verifies JWTs here.
    pub(crate) fn keys_of(&self, index: usize) -> Option<&Arc<KeySource>> {
        self.all.get(index)?.keys.as_ref()
    }
}

/// The `iss` a JWT claims, unverified: only for choosing which issuer's rules judge it.
fn claimed_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Claimed {
        iss: String,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Claimed>(&bytes)
        .ok()
        .map(|c| c.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P09: routing reads the shape and the claimed issuer only.
    #[test]
    fn jwts_are_told_from_opaque_tokens_and_their_issuer_is_read() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://b.example","sub":"x"}"#);
        let jwt = format!("{header}.{payload}.c2ln");
        assert!(looks_like_jwt(&jwt));
        assert_eq!(claimed_issuer(&jwt).as_deref(), Some("https://b.example"));
        for opaque in [
            "ya29.a0AfH6SMB",
            "2YotnFZFEjr1zCsicMWpAA",
            "a.b.c",
            "a.b.c.d.e",
        ] {
            assert!(!looks_like_jwt(opaque), "{opaque}");
        }
    }
}
