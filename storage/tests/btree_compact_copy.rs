//! `compact_to` writes the version a reader sees into a new page file that
//! holds the same keyspaces and entries, verifies, has no free pages, and
//! is as small as bulk loading makes it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use cairn_storage::btree::{BtreeError, Db, Options, SimDisk};
use proptest::prelude::*;

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn options(page_size_bytes: u32) -> Options {
    Options {
        page_size_bytes,
        cache_size_bytes: 64 * u64::from(page_size_bytes),
        grow_chunk_bytes: 8 * u64::from(page_size_bytes),
        ..Options::default()
    }
}

fn contents(db: &Db) -> Model {
    let r = db.begin_read().unwrap();
    r.keyspaces()
        .unwrap()
        .into_iter()
        .map(|ks| {
            let e = r.range(&ks, ..).unwrap().map(|e| e.unwrap()).collect();
            (ks, e)
        })
        .collect()
}

/// Opens the copy, checks it against `expected` and its shape: verifies,
/// no free pages, length `page_count * page_size`, txn 1.
fn check_copy(path: &Path, page_size_bytes: u32, expected: &Model) -> Db {
    let len = std::fs::metadata(path).unwrap().len();
    let db = Db::open_path(path, options(page_size_bytes)).unwrap();
    assert_eq!(&contents(&db), expected);
    let r = db.verify().unwrap();
    assert_eq!(r.free_pages, 0, "{r:?}");
    assert_eq!(r.reachable_pages, r.page_count);
    assert_eq!(r.txn_id, 1);
    assert_eq!(r.page_size_bytes, page_size_bytes);
    assert_eq!(len, r.page_count * u64::from(page_size_bytes), "no padding");
    db
}

// --- property: same contents ---------------------------------------------

const KEYSPACES: [&str; 3] = ["a", "bee", "kv"];

#[derive(Clone, Debug)]
enum Op {
    Put(usize, Vec<u8>, Vec<u8>),
    Delete(usize, Vec<u8>),
    /// Puts keys `[prefix, i / 256, i % 256]` for `i < n`: deep trees.
    Bulk(usize, u8, u16),
    DropKeyspace(usize),
    Commit,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..6, 0..8)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..40),
        2 => prop::collection::vec(any::<u8>(), 90..400),
        2 => (600usize..5000, any::<u8>())
            .prop_map(|(n, b)| (0..n).map(|i| b ^ (i as u8)).collect()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let ks = 0..KEYSPACES.len();
    prop_oneof![
        40 => (ks.clone(), key(), value()).prop_map(|(k, a, b)| Op::Put(k, a, b)),
        20 => (ks.clone(), key()).prop_map(|(k, a)| Op::Delete(k, a)),
        2 => (ks.clone(), 0u8..6, 1u16..1200).prop_map(|(k, p, n)| Op::Bulk(k, p, n)),
        1 => ks.prop_map(Op::DropKeyspace),
        5 => Just(Op::Commit),
    ]
}

/// Applies `ops` to `db` and to its model `m`, committing at the end.
fn apply(db: &Db, ops: &[Op], m: &mut Model) {
    let mut w = db.begin_write().unwrap();
    for op in ops {
        let ks = match op {
            Op::Put(k, ..) | Op::Delete(k, _) | Op::Bulk(k, ..) | Op::DropKeyspace(k) => {
                KEYSPACES[*k]
            }
            Op::Commit => {
                w.commit().unwrap();
                w = db.begin_write().unwrap();
                continue;
            }
        };
        if w.create_keyspace(ks).unwrap() {
            m.insert(ks.to_string(), BTreeMap::new());
        }
        let e = m.get_mut(ks).unwrap();
        match op {
            Op::Put(_, k, v) => {
                w.put(ks, k, v).unwrap();
                e.insert(k.clone(), v.clone());
            }
            Op::Delete(_, k) => {
                w.delete(ks, k).unwrap();
                e.remove(k);
            }
            Op::Bulk(_, prefix, n) => {
                for i in 0..*n {
                    let k = vec![*prefix, (i >> 8) as u8, i as u8];
                    let v = vec![i as u8; (i % 23) as usize];
                    w.put(ks, &k, &v).unwrap();
                    e.insert(k, v);
                }
            }
            Op::DropKeyspace(_) => {
                w.delete_keyspace(ks).unwrap();
                m.remove(ks);
            }
            Op::Commit => unreachable!(),
        }
    }
    w.commit().unwrap();
}

