//! Who owns which session, with the caps that keep one principal (or everyone together) from
//! exhausting memory: a principal over its own cap loses its own longest-idle session, never
//! anyone else's. At the global cap room is made fairly: the principal holding the most sessions
//! loses its longest-idle one, as long as it holds at least two more than the newcomer would
//! (its sessions bound and being opened both count, so the move narrows the gap); only when every
//! principal holds about the same number is a new session refused. So locking newcomers out takes
//! as many identities as the cap has sessions, each holding one, not the cap divided by the
//! per-principal cap. Room is made when the new session exists, never for an `initialize` that
//! fails. Every operation is a few map updates under one short lock; nothing scans all sessions
//! (finding whom to evict scans the largest holders only, and only when someone will be).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
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

/// Session id → owner, owner → sessions (longest-idle first), and owners by session count.
#[derive(Debug)]
pub(crate) struct SessionRegistry {
    max_per_principal: NonZeroUsize,
    max_total: NonZeroUsize,
    inner: Mutex<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    owners: HashMap<SessionId, Owner>,
    /// Each owner's sessions with when each was last used, least recently used first.
    by_owner: HashMap<Owner, VecDeque<(SessionId, u64)>>,
    /// The number the next use of a session gets: it only grows, so it orders uses without the
    /// ties a clock would have.
    uses: u64,
    /// Owners by the number of sessions they hold, so the largest holder is found without a scan.
    holders: BTreeMap<usize, HashSet<Owner>>,
    /// Initializations under way, counted against the global cap until they bind or fail.
    reserved: usize,
    /// The same, per owner: a principal's sessions being opened count as its own.
    reserved_by: HashMap<Owner, usize>,
}

impl SessionRegistry {
    pub(crate) fn new(max_per_principal: NonZeroUsize, max_total: NonZeroUsize) -> Self {
        Self {
            max_per_principal,
            max_total,
            inner: Mutex::new(Registry::default()),
        }
    }

    /// Whether `session` is bound to the principal of `issuer` and `subject`; if so it counts as
    /// used now (it becomes its owner's most recently used).
    pub(crate) fn use_session(&self, session: &str, issuer: &str, subject: &str) -> bool {
        let mut guard = self.lock();
        let registry = &mut *guard;
        let Some(owner) = registry
            .owners
            .get(session)
            .filter(|owner| owner.is(issuer, subject))
            .cloned()
        else {
            return false;
        };
        let now = registry.uses;
        registry.uses += 1;
        if let Some(sessions) = registry.by_owner.get_mut(&owner) {
            // At most `max_per_principal` entries: a short scan of one owner's list.
            if let Some(at) = sessions.iter().position(|(s, _)| &**s == session)
                && let Some((used, _)) = sessions.remove(at)
            {
                sessions.push_back((used, now));
            }
        }
        true
    }

    /// How many sessions are bound.
    pub(crate) fn len(&self) -> usize {
        self.lock().owners.len()
    }

    /// Reserves room for one more session of `owner`. Room is there under the global cap, when
    /// the owner is at its own cap (its new session then replaces its longest-idle one), or when
    /// the largest holder holds at least two more than the owner would (it gives up its
    /// longest-idle session at [`SessionRegistry::bind`]); otherwise this fails. Give the
    /// reservation back with [`SessionRegistry::bind`] or [`SessionRegistry::release`].
    pub(crate) fn reserve(&self, owner: &Owner) -> Result<(), AtCapacity> {
        let mut registry = self.lock();
        let own = registry.count(owner) + registry.reserved_by.get(owner).copied().unwrap_or(0);
        let total = registry.owners.len() + registry.reserved;
        if total >= self.max_total.get()
            && own < self.max_per_principal.get()
            && registry.largest_count() < own + 2
        {
            return Err(AtCapacity);
        }
        registry.reserved += 1;
        *registry.reserved_by.entry(owner.clone()).or_default() += 1;
        Ok(())
    }

    /// Gives back `owner`'s reservation whose initialization failed.
    pub(crate) fn release(&self, owner: &Owner) {
        self.lock().unreserve(owner);
    }

