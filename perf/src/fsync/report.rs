//! What a sweep reports: per case, the latency of the writes, of the
//! fdatasync and of both together, plus throughput; for the WAL-like
//! default case, a verdict against etcd's guidance. Rendered as a human
//! table or as one JSON object whose top level is the default case (the
//! fields scripts read: `p50_us`, `p99_us`, `ops_per_sec`, ...).

use hdrhistogram::Histogram;
use serde::Serialize;

use super::case::{CaseSpec, IoKind, Layout};
use super::device::DeviceInfo;

/// etcd's guidance for the WAL's disk: p99 of fdatasync under 10 ms.
pub const WAL_P99_FDATASYNC_LIMIT_US: u64 = 10_000;
/// Fewer rounds than this make a p99 rough; the verdict says so.
const SAMPLES_FOR_A_FIRM_P99: u64 = 1000;

/// Latency percentiles of one phase, in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        Percentiles {
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: h.mean(),
        }
    }
}

/// One measured case. A round is one batch of `queue_depth` writes of
/// consecutive blocks followed by one fdatasync (a WAL flush); `ops` counts
/// rounds, `writes` the writes in them.
#[derive(Clone, Debug, Serialize)]
pub struct CaseReport {
    /// "direct 4K qd1", "buffered 64K qd1", ...
    pub case: String,
    pub io: IoKind,
    /// "preallocated" or "extend".
    pub pattern: Layout,
    pub block_size: usize,
    pub queue_depth: usize,
    pub ops: u64,
    pub writes: u64,
    pub secs: f64,
    pub ops_per_sec: f64,
    pub mb_per_sec: f64,
    /// write + fdatasync of a round, as a WAL flush sees it.
    #[serde(flatten)]
    pub total: Percentiles,
    /// Each write, from the batch's submission to its completion.
    pub write: Percentiles,
    pub fdatasync: Percentiles,
}

impl CaseReport {
    pub fn new(
        spec: &CaseSpec,
        ops: u64,
        secs: f64,
        [total, write, fdatasync]: [&Histogram<u64>; 3],
    ) -> CaseReport {
        let secs = secs.max(1e-9);
        let writes = ops * spec.queue_depth as u64;
        CaseReport {
            case: spec.label(),
            io: spec.io,
            pattern: spec.layout,
            block_size: spec.block_size_bytes,
            queue_depth: spec.queue_depth,
            ops,
            writes,
            secs,
            ops_per_sec: ops as f64 / secs,
            mb_per_sec: writes as f64 * spec.block_size_bytes as f64 / secs / 1e6,
            total: Percentiles::of(total),
            write: Percentiles::of(write),
            fdatasync: Percentiles::of(fdatasync),
        }
    }
}

/// The WAL-like default case against etcd's guidance.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// True if p99 fdatasync is under the limit.
    pub good: bool,
    pub p99_fdatasync_us: u64,
    pub limit_us: u64,
    pub samples: u64,
    pub text: String,
}

impl Verdict {
    pub fn of(default: &CaseReport) -> Verdict {
        let p99_us = default.fdatasync.p99_us;
        let good = p99_us < WAL_P99_FDATASYNC_LIMIT_US;
        let ms = p99_us as f64 / 1000.0;
        let mut text = if good {
            format!(
                "GOOD: p99 fdatasync {ms:.2} ms is under etcd's 10 ms guidance: \
                 this disk is good enough for a WAL"
            )
        } else {
            format!(
                "TOO SLOW: p99 fdatasync {ms:.2} ms is over etcd's 10 ms guidance: \
                 a leader stalls that long persisting its log, so under load heartbeats \
                 arrive late, followers time out and start leader elections, and writes \
                 stall; put the WAL on a faster disk (SSD/NVMe)"
            )
        };
        if default.ops < SAMPLES_FOR_A_FIRM_P99 {
            text += &format!(
                " (only {} fdatasyncs measured: the p99 is rough; a longer --duration firms it up)",
                default.ops
            );
        }
        Verdict {
            good,
            p99_fdatasync_us: p99_us,
            limit_us: WAL_P99_FDATASYNC_LIMIT_US,
            samples: default.ops,
            text,
        }
    }
}

/// A whole sweep. Serialized, the top level is the default case's fields
/// (so `--json` readers of the single-case tool keep working), plus the
/// verdict, the device and every case.
#[derive(Clone, Debug, Serialize)]
pub struct SweepReport {
    #[serde(flatten)]
    pub default: CaseReport,
    pub verdict: Verdict,
    pub device: DeviceInfo,
    pub dir: String,
    pub file_size_bytes: u64,
    pub budget_secs: f64,
    pub elapsed_secs: f64,
    /// Every case, the default first.
    pub cases: Vec<CaseReport>,
}

impl SweepReport {
    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("invariant: the report serializes")
    }
}

