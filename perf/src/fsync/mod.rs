//! `cairn-fsync`: how long does this device take to make a WAL write
//! durable? It writes the way Cairn's WAL does — sequential O_DIRECT block
//! writes through io_uring into a preallocated (zero-filled) file, each
//! followed by fdatasync — and reports latency percentiles. `--extend`
//! measures the same writes appended to a growing file instead, which on
//! most file systems costs a metadata commit per fdatasync (the reason the
//! WAL preallocates its segments).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use glommio::io::{DmaFile, OpenOptions};
use hdrhistogram::Histogram;

/// What one profiling run asks for.
#[derive(Clone, Debug)]
pub struct FsyncConfig {
    pub dir: PathBuf,
    pub duration: Duration,
    pub max_ops: u64,
    pub block_size_bytes: usize,
    pub file_size_bytes: u64,
    pub extend: bool,
}

/// Latency percentiles of one phase, in microseconds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// The report of a run: write+fdatasync latency (what a WAL batch costs)
/// and its two parts.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FsyncReport {
    pub pattern: &'static str,
    pub block_size: usize,
    pub ops: u64,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub mb_per_sec: f64,
    /// write + fdatasync, as a WAL batch sees it.
    #[serde(flatten)]
    pub total: Percentiles,
    pub write: Percentiles,
    pub fdatasync: Percentiles,
    /// etcd's guidance: p99 of WAL fdatasync under 10 ms.
    pub verdict: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FsyncError {
    #[error("{0} is on tmpfs: it has no O_DIRECT and no device behind it, so fsync latency means nothing there; give a directory on the disk you want to profile")]
    Tmpfs(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("io_uring executor: {0}")]
    Executor(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FsyncError + '_ {
    move |source| FsyncError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// True if `dir` is on tmpfs.
pub fn is_tmpfs(dir: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has a NUL byte")
    })?;
    // SAFETY: statfs writes into the zeroed struct we own; c is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == libc::TMPFS_MAGIC)
}

/// Runs the profile on a glommio executor and removes its file afterwards.
pub fn run(cfg: &FsyncConfig) -> Result<FsyncReport, FsyncError> {
    if is_tmpfs(&cfg.dir).map_err(io(&cfg.dir))? {
        return Err(FsyncError::Tmpfs(cfg.dir.clone()));
    }
    let path = cfg
        .dir
        .join(format!(".cairn-fsync-{}.tmp", std::process::id()));
    let cfg2 = cfg.clone();
    let p2 = path.clone();
    let result = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move { profile(&cfg2, &p2).await })
        .map_err(|e| FsyncError::Executor(e.to_string()))?
        .join()
        .map_err(|e| FsyncError::Executor(e.to_string()))?;
    let _ = std::fs::remove_file(&path);
    result
}

async fn open(path: &Path) -> Result<DmaFile, FsyncError> {
    // Write-only, as the WAL opens its segments (see cairn-storage's
    // wal/file.rs: it keeps glommio from busy-polling the device).
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(path)
        .await
        .map_err(|e| FsyncError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        })
}

