//! The watch set against a model: a log of every write. Whatever the
//! writes, the watches, which connections have room when, the syncs and
//! the compactions, each watcher is handed exactly the events of its range
//! from its start revision on, in revision order, each once — or a prefix
//! of them and then a cancel naming the compaction that took the rest.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::mvcc::{DeleteRangeReq, EventKind, PutReq, RequestOp, Revision, Store, TxnReq};

/// An event as the test compares them: revision, key, is a put, the
/// previous value.
type Seen = (Revision, Vec<u8>, bool, Option<Vec<u8>>);

/// What an outlet recorded for one watch.
#[derive(Debug, Default, Clone)]
struct Stream {
    events: Vec<Seen>,
    /// Header revisions of the responses, in order.
    headers: Vec<Revision>,
    canceled: Option<Revision>,
    progress: Vec<Revision>,
}

#[derive(Default)]
struct Recorder {
    streams: HashMap<(u64, i64), Stream>,
    /// Connections that have no room now.
    full: Vec<u64>,
}

impl Outlet for Recorder {
    fn has_room(&mut self, conn: u64) -> bool {
        !self.full.contains(&conn)
    }
    fn events(&mut self, w: &Watcher, revision: Revision, events: &[&WatchEvent]) {
        let s = self.streams.entry((w.conn, w.watch_id)).or_default();
        assert!(s.canceled.is_none(), "events after the cancel");
        s.headers.push(revision);
        for e in events {
            s.events.push((
                e.event.kv.mod_revision,
                e.event.kv.key.clone(),
                e.event.kind == EventKind::Put,
                // Filled when any watcher wants it; only these get it.
                e.prev_kv
                    .as_ref()
                    .filter(|_| w.prev_kv)
                    .map(|kv| kv.value.clone()),
            ));
        }
    }
    fn canceled(&mut self, w: &Watcher, compact_revision: Revision, reason: &str) {
        assert_eq!(reason, COMPACTED_REASON);
        let s = self.streams.entry((w.conn, w.watch_id)).or_default();
        s.canceled = Some(compact_revision);
    }
    fn progress(&mut self, w: &Watcher, revision: Revision) {
        let s = self.streams.entry((w.conn, w.watch_id)).or_default();
        s.progress.push(revision);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8),
    Delete(u8, Option<u8>),
    /// Puts of distinct keys in one txn (one revision, several events).
    Txn(Vec<u8>),
    Watch {
        conn: u64,
        key: u8,
        end: Option<u8>,
        start: Revision,
        no_put: bool,
        prev_kv: bool,
    },
    Cancel(u64, i64),
    Full(u64),
    Room(u64),
    Sync,
    Compact(Revision),
    DropConnection(u64),
}

const KEYS: &[u8] = b"abcdef";

fn op() -> impl Strategy<Value = Op> {
    let k = || prop::sample::select(KEYS.to_vec());
    prop_oneof![
        6 => (k(), any::<u8>()).prop_map(|(k, v)| Op::Put(k, v % 4)),
        2 => (k(), proptest::option::of(prop::sample::select(b"bdfg".to_vec())))
            .prop_map(|(k, e)| Op::Delete(k, e)),
        2 => proptest::sample::subsequence(KEYS.to_vec(), 1..4).prop_map(Op::Txn),
        3 => (0u64..3, k(), proptest::option::of(prop::sample::select(b"\0cdg".to_vec())),
              prop_oneof![2 => Just(0i64), 3 => 1i64..30], any::<bool>(), any::<bool>())
            .prop_map(|(conn, key, end, start, no_put, prev_kv)| Op::Watch {
                conn, key, end, start, no_put: no_put && start % 3 == 0, prev_kv,
            }),
        1 => (0u64..3, 0i64..4).prop_map(|(c, w)| Op::Cancel(c, w)),
        1 => (0u64..3).prop_map(Op::Full),
        2 => (0u64..3).prop_map(Op::Room),
        2 => Just(Op::Sync),
        1 => (1i64..30).prop_map(Op::Compact),
        1 => (0u64..3).prop_map(Op::DropConnection),
    ]
}

/// One write as the model logs it.
#[derive(Debug, Clone)]
struct Logged {
    revision: Revision,
    key: Vec<u8>,
    put: bool,
    prev: Option<Vec<u8>>,
}

struct Harness {
    store: Store,
    set: WatchSet,
    out: Recorder,
    log: Vec<Logged>,
    /// (conn, watch id) -> (spec, first revision it may see, whether it
    /// started at the compaction point: the deletes made there are gone).
    watches: HashMap<(u64, i64), (WatchSpec, Revision, bool)>,
    dropped: Vec<(u64, i64)>,
}

