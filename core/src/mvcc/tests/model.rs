//! Property test: the store against a naive model that keeps a full
//! snapshot (`BTreeMap<key, KeyValue>`) after every revision.
//!
//! Random puts, deletes, ranges at random revisions, nested txns and
//! compactions run on both; every result (or error) must be equal, and
//! after every step every readable revision must read back exactly the
//! model's snapshot. Txn validation (`validate_txn`) is shared and is
//! covered by its own unit tests.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::strategies::step;
use crate::mvcc::*;

type Snapshot = BTreeMap<Vec<u8>, KeyValue>;
const MAX_OPS: usize = 4;

#[derive(Clone, Debug)]
pub(super) struct MRange {
    pub(super) key: Vec<u8>,
    pub(super) end: Vec<u8>,
    pub(super) limit: i64,
    pub(super) revision: i64,
    pub(super) order: SortOrder,
    pub(super) target: SortTarget,
    pub(super) keys_only: bool,
    pub(super) count_only: bool,
    pub(super) filters: [i64; 4],
}

#[derive(Clone, Debug)]
pub(super) struct MPut {
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) lease: i64,
    pub(super) prev_kv: bool,
    pub(super) ignore_value: bool,
    pub(super) ignore_lease: bool,
}

#[derive(Clone, Debug)]
pub(super) struct MDel {
    pub(super) key: Vec<u8>,
    pub(super) end: Vec<u8>,
    pub(super) prev_kv: bool,
}

#[derive(Clone, Debug)]
pub(super) enum MTarget {
    Version(i64),
    Create(i64),
    Mod(i64),
    Value(Vec<u8>),
    Lease(i64),
}

#[derive(Clone, Debug)]
pub(super) struct MCompare {
    pub(super) key: Vec<u8>,
    pub(super) end: Vec<u8>,
    pub(super) result: CompareResult,
    pub(super) target: MTarget,
}

#[derive(Clone, Debug)]
pub(super) struct MTxn {
    pub(super) compare: Vec<MCompare>,
    pub(super) success: Vec<MOp>,
    pub(super) failure: Vec<MOp>,
}

#[derive(Clone, Debug)]
pub(super) enum MOp {
    Range(MRange),
    Put(MPut),
    Del(MDel),
    Txn(MTxn),
}

#[derive(Clone, Debug)]
pub(super) enum Step {
    Op(MOp),
    Compact(i64),
}

impl MRange {
    fn req(&self) -> RangeReq<'_> {
        let [min_mod_revision, max_mod_revision, min_create_revision, max_create_revision] =
            self.filters;
        RangeReq {
            key: &self.key,
            range_end: &self.end,
            limit: self.limit,
            revision: self.revision,
            sort_order: self.order,
            sort_target: self.target,
            keys_only: self.keys_only,
            count_only: self.count_only,
            min_mod_revision,
            max_mod_revision,
            min_create_revision,
            max_create_revision,
        }
    }
}

impl MPut {
    fn req(&self) -> PutReq<'_> {
        PutReq {
            key: &self.key,
            value: &self.value,
            lease: self.lease,
            prev_kv: self.prev_kv,
            ignore_value: self.ignore_value,
            ignore_lease: self.ignore_lease,
        }
    }
}

impl MDel {
    fn req(&self) -> DeleteRangeReq<'_> {
        DeleteRangeReq {
            key: &self.key,
            range_end: &self.end,
            prev_kv: self.prev_kv,
        }
    }
}

impl MTxn {
    fn req(&self) -> TxnReq<'_> {
        let compare = self
            .compare
            .iter()
            .map(|c| Compare {
                key: &c.key,
                range_end: &c.end,
                result: c.result,
                target: match &c.target {
                    MTarget::Version(v) => CompareTarget::Version(*v),
                    MTarget::Create(v) => CompareTarget::Create(*v),
                    MTarget::Mod(v) => CompareTarget::Mod(*v),
                    MTarget::Value(v) => CompareTarget::Value(v),
                    MTarget::Lease(v) => CompareTarget::Lease(*v),
                },
            })
            .collect();
        TxnReq {
            compare,
            success: self.success.iter().map(MOp::req).collect(),
            failure: self.failure.iter().map(MOp::req).collect(),
        }
    }
}

