//! The revocations this replica honours: read from the shared log every poll interval (from the
//! beginning of the log at start, so a new replica knows the revocations still in force), and
//! checked on every request after the token itself passed, whether it came from the cache or not.
//!
//! Bounded: an entry is forgotten at its `until`, and past [`MAX_ENTRIES`] the ones that expire
//! first go. While the store cannot be read, what was read stays in force and the next poll
//! catches up from where the last one ended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Cursor, Revocation, Revoked, SharedStore};
use crate::clock::Clock;
use crate::telemetry::Metrics;

/// The most revocations held per kind.
pub(crate) const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct Entries {
    /// Token SHA-256 → until.
    tokens: HashMap<[u8; 32], i64>,
    /// (issuer, subject) → (before, until).
    subjects: HashMap<(String, String), (i64, i64)>,
    /// (issuer, jti) → until.
    token_ids: HashMap<(String, String), i64>,
}

/// The revocations in force here.
#[derive(Debug, Default)]
pub(crate) struct RevocationList {
    entries: RwLock<Entries>,
    /// Whether any entry is held: the common case, none, costs one load per request.
    any: AtomicBool,
    /// Whether the log has been read to its end once: until then this replica does not know
    /// the revocations in force, and is not ready.
    caught_up: AtomicBool,
}

impl RevocationList {
    /// Whether the log has been read to its end at least once.
    pub(crate) fn caught_up(&self) -> bool {
        self.caught_up.load(Ordering::Acquire)
    }

    /// Takes in `revocations` read from the log, forgetting what ended before `now`.
    pub(crate) fn apply(&self, revocations: Vec<Revocation>, now: i64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        for revocation in revocations.into_iter().filter(|r| r.until > now) {
            let until = revocation.until;
            match revocation.revoked {
                Revoked::Token { sha256 } => {
                    if let Some(hash) = from_hex(&sha256) {
                        entries.tokens.insert(hash, until);
                    }
                }
                Revoked::Subject {
                    issuer,
                    subject,
                    before,
                } => {
                    let entry = entries
                        .subjects
                        .entry((issuer, subject))
                        .or_insert((before, until));
                    *entry = (entry.0.max(before), entry.1.max(until));
                }
                Revoked::TokenId { issuer, jti } => {
                    entries.token_ids.insert((issuer, jti), until);
                }
            }
        }
        bound(&mut entries.tokens, now, |until| *until);
        bound(&mut entries.subjects, now, |(_, until)| *until);
        bound(&mut entries.token_ids, now, |until| *until);
        let any = !(entries.tokens.is_empty()
            && entries.subjects.is_empty()
            && entries.token_ids.is_empty());
        self.any.store(any, Ordering::Release);
    }

    /// Whether the token hashing to `token_hash`, with `claims`, is revoked.
    pub(crate) fn revokes(&self, token_hash: &[u8; 32], claims: &TokenFacts<'_>) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        if entries.tokens.contains_key(token_hash) {
            return true;
        }
        let subject = (claims.issuer.to_owned(), claims.subject.to_owned());
        if let Some((before, _)) = entries.subjects.get(&subject)
            && claims.issued_at.is_none_or(|iat| iat <= *before)
        {
            return true;
        }
        claims.token_id.is_some_and(|jti| {
            entries
                .token_ids
                .contains_key(&(claims.issuer.to_owned(), jti.to_owned()))
        })
    }
}

/// What a revocation can name in a token that passed every other check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenFacts<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) issued_at: Option<i64>,
    pub(crate) token_id: Option<&'a str>,
}

