//! `cairn-fsync` on real files (in a temp dir under the target dir): a tiny
//! sweep measures every case it was asked for, `--json` keeps the single
//! case's fields on top and adds every case, bad flags are usage errors,
//! and the profile file never outlives the run. No test asserts a speed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_perf::fsync::{is_tmpfs, run, CaseReport, FsyncConfig, Percentiles};
use serde_json::Value;

/// A fresh dir on a real file system, or `None` (and the test is skipped)
/// if the target dir is on tmpfs.
fn real_dir() -> Option<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-fsync-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir under the target dir");
    if is_tmpfs(dir.path()).expect("statfs") {
        eprintln!("skipped: the target dir is on tmpfs");
        return None;
    }
    Some(dir)
}

fn assert_empty(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the profile file is removed, found {left:?}"
    );
}

fn assert_ordered(what: &str, p: &Percentiles) {
    assert!(
        p.p50_us > 0 && p.p50_us <= p.p99_us && p.p99_us <= p.max_us,
        "{what}: {p:?}"
    );
}

fn assert_sane(c: &CaseReport) {
    assert!(
        c.ops > 0 && c.writes == c.ops * c.queue_depth as u64,
        "{c:?}"
    );
    assert!(c.ops_per_sec > 0.0 && c.mb_per_sec > 0.0, "{c:?}");
    assert_ordered(&format!("{} write+fdatasync", c.case), &c.total);
    assert_ordered(&format!("{} write", c.case), &c.write);
    assert_ordered(&format!("{} fdatasync", c.case), &c.fdatasync);
}

fn cairn_fsync(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cairn-fsync"))
        .args(args)
        .output()
        .expect("run cairn-fsync");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_tiny_sweep_measures_every_requested_case() {
    let Some(dir) = real_dir() else { return };
    let cfg = FsyncConfig {
        dir: dir.path().to_path_buf(),
        duration: Duration::from_millis(300),
        block_sizes_bytes: vec![4 << 10, 64 << 10],
        queue_depths: vec![1, 4],
        file_size_bytes: Some(1 << 20),
        ..FsyncConfig::default()
    };
    let r = run(&cfg).expect("sweep");
    let labels: Vec<&str> = r.cases.iter().map(|c| c.case.as_str()).collect();
    assert_eq!(
        labels,
        [
            "direct 4K qd1",
            "direct 64K qd1",
            "direct 4K qd4",
            "buffered 4K qd1",
            "buffered 64K qd1"
        ]
    );
    for c in &r.cases {
        assert_sane(c);
        assert!(c.ops >= 20, "every case runs its minimum: {c:?}");
    }
    assert_eq!(r.default.case, "direct 4K qd1");
    assert_eq!(r.verdict.p99_fdatasync_us, r.default.fdatasync.p99_us);
    assert_empty(dir.path());
}

#[test]
fn max_ops_caps_every_case() {
    let Some(dir) = real_dir() else { return };
    let cfg = FsyncConfig {
        dir: dir.path().to_path_buf(),
        duration: Duration::from_secs(30),
        max_ops_per_case: 5,
        block_sizes_bytes: vec![4 << 10, 16 << 10],
        queue_depths: vec![2],
        file_size_bytes: Some(64 << 10),
        ..FsyncConfig::default()
    };
    let r = run(&cfg).expect("sweep");
    assert_eq!(r.cases.len(), 5);
    assert!(r.cases.iter().all(|c| c.ops == 5), "{:?}", r.cases);
    assert_empty(dir.path());
}

#[test]
fn json_has_the_default_case_on_top_and_every_case_below() {
    let Some(dir) = real_dir() else { return };
    let d = dir.path().to_str().expect("utf-8 path");
    let args = [
        "--dir",
        d,
        "--duration",
        "0.5",
        "--block-sizes",
        "4K,64K",
        "--queue-depths",
        "1,4",
        "--file-size",
        "1M",
        "--json",
    ];
    let (code, out, err) = cairn_fsync(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.is_empty(),
        "no progress when stderr is not a terminal: {err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line, got:\n{out}");
    let v: Value = serde_json::from_str(lines[0]).expect("JSON");
    for k in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"] {
        assert!(v[k].is_number(), "{k} missing from {v}");
    }
    assert!(v["ops_per_sec"].as_f64().expect("ops_per_sec") > 0.0);
    assert!(v["mb_per_sec"].as_f64().expect("mb_per_sec") > 0.0);
    assert_eq!(v["pattern"], "preallocated");
    assert_eq!(v["block_size"], 4096);
    assert_eq!(v["case"], "direct 4K qd1");
    assert!(v["verdict"]["good"].is_boolean(), "{v}");
    assert!(v["verdict"]["text"].is_string(), "{v}");
    let cases = v["cases"].as_array().expect("cases array");
    assert_eq!(cases.len(), 5);
    for c in cases {
        let p = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("{k} in {c}"));
        assert!(p("ops") > 0 && p("p50_us") <= p("p99_us") && p("p99_us") <= p("max_us"));
        assert!(c["fdatasync"]["p99_us"].is_u64() && c["write"]["p99_us"].is_u64());
    }
    assert_empty(dir.path());
}

#[test]
fn default_only_profiles_the_wal_like_pattern_alone() {
    let Some(dir) = real_dir() else { return };
    let d = dir.path().to_str().expect("utf-8 path");
    let args = [
        "--dir",
        d,
        "--duration",
        "0.2",
        "--default-only",
        "--extend",
    ];
    let (code, out, err) = cairn_fsync(&args);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("WAL-like: direct 4K qd1 (extend"), "{out}");
    assert!(
        out.contains("fdatasync") && out.contains("etcd's 10 ms guidance"),
        "{out}"
    );
    assert!(!out.contains("buffered"), "only the default case: {out}");
    assert_empty(dir.path());
}

#[test]
fn a_block_size_off_the_4k_grid_exits_2_naming_it() {
    let (code, out, err) = cairn_fsync(&["--dir", ".", "--block-sizes", "4K,3K"]);
    assert_eq!(code, 2, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("3K") && err.contains("multiple of 4K"),
        "{err}"
    );
    let (code, _, err) = cairn_fsync(&["--dir", ".", "--duration", "-1"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_missing_directory_exits_1_saying_so() {
    let (code, _, err) = cairn_fsync(&["--dir", "/nonexistent-cairn-fsync-dir"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
}
