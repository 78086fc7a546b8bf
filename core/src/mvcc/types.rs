//! Requests, results and errors of the MVCC state machine.
//!
//! Requests borrow their byte strings (`&'a [u8]`) so the node can hand over
//! slices of a FlatBuffers message without copying. Results own their bytes
//! (except [`RangeResult`], which borrows the store) because they outlive the
//! request buffer.

/// A global store revision. Starts at 1 for an empty store (like etcd);
/// every committed write bumps it by exactly one.
pub type Revision = i64;

/// An owned key-value pair as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyValue {
    pub key: Vec<u8>,
    /// Revision of the put that created the key's current generation.
    pub create_revision: i64,
    /// Revision of the last put to the key.
    pub mod_revision: i64,
    /// 1 on create, +1 per put, reset by a delete.
    pub version: i64,
    pub value: Vec<u8>,
    /// Lease id as given by the client; 0 = no lease.
    pub lease: i64,
}

/// A key-value pair borrowed from the [`Store`](super::Store): keys are
/// stored once per key, so a read hands out references instead of copies;
/// the value is borrowed while it is in memory and owned once fetched from
/// the page file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvRef<'s> {
    pub key: &'s [u8],
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
    pub value: std::borrow::Cow<'s, [u8]>,
    pub lease: i64,
}

impl KvRef<'_> {
    /// Copies the pair out of the store.
    pub fn to_key_value(&self) -> KeyValue {
        KeyValue {
            key: self.key.to_vec(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            value: self.value.to_vec(),
            lease: self.lease,
        }
    }
}

/// etcd's `RangeRequest.SortOrder`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

/// etcd's `RangeRequest.SortTarget`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

/// etcd's `RangeRequest`.
///
/// `range_end`: empty = the single key `key`; `[0]` = every key >= `key`;
/// otherwise the half-open interval `[key, range_end)`.
/// Revision filters are inactive when 0.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeReq<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    /// 0 (or negative) = no limit.
    pub limit: i64,
    /// <= 0 = the current revision.
    pub revision: i64,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    pub keys_only: bool,
    pub count_only: bool,
    pub min_mod_revision: i64,
    pub max_mod_revision: i64,
    pub min_create_revision: i64,
    pub max_create_revision: i64,
}

/// etcd's `PutRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutReq<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub lease: i64,
    pub prev_kv: bool,
    /// Keep the key's current value (`value` must be empty, key must exist).
    pub ignore_value: bool,
    /// Keep the key's current lease (`lease` must be 0, key must exist).
    pub ignore_lease: bool,
}

/// etcd's `DeleteRangeRequest`; `range_end` as in [`RangeReq`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteRangeReq<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    pub prev_kv: bool,
}

/// etcd's `Compare.CompareResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// etcd's `Compare.target` with its `target_union` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareTarget<'a> {
    Version(i64),
    Create(i64),
    Mod(i64),
    Value(&'a [u8]),
    Lease(i64),
}

/// etcd's `Compare`: `stored <result> target`, for every key in the range
/// (`range_end` as in [`RangeReq`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare<'a> {
    pub key: &'a [u8],
    pub range_end: &'a [u8],
    pub result: CompareResult,
    pub target: CompareTarget<'a>,
}

/// etcd's `RequestOp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOp<'a> {
    Range(RangeReq<'a>),
    Put(PutReq<'a>),
    DeleteRange(DeleteRangeReq<'a>),
    Txn(TxnReq<'a>),
}

/// etcd's `TxnRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnReq<'a> {
    pub compare: Vec<Compare<'a>>,
    pub success: Vec<RequestOp<'a>>,
    pub failure: Vec<RequestOp<'a>>,
}

/// A range answer borrowing the store (no copies of keys or values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult<'s> {
    pub kvs: Vec<KvRef<'s>>,
    /// More keys matched than `limit` let through.
    pub more: bool,
    /// Keys matched at the read revision, before the revision filters and
    /// the limit (etcd's `RangeResponse.count`).
    pub count: i64,
}

impl RangeResult<'_> {
    pub fn to_owned_result(&self) -> OwnedRangeResult {
        OwnedRangeResult {
            kvs: self.kvs.iter().map(KvRef::to_key_value).collect(),
            more: self.more,
            count: self.count,
        }
    }
}

/// A range answer that owns its bytes (used inside txn results, which
/// outlive the store borrow because later ops of the txn write).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedRangeResult {
    pub kvs: Vec<KeyValue>,
    pub more: bool,
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutResult {
    /// The previous live value, when asked for and the key existed.
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteResult {
    pub deleted: i64,
    /// Deleted pairs in key order, when asked for.
    pub prev_kvs: Vec<KeyValue>,
}

/// One response of a txn branch, in request order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    Range(OwnedRangeResult),
    Put(PutResult),
    DeleteRange(DeleteResult),
    Txn(TxnResult),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TxnResult {
    /// All compares held and the success branch ran.
    pub succeeded: bool,
    pub responses: Vec<OpResult>,
}

/// Errors with etcd's exact texts, so the node can pass them to clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MvccError {
    /// The read or compaction revision is below the compaction point.
    /// `compact_revision` is the store's current compaction point.
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted { compact_revision: i64 },
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: key is not provided")]
    EmptyKey,
    #[error("etcdserver: too many operations in txn request")]
    TooManyOps,
    #[error("etcdserver: duplicate key given in txn request")]
    DuplicateKey,
    /// `ignore_value` with a non-empty value.
    #[error("etcdserver: value is provided")]
    ValueProvided,
    /// `ignore_lease` with a non-zero lease.
    #[error("etcdserver: lease is provided")]
    LeaseProvided,
    /// `ignore_value` / `ignore_lease` on a key that does not exist.
    #[error("etcdserver: key not found")]
    KeyNotFound,
    /// A value could not be read back from the page file (the server logs
    /// why: I/O error or a checksum mismatch naming the page).
    #[error("cairn: a stored value could not be read (see the server log)")]
    ValueUnreadable { revision: i64 },
}

/// Where the store reads values it no longer keeps in memory: the history
/// record of `key` put at `revision` (the page file, in the node).
pub trait ValueSource: std::fmt::Debug + Send + Sync {
    fn fetch(&self, revision: Revision, key: &[u8]) -> Result<Vec<u8>, String>;

    /// A value the store just evicted (durable in the source): a cache
    /// may keep it, since recent values are the likeliest to be read.
    fn offer(&self, revision: Revision, key: &[u8], value: Box<[u8]>);
}
