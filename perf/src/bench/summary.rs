//! The result of a run, printed either like etcd's benchmark tool (a
//! summary, a response time histogram, a latency distribution and the
//! errors) or as one JSON object on one line (`--json`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

use super::args::{Config, Consistency, Workload};
use super::recorder::Recorder;

/// Percentiles of the human latency distribution (etcd's list).
pub const DISTRIBUTION_PCTS: [f64; 8] = [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9];
/// Bars of the human response time histogram.
pub const HISTOGRAM_BUCKETS: u64 = 10;
const BAR_WIDTH_MAX: u64 = 40;

/// Everything a run reports. Latencies are of successful requests only;
/// `ops_per_sec` counts successful requests only.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub workload: &'static str,
    pub driver: &'static str,
    pub endpoints: String,
    pub clients: u32,
    pub conns: u32,
    pub key_size: usize,
    pub val_size: usize,
    pub key_space: u64,
    /// How requests picked their keys: "uniform" or "zipfian".
    pub key_dist: &'static str,
    /// The zipfian skew (zipfian only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zipf_theta: Option<f64>,
    /// "l" or "s"; reads of `range` and `mixed` only.
    pub consistency: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_ratio: Option<f64>,
    /// Requests completed, successful or not.
    pub total: u64,
    pub ok: u64,
    pub errors: u64,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub mean_us: f64,
    pub stddev_us: f64,
    pub min_us: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// User + system CPU time of this process during the measured run.
    pub client_cpu_secs: f64,
    /// `client_cpu_secs / secs`, in percent of one core.
    pub client_cpu_pct: f64,
    /// `txn-put` only: txn attempts whose compare failed and were retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_retries: Option<u64>,
    /// Cairn servers: WAL fsyncs during the run, and entries per fsync (the
    /// group-commit factor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_wal_fsyncs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_fsync: Option<f64>,
    /// Watch workload: the puts acknowledged per second (the other figures
    /// are the events').
    #[serde(skip_serializing_if = "Option::is_none")]
    pub puts_per_sec: Option<f64>,
    /// Open loop: the target rate (requests per second).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    pub error_kinds: BTreeMap<String, u64>,
    #[serde(skip)]
    pub distribution_us: Vec<(f64, u64)>,
    /// (upper bound, count) of each human histogram bar.
    #[serde(skip)]
    pub buckets_us: Vec<(u64, u64)>,
}

impl Summary {
    pub fn new(cfg: &Config, rec: &Recorder, elapsed: Duration, cpu: Duration) -> Summary {
        let h = rec.latency_us();
        let secs = elapsed.as_secs_f64();
        let any = !h.is_empty();
        let q = |p: f64| if any { h.value_at_quantile(p) } else { 0 };
        Summary {
            workload: cfg.workload.name(),
            driver: cfg.driver.name(),
            endpoints: cfg.endpoints.join(","),
            clients: cfg.clients,
            conns: cfg.conns,
            key_size: cfg.key_size,
            val_size: cfg.val_size,
            key_space: cfg.key_space,
            key_dist: cfg.key_dist.name(),
            zipf_theta: cfg.key_dist.theta(),
            consistency: match cfg.consistency {
                Consistency::L => "l",
                Consistency::S => "s",
            },
            read_ratio: (cfg.workload == Workload::Mixed).then_some(cfg.read_ratio),
            total: rec.completed(),
            ok: rec.ok(),
            errors: rec.errors(),
            secs,
            ops_per_sec: if secs > 0.0 {
                rec.ok() as f64 / secs
            } else {
                0.0
            },
            mean_us: if any { h.mean() } else { 0.0 },
            stddev_us: if any { h.stdev() } else { 0.0 },
            min_us: if any { h.min() } else { 0 },
            p50_us: q(0.50),
            p90_us: q(0.90),
            p99_us: q(0.99),
            p999_us: q(0.999),
            max_us: if any { h.max() } else { 0 },
            client_cpu_secs: cpu.as_secs_f64(),
            client_cpu_pct: if secs > 0.0 {
                100.0 * cpu.as_secs_f64() / secs
            } else {
                0.0
            },
            cas_retries: (cfg.workload == Workload::TxnPut).then_some(rec.cas_retries),
            server_wal_fsyncs: None,
            requests_per_fsync: None,
            puts_per_sec: None,
            rate: cfg.rate,
            error_kinds: rec.error_kinds().clone(),
            distribution_us: DISTRIBUTION_PCTS
                .iter()
                .map(|&p| (p, q(p / 100.0)))
                .collect(),
            buckets_us: buckets(rec),
        }
    }

    /// Adds the server's WAL counters for the run (Cairn only).
    pub fn with_wal(mut self, wal: Option<(u64, u64)>) -> Summary {
        if let Some((fsyncs, entries)) = wal {
            self.server_wal_fsyncs = Some(fsyncs);
            self.requests_per_fsync = (fsyncs > 0).then(|| entries as f64 / fsyncs as f64);
        }
        self
    }

