//! The change log a [`Store`] keeps for its durable copy, and the rebuild
//! of a store from that copy.
//!
//! With recording on ([`Store::record_changes`]), every write leaves a
//! [`Change`] behind: the history record it adds (a put or a tombstone at
//! `(revision, key)`) or, for a compaction, each record it drops. The node
//! drains them ([`Store::take_changes`]) into page-file commits, so the
//! file holds exactly the store's history, one record per `(revision,
//! key)`. At start, [`Store::restore_put`] / [`Store::restore_tombstone`]
//! replay those records in revision order and [`Store::finish_restore`]
//! sets the counters; the result answers every read as the original did.
//!
//! Within one revision a key is written at most once, except a txn that
//! puts a key and then deletes it: both land on the same record, the
//! tombstone last, and a read at any revision sees no value either way
//! (the put and its tombstone share the revision).

use super::key_index::{Entry, KeyIndex, Val};
use super::store::{Store, KEY_OVERHEAD_BYTES};
use super::types::Revision;

/// One history record added or removed by a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A put of `key` at `revision`.
    Put {
        revision: Revision,
        key: Box<[u8]>,
        create_revision: Revision,
        version: i64,
        lease: i64,
        value: Box<[u8]>,
    },
    /// A delete ended `key`'s generation at `revision`.
    Tombstone { revision: Revision, key: Box<[u8]> },
    /// Compaction removed the record of `key` at `revision`.
    Drop { revision: Revision, key: Box<[u8]> },
}

impl Change {
    /// Bytes this change carries (for batch sizing).
    pub fn size_bytes(&self) -> usize {
        match self {
            Change::Put { key, value, .. } => key.len() + value.len() + 32,
            Change::Tombstone { key, .. } | Change::Drop { key, .. } => key.len() + 8,
        }
    }
}

/// A history record as a restart reads it (the value stays in the file).
pub struct LoadedRecord {
    pub key: Box<[u8]>,
    pub revision: Revision,
    /// `None` for a tombstone.
    pub put: Option<LoadedPut>,
}

pub struct LoadedPut {
    pub create_revision: Revision,
    pub version: i64,
    pub lease: i64,
    pub value_len: usize,
}

/// Records from this many on are folded into the index on every core.
const PARALLEL_FROM: usize = 1 << 16;

/// Index entries folded from records in (key, revision) order, and what
/// they add to the store's counters.
struct Folded {
    keys: Vec<(Box<[u8]>, KeyIndex)>,
    size_bytes: u64,
    live_keys: usize,
    current_revision: Revision,
}

/// Folds records sorted by (key, revision), the first of a new key
/// (`same_key[0]` is ignored), into index entries.
fn fold_records(records: &[LoadedRecord], same_key: &[bool]) -> Result<Folded, String> {
    let mut f = Folded {
        keys: Vec::with_capacity(records.len()),
        size_bytes: 0,
        live_keys: 0,
        current_revision: 0,
    };
    // Each key is copied once, in key order, while the records still hold
    // theirs: the copies lie in memory in key order, so building the map
    // (which compares neighbours) reads them in sequence instead of
    // jumping to where the scan left each one.
    for (r, &same) in records.iter().zip(same_key) {
        if !same || f.keys.is_empty() {
            f.size_bytes += KEY_OVERHEAD_BYTES + r.key.len() as u64;
            f.keys.push((Box::from(&*r.key), KeyIndex::empty()));
        }
        let (key, ki) = f.keys.last_mut().expect("pushed above");
        f.current_revision = f.current_revision.max(r.revision);
        match &r.put {
            Some(p) => {
                let len = u32::try_from(p.value_len)
                    .map_err(|_| format!("value of {} bytes", p.value_len))?;
                let e = Entry {
                    mod_revision: r.revision,
                    version: p.version,
                    lease: p.lease,
                    value: Val::Stored { len },
                };
                let (added, created) = ki
                    .restore_put(p.create_revision, e)
                    .map_err(|e| format!("key {:?}: {e}", String::from_utf8_lossy(key)))?;
                f.size_bytes += added;
                f.live_keys += usize::from(created);
            }
            None => {
                // A tombstone ends a generation this run created (runs
                // start at a key's first record).
                let (added, ended) = ki.restore_tombstone(r.revision);
                f.size_bytes += added;
                f.live_keys -= usize::from(ended);
            }
        }
    }
    Ok(f)
}

impl Store {
    /// Turns the change log on or off (off by default; off drops any
    /// changes not taken yet).
    pub fn record_changes(&mut self, on: bool) {
        self.recording = on;
        if !on {
            self.changes.clear();
        }
    }

