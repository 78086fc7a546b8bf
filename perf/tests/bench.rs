//! `cairn-bench` against a real `cairnd`: every workload completes its
//! requests without errors and reports them in one JSON line.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`).

mod common;

use cairn_core::testkit::{free_port, TestNode};
use common::{assert_compares_and_plots, assert_sane, bench, u};
use serde_json::Value;

fn bench_json(endpoint: &str, workload: &str) -> Value {
    let args = [
        workload,
        "--endpoints",
        endpoint,
        "--clients",
        "4",
        "--total",
        "200",
        "--key-space",
        "50",
        "--json",
    ];
    let (code, out, err) = bench(&args);
    assert_eq!(
        code, 0,
        "cairn-bench {args:?} exited {code}; stdout:\n{out}\nstderr:\n{err}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json prints exactly one line, got:\n{out}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

#[test]
fn every_workload_completes_without_errors_against_a_node() {
    let node = TestNode::start();
    for workload in ["put", "range", "txn-put", "mixed"] {
        let v = bench_json(&node.endpoint(), workload);
        assert_eq!(v["workload"], workload);
        assert_eq!(v["driver"], "native");
        assert_eq!((u(&v, "clients"), u(&v, "conns")), (4, 4));
        assert_eq!(
            (u(&v, "total"), u(&v, "ok"), u(&v, "errors")),
            (200, 200, 0),
            "{v}"
        );
        assert!(v["secs"].as_f64().unwrap() > 0.0);
        assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0);
        assert!(v["mean_us"].as_f64().unwrap() > 0.0);
        assert!(v["client_cpu_secs"].as_f64().unwrap() >= 0.0);
        let (p50, p90, p99, p999, max) = (
            u(&v, "p50_us"),
            u(&v, "p90_us"),
            u(&v, "p99_us"),
            u(&v, "p999_us"),
            u(&v, "max_us"),
        );
        assert!(
            0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
            "{v}"
        );
    }
}

#[test]
fn zipfian_key_choice_runs_put_and_range_against_a_node() {
    let node = TestNode::start();
    let ep = node.endpoint();
    for (workload, extra) in [("put", &[][..]), ("range", &["--prefill"][..])] {
        let mut args = vec![
            workload,
            "--endpoints",
            &ep,
            "--clients",
            "4",
            "--total",
            "300",
            "--key-space",
            "1000",
            "--key-dist",
            "zipfian",
            "--zipf-theta",
            "0.9",
            "--json",
        ];
        args.extend_from_slice(extra);
        let v = bench_json_args(&args);
        assert_sane(&v, workload, "native");
        assert_eq!(u(&v, "ok"), 300, "{v}");
        assert_eq!(
            (&v["key_dist"], &v["zipf_theta"]),
            (&"zipfian".into(), &0.9.into()),
            "{v}"
        );
    }
    // The human summary names the distribution too.
    let (code, out, err) = bench(&[
        "put",
        "--endpoints",
        &ep,
        "--total",
        "50",
        "--key-dist",
        "zipfian",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Keys:\tzipfian (theta 0.99) over 10000 keys"),
        "{out}"
    );
}

#[test]
fn txn_put_against_existing_keys_learns_their_revisions() {
    let node = TestNode::start();
    // The first run leaves every key written; the second starts from
    // revision 0 for each key, so its first txn per key must retry.
    bench_json(&node.endpoint(), "put");
    let v = bench_json(&node.endpoint(), "txn-put");
    assert_eq!(u(&v, "errors"), 0, "{v}");
    assert!(u(&v, "cas_retries") >= 1, "{v}");
}

#[test]
fn an_unreachable_endpoint_fails_at_start_with_a_clear_message() {
    let endpoint = format!("127.0.0.1:{}", free_port());
    let (code, out, err) = bench(&["put", "--endpoints", &endpoint, "--total", "10", "--json"]);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.is_empty(),
        "no report for a run that never started: {out}"
    );
    assert!(
        err.contains("cannot reach the server") && err.contains(&endpoint),
        "{err}"
    );
}

fn bench_json_args(args: &[&str]) -> Value {
    let (code, out, err) = bench(args);
    assert_eq!(code, 0, "cairn-bench {args:?} exited {code}:\n{out}\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[test]
fn lease_and_watch_workloads_complete_without_errors_against_a_node() {
    let node = TestNode::start();
    let ep = node.endpoint();
    for workload in ["lease-keepalive", "lease-storm"] {
        let v = bench_json_args(&[
            workload,
            "--endpoints",
            &ep,
            "--clients",
            "4",
            "--total",
            "200",
            "--key-space",
            "20",
            "--json",
        ]);
        assert_eq!(v["workload"], workload);
        assert_eq!((u(&v, "ok"), u(&v, "errors")), (200, 0), "{v}");
    }
    // 30 watchers on 10 keys: every put owes 3 events, and each arrives.
    let v = bench_json_args(&[
        "watch",
        "--endpoints",
        &ep,
        "--clients",
        "4",
        "--total",
        "100",
        "--key-space",
        "10",
        "--watchers",
        "30",
        "--val-size",
        "16",
        "--json",
    ]);
    assert_eq!(v["workload"], "watch");
    assert_eq!((u(&v, "ok"), u(&v, "errors")), (300, 0), "{v}");
    assert!(v["puts_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    // The timestamp needs 8 bytes of value.
    let (code, _, err) = bench(&["watch", "--endpoints", &ep, "--val-size", "4"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--val-size must be at least 8"), "{err}");
}

#[test]
fn hist_out_saves_runs_that_compare_side_by_side() {
    let node = TestNode::start();
    let ep = node.endpoint();
    let dir = cairn_core::testkit::test_dir("hist");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let data_dir = dir.display().to_string();
    for (file, clients) in [(&a, "1"), (&b, "4")] {
        let f = file.display().to_string();
        let (code, _, err) = bench(&[
            "put",
            "--endpoints",
            &ep,
            "--clients",
            clients,
            "--total",
            "200",
            "--hist-out",
            &f,
            "--data-dir",
            &data_dir,
            "--json",
        ]);
        assert_eq!(code, 0, "{err}");
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(saved["summary"]["ok"], 200, "{saved}");
        assert_eq!(
            saved["tps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .sum::<u64>(),
            200
        );
        assert!(saved["fingerprint"]["cores"].as_u64().unwrap() > 0);
        assert!(saved["fingerprint"]["fs"].is_string(), "{saved}");
    }
    let (af, bf) = (a.display().to_string(), b.display().to_string());
    assert_compares_and_plots(&dir, &[(&af, "native", 1), (&bf, "native", 4)]);
    // A file that is not a run is refused with its name.
    std::fs::write(&a, "{}").unwrap();
    // Another extension is refused before anything is read or drawn.
    let jpg = dir.join("runs.jpg").display().to_string();
    let (code, out, err) = bench(&["compare", "--plot", &jpg, &af, &bf]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains(".svg or .png") && out.is_empty(), "{err}");
    let (code, _, err) = bench(&["compare", &af]);
    assert_eq!(code, 1);
    assert!(err.contains("not a cairn-bench run file"), "{err}");
    cairn_core::testkit::remove_dir(&dir);
}

#[test]
fn an_open_loop_run_sends_at_its_rate() {
    let node = TestNode::start();
    let v = bench_json_args(&[
        "put",
        "--endpoints",
        &node.endpoint(),
        "--clients",
        "8",
        "--rate",
        "200",
        "--duration",
        "2",
        "--json",
    ]);
    assert_eq!(v["rate"], 200.0);
    let ok = u(&v, "ok");
    // 2 s at 200/s: 400 requests, give or take what the last moments hold.
    assert!((360..=401).contains(&ok), "{v}");
    assert_eq!(u(&v, "errors"), 0);
}
