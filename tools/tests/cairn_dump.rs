//! `cairn-dump` against the WAL and page file of a real `cairnd` killed
//! with SIGKILL: `verify` reports intact logs and page files, names the file
//! and offset of damage, warns of a torn tail; `wal` lists the records with
//! their requests decoded, `db` the page file's entries. (Snapshots and
//! hand-built page files: `snapshot_tools.rs`.)

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use cairn_core::testkit::{run_bin, test_dir, TestNode};
use cairn_net::client::{get_request, put_request};
use cairn_schemas::rpc;

const DUMP: &str = "cairn-dump";

fn dump(args: &[&str]) -> (i32, String, String) {
    run_bin(DUMP, args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 test path")
}

fn segments(wal_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// Every record of the WAL as `cairn-dump wal --json` lists it: the log
/// holds the client requests and Raft's own entries (the bootstrap
/// membership, leader no-ops, published attributes) and hard states.
fn records(node: &TestNode) -> Vec<serde_json::Value> {
    let (code, out, err) = dump(&["wal", s(&node.data_dir), "--json"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn is_request(r: &serde_json::Value) -> bool {
    r["kind"] == "entry" && r["request"]["type"] != "raft"
}

fn put_op(key: &[u8], value: &[u8]) -> rpc::RequestOpT {
    rpc::RequestOpT {
        op: rpc::RequestOpKindT::PutRequest(Box::new(put_request(key, value))),
    }
}

/// Starts a node with 1 MiB segments, writes one request of each kind
/// (each its own batch: one client, one request at a time), kills it with
/// SIGKILL. Returns the node and the number of requests written.
fn killed_node_with_history() -> (TestNode, u64) {
    let mut node = TestNode::start_with(&["--wal-segment-bytes", "1048576"]);
    let c = node.client();
    c.put(put_request(b"foo", b"bar")).unwrap();
    c.put(put_request(b"a1", b"1")).unwrap();
    c.put(put_request(b"\xffbin", b"12345")).unwrap();
    c.delete_range(rpc::DeleteRangeRequestT {
        key: Some(b"a".to_vec()),
        range_end: Some(b"b".to_vec()),
        prev_kv: false,
    })
    .unwrap();
    c.txn(rpc::TxnRequestT {
        compare: Some(vec![rpc::CompareT {
            key: Some(b"foo".to_vec()),
            target: rpc::CompareTarget::Value,
            result: rpc::CompareResult::Equal,
            value: Some(b"bar".to_vec()),
            ..Default::default()
        }]),
        success: Some(vec![put_op(b"t1", b"x"), put_op(b"t2", b"yy")]),
        failure: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::RangeRequest(Box::new(get_request(b"foo"))),
        }]),
    })
    .unwrap();
    c.compact(rpc::CompactionRequestT {
        revision: 3,
        physical: false,
    })
    .unwrap();
    // Reads are not logged.
    c.range(get_request(b"foo")).unwrap();
    drop(c);
    node.kill9();
    (node, 6)
}

#[test]
fn verify_reports_an_intact_log_from_any_path_form() {
    let (node, writes) = killed_node_with_history();
    let recs = records(&node);
    let entries: Vec<&serde_json::Value> = recs.iter().filter(|r| r["kind"] == "entry").collect();
    assert_eq!(recs.iter().filter(|r| is_request(r)).count() as u64, writes);
    let last = entries.last().unwrap()["index"].as_u64().unwrap();
    let wal = node.wal_dir();
    let seg = segments(&wal).remove(0);
    let member = node.data_dir.join("member");
    let summary = format!(
        "1 segment, {} records ({} entries), index 1..{last}: OK",
        recs.len(),
        entries.len()
    );
    for path in [&node.data_dir, &member, &wal, &seg] {
        let (code, out, err) = dump(&["verify", s(path)]);
        assert_eq!(code, 0, "verify {}: {out}{err}", path.display());
        assert!(out.contains(&summary), "verify {}:\n{out}", path.display());
        assert!(
            out.contains(&format!("WAL directory {}", wal.display())),
            "{out}"
        );
        assert!(
            out.contains("0000000000000000-0000000000000000.wal  seq=0 first_index=0 batches="),
            "{out}"
        );
        assert!(err.is_empty(), "{err}");
    }
}

#[test]
fn wal_lists_records_with_decoded_requests() {
    let (node, writes) = killed_node_with_history();
    let data_dir = s(&node.data_dir);
    let (code, out, err) = dump(&["wal", data_dir]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), records(&node).len(), "{out}");
    // The log starts with the bootstrap membership (this member, a voter).
    assert!(lines[0].starts_with("index=1 term=1 kind=entry "), "{out}");
    assert!(lines[0].contains(" member add-voter id="), "{out}");
    let requests: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" kind=entry ") && !l.ends_with(" empty") && !l.contains(" member "))
        .collect();
    assert_eq!(requests.len() as u64, writes, "{out}");
    let want = [
        r#"put key="foo" value_len=3"#,
        r#"put key="a1" value_len=1"#,
        r#"put key="\xffbin" value_len=5"#,
        r#"delete key="a" range_end="b""#,
        "txn compares=1 success=2 failure=1",
        "compaction revision=3",
    ];
    for (i, (line, request)) in requests.iter().zip(want).enumerate() {
        assert!(line.ends_with(request), "request {i}: {line}");
    }

    let (code, out, _) = dump(&["wal", data_dir, "--from", "3", "--limit", "2"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("index=3 "), "{out}");

    let recs = records(&node);
    assert_eq!(recs[0]["segment"], 0);
    assert_eq!(
        recs[0]["offset"],
        4096 + 64,
        "first record after the batch header"
    );
    let objects: Vec<&serde_json::Value> = recs.iter().filter(|r| is_request(r)).collect();
    assert_eq!(objects.len() as u64, writes);
    assert_eq!(objects[2]["request"]["key"], "\\xffbin");
    assert_eq!(objects[4]["request"]["type"], "txn");
    assert_eq!(objects[4]["request"]["success"][1]["key"], "t2");
    assert_eq!(objects[4]["request"]["failure"][0]["type"], "range");
    assert_eq!(objects[5]["request"]["revision"], 3);
}