    /// Watch workload: adds the put rate (`writes` acknowledged puts).
    pub fn with_writes(mut self, writes: Option<u64>) -> Summary {
        self.puts_per_sec = writes.map(|w| {
            if self.secs > 0.0 {
                w as f64 / self.secs
            } else {
                0.0
            }
        });
        self
    }

    /// One line of JSON, no trailing newline.
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("invariant: a Summary always serializes")
    }

    /// The report in the layout of etcd's benchmark tool (times in seconds).
    pub fn to_human(&self) -> String {
        let s = |us: f64| us / 1e6;
        let mut o = String::new();
        let _ = writeln!(o, "\nSummary:");
        let _ = writeln!(o, "  Total:\t{:.4} secs.", self.secs);
        let _ = writeln!(o, "  Slowest:\t{:.4} secs.", s(self.max_us as f64));
        let _ = writeln!(o, "  Fastest:\t{:.4} secs.", s(self.min_us as f64));
        let _ = writeln!(o, "  Average:\t{:.4} secs.", s(self.mean_us));
        let _ = writeln!(o, "  Stddev:\t{:.4} secs.", s(self.stddev_us));
        let _ = writeln!(o, "  Requests/sec:\t{:.4}", self.ops_per_sec);
        let _ = writeln!(o, "  Requests:\t{} ok, {} errors", self.ok, self.errors);
        let _ = writeln!(
            o,
            "  Keys:\t{} over {} keys",
            self.key_dist_text(),
            self.key_space
        );
        let _ = writeln!(
            o,
            "  Client CPU:\t{:.3} secs ({:.1}% of one core)",
            self.client_cpu_secs, self.client_cpu_pct
        );
        if let Some(r) = self.cas_retries {
            let _ = writeln!(o, "  CAS retries:\t{r}");
        }
        if let Some(r) = self.rate {
            let _ = writeln!(
                o,
                "  Open loop:\t{r:.1} requests/sec target; latencies from each intended send time"
            );
        }
        if let Some(p) = self.puts_per_sec {
            let _ = writeln!(
                o,
                "  Puts/sec:\t{p:.4} (the figures above are the watch events')"
            );
        }
        if let (Some(f), Some(r)) = (self.server_wal_fsyncs, self.requests_per_fsync) {
            let _ = writeln!(o, "  Server WAL:\t{f} fsyncs, {r:.1} requests per fsync");
        }
        if self.ok > 0 {
            self.write_histogram(&mut o);
            let _ = writeln!(o, "\nLatency distribution:");
            for (p, us) in &self.distribution_us {
                let _ = writeln!(o, "  {p}% in {:.4} secs.", s(*us as f64));
            }
        }
        if !self.error_kinds.is_empty() {
            let _ = writeln!(o, "\nError distribution:");
            for (msg, n) in &self.error_kinds {
                let _ = writeln!(o, "  [{n}]\t{msg}");
            }
        }
        o
    }

    /// `uniform`, or `zipfian (theta 0.99)`.
    fn key_dist_text(&self) -> String {
        match self.zipf_theta {
            Some(theta) => format!("{} (theta {theta})", self.key_dist),
            None => self.key_dist.to_string(),
        }
    }

    fn write_histogram(&self, o: &mut String) {
        let _ = writeln!(o, "\nResponse time histogram:");
        let most = self
            .buckets_us
            .iter()
            .map(|b| b.1)
            .max()
            .unwrap_or(0)
            .max(1);
        for (upper_us, n) in &self.buckets_us {
            let bar = "∎".repeat((n * BAR_WIDTH_MAX / most) as usize);
            let _ = writeln!(o, "  {:.4} [{n}]\t|{bar}", *upper_us as f64 / 1e6);
        }
    }
}

