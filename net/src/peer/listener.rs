//! The receiving side: serve one connection a peer dialed. Handshake
//! first, then every verified frame goes to the [`PeerHandler`]; the only
//! thing written back is the `HelloAck` and answers to `MembersQuery`.
//!
//! Nothing a peer sends can make this panic or affect another
//! connection: garbage, an oversized frame, a failed verification or a
//! frame out of protocol closes this connection with one log line.

use std::rc::Rc;

use cairn_schemas::peer;
use futures_lite::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;

use super::handshake::{
    body_name, encode_hello_ack, write_frame, HANDSHAKE_ID, PEER_PROTOCOL_VERSION,
};
use super::{with_timeout, PeerError, PeerLimits, HANDSHAKE_FRAME_BYTES_MAX, HANDSHAKE_TIMEOUT};
use crate::frame::{FrameError, FrameReader};

/// Why a `Hello` is refused; sent back in `HelloAck`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// The dialer was removed from the cluster (it should stop).
    pub removed: bool,
}

/// What the node does with its peers' connections. Called on the
/// connection's executor, never with unverified bytes.
pub trait PeerHandler: 'static {
    /// Accepts or refuses a dialer: `cluster_id` it believes in, its member
    /// id `from`, and `to`, the member it means to reach (us). Not called
    /// for `from == 0`: such a connection (a member that has not joined
    /// yet, see [`super::query_members`]) is accepted but may only send
    /// `MembersQuery`.
    fn check_hello(&self, cluster_id: u64, from: u64, to: u64) -> Result<(), Refusal>;

    /// A verified frame from member `from` (a `RaftMessage`, `Forward`,
    /// `ForwardRefused`, `ForwardReply`, `SnapshotChunk` or `Publish`; the handshake and query kinds
    /// never reach it). `payload` is the frame's bytes, for a handler that
    /// keeps them.
    fn on_frame(&self, from: u64, frame: peer::Frame<'_>, payload: &[u8]);

    /// The encoded `Frame { MembersInfo }` that answers a `MembersQuery`.
    fn members_info(&self) -> Vec<u8>;
}

/// Serves one peer connection until the dialer closes it or breaks the
/// protocol.
pub async fn serve_peer_connection(
    stream: TcpStream,
    handler: Rc<dyn PeerHandler>,
    limits: PeerLimits,
) {
    let remote = stream.peer_addr().ok();
    let (rd, mut wr) = futures_lite::io::split(stream);
    let mut reader = FrameReader::new(rd, HANDSHAKE_FRAME_BYTES_MAX);
    let greeting = with_timeout(
        HANDSHAKE_TIMEOUT,
        "waiting for Hello",
        accept_hello(&mut reader, &mut wr, &*handler),
    )
    .await;
    let from = match greeting {
        Ok(from) => from,
        Err(PeerError::Refused { reason, .. }) => {
            // The dialer logs its refusals (once per state change); a
            // removed member retrying every second must not flood ours.
            tracing::debug!(?remote, %reason, "refused peer Hello");
            let _ = wr.close().await;
            return;
        }
        Err(e) => {
            tracing::warn!(?remote, error = %e, "closing peer connection during handshake");
            let _ = wr.close().await;
            return;
        }
    };
    reader.set_max_payload_bytes(limits.max_frame_bytes);
    match serve_frames(&mut reader, &mut wr, &*handler, from).await {
        PeerError::Frame(FrameError::Closed) => {
            tracing::debug!(peer = from, ?remote, "peer closed its connection")
        }
        e => tracing::warn!(peer = from, ?remote, error = %e, "closing peer connection"),
    }
    let _ = wr.close().await;
}

/// Reads and answers the `Hello`; returns the dialer's member id.
async fn accept_hello(
    reader: &mut FrameReader<ReadHalf<TcpStream>>,
    wr: &mut WriteHalf<TcpStream>,
    handler: &dyn PeerHandler,
) -> Result<u64, PeerError> {
    let (_, payload) = reader.next().await?;
    let frame = cairn_schemas::verify_peer_frame(payload)?;
    let Some(hello) = frame.body_as_hello() else {
        return Err(PeerError::Unexpected {
            expected: "Hello",
            got: body_name(&frame),
        });
    };
    let (cluster_id, from, to, version) = (
        hello.cluster_id(),
        hello.from(),
        hello.to(),
        hello.version(),
    );
    let verdict = if version != PEER_PROTOCOL_VERSION {
        Err(Refusal {
            reason: format!("unsupported peer protocol version {version} (this member speaks {PEER_PROTOCOL_VERSION})"),
            removed: false,
        })
    } else if from == 0 {
        Ok(())
    } else {
        handler.check_hello(cluster_id, from, to)
    };
    match verdict {
        Ok(()) => {
            write_frame(wr, HANDSHAKE_ID, &encode_hello_ack(true, "", false)).await?;
            Ok(from)
        }
        Err(r) => {
            write_frame(
                wr,
                HANDSHAKE_ID,
                &encode_hello_ack(false, &r.reason, r.removed),
            )
            .await?;
            Err(PeerError::Refused {
                reason: r.reason,
                removed: r.removed,
            })
        }
    }
}

/// Hands frames to the handler until the connection ends; returns why.
async fn serve_frames(
    reader: &mut FrameReader<ReadHalf<TcpStream>>,
    wr: &mut WriteHalf<TcpStream>,
    handler: &dyn PeerHandler,
    from: u64,
) -> PeerError {
    loop {
        let (request_id, payload) = match reader.next().await {
            Ok(f) => f,
            Err(e) => return e.into(),
        };
        let frame = match cairn_schemas::verify_peer_frame(payload) {
            Ok(f) => f,
            Err(e) => return e.into(),
        };
        match frame.body_type() {
            peer::Body::MembersQuery => {
                let info = handler.members_info();
                if let Err(e) = write_frame(wr, request_id, &info).await {
                    return e;
                }
            }
            peer::Body::RaftMessage
            | peer::Body::Forward
            | peer::Body::ForwardRefused
            | peer::Body::ForwardReply
            | peer::Body::SnapshotChunk
            | peer::Body::Publish
                if from != 0 =>
            {
                handler.on_frame(from, frame, payload)
            }
            _ => {
                return PeerError::Unexpected {
                    expected: if from == 0 {
                        "MembersQuery"
                    } else {
                        "a member's frame"
                    },
                    got: body_name(&frame),
                }
            }
        }
    }
}
