//! Unit tests: one per rule of the module docs, named after the property.

use super::*;

const MAX_OPS: usize = 128;

fn put(s: &mut Store, k: &str, v: &str) -> PutResult {
    s.put(&PutReq { key: k.as_bytes(), value: v.as_bytes(), ..Default::default() }).unwrap()
}

fn del(s: &mut Store, k: &str, end: &str) -> DeleteResult {
    s.delete_range(&DeleteRangeReq { key: k.as_bytes(), range_end: end.as_bytes(), prev_kv: true })
        .unwrap()
}

fn get_at(s: &Store, k: &str, rev: i64) -> Option<KeyValue> {
    let r = s.range(&RangeReq { key: k.as_bytes(), revision: rev, ..Default::default() }).unwrap();
    r.kvs.first().map(KvRef::to_key_value)
}

fn keys(r: &RangeResult<'_>) -> Vec<String> {
    r.kvs.iter().map(|kv| String::from_utf8(kv.key.to_vec()).unwrap()).collect()
}

fn rq<'a>(k: &'a str, end: &'a str) -> RangeReq<'a> {
    RangeReq { key: k.as_bytes(), range_end: end.as_bytes(), ..Default::default() }
}

fn p<'a>(k: &'a str, v: &'a str) -> RequestOp<'a> {
    RequestOp::Put(PutReq { key: k.as_bytes(), value: v.as_bytes(), ..Default::default() })
}

fn d<'a>(k: &'a str, end: &'a str) -> RequestOp<'a> {
    RequestOp::DeleteRange(DeleteRangeReq { key: k.as_bytes(), range_end: end.as_bytes(), prev_kv: false })
}

fn g(k: &str) -> RequestOp<'_> {
    RequestOp::Range(RangeReq { key: k.as_bytes(), ..Default::default() })
}

fn cmp<'a>(k: &'a str, result: CompareResult, target: CompareTarget<'a>) -> Compare<'a> {
    Compare { key: k.as_bytes(), range_end: b"", result, target }
}

#[test]
fn revision_starts_at_one_and_bumps_once_per_write() {
    let mut s = Store::new();
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.compact_revision(), 0);
    put(&mut s, "a", "1");
    assert_eq!(s.current_revision(), 2);
    put(&mut s, "b", "1");
    assert_eq!(s.current_revision(), 3);
    s.range(&rq("a", "\0")).unwrap();
    assert_eq!(s.current_revision(), 3, "reads do not bump");
    assert_eq!(del(&mut s, "a", "c").deleted, 2);
    assert_eq!(s.current_revision(), 4, "one revision for a multi-key delete");
    assert_eq!(del(&mut s, "a", "c").deleted, 0);
    assert_eq!(s.current_revision(), 4, "a delete that deletes nothing does not bump");
    s.assert_invariants();
}

#[test]
fn put_tracks_create_mod_version_and_prev_kv() {
    let mut s = Store::new();
    assert_eq!(put(&mut s, "a", "1").prev_kv, None);
    let r = s
        .put(&PutReq { key: b"a", value: b"2", lease: 7, prev_kv: true, ..Default::default() })
        .unwrap();
    let prev = r.prev_kv.unwrap();
    assert_eq!((prev.value.as_slice(), prev.version, prev.mod_revision), (&b"1"[..], 1, 2));
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!(
        kv,
        KeyValue { key: b"a".to_vec(), create_revision: 2, mod_revision: 3, version: 2, value: b"2".to_vec(), lease: 7 }
    );
}

#[test]
fn delete_leaves_tombstone_readable_at_old_revision() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // rev 2
    let r = del(&mut s, "a", ""); // rev 3
    assert_eq!(r.deleted, 1);
    assert_eq!(r.prev_kvs[0].value, b"1");
    assert_eq!(get_at(&s, "a", 0), None);
    assert_eq!(get_at(&s, "a", 2).unwrap().value, b"1");
    assert_eq!(s.key_count(), 0);
    s.assert_invariants();
}

#[test]
fn put_after_delete_starts_new_generation() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    del(&mut s, "a", ""); // 4
    put(&mut s, "a", "3"); // 5
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (5, 5, 1));
    let old = get_at(&s, "a", 3).unwrap();
    assert_eq!((old.create_revision, old.mod_revision, old.version), (2, 3, 2));
    s.assert_invariants();
}

