//! The DPoP proof a corpus case sends (RFC 9449 §4.2): correct unless the case bends it, one
//! member at a time, as data. A case with a `dpop` recipe sends its token as
//! `Authorization: DPoP {token}` unless its `request` says otherwise.
//!
//! ```json
//! "dpop": {"key": "p256-2", "alg": "ES256",
//!          "header": {"typ": "JWT"}, "remove_header": ["jwk"], "jwk_members": {"d": "AAAA"},
//!          "claims": {"htm": "GET"}, "remove_claims": ["ath"], "iat_in": -3600,
//!          "literal": "not.a.proof", "send": "once" | "none" | "twice" | "replayed"}
//! ```
//!
//! Every field is optional: `{}` is a correct proof by the fixture key `p256-1` (whose RFC 7638
//! thumbprint is `$PROOF_JKT`) for `POST` at the server's endpoint, with the token's `ath`, a
//! fresh `jti` and `iat` now by the server's clock.

use std::sync::atomic::{AtomicU64, Ordering};

use mock_idp::{Algorithm, KeyPair, dpop};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::fixture_key;

/// The fixture key a correct proof is signed with: tokens bound to it carry `$PROOF_JKT`.
pub const PROOF_KEY: &str = "p256-1";

/// How a case's DPoP proof is made and sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProofRecipe {
    /// The fixture key that signs (default [`PROOF_KEY`]); its public key is the header's `jwk`.
    pub key: Option<String>,
    /// The algorithm it signs with (default the key's own), whatever the header says.
    pub alg: Option<String>,
    /// Header members set (after the defaults).
    pub header: Map<String, Value>,
    /// Header members removed.
    pub remove_header: Vec<String>,
    /// Members set in the header's `jwk` (a private `d`, another `x`).
    pub jwk_members: Map<String, Value>,
    /// Claims set (after the defaults).
    pub claims: Map<String, Value>,
    /// Claims removed.
    pub remove_claims: Vec<String>,
    /// Seconds added to `iat` (now by the server's clock).
    pub iat_in: i64,
    /// This text instead of a signed proof.
    pub literal: Option<String>,
    /// How often the proof is sent.
    pub send: Sending,
}

/// How the proof goes with the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sending {
    /// One `DPoP` header.
    #[default]
    Once,
    /// No `DPoP` header at all.
    None,
    /// Two `DPoP` headers, the same proof in both.
    Twice,
    /// One header, in a request sent first (which must be accepted) and again (the case).
    Replayed,
}

impl ProofRecipe {
    /// The proof for `method` at `htu` with `access_token`, at `now` (seconds).
    ///
    /// # Panics
    /// On a recipe that cannot be built (an unknown key or algorithm): a corpus error.
    pub fn proof(&self, method: &str, htu: &str, access_token: &str, now: i64) -> String {
        if let Some(literal) = &self.literal {
            return literal.clone();
        }
        let key: KeyPair = fixture_key(self.key.as_deref().unwrap_or(PROOF_KEY));
        let alg: Algorithm = match &self.alg {
            Some(name) => name
                .parse()
                .unwrap_or_else(|_| panic!("unknown algorithm {name}")),
            None => key.family().default_algorithm(),
        };
        let mut header = dpop::header(&key);
        for (name, value) in &self.jwk_members {
            header["jwk"][name] = value.clone();
        }
        edit(&mut header, &self.header, &self.remove_header);
        let mut claims = dpop::claims(
            method,
            htu,
            access_token,
            &unique_jti(),
            now.saturating_add(self.iat_in),
        );
        edit(&mut claims, &self.claims, &self.remove_claims);
        dpop::sign(&key, alg, &header, &claims).expect("the fixture key signs")
    }
}

fn edit(object: &mut Value, set: &Map<String, Value>, remove: &[String]) {
    if let Some(members) = object.as_object_mut() {
        for (name, value) in set {
            members.insert(name.clone(), value.clone());
        }
        for name in remove {
            members.remove(name);
        }
    }
}

/// A `jti` no other proof of this process has: cases share servers, and so replay caches.
fn unique_jti() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "corpus-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
