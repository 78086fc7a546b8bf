//! Transactions: validation, compares, and applying a branch under one
//! revision.
//!
//! The order follows etcd (`checkTxnRequest` + `checkIntervals` before the
//! proposal, then `applierV3backend.Txn` at apply):
//! 1. [`validate_txn`]: list lengths, empty keys, `ignore_*` flags, and no
//!    key written twice (or put and deleted) in one branch.
//! 2. Every compare of the txn *and of the nested txns on the taken path*
//!    is evaluated against the state before the txn (etcd's
//!    `compareToPath`), giving the path.
//! 3. Checks on the path that can fail without writing anything: a put with
//!    `ignore_value`/`ignore_lease` on a missing key (`KeyNotFound`), a
//!    range at a future or compacted revision.
//! 4. The path's ops run in order at revision `current + 1`; later ops see
//!    earlier writes. The revision is committed only if something changed.

use super::store::{check_put, span_bounds, Store};
use super::types::{
    Compare, CompareResult, CompareTarget, MvccError, OpResult, RangeReq, RequestOp, Revision,
    TxnReq, TxnResult,
};

/// etcd's `checkTxnRequest` followed by `checkIntervals` on both branches:
/// the checks a txn must pass before it is applied. Pure; deterministic.
///
/// `max_txn_ops` bounds each list (compare, success, failure) at every
/// nesting level. It must be the same on every replica, since [`Store::txn`]
/// re-checks at apply time.
pub fn validate_txn(r: &TxnReq<'_>, max_txn_ops: usize) -> Result<(), MvccError> {
    check_txn_request(r, max_txn_ops)?;
    check_intervals(&r.success)?;
    check_intervals(&r.failure)?;
    Ok(())
}

fn check_txn_request(r: &TxnReq<'_>, max_txn_ops: usize) -> Result<(), MvccError> {
    let ops_max = r.compare.len().max(r.success.len()).max(r.failure.len());
    if ops_max > max_txn_ops {
        return Err(MvccError::TooManyOps);
    }
    if r.compare.iter().any(|c| c.key.is_empty()) {
        return Err(MvccError::EmptyKey);
    }
    for op in r.success.iter().chain(&r.failure) {
        match op {
            RequestOp::Range(q) if q.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::Range(_) => {}
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::DeleteRange(_) => {}
            RequestOp::Txn(t) => check_txn_request(t, max_txn_ops)?,
        }
    }
    Ok(())
}

/// A deleted interval `[begin, end)`; `end = None` means unbounded (etcd's
/// `range_end = [0]`), a single key is `[key, key\0)`.
struct DelSpan<'a> {
    begin: &'a [u8],
    end: DelEnd<'a>,
}

enum DelEnd<'a> {
    Point,
    Before(&'a [u8]),
    Unbounded,
}

impl DelSpan<'_> {
    fn contains(&self, key: &[u8]) -> bool {
        match self.end {
            DelEnd::Point => key == self.begin,
            DelEnd::Before(end) => self.begin <= key && key < end,
            DelEnd::Unbounded => self.begin <= key,
        }
    }
}

fn any_contains(dels: &[DelSpan<'_>], key: &[u8]) -> bool {
    dels.iter().any(|d| d.contains(key))
}

/// Keys put and spans deleted by a list of ops (nested txns included).
type Writes<'a> = (Vec<&'a [u8]>, Vec<DelSpan<'a>>);

/// etcd's `checkIntervals`: within one list of ops (one branch), a key may
/// be put at most once and not also deleted. A nested txn's two branches
/// exclude each other, so both may put the same key.
///
/// One deliberate difference: etcd's interval tree treats `range_end = [0]`
/// as an empty interval here (so `delete [k, ∞)` + `put k2` slipped through
/// and made etcd panic at apply); we treat it as unbounded, as reads do.
/// Cost: O(puts × deletes), both bounded by the request size.
fn check_intervals<'a>(ops: &'a [RequestOp<'a>]) -> Result<Writes<'a>, MvccError> {
    let mut dels: Vec<DelSpan<'a>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(DelSpan {
                begin: d.key,
                end: match d.range_end {
                    [] => DelEnd::Point,
                    [0] => DelEnd::Unbounded,
                    end => DelEnd::Before(end),
                },
            }),
            _ => None,
        })
        .collect();
    let mut puts: Vec<&'a [u8]> = Vec::new();
    for op in ops {
        let RequestOp::Txn(t) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&t.success)?;
        let (puts_else, dels_else) = check_intervals(&t.failure)?;
        for &k in &puts_then {
            if puts.contains(&k) || any_contains(&dels, k) {
                return Err(MvccError::DuplicateKey);
            }
            puts.push(k);
        }
        for &k in &puts_else {
            let from_then = puts_then.contains(&k);
            if (puts.contains(&k) && !from_then) || any_contains(&dels, k) {
                return Err(MvccError::DuplicateKey);
            }
            if !from_then {
                puts.push(k);
            }
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(p) = op else { continue };
        if puts.contains(&p.key) || any_contains(&dels, p.key) {
            return Err(MvccError::DuplicateKey);
        }
        puts.push(p.key);
    }
    Ok((puts, dels))
}

