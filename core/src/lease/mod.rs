//! Leases, with etcd 3.4's semantics (its `lease.lessor`), as pure logic:
//! time is an input (`now`, any monotonic clock), nothing here does I/O.
//!
//! What goes through the log and what does not, as in etcd:
//! - **Grant, revoke, attach/detach (a put with a lease), checkpoint** are
//!   applied from the log on every member: [`Lessor::grant`],
//!   [`Lessor::revoke`], [`Lessor::attach`], [`Lessor::checkpoint`].
//! - **Keep-alive** renews on the leader only, in memory
//!   ([`Lessor::renew`]); followers learn remaining TTLs from checkpoints.
//! - **Expiry** is decided by the leader only ([`Lessor::expired`]), which
//!   then proposes revocations through the log, at most
//!   `max_revokes_per_call` at a time (a "lease storm" must not stall
//!   writes).
//! - On promotion the new leader refreshes every expiry to `now + TTL`
//!   (plus an extension), so a leader change never cuts a TTL short.
//!
//! ```
//! use std::time::Duration;
//! use cairn_core::lease::Lessor;
//! let mut l = Lessor::new(Duration::from_secs(5));
//! l.promote(Duration::ZERO, Duration::ZERO);
//! l.grant(7, 10, Duration::ZERO).unwrap();
//! l.attach(7, b"k".to_vec()).unwrap();
//! assert!(l.expired(Duration::from_secs(9), 100).is_empty());
//! assert_eq!(l.expired(Duration::from_secs(11), 100), vec![7]);
//! assert_eq!(l.revoke(7).unwrap(), vec![b"k".to_vec()]);
//! ```

mod lessor;

pub use lessor::{Lease, LeaseError, Lessor, MAX_LEASE_TTL_SECS};
