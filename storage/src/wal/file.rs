//! One open segment file, written either with O_DIRECT through glommio's
//! `DmaFile` or, where the file system refuses O_DIRECT, with glommio's
//! `BufferedFile`. Both go through io_uring. The only `unsafe` of the WAL
//! (an `fcntl` query) lives here.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, DmaFile, OpenOptions};

use super::record::BLOCK_SIZE_BYTES;
use super::DirectIo;
use crate::WalError;

/// Largest single write used to zero-fill a new segment.
const ZERO_FILL_CHUNK_BYTES: u64 = 1 << 20;

/// How segment files are opened once the mode has been resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoMode {
    Direct,
    Buffered,
}

pub(crate) enum SegmentFile {
    Direct(DmaFile),
    Buffered(BufferedFile),
}

fn gerr<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(glommio::GlommioError<()>) -> WalError + 'a {
    move |e| WalError::io(op, path, e.into())
}

/// True if the kernel reports O_DIRECT on the descriptor.
fn fd_has_o_direct(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the status flags of a descriptor we own; it
    // touches no memory of ours.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT != 0
}

/// Segments are opened write-only: the writer never reads them (recovery
/// reads with plain std::fs before the writer starts).
///
/// Write-only is also what keeps the writer from busy-polling: glommio
/// probes each block device once per executor thread with an IOPOLL read
/// of the first DMA file opened on it, and if that read succeeds (recent
/// kernels accept IOPOLL even on devices without poll queues) it sends every
/// DMA write to its poll ring, which the executor must spin on until the
/// write completes, burning a whole core. A write-only descriptor makes the
/// probe fail, so writes go to the main ring and the executor sleeps in
/// io_uring_enter while the device works. Measured with cairnd at one
/// client: 1130 µs of server CPU per put with read-write segments, 270 µs
/// write-only.
fn options(create: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(create).truncate(create);
    o
}

impl SegmentFile {
    /// Opens (or with `create`, creates and truncates) `path` in a fixed mode.
    pub(crate) async fn open(path: &Path, create: bool, mode: IoMode) -> Result<Self, WalError> {
        match mode {
            IoMode::Direct => {
                let f = options(create)
                    .dma_open(path)
                    .await
                    .map_err(gerr("opening (O_DIRECT)", path))?;
                if let Err(reason) = direct_usable(&f) {
                    let _ = f.close().await;
                    return Err(WalError::DirectIoUnsupported {
                        path: path.to_path_buf(),
                        reason,
                    });
                }
                Ok(SegmentFile::Direct(f))
            }
            IoMode::Buffered => {
                let f = options(create)
                    .buffered_open(path)
                    .await
                    .map_err(gerr("opening", path))?;
                Ok(SegmentFile::Buffered(f))
            }
        }
    }

    /// Opens `path` in the mode `want` asks for and reports the mode chosen.
    /// `Auto` falls back to buffered I/O when O_DIRECT is refused (EINVAL on
    /// open) or silently not applied (glommio skips it on tmpfs).
    pub(crate) async fn open_resolving(
        path: &Path,
        create: bool,
        want: DirectIo,
    ) -> Result<(Self, IoMode), WalError> {
        if want == DirectIo::Off {
            return Ok((
                Self::open(path, create, IoMode::Buffered).await?,
                IoMode::Buffered,
            ));
        }
        let reason = match options(create).dma_open(path).await {
            Ok(f) => match direct_usable(&f) {
                Ok(()) => return Ok((SegmentFile::Direct(f), IoMode::Direct)),
                Err(reason) => {
                    let _ = f.close().await;
                    reason
                }
            },
            Err(e) => {
                let e: std::io::Error = e.into();
                if e.raw_os_error() != Some(libc::EINVAL) {
                    return Err(WalError::io("opening (O_DIRECT)", path, e));
                }
                format!("open with O_DIRECT failed: {e}")
            }
        };
        if want == DirectIo::Require {
            return Err(WalError::DirectIoUnsupported {
                path: path.to_path_buf(),
                reason,
            });
        }
        tracing::warn!(path = %path.display(), %reason, "O_DIRECT not usable; WAL falls back to buffered I/O + fdatasync");
        Ok((
            Self::open(path, create, IoMode::Buffered).await?,
            IoMode::Buffered,
        ))
    }

    pub(crate) fn path(&self) -> PathBuf {
        let p = match self {
            SegmentFile::Direct(f) => f.path().map(|p| p.to_path_buf()),
            SegmentFile::Buffered(f) => f.path().map(|p| p.to_path_buf()),
        };
        p.unwrap_or_default()
    }

