//! Compaction: dropping history that no allowed read can reach.
//!
//! `compact(rev)` moves the compaction point to `rev`. Afterwards reads at
//! revisions `< rev` fail with `Compacted`, and reads at revisions `>= rev`
//! must see exactly what they saw before. So for each key we keep the
//! newest put at or before `rev` (it is what a read at `rev` returns) and
//! everything after it, and drop the rest; a key whose newest event at or
//! before `rev` is a delete loses that whole generation, and a key with no
//! history left leaves the index. This mirrors etcd's `keyIndex.compact`.
//!
//! Compaction is applied from the replicated log, so it runs synchronously
//! and deterministically (etcd compacts its backend in the background, but
//! the observable result is the same). It costs O(keys + dropped entries).

use super::changes::Change;
use super::store::{Store, KEY_OVERHEAD_BYTES};
use super::types::{MvccError, Revision};

impl Store {
    /// Compacts history below `revision` (etcd's `Compact`).
    ///
    /// Errors: `revision <= compact_revision` → [`MvccError::Compacted`],
    /// `revision > current_revision` → [`MvccError::FutureRevision`]
    /// (checked in that order, as etcd does).
    pub fn compact(&mut self, revision: Revision) -> Result<(), MvccError> {
        if revision <= self.compact_revision {
            return Err(self.compacted_error());
        }
        if revision > self.current_revision {
            return Err(MvccError::FutureRevision);
        }
        self.compact_index(revision);
        self.compact_revision = revision;
        Ok(())
    }

    /// Compacts the history again at the current compaction point: after
    /// a restart, drops (and records as changes) whatever history the
    /// page file still held below it, e.g. because a crash cut off the
    /// deletion of a compaction's records. Returns the records dropped.
    pub fn recompact(&mut self) -> usize {
        if self.compact_revision < 0 {
            return 0;
        }
        let before = self.changes.len();
        self.compact_index(self.compact_revision);
        self.changes.len() - before
    }

    /// Drops every history entry no read at `revision` or later can see.
    fn compact_index(&mut self, revision: Revision) {
        let mut freed_bytes: u64 = 0;
        let mut keys_removed: u64 = 0;
        let recording = self.recording;
        let changes = &mut self.changes;
        self.index.retain(|key, ki| {
            let (freed, empty) = ki.compact(revision, &mut |dropped| {
                if recording {
                    changes.push(Change::Drop {
                        revision: dropped,
                        key: key.clone(),
                    });
                }
            });
            freed_bytes += freed;
            if empty {
                // The key's own bytes and slot go with it.
                freed_bytes += KEY_OVERHEAD_BYTES + key.len() as u64;
                keys_removed += 1;
            }
            !empty
        });
        self.size_bytes = self
            .size_bytes
            .checked_sub(freed_bytes)
            .expect("store invariant: compaction frees no more than was accounted");
        if freed_bytes > 0 {
            tracing::info!(revision, freed_bytes, keys_removed, "mvcc compacted");
        }
    }
}
