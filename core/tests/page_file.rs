//! The page file (`member/db`) behind a real node: restart replays only
//! the WAL after what the file absorbed, absorbed segments are released,
//! SIGTERM commits and exits cleanly, compaction and defragmentation
//! shrink the file, and the state (alarms included) survives all of it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, put_request};
use cairn_schemas::rpc;

/// Entries the last start replayed from the WAL (from its log line).
fn last_replayed(node: &TestNode) -> u64 {
    let log = node.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("replaying the WAL after the page file"))
        .unwrap_or_else(|| panic!("no replay line in the log:\n{log}"));
    let n = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("entries="))
        .expect("entries= field");
    n.parse().expect("entries count")
}

fn segments(node: &TestNode) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(node.wal_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn status(node: &TestNode) -> rpc::StatusResponseT {
    node.client().status().unwrap()
}

/// Waits until the page file durably holds everything applied (the
/// backend commits within --backend-batch-interval).
fn wait_absorbed(node: &TestNode) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let s = status(node);
        if s.db_size_in_use > 0 && start.elapsed() > Duration::from_millis(300) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn value(c: &cairn_net::BlockingClient, key: &str) -> Option<Vec<u8>> {
    let r = c.range(get_request(key.as_bytes())).unwrap();
    r.kvs
        .unwrap_or_default()
        .into_iter()
        .next()
        .and_then(|kv| kv.value.or(Some(Vec::new())))
}

#[test]
fn restart_replays_only_the_wal_after_the_page_file() {
    let mut node = TestNode::start_with(&["--backend-batch-interval", "20ms"]);
    let c = node.client();
    for i in 0..500 {
        c.put(put_request(format!("k{i:04}").as_bytes(), b"v"))
            .unwrap();
    }
    drop(c);
    wait_absorbed(&node);
    node.restart();
    assert!(
        last_replayed(&node) < 50,
        "replayed {} entries although the page file had absorbed them",
        last_replayed(&node)
    );
    let c = node.client();
    assert_eq!(c.range(get_request(b"k0499")).unwrap().count, 1);
    let all = rpc::RangeRequestT {
        key: Some(b"k".to_vec()),
        range_end: Some(b"l".to_vec()),
        count_only: true,
        ..Default::default()
    };
    assert_eq!(c.range(all).unwrap().count, 500);
    assert_eq!(
        c.range(get_request(b"k0000"))
            .unwrap()
            .header
            .unwrap()
            .revision,
        501
    );
}

#[test]
fn writes_acknowledged_before_kill9_survive_whether_or_not_absorbed() {
    // A long batch interval: the last writes are only in the WAL.
    let mut node = TestNode::start_with(&["--backend-batch-interval", "1h"]);
    let c = node.client();
    for i in 0..200 {
        c.put(put_request(format!("a{i}").as_bytes(), b"1"))
            .unwrap();
    }
    drop(c);
    node.restart();
    // 200 puts, plus the Raft entries around them (the bootstrap
    // membership, leader no-ops, the member's published attributes).
    let replayed = last_replayed(&node);
    assert!(
        (200..=210).contains(&replayed),
        "nothing was committed to the file, so all {replayed} entries replay"
    );
    // Now with commits after every 10 changes; kill right after the puts.
    node.extra_args = vec!["--backend-batch-limit".into(), "10".into()];
    node.restart();
    let c = node.client();
    for i in 0..200 {
        c.put(put_request(format!("b{i}").as_bytes(), b"2"))
            .unwrap();
    }
    drop(c);
    node.restart();
    let c = node.client();
    for i in 0..200 {
        assert_eq!(value(&c, &format!("a{i}")), Some(b"1".to_vec()));
        assert_eq!(value(&c, &format!("b{i}")), Some(b"2".to_vec()));
    }
}

#[test]
fn absorbed_wal_segments_are_released() {
    let mut node = TestNode::start_with(&[
        "--backend-batch-interval",
        "20ms",
        "--snapshot-count",
        "10",
        "--max-wals",
        "1",
    ]);
    let c = node.client();
    // Segments are at least 4 MiB (the batch bound): write ~20 MiB.
    let v = vec![b'x'; 256 << 10];
    for i in 0..80 {
        c.put(put_request(format!("big{}", i % 8).as_bytes(), &v))
            .unwrap();
    }
    wait_absorbed(&node);
    std::thread::sleep(Duration::from_millis(200));
    // One more commit after the rollovers triggers the release.
    c.put(put_request(b"tick", b"1")).unwrap();
    let start = Instant::now();
    while segments(&node).len() > 2 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        segments(&node).len() <= 2,
        "segments kept: {:?}",
        segments(&node)
    );
    drop(c);
    node.restart();
    let c = node.client();
    assert_eq!(value(&c, "big7").map(|v| v.len()), Some(256 << 10));
    assert_eq!(value(&c, "tick"), Some(b"1".to_vec()));
}