    /// Changes since the last call, in the order they happened. With a
    /// value source, the puts among them become candidates for eviction
    /// ([`Store::evict_through`]) once the caller has made them durable.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let changes = std::mem::take(&mut self.changes);
        if self.source.is_some() {
            for c in &changes {
                if let Change::Put { revision, key, .. } = c {
                    self.resident.push_back((*revision, key.clone()));
                }
            }
        }
        changes
    }

    /// Changes recorded and not taken yet.
    pub fn pending_changes(&self) -> usize {
        self.changes.len()
    }

    pub(crate) fn note(&mut self, c: impl FnOnce() -> Change) {
        if self.recording {
            self.changes.push(c());
        }
    }

    /// Replays a stored put record, keeping its value in memory. Records
    /// must arrive in revision order.
    pub fn restore_put(
        &mut self,
        revision: Revision,
        key: &[u8],
        create_revision: Revision,
        version: i64,
        lease: i64,
        value: &[u8],
    ) -> Result<(), String> {
        let e = Entry {
            mod_revision: revision,
            version,
            lease,
            value: Val::Mem(value.into()),
        };
        let (added, created) = match self.index.get_mut(key) {
            Some(ki) => ki.restore_put(create_revision, e)?,
            None => {
                let mut ki = KeyIndex::empty();
                let r = ki.restore_put(create_revision, e)?;
                self.size_bytes += KEY_OVERHEAD_BYTES + key.len() as u64;
                self.index.insert(key.into(), ki);
                r
            }
        };
        self.size_bytes += added;
        self.live_keys += usize::from(created);
        self.current_revision = self.current_revision.max(revision);
        Ok(())
    }

    /// Rebuilds the index from every history record at once (restart):
    /// sorts them by key and revision, folds each key's records into its
    /// history (values stay in the file), and builds the B-tree from the
    /// sorted keys in one pass. Records whose keys arrive
    /// in random order (any real history) would otherwise cost a random
    /// B-tree insert each. Only for an empty store; follow with
    /// [`Store::finish_restore`].
    pub fn restore_all(&mut self, parts: Vec<Vec<LoadedRecord>>) -> Result<(), String> {
        assert!(
            self.index.is_empty(),
            "invariant: restore_all rebuilds an empty store"
        );
        let records = super::record_sort::Parts::new(parts);
        let sorted = super::record_sort::sort_records(&records);
        // One tight pass of random reads (the CPU overlaps them) puts the
        // records in order; following each to its key happens below.
        let in_order = records.take_in(&sorted.order);
        // Folded on every core, in runs that start at a new key.
        let n = in_order.len();
        let threads = if n < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |t| t.get())
        };
        let mut cuts = vec![0];
        for t in 1..threads {
            let mut c = (n * t / threads).max(cuts[t - 1]);
            while c < n && sorted.same_key[c] {
                c += 1;
            }
            cuts.push(c);
        }
        cuts.push(n);
        let run = |t: usize| {
            let (from, to) = (cuts[t], cuts[t + 1]);
            fold_records(&in_order[from..to], &sorted.same_key[from..to])
        };
        let folded: Vec<Result<Folded, String>> = std::thread::scope(|s| {
            let others: Vec<_> = (1..threads).map(|t| s.spawn(move || run(t))).collect();
            let mut out = vec![run(0)];
            out.extend(
                others
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
            );
            out
        });
        let mut keys = Vec::new();
        for f in folded {
            let f = f?;
            self.size_bytes += f.size_bytes;
            self.live_keys += f.live_keys;
            self.current_revision = self.current_revision.max(f.current_revision);
            if keys.is_empty() {
                keys = f.keys;
            } else {
                keys.extend(f.keys);
            }
        }
        drop(in_order);
        self.index = keys.into_iter().collect();
        Ok(())
    }

    /// Replays a stored tombstone. A tombstone of a key that is not live
    /// is the put-then-delete of one txn (see the module docs): it becomes
    /// a generation no read sees, so that compaction still drops its
    /// record.
    pub fn restore_tombstone(&mut self, revision: Revision, key: &[u8]) {
        let (added, ended) = match self.index.get_mut(key) {
            Some(ki) => ki.restore_tombstone(revision),
            None => {
                let mut ki = KeyIndex::empty();
                let r = ki.restore_tombstone(revision);
                self.size_bytes += KEY_OVERHEAD_BYTES + key.len() as u64;
                self.index.insert(key.into(), ki);
                r
            }
        };
        self.size_bytes += added;
        self.live_keys -= usize::from(ended);
        self.current_revision = self.current_revision.max(revision);
    }

    /// Sets the counters a restore cannot see in the records (the last
    /// revisions may have been deletes whose records compaction dropped).
    pub fn finish_restore(
        &mut self,
        current_revision: Revision,
        compact_revision: Revision,
    ) -> Result<(), String> {
        if current_revision < self.current_revision {
            return Err(format!(
                "stored current revision {current_revision} is below a record at revision {}",
                self.current_revision
            ));
        }
        if compact_revision > current_revision {
            return Err(format!(
                "compact revision {compact_revision} is past the current revision {current_revision}"
            ));
        }
        self.current_revision = current_revision.max(1);
        self.compact_revision = compact_revision;
        Ok(())
    }
}