impl MOp {
    fn req(&self) -> RequestOp<'_> {
        match self {
            MOp::Range(r) => RequestOp::Range(r.req()),
            MOp::Put(p) => RequestOp::Put(p.req()),
            MOp::Del(d) => RequestOp::DeleteRange(d.req()),
            MOp::Txn(t) => RequestOp::Txn(t.req()),
        }
    }
}

// ---------------------------------------------------------------- model

fn in_span(key: &[u8], end: &[u8], k: &[u8]) -> bool {
    match end {
        [] => k == key,
        [0] => k >= key,
        _ => key <= k && k < end,
    }
}

/// The naive model: `snaps[rev]` is the whole state after revision `rev`
/// (`snaps[0]` is a placeholder, `snaps[1]` the empty initial state).
struct Model {
    snaps: Vec<Snapshot>,
    compact: i64,
}

impl Model {
    fn current(&self) -> i64 {
        self.snaps.len() as i64 - 1
    }

    fn latest(&self) -> &Snapshot {
        self.snaps.last().unwrap()
    }

    fn compacted(&self) -> MvccError {
        MvccError::Compacted {
            compact_revision: self.compact.max(0),
        }
    }

    /// etcd's range over one snapshot: fetch (limit + 1 unless sorting or
    /// filtering), filter, sort, truncate.
    fn range_in(snap: &Snapshot, r: &RangeReq<'_>) -> OwnedRangeResult {
        let mut kvs: Vec<KeyValue> = snap
            .values()
            .filter(|kv| in_span(r.key, r.range_end, &kv.key))
            .cloned()
            .collect();
        let count = kvs.len() as i64;
        if r.count_only {
            return OwnedRangeResult {
                kvs: vec![],
                more: false,
                count,
            };
        }
        let filtered = [
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision,
        ]
        .iter()
        .any(|&f| f != 0);
        if r.sort_order == SortOrder::None && !filtered && r.limit > 0 {
            kvs.truncate(r.limit as usize + 1);
        }
        kvs.retain(|kv| {
            !(r.max_mod_revision != 0 && kv.mod_revision > r.max_mod_revision
                || r.min_mod_revision != 0 && kv.mod_revision < r.min_mod_revision
                || r.max_create_revision != 0 && kv.create_revision > r.max_create_revision
                || r.min_create_revision != 0 && kv.create_revision < r.min_create_revision)
        });
        let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match r.sort_target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, vec![]),
                SortTarget::Create => (kv.create_revision, vec![]),
                SortTarget::Mod => (kv.mod_revision, vec![]),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        let order = match (r.sort_order, r.sort_target) {
            (SortOrder::None, SortTarget::Key) => SortOrder::None,
            (SortOrder::None, _) => SortOrder::Ascend,
            (o, _) => o,
        };
        match order {
            SortOrder::None => {}
            SortOrder::Ascend => kvs.sort_by_key(field),
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(field(kv))),
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() > r.limit as usize {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        OwnedRangeResult { kvs, more, count }
    }

    fn range(&self, r: &RangeReq<'_>) -> Result<OwnedRangeResult, MvccError> {
        if r.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        if r.revision > self.current() {
            return Err(MvccError::FutureRevision);
        }
        let at = if r.revision <= 0 {
            self.current()
        } else {
            r.revision
        };
        if at < self.compact {
            return Err(self.compacted());
        }
        Ok(Self::range_in(&self.snaps[at as usize], r))
    }

