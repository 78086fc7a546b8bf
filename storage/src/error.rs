//! The crate's typed error.

use std::path::PathBuf;

/// Everything that can go wrong in the write-ahead log.
///
/// Context (file, byte offset, index) is attached where it is known, so a
/// message alone tells an operator where to look.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An operating-system I/O call failed.
    #[error("WAL I/O error: {op} {}: {source}", path.display())]
    Io {
        /// What we were doing ("reading", "fdatasync", ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Bytes that were once durable no longer check out. Never repaired
    /// silently: the operator must decide (restore from a peer, or remove the
    /// member and re-add it).
    #[error("WAL corrupt at {} offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the bad spot inside `path`.
        offset: u64,
        /// What did not check out.
        reason: String,
    },

    /// A record can never fit in a batch of `max_batch_bytes`.
    #[error(
        "WAL record of {data_bytes} bytes exceeds the maximum of {max_data_bytes} bytes per record"
    )]
    RecordTooLarge {
        /// Length of the rejected data.
        data_bytes: usize,
        /// Largest data length that fits in one batch.
        max_data_bytes: usize,
    },

    /// The record would fit in an empty batch but not in the pending one:
    /// call `flush` first, then append again.
    #[error("WAL batch full: {pending_bytes} bytes pending, record needs {record_bytes}, batch maximum {max_batch_bytes}")]
    BatchFull {
        /// Bytes already in the pending batch (header included).
        pending_bytes: usize,
        /// Bytes the record needs (record header included).
        record_bytes: usize,
        /// Configured batch bound.
        max_batch_bytes: usize,
    },

    /// An Entry record's index is past the effective last index + 1: the
    /// entries in between would be missing.
    #[error(
        "WAL entry index {got} leaves a gap after the last index: expected at most {expected}"
    )]
    IndexNotContiguous {
        /// The highest index allowed: effective last index + 1.
        expected: u64,
        /// The index that was given.
        got: u64,
    },

    /// An Entry record's index is 0 or at or below the last Snapshot
    /// marker (or below the absorbed part of the log the writer was
    /// opened after): those indexes can no longer be rewritten.
    #[error(
        "WAL entry index {got} is below {first_allowed}, the first index that may still be written"
    )]
    IndexBelowFloor {
        /// The lowest index an Entry may carry now.
        first_allowed: u64,
        /// The index that was given.
        got: u64,
    },

    /// A Snapshot marker whose data is not `index u64 LE, term u64 LE`
    /// naming the record's own index.
    #[error("WAL snapshot marker at index {index} is malformed: {reason}")]
    BadSnapshotMarker {
        /// The record's index field.
        index: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// `WalOptions` break a rule of the format.
    #[error("invalid WAL options: {reason}")]
    InvalidOptions {
        /// Which rule.
        reason: &'static str,
    },

    /// `DirectIo::Require` was asked for but the file system refuses O_DIRECT.
    #[error("O_DIRECT required but not usable for {}: {reason}", path.display())]
    DirectIoUnsupported {
        /// The file we tried to open.
        path: PathBuf,
        /// Why it is not usable.
        reason: String,
    },

    /// An earlier write or fdatasync failed. After a failed fdatasync the
    /// kernel may have dropped dirty pages, so the writer refuses to go on;
    /// restart and recover.
    #[error("WAL writer is poisoned by an earlier I/O failure; restart and recover")]
    Poisoned,
}

impl WalError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WalError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        WalError::Corrupt {
            path: path.into(),
            offset,
            reason: reason.into(),
        }
    }
}
