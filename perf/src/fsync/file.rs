//! The profile file: created (and so proven writable) before anything is
//! measured, removed when its guard drops — after a sweep, after an error,
//! after Ctrl-C — and opened per case with O_DIRECT (refusals named) or
//! buffered.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use glommio::io::{DmaFile, OpenOptions};

use super::device::fd_has_o_direct;
use super::progress::Progress;
use super::FsyncError;

/// Largest single write of the zero fill.
const ZERO_FILL_CHUNK_BYTES: u64 = 1 << 20;

/// Removes the file when dropped.
#[derive(Debug)]
pub(crate) struct ProfileFile {
    path: PathBuf,
}

impl ProfileFile {
    /// Creates `DIR/.cairn-fsync-PID.tmp`, empty.
    pub(crate) fn create(dir: &Path) -> Result<ProfileFile, FsyncError> {
        let path = dir.join(format!(".cairn-fsync-{}.tmp", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|source| FsyncError::NotWritable {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(ProfileFile { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Opens the existing file write-only with O_DIRECT, as the WAL opens its
/// segments (write-only also keeps glommio from busy-polling the device;
/// see cairn-storage's wal/file.rs). A file system that refuses O_DIRECT,
/// or a descriptor the kernel opened without it, is named as such.
pub(crate) async fn open_direct(path: &Path, dir: &Path, fs: &str) -> Result<DmaFile, FsyncError> {
    let no_direct = |reason: &str| FsyncError::NoDirectIo {
        dir: dir.to_path_buf(),
        fs: fs.to_string(),
        reason: reason.to_string(),
    };
    match OpenOptions::new().write(true).dma_open(path).await {
        Ok(f) if fd_has_o_direct(&f) => Ok(f),
        Ok(f) => {
            let _ = f.close().await;
            Err(no_direct("the file was opened without O_DIRECT"))
        }
        Err(e) => {
            let e: std::io::Error = e.into();
            if e.raw_os_error() == Some(libc::EINVAL) {
                Err(no_direct("opening with O_DIRECT fails with EINVAL"))
            } else {
                Err(FsyncError::Io {
                    op: "opening (O_DIRECT)",
                    path: path.to_path_buf(),
                    source: e,
                })
            }
        }
    }
}

/// Opens the existing file write-only through the page cache.
pub(crate) fn open_buffered(path: &Path) -> Result<std::fs::File, FsyncError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| FsyncError::Io {
            op: "opening (buffered)",
            path: path.to_path_buf(),
            source,
        })
}

/// Writes zeros over `[0, size_bytes)` and makes them durable, as the WAL
/// prepares a segment: afterwards no measured write allocates or converts
/// an extent.
pub(crate) async fn zero_fill(
    file: &DmaFile,
    path: &Path,
    size_bytes: u64,
    interrupt: &AtomicBool,
    progress: &mut Progress,
) -> Result<(), FsyncError> {
    let gio = |op: &'static str| {
        move |e: glommio::GlommioError<()>| FsyncError::Io {
            op,
            path: path.to_path_buf(),
            source: e.into(),
        }
    };
    let chunk = ZERO_FILL_CHUNK_BYTES.min(size_bytes) as usize;
    let mut zeros = file.alloc_dma_buffer(chunk);
    zeros.as_bytes_mut().fill(0);
    let zeros = Rc::new(zeros);
    let mut pos = 0u64;
    while pos < size_bytes {
        if interrupt.load(Ordering::Relaxed) {
            return Err(FsyncError::Interrupted);
        }
        let left = size_bytes - pos;
        let buf = if left >= chunk as u64 {
            zeros.clone()
        } else {
            // The last, shorter piece (the size is block aligned).
            let mut tail = file.alloc_dma_buffer(left as usize);
            tail.as_bytes_mut().fill(0);
            Rc::new(tail)
        };
        let n = file
            .write_rc_at(buf, pos)
            .await
            .map_err(gio("zero-filling"))?;
        if n == 0 {
            let source = std::io::Error::new(std::io::ErrorKind::WriteZero, "zero-length write");
            return Err(FsyncError::Io {
                op: "zero-filling",
                path: path.to_path_buf(),
                source,
            });
        }
        pos += n as u64;
        progress.tick(0);
    }
    file.fdatasync().await.map_err(gio("fdatasync"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let f = ProfileFile::create(dir.path()).unwrap();
            assert!(f.path().exists());
            f.path().to_path_buf()
        };
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_directory_is_not_writable_with_the_reason() {
        let e = ProfileFile::create(Path::new("/nonexistent-cairn-fsync-dir")).unwrap_err();
        assert!(matches!(e, FsyncError::NotWritable { .. }), "{e}");
    }
}
