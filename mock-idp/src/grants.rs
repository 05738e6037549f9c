//! What one issuer has granted, or is about to: authorization requests waiting for the user to sign
//! in, authorization codes (60 s, bound to the client, the redirect URI and the PKCE challenge,
//! spent by the first redemption that proves all three), refresh tokens (rotated on every use; a reused one revokes its whole family, OAuth
//! 2.1 §4.3.1), and a record of every access token it issued (for userinfo, introspection and
//! revocation). Bounded: expired entries go first, then the soonest to expire.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What an authorization code stands for.
#[derive(Clone, Debug)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// The S256 `code_challenge` (RFC 7636 §4.2).
    pub(crate) code_challenge: String,
    pub(crate) username: String,
    pub(crate) scopes: Vec<String>,
    /// RFC 8707 resources: the access token's audience.
    pub(crate) resources: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) auth_time: i64,
    pub(crate) expires_at: i64,
}

/// An authorization request that passed every check and waits for the user to sign in.
#[derive(Clone, Debug)]
pub(crate) struct PendingAuthorization {
    pub(crate) client_id: String,
    pub(crate) client_name: Option<String>,
    pub(crate) redirect_uri: String,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_at: i64,
}

/// What a refresh token stands for.
#[derive(Clone, Debug)]
pub(crate) struct RefreshGrant {
    pub(crate) client_id: String,
    pub(crate) username: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) resources: Vec<String>,
    pub(crate) auth_time: i64,
    pub(crate) expires_at: i64,
    pub(crate) family: u64,
    /// The DPoP key a public client's refresh token is bound to (RFC 9449 §5): only a proof of
    /// that key may use it.
    pub(crate) dpop_jkt: Option<String>,
}

/// An issued access token, as introspection (RFC 7662) and userinfo see it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AccessRecord {
    pub(crate) subject: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) audience: Vec<String>,
    pub(crate) issued_at: i64,
    pub(crate) expires_at: i64,
    /// The DPoP key the token is bound to (`cnf.jkt`, RFC 9449 §6).
    pub(crate) dpop_jkt: Option<String>,
    family: Option<u64>,
    revoked: bool,
}

impl AccessRecord {
    pub(crate) fn new(
        subject: String,
        client_id: String,
        scopes: Vec<String>,
        audience: Vec<String>,
        (issued_at, expires_at): (i64, i64),
    ) -> Self {
        Self {
            subject,
            client_id,
            scopes,
            audience,
            issued_at,
            expires_at,
            dpop_jkt: None,
            family: None,
            revoked: false,
        }
    }

    /// The record of a token bound to the DPoP key `jkt`, if any.
    pub(crate) fn bound_to(mut self, jkt: Option<&str>) -> Self {
        self.dpop_jkt = jkt.map(str::to_owned);
        self
    }
}

/// Why a code or refresh token was refused (all of them `invalid_grant`, RFC 6749 §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrantRefusal {
    /// Unknown or expired.
    Unknown,
    /// Used before: its family is now revoked.
    Reused,
}

/// Why a code was not redeemed: the grant's own refusal, or the caller's binding check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CodeRefusal<E> {
    Grant(GrantRefusal),
    Binding(E),
}

/// The grants of one issuer.
#[derive(Debug, Default)]
pub(crate) struct Grants {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pending: HashMap<String, PendingAuthorization>,
    codes: HashMap<String, (CodeGrant, Option<u64>)>,
    refresh: HashMap<String, (RefreshGrant, bool)>,
    access: HashMap<[u8; 32], AccessRecord>,
    next_family: u64,
}

impl Grants {
    /// Holds an authorization request while the user signs in; returns its handle (the login
    /// form carries it back).
    pub(crate) fn hold(&self, request: PendingAuthorization, now: i64) -> String {
        let handle = random_token();
        let mut state = self.lock();
        prune(&mut state.pending, now, |p| p.expires_at);
        state.pending.insert(handle.clone(), request);
        handle
    }

    /// The held request, if it has not expired (it stays held until [`Grants::release`]).
    pub(crate) fn held(&self, handle: &str, now: i64) -> Option<PendingAuthorization> {
        self.lock()
            .pending
            .get(handle)
            .filter(|p| p.expires_at > now)
            .cloned()
    }

    /// Forgets a held request (the user signed in).
    pub(crate) fn release(&self, handle: &str) {
        self.lock().pending.remove(handle);
    }

    /// Stores a new authorization code for `grant`; returns the code.
    pub(crate) fn issue_code(&self, grant: CodeGrant, now: i64) -> String {
        let code = random_token();
        let mut state = self.lock();
        prune(&mut state.codes, now, |(g, _)| g.expires_at);
        state.codes.insert(code.clone(), (grant, None));
        code
    }