/// Drops what ended before `now`, then, past [`MAX_ENTRIES`], what ends first: loudly, since
/// those tokens are accepted again.
fn bound<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    now: i64,
    until: impl Fn(&V) -> i64,
) {
    map.retain(|_, value| until(value) > now);
    if map.len() > MAX_ENTRIES {
        tracing::error!(
            dropped = map.len() - MAX_ENTRIES,
            max = MAX_ENTRIES,
            "more revocations in force than this replica holds: those that end first are dropped"
        );
        let mut ends: Vec<(i64, K)> = map.iter().map(|(k, v)| (until(v), k.clone())).collect();
        ends.sort_unstable_by_key(|(end, _)| *end);
        for (_, key) in ends.into_iter().take(map.len() - MAX_ENTRIES) {
            map.remove(&key);
        }
    }
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads the log into `list` every `poll` until `shutdown`.
pub(crate) async fn follow(
    store: Arc<dyn SharedStore>,
    list: Arc<RevocationList>,
    poll: Duration,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let mut cursor = Cursor::default();
    let mut interval = tokio::time::interval(poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        // Catch up: a batch at a time until the log is read to its end.
        loop {
            match store.revocations_since(&cursor).await {
                Ok((revocations, next)) => {
                    metrics.shared_state("revocations", true);
                    let more = next != cursor && !revocations.is_empty();
                    list.apply(revocations, clock.now());
                    cursor = next;
                    if !more {
                        list.caught_up.store(true, Ordering::Release);
                        break;
                    }
                }
                Err(error) => {
                    metrics.shared_state("revocations", false);
                    tracing::warn!(%error, "cannot read revocations; those read so far stay in force");
                    break;
                }
            }
        }
        // Expired entries go even when nothing new arrives.
        list.apply(Vec::new(), clock.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims<'a>(subject: &'a str, iat: Option<i64>, jti: Option<&'a str>) -> TokenFacts<'a> {
        TokenFacts {
            issuer: "https://as.example",
            subject,
            issued_at: iat,
            token_id: jti,
        }
    }

    /// A token by hash, a subject's tokens issued up to a time, a token by `jti`; each is
    /// forgotten at its `until`.
    #[test]
    fn each_kind_revokes_what_it_names_until_it_ends() {
        let list = RevocationList::default();
        let hash = super::super::token_fingerprint("the-token");
        assert!(!list.revokes(&hash, &claims("alice", Some(10), None)));
        list.apply(
            vec![
                Revocation::token("the-token", 0, Duration::from_secs(100)),
                Revocation {
                    revoked: Revoked::Subject {
                        issuer: "https://as.example".into(),
                        subject: "bob".into(),
                        before: 50,
                    },
                    until: 200,
                },
                Revocation {
                    revoked: Revoked::TokenId {
                        issuer: "https://as.example".into(),
                        jti: "j-1".into(),
                    },
                    until: 300,
                },
            ],
            0,
        );
        assert!(list.revokes(&hash, &claims("alice", Some(10), None)));
        let other = super::super::token_fingerprint("another");
        assert!(list.revokes(&other, &claims("bob", Some(50), None)));
        assert!(
            list.revokes(&other, &claims("bob", None, None)),
            "no iat: revoked"
        );
        assert!(
            !list.revokes(&other, &claims("bob", Some(51), None)),
            "signed in again after"
        );
        assert!(list.revokes(&other, &claims("carol", Some(1), Some("j-1"))));
        assert!(!list.revokes(&other, &claims("carol", Some(1), Some("j-2"))));
        list.apply(Vec::new(), 150);
        assert!(
            !list.revokes(&hash, &claims("alice", Some(10), None)),
            "ended at 100"
        );
        assert!(list.revokes(&other, &claims("bob", Some(50), None)));
        list.apply(Vec::new(), 400);
        assert!(!list.any.load(Ordering::Acquire));
    }

    /// Past the bound, the entries that end first are dropped.
    #[test]
    fn the_list_is_bounded() {
        let list = RevocationList::default();
        let many = (0..MAX_ENTRIES + 10)
            .map(|n| Revocation::token(&n.to_string(), 0, Duration::from_secs(1_000 + n as u64)))
            .collect();
        list.apply(many, 0);
        let entries = list.entries.read().unwrap();
        assert_eq!(entries.tokens.len(), MAX_ENTRIES);
        assert!(
            !entries
                .tokens
                .contains_key(&super::super::token_fingerprint("0"))
        );
    }
}
