//! The command line of `cairn-bench` and its validation into a [`Config`]
//! whose every field is within the bounds the rest of the tool relies on.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use super::keydist::{KeyDist, ZIPF_THETA_DEFAULT};
use super::keys::key_digits;

/// Most logical clients one run may have (each is a task with its own
/// request buffer).
pub const CLIENTS_MAX: u32 = 100_000;
/// Most connections one run may open.
pub const CONNS_MAX: u32 = 1_024;
/// Default connection count is `min(clients, CONNS_DEFAULT_MAX)`.
pub const CONNS_DEFAULT_MAX: u32 = 8;
/// Largest key, as etcd's default `--max-request-bytes` would allow.
pub const KEY_SIZE_MAX: usize = 64 << 10;
/// Largest value (etcd's default request limit is 1.5 MiB).
pub const VAL_SIZE_MAX: usize = 16 << 20;
/// Largest key space: keys are zero-padded decimals of at most 20 digits.
pub const KEY_SPACE_MAX: u64 = 1 << 40;
/// Largest key space for `txn-put`, which tracks one revision (8 bytes)
/// per key.
pub const TXN_KEY_SPACE_MAX: u64 = 16 << 20;
/// Longest `--duration`.
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);
/// Most watches of the watch workload.
pub const WATCHERS_MAX: u64 = 1_000_000;
/// Requests per run when neither `--total` nor `--duration` is given.
pub const TOTAL_DEFAULT: u64 = 10_000;

/// What each request does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Put a value at a key chosen by `--key-dist`.
    Put,
    /// Read one key chosen by `--key-dist`.
    Range,
    /// A compare-and-swap txn: `mod_revision(key) == last seen` then put,
    /// else get (to learn the revision and retry), as etcd's benchmark does.
    TxnPut,
    /// Ranges with probability `--read-ratio`, puts otherwise.
    Mixed,
    /// Keep-alives of leases chosen by `--key-dist`: the prefill (always done)
    /// grants `--key-space` leases of `--lease-ttl` (default 600 s).
    LeaseKeepalive,
    /// Put→event latency: `--watchers` watches (watcher j on key j mod
    /// `--key-space`, spread over `--conns` connections of their own) get
    /// the puts the clients make of a send timestamp (the value's first 8
    /// bytes); latencies and throughput are the events'.
    Watch,
    /// Puts while leases expire: the prefill (always done) grants
    /// `--key-space` leases of `--lease-ttl` (default 5 s), each with one
    /// key; the measured puts go to other keys while those expire.
    LeaseStorm,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Range => "range",
            Workload::TxnPut => "txn-put",
            Workload::Mixed => "mixed",
            Workload::LeaseKeepalive => "lease-keepalive",
            Workload::LeaseStorm => "lease-storm",
            Workload::Watch => "watch",
        }
    }

    /// Workloads whose prefill grants leases (and which always prefill).
    pub fn uses_leases(self) -> bool {
        matches!(self, Workload::LeaseKeepalive | Workload::LeaseStorm)
    }
}

/// `--key-dist`: how requests pick their key (see [`KeyDist`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyDistArg {
    /// Every key of the key space equally likely.
    Uniform,
    /// YCSB's scrambled zipfian: a few hot keys, spread over the key space,
    /// take most requests (skew `--zipf-theta`).
    Zipfian,
}

/// Which server API the requests go through.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Driver {
    /// Cairn's own protocol (`cairn_net::AsyncClient`) on one glommio executor.
    Native,
    /// etcd's v3 gRPC API (the `etcd-client` crate) on a one-thread tokio
    /// runtime; needs the `etcd` cargo feature.
    Etcd,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Native => "native",
            Driver::Etcd => "etcd",
        }
    }
}

/// Read consistency of ranges, as etcd's benchmark `--consistency`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// Linearizable.
    L,
    /// Serializable (served from the local member without a quorum read).
    S,
}

/// When a run stops.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Stop {
    /// After this many requests (successful or not).
    Total(u64),
    /// When this much time has passed since the first request; requests in
    /// flight then still complete and count.
    Duration(Duration),
}

