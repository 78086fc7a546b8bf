//! Reading verified FlatBuffers requests as the MVCC module's borrowed
//! request types: no copies, the slices point into the request buffer.

use cairn_schemas::rpc;

use crate::mvcc;

use super::error::RequestError;

fn bytes<'a>(v: Option<flatbuffers::Vector<'a, u8>>) -> &'a [u8] {
    v.map(|v| v.bytes()).unwrap_or(&[])
}

pub fn range<'a>(r: &rpc::RangeRequest<'a>) -> mvcc::RangeReq<'a> {
    mvcc::RangeReq {
        key: bytes(r.key()),
        range_end: bytes(r.range_end()),
        limit: r.limit(),
        revision: r.revision(),
        sort_order: match r.sort_order() {
            rpc::SortOrder::Ascend => mvcc::SortOrder::Ascend,
            rpc::SortOrder::Descend => mvcc::SortOrder::Descend,
            _ => mvcc::SortOrder::None,
        },
        sort_target: match r.sort_target() {
            rpc::SortTarget::Version => mvcc::SortTarget::Version,
            rpc::SortTarget::Create => mvcc::SortTarget::Create,
            rpc::SortTarget::Mod => mvcc::SortTarget::Mod,
            rpc::SortTarget::Value => mvcc::SortTarget::Value,
            _ => mvcc::SortTarget::Key,
        },
        keys_only: r.keys_only(),
        count_only: r.count_only(),
        min_mod_revision: r.min_mod_revision(),
        max_mod_revision: r.max_mod_revision(),
        min_create_revision: r.min_create_revision(),
        max_create_revision: r.max_create_revision(),
    }
}

pub fn put<'a>(r: &rpc::PutRequest<'a>) -> mvcc::PutReq<'a> {
    mvcc::PutReq {
        key: bytes(r.key()),
        value: bytes(r.value()),
        lease: r.lease(),
        prev_kv: r.prev_kv(),
        ignore_value: r.ignore_value(),
        ignore_lease: r.ignore_lease(),
    }
}

pub fn delete_range<'a>(r: &rpc::DeleteRangeRequest<'a>) -> mvcc::DeleteRangeReq<'a> {
    mvcc::DeleteRangeReq {
        key: bytes(r.key()),
        range_end: bytes(r.range_end()),
        prev_kv: r.prev_kv(),
    }
}

fn compare<'a>(c: &rpc::Compare<'a>) -> mvcc::Compare<'a> {
    let target = match c.target() {
        rpc::CompareTarget::Create => mvcc::CompareTarget::Create(c.create_revision()),
        rpc::CompareTarget::Mod => mvcc::CompareTarget::Mod(c.mod_revision()),
        rpc::CompareTarget::Value => mvcc::CompareTarget::Value(bytes(c.value())),
        rpc::CompareTarget::Lease => mvcc::CompareTarget::Lease(c.lease()),
        _ => mvcc::CompareTarget::Version(c.version()),
    };
    let result = match c.result() {
        rpc::CompareResult::Greater => mvcc::CompareResult::Greater,
        rpc::CompareResult::Less => mvcc::CompareResult::Less,
        rpc::CompareResult::NotEqual => mvcc::CompareResult::NotEqual,
        _ => mvcc::CompareResult::Equal,
    };
    mvcc::Compare {
        key: bytes(c.key()),
        range_end: bytes(c.range_end()),
        result,
        target,
    }
}

/// An op with no body (a union the client left empty) is refused.
fn op<'a>(o: &rpc::RequestOp<'a>) -> Result<mvcc::RequestOp<'a>, RequestError> {
    if let Some(r) = o.op_as_range_request() {
        Ok(mvcc::RequestOp::Range(range(&r)))
    } else if let Some(p) = o.op_as_put_request() {
        Ok(mvcc::RequestOp::Put(put(&p)))
    } else if let Some(d) = o.op_as_delete_range_request() {
        Ok(mvcc::RequestOp::DeleteRange(delete_range(&d)))
    } else if let Some(t) = o.op_as_txn_request() {
        Ok(mvcc::RequestOp::Txn(txn(&t)?))
    } else {
        Err(RequestError::invalid(
            "etcdserver: request op has no request",
        ))
    }
}

fn ops<'a>(
    v: Option<flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<rpc::RequestOp<'a>>>>,
) -> Result<Vec<mvcc::RequestOp<'a>>, RequestError> {
    v.map(|v| v.iter().map(|o| op(&o)).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

pub fn txn<'a>(t: &rpc::TxnRequest<'a>) -> Result<mvcc::TxnReq<'a>, RequestError> {
    Ok(mvcc::TxnReq {
        compare: t
            .compare()
            .map(|v| v.iter().map(|c| compare(&c)).collect())
            .unwrap_or_default(),
        success: ops(t.success())?,
        failure: ops(t.failure())?,
    })
}

/// True if the txn (and every nested txn) only reads: it can be served
/// without going through the log.
pub fn txn_is_read_only(t: &rpc::TxnRequest<'_>) -> bool {
    let ops_read_only =
        |v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<rpc::RequestOp<'_>>>>| {
            v.map(|v| {
                v.iter().all(|o| {
                    o.op_as_range_request().is_some()
                        || o.op_as_txn_request()
                            .map(|t| txn_is_read_only(&t))
                            .unwrap_or(false)
                })
            })
            .unwrap_or(true)
        };
    ops_read_only(t.success()) && ops_read_only(t.failure())
}

/// The alarm a request names; None for `AlarmType::None` (any).
pub fn alarm(a: rpc::AlarmType) -> Option<crate::alarm::Alarm> {
    match a {
        rpc::AlarmType::NoSpace => Some(crate::alarm::Alarm::NoSpace),
        rpc::AlarmType::Corrupt => Some(crate::alarm::Alarm::Corrupt),
        _ => None,
    }
}