fn compare_i64(stored: i64, target: i64) -> std::cmp::Ordering {
    stored.cmp(&target)
}

/// etcd's `compareKV` on one key's fields (zeros and an empty value for a
/// missing key).
fn compare_fields(
    c: &Compare<'_>,
    create: i64,
    modr: i64,
    version: i64,
    value: &[u8],
    lease: i64,
) -> bool {
    let ord = match c.target {
        CompareTarget::Version(v) => compare_i64(version, v),
        CompareTarget::Create(v) => compare_i64(create, v),
        CompareTarget::Mod(v) => compare_i64(modr, v),
        CompareTarget::Lease(v) => compare_i64(lease, v),
        CompareTarget::Value(v) => value.cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

impl Store {
    /// etcd's `applyCompare` at the current revision: every key of the
    /// range must satisfy the compare; with no key, a value compare fails
    /// and the others compare against zero.
    fn compare_holds(&self, c: &Compare<'_>) -> Result<bool, MvccError> {
        let mut matched = false;
        if let Some(bounds) = span_bounds(c.key, c.range_end) {
            for (key, ki) in self.index.range::<[u8], _>(bounds) {
                let Some((create, e)) = ki.latest() else {
                    continue;
                };
                matched = true;
                // Only a value compare needs the value (maybe from disk).
                let value = match c.target {
                    CompareTarget::Value(_) => self.value_of(key, e)?,
                    _ => std::borrow::Cow::Borrowed(&[][..]),
                };
                if !compare_fields(c, create, e.mod_revision, e.version, &value, e.lease) {
                    return Ok(false);
                }
            }
        }
        Ok(matched
            || (!matches!(c.target, CompareTarget::Value(_)) && compare_fields(c, 0, 0, 0, &[], 0)))
    }

    /// etcd's `compareToPath`: the branch taken by the txn and by every
    /// nested txn on the taken branches, in depth-first order.
    fn compare_to_path(&self, t: &TxnReq<'_>, path: &mut Vec<bool>) -> Result<(), MvccError> {
        let mut ok = true;
        for c in &t.compare {
            if !self.compare_holds(c)? {
                ok = false;
                break;
            }
        }
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            if let RequestOp::Txn(nested) = op {
                self.compare_to_path(nested, path)?;
            }
        }
        Ok(())
    }

    /// Visits the ops on the taken path in execution order.
    fn walk_path<'r, 'a>(
        t: &'r TxnReq<'a>,
        path: &[bool],
        pos: &mut usize,
        f: &mut impl FnMut(&'r RequestOp<'a>) -> Result<(), MvccError>,
    ) -> Result<(), MvccError> {
        let ok = path[*pos];
        *pos += 1;
        for op in if ok { &t.success } else { &t.failure } {
            f(op)?;
            if let RequestOp::Txn(nested) = op {
                Self::walk_path(nested, path, pos, f)?;
            }
        }
        Ok(())
    }

    /// etcd's `checkRequests(checkPut)` then `checkRequests(checkRange)`,
    /// against the state before the txn.
    fn check_path(&self, t: &TxnReq<'_>, path: &[bool]) -> Result<(), MvccError> {
        Self::walk_path(t, path, &mut 0, &mut |op| match op {
            RequestOp::Put(p) if p.ignore_value || p.ignore_lease => {
                let exists = self.index.get(p.key).and_then(|ki| ki.latest()).is_some();
                if exists {
                    Ok(())
                } else {
                    Err(MvccError::KeyNotFound)
                }
            }
            _ => Ok(()),
        })?;
        Self::walk_path(t, path, &mut 0, &mut |op| match op {
            RequestOp::Range(q) => self.check_txn_range(q),
            _ => Ok(()),
        })
    }

    /// etcd's `checkRange`: 0 means current; otherwise the revision must
    /// lie in `[compact_revision, current_revision]`.
    fn check_txn_range(&self, q: &RangeReq<'_>) -> Result<(), MvccError> {
        if q.revision == 0 {
            Ok(())
        } else if q.revision > self.current_revision {
            Err(MvccError::FutureRevision)
        } else if q.revision < self.compact_revision {
            Err(self.compacted_error())
        } else {
            Ok(())
        }
    }

    /// Applies a txn (etcd's `Txn`): at most one new revision, shared by
    /// all its writes, and none if nothing changed (reads only, or deletes
    /// that matched nothing). Validates first with [`validate_txn`].
    /// On error nothing has changed.
    pub fn txn(&mut self, r: &TxnReq<'_>, max_txn_ops: usize) -> Result<TxnResult, MvccError> {
        validate_txn(r, max_txn_ops)?;
        let mut path = Vec::new();
        self.compare_to_path(r, &mut path)?;
        self.check_path(r, &path)?;
        let mut w = PendingWrite {
            revision: self.current_revision + 1,
            changed: false,
        };
        let mut pos = 0;
        let result = self.apply_branch(r, &path, &mut pos, &mut w);
        assert_eq!(pos, path.len(), "txn invariant: the whole path is applied");
        if w.changed {
            self.current_revision = w.revision;
        }
        Ok(result)
    }

    fn apply_branch(
        &mut self,
        t: &TxnReq<'_>,
        path: &[bool],
        pos: &mut usize,
        w: &mut PendingWrite,
    ) -> TxnResult {
        let succeeded = path[*pos];
        *pos += 1;
        let ops = if succeeded { &t.success } else { &t.failure };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(self.apply_op(op, path, pos, w));
        }
        TxnResult {
            succeeded,
            responses,
        }
    }

    fn apply_op(
        &mut self,
        op: &RequestOp<'_>,
        path: &[bool],
        pos: &mut usize,
        w: &mut PendingWrite,
    ) -> OpResult {
        match op {
            RequestOp::Range(q) => {
                let read_revision = if w.changed {
                    w.revision
                } else {
                    self.current_revision
                };
                let rr = self
                    .range_at(q, read_revision)
                    .unwrap_or_else(|e| mid_txn_failure("range", e));
                OpResult::Range(rr.to_owned_result())
            }
            RequestOp::Put(p) => {
                let res = self
                    .put_at(p, w.revision)
                    .unwrap_or_else(|e| mid_txn_failure("put", e));
                w.changed = true;
                OpResult::Put(res)
            }
            RequestOp::DeleteRange(d) => {
                let res = self
                    .delete_at(d, w.revision)
                    .unwrap_or_else(|e| mid_txn_failure("delete", e));
                w.changed |= res.deleted > 0;
                OpResult::DeleteRange(res)
            }
            RequestOp::Txn(nested) => OpResult::Txn(self.apply_branch(nested, path, pos, w)),
        }
    }
}

/// An op of a txn failed after earlier ops wrote: the store cannot roll
/// back. Validation and `check_path` admit every op on the path, so the
/// only way here is a stored value that cannot be read (I/O error or a
/// damaged page): stop, and let the restart replay the entry from the WAL.
fn mid_txn_failure(op: &str, e: MvccError) -> ! {
    match e {
        MvccError::ValueUnreadable { revision } => panic!(
            "a stored value (revision {revision}) could not be read during a txn {op}; \
             stopping (a restart replays the entry from the WAL)"
        ),
        e => panic!("txn invariant: validation and check_path admit every {op} ({e})"),
    }
}

/// The revision a txn writes at, and whether it has written yet.
struct PendingWrite {
    revision: Revision,
    changed: bool,
}
