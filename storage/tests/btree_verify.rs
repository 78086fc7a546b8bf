//! `Db::verify` walks every page of the last committed version and names
//! the page of any inconsistency; `Db::open_read_only` never writes a byte
//! and can hide a trailer behind a length limit.
//!
//! Damage that checksums would not catch (a wrong pointer, a page listed
//! free while reachable) is crafted by editing a `SimDisk` image and
//! resealing the page: xxh3 of everything after the checksum, seeded with
//! the page id (see `storage/FORMAT.md`, "Page header").

use std::collections::BTreeMap;

use cairn_storage::btree::{
    BtreeError, Db, Disk, Options, ReadOnlyFileDisk, SimDisk, VerifyReport,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

const PS: usize = 512;

fn options() -> Options {
    Options {
        page_size_bytes: PS as u32,
        cache_size_bytes: 64 * PS as u64,
        grow_chunk_bytes: 8 * PS as u64,
        ..Options::default()
    }
}

// --- image editing -------------------------------------------------------

fn u16_at(img: &[u8], at: usize) -> usize {
    u16::from_le_bytes(img[at..at + 2].try_into().unwrap()) as usize
}
fn u32_at(img: &[u8], at: usize) -> usize {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap()) as usize
}
fn u64_at(img: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(img[at..at + 8].try_into().unwrap())
}
fn put_u64(img: &mut [u8], at: usize, v: u64) {
    img[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

const KIND_BRANCH: u8 = 2;
const KIND_LEAF: u8 = 3;

fn kind(img: &[u8], page: u64) -> u8 {
    img[page as usize * PS + 24]
}
fn run_pages(img: &[u8], page: u64) -> usize {
    u32_at(img, page as usize * PS + 28)
}
fn count(img: &[u8], page: u64) -> usize {
    u32_at(img, page as usize * PS + 32)
}

/// Recomputes the checksum of the page (or run) at `page`.
fn reseal(img: &mut [u8], page: u64) {
    let start = page as usize * PS;
    let end = start + run_pages(img, page) * PS;
    let sum = xxh3_64_with_seed(&img[start + 8..end], page);
    put_u64(img, start, sum);
}

/// The newest meta: (root_page, freelist_page, page_count).
fn meta(img: &[u8]) -> (u64, u64, u64) {
    let slot = if u64_at(img, PS + 16) > u64_at(img, 16) {
        PS
    } else {
        0
    };
    (
        u64_at(img, slot + 56),
        u64_at(img, slot + 64),
        u64_at(img, slot + 80),
    )
}

/// Byte offset (in the image) of entry `i` of node `page`.
fn entry(img: &[u8], page: u64, i: usize) -> usize {
    page as usize * PS + u32_at(img, page as usize * PS + 40 + 4 * i)
}

fn child(img: &[u8], branch: u64, i: usize) -> u64 {
    assert_eq!(kind(img, branch), KIND_BRANCH);
    u64_at(img, entry(img, branch, i))
}

/// The root page of the only keyspace (the root tree is one leaf).
fn keyspace_root(img: &[u8]) -> u64 {
    let (root, _, _) = meta(img);
    assert_eq!(kind(img, root), KIND_LEAF);
    let e = entry(img, root, 0);
    let key_len = u16_at(img, e);
    u64_at(img, e + 7 + key_len)
}

// --- content ---------------------------------------------------------------

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn big(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed as usize * 7 + i / 3) as u8)
        .collect()
}

/// Three keyspaces (one empty, one with overflow values) over three
/// commits with overwrites and deletes, so the freelist is not empty.
fn build(db: &Db) -> Model {
    let mut m = Model::new();
    for round in 0..3u32 {
        let mut w = db.begin_write().unwrap();
        for ks in ["a", "blobs", "empty"] {
            w.create_keyspace(ks).unwrap();
            m.entry(ks.to_string()).or_default();
        }
        for i in 0..120u32 {
            let (k, v) = (i.to_be_bytes().to_vec(), vec![round as u8; 30]);
            w.put("a", &k, &v).unwrap();
            m.get_mut("a").unwrap().insert(k, v);
        }
        for i in (round..120).step_by(7) {
            let k = i.to_be_bytes().to_vec();
            w.delete("a", &k).unwrap();
            m.get_mut("a").unwrap().remove(&k);
        }
        for i in 0..4u32 {
            let (k, v) = (vec![b'b', i as u8], big(i + round, 1500 + 100 * i as usize));
            w.put("blobs", &k, &v).unwrap();
            m.get_mut("blobs").unwrap().insert(k, v);
        }
        w.put("blobs", b"small", b"x").unwrap();
        m.get_mut("blobs")
            .unwrap()
            .insert(b"small".to_vec(), b"x".to_vec());
        w.commit().unwrap();
    }
    m
}

