//! `--listen-metrics-urls`: /metrics in the Prometheus text format with
//! etcd's metric names, and /health with etcd's checks, from real
//! `cairnd` processes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn_core::testkit::{run_bin, TestCluster, TestNode};
use cairn_net::client::put_request;

/// `name{labels}` → value of every sample.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn scrape(n: &TestNode) -> HashMap<String, f64> {
    let (status, body) = n.http_get("/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{body}");
    samples(&body)
}

fn get(m: &HashMap<String, f64>, name: &str) -> f64 {
    *m.get(name)
        .unwrap_or_else(|| panic!("{name} missing; have {:?}", m.keys().collect::<Vec<_>>()))
}

/// Scrapes until `ok` holds (metrics that follow a batch commit lag it).
fn scrape_until(n: &TestNode, ok: impl Fn(&HashMap<String, f64>) -> bool) -> HashMap<String, f64> {
    let start = Instant::now();
    loop {
        let m = scrape(n);
        if ok(&m) || start.elapsed() > Duration::from_secs(10) {
            return m;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_node_serves_etcds_metrics_that_follow_its_writes() {
    let node = TestNode::start();
    let c = node.client();
    const PUTS: usize = 200;
    for i in 0..PUTS {
        c.put(put_request(format!("k{i}").as_bytes(), b"v"))
            .unwrap();
    }
    let m = scrape_until(&node, |m| {
        m.get("etcd_disk_backend_commit_duration_seconds_count")
            .is_some_and(|&v| v > 0.0)
    });
    assert_eq!(get(&m, "etcd_server_has_leader"), 1.0);
    assert_eq!(get(&m, "etcd_server_is_leader"), 1.0);
    assert_eq!(get(&m, "etcd_server_leader_changes_seen_total"), 1.0);
    assert!(get(&m, "etcd_server_proposals_applied_total") >= PUTS as f64);
    assert!(
        get(&m, "etcd_server_proposals_committed_total")
            >= get(&m, "etcd_server_proposals_applied_total")
    );
    assert_eq!(get(&m, "etcd_server_proposals_pending"), 0.0);
    assert_eq!(get(&m, "etcd_server_proposals_failed_total"), 0.0);
    // Each put was its own fsync'd batch (one client, one at a time).
    let fsyncs = get(&m, "etcd_disk_wal_fsync_duration_seconds_count");
    assert!(fsyncs >= PUTS as f64, "{fsyncs} fsyncs");
    assert_eq!(
        get(
            &m,
            "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"
        ),
        fsyncs
    );
    assert!(get(&m, "etcd_disk_wal_fsync_duration_seconds_sum") > 0.0);
    assert_eq!(get(&m, "cairn_wal_fsync_batch_entries_count"), fsyncs);
    assert!(get(&m, "cairn_wal_fsync_batch_entries_sum") >= PUTS as f64);
    assert!(get(&m, "etcd_disk_wal_write_bytes_total") >= 4096.0 * PUTS as f64);
    assert!(get(&m, "etcd_disk_backend_commit_duration_seconds_count") > 0.0);
    assert!(get(&m, "etcd_mvcc_db_total_size_in_bytes") > 0.0);
    assert!(get(&m, "etcd_mvcc_db_total_size_in_use_in_bytes") > 0.0);
    assert!(get(&m, "process_resident_memory_bytes") > 1e6);
    assert!(m
        .keys()
        .any(|k| k.starts_with("cairn_executor_cpu_seconds_total{")
            && k.contains("executor=\"main\"")));
    assert!(m
        .keys()
        .any(|k| k.starts_with("cairn_executor_cpu_seconds_total{")
            && k.contains("executor=\"backend\"")));

    assert_eq!(
        node.http_get("/health").unwrap(),
        (200, r#"{"health":"true"}"#.into())
    );
    assert_eq!(node.http_get("/nothing").unwrap().0, 404);
}

#[test]
fn nospace_makes_health_fail_with_the_alarm() {
    let node = TestNode::start_with(&["--quota-backend-bytes", "65536"]);
    let c = node.client();
    let value = vec![b'x'; 1024];
    for i in 0..1000 {
        if c.put(put_request(format!("k{i:04}").as_bytes(), &value))
            .is_err()
        {
            break;
        }
    }
    let start = Instant::now();
    let health = loop {
        let h = node.http_get("/health").unwrap();
        if h.0 != 200 || start.elapsed() > Duration::from_secs(5) {
            break h;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        health,
        (503, r#"{"health":"false","reason":"ALARM NOSPACE"}"#.into())
    );
    let m = scrape(&node);
    assert!(get(&m, "etcd_server_proposals_applied_total") > 10.0);
}

#[test]
fn the_leader_times_heartbeats_to_each_peer_and_survivors_see_the_change() {
    let mut c = TestCluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(20));
    let peers: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| format!("{:x}", c.member_ids[i]))
        .collect();
    // Heartbeats go out every 100 ms: a few seconds give each peer samples.
    let m = scrape_until(&c.nodes[leader], |m| {
        peers.iter().all(|p| {
            m.get(&format!(
                "etcd_network_peer_round_trip_time_seconds_count{{To=\"{p}\"}}"
            ))
            .is_some_and(|&n| n >= 3.0)
        })
    });
    for p in &peers {
        let key = format!("etcd_network_peer_round_trip_time_seconds_count{{To=\"{p}\"}}");
        assert!(get(&m, &key) >= 3.0, "{key}");
        let sum = get(
            &m,
            &format!("etcd_network_peer_round_trip_time_seconds_sum{{To=\"{p}\"}}"),
        );
        // Loopback round trips: well under a heartbeat interval each.
        assert!(
            sum / get(&m, &key) < 0.1,
            "mean RTT {}",
            sum / get(&m, &key)
        );
    }
    assert_eq!(get(&m, "etcd_server_is_leader"), 1.0);

    let follower = (leader + 1) % 3;
    let fm = scrape(&c.nodes[follower]);
    assert_eq!(get(&fm, "etcd_server_has_leader"), 1.0);
    assert_eq!(get(&fm, "etcd_server_is_leader"), 0.0);
    let before = get(&fm, "etcd_server_leader_changes_seen_total");
    assert_eq!(c.nodes[follower].http_get("/health").unwrap().0, 200);

    c.nodes[leader].kill9();
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    c.wait_leader_among(&survivors, Duration::from_secs(20));
    let fm = scrape_until(&c.nodes[follower], |m| {
        m.get("etcd_server_leader_changes_seen_total")
            .is_some_and(|&v| v > before)
            && m.get("etcd_server_has_leader") == Some(&1.0)
    });
    assert!(get(&fm, "etcd_server_leader_changes_seen_total") > before);
    assert_eq!(get(&fm, "etcd_server_has_leader"), 1.0);
}

#[test]
fn bad_metrics_urls_are_refused_at_start() {
    let (code, _, err) = run_bin(
        "cairnd",
        &["--listen-metrics-urls", "https://127.0.0.1:9"],
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--listen-metrics-urls") && err.contains("https"),
        "{err}"
    );

    // A port already taken: a clear error, not a node without metrics.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut n = TestNode::start_with(&[]);
    n.stop();
    n.metrics_port = port;
    let code = n.restart_expect_exit(Duration::from_secs(15));
    assert_eq!(code.and_then(|s| s.code()), Some(1));
    assert!(
        n.log()
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        n.log()
    );
}
