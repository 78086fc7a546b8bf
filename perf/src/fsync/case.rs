//! One measured case: rounds of `queue_depth` writes of consecutive blocks
//! (O_DIRECT through io_uring, or buffered through std::fs) followed by one
//! fdatasync, sequential through the file, until the case's limits say stop.
//!
//! In a preallocated file the rounds wrap to offset 0 at the end (every
//! block was already written, so no write allocates); with `--extend` the
//! file grows and is truncated back to empty, untimed, when it reaches its
//! size bound.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use glommio::io::{DmaBuffer, DmaFile};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::join::join_all;
use super::progress::Progress;
use super::report::CaseReport;
use super::FsyncError;

/// How the case writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoKind {
    /// O_DIRECT through io_uring (glommio's DmaFile), as the WAL writes.
    Direct,
    /// Through the page cache (std::fs), as a WAL without O_DIRECT writes.
    Buffered,
}

/// Where the writes land.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Into a zero-filled file, as WAL segments are prepared.
    Preallocated,
    /// Appended to a growing file (a metadata commit per fdatasync).
    Extend,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Preallocated => "preallocated",
            Layout::Extend => "extend",
        })
    }
}

/// What one case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseSpec {
    pub io: IoKind,
    pub block_size_bytes: usize,
    pub queue_depth: usize,
    pub layout: Layout,
}

impl CaseSpec {
    /// The WAL's pattern: one O_DIRECT write, then fdatasync.
    pub fn wal_like(block_size_bytes: usize, layout: Layout) -> CaseSpec {
        CaseSpec {
            io: IoKind::Direct,
            block_size_bytes,
            queue_depth: 1,
            layout,
        }
    }

    /// Bytes written per round.
    pub fn batch_bytes(&self) -> u64 {
        self.block_size_bytes as u64 * self.queue_depth as u64
    }

    /// "direct 4K qd1".
    pub fn label(&self) -> String {
        let io = match self.io {
            IoKind::Direct => "direct",
            IoKind::Buffered => "buffered",
        };
        format!(
            "{io} {} qd{}",
            size_label(self.block_size_bytes as u64),
            self.queue_depth
        )
    }
}

/// "4K", "1M", or bytes when neither divides.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{}K", bytes >> 10)
    } else {
        bytes.to_string()
    }
}

/// When a case stops: at `max_ops` rounds, or at the deadline once it has
/// `min_ops` (so a tiny budget still yields numbers).
#[derive(Clone, Copy, Debug)]
pub struct CaseLimits {
    pub deadline: Instant,
    pub min_ops: u64,
    pub max_ops: u64,
}

impl CaseLimits {
    pub fn done(&self, ops: u64, now: Instant) -> bool {
        ops >= self.max_ops || (ops >= self.min_ops && now >= self.deadline)
    }
}

/// The next round's offset in a file of bounded size.
#[derive(Debug)]
struct Cursor {
    next_bytes: u64,
    file_size_bytes: u64,
    batch_bytes: u64,
}

impl Cursor {
    /// The round's offset, and whether it wrapped back to 0.
    fn advance(&mut self) -> (u64, bool) {
        let wrapped = self.next_bytes + self.batch_bytes > self.file_size_bytes;
        if wrapped {
            self.next_bytes = 0;
        }
        let pos = self.next_bytes;
        self.next_bytes += self.batch_bytes;
        (pos, wrapped)
    }
}

/// The profile file opened for one case, with its write buffers (allocated
/// once, so the rounds measure I/O and not the allocator).
pub(crate) enum CaseFile {
    Direct {
        file: DmaFile,
        bufs: Vec<Rc<DmaBuffer>>,
    },
    Buffered {
        file: File,
        buf: Vec<u8>,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> FsyncError + 'a {
    move |source| FsyncError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn gio_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(glommio::GlommioError<()>) -> FsyncError + 'a {
    move |e| io_err(op, path)(e.into())
}

/// Non-zero bytes, different per buffer.
fn fill_byte(i: usize) -> u8 {
    (i % 251) as u8 + 1
}

impl CaseFile {
    pub(crate) fn direct(file: DmaFile, spec: &CaseSpec) -> CaseFile {
        let bufs = (0..spec.queue_depth)
            .map(|i| {
                let mut b = file.alloc_dma_buffer(spec.block_size_bytes);
                b.as_bytes_mut().fill(fill_byte(i));
                Rc::new(b)
            })
            .collect();
        CaseFile::Direct { file, bufs }
    }

    pub(crate) fn buffered(file: File, spec: &CaseSpec) -> CaseFile {
        let buf = vec![fill_byte(0); spec.block_size_bytes];
        CaseFile::Buffered { file, buf }
    }

    /// Writes one round from `pos`; the completion time of each write.
    async fn write_round(
        &self,
        pos: u64,
        path: &Path,
        out: &mut Vec<Instant>,
    ) -> Result<(), FsyncError> {
        out.clear();
        match self {
            CaseFile::Direct { file, bufs } => {
                let writes = bufs.iter().enumerate().map(|(i, b)| {
                    let at = pos + (i * b.len()) as u64;
                    let b = b.clone();
                    async move { (file.write_rc_at(b, at).await, Instant::now()) }
                });
                for ((written, done), b) in join_all(writes).await.into_iter().zip(bufs) {
                    let n = written.map_err(gio_err("writing (O_DIRECT)", path))?;
                    short_write_check(n, b.len(), path)?;
                    out.push(done);
                }
            }
            CaseFile::Buffered { file, buf } => {
                file.write_all_at(buf, pos)
                    .map_err(io_err("writing (buffered)", path))?;
                out.push(Instant::now());
            }
        }
        Ok(())
    }

