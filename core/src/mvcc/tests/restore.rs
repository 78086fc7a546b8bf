//! The change log rebuilds the store: after any mix of writes and
//! compactions, a store restored from the records the changes leave (as
//! the page file holds them) answers every read at every readable revision
//! exactly as the original does.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::model::run_store;
use super::strategies::step;
use super::*;

/// A put record: create revision, version, lease, value; None = tombstone.
type StoredRecord = Option<(i64, i64, i64, Vec<u8>)>;

/// The history keyspace as the page file holds it: (revision, key) → record.
type Records = BTreeMap<(i64, Vec<u8>), StoredRecord>;

#[derive(Default)]
struct File {
    records: Records,
}

impl File {
    fn absorb(&mut self, changes: Vec<Change>) {
        for c in changes {
            match c {
                Change::Put {
                    revision,
                    key,
                    create_revision,
                    version,
                    lease,
                    value,
                } => {
                    let rec = (create_revision, version, lease, value.to_vec());
                    self.records.insert((revision, key.to_vec()), Some(rec));
                }
                Change::Tombstone { revision, key } => {
                    self.records.insert((revision, key.to_vec()), None);
                }
                Change::Drop { revision, key } => {
                    self.records.remove(&(revision, key.to_vec()));
                }
            }
        }
    }

    fn restore(&self, current: i64, compact: i64) -> Store {
        let mut s = Store::new();
        for ((rev, key), rec) in &self.records {
            match rec {
                Some((create, version, lease, value)) => s
                    .restore_put(*rev, key, *create, *version, *lease, value)
                    .unwrap(),
                None => s.restore_tombstone(*rev, key),
            }
        }
        s.finish_restore(current, compact).unwrap();
        s
    }
}

impl File {
    /// The restart's way: every record at once, values left in the file.
    fn restore_all(&self, current: i64, compact: i64, source: SharedFile) -> Store {
        let mut s = Store::new();
        let recs: Vec<LoadedRecord> = self
            .records
            .iter()
            .map(|((rev, key), rec)| LoadedRecord {
                key: key.as_slice().into(),
                revision: *rev,
                put: rec
                    .as_ref()
                    .map(|(create, version, lease, value)| LoadedPut {
                        create_revision: *create,
                        version: *version,
                        lease: *lease,
                        value_len: value.len(),
                    }),
            })
            .collect();
        s.set_value_source(std::sync::Arc::new(source));
        // In parts, as the restart's scanning threads hand them over.
        let mut head = recs;
        let tail = head.split_off(head.len() / 3);
        let parts = vec![head, tail];
        s.restore_all(parts).unwrap();
        s.finish_restore(current, compact).unwrap();
        s
    }
}

