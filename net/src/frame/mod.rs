//! Length-prefixed frames with a request id (see `schemas/PROTOCOL.md`).
//!
//! ```text
//! 0          4                  12
//! +----------+------------------+---------------------------+
//! | len: u32 | request_id: u64  | payload: len - 8 bytes    |
//! +----------+------------------+---------------------------+
//! ```
//! Integers are little-endian. `len` counts the request id and the payload,
//! so the smallest valid frame has `len == 8` (an empty payload, which the
//! verifier then refuses).
//!
//! [`FrameReader`] reads such frames from an async stream with a size limit;
//! the peer protocol and the async client stub share it.

mod reader;

pub use reader::{FrameError, FrameReader};

/// Bytes before the payload: the length and the request id.
pub const HEADER_LEN: usize = 12;
/// Bytes counted by `len` that are not payload.
pub const ID_LEN: usize = 8;

/// Appends one frame (header + payload) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, request_id: u64, payload: &[u8]) {
    let len = u32::try_from(payload.len() + ID_LEN)
        .expect("frame payload under 4 GiB (checked by callers)");
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What the head of a receive buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// Fewer than [`HEADER_LEN`] bytes so far.
    NeedHeader,
    /// A header announcing a frame; `payload_len` bytes follow it.
    Frame { request_id: u64, payload_len: usize },
    /// A length below the minimum: the stream is not Cairn frames.
    Invalid { len: u32 },
}

/// Parses the frame header at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Head {
    if buf.len() < HEADER_LEN {
        return Head::NeedHeader;
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if (len as usize) < ID_LEN {
        return Head::Invalid { len };
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&buf[4..12]);
    Head::Frame {
        request_id: u64::from_le_bytes(id),
        payload_len: len as usize - ID_LEN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trips() {
        let mut buf = Vec::new();
        encode_frame(&mut buf, 42, b"hello");
        assert_eq!(
            parse_head(&buf),
            Head::Frame {
                request_id: 42,
                payload_len: 5
            }
        );
        assert_eq!(&buf[HEADER_LEN..], b"hello");
    }

    #[test]
    fn short_buffer_needs_header() {
        assert_eq!(parse_head(&[1, 2, 3]), Head::NeedHeader);
    }

    #[test]
    fn length_below_id_is_invalid() {
        let mut buf = vec![3, 0, 0, 0];
        buf.extend_from_slice(&[0; 8]);
        assert_eq!(parse_head(&buf), Head::Invalid { len: 3 });
    }
}
