//! Cairn's command-line tools.
//!
//! - [`ctl`]: `cairnctl`, a client that mirrors etcdctl v3 (3.4): the same
//!   commands, flags, output formats (simple, json, fields, table), error
//!   messages and exit codes, so scripts written for etcdctl run unchanged.

pub mod ctl;