#[test]
fn sigterm_commits_the_applied_state_and_exits_zero() {
    let mut node = TestNode::start_with(&["--backend-batch-interval", "1h"]);
    let c = node.client();
    for i in 0..50 {
        c.put(put_request(format!("t{i}").as_bytes(), b"v"))
            .unwrap();
    }
    drop(c);
    let st = node.stop().expect("cairnd exits by itself on SIGTERM");
    assert!(st.success(), "exit status {st:?}\n{}", node.log());
    node.restart();
    assert_eq!(last_replayed(&node), 0, "SIGTERM left entries to replay");
    assert_eq!(node.client().range(get_request(b"t49")).unwrap().count, 1);
}

#[test]
fn compaction_and_defrag_shrink_the_file_and_survive_restart() {
    let mut node = TestNode::start_with(&["--backend-batch-interval", "20ms"]);
    let c = node.client();
    let v = vec![b'y'; 2048];
    let mut last = None;
    for i in 0..3000 {
        let r = c
            .put(put_request(format!("h{}", i % 50).as_bytes(), &v))
            .unwrap();
        last = r.header.map(|h| h.revision);
    }
    let rev = last.unwrap();
    wait_absorbed(&node);
    let before = std::fs::metadata(node.db_path()).unwrap().len();
    let in_use = status(&node).db_size_in_use;
    c.compact(rpc::CompactionRequestT {
        revision: rev,
        physical: true,
    })
    .unwrap();
    // A physical compaction answers once the file no longer holds the
    // compacted history.
    let in_use_after = status(&node).db_size_in_use;
    assert!(
        (in_use_after as f64) < 0.2 * in_use as f64,
        "in use {in_use} -> {in_use_after} bytes right after a physical compaction"
    );
    c.defragment().unwrap();
    let after = std::fs::metadata(node.db_path()).unwrap().len();
    assert!(
        (after as f64) < 0.2 * before as f64,
        "db {before} -> {after} bytes"
    );
    let s = status(&node);
    assert!(s.db_size as u64 <= after + (4 << 20));
    // History below the compaction point is gone, also after a restart
    // that reads the file (not the WAL: replay starts after it).
    drop(c);
    node.restart();
    let c = node.client();
    let old = rpc::RangeRequestT {
        key: Some(b"h1".to_vec()),
        revision: 2,
        ..Default::default()
    };
    let err = c.range(old).unwrap_err().to_string();
    assert!(err.contains("compacted"), "{err}");
    assert_eq!(value(&c, "h49").map(|v| v.len()), Some(2048));
    let count = rpc::RangeRequestT {
        key: Some(b"h".to_vec()),
        range_end: Some(b"i".to_vec()),
        count_only: true,
        ..Default::default()
    };
    assert_eq!(c.range(count).unwrap().count, 50);
    // Writes continue after a defrag and land in the new file.
    c.put(put_request(b"after", b"defrag")).unwrap();
    drop(c);
    wait_absorbed(&node);
    node.restart();
    assert_eq!(value(&node.client(), "after"), Some(b"defrag".to_vec()));
}