/// A closed-loop load generator for Cairn (and etcd, for comparison).
///
/// `--clients` logical clients each send one request and wait for its
/// response before sending the next; they share `--conns` connections
/// (default: min(clients, 8)), client i using connection i mod conns.
#[derive(Parser, Debug, Clone)]
#[command(name = "cairn-bench", version)]
pub struct Cli {
    /// The workload to run.
    #[arg(value_enum)]
    pub workload: Workload,
    /// Comma-separated server endpoints (host:port or http://host:port);
    /// connections are spread over them round-robin.
    #[arg(long, default_value = "127.0.0.1:2379")]
    pub endpoints: String,
    /// Logical clients (concurrent requests in flight).
    #[arg(long, default_value_t = 1)]
    pub clients: u32,
    /// Connections shared by the clients [default: min(clients, 8)].
    #[arg(long)]
    pub conns: Option<u32>,
    /// Requests to send, successful or not [default: 10000].
    #[arg(long, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Run for this many seconds instead of a fixed request count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Key size in bytes; keys are zero-padded decimals of this width.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size in bytes (one random value, reused by every put).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Number of distinct keys; each request picks one (see --key-dist).
    #[arg(long, default_value_t = 10_000)]
    pub key_space: u64,
    /// How each request picks its key from the key space (lease-keepalive:
    /// its lease; lease-storm: its key after the leased ones).
    #[arg(long, value_enum, default_value = "uniform")]
    pub key_dist: KeyDistArg,
    /// Skew of --key-dist zipfian, in (0, 1): key of rank r drawn with
    /// probability proportional to 1/(r+1)^theta [default: 0.99, YCSB's].
    #[arg(long)]
    pub zipf_theta: Option<f64>,
    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
    /// Range consistency: l (linearizable) or s (serializable).
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Fraction of requests that are ranges (mixed workload only).
    #[arg(long, default_value_t = 0.9)]
    pub read_ratio: f64,
    /// Server API to drive.
    #[arg(long, value_enum, default_value = "native")]
    pub driver: Driver,
    /// Before the measured run, put every key of the key space once (not
    /// measured), so ranges find values.
    #[arg(long)]
    pub prefill: bool,
    /// Per-request timeout in seconds; a request that times out is an error.
    #[arg(long, default_value_t = 5.0)]
    pub request_timeout: f64,
    /// Seed of the key and value generator [default: from the clock].
    #[arg(long)]
    pub seed: Option<u64>,
    /// TTL in seconds of the leases the lease workloads grant [default:
    /// 600 for lease-keepalive, 5 for lease-storm].
    #[arg(long)]
    pub lease_ttl: Option<i64>,
    /// Watches of the watch workload (one key each).
    #[arg(long, default_value_t = 1000)]
    pub watchers: u64,
    /// Also save the run here (summary, the whole latency histogram,
    /// requests per second, the machine's fingerprint) as JSON, for
    /// `cairn-bench compare FILE...`.
    #[arg(long)]
    pub hist_out: Option<std::path::PathBuf>,
    /// The server's data directory, so that the fingerprint names its file
    /// system and block device.
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Open loop: send at this many requests per second (the clients bound
    /// how many are in flight), each latency measured from the time the
    /// request was meant to be sent, so a stalled server's queue counts
    /// (no coordinated omission). Without it the clients run a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// A validated run description.
#[derive(Clone, Debug)]
pub struct Config {
    pub workload: Workload,
    pub driver: Driver,
    pub endpoints: Vec<String>,
    pub clients: u32,
    pub conns: u32,
    pub stop: Stop,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space: u64,
    pub key_dist: KeyDist,
    pub json: bool,
    pub consistency: Consistency,
    pub read_ratio: f64,
    pub prefill: bool,
    pub request_timeout: Duration,
    pub seed: u64,
    /// TTL of the leases the lease workloads grant, seconds.
    pub lease_ttl: i64,
    /// Watches of the watch workload.
    pub watchers: u64,
    pub hist_out: Option<std::path::PathBuf>,
    pub data_dir: Option<std::path::PathBuf>,
    /// Open-loop rate, requests per second.
    pub rate: Option<f64>,
}

impl Config {
    /// Watch workload: how many watchers see a put of key `index`.
    pub fn watchers_on(&self, index: u64) -> u64 {
        let (per_key, extra) = (
            self.watchers / self.key_space,
            self.watchers % self.key_space,
        );
        per_key + u64::from(index < extra)
    }
}

impl Cli {
    /// Checks every bound and fills in defaults.
    pub fn into_config(self) -> Result<Config, String> {
        let endpoints: Vec<String> = self
            .endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from)
            .collect();
        if endpoints.is_empty() {
            return Err("--endpoints: no endpoint given".into());
        }
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return Err(format!(
                "--clients must be in 1..={CLIENTS_MAX}, got {}",
                self.clients
            ));
        }
        let conns = self.conns.unwrap_or(self.clients.min(CONNS_DEFAULT_MAX));
        if conns == 0 || conns > CONNS_MAX || conns > self.clients {
            return Err(format!(
                "--conns must be in 1..=min(clients, {CONNS_MAX}), got {conns}"
            ));
        }
        let stop = stop_from(self.total, self.duration)?;
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0 && r <= 10_000_000.0) {
                return Err(format!(
                    "--rate must be in (0, 10000000] requests/s, got {r}"
                ));
            }
        }
        let lease_ttl = match (self.lease_ttl, self.workload) {
            (Some(t), _) if !(1..=9_000_000_000).contains(&t) => {
                return Err(format!("--lease-ttl must be in 1..=9000000000, got {t}"))
            }
            (Some(t), _) => t,
            (None, Workload::LeaseStorm) => 5,
            (None, _) => 600,
        };
        self.check_sizes()?;
        let key_dist = key_dist_from(self.key_dist, self.zipf_theta)?;
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(format!(
                "--read-ratio must be within 0..=1, got {}",
                self.read_ratio
            ));
        }
        let timeout_ok = self.request_timeout.is_finite()
            && self.request_timeout > 0.0
            && self.request_timeout <= 3600.0;
        if !timeout_ok {
            return Err(format!(
                "--request-timeout must be in (0, 3600] seconds, got {}",
                self.request_timeout
            ));
        }
        Ok(Config {
            workload: self.workload,
            driver: self.driver,
            endpoints,
            clients: self.clients,
            conns,
            stop,
            key_size: self.key_size,
            val_size: self.val_size,
            key_space: self.key_space,
            key_dist,
            json: self.json,
            consistency: self.consistency,
            read_ratio: self.read_ratio,
            prefill: self.prefill || self.workload.uses_leases(),
            request_timeout: Duration::from_secs_f64(self.request_timeout),
            seed: self.seed.unwrap_or_else(clock_seed),
            lease_ttl,
            watchers: self.watchers,
            hist_out: self.hist_out,
            data_dir: self.data_dir,
            rate: self.rate,
        })
    }

    fn check_sizes(&self) -> Result<(), String> {
        let space_max = if self.workload == Workload::TxnPut {
            TXN_KEY_SPACE_MAX
        } else {
            KEY_SPACE_MAX
        };
        if self.key_space == 0 || self.key_space > space_max {
            return Err(format!(
                "--key-space must be in 1..={space_max} for {}, got {}",
                self.workload.name(),
                self.key_space
            ));
        }
        // lease-storm puts to a second key space after the leased one.
        let keys_used = if self.workload == Workload::LeaseStorm {
            self.key_space.saturating_mul(2)
        } else {
            self.key_space
        };
        let digits = key_digits(keys_used);
        if self.key_size < digits || self.key_size > KEY_SIZE_MAX {
            return Err(format!(
                "--key-size must be in {digits}..={KEY_SIZE_MAX} (a key space of {} needs {digits} digits), got {}",
                self.key_space, self.key_size
            ));
        }
        if self.workload == Workload::Watch {
            if self.val_size < 8 {
                return Err(format!(
                    "--val-size must be at least 8 for watch (a timestamp), got {}",
                    self.val_size
                ));
            }
            if self.watchers == 0 || self.watchers > WATCHERS_MAX {
                return Err(format!(
                    "--watchers must be in 1..={WATCHERS_MAX}, got {}",
                    self.watchers
                ));
            }
        }
        if self.val_size > VAL_SIZE_MAX {
            return Err(format!(
                "--val-size must be at most {VAL_SIZE_MAX}, got {}",
                self.val_size
            ));
        }
        Ok(())
    }
}

