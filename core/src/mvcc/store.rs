//! The store: a B-tree of per-key histories plus the revision counters,
//! and the single-op requests (range, put, delete range).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

use super::changes::Change;
use super::key_index::{Entry, KeyIndex, Val};
use super::types::{
    DeleteRangeReq, DeleteResult, KvRef, MvccError, PutReq, PutResult, RangeReq, RangeResult,
    Revision, SortOrder, SortTarget, ValueSource,
};
use std::borrow::Cow;

/// Bytes the store accounts for one key beyond its bytes and history: the
/// B-tree slot (boxed key + index).
pub(crate) const KEY_OVERHEAD_BYTES: u64 =
    (std::mem::size_of::<Box<[u8]>>() + std::mem::size_of::<KeyIndex>()) as u64;

/// The MVCC key-value state machine. See the [module docs](super).
#[derive(Clone, Debug)]
pub struct Store {
    /// Every key with history at or after the compaction point, tombstoned
    /// ones included; each key's bytes are stored once, here.
    pub(crate) index: BTreeMap<Box<[u8]>, KeyIndex>,
    pub(crate) current_revision: Revision,
    /// etcd's `compactMainRev`: -1 until the first compaction.
    pub(crate) compact_revision: Revision,
    /// Keys live at `current_revision` (or at the pending txn revision).
    pub(crate) live_keys: usize,
    pub(crate) size_bytes: u64,
    /// See `changes`: whether writes leave a change behind.
    pub(crate) recording: bool,
    pub(crate) changes: Vec<super::changes::Change>,
    /// Reads values evicted from memory (see [`Store::evict_through`]).
    pub(crate) source: Option<std::sync::Arc<dyn ValueSource>>,
    /// `(revision, key)` of puts handed out by `take_changes` whose values
    /// are still in memory, in revision order: evicted once durable.
    pub(crate) resident: std::collections::VecDeque<(Revision, Box<[u8]>)>,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

/// Bounds of a key interval in the B-tree.
pub(crate) type KeyBounds<'k> = (Bound<&'k [u8]>, Bound<&'k [u8]>);

/// The B-tree bounds of `[key, range_end)` with etcd's conventions: empty
/// `range_end` = the single key, `[0]` = no upper bound. `None` when the
/// interval is empty (`range_end <= key`).
pub(crate) fn span_bounds<'k>(key: &'k [u8], range_end: &'k [u8]) -> Option<KeyBounds<'k>> {
    match range_end {
        [] => Some((Bound::Included(key), Bound::Included(key))),
        [0] => Some((Bound::Included(key), Bound::Unbounded)),
        end if end > key => Some((Bound::Included(key), Bound::Excluded(end))),
        _ => None,
    }
}

/// A pair with `value` (already loaded, or empty for keys-only reads).
pub(crate) fn kv_ref<'s>(
    key: &'s [u8],
    create_revision: Revision,
    e: &Entry,
    value: Cow<'s, [u8]>,
) -> KvRef<'s> {
    KvRef {
        key,
        create_revision,
        mod_revision: e.mod_revision,
        version: e.version,
        value,
        lease: e.lease,
    }
}

