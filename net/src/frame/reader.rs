//! Reading frames from an async byte stream: one buffer per connection,
//! grown to the largest frame seen (never past the limit), frames handed
//! out as slices of it so a frame's payload is not copied.
//!
//! Every byte is untrusted: a length below the minimum or above the limit
//! is an error before anything is allocated for it.

use futures_lite::io::{AsyncRead, AsyncReadExt};

use super::{parse_head, Head, HEADER_LEN};

/// The read buffer's starting size, and the size it shrinks back to after
/// a large frame was consumed.
const INITIAL_BUFFER_BYTES: usize = 64 << 10;

/// A buffer larger than this is shrunk once it holds no partial frame, so
/// one large frame (a snapshot chunk) does not pin its memory for the life
/// of the connection.
const RETAINED_BUFFER_BYTES_MAX: usize = 4 << 20;

/// Why no frame could be read. After any of these the stream is not in
/// sync any more: the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The other side closed the stream between frames.
    #[error("connection closed")]
    Closed,
    /// The other side closed the stream inside a frame.
    #[error("connection closed mid-frame ({buffered_bytes} bytes of a frame read)")]
    ClosedMidFrame { buffered_bytes: usize },
    /// A length below the minimum: the stream is not Cairn frames.
    #[error("invalid frame length {len}")]
    InvalidLength { len: u32 },
    /// A frame announcing a payload over the limit.
    #[error("frame payload of {payload_bytes} bytes exceeds the limit of {max_bytes}")]
    TooLarge {
        payload_bytes: usize,
        max_bytes: usize,
    },
    /// The read itself failed.
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads length-prefixed frames (see the module docs of [`crate::frame`])
/// from `R`, refusing payloads over `max_payload_bytes`.
pub struct FrameReader<R> {
    rd: R,
    buf: Vec<u8>,
    /// `buf[start..filled]` holds bytes read but not handed out yet.
    start: usize,
    filled: usize,
    max_payload_bytes: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(rd: R, max_payload_bytes: usize) -> FrameReader<R> {
        FrameReader {
            rd,
            buf: vec![0; INITIAL_BUFFER_BYTES],
            start: 0,
            filled: 0,
            max_payload_bytes,
        }
    }

    /// The payload limit this reader enforces.
    pub fn max_payload_bytes(&self) -> usize {
        self.max_payload_bytes
    }

    /// Changes the limit for the frames read from now on (a handshake reads
    /// its first frame with a small limit, the rest with the normal one).
    pub fn set_max_payload_bytes(&mut self, max_payload_bytes: usize) {
        self.max_payload_bytes = max_payload_bytes;
    }

    /// Reads the next frame: its request id and its payload, which borrows
    /// the reader's buffer until the next call.
    pub async fn next(&mut self) -> Result<(u64, &[u8]), FrameError> {
        let (request_id, range) = loop {
            match parse_head(&self.buf[self.start..self.filled]) {
                Head::Invalid { len } => return Err(FrameError::InvalidLength { len }),
                Head::Frame {
                    request_id,
                    payload_len,
                } => {
                    if payload_len > self.max_payload_bytes {
                        return Err(FrameError::TooLarge {
                            payload_bytes: payload_len,
                            max_bytes: self.max_payload_bytes,
                        });
                    }
                    let end = self.start + HEADER_LEN + payload_len;
                    if end <= self.filled {
                        let range = self.start + HEADER_LEN..end;
                        self.start = end;
                        break (request_id, range);
                    }
                    self.make_room(HEADER_LEN + payload_len);
                }
                Head::NeedHeader => self.make_room(HEADER_LEN),
            }
            self.fill().await?;
        };
        Ok((request_id, &self.buf[range]))
    }

    /// Moves the unconsumed bytes to the front and makes the buffer hold at
    /// least `frame_bytes` (the whole frame being read).
    fn make_room(&mut self, frame_bytes: usize) {
        let pending = self.filled - self.start;
        self.buf.copy_within(self.start..self.filled, 0);
        self.start = 0;
        self.filled = pending;
        if frame_bytes > self.buf.len() {
            self.buf.resize(frame_bytes, 0);
        } else if self.buf.len() > RETAINED_BUFFER_BYTES_MAX
            && frame_bytes <= INITIAL_BUFFER_BYTES
            && pending <= INITIAL_BUFFER_BYTES
        {
            self.buf.truncate(INITIAL_BUFFER_BYTES);
            self.buf.shrink_to_fit();
        }
    }

    async fn fill(&mut self) -> Result<(), FrameError> {
        debug_assert!(
            self.filled < self.buf.len(),
            "make_room leaves space to read into"
        );
        match self.rd.read(&mut self.buf[self.filled..]).await? {
            0 if self.filled == self.start => Err(FrameError::Closed),
            0 => Err(FrameError::ClosedMidFrame {
                buffered_bytes: self.filled - self.start,
            }),
            n => {
                self.filled += n;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;

    fn read_all(bytes: &[u8], max: usize) -> (Vec<(u64, Vec<u8>)>, FrameError) {
        futures_lite::future::block_on(async {
            let mut r = FrameReader::new(bytes, max);
            let mut frames = Vec::new();
            loop {
                match r.next().await {
                    Ok((id, p)) => frames.push((id, p.to_vec())),
                    Err(e) => return (frames, e),
                }
            }
        })
    }

    #[test]
    fn frames_come_out_in_order_then_closed() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 1, b"a");
        encode_frame(&mut bytes, 2, &vec![7; 200 << 10]);
        encode_frame(&mut bytes, 3, b"");
        let (frames, end) = read_all(&bytes, 1 << 20);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], (1, b"a".to_vec()));
        assert_eq!(frames[1].1.len(), 200 << 10);
        assert_eq!(frames[2], (3, Vec::new()));
        assert!(matches!(end, FrameError::Closed), "{end}");
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        let (frames, end) = read_all(&bytes, 1 << 20);
        assert!(frames.is_empty());
        assert!(matches!(end, FrameError::TooLarge { .. }), "{end}");
    }

    #[test]
    fn short_length_is_invalid() {
        let (_, end) = read_all(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1 << 20);
        assert!(matches!(end, FrameError::InvalidLength { len: 1 }), "{end}");
    }

    #[test]
    fn truncated_frame_is_closed_mid_frame() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 1, b"hello");
        bytes.pop();
        let (frames, end) = read_all(&bytes, 1 << 20);
        assert!(frames.is_empty());
        assert!(matches!(end, FrameError::ClosedMidFrame { .. }), "{end}");
    }

    #[test]
    fn buffer_shrinks_after_a_large_frame() {
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, 1, &vec![1; RETAINED_BUFFER_BYTES_MAX + 1]);
        encode_frame(&mut bytes, 2, b"small");
        encode_frame(&mut bytes, 3, b"small");
        futures_lite::future::block_on(async {
            let mut r = FrameReader::new(&bytes[..], 8 << 20);
            assert_eq!(r.next().await.map(|(id, _)| id).ok(), Some(1));
            assert_eq!(r.next().await.map(|(id, _)| id).ok(), Some(2));
            assert_eq!(r.next().await.map(|(id, _)| id).ok(), Some(3));
            assert!(r.buf.len() <= RETAINED_BUFFER_BYTES_MAX);
        });
    }
}
