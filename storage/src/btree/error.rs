//! The page file's typed error.

/// Everything that can go wrong in the page file.
///
/// Context (file, page id, byte offset) is attached where it is known, so a
/// message alone tells an operator where to look.
#[derive(Debug, thiserror::Error)]
pub enum BtreeError {
    /// A call into the [`Disk`](super::Disk) failed.
    #[error("page file I/O error: {op} {file} at offset {offset}: {source}")]
    Io {
        /// What we were doing ("reading page", "fdatasync", ...).
        op: &'static str,
        /// The file (as the disk names itself).
        file: String,
        /// Byte offset of the operation (0 where none applies).
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A page does not check out (checksum, id, kind or structure). Never
    /// repaired silently and never answered with wrong data.
    #[error("page file {file} corrupt at page {page}: {reason}")]
    Corrupt {
        /// The file (as the disk names itself).
        file: String,
        /// The page id (its byte offset is `page * page_size`).
        page: u64,
        /// What did not check out.
        reason: String,
    },

    /// Neither meta page is valid: the file is not a page file, or both of
    /// its roots were damaged.
    #[error("page file {file} has no valid meta page: page 0: {meta0}; page 1: {meta1}")]
    NoValidMeta {
        /// The file (as the disk names itself).
        file: String,
        /// Why meta page 0 was refused.
        meta0: String,
        /// Why meta page 1 was refused.
        meta1: String,
    },

    /// The keyspace does not exist (create it with `create_keyspace`).
    #[error("keyspace {name:?} does not exist")]
    KeyspaceNotFound {
        /// The keyspace name, lossily decoded.
        name: String,
    },

    /// A key is longer than the page size allows.
    #[error(
        "key of {key_bytes} bytes exceeds the maximum of {max_key_bytes} bytes for this page size"
    )]
    KeyTooLarge {
        /// Length of the rejected key.
        key_bytes: usize,
        /// Largest key length for this file's page size.
        max_key_bytes: usize,
    },

    /// A value is longer than [`MAX_VALUE_BYTES`](super::MAX_VALUE_BYTES).
    #[error("value of {value_bytes} bytes exceeds the maximum of {max_value_bytes} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        value_bytes: usize,
        /// Largest value length.
        max_value_bytes: usize,
    },

    /// `begin_write` while another write transaction is open.
    #[error("a write transaction is already open on this page file")]
    WriteInProgress,

    /// `Options` break a rule of the format.
    #[error("invalid page file options: {reason}")]
    InvalidOptions {
        /// Which rule.
        reason: String,
    },

    /// `begin_write` on a page file opened with
    /// [`Db::open_read_only`](super::Db::open_read_only).
    #[error("page file {file} is open read-only")]
    ReadOnly {
        /// The file (as the disk names itself).
        file: String,
    },

    /// An earlier commit failed part way. After a failed write or fdatasync
    /// the in-memory state no longer matches the file: reopen the file.
    #[error("page file is poisoned by an earlier failed commit; reopen it")]
    Poisoned,
}

/// Result alias of the page file.
pub type Result<T, E = BtreeError> = std::result::Result<T, E>;

impl BtreeError {
    pub(crate) fn io(
        op: &'static str,
        file: impl Into<String>,
        offset: u64,
        source: std::io::Error,
    ) -> Self {
        BtreeError::Io {
            op,
            file: file.into(),
            offset,
            source,
        }
    }

    pub(crate) fn corrupt(file: impl Into<String>, page: u64, reason: impl Into<String>) -> Self {
        BtreeError::Corrupt {
            file: file.into(),
            page,
            reason: reason.into(),
        }
    }
}