#[test]
fn flipped_byte_in_the_first_batch_is_named_by_file_and_offset() {
    let (node, _) = killed_node_with_history();
    let seg = segments(&node.wal_dir()).remove(0);
    // Block 0 is the segment header; the first batch starts at 4096, its
    // first record header at 4096 + 64, that record's data 32 bytes later.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, 4096 + 64 + 32 + 5).unwrap();
    f.write_all_at(&[byte[0] ^ 0xFF], 4096 + 64 + 32 + 5)
        .unwrap();
    drop(f);

    let (code, out, err) = dump(&["verify", s(&node.data_dir)]);
    assert_eq!(code, 1, "{out}{err}");
    let want = format!(
        "WAL corrupt at {} offset 4160: record checksum mismatch",
        seg.display()
    );
    assert!(err.contains(&want), "stderr:\n{err}");
    assert!(
        err.contains("0 records check out before the damage"),
        "{err}"
    );
    assert!(out.contains("FAILED"), "{out}");

    // `wal` stops where the server would refuse to start, with the same error.
    let (code, out, err) = dump(&["wal", s(&node.wal_dir())]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&want), "{err}");

    // Damage in a later batch: the records before it are listed first.
    let (node, writes) = killed_node_with_history();
    let seg = segments(&node.wal_dir()).remove(0);
    // The batch of the first client request (each batch here is one
    // block); later batches follow it, so this is damage, not a torn tail.
    let recs = records(&node);
    let first_request = recs.iter().find(|r| is_request(r)).unwrap();
    let third_batch = first_request["offset"].as_u64().unwrap() / 4096 * 4096;
    let before = recs
        .iter()
        .filter(|r| r["offset"].as_u64().unwrap() < third_batch)
        .count();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(b"XXXXXXXX", third_batch).unwrap();
    drop(f);
    let (code, out, err) = dump(&["wal", s(&node.wal_dir())]);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(out.lines().count(), before, "{out}");
    assert!(
        err.contains(&format!(
            "offset {third_batch}: no batch header (bad magic) (a valid batch follows"
        )),
        "{err}"
    );
    let (code, _, err) = dump(&["verify", s(&node.wal_dir())]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("{before} records check out before the damage")),
        "{err}"
    );
    assert!(writes > 3);
}

