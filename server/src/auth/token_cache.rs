//! The verified-token cache: a JWT whose signature and claims passed is remembered, so the same
//! token on the next request costs a hash and a lookup instead of a signature check (RS256:
//! ~17 µs).
//!
//! - Keyed by a SHA-256 of the whole token; the token itself is never kept.
//! - Bounded in memory (a weigher estimates each entry's bytes) and therefore in entries.
//! - An entry is used only until the token's `exp` plus the leeway and never longer than the
//!   configured maximum age, on the server's clock.
//! - An entry names the key that verified it: once that key is no longer published (rotated out,
//!   withdrawn, revoked) the entry is dropped at the next use, before anything is served.
//! - Only successes are cached; a refusal is always judged afresh. Configuration changes need a
//!   restart, which starts with an empty cache, so none can be bypassed through it.

use std::sync::Arc;
use std::time::Duration;

use super::claims::VerifiedClaims;
use super::key_set::{KeyFingerprint, KeySet};
use crate::digest::sha256;

/// How much the cache may hold and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCacheSettings {
    /// Estimated bytes all entries may take together; 0 turns the cache off.
    pub max_bytes: u64,
    /// The longest an entry is used, whatever the token's `exp`.
    pub max_age: Duration,
}

impl Default for TokenCacheSettings {
    /// 32 MiB (about 17,000 typical tokens) for at most 5 minutes.
    fn default() -> Self {
        Self {
            max_bytes: 32 * 1024 * 1024,
            max_age: Duration::from_secs(300),
        }
    }
}

/// A remembered verification.
#[derive(Debug)]
struct Entry {
    claims: Arc<VerifiedClaims>,
    /// Which trusted issuer's verifier accepted it (index in the verifier list).
    issuer: usize,
    /// The key whose signature verified it.
    key: KeyFingerprint,
    /// Used while `now < use_until` (server clock, Unix seconds).
    use_until: i64,
    /// Estimated bytes, for the bound.
    weight: u32,
}

/// A SHA-256 of a token: what the cache (and the introspection cache) key on.
pub(crate) type TokenHash = [u8; 32];

/// Hashes a token.
pub(crate) fn token_hash(token: &str) -> TokenHash {
    sha256(token.as_bytes())
}

/// The cache.
pub(crate) struct TokenCache {
    entries: Option<moka::sync::Cache<TokenHash, Arc<Entry>>>,
    max_age: i64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field(
                "entries",
                &self.entries.as_ref().map(moka::sync::Cache::entry_count),
            )
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl TokenCache {
    pub(crate) fn new(settings: TokenCacheSettings) -> Self {
        let entries = (settings.max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.max_bytes)
                .weigher(|_: &TokenHash, entry: &Arc<Entry>| entry.weight)
                // Memory is returned even for tokens never seen again.
                .time_to_live(settings.max_age.max(Duration::from_secs(1)))
                .build()
        });
        Self {
            entries,
            max_age: i64::try_from(settings.max_age.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// The verification remembered for `hash`, if any; [`TokenCache::still_holds`] decides
    /// whether it may be used.
    pub(crate) fn lookup(&self, hash: &TokenHash) -> Option<Cached> {
        self.entries.as_ref()?.get(hash).map(Cached)
    }

    /// Whether `cached` may be used at `now` with `keys`, the current keys of its issuer: not
    /// past its time, and its key still published. An entry that no longer holds is dropped.
    pub(crate) fn still_holds(
        &self,
        hash: &TokenHash,
        cached: &Cached,
        now: i64,
        keys: &KeySet,
    ) -> bool {
        let holds = now < cached.0.use_until && keys.publishes(cached.0.key);
        if !holds && let Some(entries) = &self.entries {
            entries.invalidate(hash);
        }
        holds
    }

    /// Remembers a verification made at `now`, usable until `exp + leeway` and at most the
    /// maximum age.
    pub(crate) fn insert(
        &self,
        hash: TokenHash,
        claims: Arc<VerifiedClaims>,
        issuer: usize,
        key: KeyFingerprint,
        now: i64,
        leeway: i64,
    ) {
        let Some(entries) = &self.entries else {
            return;
        };
        let Some(exp) = claims.expires_at else {
            return;
        };
        // The validator accepts while `now <= exp + leeway`.
        let use_until = exp
            .saturating_add(leeway)
            .saturating_add(1)
            .min(now.saturating_add(self.max_age));
        if use_until <= now {
            return;
        }
        let weight = weight(&claims);
        entries.insert(
            hash,
            Arc::new(Entry {
                claims,
                issuer,
                key,
                use_until,
                weight,
            }),
        );
    }

    /// Entries held now (approximate: moka applies evictions in batches).
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.entries.as_ref().map_or(0, |entries| {
            entries.run_pending_tasks();
            entries.entry_count()
        })
    }
}

/// A remembered verification.
#[derive(Debug, Clone)]
pub(crate) struct Cached(Arc<Entry>);

impl Cached {
    /// The verified claims.
    pub(crate) fn claims(&self) -> &Arc<VerifiedClaims> {
        &self.0.claims
    }

