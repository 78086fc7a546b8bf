//! Cairn's performance tools.
//!
//! - `cairn-bench` ([`bench`]): a closed-loop load generator for Cairn's
//!   native protocol and, with the `etcd` feature, for etcd's v3 API, with
//!   etcd-benchmark-style and JSON reports.
//! - `cairn-fsync` ([`fsync`]): the fsync latency of a device, measured the
//!   way the WAL writes, beside a sweep of block sizes, queue depths and
//!   buffered writes, with a verdict against etcd's guidance.
//!
//! ```
//! use clap::Parser;
//! use cairn_perf::bench::args::{Cli, Stop};
//! let cfg = Cli::try_parse_from(["cairn-bench", "put", "--clients", "16", "--total", "1000"])
//!     .unwrap()
//!     .into_config()
//!     .unwrap();
//! assert_eq!(cfg.conns, 8); // min(clients, 8)
//! assert_eq!(cfg.stop, Stop::Total(1000));
//! ```

pub mod bench;
pub mod fsync;
