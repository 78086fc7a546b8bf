//! Read-only access to a page file: a snapshot file (a page-file image
//! followed by a trailer) or offline inspection of a live node's file.
//!
//! [`ReadOnlyFileDisk`] opens the file `O_RDONLY` and refuses every
//! mutating call, so nothing built on it can write a byte; a length limit
//! hides whatever follows the page-file image (reads past it fail, and
//! `len_bytes` reports the limit). [`Db::open_read_only`] opens a [`Db`]
//! over it whose `begin_write` is refused with [`BtreeError::ReadOnly`].
//!
//! Reading a file that a live node keeps committing to is best effort: no
//! reader is registered with that node's writer, so the pages of the
//! version read here may be reused under it, and a reused page passes its
//! checksum (the checksum is in the page, not in the parent). Plain reads
//! can then see a mix of versions; [`Db::verify`] reports it as
//! [`BtreeError::Corrupt`] (a page written after the version). For a
//! consistent copy of a live file, use the node's own `Db`
//! ([`Db::compact_to`] pins its version).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::disk::Disk;
use super::error::{BtreeError, Result};
use super::{Db, Options};

/// A page file opened `O_RDONLY`, optionally cut at a byte length.
///
/// `write_at`, `grow` and `sync` fail with
/// [`io::ErrorKind::PermissionDenied`].
pub struct ReadOnlyFileDisk {
    file: File,
    path: PathBuf,
    /// Bytes past this offset are not part of the page file (a trailer).
    len_limit_bytes: Option<u64>,
}

impl ReadOnlyFileDisk {
    /// Opens the existing file at `path` for reading only. A missing file
    /// is an error (never created).
    pub fn open(path: &Path, len_limit_bytes: Option<u64>) -> io::Result<ReadOnlyFileDisk> {
        let file = OpenOptions::new().read(true).open(path)?;
        Ok(ReadOnlyFileDisk {
            file,
            path: path.to_path_buf(),
            len_limit_bytes,
        })
    }
}

fn read_only_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "read-only")
}

impl Disk for ReadOnlyFileDisk {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if let Some(limit) = self.len_limit_bytes {
            let end = offset.checked_add(buf.len() as u64);
            if end.is_none_or(|e| e > limit) {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "read of {} bytes at {offset} passes the length limit {limit}",
                        buf.len()
                    ),
                ));
            }
        }
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> io::Result<()> {
        Err(read_only_error())
    }
    fn sync(&self) -> io::Result<()> {
        Err(read_only_error())
    }
    fn len_bytes(&self) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        Ok(self.len_limit_bytes.map_or(len, |l| l.min(len)))
    }
    fn grow(&self, _new_len_bytes: u64) -> io::Result<()> {
        Err(read_only_error())
    }
    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

impl Db {
    /// Opens the existing page file at `path` without ever writing to it:
    /// the file is opened `O_RDONLY`, and `begin_write` returns
    /// [`BtreeError::ReadOnly`]. With `len_limit_bytes`, only the first
    /// that many bytes are the page file (a snapshot's trailer follows).
    /// Readers, [`Db::verify`] and [`Db::compact_to`] work as usual; of
    /// `opts` only the cache size matters.
    pub fn open_read_only(path: &Path, len_limit_bytes: Option<u64>, opts: Options) -> Result<Db> {
        let name = path.display().to_string();
        let disk = ReadOnlyFileDisk::open(path, len_limit_bytes)
            .map_err(|e| BtreeError::io("opening read-only", name.clone(), 0, e))?;
        let len = disk
            .len_bytes()
            .map_err(|e| BtreeError::io("stat", name.clone(), 0, e))?;
        if len == 0 {
            // `Db::open` would make an empty disk a new file.
            return Err(BtreeError::NoValidMeta {
                file: name,
                meta0: "file is empty".into(),
                meta1: "file is empty".into(),
            });
        }
        let mut db = Db::open(disk, opts)?;
        db.read_only = true;
        Ok(db)
    }
}