    /// Which issuer's verifier accepted the token.
    pub(crate) fn issuer(&self) -> usize {
        self.0.issuer
    }
}

/// What an entry costs beyond its strings: moka's node and its queues, the `Arc`s, the key and
/// the allocator's overhead. Calibrated with `bench/load.sh` (100,000 distinct tokens: the
/// process grew about 1.7 KB per entry held).
const ENTRY_OVERHEAD: usize = 1_536;

/// The bytes an entry holds, roughly: the strings of its claims and the fixed overhead.
fn weight(claims: &VerifiedClaims) -> u32 {
    let strings = claims.issuer.len()
        + claims.subject.len()
        + claims.audience.to_string().len()
        + claims.token_id.as_ref().map_or(0, String::len)
        + claims.client_id.as_ref().map_or(0, String::len)
        + claims.uid.as_ref().map_or(0, String::len)
        + claims.scopes.iter().map(|s| s.len() + 24).sum::<usize>();
    u32::try_from(strings + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn claims(exp: i64) -> Arc<VerifiedClaims> {
        Arc::new(VerifiedClaims {
            issuer: "https://as.example".into(),
            subject: "alice".into(),
            audience: Value::String("https://mcp.example/mcp".into()),
            expires_at: Some(exp),
            issued_at: None,
            token_id: None,
            client_id: None,
            scopes: vec!["mcp:tools".into()],
            uid: None,
            dpop_jkt: None,
        })
    }

    fn keys_with(json: &str) -> Arc<KeySet> {
        Arc::new(KeySet::from_jwks(&serde_json::from_str(json).unwrap()).unwrap())
    }

    const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;

    /// An entry is used until `exp + leeway` and the maximum age, whichever comes first, and only
    /// while the key that verified it is published.
    #[test]
    fn entries_expire_with_the_token_the_age_bound_and_the_key() {
        let cache = TokenCache::new(TokenCacheSettings {
            max_bytes: 1 << 20,
            max_age: Duration::from_secs(100),
        });
        let keys = keys_with(JWKS);
        let key = keys.fingerprint_of_first();
        let now = 1_000;
        let hash = token_hash("a.b.c");
        cache.insert(hash, claims(now + 10), 0, key, now, 5);
        let found = |at: i64, keys: &Arc<KeySet>| {
            cache
                .lookup(&hash)
                .is_some_and(|cached| cache.still_holds(&hash, &cached, at, keys))
        };
        assert!(found(now, &keys));
        assert!(found(now + 15, &keys), "exp + leeway");
        assert!(!found(now + 16, &keys), "past exp + leeway");
        cache.insert(hash, claims(now + 1_000), 0, key, now, 5);
        assert!(found(now + 99, &keys));
        assert!(!found(now + 100, &keys), "the maximum age");
        cache.insert(hash, claims(now + 1_000), 0, key, now, 5);
        let rotated = keys_with(r#"{"keys":[]}"#);
        assert!(!found(now + 1, &rotated), "the key left the JWKS");
        assert!(!found(now + 1, &keys), "and the entry is gone");
    }

    /// The cache holds at most its byte bound, however many tokens pass.
    #[test]
    fn the_cache_never_exceeds_its_bound() {
        let cache = TokenCache::new(TokenCacheSettings {
            max_bytes: 64 * 1024,
            max_age: Duration::from_secs(100),
        });
        let key = keys_with(JWKS).fingerprint_of_first();
        for i in 0..10_000 {
            cache.insert(
                token_hash(&format!("token-{i}")),
                claims(10_000),
                0,
                key,
                1_000,
                0,
            );
        }
        let per_entry = u64::from(weight(&claims(10_000)));
        assert!(
            cache.len() <= 64 * 1024 / per_entry + 1,
            "{} entries",
            cache.len()
        );
        assert!(cache.len() > 0);
    }

    /// A token without `exp` (never from the JWT validator) or already past it is not kept.
    #[test]
    fn nothing_unusable_is_kept() {
        let cache = TokenCache::new(TokenCacheSettings::default());
        let key = keys_with(JWKS).fingerprint_of_first();
        cache.insert(token_hash("x"), claims(999), 0, key, 1_000, 0);
        assert_eq!(cache.len(), 0);
        let off = TokenCache::new(TokenCacheSettings {
            max_bytes: 0,
            ..TokenCacheSettings::default()
        });
        off.insert(token_hash("x"), claims(5_000), 0, key, 1_000, 0);
        assert!(off.lookup(&token_hash("x")).is_none());
    }
}
