//! etcd's Watch service as pure logic: which watchers an applied write
//! concerns, what each is handed and when, and how a watcher that fell
//! behind catches up from the store's history. No I/O: the node feeds it
//! the changes of each applied entry and drains what it decides through
//! an [`Outlet`] (`node::watch` encodes and queues the responses).
//!
//! - [`group`]: watchers by key range (a hash map for single keys, an
//!   [`interval`] tree for ranges);
//! - [`set`]: the watchers of a member, synced (live events) or unsynced
//!   (catching up), with the invariants that make delivery exactly once
//!   and in revision order;
//! - [`fragment`]: splitting a large response (`fragment`).
//!
//! # Example
//!
//! ```
//! use cairn_core::mvcc::{PutReq, Store};
//! use cairn_core::watch::{Outlet, WatchEvent, WatchSet, WatchSpec, Watcher, Limits};
//!
//! #[derive(Default)]
//! struct Seen(Vec<(i64, Vec<u8>)>);
//! impl Outlet for Seen {
//!     fn has_room(&mut self, _conn: u64) -> bool { true }
//!     fn events(&mut self, _w: &Watcher, _rev: i64, events: &[&WatchEvent]) {
//!         for e in events {
//!             self.0.push((e.event.kv.mod_revision, e.event.kv.key.clone()));
//!         }
//!     }
//!     fn canceled(&mut self, _w: &Watcher, _compact: i64, _reason: &str) {}
//!     fn progress(&mut self, _w: &Watcher, _rev: i64) {}
//! }
//!
//! let mut store = Store::new();
//! store.record_changes(true);
//! store.put(&PutReq { key: b"/cfg/a", value: b"1", ..Default::default() }).unwrap();
//! let mut set = WatchSet::new(Limits::default());
//! let mut seen = Seen::default();
//!
//! // A prefix watch from revision 1: it starts unsynced, and a sync hands
//! // it the history.
//! let spec = WatchSpec { key: b"/cfg/".to_vec(), range_end: b"/cfg0".to_vec(),
//!                        start_revision: 1, ..Default::default() };
//! let created = set.create(7, 1, &spec, store.current_revision()).unwrap();
//! assert!(created.unsynced);
//! set.sync(&store, &mut seen);
//! assert_eq!(seen.0, vec![(2, b"/cfg/a".to_vec())]);
//!
//! // Now synced: each applied write is handed over as it applies.
//! let mark = store.pending_changes();
//! store.put(&PutReq { key: b"/cfg/b", value: b"2", ..Default::default() }).unwrap();
//! set.notify(&store, store.changes_since(mark), &mut seen);
//! assert_eq!(seen.0.last(), Some(&(3, b"/cfg/b".to_vec())));
//! ```

pub mod fragment;
pub mod group;
pub mod interval;
pub mod set;

#[cfg(test)]
mod tests;

pub use group::KeyRange;
pub use set::{
    CreateError, Created, Limits, Outlet, WatchEvent, WatchSet, WatchSpec, Watcher,
    COMPACTED_REASON,
};
