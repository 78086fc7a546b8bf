//! Values far larger than a page live in overflow runs.

use cairn_storage::btree::{BtreeError, Db, Options, SimDisk, MAX_VALUE_BYTES};

fn big(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_mul(31) ^ (i as u8) ^ (i >> 9) as u8)
        .collect()
}

#[test]
fn one_mib_values_round_trip_through_commit_and_reopen() {
    let disk = SimDisk::new();
    {
        let db = Db::open(disk.clone(), Options::default()).unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_keyspace("blobs").unwrap();
        for k in 0u8..4 {
            w.put("blobs", &[k], &big(k, 1 << 20)).unwrap();
        }
        w.put("blobs", b"small", b"x").unwrap();
        assert_eq!(
            w.get("blobs", &[2]).unwrap(),
            Some(big(2, 1 << 20)),
            "own write"
        );
        w.commit().unwrap();
    }
    let db = Db::open(disk.clone(), Options::default()).unwrap();
    let r = db.begin_read().unwrap();
    for k in 0u8..4 {
        assert_eq!(r.get("blobs", &[k]).unwrap(), Some(big(k, 1 << 20)));
    }
    let rev: Vec<_> = r
        .range_rev("blobs", ..)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(rev.len(), 5);
    assert_eq!(rev[1], (vec![3], big(3, 1 << 20)));
    drop(r);

    // Overwrite and delete free the runs; the next commits reuse them.
    let pages_before = db.stats().page_count;
    for round in 0..3u8 {
        let mut w = db.begin_write().unwrap();
        for k in 0u8..4 {
            w.put("blobs", &[k], &big(k + round + 10, 1 << 20)).unwrap();
        }
        w.commit().unwrap();
    }
    // Round 0 needs new runs (version 1's are still the previous
    // version); rounds 1 and 2 reuse the runs their predecessors freed.
    let s = db.stats();
    assert!(
        s.page_count < pages_before * 5 / 2,
        "runs are reused: {s:?}"
    );
    let mut w = db.begin_write().unwrap();
    for k in 0u8..4 {
        assert!(w.delete("blobs", &[k]).unwrap());
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(r.range("blobs", ..).unwrap().count(), 1);
}

#[test]
fn a_flipped_byte_inside_an_overflow_run_is_corrupt_not_wrong_data() {
    let disk = SimDisk::new();
    {
        let db = Db::open(disk.clone(), Options::default()).unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_keyspace("blobs").unwrap();
        w.put("blobs", b"k", &big(1, 100_000)).unwrap();
        w.commit().unwrap();
    }
    let len = disk.image().len();
    // The run is the largest stretch of non-zero pages; damage its middle.
    let img = disk.image();
    let nonzero: Vec<usize> = (2..len / 4096)
        .filter(|p| img[p * 4096..(p + 1) * 4096].iter().any(|&b| b != 0))
        .collect();
    let mid = nonzero[nonzero.len() / 2];
    disk.corrupt_byte((mid * 4096 + 77) as u64, 0x02);
    let db = Db::open(disk, Options::default()).unwrap();
    let e = db.begin_read().unwrap().get("blobs", b"k").unwrap_err();
    match e {
        BtreeError::Corrupt { page, .. } => assert!(page <= mid as u64, "{page} vs {mid}"),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn oversized_keys_and_values_are_refused() {
    let db = Db::open(SimDisk::new(), Options::default()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    let e = w.put("kv", &[0; 4000], b"v").unwrap_err();
    assert!(matches!(e, BtreeError::KeyTooLarge { .. }), "{e}");
    let e = w
        .put("kv", b"k", &vec![0; MAX_VALUE_BYTES + 1])
        .unwrap_err();
    assert!(matches!(e, BtreeError::ValueTooLarge { .. }), "{e}");
    let e = w.put("nope", b"k", b"v").unwrap_err();
    assert!(matches!(e, BtreeError::KeyspaceNotFound { .. }), "{e}");
}

#[test]
fn a_real_file_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Db::open_path(&path, Options::default()).unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_keyspace("kv").unwrap();
        w.put("kv", b"a", &big(5, 300_000)).unwrap();
        w.commit().unwrap();
    }
    let db = Db::open_path(&path, Options::default()).unwrap();
    assert_eq!(
        db.begin_read().unwrap().get("kv", b"a").unwrap(),
        Some(big(5, 300_000))
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() % (4 << 20),
        0,
        "grown in chunks"
    );
}

/// A new page file appears whole or not at all: it is built under a
/// temporary name (a leftover from a crash is discarded) and renamed.
#[test]
fn a_new_file_is_created_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    std::fs::write(
        dir.path().join("db.tmp"),
        b"half-written by a crashed create",
    )
    .unwrap();
    let db = Db::open_path(&path, Options::default()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.put("kv", b"k", b"v").unwrap();
    w.commit().unwrap();
    drop(db);
    assert!(
        !dir.path().join("db.tmp").exists(),
        "the temporary file is renamed into place"
    );
    let db = Db::open_path(&path, Options::default()).unwrap();
    assert_eq!(
        db.begin_read().unwrap().get("kv", b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

#[test]
fn get_ref_borrows_inline_values_and_reads_overflow_ones_like_get() {
    let db = Db::open(SimDisk::new(), Options::default()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("a").unwrap();
    w.create_keyspace("b").unwrap();
    w.put("a", b"big", &big(7, 3 << 12)).unwrap();
    w.put("a", b"small", b"v-a").unwrap();
    w.put("b", b"small", b"v-b").unwrap();
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    // Alternate keyspaces: the first one resolved is remembered, the
    // other still goes through the root tree.
    for _ in 0..2 {
        for (ks, key) in [
            ("a", &b"big"[..]),
            ("a", b"small"),
            ("b", b"small"),
            ("b", b"x"),
        ] {
            let by_ref = r.get_ref(ks, key).unwrap().map(|v| v.to_vec());
            assert_eq!(by_ref, r.get(ks, key).unwrap(), "{ks}/{key:?}");
        }
    }
    assert_eq!(&*r.get_ref("b", b"small").unwrap().unwrap(), b"v-b");
    assert!(matches!(
        r.get_ref("nope", b"small"),
        Err(BtreeError::KeyspaceNotFound { .. })
    ));
}
