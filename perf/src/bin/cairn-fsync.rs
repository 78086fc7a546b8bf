//! `cairn-fsync`: profile the device under a directory the way Cairn's WAL
//! uses it, plus a sweep of block sizes, queue depths and buffered writes.
//! See `cairn_perf::fsync`.

use std::io::IsTerminal;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;

use cairn_perf::fsync::args::Cli;
use cairn_perf::fsync::{render, run, FsyncError};

/// Exit status after Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: i32 = 130;

/// Ctrl-C and SIGTERM set the flag, so the run stops at its next write and
/// removes its file; a second Ctrl-C exits at once.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Order matters: the conditional exit sees the flag before this signal sets it.
        let _ =
            signal_hook::flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, flag.clone());
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

fn main() {
    let cli = Cli::parse();
    let json = cli.json;
    let cfg = match cli.into_config(std::io::stderr().is_terminal(), interrupt_flag()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("cairn-fsync: {e}");
            std::process::exit(2);
        }
    };
    match run(&cfg) {
        Ok(r) if json => println!("{}", r.to_json()),
        Ok(r) => print!("{}", render(&r)),
        Err(e @ FsyncError::Interrupted) => {
            eprintln!("cairn-fsync: {e}");
            std::process::exit(EXIT_INTERRUPTED);
        }
        Err(e) => {
            eprintln!("cairn-fsync: {e}");
            std::process::exit(1);
        }
    }
}