    /// Redeems a code: once, and only by the request it was issued for. `binding` checks the
    /// request against the grant (client, redirect URI, PKCE verifier) before anything changes.
    ///
    /// A request that fails `binding` changes nothing: the code stays redeemable. RFC 9700
    /// §4.2.4 has a code invalidated after its first use at the token endpoint; here a use is a
    /// redemption that proves itself. Someone who stole a code but lacks the PKCE verifier (RFC
    /// 9700 §2.1.1 and §4.5.3.1, RFC 7636 §4.6), or who is another client, must not be able to
    /// spend it and so deny the real client its tokens. A second redemption that does pass
    /// `binding` means the code and its verifier were replayed: it is refused and what the first
    /// issued is revoked (RFC 6749 §4.1.2, §10.5); one that fails `binding` is refused like any
    /// stranger's and revokes nothing. Failed attempts are not counted against the code: a
    /// bound low enough to matter would hand the thief the same denial of service, and guessing
    /// a verifier of RFC 7636 §4.1's length (43+ characters, 256 bits of entropy recommended,
    /// §7.1) within the code's 60 s is not feasible.
    pub(crate) fn redeem_code<E>(
        &self,
        code: &str,
        now: i64,
        binding: impl FnOnce(&CodeGrant) -> Result<(), E>,
    ) -> Result<(CodeGrant, u64), CodeRefusal<E>> {
        let mut state = self.lock();
        let family = state.next_family;
        let Some((grant, used)) = state.codes.get_mut(code) else {
            return Err(CodeRefusal::Grant(GrantRefusal::Unknown));
        };
        if used.is_none() && grant.expires_at <= now {
            return Err(CodeRefusal::Grant(GrantRefusal::Unknown));
        }
        binding(grant).map_err(CodeRefusal::Binding)?;
        match *used {
            None => {
                *used = Some(family);
                let grant = grant.clone();
                state.next_family += 1;
                Ok((grant, family))
            }
            Some(family) => {
                revoke_family(&mut state, family);
                Err(CodeRefusal::Grant(GrantRefusal::Reused))
            }
        }
    }

    /// Stores a refresh token for `grant` (of its family); returns it.
    pub(crate) fn issue_refresh(&self, grant: RefreshGrant, now: i64) -> String {
        let token = random_token();
        let mut state = self.lock();
        prune(&mut state.refresh, now, |(g, _)| g.expires_at);
        state.refresh.insert(token.clone(), (grant, false));
        token
    }

    /// Uses a refresh token once (rotation). Reusing one revokes its whole family. `binding`
    /// checks the request against an unused grant (its client, its DPoP key) first: a request
    /// that fails it changes nothing, so a thief cannot spend, and so deny, the client's token
    /// (as for codes, see [`Grants::redeem_code`]).
    pub(crate) fn use_refresh<E>(
        &self,
        token: &str,
        now: i64,
        binding: impl FnOnce(&RefreshGrant) -> Result<(), E>,
    ) -> Result<RefreshGrant, CodeRefusal<E>> {
        let mut state = self.lock();
        match state.refresh.get_mut(token) {
            Some((grant, used @ false)) if grant.expires_at > now => {
                binding(grant).map_err(CodeRefusal::Binding)?;
                *used = true;
                Ok(grant.clone())
            }
            Some((grant, true)) => {
                // Reuse is theft by someone (OAuth 2.1 §4.3.1): revoke, whoever asks.
                let family = grant.family;
                revoke_family(&mut state, family);
                Err(CodeRefusal::Grant(GrantRefusal::Reused))
            }
            _ => Err(CodeRefusal::Grant(GrantRefusal::Unknown)),
        }
    }

    /// Records an issued access token (of `family`, when it came from a code or refresh token).
    pub(crate) fn record_access(&self, token: &str, mut record: AccessRecord, family: Option<u64>) {
        record.family = family;
        let mut state = self.lock();
        let now = record.issued_at;
        prune(&mut state.access, now, |r| r.expires_at);
        state.access.insert(hash(token), record);
    }

    /// The record of an access token that is still active (issued here, not expired, not
    /// revoked).
    pub(crate) fn active_access(&self, token: &str, now: i64) -> Option<AccessRecord> {
        let state = self.lock();
        state
            .access
            .get(&hash(token))
            .filter(|r| !r.revoked && r.expires_at > now)
            .cloned()
    }

