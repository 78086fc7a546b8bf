//! `ReadTxn::scan` visits exactly what a full range iteration does, in
//! order, overflow values included, and stops at the caller's error;
//! `scan_parallel` visits the same, split into runs in key order.

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
        prop_assert_eq!(&seen, &want);
        for threads in [1, 2, 3, 7] {
            let runs = r
                .scan_parallel("k", threads, Vec::new, |run, k, v| -> Result<(), BtreeError> {
                    run.push((k.to_vec(), v.to_vec()));
                    Ok(())
                })
                .unwrap();
            prop_assert!(runs.len() <= threads);
            prop_assert!(runs.iter().all(|r| !r.is_empty()));
            prop_assert_eq!(runs.concat(), want.clone());
        }
    }
}

#[test]
fn scan_parallel_uses_every_thread_on_a_deep_tree_and_stops_at_an_error() {
    let db = Db::open(SimDisk::new(), options()).unwrap();
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("k").unwrap();
    w.create_keyspace("empty").unwrap();
    for i in 0..5000u32 {
        w.put("k", &i.to_be_bytes(), &[7; 40]).unwrap();
    }
    w.commit().unwrap();
    let r = db.begin_read().unwrap();
    let count = |_: &mut usize, _: &[u8], _: &[u8]| Ok::<(), Stop>(());
    let runs = r.scan_parallel(
        "k",
        4,
        || 0usize,
        |n, _, _| -> Result<(), Stop> {
            *n += 1;
            Ok(())
        },
    );
    let runs = runs.unwrap();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert_eq!(runs.iter().sum::<usize>(), 5000);
    assert!(runs.iter().all(|&n| n > 500), "uneven runs: {runs:?}");
    assert!(r.scan_parallel("empty", 4, || 0, count).unwrap().is_empty());
    let res = r.scan_parallel(
        "k",
        4,
        || 0usize,
        |n, k, _| {
            *n += 1;
            if k == 4321u32.to_be_bytes() {
                Err(Stop::Here)
            } else {
                Ok(())
            }
        },
    );
    assert!(matches!(res, Err(Stop::Here)));
    assert!(matches!(
        r.scan_parallel("nope", 4, || 0, count),
        Err(Stop::Btree)
    ));
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