#[test]
fn empty_key_is_refused() {
    let mut s = Store::new();
    assert_eq!(s.put(&PutReq::default()), Err(MvccError::EmptyKey));
    assert_eq!(s.range(&RangeReq::default()).unwrap_err(), MvccError::EmptyKey);
    assert_eq!(s.delete_range(&DeleteRangeReq::default()), Err(MvccError::EmptyKey));
    assert_eq!(MvccError::EmptyKey.to_string(), "etcdserver: key is not provided");
    assert_eq!(s.current_revision(), 1);
}

#[test]
fn single_key_and_half_open_ranges() {
    let mut s = Store::new();
    for k in ["a", "b", "c", "d"] {
        put(&mut s, k, k);
    }
    assert_eq!(keys(&s.range(&rq("b", "")).unwrap()), ["b"]);
    assert_eq!(keys(&s.range(&rq("b", "d")).unwrap()), ["b", "c"]);
    assert!(s.range(&rq("d", "b")).unwrap().kvs.is_empty(), "end <= key is empty");
}

#[test]
fn range_from_key_with_zero_range_end() {
    let mut s = Store::new();
    for k in ["a", "b", "c"] {
        put(&mut s, k, k);
    }
    assert_eq!(keys(&s.range(&rq("b", "\0")).unwrap()), ["b", "c"]);
    assert_eq!(keys(&s.range(&rq("\0", "\0")).unwrap()), ["a", "b", "c"], "all keys");
    assert_eq!(del(&mut s, "b", "\0").deleted, 2);
    assert_eq!(keys(&s.range(&rq("\0", "\0")).unwrap()), ["a"]);
}

#[test]
fn limit_sets_more_and_count_counts_all() {
    let mut s = Store::new();
    for k in ["a", "b", "c", "d"] {
        put(&mut s, k, k);
    }
    let r = s.range(&RangeReq { limit: 2, ..rq("a", "\0") }).unwrap();
    assert_eq!((keys(&r), r.more, r.count), (vec!["a".to_string(), "b".into()], true, 4));
    let r = s.range(&RangeReq { limit: 4, ..rq("a", "\0") }).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (4, false, 4));
    let r = s.range(&RangeReq { count_only: true, ..rq("a", "\0") }).unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (0, false, 4));
    let r = s.range(&RangeReq { keys_only: true, ..rq("a", "\0") }).unwrap();
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty() && kv.version == 1));
}

#[test]
fn revision_filters_apply_after_fetch_and_leave_count_alone() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "b", "1"); // 3
    put(&mut s, "c", "1"); // 4
    put(&mut s, "a", "2"); // 5
    let r = s.range(&RangeReq { min_mod_revision: 4, ..rq("a", "\0") }).unwrap();
    assert_eq!(keys(&r), ["a", "c"]);
    assert_eq!(r.count, 3, "etcd counts before the filters");
    let r = s.range(&RangeReq { max_create_revision: 3, limit: 1, ..rq("a", "\0") }).unwrap();
    assert_eq!((keys(&r), r.more), (vec!["a".to_string()], true));
    let r = s.range(&RangeReq { min_create_revision: 3, max_mod_revision: 3, ..rq("a", "\0") });
    assert_eq!(keys(&r.unwrap()), ["b"]);
}

#[test]
fn sort_by_version_descend() {
    let mut s = Store::new();
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    put(&mut s, "b", "2");
    put(&mut s, "c", "1");
    put(&mut s, "c", "2");
    put(&mut s, "c", "3");
    put(&mut s, "d", "1");
    let req = |order, limit| RangeReq {
        sort_order: order,
        sort_target: SortTarget::Version,
        limit,
        ..rq("a", "\0")
    };
    let r = s.range(&req(SortOrder::Descend, 0)).unwrap();
    assert_eq!(keys(&r), ["c", "b", "a", "d"], "ties stay in key order");
    let r = s.range(&req(SortOrder::Descend, 2)).unwrap();
    assert_eq!((keys(&r), r.more, r.count), (vec!["c".to_string(), "b".into()], true, 4));
    let r = s.range(&req(SortOrder::Ascend, 0)).unwrap();
    assert_eq!(keys(&r), ["a", "d", "b", "c"]);
}

#[test]
fn sort_order_none_with_other_target_ascends_after_truncation_like_etcd() {
    let mut s = Store::new();
    put(&mut s, "a", "z");
    put(&mut s, "b", "y");
    put(&mut s, "c", "x");
    let req = RangeReq { sort_target: SortTarget::Value, ..rq("a", "\0") };
    assert_eq!(keys(&s.range(&req).unwrap()), ["c", "b", "a"]);
    // etcd fetches limit + 1 pairs in key order, then sorts them.
    let r = s.range(&RangeReq { limit: 1, ..req }).unwrap();
    assert_eq!((keys(&r), r.more), (vec!["b".to_string()], true));
    let by_key = RangeReq { sort_order: SortOrder::Descend, ..rq("a", "\0") };
    assert_eq!(keys(&s.range(&by_key).unwrap()), ["c", "b", "a"]);
}

