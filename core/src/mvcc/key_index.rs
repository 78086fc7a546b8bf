//! The history of one key: its generations (etcd's `keyIndex`).
//!
//! A generation is the life of a key from the put that created it to the
//! delete that ended it (its tombstone). Only the last generation may be
//! live (no tombstone). Each generation holds its puts in revision order,
//! with the value stored once per version:
//!
//! ```text
//! put a=1 @2, put a=2 @3, delete a @5, put a=3 @7
//!
//! generations: [ {create 2, entries [2 v1 "1", 3 v2 "2"], tombstone 5},
//!                {create 7, entries [7 v1 "3"],           tombstone -} ]
//! ```
//!
//! Invariants (checked by [`KeyIndex::assert_invariants`]):
//! - there is at least one generation and every generation has >= 1 entry;
//! - generations are ordered by `create_revision`, a generation starts no
//!   earlier than the previous one's tombstone;
//! - within a generation entries have strictly increasing `mod_revision`
//!   and `version`, and the tombstone is >= the last entry's revision
//!   (equal when a txn puts and then deletes a key in one revision);
//! - only the last generation may lack a tombstone.

use super::types::Revision;

/// Where a put's value is: in memory, or only in the page file (its
/// history record at `(mod_revision, key)`), fetched when read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Val {
    Mem(Box<[u8]>),
    Stored { len: u32 },
}

impl Val {
    pub(crate) fn len(&self) -> usize {
        match self {
            Val::Mem(v) => v.len(),
            Val::Stored { len } => *len as usize,
        }
    }
}

impl From<Box<[u8]>> for Val {
    fn from(v: Box<[u8]>) -> Val {
        Val::Mem(v)
    }
}

/// One put of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) mod_revision: Revision,
    /// Kept explicitly: compaction drops earlier entries of a generation.
    pub(crate) version: i64,
    pub(crate) lease: i64,
    pub(crate) value: Val,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Generation {
    pub(crate) create_revision: Revision,
    pub(crate) entries: Vec<Entry>,
    pub(crate) tombstone: Option<Revision>,
}

/// Bytes the store accounts for one entry beyond its value.
pub(crate) const ENTRY_OVERHEAD_BYTES: u64 = std::mem::size_of::<Entry>() as u64;
/// Bytes the store accounts for one generation beyond its entries.
pub(crate) const GENERATION_OVERHEAD_BYTES: u64 = std::mem::size_of::<Generation>() as u64;

fn entry_size_bytes(e: &Entry) -> u64 {
    ENTRY_OVERHEAD_BYTES + e.value.len() as u64
}

