//! Building response tables into a reused FlatBufferBuilder.

use cairn_schemas::rpc;
use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::mvcc;

use super::error::RequestError;

/// What every response header carries.
#[derive(Clone, Copy, Debug)]
pub struct HeaderInfo {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: i64,
    pub raft_term: u64,
}

pub type Fbb = FlatBufferBuilder<'static>;

pub(super) fn header<'b>(b: &mut Fbb, h: &HeaderInfo) -> WIPOffset<rpc::ResponseHeader<'b>> {
    rpc::ResponseHeader::create(
        b,
        &rpc::ResponseHeaderArgs {
            cluster_id: h.cluster_id,
            member_id: h.member_id,
            revision: h.revision,
            raft_term: h.raft_term,
        },
    )
}

/// A key-value as the store hands it out: borrowed for reads, owned in
/// txn results.
pub trait KvView {
    fn kv_ref(&self) -> mvcc::KvRef<'_>;
}

impl KvView for mvcc::KvRef<'_> {
    fn kv_ref(&self) -> mvcc::KvRef<'_> {
        mvcc::KvRef {
            value: std::borrow::Cow::Borrowed(&self.value),
            ..*self
        }
    }
}

impl KvView for mvcc::KeyValue {
    fn kv_ref(&self) -> mvcc::KvRef<'_> {
        mvcc::KvRef {
            key: &self.key,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: std::borrow::Cow::Borrowed(&self.value),
            lease: self.lease,
        }
    }
}

pub(super) fn kv<'b>(
    b: &mut Fbb,
    kv: &impl KvView,
    keys_only: bool,
) -> WIPOffset<rpc::KeyValue<'b>> {
    let kv = kv.kv_ref();
    let key = b.create_vector(kv.key);
    let value = if keys_only || kv.value.is_empty() {
        None
    } else {
        Some(b.create_vector(&kv.value))
    };
    rpc::KeyValue::create(
        b,
        &rpc::KeyValueArgs {
            key: Some(key),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value,
            lease: kv.lease,
        },
    )
}

pub(super) fn finish(
    b: &mut Fbb,
    body_type: rpc::ResponseBody,
    body: WIPOffset<flatbuffers::UnionWIPOffset>,
) {
    let resp = rpc::Response::create(
        b,
        &rpc::ResponseArgs {
            body_type,
            body: Some(body),
        },
    );
    b.finish(resp, None);
}

fn range_table<'b, K: KvView>(
    b: &mut Fbb,
    h: &HeaderInfo,
    kvs: &[K],
    more: bool,
    count: i64,
    keys_only: bool,
) -> WIPOffset<rpc::RangeResponse<'b>> {
    let mut offs = Vec::with_capacity(kvs.len());
    for k in kvs {
        offs.push(kv(b, k, keys_only));
    }
    let kvs = b.create_vector(&offs);
    let header = header(b, h);
    rpc::RangeResponse::create(
        b,
        &rpc::RangeResponseArgs {
            header: Some(header),
            kvs: Some(kvs),
            more,
            count,
        },
    )
}

/// A RangeResponse. `keys_only` drops values (the store may already have).
pub fn range(b: &mut Fbb, h: &HeaderInfo, r: &mvcc::RangeResult<'_>, keys_only: bool) {
    b.reset();
    let t = range_table(b, h, &r.kvs, r.more, r.count, keys_only);
    finish(b, rpc::ResponseBody::RangeResponse, t.as_union_value());
}

fn put_table<'b>(
    b: &mut Fbb,
    h: &HeaderInfo,
    r: &mvcc::PutResult,
) -> WIPOffset<rpc::PutResponse<'b>> {
    let prev_kv = r.prev_kv.as_ref().map(|p| kv(b, p, false));
    let header = header(b, h);
    rpc::PutResponse::create(
        b,
        &rpc::PutResponseArgs {
            header: Some(header),
            prev_kv,
        },
    )
}

pub fn put(b: &mut Fbb, h: &HeaderInfo, r: &mvcc::PutResult) {
    b.reset();
    let t = put_table(b, h, r);
    finish(b, rpc::ResponseBody::PutResponse, t.as_union_value());
}

fn delete_table<'b>(
    b: &mut Fbb,
    h: &HeaderInfo,
    r: &mvcc::DeleteResult,
) -> WIPOffset<rpc::DeleteRangeResponse<'b>> {
    let prev = if r.prev_kvs.is_empty() {
        None
    } else {
        let offs: Vec<_> = r.prev_kvs.iter().map(|p| kv(b, p, false)).collect();
        Some(b.create_vector(&offs))
    };
    let header = header(b, h);
    rpc::DeleteRangeResponse::create(
        b,
        &rpc::DeleteRangeResponseArgs {
            header: Some(header),
            deleted: r.deleted,
            prev_kvs: prev,
        },
    )
}

