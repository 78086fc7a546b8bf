//! `cairn-bench --driver etcd` against a real etcd (when `etcd` is on
//! PATH): every workload completes without errors and reports sane
//! figures, a run saved with `--hist-out` compares with a cairnd run, and
//! the comparison plots.
//!
//! Needs the workspace binaries (`cargo build --workspace --bins`). Without
//! an etcd installed (perf/scripts/setup-etcd-driver.sh --no-build) the
//! test prints a note and passes.

#![cfg(feature = "etcd")]

mod common;

use cairn_core::testkit::{remove_dir, test_dir, TestNode};
use common::{assert_compares_and_plots, assert_sane, bench, bench_json, on_path, u, Etcd};

/// A short run of `workload` against `endpoint` with `extra` flags.
fn short_run(endpoint: &str, driver: &str, workload: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        workload,
        "--driver",
        driver,
        "--endpoints",
        endpoint,
        "--clients",
        "4",
        "--total",
        "200",
        "--seed",
        "11",
        "--json",
    ];
    if !extra.contains(&"--key-space") {
        args.extend(["--key-space", "50"]);
    }
    args.extend_from_slice(extra);
    let v = bench_json(&args);
    assert_sane(&v, workload, driver);
    v
}

#[test]
fn every_workload_runs_against_a_real_etcd_and_compares_with_cairnd() {
    let Some(binary) = on_path("etcd") else {
        println!(
            "skipped: no etcd on PATH (perf/scripts/setup-etcd-driver.sh --no-build installs one)"
        );
        return;
    };
    let etcd = Etcd::start(&binary);
    let ep = etcd.endpoint();
    let run = |workload: &str, extra: &[&str]| short_run(&ep, "etcd", workload, extra);

    let v = run("put", &[]);
    assert_eq!(
        (u(&v, "ok"), &v["key_dist"]),
        (200, &"uniform".into()),
        "{v}"
    );
    let v = run("put", &["--key-dist", "zipfian"]);
    assert_eq!(
        (&v["key_dist"], &v["zipf_theta"]),
        (&"zipfian".into(), &0.99.into()),
        "{v}"
    );
    for consistency in ["l", "s"] {
        let v = run("range", &["--prefill", "--consistency", consistency]);
        assert_eq!(v["consistency"], consistency, "{v}");
    }
    run(
        "range",
        &["--prefill", "--key-dist", "zipfian", "--zipf-theta", "0.8"],
    );
    // Retries come only from clients racing on one key (the prefill taught
    // every revision), so they are few.
    let v = run("txn-put", &["--prefill"]);
    assert!(u(&v, "cas_retries") < 100, "{v}");
    let v = run("mixed", &["--prefill", "--read-ratio", "0.5"]);
    assert_eq!(v["read_ratio"], 0.5, "{v}");
    // 30 watchers on 10 keys: each put owes 3 events, all delivered.
    let v = run(
        "watch",
        &["--key-space", "10", "--watchers", "30", "--val-size", "16"],
    );
    assert_eq!(u(&v, "ok"), 600, "{v}");
    assert!(v["puts_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    run(
        "lease-keepalive",
        &["--key-space", "20", "--key-dist", "zipfian"],
    );
    // A few short leases (etcd raises a TTL under its minimum, 2 s here).
    run("lease-storm", &["--key-space", "20", "--lease-ttl", "2"]);

    // One run of each server saved, compared and plotted.
    let node = TestNode::start();
    let dir = test_dir("etcd-compare");
    let (etcd_file, cairn_file) = (dir.join("etcd.json"), dir.join("cairn.json"));
    let (ef, cf) = (
        etcd_file.display().to_string(),
        cairn_file.display().to_string(),
    );
    for (driver, endpoint, file) in [
        ("etcd", ep.as_str(), &ef),
        ("native", &node.endpoint(), &cf),
    ] {
        short_run(endpoint, driver, "put", &["--hist-out", file]);
        let saved: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(saved["summary"]["driver"], driver, "{saved}");
        assert_eq!(saved["summary"]["key_dist"], "uniform", "{saved}");
        assert!(!saved["histogram_v2"].as_str().unwrap().is_empty());
    }
    assert_compares_and_plots(&dir, &[(&cf, "native", 4), (&ef, "etcd", 4)]);
    let png = dir.join("runs.png").display().to_string();
    let (code, _, err) = bench(&["compare", "--plot", &png, &cf, &ef]);
    if code == 0 {
        assert!(std::fs::read(&png)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n"));
    } else {
        assert!(err.contains("PNG output needs a TrueType font"), "{err}");
        println!("PNG not drawn: no TrueType font on this machine");
    }
    remove_dir(&dir);
}