    /// RFC 7009: revokes an access or refresh token of `client_id` (and, for a refresh token, its
    /// family). Unknown tokens and other clients' tokens are ignored, as §2.2 asks.
    pub(crate) fn revoke(&self, token: &str, client_id: &str) {
        let mut state = self.lock();
        if let Some(record) = state.access.get_mut(&hash(token))
            && record.client_id == client_id
        {
            record.revoked = true;
            return;
        }
        let family = state
            .refresh
            .get(token)
            .filter(|(grant, _)| grant.client_id == client_id)
            .map(|(grant, _)| grant.family);
        if let Some(family) = family {
            revoke_family(&mut state, family);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a few map operations; a poisoned lock still holds consistent maps.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn revoke_family(state: &mut State, family: u64) {
    state.refresh.retain(|_, (grant, _)| grant.family != family);
    for record in state.access.values_mut() {
        if record.family == Some(family) {
            record.revoked = true;
        }
    }
}

/// Drops expired entries once a map is full, then the soonest to expire, so memory is bounded.
fn prune<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    now: i64,
    expires_at: impl Fn(&V) -> i64,
) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    map.retain(|_, v| expires_at(v) > now);
    while map.len() >= MAX_ENTRIES {
        let Some(first) = map
            .iter()
            .min_by_key(|(_, v)| expires_at(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&first);
    }
}

/// 256 random bits, base64url: codes, refresh tokens, opaque access tokens.
pub(crate) fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn hash(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Bounds each store of one issuer.
const MAX_ENTRIES: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn code_grant() -> CodeGrant {
        CodeGrant {
            client_id: "c".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "x".into(),
            username: "alice".into(),
            scopes: vec![],
            resources: vec![],
            nonce: None,
            auth_time: 0,
            expires_at: 100,
        }
    }

    fn bound(grant: &CodeGrant) -> Result<(), &'static str> {
        if grant.client_id == "c" {
            Ok(())
        } else {
            Err("other client")
        }
    }

    fn stranger(_: &CodeGrant) -> Result<(), &'static str> {
        Err("wrong verifier")
    }

    #[test]
    fn a_code_redeems_once_and_its_reuse_revokes_what_it_issued() {
        let grants = Grants::default();
        let code = grants.issue_code(code_grant(), 0);
        let (_, family) = grants.redeem_code(&code, 1, bound).unwrap();
        let record = AccessRecord::new("alice".into(), "c".into(), vec![], vec![], (1, 50));
        grants.record_access("at", record, Some(family));
        assert!(grants.active_access("at", 2).is_some());
        assert_eq!(
            grants.redeem_code(&code, 2, stranger).unwrap_err(),
            CodeRefusal::Binding("wrong verifier"),
        );
        assert!(
            grants.active_access("at", 2).is_some(),
            "a stranger's replay revokes nothing"
        );
        assert_eq!(
            grants.redeem_code(&code, 2, bound).unwrap_err(),
            CodeRefusal::Grant(GrantRefusal::Reused)
        );
        assert!(grants.active_access("at", 2).is_none(), "revoked");
        assert_eq!(
            grants.redeem_code("nope", 2, bound).unwrap_err(),
            CodeRefusal::Grant(GrantRefusal::Unknown)
        );
        let late = grants.issue_code(code_grant(), 0);
        assert_eq!(
            grants.redeem_code(&late, 100, bound).unwrap_err(),
            CodeRefusal::Grant(GrantRefusal::Unknown)
        );
    }

    #[test]
    fn a_failed_binding_leaves_the_code_for_its_client() {
        let grants = Grants::default();
        let code = grants.issue_code(code_grant(), 0);
        for _ in 0..3 {
            assert_eq!(
                grants.redeem_code(&code, 1, stranger).unwrap_err(),
                CodeRefusal::Binding("wrong verifier")
            );
        }
        assert!(grants.redeem_code(&code, 1, bound).is_ok());
    }

    #[test]
    fn a_reused_refresh_token_revokes_its_family() {
        let grants = Grants::default();
        let grant = RefreshGrant {
            client_id: "c".into(),
            username: "alice".into(),
            scopes: vec![],
            resources: vec![],
            auth_time: 0,
            expires_at: 100,
            family: 7,
            dpop_jkt: Some("key".into()),
        };
        let any = |_: &RefreshGrant| Ok::<(), ()>(());
        let first = grants.issue_refresh(grant.clone(), 0);
        let other_key = |g: &RefreshGrant| {
            if g.dpop_jkt.as_deref() == Some("other") {
                Ok(())
            } else {
                Err("another key")
            }
        };
        assert_eq!(
            grants.use_refresh(&first, 1, other_key).unwrap_err(),
            CodeRefusal::Binding("another key"),
        );
        grants
            .use_refresh(&first, 1, any)
            .expect("a refused stranger did not spend it");
        let second = grants.issue_refresh(grant, 1);
        assert_eq!(
            grants.use_refresh(&first, 2, any).unwrap_err(),
            CodeRefusal::Grant(GrantRefusal::Reused)
        );
        assert_eq!(
            grants.use_refresh(&second, 2, any).unwrap_err(),
            CodeRefusal::Grant(GrantRefusal::Unknown),
            "the rotated one is gone with its family"
        );
    }
}