pub fn delete_range(b: &mut Fbb, h: &HeaderInfo, r: &mvcc::DeleteResult) {
    b.reset();
    let t = delete_table(b, h, r);
    finish(
        b,
        rpc::ResponseBody::DeleteRangeResponse,
        t.as_union_value(),
    );
}

fn txn_table<'b>(
    b: &mut Fbb,
    h: &HeaderInfo,
    r: &mvcc::TxnResult,
) -> WIPOffset<rpc::TxnResponse<'b>> {
    // etcd fills only the revision in the headers of a txn's sub-responses.
    let sub = HeaderInfo {
        cluster_id: 0,
        member_id: 0,
        revision: h.revision,
        raft_term: 0,
    };
    let h_sub = &sub;
    let mut ops = Vec::with_capacity(r.responses.len());
    for op in &r.responses {
        let (op_type, op_off) = match op {
            mvcc::OpResult::Range(rr) => {
                let t = range_table(b, h_sub, &rr.kvs, rr.more, rr.count, false);
                (rpc::ResponseOpKind::RangeResponse, t.as_union_value())
            }
            mvcc::OpResult::Put(p) => (
                rpc::ResponseOpKind::PutResponse,
                put_table(b, h_sub, p).as_union_value(),
            ),
            mvcc::OpResult::DeleteRange(d) => (
                rpc::ResponseOpKind::DeleteRangeResponse,
                delete_table(b, h_sub, d).as_union_value(),
            ),
            mvcc::OpResult::Txn(t) => (
                rpc::ResponseOpKind::TxnResponse,
                txn_table(b, h_sub, t).as_union_value(),
            ),
        };
        ops.push(rpc::ResponseOp::create(
            b,
            &rpc::ResponseOpArgs {
                op_type,
                op: Some(op_off),
            },
        ));
    }
    let responses = b.create_vector(&ops);
    let header = header(b, h);
    rpc::TxnResponse::create(
        b,
        &rpc::TxnResponseArgs {
            header: Some(header),
            succeeded: r.succeeded,
            responses: Some(responses),
        },
    )
}

pub fn txn(b: &mut Fbb, h: &HeaderInfo, r: &mvcc::TxnResult) {
    b.reset();
    let t = txn_table(b, h, r);
    finish(b, rpc::ResponseBody::TxnResponse, t.as_union_value());
}

pub fn compaction(b: &mut Fbb, h: &HeaderInfo) {
    b.reset();
    let header = header(b, h);
    let t = rpc::CompactionResponse::create(
        b,
        &rpc::CompactionResponseArgs {
            header: Some(header),
        },
    );
    finish(b, rpc::ResponseBody::CompactionResponse, t.as_union_value());
}

pub fn defragment(b: &mut Fbb, h: &HeaderInfo) {
    b.reset();
    let header = header(b, h);
    let t = rpc::DefragmentResponse::create(
        b,
        &rpc::DefragmentResponseArgs {
            header: Some(header),
        },
    );
    finish(b, rpc::ResponseBody::DefragmentResponse, t.as_union_value());
}

/// One chunk of a snapshot file.
pub struct SnapshotChunk<'a> {
    pub snapshot_id: u64,
    pub total_bytes: u64,
    pub offset: u64,
    pub data: &'a [u8],
    pub revision: i64,
}

pub fn snapshot(b: &mut Fbb, h: &HeaderInfo, c: &SnapshotChunk<'_>) {
    b.reset();
    let header = header(b, h);
    let data = b.create_vector(c.data);
    let t = rpc::SnapshotResponse::create(
        b,
        &rpc::SnapshotResponseArgs {
            header: Some(header),
            snapshot_id: c.snapshot_id,
            total_bytes: c.total_bytes,
            offset: c.offset,
            data: Some(data),
            revision: c.revision,
        },
    );
    finish(b, rpc::ResponseBody::SnapshotResponse, t.as_union_value());
}

/// Fields of a StatusResponse besides the header.
pub struct StatusInfo<'a> {
    pub version: &'a str,
    pub db_size: i64,
    pub db_size_in_use: i64,
    pub leader: u64,
    pub raft_index: u64,
    pub raft_term: u64,
    pub raft_applied_index: u64,
    pub wal_fsyncs: u64,
    pub wal_entries: u64,
    pub is_learner: bool,
    /// etcd's status errors: one line per raised alarm.
    pub errors: Vec<String>,
}

