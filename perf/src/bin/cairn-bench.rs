//! `cairn-bench put|range|txn-put|mixed [flags]`: see `cairn-bench --help`
//! and the `cairn_perf::bench` docs.
//!
//! Exit status: 0 when at least one request succeeded; 1 when every request
//! failed, the server was unreachable at the start, or setup failed; 2 for
//! bad flags.

use std::process::ExitCode;

use clap::Parser;

use cairn_perf::bench::args::Cli;
use cairn_perf::bench::summary::Summary;

fn main() -> ExitCode {
    let cfg = match Cli::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cairn-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = match cairn_perf::bench::run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cairn-bench: {e}");
            return ExitCode::from(1);
        }
    };
    let summary = Summary::new(&cfg, &outcome.recorder, outcome.elapsed, outcome.cpu)
        .with_wal(outcome.wal)
        .with_writes(outcome.writes);
    if cfg.json {
        println!("{}", summary.to_json_line());
    } else {
        print!("{}", summary.to_human());
    }
    if summary.ok == 0 {
        eprintln!(
            "cairn-bench: every request failed ({} errors)",
            summary.errors
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
