//! Cairn's core: the deterministic logic (MVCC, Raft, leases, watches) and
//! the node runtime that wires it to storage and net on pinned glommio
//! executors. The `cairnd` binary lives here.
//!
//! The rule: modules under `mvcc`, `raft`, `lease` and `watch` do no I/O;
//! time and messages are inputs. Only `node` (and `metrics`' HTTP server)
//! touch disks and sockets.

pub mod alarm;
pub mod compactor;
pub mod config;
pub mod lease;
pub mod metrics;
pub mod mvcc;
pub mod node;
pub mod peer_codec;
pub mod raft;
pub mod testkit;
pub mod watch;
