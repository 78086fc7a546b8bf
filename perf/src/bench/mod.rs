//! `cairn-bench`: a closed-loop load generator.
//!
//! `--clients` logical clients each send one request, wait for its
//! response, and send the next; they share `--conns` connections. All
//! clients run as tasks on one thread (a glommio executor for the native
//! driver, a tokio current-thread runtime for the etcd one), so the tool
//! costs at most one core of a machine it shares with the server, and
//! reports what it did cost (`client_cpu_secs`).
//!
//! Layers, bottom up: [`args`] (flags → a bounded [`args::Config`]),
//! [`keys`], [`keydist`] and [`rng`] (what is sent), [`budget`] (when to stop),
//! `worker` (one client's loop, driver-independent), `native` / `etcd`
//! (drivers), [`recorder`] and [`summary`] (what is reported).

pub mod args;
pub mod budget;
pub mod cpu;
#[cfg(feature = "etcd")]
mod etcd;
pub mod keydist;
pub mod keys;
mod native;
pub mod plot;
pub mod progress;
pub mod recorder;
pub mod rng;
pub mod runfile;
pub mod summary;
mod watchers;
mod worker;

use std::time::Duration;

use args::{Config, Driver};
use recorder::Recorder;

/// What the measured phase of a run recorded.
pub struct Outcome {
    pub recorder: Recorder,
    /// From the first request sent to the last response received.
    pub elapsed: Duration,
    /// CPU time this process used during the measured phase.
    pub cpu: Duration,
    /// Cairn servers only: (WAL fsyncs, WAL entries) the first endpoint
    /// made durable during the measured phase, from its status.
    pub wal: Option<(u64, u64)>,
    /// Watch workload: the puts acknowledged (the recorder holds the
    /// events).
    pub writes: Option<u64>,
}

/// Why a run could not take place (failed requests are not this: they are
/// counted in the [`Outcome`]).
#[derive(Debug)]
pub enum BenchError {
    /// No endpoint answered before the run.
    Unreachable(String),
    /// The tool could not set itself up (bad endpoint, runtime failure).
    Setup(String),
    /// `--prefill` puts failed.
    Prefill(String),
    /// The driver was not compiled in.
    DriverUnavailable(String),
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BenchError::Unreachable(m) => write!(f, "cannot reach the server: {m}"),
            BenchError::Setup(m) => write!(f, "{m}"),
            BenchError::Prefill(m) => write!(f, "prefill failed: {m}"),
            BenchError::DriverUnavailable(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// Runs the workload of `cfg` with its driver.
pub fn run(cfg: &Config) -> Result<Outcome, BenchError> {
    match cfg.driver {
        Driver::Native => native::run(cfg),
        Driver::Etcd => run_etcd(cfg),
    }
}

#[cfg(feature = "etcd")]
fn run_etcd(cfg: &Config) -> Result<Outcome, BenchError> {
    etcd::run(cfg)
}

#[cfg(not(feature = "etcd"))]
fn run_etcd(_cfg: &Config) -> Result<Outcome, BenchError> {
    Err(BenchError::DriverUnavailable(
        "this cairn-bench was built without the etcd driver: install protoc (perf/scripts/setup-etcd-driver.sh) \
         and build with `cargo build --release -p cairn-perf --features etcd`"
            .into(),
    ))
}