fn copy_round_trip(ops: &[Op], dest_page_size: u32, edits: &[Op]) {
    let db = Db::open(SimDisk::new(), options(512)).unwrap();
    let mut m = Model::new();
    apply(&db, ops, &mut m);
    db.verify().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    let s = db.compact_to(&path, options(dest_page_size)).unwrap();
    assert_eq!(s.keyspaces, m.len() as u64);
    assert_eq!(s.entries, m.values().map(|e| e.len() as u64).sum::<u64>());
    assert_eq!(s.file_len_bytes, std::fs::metadata(&path).unwrap().len());
    assert!(!dir.path().join("copy.tmp").exists());
    let copy = check_copy(&path, dest_page_size, &m);
    assert_eq!(copy.stats().page_count, s.page_count);
    // The copy is an ordinary page file: it takes edits (splits, merges,
    // frees on bulk-loaded nodes) and still verifies.
    apply(&copy, edits, &mut m);
    copy.verify().unwrap();
    assert_eq!(contents(&copy), m);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn a_compact_copy_has_the_same_contents_verifies_and_has_no_free_pages(
        ops in prop::collection::vec(op(), 1..300),
        dest in prop_oneof![Just(512u32), Just(1024), Just(4096)],
        edits in prop::collection::vec(op(), 0..40),
    ) {
        copy_round_trip(&ops, dest, &edits);
    }
}

// --- size ----------------------------------------------------------------------

#[test]
fn a_file_of_mostly_deleted_data_copies_to_under_half_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let db = Db::open_path(&path, Options::default()).unwrap();
    let n = 20_000u32;
    for chunk in 0..4 {
        let mut w = db.begin_write().unwrap();
        w.create_keyspace("kv").unwrap();
        for i in (chunk * n / 4)..((chunk + 1) * n / 4) {
            w.put("kv", format!("key/{i:08}").as_bytes(), &[i as u8; 200])
                .unwrap();
        }
        w.commit().unwrap();
    }
    let mut w = db.begin_write().unwrap();
    for i in (0..n).filter(|i| i % 10 != 0) {
        assert!(w.delete("kv", format!("key/{i:08}").as_bytes()).unwrap());
    }
    w.commit().unwrap();
    let original_len = std::fs::metadata(&path).unwrap().len();
    let expected = contents(&db);
    let copy = dir.path().join("copy");
    let s = db.compact_to(&copy, Options::default()).unwrap();
    assert!(
        s.file_len_bytes * 2 < original_len,
        "copy {} bytes, original {original_len}",
        s.file_len_bytes
    );
    check_copy(&copy, 4096, &expected);
}