fn cmp_by_target(a: &KvRef<'_>, b: &KvRef<'_>, target: SortTarget) -> Ordering {
    match target {
        SortTarget::Key => a.key.cmp(b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    }
}

/// etcd's `checkPutRequest`.
pub(crate) fn check_put(r: &PutReq<'_>) -> Result<(), MvccError> {
    if r.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if r.ignore_value && !r.value.is_empty() {
        return Err(MvccError::ValueProvided);
    }
    if r.ignore_lease && r.lease != 0 {
        return Err(MvccError::LeaseProvided);
    }
    Ok(())
}

impl Store {
    pub fn new() -> Store {
        Store {
            index: BTreeMap::new(),
            current_revision: 1,
            compact_revision: -1,
            live_keys: 0,
            size_bytes: 0,
            recording: false,
            changes: Vec::new(),
            source: None,
            resident: std::collections::VecDeque::new(),
        }
    }

    /// The revision of the last committed write; 1 for an empty store.
    pub fn current_revision(&self) -> Revision {
        self.current_revision
    }

    /// The last compaction point; 0 until the first compaction. Reads below
    /// it fail with [`MvccError::Compacted`].
    pub fn compact_revision(&self) -> Revision {
        self.compact_revision.max(0)
    }

    /// The compaction point as stored: -1 before the first compaction
    /// (unlike [`Store::compact_revision`], which reports 0).
    pub fn stored_compact_revision(&self) -> Revision {
        self.compact_revision
    }

    /// Keys that exist at the current revision.
    pub fn key_count(&self) -> usize {
        self.live_keys
    }

    /// Every live key with a lease, and the lease (to rebuild a lessor's
    /// attachments at start).
    pub fn leased_keys(&self) -> impl Iterator<Item = (&[u8], i64)> + '_ {
        self.index.iter().filter_map(|(k, ki)| {
            ki.latest()
                .filter(|(_, e)| e.lease != 0)
                .map(|(_, e)| (&k[..], e.lease))
        })
    }

    /// Approximate memory held by keys, values and history bookkeeping.
    pub fn approx_size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub(crate) fn compacted_error(&self) -> MvccError {
        MvccError::Compacted {
            compact_revision: self.compact_revision(),
        }
    }

    /// Reads `[key, range_end)` at a revision (etcd's `Range` RPC as applied
    /// by `applierV3backend.Range`). Read-only: no revision bump.
    ///
    /// `count` is the number of keys matched at the read revision before
    /// the revision filters and the limit, as in etcd. Results are in key
    /// order unless sorted; sorting is stable (ties stay in key order).
    pub fn range(&self, r: &RangeReq<'_>) -> Result<RangeResult<'_>, MvccError> {
        self.range_at(r, self.current_revision)
    }

    /// [`Store::range`] where `revision <= 0` means `default_revision`
    /// (inside a txn: the txn's own revision once it has written).
    pub(crate) fn range_at(
        &self,
        r: &RangeReq<'_>,
        default_revision: Revision,
    ) -> Result<RangeResult<'_>, MvccError> {
        if r.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        if r.revision > default_revision {
            return Err(MvccError::FutureRevision);
        }
        let at = if r.revision <= 0 {
            default_revision
        } else {
            r.revision
        };
        if at < self.compact_revision {
            return Err(self.compacted_error());
        }
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        // etcd fetches everything when it must sort or filter, else only
        // limit + 1 pairs (the extra one sets `more`). Note that etcd sorts
        // a non-key target with order None *after* this truncation.
        let fetch_max = match (r.sort_order != SortOrder::None || filtered, r.limit > 0) {
            (false, true) => usize::try_from(r.limit)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
            _ => usize::MAX,
        };
        let mut kvs = Vec::new();
        let mut count: i64 = 0;
        // Values are loaded only when they are returned or sorted on.
        let need_values = !r.keys_only || r.sort_target == SortTarget::Value;
        if let Some(bounds) = span_bounds(r.key, r.range_end) {
            for (key, ki) in self.index.range::<[u8], _>(bounds) {
                let Some((create, e)) = ki.get(at) else {
                    continue;
                };
                count += 1;
                if !r.count_only && kvs.len() < fetch_max {
                    let value = if need_values {
                        self.value_of(key, e)?
                    } else {
                        Cow::Borrowed(&[][..])
                    };
                    kvs.push(kv_ref(key, create, e, value));
                }
            }
        }
        if r.count_only {
            return Ok(RangeResult {
                kvs: Vec::new(),
                more: false,
                count,
            });
        }
        if filtered {
            kvs.retain(|kv| passes_revision_filters(r, kv));
        }
        sort_kvs(&mut kvs, r.sort_order, r.sort_target);
        let mut more = false;
        if let Ok(limit) = usize::try_from(r.limit) {
            if limit > 0 && kvs.len() > limit {
                kvs.truncate(limit);
                more = true;
            }
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value = Cow::Borrowed(&[]));
        }
        Ok(RangeResult { kvs, more, count })
    }

    /// Writes one key (etcd's `Put`): one new revision.
    pub fn put(&mut self, r: &PutReq<'_>) -> Result<PutResult, MvccError> {
        check_put(r)?;
        let result = self.put_at(r, self.current_revision + 1)?;
        self.current_revision += 1;
        Ok(result)
    }

    /// Applies a checked put at `revision` (the next revision, possibly
    /// shared by a txn). Fails before changing anything.
    pub(crate) fn put_at(
        &mut self,
        r: &PutReq<'_>,
        revision: Revision,
    ) -> Result<PutResult, MvccError> {
        // One tree search for the common case of an existing key: the
        // keys of a big keyspace share long prefixes, and every comparison
        // of the search is a memcmp.
        if let Some(ki) = self.index.get_mut(r.key) {
            let latest = ki.latest();
            if (r.ignore_value || r.ignore_lease) && latest.is_none() {
                return Err(MvccError::KeyNotFound);
            }
            let prev_kv = match latest.filter(|_| r.prev_kv) {
                Some((c, e)) => {
                    let v = load(self.source.as_deref(), r.key, e)?;
                    Some(kv_ref(r.key, c, e, v).to_key_value())
                }
                None => None,
            };
            let value: Box<[u8]> = match latest {
                Some((_, e)) if r.ignore_value => {
                    load(self.source.as_deref(), r.key, e)?.into_owned().into()
                }
                _ => r.value.into(),
            };
            let lease = match latest {
                Some((_, e)) if r.ignore_lease => e.lease,
                _ => r.lease,
            };
            let (added_bytes, created) = ki.put(revision, value, lease);
            self.size_bytes += added_bytes;
            if created {
                self.live_keys += 1;
            }
            if self.recording {
                let (create_revision, e) = ki.latest_after_put();
                let change = Change::Put {
                    revision,
                    key: r.key.into(),
                    create_revision,
                    version: e.version,
                    lease: e.lease,
                    value: match &e.value {
                        Val::Mem(v) => v.clone(),
                        Val::Stored { .. } => {
                            panic!("invariant violated: a value just put is in memory")
                        }
                    },
                };
                self.changes.push(change);
            }
            return Ok(PutResult { prev_kv });
        }
        if r.ignore_value || r.ignore_lease {
            return Err(MvccError::KeyNotFound);
        }
        let ki = KeyIndex::new(revision, r.value.into(), r.lease);
        self.size_bytes += KEY_OVERHEAD_BYTES + r.key.len() as u64 + ki.size_bytes();
        self.index.insert(r.key.into(), ki);
        self.live_keys += 1;
        self.note(|| Change::Put {
            revision,
            key: r.key.into(),
            create_revision: revision,
            version: 1,
            lease: r.lease,
            value: r.value.into(),
        });
        let prev_kv = None;
        Ok(PutResult { prev_kv })
    }

    /// Deletes `[key, range_end)` (etcd's `DeleteRange`): one new revision
    /// if at least one key was deleted, none otherwise.
    pub fn delete_range(&mut self, r: &DeleteRangeReq<'_>) -> Result<DeleteResult, MvccError> {
        if r.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let result = self.delete_at(r, self.current_revision + 1)?;
        if result.deleted > 0 {
            self.current_revision += 1;
        }
        Ok(result)
    }

    /// Tombstones every live key of the range at `revision`. With
    /// `prev_kv` the previous values are read first, so a value that cannot
    /// be read fails the delete before anything changed.
    pub(crate) fn delete_at(
        &mut self,
        r: &DeleteRangeReq<'_>,
        revision: Revision,
    ) -> Result<DeleteResult, MvccError> {
        let mut result = DeleteResult::default();
        let Some(bounds) = span_bounds(r.key, r.range_end) else {
            return Ok(result);
        };
        if r.prev_kv {
            for (key, ki) in self.index.range::<[u8], _>(bounds) {
                if let Some((create, e)) = ki.latest() {
                    let v = self.value_of(key, e)?;
                    result
                        .prev_kvs
                        .push(kv_ref(key, create, e, v).to_key_value());
                }
            }
        }
        for (key, ki) in self.index.range_mut::<[u8], _>(bounds) {
            if ki.latest().is_none() {
                continue;
            }
            let deleted = ki.tombstone(revision);
            assert!(deleted, "store invariant: a live key can be tombstoned");
            result.deleted += 1;
            if self.recording {
                self.changes.push(Change::Tombstone {
                    revision,
                    key: key.clone(),
                });
            }
        }
        self.live_keys -= usize::try_from(result.deleted).expect("deleted count is non-negative");
        Ok(result)
    }

    /// The value `e` (an entry of `key`) holds: borrowed from memory, or
    /// fetched from the value source.
    pub(crate) fn value_of<'s>(
        &'s self,
        key: &[u8],
        e: &'s Entry,
    ) -> Result<Cow<'s, [u8]>, MvccError> {
        load(self.source.as_deref(), key, e)
    }

    /// Reads evicted values through `source` from now on.
    pub fn set_value_source(&mut self, source: std::sync::Arc<dyn ValueSource>) {
        self.source = Some(source);
    }

    /// Drops from memory the values of puts up to `revision` that were
    /// handed out by [`Store::take_changes`] (the caller knows the page
    /// file durably holds them). Needs a value source. Returns how many
    /// values were evicted.
    pub fn evict_through(&mut self, revision: Revision) -> usize {
        if self.source.is_none() {
            self.resident.clear();
            return 0;
        }
        let mut evicted = 0;
        while self.resident.front().is_some_and(|(r, _)| *r <= revision) {
            let (r, key) = self.resident.pop_front().expect("checked non-empty");
            let value = self.index.get_mut(&key).and_then(|ki| ki.evict(r));
            if let (Some(v), Some(src)) = (value, &self.source) {
                src.offer(r, &key, v);
                evicted += 1;
            }
        }
        evicted
    }

    /// Recomputes the size accounting and the live key count from scratch
    /// and checks every key's invariants; panics on a mismatch. O(history).
    pub fn assert_invariants(&self) {
        let mut size_bytes = 0;
        let mut live = 0;
        for (key, ki) in &self.index {
            ki.assert_invariants();
            size_bytes += KEY_OVERHEAD_BYTES + key.len() as u64 + ki.size_bytes();
            live += usize::from(ki.latest().is_some());
        }
        assert_eq!(
            size_bytes, self.size_bytes,
            "store invariant: size accounting"
        );
        assert_eq!(live, self.live_keys, "store invariant: live key count");
        assert!(
            self.compact_revision <= self.current_revision,
            "store invariant: compact <= current"
        );
    }
}

