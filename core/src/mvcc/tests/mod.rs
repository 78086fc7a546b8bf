//! Tests of the MVCC store, named after the property they prove.
//!
//! - `kv`: puts, deletes, ranges (limits, filters, sorting, revisions);
//! - `txn`: compares, branches, one revision per txn, validation;
//! - `compact`: compaction and size accounting;
//! - `model`: a property test against a naive snapshot-per-revision model.

mod compact;
mod kv;
mod model;
mod restore;
mod strategies;
mod txn;

use super::*;

pub(super) const MAX_OPS: usize = 128;

pub(super) fn put(s: &mut Store, k: &str, v: &str) -> PutResult {
    s.put(&PutReq {
        key: k.as_bytes(),
        value: v.as_bytes(),
        ..Default::default()
    })
    .unwrap()
}

pub(super) fn del(s: &mut Store, k: &str, end: &str) -> DeleteResult {
    s.delete_range(&DeleteRangeReq {
        key: k.as_bytes(),
        range_end: end.as_bytes(),
        prev_kv: true,
    })
    .unwrap()
}

pub(super) fn get_at(s: &Store, k: &str, rev: i64) -> Option<KeyValue> {
    let r = s
        .range(&RangeReq {
            key: k.as_bytes(),
            revision: rev,
            ..Default::default()
        })
        .unwrap();
    r.kvs.first().map(KvRef::to_key_value)
}

pub(super) fn keys(r: &RangeResult<'_>) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8(kv.key.to_vec()).unwrap())
        .collect()
}

pub(super) fn rq<'a>(k: &'a str, end: &'a str) -> RangeReq<'a> {
    RangeReq {
        key: k.as_bytes(),
        range_end: end.as_bytes(),
        ..Default::default()
    }
}

pub(super) fn p<'a>(k: &'a str, v: &'a str) -> RequestOp<'a> {
    RequestOp::Put(PutReq {
        key: k.as_bytes(),
        value: v.as_bytes(),
        ..Default::default()
    })
}

pub(super) fn d<'a>(k: &'a str, end: &'a str) -> RequestOp<'a> {
    RequestOp::DeleteRange(DeleteRangeReq {
        key: k.as_bytes(),
        range_end: end.as_bytes(),
        prev_kv: false,
    })
}

pub(super) fn g(k: &str) -> RequestOp<'_> {
    RequestOp::Range(RangeReq {
        key: k.as_bytes(),
        ..Default::default()
    })
}

pub(super) fn cmp<'a>(k: &'a str, result: CompareResult, target: CompareTarget<'a>) -> Compare<'a> {
    Compare {
        key: k.as_bytes(),
        range_end: b"",
        result,
        target,
    }
}
