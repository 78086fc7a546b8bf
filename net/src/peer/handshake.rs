//! The handshake frames (`Hello`, `HelloAck`, `MembersQuery`) and the
//! dialing side of the handshake, shared by the [`super::Dialer`] and
//! [`super::query_members`].

use std::net::SocketAddr;

use cairn_schemas::peer;
use flatbuffers::FlatBufferBuilder;
use futures_lite::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use glommio::net::TcpStream;

use super::{
    with_timeout, PeerError, CONNECT_TIMEOUT, HANDSHAKE_FRAME_BYTES_MAX, HANDSHAKE_TIMEOUT,
};
use crate::frame::{encode_frame, FrameReader};

/// The peer protocol version this code speaks (`Hello.version`).
pub const PEER_PROTOCOL_VERSION: u32 = 1;

/// Request id of the handshake frames (ids are otherwise a per-connection
/// sequence the receiver ignores, except that a `MembersQuery`'s answer
/// carries the query's id).
pub(crate) const HANDSHAKE_ID: u64 = 0;

fn finish_frame(
    b: &mut FlatBufferBuilder<'_>,
    body_type: peer::Body,
    body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
) -> Vec<u8> {
    let frame = peer::Frame::create(
        b,
        &peer::FrameArgs {
            body_type,
            body: Some(body),
        },
    );
    b.finish(frame, None);
    b.finished_data().to_vec()
}

/// A `Frame { Hello }` payload: the first frame of every dialed connection.
/// `from == 0` asks for a query-only connection (see [`super::PeerHandler`]).
pub fn encode_hello(cluster_id: u64, from: u64, to: u64) -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(128);
    let hello = peer::Hello::create(
        &mut b,
        &peer::HelloArgs {
            cluster_id,
            from,
            to,
            version: PEER_PROTOCOL_VERSION,
        },
    );
    finish_frame(&mut b, peer::Body::Hello, hello.as_union_value())
}

/// A `Frame { HelloAck }` payload: the listener's answer to `Hello`.
pub fn encode_hello_ack(ok: bool, reason: &str, removed: bool) -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(128 + reason.len());
    let reason = (!reason.is_empty()).then(|| b.create_string(reason));
    let ack = peer::HelloAck::create(
        &mut b,
        &peer::HelloAckArgs {
            ok,
            reason,
            removed,
        },
    );
    finish_frame(&mut b, peer::Body::HelloAck, ack.as_union_value())
}

/// A `Frame { MembersQuery }` payload.
pub fn encode_members_query() -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(64);
    let q = peer::MembersQuery::create(&mut b, &peer::MembersQueryArgs {});
    finish_frame(&mut b, peer::Body::MembersQuery, q.as_union_value())
}

/// The name of a frame's body, for errors and logs.
pub(crate) fn body_name(frame: &peer::Frame<'_>) -> &'static str {
    frame
        .body_type()
        .variant_name()
        .unwrap_or("an unknown body")
}

/// Writes one frame.
pub(crate) async fn write_frame(
    wr: &mut WriteHalf<TcpStream>,
    request_id: u64,
    payload: &[u8],
) -> Result<(), PeerError> {
    let mut out = Vec::with_capacity(payload.len() + crate::frame::HEADER_LEN);
    encode_frame(&mut out, request_id, payload);
    wr.write_all(&out).await.map_err(PeerError::Write)
}

/// A connection whose `Hello` the listener accepted.
pub(crate) struct Greeted {
    pub(crate) reader: FrameReader<ReadHalf<TcpStream>>,
    pub(crate) writer: WriteHalf<TcpStream>,
    pub(crate) addr: SocketAddr,
}

/// Dials the first of `addrs` that answers (each within
/// [`CONNECT_TIMEOUT`]), sends `hello` and reads the `HelloAck` (within
/// [`HANDSHAKE_TIMEOUT`]). `max_frame_bytes` is the limit for frames read
/// later on this connection.
pub(crate) async fn dial(
    addrs: &[SocketAddr],
    hello: &[u8],
    max_frame_bytes: usize,
) -> Result<Greeted, PeerError> {
    let mut last = PeerError::NoAddress;
    for &addr in addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT).await {
            Ok(stream) => {
                return with_timeout(
                    HANDSHAKE_TIMEOUT,
                    "peer handshake",
                    greet(stream, addr, hello, max_frame_bytes),
                )
                .await
            }
            Err(e) => {
                last = PeerError::Connect {
                    addr,
                    source: e.into(),
                }
            }
        }
    }
    Err(last)
}

async fn greet(
    stream: TcpStream,
    addr: SocketAddr,
    hello: &[u8],
    max_frame_bytes: usize,
) -> Result<Greeted, PeerError> {
    // Small frames (a heartbeat) must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (rd, mut writer) = futures_lite::io::split(stream);
    write_frame(&mut writer, HANDSHAKE_ID, hello).await?;
    let mut reader = FrameReader::new(rd, HANDSHAKE_FRAME_BYTES_MAX);
    let (_, payload) = reader.next().await?;
    let frame = cairn_schemas::verify_peer_frame(payload)?;
    let Some(ack) = frame.body_as_hello_ack() else {
        return Err(PeerError::Unexpected {
            expected: "HelloAck",
            got: body_name(&frame),
        });
    };
    if !ack.ok() {
        return Err(PeerError::Refused {
            reason: ack.reason().unwrap_or("no reason given").to_string(),
            removed: ack.removed(),
        });
    }
    reader.set_max_payload_bytes(max_frame_bytes);
    Ok(Greeted {
        reader,
        writer,
        addr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_frames_verify_as_their_body() {
        let hello = encode_hello(7, 1, 2);
        let f = cairn_schemas::verify_peer_frame(&hello).unwrap();
        let h = f.body_as_hello().unwrap();
        assert_eq!(
            (h.cluster_id(), h.from(), h.to(), h.version()),
            (7, 1, 2, 1)
        );

        let ack = encode_hello_ack(false, "wrong cluster", true);
        let f = cairn_schemas::verify_peer_frame(&ack).unwrap();
        let a = f.body_as_hello_ack().unwrap();
        assert_eq!(
            (a.ok(), a.reason(), a.removed()),
            (false, Some("wrong cluster"), true)
        );

        let q = encode_members_query();
        let f = cairn_schemas::verify_peer_frame(&q).unwrap();
        assert!(f.body_as_members_query().is_some());
    }
}
