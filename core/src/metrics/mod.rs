//! The node's metrics, served in the Prometheus text format by
//! `--listen-metrics-urls` (see [`http`]).
//!
//! Names, help texts, types and buckets are etcd 3.4's where etcd has the
//! metric, so that dashboards and alerts written for etcd work unchanged;
//! Cairn's own metrics are named `cairn_*`.
//!
//! Recording costs the hot path no lock and no allocation: every handle
//! is created once at start, counters and gauges are atomics, and the
//! `prometheus` crate's histograms observe with atomic adds into sharded
//! buckets (only a scrape takes their collect lock). Figures other parts
//! already count in atomics (the page file's size, executor CPU time,
//! process figures) are read only when a scrape asks ([`Metrics::refresh`]).
//!
//! ```
//! let m = cairn_core::metrics::Metrics::new();
//! m.wal_fsync_seconds.observe(0.000_4);
//! m.leader_changes.inc();
//! let text = m.render().unwrap();
//! assert!(text.contains("etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 1"));
//! assert!(text.contains("etcd_server_leader_changes_seen_total 1"));
//! ```

pub mod http;
mod peer_rtt;
mod threads;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge,
    Opts, Registry, TextEncoder,
};

pub use peer_rtt::PeerRtt;
pub use threads::{Executor, ExecutorThreads};

/// Figures the page-file thread keeps (read at scrape time).
#[derive(Default, Debug)]
pub struct DbSizes {
    pub file_len_bytes: AtomicU64,
    pub in_use_bytes: AtomicU64,
}

/// Every metric of one node, shared by its executors and threads.
pub struct Metrics {
    registry: Registry,
    /// `etcd_disk_wal_fsync_duration_seconds`: one WAL batch's fdatasync.
    pub wal_fsync_seconds: Histogram,
    /// `etcd_disk_wal_write_bytes_total` (a gauge in etcd 3.4).
    pub wal_write_bytes: IntGauge,
    /// `cairn_wal_fsync_batch_entries`: Raft entries each fdatasync made
    /// durable (the group commit's batch size).
    pub wal_batch_entries: Histogram,
    /// `cairn_wal_write_duration_seconds`: the write before that fdatasync.
    pub wal_write_seconds: Histogram,
    /// `etcd_disk_backend_commit_duration_seconds`: one page-file commit.
    pub backend_commit_seconds: Histogram,
    pub has_leader: IntGauge,
    pub is_leader: IntGauge,
    pub is_learner: IntGauge,
    pub leader_changes: IntCounter,
    /// Raft's commit index (etcd's gauge of the same name).
    pub proposals_committed: IntGauge,
    /// The applied index.
    pub proposals_applied: IntGauge,
    /// This member's proposals (and forwarded requests) waiting to apply.
    pub proposals_pending: IntGauge,
    /// Proposals that failed: timed out, dropped at a leader change,
    /// refused by the leader.
    pub proposals_failed: IntCounter,
    db_total_size: IntGauge,
    db_in_use_size: IntGauge,
    /// `etcd_network_peer_round_trip_time_seconds{To}` (see [`PeerRtt`]).
    pub peer_rtt_seconds: HistogramVec,
    /// The page file's sizes, published by its thread.
    pub db_sizes: Arc<DbSizes>,
    /// CPU time of the executor threads (`cairn_executor_cpu_seconds_total`).
    pub executors: ExecutorThreads,
}

fn histogram(name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .expect("invariant: static histogram options are valid")
}

fn gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).expect("invariant: static gauge options are valid")
}