fn detail_line(name: &str, p: &Percentiles) -> String {
    format!(
        "  {name:<16} p50 {:>7}  p90 {:>7}  p99 {:>7}  p99.9 {:>7}  max {:>7}  mean {:>9.1} µs\n",
        p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.max_us, p.mean_us
    )
}

fn table_row(c: &CaseReport) -> String {
    format!(
        "{:<18} {:>7} {:>9.0} {:>8.2} | {:>6} {:>6} | {:>6} {:>6} {:>6} {:>7} {:>7} | {:>6} {:>6} {:>7}\n",
        c.case,
        c.ops,
        c.ops_per_sec,
        c.mb_per_sec,
        c.write.p50_us,
        c.write.p99_us,
        c.fdatasync.p50_us,
        c.fdatasync.p90_us,
        c.fdatasync.p99_us,
        c.fdatasync.p999_us,
        c.fdatasync.max_us,
        c.total.p50_us,
        c.total.p99_us,
        c.total.max_us,
    )
}

/// The human report: the device, the default case in detail, one table
/// row per case (latencies in µs), and the verdict.
pub fn render(r: &SweepReport) -> String {
    let d = &r.device;
    let mut s = format!(
        "{} on {} ({}{}), {:.1} s\n\n",
        r.dir,
        d.fs_name(),
        d.device.as_deref().unwrap_or("unknown device"),
        d.device_model
            .as_deref()
            .map(|m| format!(", {m}"))
            .unwrap_or_default(),
        r.elapsed_secs,
    );
    let c = &r.default;
    s += &format!(
        "WAL-like: {} ({} {} B writes + fdatasync): {} ops in {:.2} s ({:.0} ops/s, {:.2} MB/s)\n",
        c.case, c.pattern, c.block_size, c.ops, c.secs, c.ops_per_sec, c.mb_per_sec
    );
    s += &detail_line("write+fdatasync", &c.total);
    s += &detail_line("write", &c.write);
    s += &detail_line("fdatasync", &c.fdatasync);
    if r.cases.len() > 1 {
        s += &format!(
            "\n{:<18} {:>7} {:>9} {:>8} | {:^13} | {:^38} | {:^21}\n",
            "", "", "", "", "write µs", "fdatasync µs", "write+fdatasync µs"
        );
        s += &format!(
            "{:<18} {:>7} {:>9} {:>8} | {:>6} {:>6} | {:>6} {:>6} {:>6} {:>7} {:>7} | {:>6} {:>6} {:>7}\n",
            "case", "ops", "ops/s", "MB/s", "p50", "p99", "p50", "p90", "p99", "p99.9", "max", "p50",
            "p99", "max"
        );
        for c in &r.cases {
            s += &table_row(c);
        }
    }
    s += &format!("\n{}\n", r.verdict.text);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    fn case(sync_us: u64, ops: u64) -> CaseReport {
        let spec = CaseSpec::wal_like(4096, Layout::Preallocated);
        let (t, w, f) = (hist(&[sync_us + 50]), hist(&[50]), hist(&[sync_us]));
        CaseReport::new(&spec, ops, 1.0, [&t, &w, &f])
    }

    #[test]
    fn a_p99_fdatasync_under_10_ms_is_good_enough_for_a_wal() {
        let v = Verdict::of(&case(400, 5000));
        assert!(v.good);
        assert!(v.text.contains("good enough for a WAL"), "{}", v.text);
        assert!(!v.text.contains("rough"), "{}", v.text);
    }

    #[test]
    fn a_p99_fdatasync_over_10_ms_is_too_slow_and_says_why() {
        let v = Verdict::of(&case(25_000, 50));
        assert!(!v.good);
        assert!(v.text.starts_with("TOO SLOW"), "{}", v.text);
        assert!(v.text.contains("leader elections"), "{}", v.text);
        assert!(
            v.text.contains("rough"),
            "few samples are flagged: {}",
            v.text
        );
    }

    #[test]
    fn json_top_level_is_the_default_case() {
        let c = case(400, 5000);
        let r = SweepReport {
            verdict: Verdict::of(&c),
            default: c.clone(),
            device: DeviceInfo::default(),
            dir: "d".into(),
            file_size_bytes: 1 << 20,
            budget_secs: 1.0,
            elapsed_secs: 1.0,
            cases: vec![c],
        };
        let line = r.to_json();
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in [
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
            "mean_us",
            "ops_per_sec",
            "mb_per_sec",
            "block_size",
            "pattern",
        ] {
            assert!(v.get(k).is_some(), "{k} missing from {v}");
        }
        assert_eq!(v["pattern"], "preallocated");
        assert_eq!(v["verdict"]["good"], true);
        assert_eq!(v["cases"].as_array().unwrap().len(), 1);
        assert!(render(&r).contains("good enough for a WAL"));
    }
}
