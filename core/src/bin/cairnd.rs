//! `cairnd`: the Cairn server.

use clap::Parser;

use cairn_core::config::Flags;

/// jemalloc rather than glibc's malloc: the apply loop allocates per change
/// and the page-file thread frees whole batches of those allocations; with
/// glibc's arenas that hand-over cost 20 % of put throughput at 64 clients
/// (A/B in BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let flags = Flags::parse();
    let cfg = match flags.validate() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cairnd: error: {e}");
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level))
        // glommio logs an error when its IOPOLL probe fails on the WAL's
        // write-only segments; that failure is intended (storage wal/file.rs).
        .add_directive("glommio::reactor=off".parse().expect("static directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = cairn_core::node::run(cfg) {
        eprintln!("cairnd: error: {e}");
        std::process::exit(1);
    }
}