impl Harness {
    fn apply(&mut self, f: impl FnOnce(&mut Store) -> bool) {
        let mark = self.store.pending_changes();
        let before = self.store.clone();
        if !f(&mut self.store) {
            return;
        }
        for c in self.store.changes_since(mark) {
            if let Some(e) = crate::mvcc::Event::from_change(c) {
                let prev = before
                    .kv_at(&e.kv.key, e.revision() - 1)
                    .ok()
                    .flatten()
                    .map(|kv| kv.value);
                self.log.push(Logged {
                    revision: e.revision(),
                    key: e.kv.key.clone(),
                    put: e.kind == EventKind::Put,
                    prev,
                });
            }
        }
        let changes = self.store.changes_since(mark).to_vec();
        self.set.notify(&self.store, &changes, &mut self.out);
        // The change log would grow without end otherwise.
        self.store.take_changes();
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Put(k, v) => self.apply(|s| {
                s.put(&PutReq {
                    key: &[k],
                    value: &[v],
                    ..Default::default()
                })
                .is_ok()
            }),
            Op::Delete(k, e) => self.apply(|s| {
                let end = e.map(|e| vec![e]).unwrap_or_default();
                s.delete_range(&DeleteRangeReq {
                    key: &[k],
                    range_end: &end,
                    prev_kv: false,
                })
                .is_ok_and(|r| r.deleted > 0)
            }),
            Op::Txn(keys) => self.apply(|s| {
                let keys: Vec<[u8; 1]> = keys.iter().map(|&k| [k]).collect();
                let t = TxnReq {
                    compare: vec![],
                    success: keys
                        .iter()
                        .map(|k| {
                            RequestOp::Put(PutReq {
                                key: k,
                                value: b"t",
                                ..Default::default()
                            })
                        })
                        .collect(),
                    failure: vec![],
                };
                s.txn(&t, 128).is_ok()
            }),
            Op::Watch {
                conn,
                key,
                end,
                start,
                no_put,
                prev_kv,
            } => {
                let spec = WatchSpec {
                    key: vec![key],
                    range_end: end.map(|e| vec![e]).unwrap_or_default(),
                    start_revision: start,
                    no_put,
                    prev_kv,
                    ..Default::default()
                };
                let current = self.store.current_revision();
                match self.set.create(conn, 1, &spec, current) {
                    Ok(c) => {
                        let from = if start == 0 { current + 1 } else { start };
                        // Ids of a closed connection are used again.
                        let id = (conn, c.watch_id);
                        self.dropped.retain(|d| *d != id);
                        self.out.streams.remove(&id);
                        let at_compaction = start != 0 && start == self.store.compact_revision();
                        self.watches.insert(id, (spec, from, at_compaction));
                    }
                    Err(CreateError::EmptyRange) => {
                        assert!(end.is_some_and(|e| e != 0 && e <= key));
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Cancel(conn, id) => {
                let known = self.watches.contains_key(&(conn, id))
                    && !self.dropped.contains(&(conn, id))
                    && self
                        .out
                        .streams
                        .get(&(conn, id))
                        .is_none_or(|s| s.canceled.is_none());
                assert_eq!(self.set.cancel(conn, id).is_some(), known);
                if known {
                    self.dropped.push((conn, id));
                }
            }
            Op::Full(c) => self.out.full.push(c),
            Op::Room(c) => self.out.full.retain(|&f| f != c),
            Op::Sync => {
                self.set.sync(&self.store, &mut self.out);
            }
            Op::Compact(r) => {
                let mark = self.store.pending_changes();
                if self.store.compact(r).is_ok() {
                    let changes = self.store.changes_since(mark).to_vec();
                    self.set.notify(&self.store, &changes, &mut self.out);
                }
                self.store.take_changes();
            }
            Op::DropConnection(c) => {
                self.set.drop_connection(c);
                for k in self.watches.keys() {
                    if k.0 == c && !self.dropped.contains(k) {
                        self.dropped.push(*k);
                    }
                }
            }
        }
        self.set.assert_invariants();
    }

    /// Everything gets room; syncs until no watcher is behind.
    fn drain(&mut self) {
        self.out.full.clear();
        for _ in 0..1000 {
            if self.set.sync(&self.store, &mut self.out) == 0 {
                return;
            }
        }
        panic!("watchers never caught up");
    }

    fn check(&self) {
        for (id, (spec, from, at_compaction)) in &self.watches {
            let range = KeyRange::new(&spec.key, &spec.range_end).expect("created");
            let mut want: Vec<_> = self
                .log
                .iter()
                .filter(|l| l.revision >= *from && range.contains(&l.key))
                .filter(|l| !(spec.no_put && l.put))
                .filter(|l| !(*at_compaction && !l.put && l.revision == *from))
                .map(|l| {
                    let prev = if spec.prev_kv { l.prev.clone() } else { None };
                    (l.revision, l.key.clone(), l.put, prev)
                })
                .collect();
            let stream = self.out.streams.get(id).cloned().unwrap_or_default();
            let mut got = stream.events.clone();
            // Revision order, each revision once (headers never go back).
            assert!(
                got.windows(2).all(|w| w[0].0 <= w[1].0),
                "{id:?}: out of revision order: {got:?}"
            );
            assert!(stream.headers.windows(2).all(|w| w[0] < w[1]), "{id:?}");
            // Within a revision live events follow the txn's order and
            // replayed ones key order: compare as sets per revision. A
            // prev_kv read after its revision was compacted is absent
            // (etcd's too): compare prev_kvs only where none could be.
            let compact = self.store.compact_revision();
            for e in got.iter_mut().chain(want.iter_mut()) {
                if e.0 - 1 < compact {
                    e.3 = None;
                }
            }
            got.sort();
            want.sort();
            if self.dropped.contains(id) {
                assert!(
                    want.starts_with(&got) || got.is_empty() || prefix_by_revision(&want, &got),
                    "{id:?}: canceled watch saw more than its events: {got:?} vs {want:?}"
                );
                continue;
            }
            match stream.canceled {
                Some(compact) => {
                    assert!(compact <= self.store.compact_revision());
                    assert!(got.last().is_none_or(|g| g.0 < compact));
                    assert!(
                        prefix_by_revision(&want, &got),
                        "{id:?}: compacted watch: {got:?} not a prefix of {want:?}"
                    );
                }
                None => assert_eq!(got, want, "{id:?} {spec:?}"),
            }
        }
    }
}

/// `got` is `want` up to some revision.
fn prefix_by_revision<T: PartialEq + Clone>(
    want: &[(Revision, T, bool, Option<Vec<u8>>)],
    got: &[(Revision, T, bool, Option<Vec<u8>>)],
) -> bool {
    let upto = got.last().map_or(0, |g| g.0);
    let cut: Vec<_> = want.iter().filter(|w| w.0 <= upto).cloned().collect();
    cut.len() == got.len() && cut.iter().zip(got).all(|(a, b)| a == b)
}

fn harness() -> Harness {
    let mut store = Store::new();
    store.record_changes(true);
    Harness {
        store,
        set: WatchSet::new(Limits {
            max_watchers_per_conn: 64,
            history: crate::mvcc::HistoryLimits {
                max_revisions: 3,
                max_bytes: 200,
            },
            watchers_per_sync: 2,
        }),
        out: Recorder::default(),
        log: Vec::new(),
        watches: HashMap::new(),
        dropped: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_watcher_sees_its_events_once_in_order(ops in proptest::collection::vec(op(), 1..120)) {
        let mut h = harness();
        for op in ops {
            h.step(op);
        }
        h.drain();
        h.check();
    }
}

#[test]
fn compacted_start_revision_cancels_with_the_compact_revision() {
    let mut h = harness();
    for v in 0..5 {
        h.step(Op::Put(b'a', v));
    }
    h.store.compact(4).unwrap();
    let spec = WatchSpec {
        key: b"a".to_vec(),
        start_revision: 2,
        ..Default::default()
    };
    let c = h
        .set
        .create(1, 9, &spec, h.store.current_revision())
        .unwrap();
    assert!(c.unsynced);
    h.set.sync(&h.store, &mut h.out);
    assert_eq!(h.out.streams[&(1, c.watch_id)].canceled, Some(4));
    assert!(h.set.is_empty());
}

#[test]
fn ids_count_from_zero_per_connection_and_duplicates_are_refused() {
    let mut set = WatchSet::new(Limits::default());
    let spec = WatchSpec {
        key: b"a".to_vec(),
        ..Default::default()
    };
    assert_eq!(set.create(1, 1, &spec, 1).unwrap().watch_id, 0);
    assert_eq!(set.create(1, 2, &spec, 1).unwrap().watch_id, 1);
    assert_eq!(set.create(2, 3, &spec, 1).unwrap().watch_id, 0);
    let explicit = WatchSpec {
        watch_id: 1,
        ..spec.clone()
    };
    assert_eq!(
        set.create(1, 4, &explicit, 1),
        Err(CreateError::DuplicateId)
    );
    let empty = WatchSpec {
        range_end: b"a".to_vec(),
        ..spec
    };
    assert_eq!(set.create(1, 5, &empty, 1), Err(CreateError::EmptyRange));
}

#[test]
fn progress_goes_to_quiet_synced_watchers_only() {
    let mut h = harness();
    let spec = WatchSpec {
        key: b"a".to_vec(),
        progress_notify: true,
        ..Default::default()
    };
    let quiet = h.set.create(1, 1, &spec, 1).unwrap().watch_id;
    let busy = h.set.create(2, 1, &spec, 1).unwrap().watch_id;
    h.set.progress_tick(1, &mut h.out);
    h.out.full.push(1);
    h.step(Op::Put(b'a', 1));
    h.set.progress_tick(2, &mut h.out);
    // Connection 1 had no room: its watcher is unsynced and gets no
    // progress; connection 2's got an event since the first tick.
    assert_eq!(h.out.streams[&(1, quiet)].progress, vec![1]);
    assert_eq!(h.out.streams[&(2, busy)].progress, vec![1]);
    assert!(!h.set.all_synced(1));
    h.set.progress_tick(2, &mut h.out);
    assert_eq!(h.out.streams[&(2, busy)].progress, vec![1, 2]);
}
