//! Cairn's command-line tools.
//!
//! - [`ctl`]: `cairnctl`, a client that mirrors etcdctl v3 (3.4): the same
//!   commands, flags, output formats (simple, json, fields, table), error
//!   messages and exit codes, so scripts written for etcdctl run unchanged.
//! - [`dump`]: `cairn-dump`, offline inspection and verification of a
//!   node's files (today the WAL): `verify` and `wal`.

pub mod ctl;
pub mod dump;