fn built_image() -> (Vec<u8>, Model) {
    let disk = SimDisk::new();
    let m = build(&Db::open(disk.clone(), options()).unwrap());
    (disk.image(), m)
}

fn verify_image(img: Vec<u8>) -> Result<VerifyReport, BtreeError> {
    Db::open(SimDisk::from_image(img), options())?.verify()
}

fn corrupt_page(r: Result<VerifyReport, BtreeError>) -> (u64, String) {
    match r {
        Err(BtreeError::Corrupt { page, reason, .. }) => (page, reason),
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(r) => panic!("expected Corrupt, verify passed: {r:?}"),
    }
}

// --- tests -------------------------------------------------------------------

#[test]
fn a_healthy_file_verifies_with_exact_counts() {
    let (img, m) = built_image();
    let db = Db::open(SimDisk::from_image(img), options()).unwrap();
    let r = db.verify().unwrap();
    let s = db.stats();
    assert_eq!(r.txn_id, 3);
    assert_eq!(r.page_size_bytes, PS as u32);
    assert_eq!(r.page_count, s.page_count);
    assert_eq!(
        r.free_pages, s.free_pages,
        "after open every freed page is free"
    );
    assert!(r.free_pages > 0, "overwrites freed pages");
    assert_eq!(r.reachable_pages + r.free_pages, r.page_count);
    let names: Vec<_> = r.keyspaces.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["a", "blobs", "empty"]);
    for k in &r.keyspaces {
        let model = &m[&k.name];
        assert_eq!(k.entries, model.len() as u64, "{}", k.name);
        let key_bytes: usize = model.keys().map(Vec::len).sum();
        let value_bytes: usize = model.values().map(Vec::len).sum();
        assert_eq!(k.key_bytes, key_bytes as u64, "{}", k.name);
        assert_eq!(k.value_bytes, value_bytes as u64, "{}", k.name);
    }
    assert_eq!(r.keyspaces[2].pages, 0, "an empty keyspace has no pages");
    // "blobs": one leaf plus four overflow runs of 4 pages (40 + 1500 to
    // 40 + 1800 bytes each).
    assert_eq!(r.keyspaces[1].pages, 1 + 4 * 4, "{:?}", r.keyspaces[1]);
    let tree_pages: u64 = r.keyspaces.iter().map(|k| k.pages).sum();
    assert!(
        2 + tree_pages < r.reachable_pages,
        "metas, root tree, freelist"
    );
    // Verify reads around the cache.
    let before = db.stats();
    db.verify().unwrap();
    let after = db.stats();
    assert_eq!(
        (before.cache_hits, before.cache_misses),
        (after.cache_hits, after.cache_misses)
    );
}

#[test]
fn a_new_empty_file_verifies() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    let r = db.verify().unwrap();
    assert_eq!((r.txn_id, r.page_count, r.reachable_pages), (0, 2, 2));
    assert!(r.keyspaces.is_empty());
}

#[test]
fn a_flipped_byte_in_any_reachable_page_makes_verify_name_that_page() {
    let (img, _) = built_image();
    let report = verify_image(img.clone()).unwrap();
    let offsets = [0, 8, 24, 33, 40, 45, 200, PS - 1];
    let mut named = 0;
    for page in 2..report.page_count {
        let mut bad = img.clone();
        let at = page as usize * PS + offsets[page as usize % offsets.len()];
        bad[at] ^= 0x20;
        match verify_image(bad) {
            Ok(r) => assert_eq!(r, report, "page {page} is free: not read"),
            Err(BtreeError::Corrupt {
                page: p, reason, ..
            }) => {
                // A run (overflow, freelist) is checked as a whole and
                // named by its first page.
                let in_run = p < page && page < p + run_pages(&img, p) as u64;
                assert!(p == page || in_run, "flip in {page}, named {p}: {reason}");
                named += 1;
            }
            Err(e) => panic!("page {page}: unexpected error {e}"),
        }
    }
    assert_eq!(named, report.reachable_pages - 2, "every reachable page");
}