/// Counts of successful requests in [`HISTOGRAM_BUCKETS`] equal-width
/// latency ranges from the fastest to the slowest, as etcd draws them: the
/// first bar is the fastest request alone.
fn buckets(rec: &Recorder) -> Vec<(u64, u64)> {
    let h = rec.latency_us();
    if h.is_empty() {
        return Vec::new();
    }
    let (lo, hi) = (h.min(), h.max());
    let width = ((hi - lo) / HISTOGRAM_BUCKETS).max(1);
    let mut out = vec![(lo, h.count_between(0, lo))];
    let mut prev = lo;
    for i in 1..=HISTOGRAM_BUCKETS {
        let upper = if i == HISTOGRAM_BUCKETS {
            hi
        } else {
            (lo + i * width).min(hi)
        };
        if upper <= prev {
            continue;
        }
        // count_between is inclusive at both ends, in histogram buckets.
        let n = h.count_between(prev + 1, upper);
        out.push((upper, n));
        prev = upper;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::args::Cli;
    use clap::Parser;

    fn cfg(workload: &str) -> Config {
        Cli::try_parse_from(["cairn-bench", workload, "--clients", "4", "--seed", "1"])
            .unwrap()
            .into_config()
            .unwrap()
    }

    fn recorder_1_to_1000_us() -> Recorder {
        let mut r = Recorder::new();
        for us in 1..=1000u64 {
            r.record_ok(Duration::from_micros(us));
        }
        r.record_error("boom");
        r
    }

    #[test]
    fn json_line_holds_the_promised_fields() {
        let s = Summary::new(
            &cfg("put"),
            &recorder_1_to_1000_us(),
            Duration::from_secs(2),
            Duration::from_millis(500),
        );
        let line = s.to_json_line();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in [
            "workload",
            "driver",
            "clients",
            "conns",
            "total",
            "errors",
            "secs",
            "ops_per_sec",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
            "mean_us",
            "client_cpu_secs",
        ] {
            assert!(v.get(field).is_some(), "missing {field} in {line}");
        }
        assert_eq!(v["workload"], "put");
        assert_eq!(v["driver"], "native");
        assert_eq!(v["clients"], 4);
        assert_eq!(v["conns"], 4);
        assert_eq!(v["total"], 1001);
        assert_eq!(v["ok"], 1000);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["ops_per_sec"], 500.0);
        assert_eq!(v["client_cpu_secs"], 0.5);
        assert_eq!(v["client_cpu_pct"], 25.0);
        assert_eq!(v["error_kinds"]["boom"], 1);
        assert!(v.get("cas_retries").is_none() && v.get("read_ratio").is_none());
        assert_eq!(v["key_dist"], "uniform");
        assert!(v.get("zipf_theta").is_none());
    }

    #[test]
    fn the_key_distribution_is_reported() {
        let zipf = Cli::try_parse_from(["cairn-bench", "put", "--key-dist", "zipfian"])
            .unwrap()
            .into_config()
            .unwrap();
        let s = Summary::new(
            &zipf,
            &recorder_1_to_1000_us(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let v: serde_json::Value = serde_json::from_str(&s.to_json_line()).unwrap();
        assert_eq!(
            (&v["key_dist"], &v["zipf_theta"]),
            (&"zipfian".into(), &0.99.into())
        );
        assert!(
            s.to_human()
                .contains("Keys:\tzipfian (theta 0.99) over 10000 keys"),
            "{}",
            s.to_human()
        );
        let u = Summary::new(
            &cfg("put"),
            &recorder_1_to_1000_us(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert!(u.to_human().contains("Keys:\tuniform over 10000 keys"));
    }

    #[test]
    fn percentiles_are_within_histogram_precision() {
        let s = Summary::new(
            &cfg("range"),
            &recorder_1_to_1000_us(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let near = |got: u64, want: u64| got.abs_diff(want) <= want / 500 + 1;
        assert!(near(s.p50_us, 500), "{}", s.p50_us);
        assert!(near(s.p90_us, 900), "{}", s.p90_us);
        assert!(near(s.p99_us, 990), "{}", s.p99_us);
        assert!(near(s.p999_us, 999), "{}", s.p999_us);
        assert!(near(s.max_us, 1000), "{}", s.max_us);
        assert_eq!(s.min_us, 1);
        assert!((s.mean_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn histogram_buckets_count_every_success_once() {
        let s = Summary::new(
            &cfg("put"),
            &recorder_1_to_1000_us(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        assert_eq!(s.buckets_us.iter().map(|b| b.1).sum::<u64>(), 1000);
        assert_eq!(s.buckets_us.last().unwrap().0, s.max_us);
    }

    #[test]
    fn human_report_reads_like_etcds() {
        let s = Summary::new(
            &cfg("txn-put"),
            &recorder_1_to_1000_us(),
            Duration::from_secs(1),
            Duration::ZERO,
        );
        let h = s.to_human();
        for want in [
            "Summary:",
            "Total:",
            "Slowest:",
            "Fastest:",
            "Average:",
            "Requests/sec:",
            "Response time histogram:",
            "Latency distribution:",
            "10% in",
            "99.9% in",
            "Error distribution:",
            "[1]\tboom",
            "CAS retries:",
        ] {
            assert!(h.contains(want), "missing {want:?} in\n{h}");
        }
    }

    #[test]
    fn a_run_without_successes_reports_zeros() {
        let mut r = Recorder::new();
        r.record_error("connection refused");
        let s = Summary::new(&cfg("put"), &r, Duration::from_secs(1), Duration::ZERO);
        assert_eq!((s.ok, s.errors, s.p99_us, s.max_us), (0, 1, 0, 0));
        assert_eq!(s.ops_per_sec, 0.0);
        assert!(!s.to_human().contains("Latency distribution"));
    }
}