    fn put_in(w: &mut Snapshot, p: &PutReq<'_>, rev: i64) -> Result<PutResult, MvccError> {
        let old = w.get(p.key).cloned();
        if (p.ignore_value || p.ignore_lease) && old.is_none() {
            return Err(MvccError::KeyNotFound);
        }
        let kv = KeyValue {
            key: p.key.to_vec(),
            create_revision: old.as_ref().map_or(rev, |o| o.create_revision),
            mod_revision: rev,
            version: old.as_ref().map_or(1, |o| o.version + 1),
            value: if p.ignore_value {
                old.as_ref().unwrap().value.clone()
            } else {
                p.value.to_vec()
            },
            lease: if p.ignore_lease {
                old.as_ref().unwrap().lease
            } else {
                p.lease
            },
        };
        w.insert(p.key.to_vec(), kv);
        Ok(PutResult {
            prev_kv: old.filter(|_| p.prev_kv),
        })
    }

    fn delete_in(w: &mut Snapshot, d: &DeleteRangeReq<'_>) -> DeleteResult {
        let doomed: Vec<Vec<u8>> = w
            .keys()
            .filter(|k| in_span(d.key, d.range_end, k))
            .cloned()
            .collect();
        let mut res = DeleteResult {
            deleted: doomed.len() as i64,
            prev_kvs: vec![],
        };
        for k in doomed {
            let kv = w.remove(&k).unwrap();
            if d.prev_kv {
                res.prev_kvs.push(kv);
            }
        }
        res
    }

    fn compare(snap: &Snapshot, c: &Compare<'_>) -> bool {
        let kvs: Vec<&KeyValue> = snap
            .values()
            .filter(|kv| in_span(c.key, c.range_end, &kv.key))
            .collect();
        let holds = |kv: &KeyValue| {
            let ord = match c.target {
                CompareTarget::Version(v) => kv.version.cmp(&v),
                CompareTarget::Create(v) => kv.create_revision.cmp(&v),
                CompareTarget::Mod(v) => kv.mod_revision.cmp(&v),
                CompareTarget::Lease(v) => kv.lease.cmp(&v),
                CompareTarget::Value(v) => kv.value.as_slice().cmp(v),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if kvs.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && holds(&KeyValue::default());
        }
        kvs.into_iter().all(holds)
    }

    /// The branch a txn takes, judged on the state before the txn.
    fn branch<'t, 'a>(&self, t: &'t TxnReq<'a>) -> (bool, &'t [RequestOp<'a>]) {
        let ok = t.compare.iter().all(|c| Self::compare(self.latest(), c));
        (ok, if ok { &t.success } else { &t.failure })
    }

