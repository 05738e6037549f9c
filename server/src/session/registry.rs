//! Who owns which session, with the caps that keep one principal (or everyone together) from
//! exhausting memory: a principal over its own cap loses its own oldest session, never anyone
//! else's; at the global cap, new sessions are refused. Every operation is a few map updates
//! under one short lock; nothing scans all sessions.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::transport::streamable_http_server::SessionId;

/// The principal a session belongs to: issuer and subject, compared in full (never by hash, so no
/// collision can hand a session to someone else).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Owner(Arc<(String, String)>);

impl Owner {
    pub(crate) fn new(issuer: &str, subject: &str) -> Self {
        Self(Arc::new((issuer.to_owned(), subject.to_owned())))
    }

    /// Whether this is the principal of `issuer` and `subject` (no allocation: asked on every
    /// request that names a session).
    pub(crate) fn is(&self, issuer: &str, subject: &str) -> bool {
        self.0.0 == issuer && self.0.1 == subject
    }
}

/// Why a new session cannot be opened now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtCapacity;

/// Session id → owner, and owner → sessions (oldest first).
#[derive(Debug)]
pub(crate) struct SessionRegistry {
    max_per_principal: NonZeroUsize,
    max_total: NonZeroUsize,
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    owners: HashMap<SessionId, Owner>,
    by_owner: HashMap<Owner, VecDeque<SessionId>>,
    /// Initializations under way, counted against the global cap until they bind or fail.
    reserved: usize,
}

impl SessionRegistry {
    pub(crate) fn new(max_per_principal: NonZeroUsize, max_total: NonZeroUsize) -> Self {
        Self {
            max_per_principal,
            max_total,
            inner: Mutex::new(Registry::default()),
        }
    }

    /// The owner of `session`, if it is bound.
    pub(crate) fn owner(&self, session: &str) -> Option<Owner> {
        self.lock().owners.get(session).cloned()
    }

    /// How many sessions are bound.
    pub(crate) fn len(&self) -> usize {
        self.lock().owners.len()
    }

    /// Reserves room for one more session of `owner`. At the global cap this fails, unless the
    /// owner is at its own cap: its new session then replaces its oldest, so the total does not
    /// grow. Release the reservation with [`SessionRegistry::bind`] or
    /// [`SessionRegistry::release`].
    pub(crate) fn reserve(&self, owner: &Owner) -> Result<(), AtCapacity> {
        let mut registry = self.lock();
        let own = registry.by_owner.get(owner).map_or(0, VecDeque::len);
        let total = registry.owners.len() + registry.reserved;
        if total >= self.max_total.get() && own < self.max_per_principal.get() {
            return Err(AtCapacity);
        }
        registry.reserved += 1;
        Ok(())
    }

    /// Gives back a reservation whose initialization failed.
    pub(crate) fn release(&self) {
        let mut registry = self.lock();
        registry.reserved = registry.reserved.saturating_sub(1);
    }

    /// Binds a new session to `owner` (consuming a reservation) and returns the owner's sessions
    /// that now exceed its cap, oldest first: the caller ends them.
    pub(crate) fn bind(&self, session: SessionId, owner: Owner) -> Vec<SessionId> {
        let mut registry = self.lock();
        registry.reserved = registry.reserved.saturating_sub(1);
        if registry.owners.contains_key(&session) {
            return Vec::new();
        }
        registry.owners.insert(Arc::clone(&session), owner.clone());
        let sessions = registry.by_owner.entry(owner).or_default();
        sessions.push_back(session);
        let mut evicted = Vec::new();
        while sessions.len() > self.max_per_principal.get() {
            if let Some(oldest) = sessions.pop_front() {
                evicted.push(oldest);
            }
        }
        for session in &evicted {
            registry.owners.remove(session);
        }
        evicted
    }

    /// Forgets a session (ended by DELETE, idleness, eviction or shutdown).
    pub(crate) fn unbind(&self, session: &str) {
        let mut registry = self.lock();
        let Some(owner) = registry.owners.remove(session) else {
            return;
        };
        if let Some(sessions) = registry.by_owner.get_mut(&owner) {
            // At most `max_per_principal` entries: a short scan of one owner's list.
            sessions.retain(|s| &**s != session);
            if sessions.is_empty() {
                registry.by_owner.remove(&owner);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Each update is a few map operations with no await; a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(per_principal: usize, total: usize) -> SessionRegistry {
        SessionRegistry::new(
            NonZeroUsize::new(per_principal).unwrap(),
            NonZeroUsize::new(total).unwrap(),
        )
    }

    fn id(text: &str) -> SessionId {
        text.into()
    }

    /// R02: one more session ends the principal's own oldest, never another principal's.
    #[test]
    fn a_principal_over_its_cap_loses_its_own_oldest_session() {
        let registry = registry(2, 100);
        let (alice, bob) = (Owner::new("i", "alice"), Owner::new("i", "bob"));
        for (session, owner) in [("b1", &bob), ("a1", &alice), ("a2", &alice)] {
            registry.reserve(owner).unwrap();
            assert!(registry.bind(id(session), owner.clone()).is_empty());
        }
        registry.reserve(&alice).unwrap();
        assert_eq!(registry.bind(id("a3"), alice.clone()), vec![id("a1")]);
        assert_eq!(registry.owner("a1"), None);
        assert_eq!(registry.owner("b1"), Some(bob));
        assert_eq!(registry.owner("a3"), Some(alice));
        assert_eq!(registry.len(), 3);
    }

    /// R03: at the global cap new sessions are refused, except a principal replacing its own.
    #[test]
    fn at_the_global_cap_new_sessions_are_refused() {
        let registry = registry(1, 2);
        let (alice, bob, carol) = (
            Owner::new("i", "alice"),
            Owner::new("i", "bob"),
            Owner::new("i", "carol"),
        );
        registry.reserve(&alice).unwrap();
        registry.reserve(&bob).unwrap();
        assert_eq!(
            registry.reserve(&carol),
            Err(AtCapacity),
            "reservations count"
        );
        registry.bind(id("a"), alice.clone());
        registry.release();
        registry.reserve(&carol).unwrap();
        registry.bind(id("c"), carol.clone());
        assert_eq!(registry.reserve(&bob), Err(AtCapacity));
        registry.reserve(&alice).unwrap();
        assert_eq!(registry.bind(id("a2"), alice), vec![id("a")]);
        registry.unbind("c");
        registry.reserve(&bob).unwrap();
    }
}
