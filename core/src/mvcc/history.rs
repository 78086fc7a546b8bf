//! Reading the store's history back as events (etcd's watch history): the
//! writes to a key range between two revisions, and the changes one
//! applied entry recorded.
//!
//! A put is a `Put` event carrying the key-value it wrote; a tombstone is
//! a `Delete` event whose key-value holds only the key and the revision
//! of the delete (etcd's form). Events come in revision order; within one
//! revision in key order (etcd replays a txn's writes in the order it made
//! them: the two differ only for a txn that wrote several keys).

use super::changes::Change;
use super::key_index::Entry;
use super::store::{span_bounds, Store};
use super::types::{KeyValue, MvccError, Revision};

/// What an event did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

/// One write to one key, as a watcher sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    /// For a delete: only `key` and `mod_revision` (the delete's revision).
    pub kv: KeyValue,
}

impl Event {
    /// The revision of the write.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }

    /// The event a recorded change stands for; `None` for a compaction's
    /// `Drop`.
    pub fn from_change(c: &Change) -> Option<Event> {
        match c {
            Change::Put {
                revision,
                key,
                create_revision,
                version,
                lease,
                value,
            } => Some(Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: key.to_vec(),
                    create_revision: *create_revision,
                    mod_revision: *revision,
                    version: *version,
                    value: value.to_vec(),
                    lease: *lease,
                },
            }),
            Change::Tombstone { revision, key } => Some(Event::delete(key, *revision)),
            Change::Drop { .. } => None,
        }
    }

    fn delete(key: &[u8], revision: Revision) -> Event {
        Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.to_vec(),
                mod_revision: revision,
                ..Default::default()
            },
        }
    }

    /// Bytes the event carries (for batch sizing).
    pub fn size_bytes(&self) -> usize {
        self.kv.key.len() + self.kv.value.len() + 48
    }
}

/// Bounds on one history read.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    /// Distinct revisions returned at most (etcd: 1000 per watch sync).
    pub max_revisions: usize,
    /// Bytes of events returned at most; the first revision is returned
    /// whole whatever its size.
    pub max_bytes: usize,
}

/// The events of a history read and where the next read starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub events: Vec<Event>,
    /// The first revision not covered: `to + 1` when the read was not cut
    /// short by its limits.
    pub next_revision: Revision,
}

/// A history record found, before its value is loaded.
struct Found<'s> {
    revision: Revision,
    key: &'s [u8],
    create_revision: Revision,
    /// `None` for a tombstone.
    entry: Option<&'s Entry>,
}

impl Found<'_> {
    fn size_bytes(&self) -> usize {
        self.key.len() + self.entry.map_or(0, |e| e.value.len()) + 48
    }
}

impl Store {
    /// The changes recorded since `mark` (a [`Store::pending_changes`]
    /// taken before applying an entry): that entry's writes, in order.
    /// Empty if the log was taken since.
    pub fn changes_since(&self, mark: usize) -> &[Change] {
        self.changes.get(mark..).unwrap_or(&[])
    }

    /// The pair `key` held at `revision`, if it existed then; `None` also
    /// when `revision` is below the compaction point or not positive
    /// (etcd's `prev_kv` of a watch event: the key at the event's revision
    /// minus one).
    pub fn kv_at(&self, key: &[u8], revision: Revision) -> Result<Option<KeyValue>, MvccError> {
        if revision <= 0 || revision < self.compact_revision || revision > self.current_revision {
            return Ok(None);
        }
        let Some(ki) = self.index.get(key) else {
            return Ok(None);
        };
        let Some((create, e)) = ki.get(revision) else {
            return Ok(None);
        };
        let value = self.value_of(key, e)?;
        Ok(Some(KeyValue {
            key: key.to_vec(),
            create_revision: create,
            mod_revision: e.mod_revision,
            version: e.version,
            value: value.into_owned(),
            lease: e.lease,
        }))
    }

    /// The writes to `[key, range_end)` (etcd's range conventions) with a
    /// revision in `[from, to]`, in revision order, cut at a revision
    /// boundary by `limits`. Fails with `Compacted` when `from` is below
    /// the compaction point (that history is gone).
    ///
    /// Cost: O(keys in the range + records in the window); values are
    /// loaded only for the events returned.
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from: Revision,
        to: Revision,
        limits: HistoryLimits,
    ) -> Result<History, MvccError> {
        let from = from.max(1);
        let to = to.min(self.current_revision);
        if from < self.compact_revision {
            return Err(self.compacted_error());
        }
        let mut found: Vec<Found<'_>> = Vec::new();
        if from <= to {
            if let Some(bounds) = span_bounds(key, range_end) {
                for (k, ki) in self.index.range::<[u8], _>(bounds) {
                    ki.visit_between(from, to, &mut |revision, create_revision, entry| {
                        found.push(Found {
                            revision,
                            key: k,
                            create_revision,
                            entry,
                        })
                    });
                }
            }
        }
        // Stable: keys stay in key order within a revision, and one key's
        // put stays before its tombstone.
        found.sort_by_key(|f| f.revision);
        let (keep, next_revision) = cut(&found, to, limits);
        let mut events = Vec::with_capacity(keep);
        for f in &found[..keep] {
            events.push(match f.entry {
                Some(e) => Event {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: f.key.to_vec(),
                        create_revision: f.create_revision,
                        mod_revision: e.mod_revision,
                        version: e.version,
                        value: self.value_of(f.key, e)?.into_owned(),
                        lease: e.lease,
                    },
                },
                None => Event::delete(f.key, f.revision),
            });
        }
        Ok(History {
            events,
            next_revision,
        })
    }
}

/// How many of `found` (sorted by revision) fit `limits` without
/// splitting a revision, and the first revision left out.
fn cut(found: &[Found<'_>], to: Revision, limits: HistoryLimits) -> (usize, Revision) {
    let mut revisions = 0usize;
    let mut bytes = 0usize;
    let mut i = 0;
    while i < found.len() {
        let rev = found[i].revision;
        let end = i + found[i..].partition_point(|f| f.revision == rev);
        let rev_bytes: usize = found[i..end].iter().map(Found::size_bytes).sum();
        if revisions > 0
            && (revisions >= limits.max_revisions || bytes + rev_bytes > limits.max_bytes)
        {
            return (i, rev);
        }
        revisions += 1;
        bytes += rev_bytes;
        i = end;
    }
    (found.len(), to + 1)
}