#[test]
fn torn_tail_is_a_warning_unless_strict_and_is_left_untouched() {
    let (node, _) = killed_node_with_history();
    let seg = segments(&node.wal_dir()).pop().unwrap();
    let recs = records(&node);
    // One-block batches: the next batch goes at the block after the last.
    let tail = recs.last().unwrap()["offset"].as_u64().unwrap() / 4096 * 4096 + 4096;
    let writes = recs.len() as u64;
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.write_all_at(&[0xA5; 1000], tail).unwrap();
    drop(f);
    let before = std::fs::read(&seg).unwrap();

    let (code, out, err) = dump(&["verify", s(&node.data_dir)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        err.contains(&format!(
            "warning: torn tail in {} at offset {tail}",
            seg.display()
        )),
        "{err}"
    );
    assert!(out.contains(&format!("{writes} records")), "{out}");
    assert!(out.contains("OK (torn tail"), "{out}");

    let (code, _, err) = dump(&["verify", "--strict", s(&node.data_dir)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("torn tail"), "{err}");

    let (code, out, err) = dump(&["wal", s(&node.data_dir)]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count() as u64, writes);
    assert!(err.contains("torn tail"), "{err}");

    assert!(
        std::fs::read(&seg).unwrap() == before,
        "cairn-dump must never write"
    );
}

#[test]
fn verify_of_a_data_dir_checks_its_page_file_too() {
    let (node, _) = killed_node_with_history();
    let db = node.data_dir.join("member").join("db");
    assert!(db.is_file(), "the node keeps member/db");
    let (code, out, err) = dump(&["verify", s(&node.data_dir)]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("\npage file {}\n", db.display())),
        "{out}"
    );
    assert!(out.contains("  keyspace \"key\": entries="), "{out}");
    assert_eq!(out.matches(": OK\n").count(), 2, "WAL and page file: {out}");

    // The page file alone, and its entries: what was applied before the kill.
    let (code, out, err) = dump(&["verify", s(&db)]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = dump(&["db", s(&node.data_dir), "--keyspace", "meta", "--json"]);
    assert_eq!(code, 0, "{err}");
    let meta: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let layout = meta
        .iter()
        .find(|m| m["name"] == "layout_version")
        .expect("layout_version");
    assert_eq!(layout["value"], 1);

    // Cut to its first page: the meta names pages the file no longer holds.
    let copy = node.data_dir.join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    f.set_len(4096).unwrap();
    drop(f);
    let (code, _, err) = dump(&["verify", s(&copy)]);
    assert_eq!(code, 1);
    assert!(err.contains(&copy.display().to_string()), "{err}");
}

#[test]
fn missing_or_unrecognised_paths_exit_2() {
    let dir = test_dir("dump-paths");
    let (code, _, err) = dump(&["verify", s(&dir.join("nope"))]);
    assert_eq!(code, 2);
    assert!(err.contains("no such file or directory"), "{err}");

    let (code, _, err) = dump(&["verify", s(&dir)]);
    assert_eq!(code, 2);
    assert!(err.contains("not a Cairn data dir"), "{err}");

    let junk = dir.join("junk.bin");
    std::fs::write(&junk, b"not a segment").unwrap();
    let (code, _, err) = dump(&["wal", s(&junk)]);
    assert_eq!(code, 2);
    assert!(err.contains("not a Cairn file"), "{err}");

    // Named like a page file but not one: damage (exit 1), not usage.
    std::fs::create_dir_all(dir.join("member")).unwrap();
    let db = dir.join("member").join("db");
    std::fs::write(&db, b"pages").unwrap();
    let (code, _, err) = dump(&["verify", s(&db)]);
    assert_eq!(code, 1);
    assert!(err.contains("has no valid meta page"), "{err}");
    let (code, _, err) = dump(&["wal", s(&db)]);
    assert_eq!(code, 2);
    assert!(err.contains("a page file, not a WAL"), "{err}");

    let (code, _, err) = dump(&["verify"]);
    assert_eq!(code, 2, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