    async fn fdatasync(&self, path: &Path) -> Result<(), FsyncError> {
        match self {
            CaseFile::Direct { file, .. } => {
                file.fdatasync().await.map_err(gio_err("fdatasync", path))
            }
            CaseFile::Buffered { file, .. } => file.sync_data().map_err(io_err("fdatasync", path)),
        }
    }

    /// Empties the file (the extend pattern's restart).
    async fn truncate(&self, path: &Path) -> Result<(), FsyncError> {
        match self {
            CaseFile::Direct { file, .. } => {
                file.truncate(0).await.map_err(gio_err("truncating", path))
            }
            CaseFile::Buffered { file, .. } => file.set_len(0).map_err(io_err("truncating", path)),
        }
    }

    pub(crate) async fn close(self) {
        if let CaseFile::Direct { file, bufs } = self {
            drop(bufs);
            let _ = file.close().await;
        }
    }
}

fn short_write_check(written: usize, want: usize, path: &Path) -> Result<(), FsyncError> {
    if written == want {
        return Ok(());
    }
    let e = std::io::Error::new(
        std::io::ErrorKind::WriteZero,
        format!("short write: {written} of {want} bytes"),
    );
    Err(io_err("writing", path)(e))
}

/// The three latency histograms of a case, in microseconds.
struct Latencies {
    total: Histogram<u64>,
    write: Histogram<u64>,
    sync: Histogram<u64>,
}

impl Latencies {
    fn new() -> Latencies {
        // 1 µs .. 60 s at 3 significant digits; a longer sample saturates.
        let h = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        Latencies {
            total: h(),
            write: h(),
            sync: h(),
        }
    }
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// What a case needs besides its file.
pub(crate) struct CaseRun<'a> {
    pub spec: CaseSpec,
    pub path: PathBuf,
    pub file_size_bytes: u64,
    pub limits: CaseLimits,
    pub interrupt: &'a AtomicBool,
}

/// Measures one case on an open file.
pub(crate) async fn measure(
    file: &CaseFile,
    run: &CaseRun<'_>,
    progress: &mut Progress,
) -> Result<CaseReport, FsyncError> {
    let spec = &run.spec;
    let path = run.path.as_path();
    assert!(
        spec.batch_bytes() <= run.file_size_bytes,
        "invariant: the file holds at least one round"
    );
    if spec.layout == Layout::Extend {
        file.truncate(path).await?;
    }
    let mut cursor = Cursor {
        next_bytes: 0,
        file_size_bytes: run.file_size_bytes,
        batch_bytes: spec.batch_bytes(),
    };
    let mut lat = Latencies::new();
    let mut done_at = Vec::with_capacity(spec.queue_depth);
    let mut ops = 0u64;
    let start = Instant::now();
    while !run.limits.done(ops, Instant::now()) {
        if run.interrupt.load(Ordering::Relaxed) {
            return Err(FsyncError::Interrupted);
        }
        let (pos, wrapped) = cursor.advance();
        if wrapped && spec.layout == Layout::Extend {
            file.truncate(path).await?;
        }
        let t0 = Instant::now();
        file.write_round(pos, path, &mut done_at).await?;
        let t1 = Instant::now();
        file.fdatasync(path).await?;
        let t2 = Instant::now();
        for &d in &done_at {
            let _ = lat.write.record(us(d - t0));
        }
        let _ = lat.sync.record(us(t2 - t1));
        let _ = lat.total.record(us(t2 - t0));
        ops += 1;
        progress.tick(ops);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(CaseReport::new(
        spec,
        ops,
        secs,
        [&lat.total, &lat.write, &lat.sync],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_wraps_before_a_round_would_pass_the_end() {
        let mut c = Cursor {
            next_bytes: 0,
            file_size_bytes: 10 << 10,
            batch_bytes: 4 << 10,
        };
        assert_eq!(c.advance(), (0, false));
        assert_eq!(c.advance(), (4 << 10, false));
        assert_eq!(c.advance(), (0, true), "8K + 4K would pass 10K");
        assert_eq!(c.advance(), (4 << 10, false));
    }

    #[test]
    fn a_case_runs_to_its_minimum_even_past_the_deadline() {
        let past = Instant::now();
        let l = CaseLimits {
            deadline: past,
            min_ops: 3,
            max_ops: 10,
        };
        assert!(!l.done(2, past + Duration::from_secs(1)));
        assert!(l.done(3, past + Duration::from_secs(1)));
        let future = past + Duration::from_secs(60);
        let l = CaseLimits {
            deadline: future,
            ..l
        };
        assert!(!l.done(9, past));
        assert!(l.done(10, past), "max_ops stops it before the deadline");
    }

    #[test]
    fn labels_name_io_size_and_depth() {
        let mut s = CaseSpec::wal_like(4096, Layout::Preallocated);
        assert_eq!(s.label(), "direct 4K qd1");
        s.io = IoKind::Buffered;
        s.block_size_bytes = 1 << 20;
        s.queue_depth = 16;
        assert_eq!(s.label(), "buffered 1M qd16");
        assert_eq!(s.batch_bytes(), 16 << 20);
        assert_eq!(size_label(1536 << 10), "1536K");
    }
}