#[test]
fn alarms_live_in_the_page_file() {
    let mut node = TestNode::start_with(&[
        "--backend-batch-interval",
        "20ms",
        "--quota-backend-bytes",
        "20000",
        "--snapshot-count",
        "1",
        "--max-wals",
        "1",
    ]);
    let c = node.client();
    let v = vec![b'z'; 1000];
    let mut i = 0;
    while c.put(put_request(format!("q{i}").as_bytes(), &v)).is_ok() {
        i += 1;
        assert!(i < 1000, "quota never reached");
    }
    let start = Instant::now();
    while status(&node).errors.unwrap_or_default().is_empty()
        && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(c);
    assert!(node.stop().is_some_and(|s| s.success()));
    node.restart();
    assert_eq!(last_replayed(&node), 0);
    let errors = status(&node).errors.unwrap_or_default();
    assert!(
        errors.iter().any(|e| e.contains("NOSPACE")),
        "alarm lost: {errors:?}"
    );
}

#[test]
fn a_key_too_long_for_the_page_file_is_refused_before_the_log() {
    let mut node = TestNode::start_with(&["--backend-batch-interval", "20ms"]);
    let c = node.client();
    let long = vec![b'k'; 3000];
    let err = c.put(put_request(&long, b"v")).unwrap_err().to_string();
    assert!(err.contains("too large"), "{err}");
    let txn = rpc::TxnRequestT {
        success: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::PutRequest(Box::new(put_request(&long, b"v"))),
        }]),
        ..Default::default()
    };
    assert!(c.txn(txn).unwrap_err().to_string().contains("too large"));
    // The longest allowed key commits, survives a restart, and nothing
    // was logged for the refused ones.
    let max = vec![b'm'; cairn_core::node::MAX_KEY_BYTES];
    c.put(put_request(&max, b"ok")).unwrap();
    drop(c);
    wait_absorbed(&node);
    node.restart();
    assert_eq!(
        value(&node.client(), std::str::from_utf8(&max).unwrap()),
        Some(b"ok".to_vec())
    );
}

fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Values live in the page file, not in memory: once a commit holds them
/// the store drops its copies and reads fetch them back (prev_kv,
/// ignore_value and value compares included), before and after a restart.
#[test]
fn values_leave_memory_once_the_page_file_holds_them() {
    let mut node = TestNode::start_with(&[
        "--backend-batch-interval",
        "20ms",
        "--backend-cache-bytes",
        "1048576",
        "--backend-value-cache-bytes",
        "1048576",
    ]);
    let c = node.client();
    let v = |i: usize| vec![b'a' + (i % 26) as u8; 8192];
    for i in 0..8000 {
        c.put(put_request(format!("v{i:05}").as_bytes(), &v(i)))
            .unwrap();
    }
    // Two more flushes after the last commit evict everything.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(200));
        c.put(put_request(b"tick", b"1")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss = rss_bytes(node.pid().unwrap());
    assert!(
        rss < 40 << 20,
        "cairnd holds {} MiB after 64 MiB of values were committed",
        rss >> 20
    );
    let check = |c: &cairn_net::BlockingClient| {
        assert_eq!(value(c, "v00042"), Some(v(42)));
        let all = rpc::RangeRequestT {
            key: Some(b"v".to_vec()),
            range_end: Some(b"w".to_vec()),
            limit: 100,
            ..Default::default()
        };
        let kvs = c.range(all).unwrap().kvs.unwrap_or_default();
        assert_eq!(kvs.len(), 100);
        assert_eq!(kvs[99].value.as_deref(), Some(&v(99)[..]));
    };
    check(&c);
    // Value compare, prev_kv and ignore_value read stored values.
    let cmp = rpc::TxnRequestT {
        compare: Some(vec![rpc::CompareT {
            key: Some(b"v00007".to_vec()),
            result: rpc::CompareResult::Equal,
            target: rpc::CompareTarget::Value,
            value: Some(v(7)),
            ..Default::default()
        }]),
        success: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::PutRequest(Box::new(rpc::PutRequestT {
                key: Some(b"v00008".to_vec()),
                ignore_value: true,
                prev_kv: true,
                ..Default::default()
            })),
        }]),
        ..Default::default()
    };
    let t = c.txn(cmp).unwrap();
    assert!(t.succeeded, "value compare against a stored value");
    drop(c);
    node.restart();
    let c = node.client();
    check(&c);
    let r = c.range(get_request(b"v00008")).unwrap();
    let kv = &r.kvs.unwrap()[0];
    assert_eq!(kv.version, 2, "ignore_value put applied");
    assert_eq!(kv.value.as_deref(), Some(&v(8)[..]));
}