#[test]
fn sequential_keys_pack_leaves_at_least_85_percent_full() {
    const N: u64 = 20_000;
    const KEY_BYTES: u64 = 32;
    const VALUE_BYTES: u64 = 256;
    let db = Db::open(SimDisk::new(), options(4096)).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0..N {
        let k = format!("{i:032}");
        w.put("kv", k.as_bytes(), &[i as u8; VALUE_BYTES as usize])
            .unwrap();
    }
    w.commit().unwrap();
    let source_pages = db.verify().unwrap().keyspaces[0].pages;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    db.compact_to(&path, options(4096)).unwrap();
    let copy = Db::open_path(&path, options(4096)).unwrap();
    let pages = copy.verify().unwrap().keyspaces[0].pages;
    // Leaf entry: 4 (offset) + 7 (header) + key + value; branch entry:
    // 4 + 10 + key. The ideal tree packs every page to 4096 - 40 bytes.
    let usable = 4096 - 40;
    let leaf_bytes = N * (4 + 7 + KEY_BYTES + VALUE_BYTES);
    let ideal_leaves = leaf_bytes.div_ceil(usable);
    let ideal_branches = (ideal_leaves * (4 + 10 + KEY_BYTES)).div_ceil(usable) + 1;
    let ideal = ideal_leaves + ideal_branches;
    assert!(
        pages as f64 * 0.85 <= ideal as f64,
        "{pages} pages, ideal {ideal} (source tree: {source_pages})"
    );
    assert!(pages <= source_pages, "{pages} vs source {source_pages}");
    // Keys inserted in order fill pages from the left in the source too
    // (appends split full-left), as the revision-keyed history is written.
    assert!(
        source_pages as f64 * 0.85 <= ideal as f64,
        "source tree {source_pages} pages, ideal {ideal}"
    );
}

// --- concurrency and errors ------------------------------------------------------

#[test]
fn compact_to_while_a_writer_commits_copies_exactly_the_readers_version() {
    let db = Db::open(SimDisk::new(), options(512)).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0..5000u32 {
        w.put("kv", &i.to_be_bytes(), &[1; 40]).unwrap();
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let expected = contents(&db);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    let copying = AtomicBool::new(true);
    let commits = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut commits = 0u32;
            while copying.load(Ordering::Acquire) || commits < 5 {
                let mut w = db.begin_write().unwrap();
                for i in (commits % 7..5000).step_by(7) {
                    w.put("kv", &i.to_be_bytes(), &[commits as u8 + 2; 40])
                        .unwrap();
                }
                w.delete("kv", &commits.to_be_bytes()).unwrap();
                w.commit().unwrap();
                commits += 1;
            }
            commits
        });
        let s = r.compact_to(&path, options(512));
        copying.store(false, Ordering::Release);
        s.unwrap();
        writer.join().unwrap()
    });
    assert!(commits >= 5);
    assert_ne!(contents(&db), expected, "the writer changed the file");
    check_copy(&path, 512, &expected);
    db.verify().unwrap();
}

#[test]
fn compact_to_never_replaces_an_existing_file() {
    let db = Db::open(SimDisk::new(), options(512)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    std::fs::write(&path, b"precious").unwrap();
    let e = db.compact_to(&path, options(512)).unwrap_err();
    assert!(matches!(e, BtreeError::Io { .. }), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn an_empty_file_copies_to_its_two_meta_pages() {
    let db = Db::open(SimDisk::new(), options(512)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    let s = db.compact_to(&path, options(1024)).unwrap();
    assert_eq!((s.entries, s.keyspaces, s.page_count), (0, 0, 2));
    assert_eq!(s.file_len_bytes, 2048);
    check_copy(&path, 1024, &Model::new());
}

#[test]
fn a_key_too_large_for_the_new_page_size_fails_and_leaves_no_file() {
    let db = Db::open(SimDisk::new(), options(4096)).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.put("kv", &[b'k'; 500], b"v").unwrap();
    w.commit().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    let e = db.compact_to(&path, options(512)).unwrap_err();
    assert!(matches!(e, BtreeError::KeyTooLarge { .. }), "{e}");
    assert!(!path.exists() && !dir.path().join("copy.tmp").exists());
}

#[test]
fn a_crash_leftover_tmp_file_is_replaced() {
    let db = Db::open(SimDisk::new(), options(512)).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.put("kv", b"k", b"v").unwrap();
    w.commit().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy");
    std::fs::write(dir.path().join("copy.tmp"), b"half a copy").unwrap();
    db.compact_to(&path, options(512)).unwrap();
    assert!(!dir.path().join("copy.tmp").exists());
    check_copy(&path, 512, &contents(&db));
}