async fn profile(cfg: &FsyncConfig, path: &Path) -> Result<FsyncReport, FsyncError> {
    let file = open(path).await?;
    let gio = |e: glommio::GlommioError<()>| FsyncError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    };
    let block = cfg.block_size_bytes;
    if !cfg.extend {
        // Preallocate by writing zeros, as the WAL does.
        let chunk = 1 << 20;
        let mut off = 0u64;
        while off < cfg.file_size_bytes {
            let n = chunk.min((cfg.file_size_bytes - off) as usize);
            let mut buf = file.alloc_dma_buffer(n);
            buf.as_bytes_mut().fill(0);
            file.write_at(buf, off).await.map_err(gio)?;
            off += n as u64;
        }
        file.fdatasync().await.map_err(gio)?;
    }
    let new_hist = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let (mut total, mut write, mut sync) = (new_hist(), new_hist(), new_hist());
    let start = Instant::now();
    let mut ops = 0u64;
    let mut off = 0u64;
    while start.elapsed() < cfg.duration && ops < cfg.max_ops {
        if !cfg.extend && off + block as u64 > cfg.file_size_bytes {
            off = 0;
        }
        let mut buf = file.alloc_dma_buffer(block);
        buf.as_bytes_mut().fill((ops % 251) as u8 + 1);
        let t0 = Instant::now();
        file.write_at(buf, off).await.map_err(gio)?;
        let t1 = Instant::now();
        file.fdatasync().await.map_err(gio)?;
        let t2 = Instant::now();
        let us = |d: Duration| (d.as_micros() as u64).max(1);
        let _ = write.record(us(t1 - t0));
        let _ = sync.record(us(t2 - t1));
        let _ = total.record(us(t2 - t0));
        off += block as u64;
        ops += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = file.close().await;
    let total_p = Percentiles::of(&total);
    let sync_p = Percentiles::of(&sync);
    let verdict = if sync_p.p99_us < 10_000 {
        format!(
            "GOOD: p99 fdatasync {:.2} ms is under etcd's 10 ms guidance",
            sync_p.p99_us as f64 / 1000.0
        )
    } else {
        format!(
            "TOO SLOW: p99 fdatasync {:.2} ms is over etcd's 10 ms guidance",
            sync_p.p99_us as f64 / 1000.0
        )
    };
    Ok(FsyncReport {
        pattern: if cfg.extend { "extend" } else { "preallocated" },
        block_size: block,
        ops,
        secs,
        ops_per_sec: ops as f64 / secs,
        mb_per_sec: (ops as f64 * block as f64) / secs / 1e6,
        total: total_p,
        write: Percentiles::of(&write),
        fdatasync: sync_p,
        verdict,
    })
}

/// The human report.
pub fn render(r: &FsyncReport) -> String {
    let line = |name: &str, p: &Percentiles| {
        format!(
            "  {name:<16} p50 {:>7} µs  p90 {:>7} µs  p99 {:>7} µs  p99.9 {:>7} µs  max {:>7} µs\n",
            p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us
        )
    };
    let mut s = format!(
        "{} O_DIRECT {} B writes + fdatasync: {} ops in {:.2} s ({:.0} ops/s, {:.2} MB/s)\n",
        r.pattern, r.block_size, r.ops, r.secs, r.ops_per_sec, r.mb_per_sec
    );
    s += &line("write+fdatasync", &r.total);
    s += &line("write", &r.write);
    s += &line("fdatasync", &r.fdatasync);
    s += &format!("{}\n", r.verdict);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_a_real_directory_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("cairn-fsync-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_tmpfs(&dir).unwrap() {
            return; // nothing to profile on this machine's temp dir
        }
        let cfg = FsyncConfig {
            dir: dir.clone(),
            duration: Duration::from_secs(5),
            max_ops: 50,
            block_size_bytes: 4096,
            file_size_bytes: 1 << 20,
            extend: false,
        };
        let r = run(&cfg).unwrap();
        assert_eq!(r.ops, 50);
        assert!(r.total.p50_us >= r.fdatasync.p50_us.min(r.total.p50_us));
        assert!(r.total.max_us >= r.total.p50_us);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the profile file is removed"
        );
        let json = serde_json::to_value(&r).unwrap();
        for k in ["p50_us", "p99_us", "p999_us", "max_us"] {
            assert!(json.get(k).is_some(), "{k} missing from {json}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tmpfs_is_refused_with_a_reason() {
        let shm = Path::new("/dev/shm");
        if !shm.exists() || !is_tmpfs(shm).unwrap_or(false) {
            return;
        }
        let cfg = FsyncConfig {
            dir: shm.to_path_buf(),
            duration: Duration::from_millis(10),
            max_ops: 1,
            block_size_bytes: 4096,
            file_size_bytes: 1 << 20,
            extend: false,
        };
        let e = run(&cfg).unwrap_err();
        assert!(e.to_string().contains("tmpfs"), "{e}");
    }
}
