//! Damaged bytes are reported as corruption naming the page, never
//! answered with wrong data; a damaged meta page falls back to the other.

use std::collections::BTreeMap;

use cairn_storage::btree::{BtreeError, Db, Options, SimDisk};

const PAGE: u64 = 512;

fn options() -> Options {
    Options {
        page_size_bytes: PAGE as u32,
        cache_size_bytes: 64 * PAGE,
        grow_chunk_bytes: 8 * PAGE,
        ..Options::default()
    }
}

type Content = BTreeMap<Vec<u8>, Vec<u8>>;

fn commit_round(db: &Db, round: u8, n: u32) -> Content {
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0..n {
        w.put("kv", &i.to_be_bytes(), &[round; 30]).unwrap();
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    r.range("kv", ..).unwrap().map(|e| e.unwrap()).collect()
}

fn read_all(db: &Db) -> Result<Content, BtreeError> {
    let r = db.begin_read()?;
    r.range("kv", ..)?.collect()
}

#[test]
fn a_flipped_byte_in_any_page_is_named_or_harmless_never_wrong_data() {
    let disk = SimDisk::new();
    let (expected, pages) = {
        let db = Db::open(disk.clone(), options()).unwrap();
        commit_round(&db, 1, 200);
        let c = commit_round(&db, 2, 200);
        (c, db.stats().page_count)
    };
    let image = disk.image();
    let mut named = 0;
    for page in 2..pages {
        let d = SimDisk::from_image(image.clone());
        d.corrupt_byte(page * PAGE + 200, 0x40);
        let r = Db::open(d, options()).and_then(|db| read_all(&db));
        match r {
            Ok(c) => assert_eq!(c, expected, "page {page} was unreachable"),
            Err(BtreeError::Corrupt {
                page: p, reason, ..
            }) => {
                assert_eq!(p, page, "the error names the damaged page ({reason})");
                named += 1;
            }
            Err(e) => panic!("page {page}: unexpected error {e}"),
        }
    }
    assert!(named > 10, "only {named} pages were reachable");
}

#[test]
fn a_flipped_byte_in_a_data_page_fails_the_read_with_corrupt() {
    let disk = SimDisk::new();
    {
        let db = Db::open(disk.clone(), options()).unwrap();
        commit_round(&db, 1, 3); // one leaf: page 2 is the root
    }
    disk.corrupt_byte(2 * PAGE + 45, 1);
    let db = Db::open(disk, options()).unwrap();
    let r = db.begin_read().unwrap();
    let e = r.get("kv", &0u32.to_be_bytes()).unwrap_err();
    assert!(matches!(e, BtreeError::Corrupt { page: 2, .. }), "{e}");
    assert!(e.to_string().contains("page 2"), "{e}");
}

#[test]
fn a_damaged_meta_falls_back_to_the_other_one() {
    let disk = SimDisk::new();
    let (v1, v2) = {
        let db = Db::open(disk.clone(), options()).unwrap();
        let v1 = commit_round(&db, 1, 50); // txn 1: meta slot 1
        let v2 = commit_round(&db, 2, 80); // txn 2: meta slot 0
        (v1, v2)
    };
    let image = disk.image();

    let newest_bad = SimDisk::from_image(image.clone());
    newest_bad.corrupt_byte(100, 0x08);
    let db = Db::open(newest_bad, options()).unwrap();
    assert_eq!(db.stats().txn_id, 1);
    assert_eq!(read_all(&db).unwrap(), v1);

    let older_bad = SimDisk::from_image(image.clone());
    older_bad.corrupt_byte(PAGE + 100, 0x08);
    let db = Db::open(older_bad, options()).unwrap();
    assert_eq!(read_all(&db).unwrap(), v2);

    let both_bad = SimDisk::from_image(image);
    both_bad.corrupt_byte(100, 0x08);
    both_bad.corrupt_byte(PAGE + 100, 0x08);
    match Db::open(both_bad, options()) {
        Err(e @ BtreeError::NoValidMeta { .. }) => {
            assert!(e.to_string().contains("no valid meta page"), "{e}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a file with two bad metas"),
    }
}

#[test]
fn a_file_that_is_not_a_page_file_is_refused() {
    let d = SimDisk::from_image(vec![0xAB; 8192]);
    assert!(matches!(
        Db::open(d, options()),
        Err(BtreeError::NoValidMeta { .. })
    ));
}