fn stop_from(total: Option<u64>, duration: Option<f64>) -> Result<Stop, String> {
    match (total, duration) {
        (Some(_), Some(_)) => Err("give --total or --duration, not both".into()),
        (Some(0), None) => Err("--total must be at least 1".into()),
        (Some(n), None) => Ok(Stop::Total(n)),
        (None, Some(s)) => {
            if !(s.is_finite() && s > 0.0 && s <= DURATION_MAX.as_secs_f64()) {
                return Err(format!(
                    "--duration must be in (0, {}] seconds, got {s}",
                    DURATION_MAX.as_secs()
                ));
            }
            Ok(Stop::Duration(Duration::from_secs_f64(s)))
        }
        (None, None) => Ok(Stop::Total(TOTAL_DEFAULT)),
    }
}

fn key_dist_from(arg: KeyDistArg, theta: Option<f64>) -> Result<KeyDist, String> {
    match (arg, theta) {
        (KeyDistArg::Uniform, None) => Ok(KeyDist::Uniform),
        (KeyDistArg::Uniform, Some(_)) => Err("--zipf-theta needs --key-dist zipfian".into()),
        (KeyDistArg::Zipfian, t) => {
            let theta = t.unwrap_or(ZIPF_THETA_DEFAULT);
            // Gray et al.'s generator divides by 1 - theta.
            if !(theta > 0.0 && theta < 1.0) {
                return Err(format!(
                    "--zipf-theta must be in (0, 1) (exclusive), got {theta}"
                ));
            }
            Ok(KeyDist::Zipfian { theta })
        }
    }
}