#[test]
fn a_child_pointer_past_page_count_is_corrupt_naming_the_branch() {
    let disk = SimDisk::new();
    let db = Db::open(disk.clone(), options()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0..300u32 {
        w.put("kv", &i.to_be_bytes(), &[7; 30]).unwrap();
    }
    w.commit().unwrap();
    let mut img = disk.image();
    let (_, _, page_count) = meta(&img);
    let root = keyspace_root(&img);
    let at = entry(&img, root, 1);
    put_u64(&mut img, at, page_count + 3);
    reseal(&mut img, root);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, root, "{reason}");
    assert!(reason.contains("outside"), "{reason}");
}

#[test]
fn a_page_reachable_twice_is_corrupt() {
    let disk = SimDisk::new();
    let db = Db::open(disk.clone(), options()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0..300u32 {
        w.put("kv", &i.to_be_bytes(), &[7; 30]).unwrap();
    }
    w.commit().unwrap();
    let mut img = disk.image();
    let root = keyspace_root(&img);
    let first = child(&img, root, 0);
    let at = entry(&img, root, 1);
    put_u64(&mut img, at, first);
    reseal(&mut img, root);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, first, "{reason}");
    assert!(reason.contains("twice"), "{reason}");
}

#[test]
fn a_page_both_reachable_and_free_is_corrupt() {
    let (mut img, _) = built_image();
    let (root, freelist, _) = meta(&img);
    assert_ne!(freelist, 0);
    // The root tree's root is reachable; list it as free instead of the
    // first free page.
    put_u64(&mut img, freelist as usize * PS + 40, root);
    reseal(&mut img, freelist);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, root, "{reason}");
    assert!(reason.contains("free"), "{reason}");
}

#[test]
fn a_page_neither_reachable_nor_free_is_reported_as_leaked() {
    let (mut img, _) = built_image();
    let (_, freelist, _) = meta(&img);
    let n = count(&img, freelist);
    let last = u64_at(&img, freelist as usize * PS + 40 + 8 * (n - 1));
    let at = freelist as usize * PS + 32;
    img[at..at + 4].copy_from_slice(&(n as u32 - 1).to_le_bytes());
    reseal(&mut img, freelist);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, last, "{reason}");
    assert!(reason.contains("leaked"), "{reason}");
}

#[test]
fn leaf_keys_out_of_order_are_corrupt() {
    let (mut img, _) = built_image();
    let mut page = keyspace_root(&img); // the root tree's first keyspace: "a"
    while kind(&img, page) == KIND_BRANCH {
        page = child(&img, page, 0);
    }
    let slots = page as usize * PS + 40;
    let (a, b) = (u32_at(&img, slots), u32_at(&img, slots + 4));
    img[slots..slots + 4].copy_from_slice(&(b as u32).to_le_bytes());
    img[slots + 4..slots + 8].copy_from_slice(&(a as u32).to_le_bytes());
    reseal(&mut img, page);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, page, "{reason}");
    assert!(reason.contains("ascend"), "{reason}");
}

#[test]
fn a_subtree_outside_its_separators_is_corrupt() {
    let (mut img, _) = built_image();
    let root = keyspace_root(&img);
    assert!(count(&img, root) >= 3, "keyspace \"a\" has a branch root");
    let (c1, c2) = (child(&img, root, 1), child(&img, root, 2));
    let (e1, e2) = (entry(&img, root, 1), entry(&img, root, 2));
    put_u64(&mut img, e1, c2);
    put_u64(&mut img, e2, c1);
    reseal(&mut img, root);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, c2, "child 2's keys sit in child 1's slot: {reason}");
    assert!(reason.contains("bounds"), "{reason}");
}

// --- read-only open --------------------------------------------------------