fn seconds_buckets(start: f64, count: usize) -> Vec<f64> {
    exponential_buckets(start, 2.0, count).expect("invariant: static buckets are valid")
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric (once, at start).
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::new(),
            wal_fsync_seconds: histogram(
                "etcd_disk_wal_fsync_duration_seconds",
                "The latency distributions of fsync called by WAL.",
                seconds_buckets(0.001, 14),
            ),
            wal_write_bytes: gauge(
                "etcd_disk_wal_write_bytes_total",
                "Total number of bytes written in WAL.",
            ),
            wal_batch_entries: histogram(
                "cairn_wal_fsync_batch_entries",
                "Raft entries made durable by one WAL fdatasync (the group commit's batch size).",
                exponential_buckets(1.0, 2.0, 15).expect("invariant: static buckets are valid"),
            ),
            wal_write_seconds: histogram(
                "cairn_wal_write_duration_seconds",
                "The latency distributions of the WAL's batch write before its fdatasync.",
                seconds_buckets(0.000_1, 16),
            ),
            backend_commit_seconds: histogram(
                "etcd_disk_backend_commit_duration_seconds",
                "The latency distributions of commit called by backend.",
                seconds_buckets(0.001, 14),
            ),
            has_leader: gauge(
                "etcd_server_has_leader",
                "Whether or not a leader exists. 1 is existence, 0 is not.",
            ),
            is_leader: gauge(
                "etcd_server_is_leader",
                "Whether or not this member is a leader. 1 if is, 0 otherwise.",
            ),
            is_learner: gauge(
                "etcd_server_is_learner",
                "Whether or not this member is a learner. 1 if is, 0 otherwise.",
            ),
            leader_changes: IntCounter::new(
                "etcd_server_leader_changes_seen_total",
                "The number of leader changes seen.",
            )
            .expect("invariant: static counter options are valid"),
            proposals_committed: gauge(
                "etcd_server_proposals_committed_total",
                "The total number of consensus proposals committed.",
            ),
            proposals_applied: gauge(
                "etcd_server_proposals_applied_total",
                "The total number of consensus proposals applied.",
            ),
            proposals_pending: gauge(
                "etcd_server_proposals_pending",
                "The current number of pending proposals to commit.",
            ),
            proposals_failed: IntCounter::new(
                "etcd_server_proposals_failed_total",
                "The total number of failed proposals seen.",
            )
            .expect("invariant: static counter options are valid"),
            db_total_size: gauge(
                "etcd_mvcc_db_total_size_in_bytes",
                "Total size of the underlying database physically allocated in bytes.",
            ),
            db_in_use_size: gauge(
                "etcd_mvcc_db_total_size_in_use_in_bytes",
                "Total size of the underlying database logically in use in bytes.",
            ),
            peer_rtt_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "etcd_network_peer_round_trip_time_seconds",
                    "Round-Trip-Time histogram between peers",
                )
                .buckets(seconds_buckets(0.000_1, 14)),
                &["To"],
            )
            .expect("invariant: static histogram options are valid"),
            db_sizes: Arc::new(DbSizes::default()),
            executors: ExecutorThreads::new(),
        };
        m.register_all();
        m
    }

    fn register_all(&self) {
        let r = &self.registry;
        let all: [Box<dyn prometheus::core::Collector>; 16] = [
            Box::new(self.wal_fsync_seconds.clone()),
            Box::new(self.wal_write_bytes.clone()),
            Box::new(self.wal_batch_entries.clone()),
            Box::new(self.wal_write_seconds.clone()),
            Box::new(self.backend_commit_seconds.clone()),
            Box::new(self.has_leader.clone()),
            Box::new(self.is_leader.clone()),
            Box::new(self.is_learner.clone()),
            Box::new(self.leader_changes.clone()),
            Box::new(self.proposals_committed.clone()),
            Box::new(self.proposals_applied.clone()),
            Box::new(self.proposals_pending.clone()),
            Box::new(self.proposals_failed.clone()),
            Box::new(self.db_total_size.clone()),
            Box::new(self.db_in_use_size.clone()),
            Box::new(self.peer_rtt_seconds.clone()),
        ];
        for c in all {
            r.register(c)
                .expect("invariant: each metric name is registered once");
        }
        self.executors
            .register_in(r)
            .expect("invariant: each metric name is registered once");
        let version = IntGauge::with_opts(
            Opts::new(
                "cairn_server_version",
                "Which version is running. 1 for 'server_version' label with current version.",
            )
            .const_label("server_version", env!("CARGO_PKG_VERSION")),
        )
        .expect("invariant: static gauge options are valid");
        version.set(1);
        r.register(Box::new(version))
            .expect("invariant: each metric name is registered once");
    }

    /// Brings the figures read at scrape time up to date.
    pub fn refresh(&self) {
        self.db_total_size
            .set(self.db_sizes.file_len_bytes.load(Relaxed) as i64);
        self.db_in_use_size
            .set(self.db_sizes.in_use_bytes.load(Relaxed) as i64);
        self.executors.refresh();
    }

    /// Every metric in the Prometheus text exposition format (0.0.4).
    pub fn render(&self) -> Result<String, prometheus::Error> {
        self.refresh();
        let mut out = Vec::with_capacity(16 << 10);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        // Names and label values are Cairn's own (ASCII).
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_etcd_metric_the_issue_names_is_exposed_with_its_type() {
        let m = Metrics::new();
        // Families without series (no executor registered, no peer timed)
        // are not served.
        m.executors.register_current(Executor::Main, Some(0));
        m.peer_rtt_seconds
            .with_label_values(&["8e9e05c52164694d"])
            .observe(0.000_3);
        let text = m.render().unwrap();
        for (name, kind) in [
            ("etcd_disk_wal_fsync_duration_seconds", "histogram"),
            ("etcd_disk_backend_commit_duration_seconds", "histogram"),
            ("etcd_server_leader_changes_seen_total", "counter"),
            ("etcd_server_has_leader", "gauge"),
            ("etcd_server_proposals_committed_total", "gauge"),
            ("etcd_server_proposals_applied_total", "gauge"),
            ("etcd_server_proposals_pending", "gauge"),
            ("etcd_server_proposals_failed_total", "counter"),
            ("etcd_mvcc_db_total_size_in_bytes", "gauge"),
            ("etcd_network_peer_round_trip_time_seconds", "histogram"),
            ("cairn_wal_fsync_batch_entries", "histogram"),
            ("cairn_executor_cpu_seconds_total", "counter"),
            ("process_cpu_seconds_total", "counter"),
            ("process_resident_memory_bytes", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind} missing in:\n{text}"
            );
        }
        assert!(text.contains(
            "etcd_network_peer_round_trip_time_seconds_bucket{To=\"8e9e05c52164694d\",le=\"0.0004\"} 1"
        ));
    }

    #[test]
    fn scrape_reads_the_page_file_sizes_its_thread_published() {
        let m = Metrics::new();
        m.db_sizes.file_len_bytes.store(1 << 20, Relaxed);
        m.db_sizes.in_use_bytes.store(4096, Relaxed);
        let text = m.render().unwrap();
        assert!(text.contains("etcd_mvcc_db_total_size_in_bytes 1048576\n"));
        assert!(text.contains("etcd_mvcc_db_total_size_in_use_in_bytes 4096\n"));
    }

    #[test]
    fn batch_sizes_land_in_power_of_two_buckets() {
        let m = Metrics::new();
        for n in [1.0, 3.0, 64.0, 100.0] {
            m.wal_batch_entries.observe(n);
        }
        let text = m.render().unwrap();
        assert!(text.contains("cairn_wal_fsync_batch_entries_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("cairn_wal_fsync_batch_entries_bucket{le=\"4\"} 2\n"));
        assert!(text.contains("cairn_wal_fsync_batch_entries_bucket{le=\"64\"} 3\n"));
        assert!(text.contains("cairn_wal_fsync_batch_entries_bucket{le=\"128\"} 4\n"));
        assert!(text.contains("cairn_wal_fsync_batch_entries_sum 168\n"));
    }
}
