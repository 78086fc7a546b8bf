//! Helpers of the integration tests: binaries run with a time bound.

#![allow(dead_code)] // each test file uses a part

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::testkit::bin_path;
use serde_json::Value;

/// Runs `program` with `args`; returns (exit code, stdout, stderr). Killed
/// (by pid) and reported as a failure if it runs longer than `limit`.
pub fn run_bounded(program: &Path, args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    // Read both pipes on threads so a chatty child cannot block on a full one.
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait child") {
            break st;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} still running after {limit:?}: killed; stderr:\n{}",
                program.display(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// Longest a short cairn-bench run of a test may take.
pub const BENCH_LIMIT: Duration = Duration::from_secs(60);

/// `cairn-bench ARGS`, bounded by [`BENCH_LIMIT`].
pub fn bench(args: &[&str]) -> (i32, String, String) {
    run_bounded(&bin_path("cairn-bench"), args, BENCH_LIMIT)
}

/// `cairn-bench ARGS` (with `--json`) that must succeed; its one JSON line.
pub fn bench_json(args: &[&str]) -> Value {
    let (code, out, err) = bench(args);
    assert_eq!(code, 0, "cairn-bench {args:?} exited {code}:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json prints exactly one line, got:\n{out}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

pub fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not an unsigned integer in {v}"))
}

/// The checks every successful run's report passes: requests done without
/// errors, percentiles in order, a positive rate, named as asked.
pub fn assert_sane(v: &Value, workload: &str, driver: &str) {
    assert_eq!(v["workload"], workload, "{v}");
    assert_eq!(v["driver"], driver, "{v}");
    assert!(u(v, "ok") > 0, "{v}");
    assert_eq!(u(v, "errors"), 0, "{v}");
    assert_eq!(u(v, "total"), u(v, "ok"), "{v}");
    assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["secs"].as_f64().unwrap() > 0.0, "{v}");
    let (p50, p90, p99, p999, max) = (
        u(v, "p50_us"),
        u(v, "p90_us"),
        u(v, "p99_us"),
        u(v, "p999_us"),
        u(v, "max_us"),
    );
    assert!(
        0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{v}"
    );
    assert!(v["key_dist"].is_string(), "{v}");
}