pub fn status(b: &mut Fbb, h: &HeaderInfo, s: &StatusInfo<'_>) {
    b.reset();
    let version = b.create_string(s.version);
    let errors = if s.errors.is_empty() {
        None
    } else {
        let v: Vec<_> = s.errors.iter().map(|e| b.create_string(e)).collect();
        Some(b.create_vector(&v))
    };
    let header = header(b, h);
    let t = rpc::StatusResponse::create(
        b,
        &rpc::StatusResponseArgs {
            header: Some(header),
            version: Some(version),
            db_size: s.db_size,
            leader: s.leader,
            raft_index: s.raft_index,
            raft_term: s.raft_term,
            raft_applied_index: s.raft_applied_index,
            errors,
            db_size_in_use: s.db_size_in_use,
            is_learner: s.is_learner,
            wal_fsyncs: s.wal_fsyncs,
            wal_entries: s.wal_entries,
        },
    );
    finish(b, rpc::ResponseBody::StatusResponse, t.as_union_value());
}

pub fn error(b: &mut Fbb, e: &RequestError) {
    b.reset();
    let message = b.create_string(&e.message);
    let t = rpc::Error::create(
        b,
        &rpc::ErrorArgs {
            code: e.code,
            message: Some(message),
            compact_revision: e.compact_revision,
        },
    );
    finish(b, rpc::ResponseBody::Error, t.as_union_value());
}

/// An AlarmResponse listing `alarms`.
pub fn alarms(b: &mut Fbb, h: &HeaderInfo, alarms: &[(u64, crate::alarm::Alarm)]) {
    b.reset();
    let members: Vec<_> = alarms
        .iter()
        .map(|(member_id, a)| {
            let alarm = match a {
                crate::alarm::Alarm::NoSpace => rpc::AlarmType::NoSpace,
                crate::alarm::Alarm::Corrupt => rpc::AlarmType::Corrupt,
            };
            rpc::AlarmMember::create(
                b,
                &rpc::AlarmMemberArgs {
                    member_id: *member_id,
                    alarm,
                },
            )
        })
        .collect();
    let alarms = b.create_vector(&members);
    let header = header(b, h);
    let t = rpc::AlarmResponse::create(
        b,
        &rpc::AlarmResponseArgs {
            header: Some(header),
            alarms: Some(alarms),
        },
    );
    finish(b, rpc::ResponseBody::AlarmResponse, t.as_union_value());
}

/// Largest response built. FlatBuffers cannot build a buffer past 2 GiB (it
/// panics), and no client should receive one: a bigger result is answered
/// with an error instead (etcd's gRPC limit answers ResourceExhausted).
pub const MAX_RESPONSE_BYTES: u64 = 1 << 30;

/// Per key-value overhead of the encoding (vtable, offsets, integers).
const KV_OVERHEAD_BYTES: u64 = 64;

fn kvs_bytes<'a, K: KvView + 'a>(kvs: impl IntoIterator<Item = &'a K>, keys_only: bool) -> u64 {
    kvs.into_iter()
        .map(|k| {
            let k = k.kv_ref();
            k.key.len() as u64
                + if keys_only { 0 } else { k.value.len() as u64 }
                + KV_OVERHEAD_BYTES
        })
        .sum()
}

/// Upper estimate of a range response's size.
pub fn range_bytes(r: &mvcc::RangeResult<'_>, keys_only: bool) -> u64 {
    kvs_bytes(&r.kvs, keys_only)
}

/// Upper estimate of a delete response's size.
pub fn delete_bytes(r: &mvcc::DeleteResult) -> u64 {
    kvs_bytes(&r.prev_kvs, false)
}

/// Upper estimate of a txn response's size.
pub fn txn_bytes(r: &mvcc::TxnResult) -> u64 {
    r.responses
        .iter()
        .map(|op| match op {
            mvcc::OpResult::Range(rr) => kvs_bytes(&rr.kvs, false),
            mvcc::OpResult::Put(p) => kvs_bytes(p.prev_kv.iter(), false),
            mvcc::OpResult::DeleteRange(d) => delete_bytes(d),
            mvcc::OpResult::Txn(t) => txn_bytes(t),
        } + KV_OVERHEAD_BYTES)
        .sum()
}

/// The error for a result too large to send.
pub fn too_large(bytes: u64) -> RequestError {
    RequestError::new(
        rpc::ErrorCode::RequestTooLarge,
        format!(
            "etcdserver: response of {bytes} bytes is larger than the maximum of {MAX_RESPONSE_BYTES}; \
             narrow the range or set a limit"
        ),
    )
}

