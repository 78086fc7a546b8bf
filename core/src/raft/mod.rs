//! Raft consensus as a pure state machine: no I/O, no clocks, no threads.
//! The caller drives it, as with etcd's raft and tikv's raft-rs.
//!
//! # The loop
//!
//! - [`Raft::tick`] advances time (Cairn ticks every `--heartbeat-interval`).
//! - [`Raft::step`] feeds a [`Message`] from a peer.
//! - [`Raft::propose`], [`Raft::propose_conf_change`], [`Raft::read_index`]
//!   and [`Raft::transfer_leader`] are the client-facing inputs.
//! - When [`Raft::has_ready`], take a [`Ready`]: persist its `snapshot`,
//!   `entries` and `hard_state`; send its `messages` at any time (the
//!   leader's appends go out while its own fsync runs) but its
//!   `persisted_messages` only after the fsync; apply `committed_entries`;
//!   serve `read_states` once their index is applied; then
//!   [`Raft::advance`].
//!
//! ```
//! use cairn_core::raft::{Config, Persisted, Raft, Role};
//!
//! // A one-node cluster: it elects itself and commits on its own fsync.
//! let mut node = Raft::new(Config::new(1, vec![1]), Persisted::default()).unwrap();
//! let mut disk = Vec::new(); // what this node persisted
//! let mut applied = Vec::new(); // the state machine
//! for _ in 0..30 {
//!     node.tick();
//!     if node.role() == Role::Leader && applied.is_empty() {
//!         node.propose(b"hello".to_vec()).unwrap();
//!     }
//!     while node.has_ready() {
//!         let rd = node.ready();
//!         assert!(rd.messages.is_empty() && rd.persisted_messages.is_empty()); // no peers
//!         disk.extend(rd.entries.iter().cloned()); // + the hard state: one fsync
//!         for e in &rd.committed_entries {
//!             if !e.data.is_empty() {
//!                 applied.push(e.data.clone());
//!             }
//!         }
//!         node.advance(rd);
//!     }
//! }
//! assert_eq!(node.role(), Role::Leader);
//! assert_eq!(applied, vec![b"hello".to_vec()]);
//! assert_eq!(disk.len(), 2); // the leader's empty entry, then ours
//! ```
//!
//! # What it implements
//!
//! Leader election with randomized timeouts (seeded, so deterministic),
//! PreVote and CheckQuorum; log replication with pipelining, an in-flight
//! window and a byte limit per append, fast backtracking of conflicting
//! logs, and commitment only of entries of the leader's own term by
//! counting; ReadIndex reads batched over heartbeat rounds; snapshots
//! (the caller [`Raft::compact`]s, the leader sends the newest snapshot to
//! followers whose next entry is compacted away); membership changes one
//! server at a time through the log (see `membership.rs` for why),
//! learners, removal of the leader itself, and leadership transfer.
//!
//! Bounds: at most `max_inflight_msgs` appends in flight per follower,
//! `max_size_per_msg_bytes` per append, `max_uncommitted_entries` before
//! proposals are refused, `max_pending_reads` queued reads. Malformed
//! messages from peers are dropped, never allowed to trip an assertion.
//!
//! # Tests
//!
//! `tests/` holds unit tests named for the property they prove and grouped
//! by the paper's sections, plus data-driven scripts (`testdata/*.txt`:
//! commands in, messages out) that read like specifications. `sim/` runs
//! whole clusters from one seed (see its docs for the replay command).
//!
//! # Invariants
//!
//! Asserted, always on: a committed entry is never truncated; the commit
//! index never passes the last index; the applied index never passes the
//! commit index or what is persisted; one read round in flight at a time.
//! The simulator (`sim`) checks the cluster-wide ones: election safety,
//! log matching, leader completeness, state machine safety, and
//! linearizability of client histories.

mod core;
mod election;
mod log;
mod membership;
pub mod message;
mod progress;
mod quorum;
mod read_only;
mod replication;
mod rng;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use self::core::{Config, ConfigError, Persisted, ProposeError, Raft, Ready, Role};
pub use message::{
    ConfChange, ConfState, Entry, EntryKind, HardState, Message, MessageKind, NodeId, ReadState,
    Snapshot, SnapshotMeta, NONE,
};
pub use progress::{Progress, ProgressState};
