//! Puts, deletes and ranges.

use super::*;
use crate::mvcc::*;

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
    assert_eq!(
        s.current_revision(),
        4,
        "one revision for a multi-key delete"
    );
    assert_eq!(del(&mut s, "a", "c").deleted, 0);
    assert_eq!(
        s.current_revision(),
        4,
        "a delete that deletes nothing does not bump"
    );
    s.assert_invariants();
}

#[test]
fn put_tracks_create_mod_version_and_prev_kv() {
    let mut s = Store::new();
    assert_eq!(put(&mut s, "a", "1").prev_kv, None);
    let r = s
        .put(&PutReq {
            key: b"a",
            value: b"2",
            lease: 7,
            prev_kv: true,
            ..Default::default()
        })
        .unwrap();
    let prev = r.prev_kv.unwrap();
    assert_eq!(
        (prev.value.as_slice(), prev.version, prev.mod_revision),
        (&b"1"[..], 1, 2)
    );
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!(
        kv,
        KeyValue {
            key: b"a".to_vec(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            value: b"2".to_vec(),
            lease: 7
        }
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
    assert_eq!(
        (old.create_revision, old.mod_revision, old.version),
        (2, 3, 2)
    );
    s.assert_invariants();
}

#[test]
fn empty_key_is_refused() {
    let mut s = Store::new();
    assert_eq!(s.put(&PutReq::default()), Err(MvccError::EmptyKey));
    assert_eq!(
        s.range(&RangeReq::default()).unwrap_err(),
        MvccError::EmptyKey
    );
    assert_eq!(
        s.delete_range(&DeleteRangeReq::default()),
        Err(MvccError::EmptyKey)
    );
    assert_eq!(
        MvccError::EmptyKey.to_string(),
        "etcdserver: key is not provided"
    );
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
    assert!(
        s.range(&rq("d", "b")).unwrap().kvs.is_empty(),
        "end <= key is empty"
    );
}

#[test]
fn range_from_key_with_zero_range_end() {
    let mut s = Store::new();
    for k in ["a", "b", "c"] {
        put(&mut s, k, k);
    }
    assert_eq!(keys(&s.range(&rq("b", "\0")).unwrap()), ["b", "c"]);
    assert_eq!(
        keys(&s.range(&rq("\0", "\0")).unwrap()),
        ["a", "b", "c"],
        "all keys"
    );
    assert_eq!(del(&mut s, "b", "\0").deleted, 2);
    assert_eq!(keys(&s.range(&rq("\0", "\0")).unwrap()), ["a"]);
}

#[test]
fn limit_sets_more_and_count_counts_all() {
    let mut s = Store::new();
    for k in ["a", "b", "c", "d"] {
        put(&mut s, k, k);
    }
    let r = s
        .range(&RangeReq {
            limit: 2,
            ..rq("a", "\0")
        })
        .unwrap();
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a".to_string(), "b".into()], true, 4)
    );
    let r = s
        .range(&RangeReq {
            limit: 4,
            ..rq("a", "\0")
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (4, false, 4));
    let r = s
        .range(&RangeReq {
            count_only: true,
            ..rq("a", "\0")
        })
        .unwrap();
    assert_eq!((r.kvs.len(), r.more, r.count), (0, false, 4));
    let r = s
        .range(&RangeReq {
            keys_only: true,
            ..rq("a", "\0")
        })
        .unwrap();
    assert!(r
        .kvs
        .iter()
        .all(|kv| kv.value.is_empty() && kv.version == 1));
}

#[test]
fn revision_filters_apply_after_fetch_and_leave_count_alone() {
    let mut s = Store::new();
    put(&mut s, "a", "1"); // 2
    put(&mut s, "b", "1"); // 3
    put(&mut s, "c", "1"); // 4
    put(&mut s, "a", "2"); // 5
    let r = s
        .range(&RangeReq {
            min_mod_revision: 4,
            ..rq("a", "\0")
        })
        .unwrap();
    assert_eq!(keys(&r), ["a", "c"]);
    assert_eq!(r.count, 3, "etcd counts before the filters");
    let r = s
        .range(&RangeReq {
            max_create_revision: 3,
            limit: 1,
            ..rq("a", "\0")
        })
        .unwrap();
    assert_eq!((keys(&r), r.more), (vec!["a".to_string()], true));
    let r = s.range(&RangeReq {
        min_create_revision: 3,
        max_mod_revision: 3,
        ..rq("a", "\0")
    });
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
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["c".to_string(), "b".into()], true, 4)
    );
    let r = s.range(&req(SortOrder::Ascend, 0)).unwrap();
    assert_eq!(keys(&r), ["a", "d", "b", "c"]);
}

#[test]
fn sort_order_none_with_other_target_ascends_after_truncation_like_etcd() {
    let mut s = Store::new();
    put(&mut s, "a", "z");
    put(&mut s, "b", "y");
    put(&mut s, "c", "x");
    let req = RangeReq {
        sort_target: SortTarget::Value,
        ..rq("a", "\0")
    };
    assert_eq!(keys(&s.range(&req).unwrap()), ["c", "b", "a"]);
    // etcd fetches limit + 1 pairs in key order, then sorts them.
    let r = s.range(&RangeReq { limit: 1, ..req }).unwrap();
    assert_eq!((keys(&r), r.more), (vec!["b".to_string()], true));
    let by_key = RangeReq {
        sort_order: SortOrder::Descend,
        ..rq("a", "\0")
    };
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
        let r = RangeReq {
            sort_order: SortOrder::Ascend,
            sort_target: t,
            ..rq("a", "\0")
        };
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
    let r = s.range(&RangeReq {
        revision: 3,
        ..rq("a", "")
    });
    assert_eq!(r.unwrap_err(), MvccError::FutureRevision);
    assert_eq!(
        MvccError::FutureRevision.to_string(),
        "etcdserver: mvcc: required revision is a future revision"
    );
    assert_eq!(s.compact(3), Err(MvccError::FutureRevision));
    assert!(
        s.range(&RangeReq {
            revision: -4,
            ..rq("a", "")
        })
        .unwrap()
        .kvs
        .len()
            == 1
    );
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
    assert_eq!(
        s.put(&req(b"", 0, true, false)),
        Err(MvccError::KeyNotFound)
    );
    assert_eq!(
        s.put(&req(b"", 0, false, true)),
        Err(MvccError::KeyNotFound)
    );
    assert_eq!(s.current_revision(), 1);
    s.put(&req(b"v", 9, false, false)).unwrap();
    assert_eq!(
        s.put(&req(b"x", 0, true, false)),
        Err(MvccError::ValueProvided)
    );
    assert_eq!(
        s.put(&req(b"", 3, false, true)),
        Err(MvccError::LeaseProvided)
    );
    s.put(&req(b"", 5, true, false)).unwrap();
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"v"[..], 5, 2)
    );
    s.put(&req(b"w", 0, false, true)).unwrap();
    let kv = get_at(&s, "a", 0).unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.lease, kv.version),
        (&b"w"[..], 5, 3)
    );
    assert_eq!(
        MvccError::ValueProvided.to_string(),
        "etcdserver: value is provided"
    );
    assert_eq!(
        MvccError::LeaseProvided.to_string(),
        "etcdserver: lease is provided"
    );
    assert_eq!(
        MvccError::KeyNotFound.to_string(),
        "etcdserver: key not found"
    );
}
