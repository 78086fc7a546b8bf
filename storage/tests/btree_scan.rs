//! `ReadTxn::scan` visits exactly what a full range iteration does, in
//! order, overflow values included, and stops at the caller's error.

use cairn_storage::btree::{BtreeError, Db, Options, SimDisk};
use proptest::prelude::*;

fn options() -> Options {
    Options {
        page_size_bytes: 512,
        ..Options::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn scan_visits_what_range_iterates(
        entries in prop::collection::btree_map(
            prop::collection::vec(any::<u8>(), 1..40),
            prop::collection::vec(any::<u8>(), 0..700),
            0..300,
        )
    ) {
        let db = Db::open(SimDisk::new(), options()).unwrap();
        let mut w = db.begin_write().unwrap();
        w.create_keyspace("k").unwrap();
        for (k, v) in &entries {
            w.put("k", k, v).unwrap();
        }
        w.commit().unwrap();
        let r = db.begin_read().unwrap();
        let mut seen = Vec::new();
        r.scan("k", |k, v| -> Result<(), BtreeError> {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(())
        })
        .unwrap();
        let want: Vec<_> = entries.into_iter().collect();
        prop_assert_eq!(seen, want);
    }
}

#[derive(Debug)]
enum Stop {
    Here,
    Btree,
}

impl From<BtreeError> for Stop {
    fn from(_: BtreeError) -> Stop {
        Stop::Btree
    }
}

#[test]
fn scan_stops_at_the_callers_error_and_missing_keyspace_is_an_error() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("k").unwrap();
    for i in 0..100u32 {
        w.put("k", &i.to_be_bytes(), b"v").unwrap();
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let mut n = 0;
    let res = r.scan("k", |_, _| {
        n += 1;
        if n == 10 {
            Err(Stop::Here)
        } else {
            Ok(())
        }
    });
    assert!(matches!(res, Err(Stop::Here)));
    assert_eq!(n, 10);
    assert!(matches!(
        r.scan("nope", |_, _| Ok::<(), Stop>(())),
        Err(Stop::Btree)
    ));
}
