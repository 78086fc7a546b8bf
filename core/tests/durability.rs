//! Acknowledged writes survive kill -9; the WAL's torn tail is repaired and
//! corruption before the tail is refused, with real processes and files.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, put_request};
use cairn_schemas::rpc;

fn segments(node: &TestNode) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(node.wal_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map(|e| e == "wal").unwrap_or(false))
        .collect();
    v.sort();
    v
}

/// Offset just past the last non-zero byte, rounded up to a 4 KiB block.
fn tail_offset(path: &PathBuf) -> u64 {
    let data = std::fs::read(path).unwrap();
    let last = data.iter().rposition(|&b| b != 0).unwrap_or(0) as u64;
    (last + 1).div_ceil(4096) * 4096
}

#[test]
fn acknowledged_writes_survive_kill9_under_concurrent_load() {
    let mut node = TestNode::start();
    let acked: Arc<Mutex<HashMap<String, (String, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..8 {
        let acked = acked.clone();
        let stop = stop.clone();
        let client = node.client();
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (k, v) = (format!("t{t}/k{i}"), format!("v{i}"));
                match client.put(put_request(k.as_bytes(), v.as_bytes())) {
                    Ok(r) => {
                        acked
                            .lock()
                            .unwrap()
                            .insert(k, (v, r.header.unwrap().revision));
                    }
                    Err(_) => break,
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    node.restart();
    let c = node.client();
    let mut max_rev = 0;
    for (k, (v, rev)) in &acked {
        let r = c.range(get_request(k.as_bytes())).unwrap();
        let kvs = r.kvs.unwrap_or_default();
        assert_eq!(kvs.len(), 1, "acknowledged {k} lost after kill -9");
        assert_eq!(kvs[0].value.as_deref(), Some(v.as_bytes()));
        assert_eq!(kvs[0].mod_revision, *rev, "{k} has the wrong revision");
        max_rev = max_rev.max(*rev);
    }
    // Revisions stay dense: nothing was applied twice or skipped.
    let all = c
        .range(rpc::RangeRequestT {
            range_end: Some(vec![0]),
            count_only: true,
            ..get_request(b"\0")
        })
        .unwrap();
    let rev = all.header.unwrap().revision;
    assert!(rev >= max_rev);
    assert_eq!(
        all.count,
        rev - 1,
        "every revision after 1 is one put of a distinct key"
    );
}

#[test]
fn torn_tail_is_truncated_and_the_node_starts() {
    let mut node = TestNode::start_with(&["--wal-segment-bytes", "1048576"]);
    let c = node.client();
    for i in 0..50 {
        c.put(put_request(format!("k{i}").as_bytes(), b"v"))
            .unwrap();
    }
    drop(c);
    node.kill9();
    let seg = segments(&node).pop().unwrap();
    let off = tail_offset(&seg);
    // A torn batch: a partial, garbage block where the next batch would be.
    let mut f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.seek(SeekFrom::Start(off)).unwrap();
    f.write_all(&[0xA5; 1000]).unwrap();
    f.sync_all().unwrap();
    node.restart();
    assert!(
        node.log().contains("torn"),
        "log should mention the torn tail:\n{}",
        node.log()
    );
    let c = node.client();
    for i in 0..50 {
        let r = c.range(get_request(format!("k{i}").as_bytes())).unwrap();
        assert_eq!(r.kvs.unwrap_or_default().len(), 1, "k{i} lost");
    }
    // And the log accepts new writes after the repaired tail.
    let r = c.put(put_request(b"after", b"x")).unwrap();
    assert_eq!(r.header.unwrap().revision, 52);
    drop(c);
    node.restart();
    let r = node.client().range(get_request(b"after")).unwrap();
    assert_eq!(r.kvs.unwrap_or_default().len(), 1);
}

#[test]
fn corruption_before_the_tail_is_refused_naming_file_and_offset() {
    let mut node = TestNode::start_with(&["--wal-segment-bytes", "1048576"]);
    let c = node.client();
    for i in 0..20 {
        c.put(put_request(format!("k{i}").as_bytes(), b"value"))
            .unwrap();
    }
    drop(c);
    node.kill9();
    let seg = segments(&node).remove(0);
    // Flip a byte inside the first batch (block 1; block 0 is the segment header).
    let mut data = std::fs::read(&seg).unwrap();
    data[4096 + 40] ^= 0xFF;
    std::fs::write(&seg, &data).unwrap();
    let status = node
        .restart_expect_exit(Duration::from_secs(20))
        .expect("cairnd must refuse to start");
    assert!(!status.success());
    let log = node.log();
    let name = seg.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        log.contains("corrupt") && log.contains(&name) && log.contains("offset"),
        "log:\n{log}"
    );
}

/// On tmpfs (no O_DIRECT) the node warns and falls back to buffered writes
/// + fdatasync instead of failing.
#[test]
fn tmpfs_data_dir_falls_back_to_buffered_wal_with_a_warning() {
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        return;
    }
    let mut node = TestNode::start();
    node.kill9();
    let dir = shm.join(format!("cairn-test-{}", std::process::id()));
    node.data_dir = dir.clone();
    node.restart();
    let c = node.client();
    c.put(put_request(b"k", b"v")).unwrap();
    drop(c);
    node.restart();
    assert_eq!(node.client().range(get_request(b"k")).unwrap().count, 1);
    assert!(
        node.log().contains("O_DIRECT"),
        "log should warn about O_DIRECT:\n{}",
        node.log()
    );
    node.kill9();
    let _ = std::fs::remove_dir_all(&dir);
}