    /// Binds a new session to `owner` (consuming its reservation) and returns the sessions to
    /// end, longest-idle first: the owner's own over its cap, and, at the global cap, the
    /// largest holder's to make room (the caller ends them).
    pub(crate) fn bind(&self, session: SessionId, owner: Owner) -> Vec<SessionId> {
        let mut registry = self.lock();
        registry.unreserve(&owner);
        if registry.owners.contains_key(&session) {
            return Vec::new();
        }
        let before = registry.count(&owner);
        registry.owners.insert(Arc::clone(&session), owner.clone());
        let now = registry.uses;
        registry.uses += 1;
        registry
            .by_owner
            .entry(owner.clone())
            .or_default()
            .push_back((session, now));
        registry.recount(&owner, before);
        let mut evicted = Vec::new();
        while registry.count(&owner) > self.max_per_principal.get() {
            match registry.take_longest_idle(&owner) {
                Some(oldest) => evicted.push(oldest),
                None => break,
            }
        }
        // Over the global cap: the room `reserve` saw. Never anyone's only session; should the
        // holders have changed since, the excess is bounded by the reservations in flight and
        // goes as sessions end.
        while registry.owners.len() > self.max_total.get() {
            let Some(victim) = registry.largest_holder().filter(|(_, held)| *held >= 2) else {
                break;
            };
            match registry.take_longest_idle(&victim.0) {
                Some(idlest) => evicted.push(idlest),
                None => break,
            }
        }
        evicted
    }

    /// Forgets a session (ended by DELETE, idleness, eviction or shutdown).
    pub(crate) fn unbind(&self, session: &str) {
        let mut registry = self.lock();
        let Some(owner) = registry.owners.remove(session) else {
            return;
        };
        let before = registry.count(&owner);
        if let Some(sessions) = registry.by_owner.get_mut(&owner) {
            sessions.retain(|(s, _)| &**s != session);
        }
        registry.recount(&owner, before);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // Each update is a few map operations with no await; a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Registry {
    fn count(&self, owner: &Owner) -> usize {
        self.by_owner.get(owner).map_or(0, VecDeque::len)
    }

    /// How many sessions the largest holder holds (no scan).
    fn largest_count(&self) -> usize {
        self.holders.last_key_value().map_or(0, |(held, _)| *held)
    }

    fn unreserve(&mut self, owner: &Owner) {
        self.reserved = self.reserved.saturating_sub(1);
        if let Some(count) = self.reserved_by.get_mut(owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.reserved_by.remove(owner);
            }
        }
    }

    /// The owner holding the most sessions, with how many it holds; among equals, the one whose
    /// longest-idle session has been idle longest. Scans only the largest holders, and only when
    /// the global cap is reached.
    fn largest_holder(&self) -> Option<(Owner, usize)> {
        let (held, owners) = self.holders.last_key_value()?;
        let idlest = owners.iter().min_by_key(|owner| {
            self.by_owner
                .get(*owner)
                .and_then(VecDeque::front)
                .map_or(u64::MAX, |(_, used)| *used)
        })?;
        Some((idlest.clone(), *held))
    }

    /// Ends `owner`'s least recently used session here, returning it.
    fn take_longest_idle(&mut self, owner: &Owner) -> Option<SessionId> {
        let before = self.count(owner);
        let (session, _) = self.by_owner.get_mut(owner)?.pop_front()?;
        self.owners.remove(&session);
        self.recount(owner, before);
        Some(session)
    }

    /// Moves `owner` in the count index after its sessions changed from `before`.
    fn recount(&mut self, owner: &Owner, before: usize) {
        let now = self.count(owner);
        if now == before {
            return;
        }
        if let Some(owners) = self.holders.get_mut(&before) {
            owners.remove(owner);
            if owners.is_empty() {
                self.holders.remove(&before);
            }
        }
        if now == 0 {
            self.by_owner.remove(owner);
        } else {
            self.holders.entry(now).or_default().insert(owner.clone());
        }
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
        assert!(!registry.use_session("a1", "i", "alice"));
        assert!(registry.use_session("b1", "i", "bob"));
        assert!(!registry.use_session("b1", "i", "alice"), "not alice's");
        assert!(registry.use_session("a3", "i", "alice"));
        assert_eq!(registry.len(), 3);
    }