#[test]
fn sort_by_create_mod_and_value() {
    let mut s = Store::new();
    put(&mut s, "b", "2"); // 2
    put(&mut s, "a", "3"); // 3
    put(&mut s, "c", "1"); // 4
    put(&mut s, "b", "4"); // 5
    let by = |t| {
        let r = RangeReq { sort_order: SortOrder::Ascend, sort_target: t, ..rq("a", "\0") };
        keys(&s.range(&r).unwrap())
    };
    assert_eq!(by(SortTarget::Create), ["b", "a", "c"]);
    assert_eq!(by(SortTarget::Mod), ["a", "c", "b"]);
    assert_eq!(by(SortTarget::Value), ["c", "a", "b"]);
    assert_eq!(by(SortTarget::Key), ["a", "b", "c"]);
}

#[test]
fn future_revision_is_refused() {
    let mut s = Store::new();
    put(&mut s, "a", "1");
    let r = s.range(&RangeReq { revision: 3, ..rq("a", "") });
    assert_eq!(r.unwrap_err(), MvccError::FutureRevision);
    assert_eq!(
        MvccError::FutureRevision.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(s.compact(3), Err(MvccError::FutureRevision));
    assert!(s.range(&RangeReq { revision: -4, ..rq("a", "") }).unwrap().kvs.len() == 1);
}

#[test]
fn ignore_value_and_ignore_lease_keep_current_fields() {
    let mut s = Store::new();
    let req = |value: &'static [u8], lease, iv, il| PutReq {
        key: b"a",
        value,
        lease,
        ignore_value: iv,
        ignore_lease: il,
        ..Default::default()
    };
    assert_eq!(s.put(&req(b"", 0, true, false)), Err(MvccError::KeyNotFound));
    assert_eq!(s.put(&req(b"", 0, false, true)), Err(MvccError::KeyNotFound));
    assert_eq!(s.current_revision(), 1);
    s.put(&req(b"v", 9, false, false)).unwrap();
    assert_eq!(s.put(&req(b"x", 0, true, false)), Err(MvccError::ValueProvided));
    assert_eq!(s.put(&req(b"", 3, false, true)), Err(MvccError::LeaseProvided));
    s.put(&req(b"", 5, true, false)).unwrap();
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!((kv.value.as_slice(), kv.lease, kv.version), (&b"v"[..], 5, 2));
    s.put(&req(b"w", 0, false, true)).unwrap();
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!((kv.value.as_slice(), kv.lease, kv.version), (&b"w"[..], 5, 3));
    assert_eq!(MvccError::ValueProvided.to_string(), "etcdserver: value is provided");
    assert_eq!(MvccError::LeaseProvided.to_string(), "etcdserver: lease is provided");
    assert_eq!(MvccError::KeyNotFound.to_string(), "etcdserver: key not found");
}

#[test]
fn txn_has_one_revision_for_all_writes() {
    let mut s = Store::new();
    put(&mut s, "z", "0"); // 2
    let t = TxnReq { compare: vec![], success: vec![p("a", "1"), p("b", "1"), d("z", "")], failure: vec![] };
    let r = s.txn(&t, MAX_OPS).unwrap();
    assert!(r.succeeded);
    assert_eq!(s.current_revision(), 3);
    assert_eq!(get_at(&s, "a", 0).unwrap().mod_revision, 3);
    assert_eq!(get_at(&s, "b", 0).unwrap().create_revision, 3);
    assert_eq!(get_at(&s, "z", 0), None);
    assert!(get_at(&s, "z", 2).is_some());
    let reads = TxnReq { compare: vec![], success: vec![g("a"), d("nope", "")], failure: vec![] };
    s.txn(&reads, MAX_OPS).unwrap();
    assert_eq!(s.current_revision(), 3, "a txn that changes nothing does not bump");
    s.assert_invariants();
}

