//! The server side of client connections: read frames, verify them, hand
//! them to a [`Handler`], write responses in whatever order they complete.
//!
//! The handler never sees unverified bytes, and nothing a client sends can
//! make this code panic: oversized frames get an error response and are
//! skipped, malformed payloads get an error response and close that
//! connection, and a length that no sane client sends closes it at once.

mod connection;
mod sink;

pub use connection::{serve_connection, ServerLimits, MAX_INFLIGHT_PER_CONNECTION};
pub use sink::ResponseSink;

use cairn_schemas::rpc;

/// What the node does with a verified request. Called on the connection's
/// executor; respond through `sink`, now or later (responses may complete
/// out of order).
pub trait Handler: 'static {
    fn handle(
        &self,
        request_id: u64,
        request: rpc::Request<'_>,
        payload: &[u8],
        sink: &ResponseSink,
    );

    /// The connection of `sink` reads no more requests (the client closed
    /// it or broke the protocol): drop whatever is kept for it. Responses
    /// already queued are still written.
    fn connection_closed(&self, _sink: &ResponseSink) {}
}
