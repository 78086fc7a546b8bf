//! `cairnd`'s command line: etcd's flag names and defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A Raft-replicated MVCC key-value store (etcd-compatible flags).
#[derive(Parser, Debug, Clone)]
#[command(name = "cairnd", version, about)]
pub struct Flags {
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Path to the data directory (default: `<name>.cairn`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// URLs to listen on for client traffic (comma-separated).
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    pub listen_client_urls: String,
    /// This member's client URLs to advertise to the public.
    #[arg(long, default_value = "http://127.0.0.1:2379")]
    pub advertise_client_urls: String,
    /// URLs to listen on for peer traffic.
    #[arg(long, default_value = "http://127.0.0.1:2380")]
    pub listen_peer_urls: String,
    /// This member's peer URLs to advertise to the rest of the cluster.
    #[arg(long, default_value = "http://127.0.0.1:2380")]
    pub initial_advertise_peer_urls: String,
    /// Initial cluster configuration for bootstrapping: `name=url,...`
    /// (default: this member alone, `<name>=<initial-advertise-peer-urls>`).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Initial cluster state: `new` or `existing`.
    #[arg(long, default_value = "new", value_parser = ["new", "existing"])]
    pub initial_cluster_state: String,
    /// Initial cluster token, distinguishing clusters bootstrapped from the same configuration.
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// CPUs to pin executors to, e.g. `0,1` or `0-1`, or `auto`. The first
    /// runs the network, Raft and apply; the second the WAL writer. One CPU
    /// runs everything on one executor.
    #[arg(long, default_value = "auto")]
    pub cores: String,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, default_value_t = 1572864)]
    pub max_request_bytes: usize,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,
    /// WAL segment size in bytes (segments are preallocated).
    #[arg(long, default_value_t = 64 << 20)]
    pub wal_segment_bytes: u64,
    /// Raise the NOSPACE alarm when the backend would grow past this many
    /// bytes (0: etcd's default of 2 GiB; negative: no quota).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub quota_backend_bytes: i64,
    /// Interpret --auto-compaction-retention as a time (`periodic`) or a
    /// number of revisions (`revision`).
    #[arg(long, default_value = "periodic")]
    pub auto_compaction_mode: String,
    /// Auto-compaction retention: for periodic, a duration (`1h`, `30m`) or
    /// hours; for revision, a revision count. 0 disables auto-compaction.
    #[arg(long, default_value = "0")]
    pub auto_compaction_retention: String,
    /// Log level: debug, info, warn, error.
    #[arg(long, default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,

    /// Longest time applied writes wait before the page file commits them
    /// (a Go duration; 0 means etcd's default, 100ms).
    #[arg(long, default_value = "0")]
    pub backend_batch_interval: String,

    /// Most changes one page-file commit takes (0 means etcd's default, 10000).
    #[arg(long, default_value_t = 0)]
    pub backend_batch_limit: usize,

    /// Applied entries between releases of absorbed WAL segments.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_count: u64,

    /// WAL segments kept even when absorbed (0 keeps every segment).
    #[arg(long, default_value_t = 5)]
    pub max_wals: usize,

    /// Time (in milliseconds) of a heartbeat interval (one Raft tick).
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,

    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,

    /// Refuse membership changes that would leave the cluster without a
    /// quorum of started, connected voters (`--strict-reconfig-check=false`
    /// turns the check off).
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub strict_reconfig_check: bool,

    /// How often the leader checkpoints the remaining TTLs of long leases
    /// through the log (a Go duration; 0 turns checkpoints off).
    #[arg(long, default_value = "5m")]
    pub lease_checkpoint_interval: String,

    /// Bytes of page-file pages the read cache holds (Cairn's own flag).
    #[arg(long, default_value_t = 64 << 20)]
    pub backend_cache_bytes: u64,

    /// Bytes of values kept in memory in front of the page file: recently
    /// written and read values (Cairn's own flag; 0 disables it).
    #[arg(long, default_value_t = 64 << 20)]
    pub backend_value_cache_bytes: u64,

    /// How often a watch created with progress_notify that saw no events
    /// gets a progress notification (etcd's flag, default 10m).
    #[arg(long, default_value = "10m")]
    pub experimental_watch_progress_notify_interval: String,

    /// URLs to serve /metrics (Prometheus text format) and /health on,
    /// comma-separated `http://host:port` (default: none).
    #[arg(long, default_value = "")]
    pub listen_metrics_urls: String,
}