fn clock_seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut full = vec!["cairn-bench"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    #[test]
    fn defaults_follow_etcd_benchmark() {
        let c = parse(&["put"]).unwrap();
        assert_eq!(c.workload, Workload::Put);
        assert_eq!(c.driver, Driver::Native);
        assert_eq!((c.clients, c.conns), (1, 1));
        assert_eq!(c.stop, Stop::Total(TOTAL_DEFAULT));
        assert_eq!((c.key_size, c.val_size), (8, 8));
        assert_eq!(c.consistency, Consistency::L);
        assert_eq!(c.endpoints, vec!["127.0.0.1:2379".to_string()]);
        assert_eq!(c.key_dist, KeyDist::Uniform);
    }

    #[test]
    fn key_dist_defaults_to_ycsb_theta_and_checks_it() {
        let z = |args: &[&str]| parse(args).map(|c| c.key_dist);
        assert_eq!(
            z(&["put", "--key-dist", "zipfian"]),
            Ok(KeyDist::Zipfian { theta: 0.99 })
        );
        assert_eq!(
            z(&["range", "--key-dist", "zipfian", "--zipf-theta", "0.5"]),
            Ok(KeyDist::Zipfian { theta: 0.5 })
        );
        for bad in ["0", "1", "1.5", "-0.1", "NaN"] {
            assert!(
                z(&["put", "--key-dist", "zipfian", "--zipf-theta", bad]).is_err(),
                "{bad}"
            );
        }
        assert!(
            z(&["put", "--zipf-theta", "0.5"]).is_err(),
            "theta without zipfian"
        );
        assert!(z(&["put", "--key-dist", "pareto"]).is_err());
    }

    #[test]
    fn conns_default_to_min_of_clients_and_eight() {
        assert_eq!(parse(&["put", "--clients", "4"]).unwrap().conns, 4);
        assert_eq!(parse(&["put", "--clients", "256"]).unwrap().conns, 8);
        assert_eq!(
            parse(&["put", "--clients", "256", "--conns", "32"])
                .unwrap()
                .conns,
            32
        );
    }

    #[test]
    fn every_flag_is_parsed() {
        let c = parse(&[
            "mixed",
            "--endpoints",
            "http://127.0.0.1:1, 127.0.0.1:2",
            "--clients",
            "16",
            "--conns",
            "2",
            "--duration",
            "1.5",
            "--key-size",
            "32",
            "--val-size",
            "256",
            "--key-space",
            "1000",
            "--json",
            "--consistency",
            "s",
            "--read-ratio",
            "0.5",
            "--driver",
            "etcd",
            "--prefill",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!(c.workload, Workload::Mixed);
        assert_eq!(
            c.endpoints,
            vec!["http://127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()]
        );
        assert_eq!((c.clients, c.conns), (16, 2));
        assert_eq!(c.stop, Stop::Duration(Duration::from_millis(1500)));
        assert_eq!((c.key_size, c.val_size, c.key_space), (32, 256, 1000));
        assert!(c.json && c.prefill);
        assert_eq!(c.consistency, Consistency::S);
        assert_eq!(c.read_ratio, 0.5);
        assert_eq!(c.driver, Driver::Etcd);
        assert_eq!(c.seed, 7);
        assert_eq!(parse(&["txn-put"]).unwrap().workload, Workload::TxnPut);
    }

    #[test]
    fn out_of_bounds_values_are_rejected() {
        assert!(parse(&["put", "--total", "5", "--duration", "1"]).is_err());
        assert!(parse(&["put", "--total", "0"]).is_err());
        assert!(parse(&["put", "--duration", "0"]).is_err());
        assert!(parse(&["put", "--clients", "0"]).is_err());
        assert!(parse(&["put", "--clients", "2", "--conns", "3"]).is_err());
        assert!(parse(&["put", "--read-ratio", "1.5"]).is_err());
        assert!(parse(&["put", "--key-space", "0"]).is_err());
        assert!(parse(&["put", "--endpoints", ","]).is_err());
        assert!(parse(&["scan"]).is_err());
        assert!(parse(&["txn-put", "--key-space", "100000000", "--key-size", "16"]).is_err());
    }

    #[test]
    fn key_size_must_hold_every_key_of_the_space() {
        assert!(parse(&["put", "--key-space", "1000", "--key-size", "3"]).is_ok());
        assert!(parse(&["put", "--key-space", "1001", "--key-size", "3"]).is_err());
    }
}
