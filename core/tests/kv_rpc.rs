//! Every KV RPC against a real `cairnd` process.

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, prefix_range_end, put_request};
use cairn_net::ClientError;
use cairn_schemas::rpc;

#[test]
fn put_then_get_returns_value_with_revisions() {
    let node = TestNode::start();
    let c = node.client();
    let r = c.put(put_request(b"foo", b"bar")).unwrap();
    let h = r.header.unwrap();
    assert_eq!(h.revision, 2);
    assert_ne!(h.cluster_id, 0);
    assert_ne!(h.member_id, 0);
    // Term 1 holds the bootstrap membership; the first election makes 2.
    assert!(h.raft_term >= 2, "{}", h.raft_term);
    c.put(put_request(b"foo", b"baz")).unwrap();
    let g = c.range(get_request(b"foo")).unwrap();
    let kvs = g.kvs.unwrap();
    assert_eq!(kvs.len(), 1);
    assert_eq!(kvs[0].value.as_deref(), Some(&b"baz"[..]));
    assert_eq!(
        (kvs[0].create_revision, kvs[0].mod_revision, kvs[0].version),
        (2, 3, 2)
    );
    assert_eq!(g.count, 1);
    assert_eq!(g.header.unwrap().revision, 3);
}

#[test]
fn put_prev_kv_and_range_at_old_revision() {
    let node = TestNode::start();
    let c = node.client();
    c.put(put_request(b"k", b"v1")).unwrap();
    let r = c
        .put(rpc::PutRequestT {
            prev_kv: true,
            ..put_request(b"k", b"v2")
        })
        .unwrap();
    assert_eq!(r.prev_kv.unwrap().value.as_deref(), Some(&b"v1"[..]));
    let old = c
        .range(rpc::RangeRequestT {
            revision: 2,
            ..get_request(b"k")
        })
        .unwrap();
    assert_eq!(old.kvs.unwrap()[0].value.as_deref(), Some(&b"v1"[..]));
    let e = c
        .range(rpc::RangeRequestT {
            revision: 100,
            ..get_request(b"k")
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
}

#[test]
fn prefix_range_delete_and_count() {
    let node = TestNode::start();
    let c = node.client();
    for k in ["a/1", "a/2", "a/3", "b/1"] {
        c.put(put_request(k.as_bytes(), b"x")).unwrap();
    }
    let r = c
        .range(rpc::RangeRequestT {
            range_end: Some(prefix_range_end(b"a/")),
            limit: 2,
            ..get_request(b"a/")
        })
        .unwrap();
    assert_eq!(r.kvs.unwrap().len(), 2);
    assert!(r.more);
    assert_eq!(r.count, 3);
    let all = c
        .range(rpc::RangeRequestT {
            range_end: Some(vec![0]),
            count_only: true,
            ..get_request(b"\0")
        })
        .unwrap();
    assert_eq!(all.count, 4);
    let d = c
        .delete_range(rpc::DeleteRangeRequestT {
            key: Some(b"a/".to_vec()),
            range_end: Some(prefix_range_end(b"a/")),
            prev_kv: true,
        })
        .unwrap();
    assert_eq!(d.deleted, 3);
    assert_eq!(d.prev_kvs.unwrap().len(), 3);
    assert_eq!(
        d.header.unwrap().revision,
        6,
        "one revision for the whole delete"
    );
}

fn cmp_value(key: &[u8], value: &[u8]) -> rpc::CompareT {
    rpc::CompareT {
        key: Some(key.to_vec()),
        target: rpc::CompareTarget::Value,
        result: rpc::CompareResult::Equal,
        value: Some(value.to_vec()),
        ..Default::default()
    }
}

fn put_op(key: &[u8], value: &[u8]) -> rpc::RequestOpT {
    rpc::RequestOpT {
        op: rpc::RequestOpKindT::PutRequest(Box::new(put_request(key, value))),
    }
}

#[test]
fn txn_takes_success_or_failure_branch_with_one_revision() {
    let node = TestNode::start();
    let c = node.client();
    c.put(put_request(b"foo", b"bar")).unwrap();
    let t = c
        .txn(rpc::TxnRequestT {
            compare: Some(vec![cmp_value(b"foo", b"bar")]),
            success: Some(vec![put_op(b"foo", b"bar2"), put_op(b"other", b"x")]),
            failure: Some(vec![put_op(b"foo", b"bar3")]),
        })
        .unwrap();
    assert!(t.succeeded);
    assert_eq!(t.header.unwrap().revision, 3, "two puts, one revision");
    let t = c
        .txn(rpc::TxnRequestT {
            compare: Some(vec![cmp_value(b"foo", b"bar")]),
            success: Some(vec![put_op(b"foo", b"nope")]),
            failure: Some(vec![rpc::RequestOpT {
                op: rpc::RequestOpKindT::RangeRequest(Box::new(get_request(b"foo"))),
            }]),
        })
        .unwrap();
    assert!(!t.succeeded);
    let resp = &t.responses.unwrap()[0];
    match &resp.op {
        rpc::ResponseOpKindT::RangeResponse(r) => {
            assert_eq!(
                r.kvs.as_ref().unwrap()[0].value.as_deref(),
                Some(&b"bar2"[..])
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn txn_limits_are_enforced() {
    let node = TestNode::start_with(&["--max-txn-ops", "2"]);
    let c = node.client();
    let e = c
        .txn(rpc::TxnRequestT {
            success: Some(vec![
                put_op(b"a", b"1"),
                put_op(b"b", b"1"),
                put_op(b"c", b"1"),
            ]),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: too many operations in txn request"
    );
    let e = c
        .txn(rpc::TxnRequestT {
            success: Some(vec![put_op(b"a", b"1"), put_op(b"a", b"2")]),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
}

#[test]
fn compaction_refuses_older_reads() {
    let node = TestNode::start();
    let c = node.client();
    for i in 0..5 {
        c.put(put_request(b"k", format!("v{i}").as_bytes()))
            .unwrap();
    }
    c.compact(rpc::CompactionRequestT {
        revision: 4,
        physical: true,
    })
    .unwrap();
    let e = c
        .range(rpc::RangeRequestT {
            revision: 3,
            ..get_request(b"k")
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    match e {
        ClientError::Server {
            compact_revision, ..
        } => assert_eq!(compact_revision, 4),
        other => panic!("{other:?}"),
    }
    let ok = c
        .range(rpc::RangeRequestT {
            revision: 4,
            ..get_request(b"k")
        })
        .unwrap();
    assert_eq!(ok.kvs.unwrap()[0].value.as_deref(), Some(&b"v2"[..]));
    let e = c
        .compact(rpc::CompactionRequestT {
            revision: 3,
            physical: false,
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
}

#[test]
fn empty_key_is_refused() {
    let node = TestNode::start();
    let c = node.client();
    let e = c.put(put_request(b"", b"x")).unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: key is not provided");
    let e = c.range(get_request(b"")).unwrap_err();
    assert_eq!(e.to_string(), "etcdserver: key is not provided");
}

#[test]
fn status_reports_indexes() {
    let node = TestNode::start();
    let c = node.client();
    c.put(put_request(b"a", b"1")).unwrap();
    let s = c.status().unwrap();
    // The log also holds the bootstrap membership, the leader's empty
    // entry and the member's published attributes; a lone member has
    // applied all of it once the put is answered.
    assert!(s.raft_index >= 2, "{}", s.raft_index);
    assert_eq!(s.raft_applied_index, s.raft_index);
    assert_eq!(s.leader, s.header.as_ref().unwrap().member_id);
    assert!(s.db_size > 0);
    assert!(s.wal_entries >= 1 && s.wal_entries <= s.raft_index, "{s:?}");
    assert!(
        s.wal_fsyncs >= 1 && s.wal_fsyncs <= s.wal_entries + 1,
        "{s:?}"
    );
}

#[test]
fn periodic_auto_compaction_compacts_old_history() {
    let node = TestNode::start_with(&[
        "--auto-compaction-mode",
        "periodic",
        "--auto-compaction-retention",
        "1s",
    ]);
    let c = node.client();
    for i in 0..5 {
        c.put(put_request(b"k", format!("v{i}").as_bytes()))
            .unwrap();
    }
    // Revisions 2..=6 are written; after one retention the compactor
    // compacts to the revision it sampled one retention earlier (the first
    // sample may fall among the puts, so anything in 3..=6).
    let start = std::time::Instant::now();
    loop {
        match c.range(rpc::RangeRequestT {
            revision: 2,
            ..get_request(b"k")
        }) {
            Err(ClientError::Server {
                compact_revision, ..
            }) => {
                assert!((3..=6).contains(&compact_revision), "{compact_revision}");
                break;
            }
            Ok(_) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            other => panic!("history was not compacted: {other:?}"),
        }
    }
    // The latest value is kept.
    let r = c.range(get_request(b"k")).unwrap();
    assert_eq!(r.kvs.unwrap()[0].value.as_deref(), Some(&b"v4"[..]));
    assert!(node.log().contains("auto-compaction"), "{}", node.log());
}

/// Limits are checked before a request enters the log, never at replay.
#[test]
fn restart_with_a_smaller_max_txn_ops_keeps_acknowledged_txns() {
    let mut node = TestNode::start();
    let c = node.client();
    c.txn(rpc::TxnRequestT {
        success: Some(vec![
            put_op(b"a", b"1"),
            put_op(b"b", b"1"),
            put_op(b"c", b"1"),
        ]),
        ..Default::default()
    })
    .unwrap();
    drop(c);
    node.extra_args = vec!["--max-txn-ops".into(), "2".into()];
    node.restart();
    let c = node.client();
    for k in [b"a", b"b", b"c"] {
        assert_eq!(c.range(get_request(k)).unwrap().count, 1);
    }
}
