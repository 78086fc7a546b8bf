//! Member-to-member transport: the connections Raft messages, forwarded
//! requests and snapshot chunks travel on (`schemas/fbs/peer.fbs`,
//! `schemas/PROTOCOL.md` "Peers").
//!
//! Each connection carries traffic one way. A member *dials* every peer
//! it sends to ([`Dialer`], one task per peer) and *serves* the
//! connections its peers dialed ([`serve_peer_connection`]); so between
//! two members there are two connections, one per direction, and neither
//! side ever waits for the other to read.
//!
//! ```text
//! dialer                                   listener
//!   | -- Hello {cluster_id, from, to, 1} --> |  check_hello
//!   | <-- HelloAck {ok, reason, removed} --- |  (refused: closed)
//!   | -- Frame, Frame, ... ----------------> |  on_frame(from, ...)
//!   | -- MembersQuery ---------------------> |
//!   | <-- Frame { MembersInfo } ------------ |  members_info()
//! ```
//!
//! Frames are the client protocol's (`u32 len, u64 id, payload`, see
//! [`crate::frame`]); every payload is a `cairn.peer.Frame` and is verified
//! before anything reads it. Raft tolerates lost messages, so the sending
//! side drops rather than blocks: queues are bounded in frames and bytes,
//! and `send` says whether the frame was queued.
//!
//! Everything here runs on one glommio executor and is `Rc`-based: the
//! node's Raft executor owns its dialer and its peer connections.

mod dialer;
mod error;
mod handshake;
mod listener;
mod query;
mod queue;

pub use dialer::{Dialer, DialerEvents};
pub use error::PeerError;
pub use handshake::{encode_hello, encode_hello_ack, encode_members_query, PEER_PROTOCOL_VERSION};
pub use listener::{serve_peer_connection, PeerHandler, Refusal};
pub use query::query_members;
pub use queue::{QUEUE_FRAMES_MAX, QUEUE_FRAMES_MAX_DISCONNECTED};

use std::time::Duration;

/// Who this member is, as it introduces itself in `Hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// 0 until a member that joined an existing cluster learned it.
    pub cluster_id: u64,
    pub member_id: u64,
}

/// Limits of one member's peer connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// Largest frame payload read from, or queued for, a peer. A larger
    /// incoming frame closes that connection; a larger outgoing one is
    /// refused by `Dialer::send`. It also bounds the bytes one peer's send
    /// queue holds, so that any frame the receiver accepts can be queued.
    pub max_frame_bytes: usize,
}

impl PeerLimits {
    /// 80 MiB: an append carries up to ~1 MiB of entries, but a single
    /// entry may be as large as the client request limit; snapshot chunks
    /// are 1 MiB.
    pub const DEFAULT_MAX_FRAME_BYTES: usize = 80 << 20;
}

impl Default for PeerLimits {
    fn default() -> PeerLimits {
        PeerLimits {
            max_frame_bytes: PeerLimits::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

/// How long a dial may take before the next address (or a backoff).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How long either side waits for the other's handshake frame.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// First pause after a failed connection; doubles up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(50);

/// Longest pause between two connection attempts to one peer.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Handshake frames (`Hello`, `HelloAck`) are small; a larger one is not
/// a Cairn member talking.
const HANDSHAKE_FRAME_BYTES_MAX: usize = 64 << 10;

/// Runs `fut`, or fails with [`PeerError::Timeout`] naming `what` after `limit`.
async fn with_timeout<T>(
    limit: Duration,
    what: &'static str,
    fut: impl std::future::Future<Output = Result<T, PeerError>>,
) -> Result<T, PeerError> {
    futures_lite::future::or(fut, async {
        glommio::timer::sleep(limit).await;
        Err(PeerError::Timeout { what, limit })
    })
    .await
}
