//! The MVCC key-value state machine, with etcd v3.4's semantics.
//!
//! Pure logic, no I/O: the node applies committed log entries to a
//! [`Store`] in log order. The same inputs give the same state and the same
//! outputs on every replica (time is not an input, iteration orders are
//! B-tree orders, sorts are stable).
//!
//! # Model
//!
//! - A global [`Revision`] starts at 1 for an empty store. Each write bumps
//!   it by exactly one: a put, a delete range that deleted at least one key,
//!   or a txn with at least one such write (all its writes share the
//!   revision). Reads never bump it.
//! - Every key keeps its history as generations (see `key_index`): a put
//!   creates or extends the live generation (`version` 1, 2, ...), a delete
//!   ends it with a tombstone. Reads at an older revision see the older
//!   value; a put after a delete starts a new generation.
//! - [`Store::compact`] drops history below a revision; reads below it then
//!   fail with [`MvccError::Compacted`].
//!
//! Requests borrow their bytes ([`RangeReq`], [`PutReq`], ...), so the node
//! can pass FlatBuffers slices. [`Store::range`] returns [`KvRef`]s that
//! borrow the store; writes and txns return owned results.
//!
//! Values need not stay in memory: with a [`ValueSource`] set (the node's
//! page file) and the change log on, [`Store::evict_through`] drops the
//! values of puts the caller has made durable, and reads, `prev_kv`,
//! `ignore_value` and value compares fetch them back. The in-memory index
//! then holds keys, revisions and versions only.
//!
//! Keys live once in a `BTreeMap`, so a range over N keys costs
//! O(log n + N) plus the tombstoned keys still held in the range.
//!
//! # Example
//!
//! ```
//! use cairn_core::mvcc::{
//!     Compare, CompareResult, CompareTarget, PutReq, RangeReq, RequestOp, Store, TxnReq,
//! };
//!
//! let mut store = Store::new();
//! assert_eq!(store.current_revision(), 1);
//!
//! store.put(&PutReq { key: b"a", value: b"1", ..Default::default() }).unwrap();
//! store.put(&PutReq { key: b"a", value: b"2", ..Default::default() }).unwrap();
//! assert_eq!(store.current_revision(), 3);
//!
//! // Reading at revision 2 still sees the first value.
//! let old = store.range(&RangeReq { key: b"a", revision: 2, ..Default::default() }).unwrap();
//! assert_eq!(&old.kvs[0].value[..], b"1");
//! assert_eq!(old.kvs[0].version, 1);
//!
//! // Compare-and-swap: put b=x only if a is at version 2.
//! let txn = TxnReq {
//!     compare: vec![Compare {
//!         key: b"a",
//!         range_end: b"",
//!         result: CompareResult::Equal,
//!         target: CompareTarget::Version(2),
//!     }],
//!     success: vec![RequestOp::Put(PutReq { key: b"b", value: b"x", ..Default::default() })],
//!     failure: vec![],
//! };
//! let result = store.txn(&txn, 128).unwrap();
//! assert!(result.succeeded);
//! assert_eq!(store.current_revision(), 4);
//!
//! store.compact(3).unwrap();
//! assert!(store.range(&RangeReq { key: b"a", revision: 2, ..Default::default() }).is_err());
//! ```

mod changes;
mod compact;
mod history;
mod key_index;
mod record_sort;
mod store;
mod txn;
mod types;

#[cfg(test)]
mod tests;

pub use changes::{Change, LoadedPut, LoadedRecord};
pub use history::{Event, EventKind, History, HistoryLimits};
pub use store::Store;
pub use txn::validate_txn;
pub use types::{
    Compare, CompareResult, CompareTarget, DeleteRangeReq, DeleteResult, KeyValue, KvRef,
    MvccError, OpResult, OwnedRangeResult, PutReq, PutResult, RangeReq, RangeResult, RequestOp,
    Revision, SortOrder, SortTarget, TxnReq, TxnResult, ValueSource,
};