/// `e`'s value from memory or from `source` (errors are logged there).
pub(crate) fn load<'s>(
    source: Option<&dyn ValueSource>,
    key: &[u8],
    e: &'s Entry,
) -> Result<Cow<'s, [u8]>, MvccError> {
    match (&e.value, source) {
        (Val::Mem(v), _) => Ok(Cow::Borrowed(v)),
        (Val::Stored { .. }, Some(src)) => src.fetch(e.mod_revision, key).map(Cow::Owned).map_err(
            |reason| {
                tracing::error!(revision = e.mod_revision, %reason, "cannot read a stored value");
                MvccError::ValueUnreadable {
                    revision: e.mod_revision,
                }
            },
        ),
        (Val::Stored { .. }, None) => {
            panic!("invariant violated: a value was evicted from a store without a value source")
        }
    }
}

fn passes_revision_filters(r: &RangeReq<'_>, kv: &KvRef<'_>) -> bool {
    (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
        && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
        && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
        && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
}

/// etcd's sort step: order None with a non-key target means Ascend; the
/// pairs arrive in key order, so Key + Ascend is already sorted.
fn sort_kvs(kvs: &mut [KvRef<'_>], order: SortOrder, target: SortTarget) {
    let order = match (order, target) {
        (SortOrder::None, SortTarget::Key) => return,
        (SortOrder::None, _) => SortOrder::Ascend,
        (o, _) => o,
    };
    match (order, target) {
        (SortOrder::Ascend, SortTarget::Key) => {}
        (SortOrder::Ascend, t) => kvs.sort_by(|a, b| cmp_by_target(a, b, t)),
        (_, t) => kvs.sort_by(|a, b| cmp_by_target(b, a, t)),
    }
}
