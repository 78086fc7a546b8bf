//! `cairn-fsync`'s command line and its checks. A bad flag is a usage
//! error (exit 2) that names the flag and the rule it broke.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use super::FsyncConfig;

/// O_DIRECT writes whole blocks of this many bytes.
const BLOCK_ALIGN_BYTES: u64 = 4096;
/// Largest block a case writes.
pub const MAX_BLOCK_SIZE_BYTES: u64 = 16 << 20;
/// Deepest queue a case keeps (writes in flight per round).
pub const MAX_QUEUE_DEPTH: usize = 64;
/// Largest round (queue depth × block size): the buffers held in memory.
pub const MAX_ROUND_BYTES: u64 = 64 << 20;

/// Profiles the device under --dir the way Cairn's WAL uses it: O_DIRECT
/// writes through io_uring, each round followed by fdatasync, over a
/// preallocated file; then other block sizes, queue depths and buffered
/// writes beside it. Ends with a verdict against etcd's guidance (p99
/// fdatasync under 10 ms).
#[derive(Parser, Debug)]
#[command(name = "cairn-fsync", version)]
pub struct Cli {
    /// Directory on the device to profile (a file is created there and removed afterwards).
    #[arg(long)]
    pub dir: PathBuf,
    /// Seconds the whole run may take (preallocation included), split across the cases;
    /// every case still runs at least 20 rounds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop each case after this many write+fdatasync rounds.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_ops: u64,
    /// Block size of the WAL-like default case and of the queue-depth cases (4K, 16K, 4096, ...).
    #[arg(long, default_value = "4K", value_parser = parse_block_size)]
    pub block_size: usize,
    /// Block sizes of the O_DIRECT and the buffered cases at queue depth 1.
    #[arg(long, value_delimiter = ',', default_value = "4K,16K,64K,256K,1M", value_parser = parse_block_size)]
    pub block_sizes: Vec<usize>,
    /// Queue depths at --block-size: that many writes of consecutive blocks submitted
    /// together through io_uring, then one fdatasync.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16", value_parser = parse_queue_depth)]
    pub queue_depths: Vec<usize>,
    /// Profile only the WAL-like default case (one O_DIRECT --block-size write + fdatasync).
    #[arg(long, visible_alias = "default-only")]
    pub quick: bool,
    /// Size of the file written [default: 64M, or 64 rounds of the largest case if more];
    /// raised to hold at least one round.
    #[arg(long, value_parser = parse_size)]
    pub file_size: Option<u64>,
    /// Append to a growing file (emptied when it reaches --file-size) instead of writing
    /// into preallocated space.
    #[arg(long)]
    pub extend: bool,
    /// Print one JSON object (the default case's fields, a verdict, every case) instead
    /// of the human report.
    #[arg(long)]
    pub json: bool,
}

impl Cli {
    /// The run this command line asks for; `Err` is a usage error.
    pub fn into_config(
        self,
        progress: bool,
        interrupt: Arc<AtomicBool>,
    ) -> Result<FsyncConfig, String> {
        if !(self.duration.is_finite() && self.duration > 0.0) {
            return Err(format!(
                "--duration must be a positive number of seconds, not {}",
                self.duration
            ));
        }
        if self.max_ops == 0 {
            return Err("--max-ops must be at least 1".into());
        }
        let deepest = self.queue_depths.iter().copied().max().unwrap_or(1) as u64;
        if self.block_size as u64 * deepest > MAX_ROUND_BYTES {
            return Err(format!(
                "--block-size {} × queue depth {deepest} is over the {} MiB a round may hold",
                self.block_size,
                MAX_ROUND_BYTES >> 20
            ));
        }
        Ok(FsyncConfig {
            dir: self.dir,
            duration: Duration::from_secs_f64(self.duration),
            max_ops_per_case: self.max_ops,
            block_size_bytes: self.block_size,
            block_sizes_bytes: self.block_sizes,
            queue_depths: self.queue_depths,
            default_only: self.quick,
            file_size_bytes: self.file_size,
            extend: self.extend,
            progress,
            interrupt,
        })
    }
}

/// Bytes, or a binary size: `4096`, `4K`, `64KiB`, `1M`, `2GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "'{s}' is not a size: expected bytes or 4K, 64KiB, 1M, 2G"
            ))
        }
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a size: expected bytes or 4K, 64KiB, 1M, 2G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A size that O_DIRECT can write: a positive multiple of 4 KiB, at most 16 MiB.
pub fn parse_block_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n == 0 || !n.is_multiple_of(BLOCK_ALIGN_BYTES) {
        return Err(format!(
            "block size {s} is not a positive multiple of 4K (O_DIRECT writes whole 4 KiB blocks)"
        ));
    }
    if n > MAX_BLOCK_SIZE_BYTES {
        return Err(format!("block size {s} is over the 16M limit"));
    }
    Ok(n as usize)
}

/// 1 ..= 64 writes in flight.
pub fn parse_queue_depth(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_QUEUE_DEPTH).contains(&n) => Ok(n),
        _ => Err(format!(
            "queue depth {s} is not a whole number from 1 to {MAX_QUEUE_DEPTH}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FsyncConfig, String> {
        let argv = ["cairn-fsync", "--dir", "/d"].iter().chain(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.into_config(false, Arc::default())
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64kib"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("4KB").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn a_block_size_off_the_4k_grid_is_refused_by_name() {
        let e = parse_block_size("3K").unwrap_err();
        assert!(e.contains("3K") && e.contains("multiple of 4K"), "{e}");
        assert!(parse_block_size("0").is_err());
        assert!(parse_block_size("32M").is_err());
        let e = parse(&["--block-sizes", "4K,3K"]).unwrap_err();
        assert!(e.contains("--block-sizes") && e.contains("3K"), "{e}");
    }

    #[test]
    fn defaults_sweep_five_block_sizes_and_three_depths() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.block_size_bytes, 4096);
        assert_eq!(
            c.block_sizes_bytes,
            [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20]
        );
        assert_eq!(c.queue_depths, [1, 4, 16]);
        assert_eq!(c.duration, Duration::from_secs(10));
        assert!(!c.default_only && !c.extend);
        assert_eq!(c.file_size_bytes, None);
    }

    #[test]
    fn quick_and_default_only_are_the_same_flag() {
        assert!(parse(&["--quick"]).unwrap().default_only);
        assert!(parse(&["--default-only"]).unwrap().default_only);
    }

    #[test]
    fn bad_numbers_are_usage_errors() {
        assert!(parse(&["--duration", "0"])
            .unwrap_err()
            .contains("--duration"));
        assert!(parse(&["--max-ops", "0"])
            .unwrap_err()
            .contains("--max-ops"));
        assert!(parse(&["--queue-depths", "0"]).is_err());
        assert!(parse(&["--queue-depths", "65"]).is_err());
        let e = parse(&["--block-size", "16M", "--queue-depths", "8"]).unwrap_err();
        assert!(e.contains("round"), "{e}");
    }
}
