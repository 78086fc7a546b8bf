//! `--hist-out FILE`: a run saved for later comparison, and `cairn-bench
//! compare FILE...`.
//!
//! The file is one JSON object: the run's summary (the `--json` line: the
//! workload's parameters, among them `key_dist` and `zipf_theta`, and its
//! figures), the
//! whole latency histogram (hdrhistogram's V2 serialization, base64), the
//! requests completed in each second, and a fingerprint of the machine the
//! load generator ran on (CPU, cores, memory, kernel; with `--data-dir`,
//! the file system and block device of the server's data). Histograms from
//! different machines can then be compared percentile by percentile.

use std::path::Path;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::recorder::Recorder;

/// The machine a run was measured on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub cpu: String,
    pub cores: usize,
    pub mem_mib: u64,
    pub kernel: String,
    /// File system and block device of `--data-dir`, when given and known.
    pub fs: Option<String>,
    pub device: Option<String>,
    pub device_model: Option<String>,
}

/// One saved run.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunFile {
    pub summary: serde_json::Value,
    /// hdrhistogram V2, base64 (standard alphabet), in microseconds.
    pub histogram_v2: String,
    pub tps: Vec<u64>,
    pub fingerprint: Fingerprint,
}

fn first_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The file system and device of the mount holding `dir` (longest mount
/// point that is a prefix of its canonical path).
pub(crate) fn mount_of(dir: &Path) -> Option<(String, String)> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3).then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .filter(|(_, mnt, _)| dir.starts_with(mnt))
        .max_by_key(|(_, mnt, _)| mnt.len())
        .map(|(dev, _, fs)| (fs, dev))
}

/// The model a block device reports in sysfs (`/dev/nvme0n1p2` →
/// `/sys/block/nvme0n1/device/model`).
pub(crate) fn device_model(dev: &str) -> Option<String> {
    let name = dev.strip_prefix("/dev/")?;
    let disks = std::fs::read_dir("/sys/block").ok()?;
    let disk = disks
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|d| name.starts_with(d.as_str()))
        .max_by_key(|d| d.len())?;
    let model = std::fs::read_to_string(format!("/sys/block/{disk}/device/model"))
        .map(|m| m.trim().to_string())
        .ok()
        .filter(|m| !m.is_empty());
    // virtio disks have no model, only a PCI vendor id.
    model.or_else(|| {
        disk.starts_with("vd")
            .then(|| "virtio block device".to_string())
    })
}

impl Fingerprint {
    /// This machine; `data_dir` adds the file system and device under it.
    pub fn of_this_machine(data_dir: Option<&Path>) -> Fingerprint {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = first_field(&meminfo, "MemTotal")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0);
        let (fs, device) = match data_dir.and_then(mount_of) {
            Some((fs, dev)) => (Some(fs), Some(dev)),
            None => (None, None),
        };
        Fingerprint {
            cpu: first_field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_mib: mem_kib / 1024,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|k| k.trim().to_string())
                .unwrap_or_default(),
            device_model: device.as_deref().and_then(device_model),
            fs,
            device,
        }
    }
}

/// The histogram, V2-serialized and base64-encoded.
pub fn encode_histogram(h: &Histogram<u64>) -> Result<String, String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| format!("serializing the histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| format!("histogram does not decode: {e:?}"))
}

impl RunFile {
    pub fn new(
        summary_json: &str,
        rec: &Recorder,
        fingerprint: Fingerprint,
    ) -> Result<RunFile, String> {
        Ok(RunFile {
            summary: serde_json::from_str(summary_json).map_err(|e| e.to_string())?,
            histogram_v2: encode_histogram(rec.latency_us())?,
            tps: rec.per_second().to_vec(),
            fingerprint,
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let json = serde_json::to_string(self).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n").map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn load(path: &Path) -> Result<RunFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a cairn-bench run file: {e}", path.display()))
    }
}

