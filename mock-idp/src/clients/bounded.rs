//! A map that holds at most a fixed number of entries and, when full, forgets the oldest
//! insertion first (FIFO): what lets strangers register clients, and the IdP remember fetched or
//! failed metadata documents, without the memory growing and without ever refusing a newcomer.

use std::collections::{HashMap, VecDeque};

/// String keys to `V`, at most `capacity` of them; inserting into a full map evicts the oldest.
#[derive(Debug)]
pub(crate) struct BoundedMap<V> {
    entries: HashMap<String, V>,
    /// Keys in insertion order; every key of `entries` is here exactly once.
    order: VecDeque<String>,
    capacity: usize,
}

impl<V> BoundedMap<V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key)
    }

    /// Inserts or replaces `key`. A replaced entry keeps its place in the eviction order; a new
    /// one in a full map first evicts the oldest.
    pub(crate) fn insert(&mut self, key: String, value: V) {
        if let Some(slot) = self.entries.get_mut(&key) {
            *slot = value;
            return;
        }
        while self.entries.len() >= self.capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.push_back(key.clone());
        self.entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_forgets_the_oldest_insertion_and_keeps_accepting() {
        let mut map = BoundedMap::new(2);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        map.insert("a".into(), 10);
        assert_eq!(map.get("a"), Some(&10), "replaced in place");
        map.insert("c".into(), 3);
        assert_eq!(map.get("a"), None, "the oldest insertion went first");
        assert_eq!((map.get("b"), map.get("c")), (Some(&2), Some(&3)));
    }
}
