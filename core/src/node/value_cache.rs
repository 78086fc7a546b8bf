//! A bounded cache of values the MVCC store evicted from memory, in front
//! of the page file.
//!
//! Values enter when the store evicts them (they were just written, so
//! they are the likeliest to be read next) and when a read fetches one
//! from the page file. Replacement is CLOCK (second chance): a hit marks
//! the entry; the hand skips marked entries once, clearing the mark, and
//! evicts the first unmarked one. Entries are keyed by `(revision, key)`,
//! which names an immutable history record, so nothing is ever stale: an
//! entry whose record compaction removed is simply never asked for again
//! and ages out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::mvcc::Revision;

/// Bytes accounted per entry beyond key and value (map slot, queue slot).
const ENTRY_OVERHEAD_BYTES: usize = 64;

struct Slot {
    key: Box<[u8]>,
    value: Arc<[u8]>,
    referenced: bool,
}

/// See the module docs.
pub struct ValueCache {
    budget_bytes: usize,
    used_bytes: usize,
    /// Revision → the keys written at it (usually one).
    map: HashMap<Revision, Vec<Slot>>,
    /// The CLOCK ring, oldest first.
    ring: VecDeque<(Revision, Box<[u8]>)>,
    pub hits: u64,
    pub misses: u64,
}

fn cost(key: &[u8], value: &[u8]) -> usize {
    2 * key.len() + value.len() + ENTRY_OVERHEAD_BYTES
}

impl ValueCache {
    /// A cache holding at most `budget_bytes` (0 disables it).
    pub fn new(budget_bytes: usize) -> ValueCache {
        ValueCache {
            budget_bytes,
            used_bytes: 0,
            map: HashMap::new(),
            ring: VecDeque::new(),
            hits: 0,
            misses: 0,
        }
    }

    #[cfg(test)]
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The value of `key` put at `revision`, if cached.
    pub fn get(&mut self, revision: Revision, key: &[u8]) -> Option<Arc<[u8]>> {
        let slot = self
            .map
            .get_mut(&revision)
            .and_then(|v| v.iter_mut().find(|s| &*s.key == key));
        match slot {
            Some(s) => {
                s.referenced = true;
                self.hits += 1;
                Some(s.value.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Caches a value (a no-op if it is there already or can never fit).
    pub fn insert(&mut self, revision: Revision, key: &[u8], value: Arc<[u8]>) {
        let c = cost(key, &value);
        if c > self.budget_bytes / 2 {
            return;
        }
        let slots = self.map.entry(revision).or_default();
        if slots.iter().any(|s| &*s.key == key) {
            return;
        }
        slots.push(Slot {
            key: key.into(),
            value,
            referenced: false,
        });
        self.ring.push_back((revision, key.into()));
        self.used_bytes += c;
        while self.used_bytes > self.budget_bytes {
            self.evict_one();
        }
    }

    fn evict_one(&mut self) {
        // Every entry gets at most one second chance, so this ends.
        while let Some((rev, key)) = self.ring.pop_front() {
            let Some(slots) = self.map.get_mut(&rev) else {
                continue;
            };
            let Some(i) = slots.iter().position(|s| s.key == key) else {
                continue;
            };
            if slots[i].referenced {
                slots[i].referenced = false;
                self.ring.push_back((rev, key));
                continue;
            }
            let s = slots.swap_remove(i);
            if slots.is_empty() {
                self.map.remove(&rev);
            }
            self.used_bytes -= cost(&s.key, &s.value);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: usize) -> Arc<[u8]> {
        vec![7u8; n].into()
    }

    #[test]
    fn hits_return_what_was_inserted_and_budget_holds() {
        let mut c = ValueCache::new(10_000);
        for r in 0..100 {
            c.insert(r, format!("k{r}").as_bytes(), v(200));
            assert!(c.used_bytes() <= 10_000);
        }
        assert!(c.get(99, b"k99").is_some());
        assert!(c.get(0, b"k0").is_none(), "oldest went first");
        assert!(c.get(99, b"k98").is_none(), "keyed by revision and key");
    }

    #[test]
    fn a_referenced_entry_gets_a_second_chance() {
        let mut c = ValueCache::new(3 * cost(b"k0", &v(100)));
        c.insert(1, b"k1", v(100));
        c.insert(2, b"k2", v(100));
        c.insert(3, b"k3", v(100));
        assert!(c.get(1, b"k1").is_some());
        c.insert(4, b"k4", v(100));
        assert!(c.get(1, b"k1").is_some(), "referenced: kept");
        assert!(c.get(2, b"k2").is_none(), "unreferenced: evicted");
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn oversized_values_and_a_zero_budget_cache_nothing() {
        let mut c = ValueCache::new(1000);
        c.insert(1, b"k", v(600));
        assert!(c.is_empty());
        let mut z = ValueCache::new(0);
        z.insert(1, b"k", v(1));
        assert!(z.is_empty());
    }
}