#[test]
fn txn_compare_on_missing_key() {
    let mut s = Store::new();
    let run = |s: &mut Store, c: Compare<'_>| {
        s.txn(&TxnReq { compare: vec![c], success: vec![], failure: vec![] }, MAX_OPS).unwrap().succeeded
    };
    use CompareResult::*;
    assert!(!run(&mut s, cmp("a", Equal, CompareTarget::Value(b""))), "value compare fails");
    assert!(!run(&mut s, cmp("a", NotEqual, CompareTarget::Value(b"x"))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Version(0))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Create(0))));
    assert!(run(&mut s, cmp("a", Less, CompareTarget::Mod(1))));
    assert!(run(&mut s, cmp("a", Equal, CompareTarget::Lease(0))));
    put(&mut s, "a", "v");
    assert!(run(&mut s, cmp("a", Greater, CompareTarget::Value(b"u"))), "bytewise");
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
        let c = Compare { key: b"a", range_end: end.as_bytes(), result: CompareResult::Equal, target: CompareTarget::Value(v) };
        s.txn(&TxnReq { compare: vec![c], success: vec![], failure: vec![] }, MAX_OPS).unwrap().succeeded
    };
    assert!(run(&mut s, "c", b"1"));
    assert!(!run(&mut s, "d", b"1"));
    assert!(!run(&mut s, "\0", b"1"));
}

#[test]
fn txn_failure_branch_runs_when_a_compare_fails() {
    let mut s = Store::new();
    let t = TxnReq {
        compare: vec![cmp("a", CompareResult::Equal, CompareTarget::Version(0)), cmp("a", CompareResult::Equal, CompareTarget::Version(1))],
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
            RequestOp::Range(RangeReq { key: b"b", revision: 2, ..Default::default() }),
        ],
        failure: vec![],
    };
    let r = s.txn(&t, MAX_OPS).unwrap();
    let ranges: Vec<&OwnedRangeResult> = r
        .responses
        .iter()
        .filter_map(|o| if let OpResult::Range(rr) = o { Some(rr) } else { None })
        .collect();
    assert_eq!(ranges[0].count, 0);
    assert_eq!(ranges[1].kvs[0].value, b"1");
    assert_eq!(ranges[1].kvs[0].mod_revision, 3);
    assert_eq!(ranges[2].count, 0, "the delete is seen");
    assert_eq!(ranges[3].kvs[0].value, b"old", "an explicit revision reads history");
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
    let t = TxnReq { compare: vec![], success: vec![p("a", "1"), RequestOp::Txn(inner)], failure: vec![] };
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
        validate_txn(&TxnReq { compare: vec![], success, failure: vec![] }, MAX_OPS)
    };
    assert_eq!(dup(vec![p("a", "1"), p("a", "2")]), Err(MvccError::DuplicateKey));
    assert_eq!(dup(vec![p("b", "1"), d("a", "c")]), Err(MvccError::DuplicateKey));
    assert_eq!(dup(vec![d("a", "\0"), p("q", "1")]), Err(MvccError::DuplicateKey));
    let nested = |s: Vec<RequestOp<'static>>, f| RequestOp::Txn(TxnReq { compare: vec![], success: s, failure: f });
    assert_eq!(dup(vec![p("a", "1"), nested(vec![p("a", "2")], vec![])]), Err(MvccError::DuplicateKey));
    assert_eq!(dup(vec![d("a", ""), nested(vec![], vec![p("a", "2")])]), Err(MvccError::DuplicateKey));
    assert_eq!(dup(vec![nested(vec![p("a", "1")], vec![p("a", "2")])]), Ok(()), "exclusive branches");
    assert_eq!(dup(vec![d("a", "c"), d("b", "")]), Ok(()), "overlapping deletes are fine");
    assert_eq!(dup(vec![p("a", "1"), d("b", "")]), Ok(()));
    let t = TxnReq { compare: vec![], success: vec![p("a", "1")], failure: vec![p("a", "1")] };
    assert_eq!(validate_txn(&t, MAX_OPS), Ok(()), "success and failure are checked apart");
    let bad = TxnReq { compare: vec![], success: vec![p("a", "1"), p("a", "2")], failure: vec![] };
    assert_eq!(s.txn(&bad, MAX_OPS), Err(MvccError::DuplicateKey));
    assert_eq!(s.current_revision(), 1);
    assert_eq!(MvccError::DuplicateKey.to_string(), "etcdserver: duplicate key given in txn request");
}