/// One member of `--initial-cluster`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub peer_urls: Vec<String>,
}

/// The validated configuration the node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client: Vec<SocketAddr>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer: Vec<SocketAddr>,
    pub initial_advertise_peer_urls: Vec<String>,
    pub initial_cluster: Vec<Member>,
    pub initial_cluster_state: String,
    pub initial_cluster_token: String,
    pub cpus: Vec<usize>,
    pub max_request_bytes: usize,
    /// `--experimental-watch-progress-notify-interval`.
    pub watch_progress_notify_interval: std::time::Duration,
    /// `--listen-metrics-urls` (empty: no metrics server).
    pub listen_metrics: Vec<SocketAddr>,
    pub max_txn_ops: usize,
    pub wal_segment_bytes: u64,
    pub auto_compaction: Option<crate::compactor::Policy>,
    pub quota_bytes: u64,
    pub log_level: String,
    pub backend_batch_interval: std::time::Duration,
    pub backend_batch_limit: usize,
    pub snapshot_count: u64,
    pub max_wals: usize,
    pub backend_cache_bytes: u64,
    pub backend_value_cache_bytes: u64,
    /// One Raft tick.
    pub heartbeat_interval: std::time::Duration,
    /// Election timeout in ticks (`--election-timeout / --heartbeat-interval`).
    pub election_ticks: u32,
    pub strict_reconfig_check: bool,
    pub lease_checkpoint_interval: std::time::Duration,
}

/// Parses a Go duration (`100ms`, `1.5s`, `1m30s`; `0` alone is zero) for
/// `--flag`.
pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration, String> {
    parse_go_duration(s)
        .ok_or_else(|| format!("--{flag} {s:?}: want a duration like 100ms, 1s or 1m30s"))
}

/// A Go duration: numbers with units h, m, s, ms, us/µs, ns (`1m30s`,
/// `1.5h`); `0` alone is zero. `None` if it is not one.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * secs);
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// Parses `http://host:port` (or `host:port`) into a socket address.
pub fn parse_url(url: &str) -> Result<SocketAddr, String> {
    let rest = if let Some(r) = url.strip_prefix("http://") {
        r
    } else if url.starts_with("https://") {
        return Err(format!("{url}: https (TLS) is not supported yet"));
    } else if url.contains("://") {
        return Err(format!("{url}: unsupported scheme (want http://host:port)"));
    } else {
        url
    };
    let rest = rest.trim_end_matches('/');
    let host_port = rest.replacen("localhost:", "127.0.0.1:", 1);
    host_port
        .parse::<SocketAddr>()
        .map_err(|_| format!("{url}: not an http://IP:port URL"))
}

