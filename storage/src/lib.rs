//! Cairn's disk formats. This crate owns the bytes on disk under
//! `<data-dir>/member/`: the write-ahead log ([`wal`]) and the
//! copy-on-write B+tree page file ([`btree`], `member/db`).
//!
//! # Invariants
//!
//! * Every on-disk integer has an explicit width and is little-endian;
//!   nothing `usize` reaches the disk. Every header and record carries an
//!   xxh3-64 checksum that covers its own fields, and batch headers also
//!   hold the checksum of the payload they precede.
//! * A WAL batch is written with one block-aligned write followed by one
//!   fdatasync; a batch that was acknowledged (its flush returned) is never
//!   written again: the next batch starts at the next block.
//! * Recovery never skips damage silently: a torn last batch (never
//!   acknowledged) is zeroed, anything else is a [`WalError::Corrupt`]
//!   naming the file and byte offset.
//!
//! The byte layout and the recovery argument are in `storage/FORMAT.md`.
//!
//! # Example
//!
//! ```
//! use cairn_storage::wal::{recover, RecordKind, Wal, WalOptions};
//!
//! let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
//! let opts = WalOptions { segment_size_bytes: 256 << 10, max_batch_bytes: 64 << 10, ..WalOptions::default() };
//! let path = dir.path().to_path_buf();
//! let o = opts.clone();
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(move || async move {
//!         let rec = recover(&path, &o).unwrap();
//!         let mut wal = Wal::open(&path, o, &rec.tail).await.unwrap();
//!         wal.append(RecordKind::Entry, 1, 1, b"put a=1").unwrap();
//!         wal.append(RecordKind::HardState, 1, 1, b"vote+commit").unwrap();
//!         wal.flush().await.unwrap(); // one write + one fdatasync
//!         wal.close().await.unwrap();
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! let rec = recover(dir.path(), &opts).unwrap();
//! assert_eq!(rec.records.len(), 2);
//! assert_eq!(rec.tail.next_index(), Some(2));
//! ```

#![deny(missing_docs)]

pub mod btree;
mod error;
pub mod layout;
pub mod snapshot;
pub mod wal;

pub use btree::BtreeError;
pub use error::WalError;
