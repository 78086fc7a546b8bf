//! The online maintenance commands against a real node: `cairnctl snapshot
//! save` (a consistent, verifiable snapshot while writes go on),
//! `snapshot status` / `restore` of what it saved, `cairnctl defrag`
//! (shrinks the page file, the node keeps serving), and `cairn-dump
//! verify` of a node's page file after a clean stop.
//! Build first: `cargo build --workspace --bins`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_core::testkit::{run_bin, test_dir, TestNode};
use cairn_net::client::{get_request, put_request};
use cairn_schemas::rpc;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

fn ctl(node: &TestNode, args: &[&str]) -> (i32, String, String) {
    let ep = node.endpoint();
    let mut a = vec!["--endpoints", &ep];
    a.extend_from_slice(args);
    run_bin("cairnctl", &a, None)
}

#[test]
fn snapshot_save_under_writes_then_status_and_restore_serve_it() {
    let mut node = TestNode::start();
    let c = node.client();
    for i in 0..2000 {
        c.put(put_request(format!("s{i:05}").as_bytes(), &[b'v'; 100]))
            .unwrap();
    }
    // Writers keep going while the snapshot is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, c) = (stop.clone(), node.client());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                c.put(put_request(format!("w{n}").as_bytes(), b"x"))
                    .unwrap();
                n += 1;
            }
            n
        })
    };
    let dir = test_dir("snap-save");
    let snap = dir.join("saved.db");
    let (code, out, err) = ctl(&node, &["snapshot", "save", s(&snap)]);
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("Snapshot saved at {}\n", s(&snap)));
    assert!(!dir.join("saved.db.part").exists());
    assert!(written > 0);

    let (code, out, err) = run_bin(
        "cairnctl",
        &["snapshot", "status", s(&snap), "-w", "json"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rev = v["revision"].as_i64().unwrap();
    assert!(rev > 2000, "snapshot revision {rev}");
    assert!(v["totalKey"].as_u64().unwrap() >= 2000);
    let (code, _, err) = run_bin("cairn-dump", &["verify", s(&snap)], None);
    assert_eq!(code, 0, "{err}");
    // The server removed its copy after the last chunk.
    let snap_dir = node.data_dir.join("member").join("snap");
    assert_eq!(std::fs::read_dir(&snap_dir).unwrap().count(), 0);

    // Restore into a new data dir and serve it from another node.
    drop(c);
    node.kill9();
    let mut other = TestNode::start();
    other.kill9();
    std::fs::remove_dir_all(&other.data_dir).unwrap();
    let peer = format!("http://127.0.0.1:{}", other.peer_port);
    let (code, _, err) = run_bin(
        "cairnctl",
        &[
            "snapshot",
            "restore",
            s(&snap),
            "--data-dir",
            s(&other.data_dir),
            "--name",
            &other.name,
            "--initial-cluster",
            &format!("{}={peer}", other.name),
            "--initial-advertise-peer-urls",
            &peer,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    other.restart();
    let c = other.client();
    let r = c.range(get_request(b"s01999")).unwrap();
    assert_eq!(
        r.header.unwrap().revision,
        rev,
        "restored at the snapshot's revision"
    );
    assert_eq!(
        r.kvs.unwrap_or_default()[0].value.as_deref(),
        Some(&[b'v'; 100][..])
    );
    // Writes continue after the snapshot's revision.
    let p = c.put(put_request(b"after", b"restore")).unwrap();
    assert_eq!(p.header.unwrap().revision, rev + 1);
}

#[test]
fn snapshot_save_errors_are_clear() {
    let node = TestNode::start();
    let dir = test_dir("snap-save-err");
    let (code, _, err) = ctl(&node, &["snapshot", "save"]);
    assert_ne!(code, 0);
    assert!(err.contains("snapshot save expects one argument"), "{err}");
    let ep = node.endpoint();
    let two = format!("{ep},{ep}");
    let f = dir.join("x.db");
    let (code, _, err) = run_bin(
        "cairnctl",
        &["--endpoints", &two, "snapshot", "save", s(&f)],
        None,
    );
    assert_ne!(code, 0);
    assert!(err.contains("one selected node"), "{err}");
    let (code, _, err) = ctl(&node, &["snapshot", "save", "/nonexistent-dir/x.db"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent-dir/x.db.part"), "{err}");
}

#[test]
fn defrag_shrinks_the_page_file_while_serving_and_a_clean_stop_verifies() {
    let mut node = TestNode::start_with(&["--backend-batch-interval", "20ms"]);
    let c = node.client();
    let v = vec![b'd'; 1024];
    let mut rev = 0;
    for i in 0..4000 {
        let r = c
            .put(put_request(format!("d{}", i % 100).as_bytes(), &v))
            .unwrap();
        rev = r.header.unwrap().revision;
    }
    c.compact(rpc::CompactionRequestT {
        revision: rev,
        physical: true,
    })
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let db = node.db_path();
    let before = std::fs::metadata(&db).unwrap().len();
    let (code, out, err) = ctl(&node, &["defrag"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Finished defragmenting etcd member[{}]\n", node.endpoint())
    );
    let after = std::fs::metadata(&db).unwrap().len();
    assert!(
        (after as f64) < 0.5 * before as f64,
        "db {before} -> {after}"
    );
    assert_eq!(c.range(get_request(b"d99")).unwrap().count, 1);
    c.put(put_request(b"still", b"writable")).unwrap();
    drop(c);
    assert!(node.stop().is_some_and(|st| st.success()));
    let (code, out, err) = run_bin("cairn-dump", &["verify", s(&db)], None);
    assert_eq!(code, 0, "{out}{err}");
    // An unreachable endpoint: etcdctl's failure line, exit 1.
    let (code, _, err) = ctl(&node, &["defrag"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Failed to defragment etcd member["),
        "{err}"
    );
}