fn parse_url_list(flag: &str, list: &str) -> Result<Vec<SocketAddr>, String> {
    let urls = split_list(list);
    if urls.is_empty() {
        return Err(format!("--{flag} must not be empty"));
    }
    urls.iter()
        .map(|u| parse_url(u).map_err(|e| format!("--{flag}: {e}")))
        .collect()
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Parses `--initial-cluster` (`name=url,name=url2,...`; a name may repeat
/// to list several URLs).
pub fn parse_initial_cluster(s: &str) -> Result<Vec<Member>, String> {
    let mut members: Vec<Member> = Vec::new();
    for part in split_list(s) {
        let (name, url) = part
            .split_once('=')
            .ok_or_else(|| format!("--initial-cluster: {part:?} is not name=url"))?;
        if name.is_empty() {
            return Err(format!("--initial-cluster: {part:?} has an empty name"));
        }
        parse_url(url).map_err(|e| format!("--initial-cluster: {e}"))?;
        match members.iter_mut().find(|m| m.name == name) {
            Some(m) => m.peer_urls.push(url.to_string()),
            None => members.push(Member {
                name: name.to_string(),
                peer_urls: vec![url.to_string()],
            }),
        }
    }
    if members.is_empty() {
        return Err("--initial-cluster must not be empty".into());
    }
    Ok(members)
}

/// Parses `--cores`: `auto`, or a list of CPU ids and ranges (`0,1`, `0-1`).
pub fn parse_cores(s: &str, available: usize) -> Result<Vec<usize>, String> {
    if s == "auto" {
        return Ok((0..available.clamp(1, 2)).collect());
    }
    let mut cpus = Vec::new();
    for part in split_list(s) {
        let bad = || format!("--cores: {part:?} is not a CPU id or range");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) =
                (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if a > b {
                return Err(bad());
            }
            cpus.extend(a..=b);
        } else {
            cpus.push(part.parse().map_err(|_| bad())?);
        }
    }
    if cpus.is_empty() {
        return Err("--cores: no CPUs given".into());
    }
    if let Some(c) = cpus.iter().find(|&&c| c >= available) {
        return Err(format!(
            "--cores: CPU {c} does not exist (this machine has {available})"
        ));
    }
    if cpus.len() > 2 {
        return Err(format!(
            "--cores: {} CPUs given; this version runs two executors (network/Raft/apply and WAL), give at most 2",
            cpus.len()
        ));
    }
    Ok(cpus)
}

impl Flags {
    /// Checks every value and derives the defaults that depend on others.
    pub fn validate(self) -> Result<Config, String> {
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.cairn", self.name)));
        if self.name.is_empty() {
            return Err("--name must not be empty".into());
        }
        let listen_client = parse_url_list("listen-client-urls", &self.listen_client_urls)?;
        let advertise_client_urls = split_list(&self.advertise_client_urls);
        parse_url_list("advertise-client-urls", &self.advertise_client_urls)?;
        let listen_peer = parse_url_list("listen-peer-urls", &self.listen_peer_urls)?;
        let listen_metrics = if self.listen_metrics_urls.trim().is_empty() {
            Vec::new()
        } else {
            parse_url_list("listen-metrics-urls", &self.listen_metrics_urls)?
        };
        let initial_advertise_peer_urls = split_list(&self.initial_advertise_peer_urls);
        parse_url_list(
            "initial-advertise-peer-urls",
            &self.initial_advertise_peer_urls,
        )?;
        let cluster = self.initial_cluster.clone().unwrap_or_else(|| {
            initial_advertise_peer_urls
                .iter()
                .map(|u| format!("{}={u}", self.name))
                .collect::<Vec<_>>()
                .join(",")
        });
        let initial_cluster = parse_initial_cluster(&cluster)?;
        let me = initial_cluster.iter().find(|m| m.name == self.name).ok_or_else(|| {
            format!("couldn't find local name {:?} in the initial cluster configuration ({cluster})", self.name)
        })?;
        let mut mine = me.peer_urls.clone();
        let mut adv = initial_advertise_peer_urls.clone();
        mine.sort();
        adv.sort();
        if mine != adv {
            return Err(format!(
                "--initial-cluster has {}={} but --initial-advertise-peer-urls is {}: they must match",
                self.name,
                mine.join(","),
                adv.join(",")
            ));
        }
        let mut seen_urls = std::collections::BTreeSet::new();
        for m in &initial_cluster {
            for u in &m.peer_urls {
                parse_url(u).map_err(|e| format!("--initial-cluster: {e}"))?;
                if !seen_urls.insert(u.clone()) {
                    return Err(format!("--initial-cluster has duplicate peer URL {u}"));
                }
            }
        }
        // etcd's rules: a heartbeat is at least 1 ms and the election
        // timeout at least 5 heartbeats, at most 50 s.
        if self.heartbeat_interval == 0 {
            return Err("--heartbeat-interval must be at least 1 (ms)".into());
        }
        if self.election_timeout < 5 * self.heartbeat_interval {
            return Err(format!(
                "--election-timeout[{}ms] should be at least as 5 times as --heartbeat-interval[{}ms]",
                self.election_timeout, self.heartbeat_interval
            ));
        }
        if self.election_timeout > 50_000 {
            return Err(format!(
                "--election-timeout[{}ms] is too long, and should be set less than 50000ms",
                self.election_timeout
            ));
        }
        if self.initial_cluster_token.is_empty() {
            return Err("--initial-cluster-token must not be empty".into());
        }
        let available = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let cpus = parse_cores(&self.cores, available)?;
        // A value must fit one page-file record (64 MiB with its header).
        if self.max_request_bytes == 0 || self.max_request_bytes > (64 << 20) {
            return Err("--max-request-bytes must be between 1 and 67108864".into());
        }
        if self.max_txn_ops == 0 {
            return Err("--max-txn-ops must be at least 1".into());
        }
        if self.wal_segment_bytes < (64 << 10) || !self.wal_segment_bytes.is_multiple_of(4096) {
            return Err("--wal-segment-bytes must be a multiple of 4096 and at least 65536".into());
        }
        let auto_compaction = crate::compactor::Policy::parse(
            &self.auto_compaction_mode,
            &self.auto_compaction_retention,
        )?;
        let quota_bytes = match self.quota_backend_bytes {
            0 => crate::alarm::DEFAULT_QUOTA_BYTES,
            q if q < 0 => u64::MAX,
            q => q as u64,
        };
        let backend_batch_interval =
            match parse_duration("backend-batch-interval", &self.backend_batch_interval)? {
                d if d.is_zero() => std::time::Duration::from_millis(100),
                d => d,
            };
        let backend_batch_limit = match self.backend_batch_limit {
            0 => 10_000,
            n => n,
        };
        if self.snapshot_count == 0 {
            return Err("--snapshot-count must be at least 1".into());
        }
        let watch_progress_notify_interval = parse_duration(
            "experimental-watch-progress-notify-interval",
            &self.experimental_watch_progress_notify_interval,
        )?;
        if watch_progress_notify_interval.is_zero() {
            return Err("--experimental-watch-progress-notify-interval must be positive".into());
        }
        if self.backend_cache_bytes < (1 << 20) {
            return Err("--backend-cache-bytes must be at least 1048576".into());
        }
        Ok(Config {
            heartbeat_interval: std::time::Duration::from_millis(self.heartbeat_interval),
            election_ticks: (self.election_timeout / self.heartbeat_interval) as u32,
            strict_reconfig_check: self.strict_reconfig_check,
            lease_checkpoint_interval: parse_duration(
                "lease-checkpoint-interval",
                &self.lease_checkpoint_interval,
            )?,
            backend_batch_interval,
            backend_batch_limit,
            snapshot_count: self.snapshot_count,
            max_wals: self.max_wals,
            backend_cache_bytes: self.backend_cache_bytes,
            backend_value_cache_bytes: self.backend_value_cache_bytes,
            quota_bytes,
            auto_compaction,
            name: self.name,
            data_dir,
            listen_client,
            advertise_client_urls,
            listen_peer,
            initial_advertise_peer_urls,
            initial_cluster,
            initial_cluster_state: self.initial_cluster_state,
            initial_cluster_token: self.initial_cluster_token,
            cpus,
            max_request_bytes: self.max_request_bytes,
            watch_progress_notify_interval,
            listen_metrics,
            max_txn_ops: self.max_txn_ops,
            wal_segment_bytes: self.wal_segment_bytes,
            log_level: self.log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Config, String> {
        let mut v = vec!["cairnd"];
        v.extend_from_slice(args);
        Flags::try_parse_from(v)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_match_etcd() {
        let c = flags(&[]).unwrap();
        assert_eq!(c.name, "default");
        assert_eq!(c.data_dir, PathBuf::from("default.cairn"));
        assert_eq!(c.listen_client[0].port(), 2379);
        assert_eq!(c.max_request_bytes, 1572864);
        assert_eq!(c.max_txn_ops, 128);
        assert_eq!(c.initial_cluster_token, "etcd-cluster");
    }

    #[test]
    fn backend_flags_default_as_etcd_and_parse_durations() {
        let c = flags(&[]).unwrap();
        assert_eq!(
            c.backend_batch_interval,
            std::time::Duration::from_millis(100)
        );
        assert_eq!(c.backend_batch_limit, 10_000);
        assert_eq!(c.snapshot_count, 100_000);
        assert_eq!(c.max_wals, 5);
        let c = flags(&[
            "--backend-batch-interval",
            "1m2.5s",
            "--backend-batch-limit",
            "7",
        ])
        .unwrap();
        assert_eq!(
            c.backend_batch_interval,
            std::time::Duration::from_millis(62_500)
        );
        assert_eq!(c.backend_batch_limit, 7);
        assert!(flags(&["--backend-batch-interval", "10"]).is_err());
        assert!(flags(&["--backend-batch-interval", "5 parsecs"]).is_err());
        assert!(flags(&["--snapshot-count", "0"]).is_err());
    }

    #[test]
    fn data_dir_defaults_to_name() {
        assert_eq!(
            flags(&["--name", "n1"]).unwrap().data_dir,
            PathBuf::from("n1.cairn")
        );
    }

    #[test]
    fn name_missing_from_initial_cluster_is_refused() {
        let e = flags(&[
            "--name",
            "a",
            "--initial-cluster",
            "b=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(e.contains("couldn't find local name"), "{e}");
    }

    #[test]
    fn a_three_member_cluster_is_accepted_with_etcds_timers() {
        let c = flags(&[
            "--name",
            "b",
            "--initial-cluster",
            "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382",
            "--initial-advertise-peer-urls",
            "http://127.0.0.1:2381",
            "--heartbeat-interval",
            "50",
            "--election-timeout",
            "500",
        ])
        .unwrap();
        assert_eq!(c.initial_cluster.len(), 3);
        assert_eq!(c.heartbeat_interval, std::time::Duration::from_millis(50));
        assert_eq!(c.election_ticks, 10);
    }

    #[test]
    fn election_timeout_must_be_five_heartbeats_and_urls_unique() {
        let e = flags(&["--heartbeat-interval", "100", "--election-timeout", "300"]).unwrap_err();
        assert!(e.contains("should be at least as 5 times"), "{e}");
        let e = flags(&[
            "--name",
            "a",
            "--initial-cluster",
            "a=http://127.0.0.1:2380,b=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(e.contains("duplicate peer URL"), "{e}");
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(flags(&["--listen-client-urls", "http://nonsense"]).is_err());
        assert!(flags(&[]).unwrap().listen_metrics.is_empty());
        let m = flags(&[
            "--listen-metrics-urls",
            "http://127.0.0.1:9101,http://127.0.0.1:9102",
        ]);
        assert_eq!(m.unwrap().listen_metrics.len(), 2);
        let e = flags(&["--listen-metrics-urls", "https://127.0.0.1:9101"]).unwrap_err();
        assert!(
            e.contains("--listen-metrics-urls") && e.contains("https"),
            "{e}"
        );
        assert!(flags(&["--listen-client-urls", "ftp://127.0.0.1:1"]).is_err());
    }

    #[test]
    fn strict_reconfig_check_is_a_go_style_bool_flag() {
        assert!(flags(&[]).unwrap().strict_reconfig_check);
        assert!(
            flags(&["--strict-reconfig-check"])
                .unwrap()
                .strict_reconfig_check
        );
        assert!(
            !flags(&["--strict-reconfig-check=false"])
                .unwrap()
                .strict_reconfig_check
        );
        assert!(
            flags(&["--strict-reconfig-check=true"])
                .unwrap()
                .strict_reconfig_check
        );
        assert!(flags(&["--strict-reconfig-check=maybe"]).is_err());
    }

    #[test]
    fn auto_compaction_flags_parse() {
        assert_eq!(flags(&[]).unwrap().auto_compaction, None);
        let c = flags(&["--auto-compaction-retention", "1h"]).unwrap();
        assert!(matches!(
            c.auto_compaction,
            Some(crate::compactor::Policy::Periodic { .. })
        ));
        let c = flags(&[
            "--auto-compaction-mode",
            "revision",
            "--auto-compaction-retention",
            "10",
        ])
        .unwrap();
        assert_eq!(
            c.auto_compaction,
            Some(crate::compactor::Policy::Revision { retention: 10 })
        );
        assert!(flags(&[
            "--auto-compaction-mode",
            "daily",
            "--auto-compaction-retention",
            "1"
        ])
        .is_err());
    }

    #[test]
    fn cores_parse_lists_and_ranges() {
        assert_eq!(parse_cores("0-1", 2).unwrap(), vec![0, 1]);
        assert_eq!(parse_cores("1", 2).unwrap(), vec![1]);
        assert!(parse_cores("5", 2).is_err());
        assert!(parse_cores("x", 2).is_err());
        assert_eq!(parse_cores("auto", 8).unwrap(), vec![0, 1]);
    }
}
