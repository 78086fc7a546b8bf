//! Read transactions keep their version while the writer commits, and the
//! pages they can see are reused only after they close.

use cairn_storage::btree::{Db, Options, SimDisk};

fn options() -> Options {
    Options {
        page_size_bytes: 512,
        cache_size_bytes: 8 * 512,
        grow_chunk_bytes: 8 * 512,
        ..Options::default()
    }
}

fn rewrite_all(db: &Db, round: u8) {
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for i in 0u32..300 {
        w.put("kv", &i.to_be_bytes(), &[round; 40]).unwrap();
    }
    w.commit().unwrap();
}

fn assert_round(r: &cairn_storage::btree::ReadTxn, round: u8) {
    let all: Vec<_> = r.range("kv", ..).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(all.len(), 300);
    assert!(
        all.iter().all(|(_, v)| v == &vec![round; 40]),
        "reader sees round {round}"
    );
}

#[test]
fn read_txn_keeps_its_version_while_the_writer_commits() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    rewrite_all(&db, 1);
    let r = db.begin_read().unwrap();
    for round in 2..6 {
        rewrite_all(&db, round);
        assert_round(&r, 1);
        assert_round(&db.begin_read().unwrap(), round);
    }
    // A reader opened while a write transaction is open sees the committed
    // version, not the writer's.
    let mut w = db.begin_write().unwrap();
    w.put("kv", &0u32.to_be_bytes(), b"uncommitted").unwrap();
    assert_round(&db.begin_read().unwrap(), 5);
    assert!(db.begin_write().is_err(), "one writer at a time");
    drop(w);
    assert_round(&db.begin_read().unwrap(), 5);
}

#[test]
fn pages_freed_under_an_open_reader_are_reused_only_after_it_closes() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    rewrite_all(&db, 1);
    rewrite_all(&db, 2);
    rewrite_all(&db, 3);
    // Without readers a full rewrite reuses pages: the file stops growing.
    let steady = db.stats().page_count;
    rewrite_all(&db, 4);
    assert_eq!(db.stats().page_count, steady);

    let r = db.begin_read().unwrap(); // holds version 4
                                      // Round 5 may reuse what txn 4 freed: reachable from version 3 only.
    rewrite_all(&db, 5);
    let mut last = db.stats().page_count;
    // From round 6 on, what is freed is version 4's pages: held.
    for round in 6..9 {
        rewrite_all(&db, round);
        let s = db.stats();
        assert!(
            s.page_count > last,
            "round {round}: no page the reader sees is reused"
        );
        assert!(s.pending_pages > 0);
        last = s.page_count;
        assert_round(&r, 4);
    }
    drop(r);
    rewrite_all(&db, 9);
    let s = db.stats();
    assert!(
        s.free_pages > 0,
        "pages released once the reader closed: {s:?}"
    );
    let before = s.page_count;
    for round in 10..13 {
        rewrite_all(&db, round);
    }
    assert_eq!(db.stats().page_count, before, "released pages are reused");
}

#[test]
fn readers_on_other_threads_see_consistent_versions() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    rewrite_all(&db, 0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let r = db.begin_read().unwrap();
            s.spawn(move || {
                for _ in 0..20 {
                    assert_round(&r, 0);
                }
            });
        }
        for round in 1..20 {
            rewrite_all(&db, round);
        }
    });
    assert_round(&db.begin_read().unwrap(), 19);
}

#[test]
fn freelist_survives_a_restart() {
    let disk = SimDisk::new();
    let count = {
        let db = Db::open(disk.clone(), options()).unwrap();
        for round in 0..4 {
            rewrite_all(&db, round);
        }
        db.stats().page_count
    };
    let db = Db::open(disk, options()).unwrap();
    assert!(db.stats().free_pages > 0);
    for round in 4..8 {
        rewrite_all(&db, round);
    }
    assert_eq!(
        db.stats().page_count,
        count,
        "space is reused across restarts"
    );
}