    fn precheck(&self, t: &TxnReq<'_>, ranges: bool) -> Result<(), MvccError> {
        for op in self.branch(t).1 {
            match op {
                RequestOp::Put(p)
                    if !ranges
                        && (p.ignore_value || p.ignore_lease)
                        && !self.latest().contains_key(p.key) =>
                {
                    return Err(MvccError::KeyNotFound);
                }
                RequestOp::Range(q) if ranges && q.revision != 0 => {
                    if q.revision > self.current() {
                        return Err(MvccError::FutureRevision);
                    }
                    if q.revision < self.compact {
                        return Err(self.compacted());
                    }
                }
                RequestOp::Txn(n) => self.precheck(n, ranges)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn apply_branch(&self, t: &TxnReq<'_>, w: &mut Snapshot, changed: &mut bool) -> TxnResult {
        let (succeeded, ops) = self.branch(t);
        let rev = self.current() + 1;
        let mut responses = vec![];
        for op in ops {
            responses.push(match op {
                RequestOp::Range(q) if q.revision > 0 => {
                    OpResult::Range(Self::range_in(&self.snaps[q.revision as usize], q))
                }
                RequestOp::Range(q) => OpResult::Range(Self::range_in(w, q)),
                RequestOp::Put(p) => {
                    *changed = true;
                    OpResult::Put(
                        Self::put_in(w, p, rev).expect("model: put admitted by prechecks"),
                    )
                }
                RequestOp::DeleteRange(d) => {
                    let res = Self::delete_in(w, d);
                    *changed |= res.deleted > 0;
                    OpResult::DeleteRange(res)
                }
                RequestOp::Txn(n) => OpResult::Txn(self.apply_branch(n, w, changed)),
            });
        }
        TxnResult {
            succeeded,
            responses,
        }
    }

    fn txn(&mut self, t: &TxnReq<'_>) -> Result<TxnResult, MvccError> {
        validate_txn(t, MAX_OPS)?;
        self.precheck(t, false)?;
        self.precheck(t, true)?;
        let mut w = self.latest().clone();
        let mut changed = false;
        let res = self.apply_branch(t, &mut w, &mut changed);
        if changed {
            self.snaps.push(w);
        }
        Ok(res)
    }

    fn compact(&mut self, rev: i64) -> Result<(), MvccError> {
        if rev <= self.compact {
            return Err(self.compacted());
        }
        if rev > self.current() {
            return Err(MvccError::FutureRevision);
        }
        self.compact = rev;
        Ok(())
    }
}

// ---------------------------------------------------------------- runner

#[derive(Debug, PartialEq)]
pub(super) enum Outcome {
    Range(Result<OwnedRangeResult, MvccError>),
    Put(Result<PutResult, MvccError>),
    Del(Result<DeleteResult, MvccError>),
    Txn(Result<TxnResult, MvccError>),
    Compact(Result<(), MvccError>),
}

pub(super) fn run_store(s: &mut Store, step: &Step) -> Outcome {
    match step {
        Step::Op(MOp::Range(r)) => Outcome::Range(s.range(&r.req()).map(|rr| rr.to_owned_result())),
        Step::Op(MOp::Put(p)) => Outcome::Put(s.put(&p.req())),
        Step::Op(MOp::Del(d)) => Outcome::Del(s.delete_range(&d.req())),
        Step::Op(MOp::Txn(t)) => Outcome::Txn(s.txn(&t.req(), MAX_OPS)),
        Step::Compact(rev) => Outcome::Compact(s.compact(*rev)),
    }
}

fn run_model(m: &mut Model, step: &Step) -> Outcome {
    match step {
        Step::Op(MOp::Range(r)) => Outcome::Range(m.range(&r.req())),
        Step::Op(MOp::Put(p)) => {
            let req = p.req();
            let res = crate::mvcc::store::check_put(&req).and_then(|()| {
                let mut w = m.latest().clone();
                let res = Model::put_in(&mut w, &req, m.current() + 1)?;
                m.snaps.push(w);
                Ok(res)
            });
            Outcome::Put(res)
        }
        Step::Op(MOp::Del(d)) => {
            if d.key.is_empty() {
                return Outcome::Del(Err(MvccError::EmptyKey));
            }
            let mut w = m.latest().clone();
            let res = Model::delete_in(&mut w, &d.req());
            if res.deleted > 0 {
                m.snaps.push(w);
            }
            Outcome::Del(Ok(res))
        }
        Step::Op(MOp::Txn(t)) => Outcome::Txn(m.txn(&t.req())),
        Step::Compact(rev) => Outcome::Compact(m.compact(*rev)),
    }
}

/// Every readable revision reads back the model's snapshot.
fn assert_same_history(s: &Store, m: &Model) {
    assert_eq!(s.current_revision(), m.current());
    assert_eq!(s.compact_revision(), m.compact.max(0));
    assert_eq!(s.key_count(), m.latest().len());
    s.assert_invariants();
    for rev in m.compact.max(1)..=m.current() {
        let all = RangeReq {
            key: b"\0",
            range_end: b"\0",
            revision: rev,
            ..Default::default()
        };
        let got = s.range(&all).unwrap().to_owned_result().kvs;
        let want: Vec<KeyValue> = m.snaps[rev as usize].values().cloned().collect();
        assert_eq!(got, want, "state at revision {rev}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_snapshot_model(steps in prop::collection::vec(step(), 1..60)) {
        let mut store = Store::new();
        let mut model = Model { snaps: vec![Snapshot::new(), Snapshot::new()], compact: -1 };
        for (i, step) in steps.iter().enumerate() {
            let got = run_store(&mut store, step);
            let want = run_model(&mut model, step);
            prop_assert_eq!(got, want, "step {} {:?}", i, step);
            assert_same_history(&store, &model);
        }
    }
}
