//! One peer's send queue: payloads waiting for the connection, bounded in
//! frames and in bytes. Pure (no I/O), so its bounds are unit-tested.
//!
//! While the peer is connected the queue absorbs bursts (a leader sending
//! appends faster than one write drains them). While it is disconnected it
//! holds at most [`QUEUE_FRAMES_MAX_DISCONNECTED`] frames: when a
//! connection is lost the queue keeps the *newest* frames up to that bound
//! (the latest state the leader meant to convey: its term, its commit, a
//! vote request), and later sends are refused until the peer is back.
//! Raft tolerates the loss: heartbeats go out every tick, a leader probes
//! a follower that stopped answering and resends what it misses, and a
//! candidate campaigns again. A short queue also means the first write
//! after a reconnection carries a few recent messages, not a burst of
//! stale appends.

use std::collections::VecDeque;

use crate::frame::{encode_frame, ID_LEN};

/// Frames one peer's queue holds while the peer is connected.
pub const QUEUE_FRAMES_MAX: usize = 4096;

/// Frames one peer's queue holds while the peer is not connected.
pub const QUEUE_FRAMES_MAX_DISCONNECTED: usize = 64;

pub(crate) struct SendQueue {
    frames: VecDeque<Vec<u8>>,
    /// Sum of the payload lengths in `frames`.
    bytes: usize,
    bytes_max: usize,
    connected: bool,
}

impl SendQueue {
    /// A queue for a peer not connected yet, holding at most `bytes_max`
    /// payload bytes (and never a payload the frame's `u32` length cannot
    /// describe).
    pub(crate) fn new(bytes_max: usize) -> SendQueue {
        SendQueue {
            frames: VecDeque::new(),
            bytes: 0,
            bytes_max: bytes_max.min(u32::MAX as usize - ID_LEN),
            connected: false,
        }
    }

    fn frames_max(&self) -> usize {
        if self.connected {
            QUEUE_FRAMES_MAX
        } else {
            QUEUE_FRAMES_MAX_DISCONNECTED
        }
    }

    /// Queues `payload`; false (and `payload` dropped) if the queue is full
    /// in frames or bytes.
    pub(crate) fn push(&mut self, payload: Vec<u8>) -> bool {
        if self.frames.len() >= self.frames_max() || payload.len() > self.bytes_max - self.bytes {
            return false;
        }
        self.bytes += payload.len();
        self.frames.push_back(payload);
        self.assert_bounds();
        true
    }

    /// Switches the bound; on a disconnection drops the oldest frames
    /// beyond the disconnected bound.
    pub(crate) fn set_connected(&mut self, connected: bool) {
        self.connected = connected;
        while self.frames.len() > self.frames_max() {
            if let Some(old) = self.frames.pop_front() {
                self.bytes -= old.len();
            }
        }
        self.assert_bounds();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Moves every queued payload into `out` as frames numbered from
    /// `*next_id` on; returns how many.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<u8>, next_id: &mut u64) -> usize {
        let n = self.frames.len();
        for payload in self.frames.drain(..) {
            encode_frame(out, *next_id, &payload);
            *next_id = next_id.wrapping_add(1);
        }
        self.bytes = 0;
        n
    }

    fn assert_bounds(&self) {
        assert!(
            self.frames.len() <= QUEUE_FRAMES_MAX && self.bytes <= self.bytes_max,
            "invariant: a peer queue stays within its bounds ({} frames, {} of {} bytes)",
            self.frames.len(),
            self.bytes,
            self.bytes_max
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{parse_head, Head, HEADER_LEN};

    #[test]
    fn disconnected_queue_refuses_past_its_frame_bound() {
        let mut q = SendQueue::new(1 << 20);
        for _ in 0..QUEUE_FRAMES_MAX_DISCONNECTED {
            assert!(q.push(vec![1; 10]));
        }
        assert!(!q.push(vec![1; 10]));
        assert_eq!(q.len(), QUEUE_FRAMES_MAX_DISCONNECTED);
    }

    #[test]
    fn connected_queue_refuses_past_its_frame_bound() {
        let mut q = SendQueue::new(1 << 20);
        q.set_connected(true);
        for _ in 0..QUEUE_FRAMES_MAX {
            assert!(q.push(Vec::new()));
        }
        assert!(!q.push(Vec::new()));
    }

    #[test]
    fn queue_refuses_past_its_byte_bound() {
        let mut q = SendQueue::new(100);
        q.set_connected(true);
        assert!(!q.push(vec![0; 101]), "a frame over the bound never fits");
        assert!(q.push(vec![0; 60]));
        assert!(!q.push(vec![0; 41]));
        assert!(q.push(vec![0; 40]));
        assert_eq!(q.bytes(), 100);
    }

    #[test]
    fn disconnection_keeps_the_newest_frames() {
        let mut q = SendQueue::new(1 << 20);
        q.set_connected(true);
        for i in 0..1000u32 {
            assert!(q.push(i.to_le_bytes().to_vec()));
        }
        q.set_connected(false);
        assert_eq!(q.len(), QUEUE_FRAMES_MAX_DISCONNECTED);
        assert_eq!(q.bytes(), 4 * QUEUE_FRAMES_MAX_DISCONNECTED);
        let mut out = Vec::new();
        let mut id = 1;
        assert_eq!(
            q.drain_into(&mut out, &mut id),
            QUEUE_FRAMES_MAX_DISCONNECTED
        );
        let first = (1000 - QUEUE_FRAMES_MAX_DISCONNECTED) as u32;
        assert_eq!(
            parse_head(&out),
            Head::Frame {
                request_id: 1,
                payload_len: 4
            }
        );
        assert_eq!(&out[HEADER_LEN..HEADER_LEN + 4], &first.to_le_bytes());
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }
}
