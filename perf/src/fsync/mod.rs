//! `cairn-fsync`: how long does this device take to make a WAL write
//! durable, and how does that change with block size, queue depth and the
//! page cache?
//!
//! A run is a sweep of cases over one file in the profiled directory
//! ([`sweep`] plans them and splits `--duration` between them). The first
//! case writes the way Cairn's WAL does — sequential O_DIRECT block writes
//! through io_uring into a preallocated (zero-filled) file, each followed by
//! fdatasync — and the verdict (etcd's guidance: p99 fdatasync under 10 ms)
//! is about it. The others vary the block size, the queue depth (writes of
//! consecutive blocks submitted together, then one fdatasync) and O_DIRECT
//! against buffered writes. `--extend` appends to a growing file instead,
//! which on most file systems costs a metadata commit per fdatasync (the
//! reason the WAL preallocates its segments).
//!
//! Each case ([`case`]) reports the latency of its writes, of its
//! fdatasyncs and of both together, plus ops/s and MB/s ([`report`]).
//!
//! Before measuring, the run refuses clearly: a missing directory, tmpfs,
//! a file system without O_DIRECT, too little free space for the file. The
//! file is removed afterwards whatever happens ([`file`]'s guard).
//!
//! ```
//! use cairn_perf::fsync::{sweep, FsyncConfig};
//! let cfg = FsyncConfig {
//!     block_sizes_bytes: vec![4096, 65536],
//!     queue_depths: vec![1, 4],
//!     ..FsyncConfig::default()
//! };
//! let labels: Vec<String> = sweep::plan(&cfg).iter().map(|c| c.spec.label()).collect();
//! assert_eq!(
//!     labels,
//!     ["direct 4K qd1", "direct 64K qd1", "direct 4K qd4", "buffered 4K qd1", "buffered 64K qd1"]
//! );
//! ```

pub mod args;
pub mod case;
pub mod device;
mod file;
mod join;
pub mod progress;
pub mod report;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use case::{CaseSpec, IoKind, Layout};
pub use device::{is_tmpfs, DeviceInfo};
pub use report::{render, CaseReport, Percentiles, SweepReport, Verdict};

use case::{measure, CaseFile, CaseLimits, CaseRun};
use file::ProfileFile;
use progress::Progress;
use sweep::{Budget, PlannedCase, MIN_OPS_PER_CASE};

/// What one profiling run asks for.
#[derive(Clone, Debug)]
pub struct FsyncConfig {
    pub dir: PathBuf,
    /// The whole run's budget, preallocation included.
    pub duration: Duration,
    pub max_ops_per_case: u64,
    /// The WAL-like default case's block size (and the queue-depth cases').
    pub block_size_bytes: usize,
    /// Block sizes of the O_DIRECT and buffered cases at queue depth 1.
    pub block_sizes_bytes: Vec<usize>,
    /// Queue depths at `block_size_bytes`.
    pub queue_depths: Vec<usize>,
    /// Only the WAL-like default case.
    pub default_only: bool,
    /// `None`: [`sweep::file_size_bytes`] picks.
    pub file_size_bytes: Option<u64>,
    pub extend: bool,
    /// Draw the progress line on stderr.
    pub progress: bool,
    /// Set (by a signal handler) to stop early; the file is still removed.
    pub interrupt: Arc<AtomicBool>,
}

impl Default for FsyncConfig {
    fn default() -> FsyncConfig {
        FsyncConfig {
            dir: PathBuf::from("."),
            duration: Duration::from_secs(10),
            max_ops_per_case: 1_000_000,
            block_size_bytes: 4096,
            block_sizes_bytes: vec![4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20],
            queue_depths: vec![1, 4, 16],
            default_only: false,
            file_size_bytes: None,
            extend: false,
            progress: false,
            interrupt: Arc::default(),
        }
    }
}

