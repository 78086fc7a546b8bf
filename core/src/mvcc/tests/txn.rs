//! Transactions: compares, branches, revisions, validation.

use super::*;
use crate::mvcc::*;

#[test]
fn txn_has_one_revision_for_all_writes() {
    let mut s = Store::new();
    put(&mut s, "z", "0"); // 2
    let t = TxnReq {
        compare: vec![],
        success: vec![p("a", "1"), p("b", "1"), d("z", "")],
        failure: vec![],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    assert!(r.succeeded);
    assert_eq!(s.current_revision(), 3);
    assert_eq!(get_at(&s, "a", 0).unwrap().mod_revision, 3);
    assert_eq!(get_at(&s, "b", 0).unwrap().create_revision, 3);
    assert_eq!(get_at(&s, "z", 0), None);
    assert!(get_at(&s, "z", 2).is_some());
    let reads = TxnReq {
        compare: vec![],
        success: vec![g("a"), d("nope", "")],
        failure: vec![],
    };
    s.txn(&reads, MAX_OPS).unwrap();
    assert_eq!(
        s.current_revision(),
        3,
        "a txn that changes nothing does not bump"
    );
    s.assert_invariants();
}

#[test]
fn txn_compare_on_missing_key() {
    let mut s = Store::new();
    let run = |s: &mut Store, c: Compare<'_>| {
        s.txn(
            &TxnReq {
                compare: vec![c],
                success: vec![],
                failure: vec![],
            },
            MAX_OPS,
        )
        .unwrap()
        .succeeded
    };
    use CompareResult::*;
    assert!(
        !run(&mut s, cmp("a", Equal, CompareTarget::Value(b""))),
        "value compare fails"
    );
    assert!(!run(&mut s, cmp("a", NotEqual, CompareTarget::Value(b"x"))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Version(0))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Create(0))));
    assert!(run(&mut s, cmp("a", Less, CompareTarget::Mod(1))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Lease(0))));
    put(&mut s, "a", "v");
    assert!(
        run(&mut s, cmp("a", Greater, CompareTarget::Value(b"u"))),
        "bytewise"
    );
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Mod(2))));
    assert!(!run(&mut s, cmp("a", Equal, CompareTarget::Version(0))));
}

#[test]
fn txn_compare_with_range_applies_to_every_key() {
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    put(&mut s, "c", "2");
    let run = |s: &mut Store, end: &str, v: &[u8]| {
        let c = Compare {
            key: b"a",
            range_end: end.as_bytes(),
            result: CompareResult::Equal,
            target: CompareTarget::Value(v),
        };
        s.txn(
            &TxnReq {
                compare: vec![c],
                success: vec![],
                failure: vec![],
            },
            MAX_OPS,
        )
        .unwrap()
        .succeeded
    };
    assert!(run(&mut s, "c", b"1"));
    assert!(!run(&mut s, "d", b"1"));
    assert!(!run(&mut s, "\0", b"1"));
}

