//! The write-ahead log: preallocated segment files of block-aligned,
//! checksummed batches of records, written with group commit.
//!
//! * [`recover`] (plain `std::fs`, synchronous) reads a WAL directory at
//!   start, truncates a torn tail, refuses corruption before the tail, and
//!   returns the records (in file order) and the [`TailPosition`].
//! * [`effective_log`] folds those records into what is in effect: an
//!   Entry at or below the last index replaces the suffix from there on
//!   (a Raft follower overwriting conflicting entries), a Snapshot marker
//!   restarts the log after its index, the last HardState counts.
//! * [`verify`] / [`verify_each`] run the same scan without writing a byte
//!   (offline inspection, `cairn-dump`): they report segments, records and
//!   the torn tail `recover` would zero.
//! * [`release_segments`] removes the oldest segments once everything
//!   they hold is in the page file.
//! * [`Wal`] (glommio, inside a `LocalExecutor`) continues at that tail:
//!   [`Wal::append`] copies records into the pending batch, [`Wal::flush`]
//!   writes the batch with one O_DIRECT write and one fdatasync.
//!
//! The byte layout and the recovery argument are in `storage/FORMAT.md`.

mod effective;
mod file;
mod hard_state;
mod record;
mod recovery;
mod release;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use effective::{effective_log, EffectiveLog, SnapshotMarker, SNAPSHOT_MARKER_DATA_BYTES};
pub use record::{
    OwnedRecord, RecordKind, BATCH_HEADER_BYTES, BLOCK_SIZE_BYTES, FORMAT_VERSION,
    RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
pub use recovery::{
    recover, recover_after, verify, verify_each, RecordPosition, Recovered, SegmentReport,
    TornTail, VerifyReport,
};
pub use release::release_segments;
pub use segment::segment_file_name;
pub use writer::{FlushStats, Wal};

pub use crate::WalError;

/// Whether segment files are written with O_DIRECT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DirectIo {
    /// O_DIRECT where the file system supports it, else buffered I/O with a
    /// warning (tmpfs, some FUSE file systems).
    #[default]
    Auto,
    /// O_DIRECT or an error.
    Require,
    /// Buffered I/O + fdatasync (tests, tmpfs).
    Off,
}

/// Tuning of the WAL. Both sizes are multiples of [`BLOCK_SIZE_BYTES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Size of each segment file, preallocated (default 64 MiB).
    pub segment_size_bytes: u64,
    /// Upper bound of one batch including its header and padding (default
    /// 4 MiB). A record that cannot fit in an empty batch is rejected.
    pub max_batch_bytes: u64,
    /// O_DIRECT policy.
    pub direct_io: DirectIo,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size_bytes: 64 << 20,
            max_batch_bytes: 4 << 20,
            direct_io: DirectIo::Auto,
        }
    }
}

impl WalOptions {
    /// Checks the rules the format relies on.
    pub fn validate(&self) -> Result<(), WalError> {
        let bad = |reason| Err(WalError::InvalidOptions { reason });
        if !self.segment_size_bytes.is_multiple_of(BLOCK_SIZE_BYTES)
            || !self.max_batch_bytes.is_multiple_of(BLOCK_SIZE_BYTES)
        {
            return bad("segment_size_bytes and max_batch_bytes must be multiples of 4096");
        }
        if self.max_batch_bytes < BLOCK_SIZE_BYTES || self.max_batch_bytes > u64::from(u32::MAX) {
            return bad("max_batch_bytes must be between 4096 and u32::MAX");
        }
        // Block 0 is the segment header; any batch must fit in a new segment.
        if self.segment_size_bytes < BLOCK_SIZE_BYTES + self.max_batch_bytes {
            return bad("segment_size_bytes must be at least max_batch_bytes + 4096");
        }
        Ok(())
    }

    /// Largest data length of a single record.
    pub fn max_record_data_bytes(&self) -> usize {
        self.max_batch_bytes as usize - BATCH_HEADER_BYTES - RECORD_HEADER_BYTES
    }
}

/// Where the writer continues after [`recover`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailPosition {
    /// The last segment, or `None` for an empty directory (the writer then
    /// starts segment 0).
    pub segment: Option<SegmentTail>,
    /// The effective last index: of the last Entry in effect (after
    /// rewrites), or of the last Snapshot marker if no Entry followed it;
    /// `None` if the log has neither.
    pub last_index: Option<u64>,
    /// Entries appended next must be above this index: the last Snapshot
    /// marker's index, or, when [`recover_after`] skipped absorbed
    /// segments, at least the index before the first segment it read
    /// (a marker in a skipped segment is at or below it). `None`: any
    /// index >= 1.
    pub rewrite_floor: Option<u64>,
}

impl TailPosition {
    /// The index the next Entry record gets when it replaces nothing, if
    /// the log has an effective last index.
    pub fn next_index(&self) -> Option<u64> {
        self.last_index.map(|i| i + 1)
    }
}

/// The segment the writer appends to after recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentTail {
    /// Final path of the segment file.
    pub path: PathBuf,
    /// Segment sequence number.
    pub seq: u64,
    /// First index recorded in the segment name and header.
    pub first_index: u64,
    /// Size of the segment file (from its header).
    pub size_bytes: u64,
    /// Checksum seed of the segment (from its header).
    pub salt: u64,
    /// Block-aligned offset where the next batch goes.
    pub offset: u64,
}