fn assert_same_reads(a: &Store, b: &Store) {
    assert_eq!(a.current_revision(), b.current_revision());
    assert_eq!(a.compact_revision(), b.compact_revision());
    assert_eq!(a.key_count(), b.key_count());
    b.assert_invariants();
    for rev in a.compact_revision().max(1)..=a.current_revision() {
        let all = RangeReq {
            key: b"\0",
            range_end: b"\0",
            revision: rev,
            ..Default::default()
        };
        let x = a.range(&all).unwrap().to_owned_result();
        let y = b.range(&all).unwrap().to_owned_result();
        assert_eq!(x, y, "reads at revision {rev}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn store_restored_from_its_changes_reads_the_same(steps in prop::collection::vec(step(), 1..60)) {
        let mut store = Store::new();
        store.record_changes(true);
        let mut file = File::default();
        for s in &steps {
            run_store(&mut store, s);
            file.absorb(store.take_changes());
            let restored = file.restore(store.current_revision(), store.compact_revision);
            assert_same_reads(&store, &restored);
            let shared = SharedFile::default();
            *shared.0.lock().unwrap() = file.records.clone();
            let bulk = file.restore_all(store.current_revision(), store.compact_revision, shared);
            assert_same_reads(&store, &bulk);
        }
    }
}

#[test]
fn put_then_delete_in_one_txn_restores_as_absent() {
    let mut store = Store::new();
    store.record_changes(true);
    put(&mut store, "a", "1");
    let t = TxnReq {
        compare: vec![],
        success: vec![
            RequestOp::Put(PutReq {
                key: b"a",
                value: b"2",
                ..Default::default()
            }),
            RequestOp::Txn(TxnReq {
                compare: vec![],
                success: vec![RequestOp::DeleteRange(DeleteRangeReq {
                    key: b"a",
                    ..Default::default()
                })],
                failure: vec![],
            }),
        ],
        failure: vec![],
    };
    // Whether or not validation allows it, restore must agree with the store.
    let _ = store.txn(&t, MAX_OPS);
    let mut file = File::default();
    file.absorb(store.take_changes());
    let restored = file.restore(store.current_revision(), store.compact_revision);
    assert_same_reads(&store, &restored);
}

#[test]
fn restore_refuses_records_that_break_the_history() {
    let mut s = Store::new();
    s.restore_put(5, b"k", 5, 1, 0, b"v").unwrap();
    assert!(
        s.restore_put(6, b"k", 5, 3, 0, b"v").is_err(),
        "version gap"
    );
    assert!(
        s.restore_put(7, b"k", 2, 1, 0, b"v").is_err(),
        "wrong generation"
    );
    assert!(s.finish_restore(4, -1).is_err(), "current below a record");
    assert!(s.finish_restore(9, 10).is_err(), "compact past current");
}

/// The file as a value source for a store that evicts.
#[derive(Debug, Default, Clone)]
struct SharedFile(std::sync::Arc<std::sync::Mutex<Records>>);

impl ValueSource for SharedFile {
    fn fetch(&self, revision: Revision, key: &[u8]) -> Result<Vec<u8>, String> {
        let recs = self.0.lock().unwrap();
        match recs.get(&(revision, key.to_vec())) {
            Some(Some((_, _, _, v))) => Ok(v.clone()),
            Some(None) => Err("tombstone".into()),
            None => Err(format!("no record at {revision}")),
        }
    }

    fn offer(&self, _revision: Revision, _key: &[u8], _value: Box<[u8]>) {}
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Every operation (prev_kv, ignore_value, value compares and sorts
    /// included) gives the same result whether values are in memory or
    /// evicted to the file once it holds them.
    #[test]
    fn a_store_that_evicts_values_answers_as_one_that_keeps_them(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        let mut kept = Store::new();
        let mut evicting = Store::new();
        let shared = SharedFile::default();
        evicting.record_changes(true);
        evicting.set_value_source(std::sync::Arc::new(shared.clone()));
        let mut file = File::default();
        for (i, s) in steps.iter().enumerate() {
            let a = run_store(&mut kept, s);
            let b = run_store(&mut evicting, s);
            prop_assert_eq!(a, b, "step {} {:?}", i, s);
            file.absorb(evicting.take_changes());
            *shared.0.lock().unwrap() = file.records.clone();
            evicting.evict_through(evicting.current_revision());
            assert_same_reads(&kept, &evicting);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A crash after a compaction's meta commit but before its records were
    /// deleted leaves them in the file; the restart's recompact drops them
    /// again, and the result is the file the complete commit would have left.
    #[test]
    fn recompact_after_restart_drops_what_an_interrupted_compaction_left(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        let mut store = Store::new();
        store.record_changes(true);
        let mut complete = File::default();
        let mut interrupted = File::default();
        for s in &steps {
            run_store(&mut store, s);
            let changes = store.take_changes();
            let kept: Vec<Change> = changes
                .iter()
                .filter(|c| !matches!(c, Change::Drop { .. }))
                .cloned()
                .collect();
            complete.absorb(changes);
            interrupted.absorb(kept);
        }
        let mut restored = interrupted.restore(store.current_revision(), store.compact_revision);
        restored.record_changes(true);
        restored.recompact();
        interrupted.absorb(restored.take_changes());
        prop_assert_eq!(&interrupted.records, &complete.records);
        let again = interrupted.restore(store.current_revision(), store.compact_revision);
        assert_same_reads(&store, &again);
    }
}

#[test]
fn bulk_restore_of_many_records_folds_across_threads() {
    // Enough records for the fold on every core: keys in random order,
    // several revisions and generations per key (deletes end some), the
    // restore must see each key's records in revision order and count live
    // keys across the runs the threads fold.
    let mut store = Store::new();
    store.record_changes(true);
    let mut x: u64 = 12345;
    for i in 0..150_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let k = format!("key{:05}", (x >> 33) % 40_000);
        if i % 7 == 3 {
            del(&mut store, &k, "");
        } else {
            put(&mut store, &k, "v");
        }
    }
    let mut file = File::default();
    file.absorb(store.take_changes());
    let shared = SharedFile::default();
    *shared.0.lock().unwrap() = file.records.clone();
    let bulk = file.restore_all(store.current_revision(), store.compact_revision, shared);
    bulk.assert_invariants();
    assert_eq!(bulk.key_count(), store.key_count());
    let all = RangeReq {
        key: b"\0",
        range_end: b"\0",
        ..Default::default()
    };
    assert_eq!(
        bulk.range(&all).unwrap().to_owned_result(),
        store.range(&all).unwrap().to_owned_result()
    );
}
