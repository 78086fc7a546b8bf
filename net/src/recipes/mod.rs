//! The concurrency recipes of etcd's `clientv3/concurrency`, over the
//! blocking client: a [`Session`] (a lease kept alive), a [`Mutex`] and an
//! [`Election`], with etcd's key layout, so that Cairn and etcd clients
//! could even share a lock.
//!
//! Both recipes rank contenders by the create revision of their key under
//! a prefix (`PREFIX/LEASE_ID` in hex, attached to the session's lease):
//! the oldest key holds the lock or leads. A contender waits only for the
//! deletion of the key created just before its own (its predecessor),
//! watched from the revision it read, so a release wakes one waiter, not
//! all of them (no thundering herd). A holder that dies stops renewing its
//! lease; when the lease expires its key is deleted and the next contender
//! takes over.
//!
//! ```no_run
//! use cairn_net::recipes::{Mutex, Session};
//! use cairn_net::{BlockingClient, ClientOptions};
//! let addrs = ["127.0.0.1:2379".parse().unwrap()];
//! let client = BlockingClient::connect(&addrs, ClientOptions::default()).unwrap();
//! let session = Session::new(client, &addrs, 10).unwrap();
//! let mut m = Mutex::new(&session, "my-lock");
//! m.lock(None).unwrap();
//! // ... only this process holds "my-lock" while its session lives.
//! m.unlock().unwrap();
//! ```

mod election;
mod mutex;
mod session;
mod wait;

pub use election::{observe, Election};
pub use mutex::Mutex;
pub use session::Session;

use crate::error::ClientError;

/// Why a recipe call failed.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The session's lease is gone: whatever it held is lost.
    #[error("session expired")]
    SessionExpired,
    /// The caller is not (or no longer) the leader.
    #[error("election: not leader")]
    NotLeader,
    /// Nobody leads the election.
    #[error("election: no leader")]
    NoLeader,
    /// The wait's deadline passed.
    #[error("context deadline exceeded")]
    Timeout,
    /// The server ended a watch the recipe was waiting on (e.g. compacted).
    #[error("watch canceled: {0}")]
    WatchCanceled(String),
}