impl FsyncConfig {
    pub fn layout(&self) -> Layout {
        if self.extend {
            Layout::Extend
        } else {
            Layout::Preallocated
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FsyncError {
    #[error("{0} does not exist; give an existing directory on the disk you want to profile")]
    DirMissing(PathBuf),
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{0} is on tmpfs: it has no O_DIRECT and no device behind it, so fsync latency means nothing there; give a directory on the disk you want to profile")]
    Tmpfs(PathBuf),
    #[error("cannot create a file in {dir}: {source} (the directory must be writable)")]
    NotWritable {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{dir} is on {fs}, which does not support O_DIRECT ({reason}); Cairn's WAL writes with O_DIRECT, so profile a directory on a file system that has it (ext4, xfs, btrfs)")]
    NoDirectIo {
        dir: PathBuf,
        fs: String,
        reason: String,
    },
    #[error("not enough free space in {dir}: the profile file needs {} MiB and {} MiB more are kept free, but only {} MiB are available; pass a smaller --file-size or another --dir", .need_bytes >> 20, sweep::FREE_SPACE_RESERVE_BYTES >> 20, .free_bytes >> 20)]
    NoRoom {
        dir: PathBuf,
        need_bytes: u64,
        free_bytes: u64,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("io_uring executor: {0}")]
    Executor(String),
    #[error("interrupted (the profile file was removed)")]
    Interrupted,
}

/// Refuses a directory that cannot be profiled, before anything is written.
fn check_dir(dir: &Path) -> Result<(), FsyncError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(FsyncError::NotADirectory(dir.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FsyncError::DirMissing(dir.to_path_buf()))
        }
        Err(source) => {
            return Err(FsyncError::Io {
                op: "inspecting",
                path: dir.to_path_buf(),
                source,
            })
        }
    }
    let tmpfs = is_tmpfs(dir).map_err(|source| FsyncError::Io {
        op: "statfs",
        path: dir.to_path_buf(),
        source,
    })?;
    if tmpfs {
        return Err(FsyncError::Tmpfs(dir.to_path_buf()));
    }
    Ok(())
}

/// Runs the sweep on a glommio executor; the file is removed afterwards,
/// whatever the outcome.
pub fn run(cfg: &FsyncConfig) -> Result<SweepReport, FsyncError> {
    let started = Instant::now();
    check_dir(&cfg.dir)?;
    let cases = sweep::plan(cfg);
    let file_size_bytes = sweep::file_size_bytes(cfg.file_size_bytes, &cases);
    // Created (empty) first: an unwritable directory is named as such
    // rather than as one without free space.
    let guard = ProfileFile::create(&cfg.dir)?;
    let free_bytes = device::free_bytes(&cfg.dir).map_err(|source| FsyncError::Io {
        op: "statvfs",
        path: cfg.dir.clone(),
        source,
    })?;
    sweep::check_room(&cfg.dir, file_size_bytes, free_bytes)?;
    let device = DeviceInfo::of_dir(&cfg.dir, free_bytes);
    let job = Job {
        cfg: cfg.clone(),
        cases,
        path: guard.path().to_path_buf(),
        file_size_bytes,
        fs: device.fs_name(),
        started,
    };
    let reports = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(4 << 20)
        .spawn(move || async move { job.run().await })
        .map_err(|e| FsyncError::Executor(e.to_string()))?
        .join()
        .map_err(|e| FsyncError::Executor(e.to_string()))??;
    drop(guard);
    let default = reports
        .first()
        .cloned()
        .expect("invariant: the plan starts with the default case");
    Ok(SweepReport {
        verdict: Verdict::of(&default),
        default,
        device,
        dir: cfg.dir.display().to_string(),
        file_size_bytes,
        budget_secs: cfg.duration.as_secs_f64(),
        elapsed_secs: started.elapsed().as_secs_f64(),
        cases: reports,
    })
}

/// The sweep as the executor thread runs it.
struct Job {
    cfg: FsyncConfig,
    cases: Vec<PlannedCase>,
    path: PathBuf,
    file_size_bytes: u64,
    fs: String,
    started: Instant,
}

impl Job {
    async fn run(self) -> Result<Vec<CaseReport>, FsyncError> {
        let cfg = &self.cfg;
        let mut progress = Progress::new(cfg.progress, cfg.duration, self.cases.len());
        // The first O_DIRECT open is where a file system without it is named.
        let file = file::open_direct(&self.path, &cfg.dir, &self.fs).await?;
        if !cfg.extend {
            progress.phase(0, "preallocating");
            let filled = file::zero_fill(
                &file,
                &self.path,
                self.file_size_bytes,
                &cfg.interrupt,
                &mut progress,
            )
            .await;
            let _ = file.close().await;
            filled?;
        } else {
            let _ = file.close().await;
        }
        let mut budget = Budget::new(self.started, cfg.duration, &self.cases);
        let mut reports = Vec::with_capacity(self.cases.len());
        for (i, planned) in self.cases.iter().enumerate() {
            progress.phase(i + 1, &planned.spec.label());
            let run = CaseRun {
                spec: planned.spec,
                path: self.path.clone(),
                file_size_bytes: self.file_size_bytes,
                limits: CaseLimits {
                    deadline: budget.deadline(planned.weight),
                    min_ops: MIN_OPS_PER_CASE.min(cfg.max_ops_per_case),
                    max_ops: cfg.max_ops_per_case,
                },
                interrupt: &cfg.interrupt,
            };
            let file = self.open(&planned.spec).await?;
            let measured = measure(&file, &run, &mut progress).await;
            file.close().await;
            reports.push(measured?);
        }
        progress.finish();
        Ok(reports)
    }

    async fn open(&self, spec: &CaseSpec) -> Result<CaseFile, FsyncError> {
        Ok(match spec.io {
            IoKind::Direct => {
                let f = file::open_direct(&self.path, &self.cfg.dir, &self.fs).await?;
                CaseFile::direct(f, spec)
            }
            IoKind::Buffered => CaseFile::buffered(file::open_buffered(&self.path)?, spec),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfs_is_refused_with_a_reason() {
        let shm = Path::new("/dev/shm");
        if !shm.exists() || !is_tmpfs(shm).unwrap_or(false) {
            return;
        }
        let cfg = FsyncConfig {
            dir: shm.to_path_buf(),
            duration: Duration::from_millis(10),
            ..FsyncConfig::default()
        };
        let e = run(&cfg).unwrap_err();
        assert!(e.to_string().contains("tmpfs"), "{e}");
    }

    #[test]
    fn a_missing_directory_is_refused_by_name() {
        let cfg = FsyncConfig {
            dir: PathBuf::from("/nonexistent-cairn-fsync-dir"),
            ..FsyncConfig::default()
        };
        let e = run(&cfg).unwrap_err();
        assert!(matches!(e, FsyncError::DirMissing(_)), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
    }

    #[test]
    fn an_unwritable_directory_is_refused_by_name() {
        // /proc refuses new files even to root.
        let cfg = FsyncConfig {
            dir: PathBuf::from("/proc"),
            ..FsyncConfig::default()
        };
        let e = run(&cfg).unwrap_err();
        assert!(matches!(e, FsyncError::NotWritable { .. }), "{e}");
        assert!(e.to_string().contains("must be writable"), "{e}");
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let cfg = FsyncConfig {
            dir: f.path().to_path_buf(),
            ..FsyncConfig::default()
        };
        assert!(matches!(run(&cfg), Err(FsyncError::NotADirectory(_))));
    }
}