#[test]
fn txn_failure_branch_runs_when_a_compare_fails() {
    let mut s = Store::new();
    let t = TxnReq {
        compare: vec![
            cmp("a", CompareResult::Equal, CompareTarget::Version(0)),
            cmp("a", CompareResult::Equal, CompareTarget::Version(1)),
        ],
        success: vec![p("s", "1")],
        failure: vec![p("f", "1")],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    assert!(!r.succeeded);
    assert!(get_at(&s, "f", 0).is_some() && get_at(&s, "s", 0).is_none());
}

#[test]
fn txn_ops_see_earlier_writes() {
    let mut s = Store::new();
    put(&mut s, "b", "old"); // 2
    let t = TxnReq {
        compare: vec![],
        success: vec![
            g("a"),
            p("a", "1"),
            g("a"),
            d("b", ""),
            g("b"),
            RequestOp::Range(RangeReq {
                key: b"b",
                revision: 2,
                ..Default::default()
            }),
        ],
        failure: vec![],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    let ranges: Vec<&OwnedRangeResult> = r
        .responses
        .iter()
        .filter_map(|o| {
            if let OpResult::Range(rr) = o {
                Some(rr)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(ranges[0].count, 0);
    assert_eq!(ranges[1].kvs[0].value, b"1");
    assert_eq!(ranges[1].kvs[0].mod_revision, 3);
    assert_eq!(ranges[2].count, 0, "the delete is seen");
    assert_eq!(
        ranges[3].kvs[0].value, b"old",
        "an explicit revision reads history"
    );
    assert_eq!(s.current_revision(), 3);
}

#[test]
fn nested_txn_compares_see_the_state_before_the_txn() {
    let mut s = Store::new();
    let inner = TxnReq {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(0))],
        success: vec![p("inner-then", "1")],
        failure: vec![p("inner-else", "1")],
    };
    let t = TxnReq {
        compare: vec![],
        success: vec![p("a", "1"), RequestOp::Txn(inner)],
        failure: vec![],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    match &r.responses[1] {
        OpResult::Txn(n) => assert!(n.succeeded, "etcd's compareToPath runs before any write"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(get_at(&s, "inner-then", 0).is_some());
    assert_eq!(s.current_revision(), 2);
}

#[test]
fn txn_duplicate_put_is_refused() {
    let mut s = Store::new();
    let dup = |success: Vec<RequestOp<'static>>| {
        validate_txn(
            &TxnReq {
                compare: vec![],
                success,
                failure: vec![],
            },
            MAX_OPS,
        )
    };
    assert_eq!(
        dup(vec![p("a", "1"), p("a", "2")]),
        Err(MvccError::DuplicateKey)
    );
    assert_eq!(
        dup(vec![p("b", "1"), d("a", "c")]),
        Err(MvccError::DuplicateKey)
    );
    assert_eq!(
        dup(vec![d("a", "\0"), p("q", "1")]),
        Err(MvccError::DuplicateKey)
    );
    let nested = |s: Vec<RequestOp<'static>>, f| {
        RequestOp::Txn(TxnReq {
            compare: vec![],
            success: s,
            failure: f,
        })
    };
    assert_eq!(
        dup(vec![p("a", "1"), nested(vec![p("a", "2")], vec![])]),
        Err(MvccError::DuplicateKey)
    );
    assert_eq!(
        dup(vec![d("a", ""), nested(vec![], vec![p("a", "2")])]),
        Err(MvccError::DuplicateKey)
    );
    assert_eq!(
        dup(vec![nested(vec![p("a", "1")], vec![p("a", "2")])]),
        Ok(()),
        "exclusive branches"
    );
    assert_eq!(
        dup(vec![d("a", "c"), d("b", "")]),
        Ok(()),
        "overlapping deletes are fine"
    );
    assert_eq!(dup(vec![p("a", "1"), d("b", "")]), Ok(()));
    let t = TxnReq {
        compare: vec![],
        success: vec![p("a", "1")],
        failure: vec![p("a", "1")],
    };
    assert_eq!(
        validate_txn(&t, MAX_OPS),
        Ok(()),
        "success and failure are checked apart"
    );
    let bad = TxnReq {
        compare: vec![],
        success: vec![p("a", "1"), p("a", "2")],
        failure: vec![],
    };
    assert_eq!(s.txn(&bad, MAX_OPS), Err(MvccError::DuplicateKey));
    assert_eq!(s.current_revision(), 1);
    assert_eq!(
        MvccError::DuplicateKey.to_string(),
        "etcdserver: duplicate key given in txn request"
    );
}

#[test]
fn too_many_ops_is_refused() {
    let ops = |n| (0..n).map(|_| g("a")).collect::<Vec<_>>();
    let t = |c: usize, s: usize, f: usize| TxnReq {
        compare: (0..c)
            .map(|_| cmp("a", CompareResult::Equal, CompareTarget::Version(0)))
            .collect(),
        success: ops(s),
        failure: ops(f),
    };
    assert_eq!(validate_txn(&t(3, 3, 3), 3), Ok(()));
    assert_eq!(validate_txn(&t(4, 0, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(validate_txn(&t(0, 4, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(validate_txn(&t(0, 0, 4), 3), Err(MvccError::TooManyOps));
    let nested = TxnReq {
        compare: vec![],
        success: vec![RequestOp::Txn(t(0, 4, 0))],
        failure: vec![],
    };
    assert_eq!(validate_txn(&nested, 3), Err(MvccError::TooManyOps));
    assert_eq!(Store::new().txn(&t(0, 4, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(
        MvccError::TooManyOps.to_string(),
        "etcdserver: too many operations in txn request"
    );
}

#[test]
fn txn_empty_key_and_ignore_flags_are_checked() {
    let mut s = Store::new();
    let one = |op| TxnReq {
        compare: vec![],
        success: vec![op],
        failure: vec![],
    };
    assert_eq!(s.txn(&one(g("")), MAX_OPS), Err(MvccError::EmptyKey));
    assert_eq!(s.txn(&one(d("", "")), MAX_OPS), Err(MvccError::EmptyKey));
    let c = TxnReq {
        compare: vec![cmp("", CompareResult::Equal, CompareTarget::Version(0))],
        ..Default::default()
    };
    assert_eq!(s.txn(&c, MAX_OPS), Err(MvccError::EmptyKey));
    let iv = RequestOp::Put(PutReq {
        key: b"a",
        ignore_value: true,
        ..Default::default()
    });
    assert_eq!(
        s.txn(&one(iv.clone()), MAX_OPS),
        Err(MvccError::KeyNotFound)
    );
    // Only the taken branch is checked for a missing key.
    let untaken = TxnReq {
        compare: vec![],
        success: vec![],
        failure: vec![iv],
    };
    let r = s
        .txn(
            &TxnReq {
                success: vec![p("b", "1")],
                ..untaken
            },
            MAX_OPS,
        )
        .unwrap();
    assert!(r.succeeded);
    assert_eq!(s.current_revision(), 2);
}

#[test]
fn txn_range_at_future_or_compacted_revision_fails_the_whole_txn() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    s.compact(3).unwrap();
    let at = |rev| TxnReq {
        compare: vec![],
        success: vec![
            p("b", "1"),
            RequestOp::Range(RangeReq {
                key: b"a",
                revision: rev,
                ..Default::default()
            }),
        ],
        failure: vec![],
    };
    assert_eq!(s.txn(&at(4), MAX_OPS), Err(MvccError::FutureRevision));
    assert_eq!(
        s.txn(&at(2), MAX_OPS),
        Err(MvccError::Compacted {
            compact_revision: 3
        })
    );
    assert_eq!(s.current_revision(), 3);
    assert!(get_at(&s, "b", 0).is_none(), "nothing was written");
    s.txn(&at(3), MAX_OPS).unwrap();
    assert_eq!(s.current_revision(), 4);
}

#[test]
fn nested_put_then_sibling_delete_shares_one_revision() {
    // etcd's checkIntervals admits this order (a put in one nested txn, a
    // delete of the same key in a later sibling): both land in one revision.
    let mut s = Store::new();
    put(&mut s, "a", "0"); // 2
    let nested = |op| {
        RequestOp::Txn(TxnReq {
            compare: vec![],
            success: vec![op],
            failure: vec![],
        })
    };
    let t = TxnReq {
        compare: vec![],
        success: vec![nested(p("a", "1")), nested(d("a", "")), g("a")],
        failure: vec![],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    assert_eq!(s.current_revision(), 3);
    match &r.responses[2] {
        OpResult::Range(rr) => assert_eq!(rr.count, 0),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(get_at(&s, "a", 3), None);
    assert_eq!(get_at(&s, "a", 2).unwrap().value, b"0");
    s.assert_invariants();
    s.compact(3).unwrap();
    assert!(s.index.is_empty());
    s.assert_invariants();
}
