//! Asking a member who the cluster is, before joining it (a member started
//! with `--initial-cluster-state existing`).

use std::net::SocketAddr;
use std::time::Duration;

use super::handshake::{body_name, dial, encode_hello, encode_members_query, write_frame};
use super::{with_timeout, PeerError};

/// A `MembersInfo` answer larger than this is not a sane cluster's.
const MEMBERS_INFO_BYTES_MAX: usize = 16 << 20;

/// Dials `addr`, says `Hello {cluster_id: 0, from: 0, to: 0}`, asks
/// `MembersQuery` and returns the answer: the bytes of a verified
/// `Frame { MembersInfo }`. Everything within `timeout`.
pub async fn query_members(addr: SocketAddr, timeout: Duration) -> Result<Vec<u8>, PeerError> {
    with_timeout(timeout, "members query", async {
        let mut conn = dial(&[addr], &encode_hello(0, 0, 0), MEMBERS_INFO_BYTES_MAX).await?;
        write_frame(&mut conn.writer, 1, &encode_members_query()).await?;
        let (_, payload) = conn.reader.next().await?;
        let frame = cairn_schemas::verify_peer_frame(payload)?;
        if frame.body_as_members_info().is_none() {
            return Err(PeerError::Unexpected {
                expected: "MembersInfo",
                got: body_name(&frame),
            });
        }
        Ok(payload.to_vec())
    })
    .await
}