fn generation_size_bytes(g: &Generation) -> u64 {
    GENERATION_OVERHEAD_BYTES + g.entries.iter().map(entry_size_bytes).sum::<u64>()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyIndex {
    generations: Vec<Generation>,
}

impl KeyIndex {
    /// A key created by a put at `revision`.
    pub(crate) fn new(revision: Revision, value: Box<[u8]>, lease: i64) -> KeyIndex {
        let generation = Generation {
            create_revision: revision,
            entries: vec![Entry {
                mod_revision: revision,
                version: 1,
                lease,
                value: Val::Mem(value),
            }],
            tombstone: None,
        };
        KeyIndex {
            generations: vec![generation],
        }
    }

    /// The live generation's latest entry and its create revision, if the
    /// key exists at the newest revision written so far.
    pub(crate) fn latest(&self) -> Option<(Revision, &Entry)> {
        let g = self.generations.last()?;
        if g.tombstone.is_some() {
            return None;
        }
        let e = g
            .entries
            .last()
            .expect("key_index invariant: generations are never empty");
        Some((g.create_revision, e))
    }

    /// The entry visible at revision `at` and its create revision.
    /// O(log generations + log entries).
    pub(crate) fn get(&self, at: Revision) -> Option<(Revision, &Entry)> {
        let after = self
            .generations
            .partition_point(|g| g.create_revision <= at);
        let g = self.generations.get(after.checked_sub(1)?)?;
        if g.tombstone.is_some_and(|t| t <= at) {
            return None;
        }
        let n = g.entries.partition_point(|e| e.mod_revision <= at);
        // n == 0 only for reads below the compaction point, which the store
        // refuses before looking here.
        let e = g.entries.get(n.checked_sub(1)?)?;
        Some((g.create_revision, e))
    }

    /// Appends a put at `revision`; returns the bytes added and whether a
    /// new generation started (the key did not exist).
    pub(crate) fn put(&mut self, revision: Revision, value: Box<[u8]>, lease: i64) -> (u64, bool) {
        let live = self
            .generations
            .last_mut()
            .filter(|g| g.tombstone.is_none());
        if let Some(g) = live {
            let last = g
                .entries
                .last()
                .expect("key_index invariant: generations are never empty");
            assert!(
                last.mod_revision < revision,
                "key_index invariant: puts to a key have increasing revisions \
                 ({} then {revision})",
                last.mod_revision
            );
            let e = Entry {
                mod_revision: revision,
                version: last.version + 1,
                lease,
                value: Val::Mem(value),
            };
            let added = entry_size_bytes(&e);
            g.entries.push(e);
            return (added, false);
        }
        let g = Generation {
            create_revision: revision,
            entries: vec![Entry {
                mod_revision: revision,
                version: 1,
                lease,
                value: Val::Mem(value),
            }],
            tombstone: None,
        };
        let added = generation_size_bytes(&g);
        self.generations.push(g);
        (added, true)
    }

    /// Ends the live generation at `revision`; false if the key was not live.
    pub(crate) fn tombstone(&mut self, revision: Revision) -> bool {
        let Some(g) = self
            .generations
            .last_mut()
            .filter(|g| g.tombstone.is_none())
        else {
            return false;
        };
        let last = g
            .entries
            .last()
            .expect("key_index invariant: generations are never empty");
        assert!(
            last.mod_revision <= revision,
            "key_index invariant: a tombstone follows the generation's puts"
        );
        g.tombstone = Some(revision);
        true
    }

    /// Drops the history no read at a revision >= `at` can see: whole
    /// generations whose tombstone is <= `at`, and in the first remaining
    /// generation every entry before the last one at or before `at`.
    /// Returns the bytes freed and whether the key has no history left.
    ///
    /// `dropped` receives the revision of every put and tombstone removed
    /// (the page file deletes those history records).
    pub(crate) fn compact(
        &mut self,
        at: Revision,
        dropped: &mut dyn FnMut(Revision),
    ) -> (u64, bool) {
        let dead = self
            .generations
            .iter()
            .take_while(|g| g.tombstone.is_some_and(|t| t <= at));
        let dead_count = dead.clone().count();
        let mut freed: u64 = 0;
        for g in self.generations.drain(..dead_count) {
            freed += generation_size_bytes(&g);
            g.entries.iter().for_each(|e| dropped(e.mod_revision));
            g.tombstone.into_iter().for_each(&mut *dropped);
        }
        if let Some(g) = self.generations.first_mut() {
            let keep_from = g
                .entries
                .partition_point(|e| e.mod_revision <= at)
                .saturating_sub(1);
            for e in g.entries.drain(..keep_from) {
                freed += entry_size_bytes(&e);
                dropped(e.mod_revision);
            }
        }
        (freed, self.generations.is_empty())
    }

    /// Rebuilds history from a stored put record (restart from the page
    /// file): extends the live generation created at `create_revision`, or
    /// starts one. Records arrive in revision order. Returns the bytes
    /// added and whether a generation started, or why the record does not
    /// fit the history so far.
    pub(crate) fn restore_put(
        &mut self,
        create_revision: Revision,
        e: Entry,
    ) -> Result<(u64, bool), String> {
        let live = self
            .generations
            .last_mut()
            .filter(|g| g.tombstone.is_none());
        match live {
            Some(g) if g.create_revision == create_revision => {
                let last = g
                    .entries
                    .last()
                    .expect("key_index invariant: generations are never empty");
                if last.mod_revision >= e.mod_revision || last.version + 1 != e.version {
                    return Err(format!(
                        "put at revision {} version {} follows revision {} version {}",
                        e.mod_revision, e.version, last.mod_revision, last.version
                    ));
                }
                let added = entry_size_bytes(&e);
                g.entries.push(e);
                Ok((added, false))
            }
            Some(g) => Err(format!(
                "put at revision {} names generation {create_revision}, the live one is {}",
                e.mod_revision, g.create_revision
            )),
            None => {
                let floor = self.generations.last().and_then(|g| g.tombstone);
                if create_revision > e.mod_revision || floor.is_some_and(|t| create_revision < t) {
                    return Err(format!(
                        "put at revision {} cannot start a generation at {create_revision}",
                        e.mod_revision
                    ));
                }
                let g = Generation {
                    create_revision,
                    entries: vec![e],
                    tombstone: None,
                };
                let added = generation_size_bytes(&g);
                // Most keys only ever have one generation: a first push
                // would make room for four.
                self.generations.reserve_exact(1);
                self.generations.push(g);
                Ok((added, true))
            }
        }
    }

    /// Drops the in-memory copy of the value put at `revision` (the page
    /// file holds it) and returns it; `None` if there is no such entry in
    /// memory.
    pub(crate) fn evict(&mut self, revision: Revision) -> Option<Box<[u8]>> {
        let g = self
            .generations
            .partition_point(|g| g.create_revision <= revision);
        let g = self.generations.get_mut(g.checked_sub(1)?)?;
        let i = g
            .entries
            .binary_search_by_key(&revision, |e| e.mod_revision)
            .ok()?;
        let e = &mut g.entries[i];
        match &e.value {
            Val::Mem(v) => {
                let len = v.len() as u32;
                match std::mem::replace(&mut e.value, Val::Stored { len }) {
                    Val::Mem(v) => Some(v),
                    Val::Stored { .. } => unreachable!("matched Mem above"),
                }
            }
            Val::Stored { .. } => None,
        }
    }

    /// Replays a stored tombstone at `revision`: it ends the live
    /// generation, or, if the key is not live, it is the put-then-delete of
    /// one txn and rebuilds that dead generation. Returns (bytes added,
    /// whether a live generation ended).
    pub(crate) fn restore_tombstone(&mut self, revision: Revision) -> (u64, bool) {
        if self.tombstone(revision) {
            (0, true)
        } else {
            (self.restore_dead_generation(revision), false)
        }
    }

    /// Rebuilds a generation that a txn created and ended in one revision
    /// (put, then delete of a key that did not exist): its one record is
    /// the tombstone, which overwrote the put. The generation is invisible
    /// to every read; it is kept so that compaction drops its record.
    fn restore_dead_generation(&mut self, revision: Revision) -> u64 {
        let g = Generation {
            create_revision: revision,
            entries: vec![Entry {
                mod_revision: revision,
                version: 1,
                lease: 0,
                value: Val::Stored { len: 0 },
            }],
            tombstone: Some(revision),
        };
        let added = generation_size_bytes(&g);
        self.generations.push(g);
        added
    }

    /// Visits the key's history records with a revision in `[from, to]`,
    /// in revision order: each put as `(revision, create_revision,
    /// Some(entry))`, each tombstone as `(revision, create_revision,
    /// None)`. A put that its own tombstone ends in the same revision (a
    /// txn that puts and then deletes the key) is not visited: only the
    /// tombstone is stored for it (see `changes`).
    pub(crate) fn visit_between<'s>(
        &'s self,
        from: Revision,
        to: Revision,
        f: &mut dyn FnMut(Revision, Revision, Option<&'s Entry>),
    ) {
        // Generations that end before `from` hold nothing for us.
        let first = self
            .generations
            .partition_point(|g| g.tombstone.is_some_and(|t| t < from));
        for g in &self.generations[first..] {
            if g.create_revision > to {
                break;
            }
            let start = g.entries.partition_point(|e| e.mod_revision < from);
            for e in &g.entries[start..] {
                if e.mod_revision > to {
                    break;
                }
                if g.tombstone != Some(e.mod_revision) {
                    f(e.mod_revision, g.create_revision, Some(e));
                }
            }
            if let Some(t) = g.tombstone.filter(|t| (from..=to).contains(t)) {
                f(t, g.create_revision, None);
            }
        }
    }

    /// A key with no history yet, for [`KeyIndex::restore_put`].
    pub(crate) fn empty() -> KeyIndex {
        KeyIndex {
            generations: Vec::new(),
        }
    }

    /// The live generation's create revision and latest entry after a put.
    pub(crate) fn latest_after_put(&self) -> (Revision, &Entry) {
        self.latest()
            .expect("key_index invariant: a key is live right after a put")
    }

    /// Bytes this key's history accounts for (excluding the key itself).
    pub(crate) fn size_bytes(&self) -> u64 {
        self.generations.iter().map(generation_size_bytes).sum()
    }

    /// Checks every invariant listed in the module docs; panics naming the
    /// broken one. O(entries): for tests and debug checks.
    pub(crate) fn assert_invariants(&self) {
        assert!(
            !self.generations.is_empty(),
            "key_index invariant: a key has a generation"
        );
        let mut floor = Revision::MIN;
        for (i, g) in self.generations.iter().enumerate() {
            assert!(
                !g.entries.is_empty(),
                "key_index invariant: generations are never empty"
            );
            assert!(
                g.create_revision >= floor,
                "key_index invariant: generations are ordered"
            );
            let mut prev: Option<&Entry> = None;
            for e in &g.entries {
                assert!(
                    e.mod_revision >= g.create_revision,
                    "key_index invariant: entry after create"
                );
                if let Some(p) = prev {
                    assert!(
                        p.mod_revision < e.mod_revision,
                        "key_index invariant: revisions increase"
                    );
                    assert!(
                        p.version + 1 == e.version,
                        "key_index invariant: versions count puts"
                    );
                }
                prev = Some(e);
            }
            let last = g.entries.last().map_or(0, |e| e.mod_revision);
            match g.tombstone {
                Some(t) => {
                    assert!(t >= last, "key_index invariant: tombstone after puts");
                    floor = t;
                }
                None => assert!(
                    i + 1 == self.generations.len(),
                    "key_index invariant: only the last generation is live"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> Box<[u8]> {
        s.as_bytes().into()
    }

    #[test]
    fn get_sees_each_generation_and_tombstone() {
        let mut ki = KeyIndex::new(2, val("1"), 0);
        ki.put(3, val("2"), 0);
        assert!(ki.tombstone(5));
        ki.put(7, val("3"), 0);
        ki.assert_invariants();
        assert!(ki.get(1).is_none());
        assert_eq!(ki.get(2).map(|(c, e)| (c, e.version)), Some((2, 1)));
        assert_eq!(ki.get(4).map(|(c, e)| (c, e.version)), Some((2, 2)));
        assert!(ki.get(5).is_none());
        assert!(ki.get(6).is_none());
        assert_eq!(ki.get(9).map(|(c, e)| (c, e.version)), Some((7, 1)));
    }

    #[test]
    fn compact_drops_dead_generations_and_older_entries() {
        let mut ki = KeyIndex::new(2, val("1"), 0);
        ki.put(3, val("2"), 0);
        ki.tombstone(5);
        ki.put(7, val("3"), 0);
        ki.put(8, val("4"), 0);
        let before = ki.size_bytes();
        let (freed, empty) = ki.compact(7, &mut |_| {});
        assert!(!empty);
        assert_eq!(before - freed, ki.size_bytes());
        ki.assert_invariants();
        assert_eq!(ki.get(7).map(|(_, e)| e.version), Some(1));
        assert_eq!(ki.get(8).map(|(_, e)| e.version), Some(2));
        let (_, empty) = ki.compact(8, &mut |_| {});
        assert!(!empty);
        assert_eq!(ki.get(8).map(|(c, e)| (c, e.version)), Some((7, 2)));
    }

    #[test]
    fn compact_past_final_tombstone_empties_the_key() {
        let mut ki = KeyIndex::new(2, val("1"), 0);
        ki.tombstone(4);
        assert!(!ki.compact(3, &mut |_| {}).1);
        assert!(ki.get(3).is_some());
        assert!(ki.compact(4, &mut |_| {}).1);
    }
}