/// Percentiles the comparison table shows.
const PERCENTILES: [(f64, &str); 5] = [
    (0.50, "p50"),
    (0.90, "p90"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (1.0, "max"),
];

/// `cairn-bench compare`: one row per run (named after its file), with
/// throughput, the percentiles from its full histogram, and its machine.
pub fn compare_table(runs: &[(String, RunFile)]) -> Result<String, String> {
    let mut out = String::from("| run | workload | keys | driver | clients | ops/s |");
    for (_, name) in PERCENTILES {
        out.push_str(&format!(" {name} µs |"));
    }
    out.push_str(" ×ops/s of the first | machine |\n|---|---|---|---|---|---|");
    out.push_str(&"---|".repeat(PERCENTILES.len()));
    out.push_str("---|---|\n");
    let first_ops = runs
        .first()
        .and_then(|(_, r)| r.summary["ops_per_sec"].as_f64())
        .unwrap_or(0.0);
    for (name, r) in runs {
        let h = decode_histogram(&r.histogram_v2).map_err(|e| format!("{name}: {e}"))?;
        let s = &r.summary;
        let ops = s["ops_per_sec"].as_f64().unwrap_or(0.0);
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {ops:.0} |",
            s["workload"].as_str().unwrap_or("?"),
            key_dist_cell(s),
            s["driver"].as_str().unwrap_or("?"),
            s["clients"]
        ));
        for (q, _) in PERCENTILES {
            let v = if h.is_empty() {
                0
            } else {
                h.value_at_quantile(q)
            };
            out.push_str(&format!(" {v} |"));
        }
        let ratio = if first_ops > 0.0 {
            ops / first_ops
        } else {
            0.0
        };
        let f = &r.fingerprint;
        out.push_str(&format!(
            " {ratio:.2} | {}, {} cores, {} MiB{} |\n",
            f.cpu,
            f.cores,
            f.mem_mib,
            f.device_model
                .as_ref()
                .map(|m| format!(", {m}"))
                .unwrap_or_default()
        ));
    }
    Ok(out)
}

/// `uniform`, or `zipfian 0.99`. Runs saved before `--key-dist` existed
/// were uniform.
fn key_dist_cell(summary: &serde_json::Value) -> String {
    let dist = summary["key_dist"].as_str().unwrap_or("uniform");
    match summary["zipf_theta"].as_f64() {
        Some(theta) => format!("{dist} {theta}"),
        None => dist.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn recorder(scale_us: u64) -> Recorder {
        let mut r = Recorder::new();
        for us in 1..=1000u64 {
            r.record_ok(Duration::from_micros(us * scale_us));
        }
        r
    }

    #[test]
    fn the_histogram_survives_the_round_trip_exactly() {
        let r = recorder(3);
        let back = decode_histogram(&encode_histogram(r.latency_us()).unwrap()).unwrap();
        assert_eq!(back.len(), r.latency_us().len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                back.value_at_quantile(q),
                r.latency_us().value_at_quantile(q)
            );
        }
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    #[test]
    fn a_run_file_saves_loads_and_compares() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let fp = Fingerprint::of_this_machine(Some(dir.path()));
        assert!(fp.cores > 0 && fp.mem_mib > 0, "{fp:?}");
        assert!(fp.fs.is_some(), "{fp:?}");
        let summary = |ops: f64, dist: &str| {
            format!(
                r#"{{"workload":"put","driver":"native","clients":4,"ops_per_sec":{ops}{dist}}}"#
            )
        };
        // a: saved before --key-dist existed; b: a zipfian run.
        let a = RunFile::new(&summary(1000.0, ""), &recorder(1), fp.clone()).unwrap();
        let zipf = r#","key_dist":"zipfian","zipf_theta":0.99"#;
        let b = RunFile::new(&summary(2500.0, zipf), &recorder(2), fp).unwrap();
        assert_eq!(b.summary["key_dist"], "zipfian");
        assert_eq!(a.tps.iter().sum::<u64>(), 1000);
        let path = dir.path().join("a.json");
        a.save(&path).unwrap();
        let a = RunFile::load(&path).unwrap();
        let table = compare_table(&[("a".into(), a), ("b".into(), b)]).unwrap();
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 4, "{table}");
        assert!(
            rows[2].starts_with(
                "| a | put | uniform | native | 4 | 1000 | 500 | 900 | 990 | 999 | 1000 | 1.00 |"
            ),
            "{table}"
        );
        assert!(
            rows[3].starts_with(
                "| b | put | zipfian 0.99 | native | 4 | 2500 | 1000 | 1800 | 1980 | 1998 | 2000 | 2.50 |"
            ),
            "{table}"
        );
        assert!(RunFile::load(&dir.path().join("missing.json")).is_err());
    }
}