/// Ok if a response of about `bytes` can be built.
pub fn check_size(bytes: u64) -> Result<(), RequestError> {
    if bytes > MAX_RESPONSE_BYTES {
        return Err(too_large(bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size check must never let through a response it underestimated.
    #[test]
    fn size_estimate_bounds_the_built_response() {
        let kvs: Vec<mvcc::KeyValue> = (0..500)
            .map(|i| mvcc::KeyValue {
                key: format!("key-{i}").into_bytes(),
                value: vec![7; i % 300],
                create_revision: i as i64,
                mod_revision: i as i64,
                version: 1,
                lease: 0,
            })
            .collect();
        let result = mvcc::RangeResult {
            kvs: kvs.iter().map(|k| k.kv_ref()).collect(),
            more: false,
            count: kvs.len() as i64,
        };
        let h = HeaderInfo {
            cluster_id: 1,
            member_id: 2,
            revision: 3,
            raft_term: 4,
        };
        let mut b = Fbb::new();
        for keys_only in [false, true] {
            range(&mut b, &h, &result, keys_only);
            assert!(range_bytes(&result, keys_only) >= b.finished_data().len() as u64);
        }
        assert!(check_size(MAX_RESPONSE_BYTES).is_ok());
        let e = check_size(MAX_RESPONSE_BYTES + 1).unwrap_err();
        assert_eq!(e.code, rpc::ErrorCode::RequestTooLarge);
    }
}

/// Which Cluster API response to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembersKind {
    List,
    Add,
    Remove,
    Update,
    Promote,
}

fn member_table<'b>(b: &mut Fbb, m: &super::members::MemberInfo) -> WIPOffset<rpc::Member<'b>> {
    let name = b.create_string(&m.name);
    let peers: Vec<_> = m.peer_urls.iter().map(|u| b.create_string(u)).collect();
    let peer_urls = b.create_vector(&peers);
    let clients: Vec<_> = m.client_urls.iter().map(|u| b.create_string(u)).collect();
    let client_urls = b.create_vector(&clients);
    rpc::Member::create(
        b,
        &rpc::MemberArgs {
            id: m.id,
            name: Some(name),
            peer_urls: Some(peer_urls),
            client_urls: Some(client_urls),
            is_learner: m.is_learner,
        },
    )
}

/// A Cluster API response: every member, and for `Add` the new one.
pub fn members(
    b: &mut Fbb,
    h: &HeaderInfo,
    kind: MembersKind,
    added: Option<&super::members::MemberInfo>,
    all: &super::members::Membership,
) {
    b.reset();
    let list: Vec<_> = all.iter().map(|m| member_table(b, m)).collect();
    let members = Some(b.create_vector(&list));
    let member = added.map(|m| member_table(b, m));
    // etcd's Cluster responses carry no revision.
    let header = Some(header(b, &HeaderInfo { revision: 0, ..*h }));
    let (body, t) = match kind {
        MembersKind::List => (
            rpc::ResponseBody::MemberListResponse,
            rpc::MemberListResponse::create(b, &rpc::MemberListResponseArgs { header, members })
                .as_union_value(),
        ),
        MembersKind::Add => (
            rpc::ResponseBody::MemberAddResponse,
            rpc::MemberAddResponse::create(
                b,
                &rpc::MemberAddResponseArgs {
                    header,
                    member,
                    members,
                },
            )
            .as_union_value(),
        ),
        MembersKind::Remove => (
            rpc::ResponseBody::MemberRemoveResponse,
            rpc::MemberRemoveResponse::create(
                b,
                &rpc::MemberRemoveResponseArgs { header, members },
            )
            .as_union_value(),
        ),
        MembersKind::Update => (
            rpc::ResponseBody::MemberUpdateResponse,
            rpc::MemberUpdateResponse::create(
                b,
                &rpc::MemberUpdateResponseArgs { header, members },
            )
            .as_union_value(),
        ),
        MembersKind::Promote => (
            rpc::ResponseBody::MemberPromoteResponse,
            rpc::MemberPromoteResponse::create(
                b,
                &rpc::MemberPromoteResponseArgs { header, members },
            )
            .as_union_value(),
        ),
    };
    finish(b, body, t);
}

/// etcd's MoveLeader answer carries no header.
pub fn move_leader(b: &mut Fbb) {
    b.reset();
    let t = rpc::MoveLeaderResponse::create(b, &rpc::MoveLeaderResponseArgs { header: None });
    finish(b, rpc::ResponseBody::MoveLeaderResponse, t.as_union_value());
}
