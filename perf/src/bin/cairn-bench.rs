//! `cairn-bench WORKLOAD [flags]`: see `cairn-bench --help` and the
//! `cairn_perf::bench` docs. `cairn-bench compare [--plot OUT.svg|OUT.png]
//! FILE...` prints runs saved with `--hist-out` side by side (and plots
//! their latency by percentile and requests per second over time; PNG
//! needs a TrueType font on the machine, SVG none).
//!
//! Exit status: 0 when at least one request succeeded; 1 when every request
//! failed, the server was unreachable at the start, setup failed, or a run
//! file could not be written or read; 2 for bad flags.

use std::process::ExitCode;

use clap::Parser;

use cairn_perf::bench::args::Cli;
use cairn_perf::bench::plot::Format;
use cairn_perf::bench::runfile::{compare_table, Fingerprint, RunFile};
use cairn_perf::bench::summary::Summary;

/// Prints runs saved with `--hist-out` side by side.
#[derive(clap::Parser, Debug)]
#[command(name = "cairn-bench compare")]
struct CompareCli {
    /// Also draw latency by percentile and requests per second over time
    /// into this file (OUT.svg, or OUT.png with a TrueType font installed).
    #[arg(long, value_name = "OUT.svg|OUT.png")]
    plot: Option<String>,
    /// Run files saved with `cairn-bench --hist-out`.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

/// `cairn-bench compare [--plot OUT.svg|OUT.png] FILE...` (flags anywhere).
fn compare(args: &[String]) -> ExitCode {
    let cli = match CompareCli::try_parse_from(
        std::iter::once("cairn-bench compare".to_string()).chain(args.iter().cloned()),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let (plot_out, files) = (cli.plot, cli.files);
    if let Some(out) = &plot_out {
        if let Err(e) = Format::of(std::path::Path::new(out)) {
            eprintln!("cairn-bench: {e}");
            return ExitCode::from(2);
        }
    }
    let mut runs = Vec::new();
    for f in files {
        match RunFile::load(std::path::Path::new(&f)) {
            Ok(r) => runs.push((f, r)),
            Err(e) => {
                eprintln!("cairn-bench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let Some(out) = plot_out {
        if let Err(e) = cairn_perf::bench::plot::plot(&runs, std::path::Path::new(&out)) {
            eprintln!("cairn-bench: {e}");
            return ExitCode::from(1);
        }
    }
    match compare_table(&runs) {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cairn-bench: {e}");
            ExitCode::from(1)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("compare") {
        return compare(&args[2..]);
    }
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
    if let Some(path) = &cfg.hist_out {
        let fp = Fingerprint::of_this_machine(cfg.data_dir.as_deref());
        let saved =
            RunFile::new(&summary.to_json_line(), &outcome.recorder, fp).and_then(|r| r.save(path));
        if let Err(e) = saved {
            eprintln!("cairn-bench: --hist-out: {e}");
            return ExitCode::from(1);
        }
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
