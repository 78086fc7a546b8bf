//! The client stub: a typed API for every RPC, pipelined over one connection.
//!
//! - [`BlockingClient`]: plain synchronous code (a reader thread, any number
//!   of caller threads sharing one connection).
//! - [`AsyncClient`]: async code on a glommio executor.
//! - [`FailoverClient`]: a blocking client over several endpoints that
//!   moves to the next one when an endpoint fails (reads only once sent).
//! - [`LeaseKeeper`]: keeps a lease alive from a background thread.
//!
//! Both send requests as FlatBuffers object-API values (`rpc::*RequestT`)
//! and return owned responses (`rpc::*ResponseT`).

mod async_client;
mod blocking;
mod endpoint;
mod failover;
mod keep_alive;
mod typed;
mod watch;

pub use async_client::{AsyncClient, StreamHandler};
pub use blocking::BlockingClient;
pub use endpoint::{parse_endpoint, parse_endpoints};
pub use failover::{is_retryable, may_resend, FailoverClient};
pub use keep_alive::LeaseKeeper;
pub use typed::*;
pub use watch::{WatchStream, STREAM_BUFFER_RESPONSES};

use std::time::Duration;

/// Connection settings shared by both clients.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Time allowed to establish the connection (etcdctl's `--dial-timeout`).
    pub dial_timeout: Duration,
    /// Time allowed for one request (etcdctl's `--command-timeout`).
    pub request_timeout: Duration,
    /// Largest response frame accepted.
    pub max_response_bytes: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            dial_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            // The server never builds a response over 1 GiB (core node::respond).
            max_response_bytes: (1 << 30) + (1 << 20),
        }
    }
}
