//! `cairn-fsync`: profile the fsync latency of the device under a directory
//! the way Cairn's WAL uses it. See `cairn_perf::fsync`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use cairn_perf::fsync::{render, run, FsyncConfig};

/// Profiles O_DIRECT write + fdatasync latency of the device under --dir.
#[derive(Parser, Debug)]
#[command(name = "cairn-fsync", version, about)]
struct Cli {
    /// Directory on the device to profile (a file is created and removed there).
    #[arg(long)]
    dir: PathBuf,
    /// How long to measure, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Stop after this many write+fdatasync operations.
    #[arg(long, default_value_t = 1_000_000)]
    max_ops: u64,
    /// Bytes per write (a multiple of 4096).
    #[arg(long, default_value_t = 4096)]
    block_size: usize,
    /// Size of the preallocated file, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    file_size: u64,
    /// Append to a growing file instead of writing into preallocated space.
    #[arg(long)]
    extend: bool,
    /// Print one JSON object instead of the human report.
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    if cli.block_size == 0 || cli.block_size % 4096 != 0 || cli.duration <= 0.0 {
        eprintln!(
            "cairn-fsync: --block-size must be a positive multiple of 4096 and --duration positive"
        );
        std::process::exit(2);
    }
    let cfg = FsyncConfig {
        dir: cli.dir,
        duration: Duration::from_secs_f64(cli.duration),
        max_ops: cli.max_ops,
        block_size_bytes: cli.block_size,
        file_size_bytes: cli.file_size.max(cli.block_size as u64),
        extend: cli.extend,
    };
    match run(&cfg) {
        Ok(r) if cli.json => println!("{}", serde_json::to_string(&r).expect("report serializes")),
        Ok(r) => print!("{}", render(&r)),
        Err(e) => {
            eprintln!("cairn-fsync: {e}");
            std::process::exit(1);
        }
    }
}