    /// R03: at the global cap a newcomer gets the longest-idle session of the largest holder,
    /// while that holder has at least two more than the newcomer would; never a session of its
    /// own kind's equal share.
    #[test]
    fn at_the_global_cap_the_largest_holder_makes_room_fairly() {
        let registry = registry(3, 5);
        let (crowd1, crowd2, newcomer) = (
            Owner::new("i", "crowd1"),
            Owner::new("i", "crowd2"),
            Owner::new("i", "newcomer"),
        );
        for (session, owner) in [
            ("c1-a", &crowd1),
            ("c1-b", &crowd1),
            ("c1-c", &crowd1),
            ("c2-a", &crowd2),
            ("c2-b", &crowd2),
        ] {
            assert_eq!(registry.reserve(owner), Ok(()));
            assert!(registry.bind(id(session), owner.clone()).is_empty());
        }
        // crowd1's first session was used since: its longest-idle is now c1-b.
        assert!(registry.use_session("c1-a", "i", "crowd1"));
        assert_eq!(registry.reserve(&newcomer), Ok(()));
        // Room is made only once the new session exists.
        assert_eq!(registry.len(), 5);
        assert_eq!(registry.bind(id("n-a"), newcomer.clone()), vec![id("c1-b")]);
        assert!(!registry.use_session("c1-b", "i", "crowd1"));
        assert_eq!(registry.len(), 5);
        // Now 2, 2, 1: a second session for the newcomer would only move the imbalance.
        assert_eq!(registry.reserve(&newcomer), Err(AtCapacity));
        // A principal with none still gets one (2 - 0 >= 2), but its sessions being opened
        // count: a second one in flight would not narrow the gap.
        let other = Owner::new("i", "other");
        assert_eq!(registry.reserve(&other), Ok(()));
        assert_eq!(registry.reserve(&other), Err(AtCapacity));
        // A failed initialize makes no room and gives its reservation back.
        registry.release(&other);
        assert_eq!(registry.len(), 5);
        assert_eq!(registry.reserve(&other), Ok(()));
        registry.release(&other);
    }

    /// R03: two newcomers admitted at once on the strength of one large holder: the first bind
    /// takes that holder's extra session; by the second, every principal holds one, and nobody's
    /// only session is ended (the cap is exceeded by the one in flight until a session ends).
    #[test]
    fn making_room_never_ends_a_principals_only_session() {
        let registry = registry(3, 3);
        let (crowd, bob) = (Owner::new("i", "crowd"), Owner::new("i", "bob"));
        for (session, owner) in [("c1", &crowd), ("c2", &crowd), ("b1", &bob)] {
            registry.reserve(owner).unwrap();
            assert!(registry.bind(id(session), owner.clone()).is_empty());
        }
        let (n1, n2) = (Owner::new("i", "n1"), Owner::new("i", "n2"));
        registry.reserve(&n1).unwrap();
        registry.reserve(&n2).unwrap();
        assert_eq!(registry.bind(id("n1"), n1), vec![id("c1")]);
        assert!(registry.bind(id("n2"), n2).is_empty());
        assert_eq!(registry.len(), 4);
        for (session, subject) in [("c2", "crowd"), ("b1", "bob")] {
            assert!(registry.use_session(session, "i", subject), "{session}");
        }
    }

    /// R03: when every principal holds one session, the cap refuses, except a principal
    /// replacing its own.
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
        registry.release(&bob);
        registry.reserve(&carol).unwrap();
        registry.bind(id("c"), carol.clone());
        assert_eq!(registry.reserve(&bob), Err(AtCapacity));
        registry.reserve(&alice).unwrap();
        assert_eq!(registry.bind(id("a2"), alice), vec![id("a")]);
        registry.unbind("c");
        registry.reserve(&bob).unwrap();
    }
}
