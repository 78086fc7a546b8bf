//! Keeping the last HardState when segments are skipped or released.
//!
//! [`super::recover_after`] skips segments the page file absorbed and
//! [`super::release_segments`] deletes them. Their entries are safe to
//! lose (FORMAT.md, "Recovery after the page file"), but a HardState is
//! not an entry: the Raft term and vote in it must survive, and the last
//! one may sit in an absorbed segment (a follower whose commit index stood
//! still while it filled the next segment, or a node restarted without
//! writing). So both look for it: recovery returns the last HardState of
//! the skipped segments when the segments it read hold none, and release
//! keeps the newest segment that holds the last HardState.
//!
//! The reader here is lenient on purpose: it walks the valid batches of a
//! segment from its start and stops at the first one that does not check
//! out. Absorbed segments were validated when they were the log; the full
//! checks stay with [`super::verify`].

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::record::{
    align_up, decode_batch_header, decode_records, decode_segment_header, OwnedRecord, RecordKind,
    BATCH_HEADER_BYTES, BLOCK_SIZE_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::WalError;

/// What to look for in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Find {
    /// Stop at the first HardState (is there one at all?).
    Any,
    /// Read every valid batch and return the last HardState.
    Last,
}

/// A HardState record of the segment at `path`, reading its valid batches
/// up to `data_end` (where the next segment says its data ends; `None`:
/// up to the first batch that does not check out).
pub(crate) fn find_hard_state(
    path: &Path,
    data_end: Option<u64>,
    find: Find,
) -> Result<Option<OwnedRecord>, WalError> {
    let io = |e| WalError::io("reading", path, e);
    let file = std::fs::File::open(path).map_err(io)?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    let h = decode_segment_header(&header).map_err(|r| WalError::corrupt(path, 0, r))?;
    let (seq, salt) = (h.seq.get(), h.salt.get());
    let end = data_end.unwrap_or(h.segment_size.get());
    let mut offset = BLOCK_SIZE_BYTES;
    let mut found = None;
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    while offset + BATCH_HEADER_BYTES as u64 <= end {
        let mut bh = [0u8; BATCH_HEADER_BYTES];
        file.read_exact_at(&mut bh, offset).map_err(io)?;
        let Ok(bh) = decode_batch_header(&bh, seq, offset, salt) else {
            break;
        };
        let payload_bytes = u64::from(bh.payload_bytes.get());
        let batch_end = offset + BATCH_HEADER_BYTES as u64 + payload_bytes;
        if align_up(batch_end) > end {
            break;
        }
        buf.resize(payload_bytes as usize, 0);
        file.read_exact_at(&mut buf, offset + BATCH_HEADER_BYTES as u64)
            .map_err(io)?;
        batch.clear();
        let decoded = decode_records(
            &buf,
            bh.record_count.get(),
            salt,
            bh.payload_checksum.get(),
            &mut batch,
        );
        if decoded.is_err() {
            break;
        }
        if let Some(hs) = batch.drain(..).rfind(|r| r.kind == RecordKind::HardState) {
            found = Some(hs);
            if find == Find::Any {
                break;
            }
        }
        offset = align_up(batch_end);
    }
    Ok(found)
}