#[test]
fn too_many_ops_is_refused() {
    let ops = |n| (0..n).map(|_| g("a")).collect::<Vec<_>>();
    let t = |c: usize, s: usize, f: usize| TxnReq {
        compare: (0..c).map(|_| cmp("a", CompareResult::Equal, CompareTarget::Version(0))).collect(),
        success: ops(s),
        failure: ops(f),
    };
    assert_eq!(validate_txn(&t(3, 3, 3), 3), Ok(()));
    assert_eq!(validate_txn(&t(4, 0, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(validate_txn(&t(0, 4, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(validate_txn(&t(0, 0, 4), 3), Err(MvccError::TooManyOps));
    let nested = TxnReq { compare: vec![], success: vec![RequestOp::Txn(t(0, 4, 0))], failure: vec![] };
    assert_eq!(validate_txn(&nested, 3), Err(MvccError::TooManyOps));
    assert_eq!(Store::new().txn(&t(0, 4, 0), 3), Err(MvccError::TooManyOps));
    assert_eq!(MvccError::TooManyOps.to_string(), "etcdserver: too many operations in txn request");
}

#[test]
fn txn_empty_key_and_ignore_flags_are_checked() {
    let mut s = Store::new();
    let one = |op| TxnReq { compare: vec![], success: vec![], failure: vec![op] };
    assert_eq!(s.txn(&one(g("")), MAX_OPS), Err(MvccError::EmptyKey));
    assert_eq!(s.txn(&one(d("", "")), MAX_OPS), Err(MvccError::EmptyKey));
    let c = TxnReq { compare: vec![cmp("", CompareResult::Equal, CompareTarget::Version(0))], ..Default::default() };
    assert_eq!(s.txn(&c, MAX_OPS), Err(MvccError::EmptyKey));
    let iv = RequestOp::Put(PutReq { key: b"a", ignore_value: true, ..Default::default() });
    assert_eq!(s.txn(&one(iv.clone()), MAX_OPS), Err(MvccError::KeyNotFound));
    // Only the taken branch is checked for a missing key.
    let untaken = TxnReq { compare: vec![], success: vec![], failure: vec![iv] };
    let r = s.txn(&TxnReq { success: vec![p("b", "1")], ..untaken }, MAX_OPS).unwrap();
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
        success: vec![p("b", "1"), RequestOp::Range(RangeReq { key: b"a", revision: rev, ..Default::default() })],
        failure: vec![],
    };
    assert_eq!(s.txn(&at(4), MAX_OPS), Err(MvccError::FutureRevision));
    assert_eq!(s.txn(&at(2), MAX_OPS), Err(MvccError::Compacted { compact_revision: 3 }));
    assert_eq!(s.current_revision(), 3);
    assert!(get_at(&s, "b", 0).is_none(), "nothing was written");
    s.txn(&at(3), MAX_OPS).unwrap();
    assert_eq!(s.current_revision(), 4);
}

#[test]
fn compact_keeps_latest_and_refuses_older_reads() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "a", "2"); // 3
    put(&mut s, "b", "1"); // 4
    del(&mut s, "b", ""); // 5
    put(&mut s, "a", "3"); // 6
    let size_before = s.approx_size_bytes();
    s.compact(5).unwrap();
    s.assert_invariants();
    assert!(s.approx_size_bytes() < size_before);
    assert_eq!(s.compact_revision(), 5);
    let err = s.range(&RangeReq { revision: 4, ..rq("a", "") }).unwrap_err();
    assert_eq!(err, MvccError::Compacted { compact_revision: 5 });
    assert_eq!(err.to_string(), "etcdserver: mvcc: required revision has been compacted");
    let kv = get_at(&s, "a", 5).unwrap();
    assert_eq!((kv.value.as_slice(), kv.version, kv.create_revision), (&b"2"[..], 2, 2));
    assert_eq!(get_at(&s, "a", 6).unwrap().version, 3);
    assert_eq!(get_at(&s, "b", 5), None);
    assert_eq!(s.index.len(), 1, "b's deleted generation is gone");
    assert_eq!(s.compact(5), Err(MvccError::Compacted { compact_revision: 5 }));
    assert_eq!(s.compact(4), Err(MvccError::Compacted { compact_revision: 5 }));
    s.compact(6).unwrap();
    assert_eq!(s.current_revision(), 6, "compaction is not a write");
    assert_eq!(get_at(&s, "a", 6).unwrap().version, 3);
    s.assert_invariants();
}

#[test]
fn key_count_and_size_follow_live_keys() {
    let mut s = Store::new();
    assert_eq!((s.key_count(), s.approx_size_bytes()), (0, 0));
    put(&mut s, "a", "1");
    put(&mut s, "b", "1");
    put(&mut s, "a", "2");
    assert_eq!(s.key_count(), 2);
    del(&mut s, "a", "");
    assert_eq!(s.key_count(), 1);
    s.assert_invariants();
    let cur = s.current_revision();
    s.compact(cur).unwrap();
    put(&mut s, "b", "2");
    s.compact(s.current_revision()).unwrap();
    s.assert_invariants();
    assert_eq!(s.index.len(), 1);
}
