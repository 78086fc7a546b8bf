//! Compaction and size accounting.

use super::*;
use crate::mvcc::*;

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
    let err = s
        .range(&RangeReq {
            revision: 4,
            ..rq("a", "")
        })
        .unwrap_err();
    assert_eq!(
        err,
        MvccError::Compacted {
            compact_revision: 5
        }
    );
    assert_eq!(
        err.to_string(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    let kv = get_at(&s, "a", 5).unwrap();
    assert_eq!(
        (kv.value.as_slice(), kv.version, kv.create_revision),
        (&b"2"[..], 2, 2)
    );
    assert_eq!(get_at(&s, "a", 6).unwrap().version, 3);
    assert_eq!(get_at(&s, "b", 5), None);
    assert_eq!(s.index.len(), 1, "b's deleted generation is gone");
    assert_eq!(
        s.compact(5),
        Err(MvccError::Compacted {
            compact_revision: 5
        })
    );
    assert_eq!(
        s.compact(4),
        Err(MvccError::Compacted {
            compact_revision: 5
        })
    );
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
