//! The peer transport's error type.

use std::net::SocketAddr;
use std::time::Duration;

use crate::frame::FrameError;

/// Why a peer connection (or a members query) failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No address of the peer accepted a connection.
    #[error("failed to connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The peer has no address to dial.
    #[error("no address to dial")]
    NoAddress,
    /// A step did not finish in time.
    #[error("{what} timed out after {limit:?}")]
    Timeout { what: &'static str, limit: Duration },
    /// The listener refused our `Hello`.
    #[error("refused by the peer: {reason}{}", if *.removed { " (member removed)" } else { "" })]
    Refused { reason: String, removed: bool },
    /// Reading a frame failed (closed, oversized, not frames at all).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Writing failed.
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    /// A payload that is not a valid peer `Frame`.
    #[error("malformed peer frame: {0}")]
    Malformed(#[from] flatbuffers::InvalidFlatbuffer),
    /// A valid frame of a kind not allowed at this point of the protocol.
    #[error("expected {expected}, got {got}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
}