    /// Writes all of `bytes` (a whole number of blocks) at block offset `pos`.
    pub(crate) async fn write_all_at(&self, bytes: &[u8], pos: u64) -> Result<(), WalError> {
        assert!(
            pos.is_multiple_of(BLOCK_SIZE_BYTES)
                && (bytes.len() as u64).is_multiple_of(BLOCK_SIZE_BYTES),
            "invariant: WAL writes are block aligned"
        );
        let written = match self {
            SegmentFile::Direct(f) => {
                // One copy per flush into glommio's DMA memory: a DmaBuffer
                // cannot grow back after `trim_to_size`, so a single buffer
                // cannot be reused for batches of different lengths.
                let mut buf = f.alloc_dma_buffer(bytes.len());
                buf.as_bytes_mut().copy_from_slice(bytes);
                f.write_at(buf, pos).await
            }
            SegmentFile::Buffered(f) => f.write_at(bytes.to_vec(), pos).await,
        };
        let path = self.path();
        let written = written.map_err(|e| WalError::io("writing", &path, e.into()))?;
        if written != bytes.len() {
            let e = std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", bytes.len()),
            );
            return Err(WalError::io("writing", &path, e));
        }
        Ok(())
    }

    /// Writes zeros over `[0, size_bytes)`.
    pub(crate) async fn zero_fill(&self, size_bytes: u64) -> Result<(), WalError> {
        let chunk = ZERO_FILL_CHUNK_BYTES.min(size_bytes);
        let path = self.path();
        let mut pos = 0;
        match self {
            SegmentFile::Direct(f) => {
                let mut buf = f.alloc_dma_buffer(chunk as usize);
                buf.as_bytes_mut().fill(0);
                let buf = Rc::new(buf);
                while pos < size_bytes {
                    let left = size_bytes - pos;
                    let this = if left >= chunk {
                        buf.clone()
                    } else {
                        // Last, shorter piece (segment size is block aligned).
                        let mut tail = f.alloc_dma_buffer(left as usize);
                        tail.as_bytes_mut().fill(0);
                        Rc::new(tail)
                    };
                    let n = f
                        .write_rc_at(this, pos)
                        .await
                        .map_err(|e| WalError::io("zero-filling", &path, e.into()))?;
                    if n == 0 {
                        let e =
                            std::io::Error::new(std::io::ErrorKind::WriteZero, "zero-length write");
                        return Err(WalError::io("zero-filling", &path, e));
                    }
                    pos += n as u64;
                }
            }
            SegmentFile::Buffered(f) => {
                while pos < size_bytes {
                    let n = chunk.min(size_bytes - pos) as usize;
                    let w = f
                        .write_at(vec![0u8; n], pos)
                        .await
                        .map_err(|e| WalError::io("zero-filling", &path, e.into()))?;
                    pos += w as u64;
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn fdatasync(&self) -> Result<(), WalError> {
        let r = match self {
            SegmentFile::Direct(f) => f.fdatasync().await,
            SegmentFile::Buffered(f) => f.fdatasync().await,
        };
        r.map_err(|e| WalError::io("fdatasync", self.path(), e.into()))
    }

    pub(crate) async fn rename(&mut self, to: &Path) -> Result<(), WalError> {
        let r = match self {
            SegmentFile::Direct(f) => f.rename(to).await,
            SegmentFile::Buffered(f) => f.rename(to).await,
        };
        r.map_err(|e| WalError::io("renaming to", to, e.into()))
    }

    pub(crate) async fn close(self) -> Result<(), WalError> {
        let path = self.path();
        let r = match self {
            SegmentFile::Direct(f) => f.close().await,
            SegmentFile::Buffered(f) => f.close().await,
        };
        r.map_err(|e| WalError::io("closing", path, e.into()))
    }
}

/// O_DIRECT is usable if the kernel kept the flag and our block size is a
/// multiple of the device's logical block size.
fn direct_usable(f: &DmaFile) -> Result<(), String> {
    if !fd_has_o_direct(f) {
        return Err("file system does not honour O_DIRECT (e.g. tmpfs)".into());
    }
    if !BLOCK_SIZE_BYTES.is_multiple_of(f.alignment()) {
        return Err(format!(
            "device alignment {} does not divide the WAL block size {BLOCK_SIZE_BYTES}",
            f.alignment()
        ));
    }
    Ok(())
}