fn file_with_content(path: &std::path::Path) -> Model {
    let db = Db::open_path(path, options()).unwrap();
    build(&db)
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

#[test]
fn read_only_open_leaves_every_byte_unchanged_and_refuses_begin_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let m = file_with_content(&path);
    let before = std::fs::read(&path).unwrap();
    {
        let db = Db::open_read_only(&path, None, options()).unwrap();
        assert_eq!(contents(&db), m);
        db.verify().unwrap();
        db.compact_to(&dir.path().join("copy"), options()).unwrap();
        match db.begin_write() {
            Err(e @ BtreeError::ReadOnly { .. }) => {
                assert!(e.to_string().contains("read-only"), "{e}");
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a write transaction on a read-only file"),
        };
    }
    assert!(
        std::fs::read(&path).unwrap() == before,
        "not a byte written"
    );
}

#[test]
fn read_only_open_of_a_missing_file_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope");
    let e = Db::open_read_only(&path, None, options()).err().unwrap();
    assert!(matches!(e, BtreeError::Io { .. }), "{e}");
    assert!(!path.exists());
    std::fs::write(&path, b"").unwrap();
    let e = Db::open_read_only(&path, None, options()).err().unwrap();
    assert!(matches!(e, BtreeError::NoValidMeta { .. }), "{e}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// A snapshot file: a compact page-file image followed by a trailer.
#[test]
fn a_length_limit_hides_a_trailer() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("db");
    let m = file_with_content(&src);
    let snap = dir.path().join("snap");
    let db = Db::open_read_only(&src, None, options()).unwrap();
    let image_len = db.compact_to(&snap, options()).unwrap().file_len_bytes;
    drop(db);
    let trailer = vec![0xEE; 1000];
    let mut bytes = std::fs::read(&snap).unwrap();
    assert_eq!(bytes.len() as u64, image_len);
    bytes.extend_from_slice(&trailer);
    std::fs::write(&snap, &bytes).unwrap();

    let db = Db::open_read_only(&snap, Some(image_len), options()).unwrap();
    assert_eq!(db.stats().file_len_bytes, image_len);
    assert_eq!(contents(&db), m);
    assert_eq!(db.verify().unwrap().page_count * PS as u64, image_len);
    drop(db);

    let disk = ReadOnlyFileDisk::open(&snap, Some(image_len)).unwrap();
    assert_eq!(disk.len_bytes().unwrap(), image_len);
    let mut buf = [0u8; 16];
    disk.read_at(image_len - 16, &mut buf).unwrap();
    assert!(
        disk.read_at(image_len - 8, &mut buf).is_err(),
        "past the limit"
    );
    let e = disk.write_at(0, b"x").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(disk.grow(image_len * 2).is_err() && disk.sync().is_err());

    // A limit that cuts into the image is refused, not read short.
    let cut = image_len - PS as u64;
    let e = Db::open_read_only(&snap, Some(cut), options())
        .err()
        .unwrap();
    assert!(matches!(e, BtreeError::Corrupt { .. }), "{e}");
    assert_eq!(std::fs::read(&snap).unwrap(), bytes, "snapshot untouched");
}

#[test]
fn a_page_written_after_the_version_is_corrupt() {
    let (mut img, _) = built_image();
    let root = keyspace_root(&img);
    let at = root as usize * PS + 16;
    let later = u64_at(&img, 16).max(u64_at(&img, PS + 16)) + 1;
    put_u64(&mut img, at, later);
    reseal(&mut img, root);
    let (p, reason) = corrupt_page(verify_image(img));
    assert_eq!(p, root, "{reason}");
    assert!(reason.contains("after the version"), "{reason}");
}

/// A read-only open of a file that another `Db` keeps committing to pins
/// nothing: once its pages are reused, verify says so.
#[test]
fn verify_of_a_read_only_open_detects_pages_reused_by_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let live = Db::open_path(&path, options()).unwrap();
    build(&live);
    let ro = Db::open_read_only(&path, None, options()).unwrap();
    ro.verify().unwrap();
    for round in 0..4u8 {
        let mut w = live.begin_write().unwrap();
        for i in 0..120u32 {
            w.put("a", &i.to_be_bytes(), &[round; 30]).unwrap();
        }
        w.commit().unwrap();
    }
    let e = ro.verify().unwrap_err();
    assert!(matches!(e, BtreeError::Corrupt { .. }), "{e}");
    live.verify().unwrap();
}
