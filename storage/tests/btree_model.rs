//! Model-based property test of the page file against a `BTreeMap` per
//! keyspace: random mixes of put, delete, get, range (both directions,
//! random bounds), commit, abort, reopen and readers held across commits.

use std::collections::BTreeMap;
use std::ops::Bound;

use cairn_storage::btree::{Db, Options, ReadTxn, SimDisk, WriteTxn};
use proptest::prelude::*;

type Model = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

const KEYSPACES: [&str; 3] = ["a", "bee", "kv"];

#[derive(Clone, Debug)]
enum Op {
    Put(usize, Vec<u8>, Vec<u8>),
    Delete(usize, Vec<u8>),
    Get(usize, Vec<u8>),
    /// Puts (or deletes) keys `[prefix, i / 256, i % 256]` for `i < n`:
    /// grows and shrinks trees by several levels at once.
    Bulk {
        ks: usize,
        prefix: u8,
        n: u16,
        delete: bool,
    },
    Range {
        ks: usize,
        lo: Option<(Vec<u8>, bool)>,
        hi: Option<(Vec<u8>, bool)>,
        reverse: bool,
    },
    Commit,
    Abort,
    Reopen,
    OpenReader,
    CloseReader,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0u8..5, 0..7)
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..40),
        2 => prop::collection::vec(any::<u8>(), 90..400),
        1 => (600usize..5000, any::<u8>()).prop_map(|(n, b)| (0..n).map(|i| b ^ (i as u8)).collect()),
    ]
}

fn bound() -> impl Strategy<Value = Option<(Vec<u8>, bool)>> {
    prop::option::of((key(), any::<bool>()))
}

fn op() -> impl Strategy<Value = Op> {
    let ks = 0..KEYSPACES.len();
    prop_oneof![
        40 => (ks.clone(), key(), value()).prop_map(|(k, a, b)| Op::Put(k, a, b)),
        15 => (ks.clone(), key()).prop_map(|(k, a)| Op::Delete(k, a)),
        10 => (ks.clone(), key()).prop_map(|(k, a)| Op::Get(k, a)),
        2 => (ks.clone(), 0u8..5, 1u16..1500, any::<bool>())
            .prop_map(|(ks, prefix, n, delete)| Op::Bulk { ks, prefix, n, delete }),
        10 => (ks, bound(), bound(), any::<bool>())
            .prop_map(|(ks, lo, hi, reverse)| Op::Range { ks, lo, hi, reverse }),
        5 => Just(Op::Commit),
        2 => Just(Op::Abort),
        1 => Just(Op::Reopen),
        2 => Just(Op::OpenReader),
        2 => Just(Op::CloseReader),
    ]
}

fn options() -> Options {
    Options {
        page_size_bytes: 512,
        cache_size_bytes: 64 * 512,
        grow_chunk_bytes: 16 * 512,
        ..Options::default()
    }
}

fn to_bound(b: &Option<(Vec<u8>, bool)>) -> Bound<&[u8]> {
    match b {
        None => Bound::Unbounded,
        Some((k, true)) => Bound::Included(k.as_slice()),
        Some((k, false)) => Bound::Excluded(k.as_slice()),
    }
}

fn in_range(k: &[u8], lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    let lo_ok = match lo {
        Bound::Unbounded => true,
        Bound::Included(b) => k >= b,
        Bound::Excluded(b) => k > b,
    };
    let hi_ok = match hi {
        Bound::Unbounded => true,
        Bound::Included(b) => k <= b,
        Bound::Excluded(b) => k < b,
    };
    lo_ok && hi_ok
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn model_range(
    m: &BTreeMap<Vec<u8>, Vec<u8>>,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
) -> Entries {
    let mut v: Entries = m
        .iter()
        .filter(|(k, _)| in_range(k, lo, hi))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rev {
        v.reverse();
    }
    v
}

fn check_reader(r: &ReadTxn, m: &Model) {
    for (ks, entries) in m {
        let got: Entries = r.range(ks, ..).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(
            got,
            model_range(entries, Bound::Unbounded, Bound::Unbounded, false),
            "{ks}"
        );
        let got: Entries = r.range_rev(ks, ..).unwrap().map(|e| e.unwrap()).collect();
        assert_eq!(got.len(), entries.len(), "{ks} reverse");
    }
    assert_eq!(
        r.keyspaces().unwrap(),
        m.keys().cloned().collect::<Vec<_>>()
    );
}

/// Applies one data op inside the write transaction and checks it.
fn apply(w: &mut WriteTxn<'_>, work: &mut Model, op: &Op) {
    match op {
        Op::Put(ks, k, v) => {
            let name = KEYSPACES[*ks];
            let existed = w.put(name, k, v).unwrap();
            let m = work.get_mut(name).unwrap();
            assert_eq!(existed, m.insert(k.clone(), v.clone()).is_some());
        }
        Op::Delete(ks, k) => {
            let name = KEYSPACES[*ks];
            let existed = w.delete(name, k).unwrap();
            assert_eq!(existed, work.get_mut(name).unwrap().remove(k).is_some());
        }
        Op::Bulk {
            ks,
            prefix,
            n,
            delete,
        } => {
            let name = KEYSPACES[*ks];
            let m = work.get_mut(name).unwrap();
            for i in 0..*n {
                let k = vec![*prefix, (i >> 8) as u8, i as u8];
                if *delete {
                    assert_eq!(w.delete(name, &k).unwrap(), m.remove(&k).is_some());
                } else {
                    let v = vec![i as u8; (i % 23) as usize];
                    assert_eq!(w.put(name, &k, &v).unwrap(), m.insert(k, v).is_some());
                }
            }
        }
        Op::Get(ks, k) => {
            let name = KEYSPACES[*ks];
            assert_eq!(w.get(name, k).unwrap().as_ref(), work[name].get(k));
        }
        Op::Range {
            ks,
            lo,
            hi,
            reverse,
        } => {
            let name = KEYSPACES[*ks];
            let (lo, hi) = (to_bound(lo), to_bound(hi));
            let got: Entries = if *reverse {
                w.range_rev(name, (lo, hi))
                    .unwrap()
                    .map(|e| e.unwrap())
                    .collect()
            } else {
                w.range(name, (lo, hi))
                    .unwrap()
                    .map(|e| e.unwrap())
                    .collect()
            };
            assert_eq!(got, model_range(&work[name], lo, hi, *reverse));
        }
        _ => unreachable!("control ops are handled by the driver"),
    }
}

fn run(ops: &[Op]) {
    let disk = SimDisk::new();
    let mut committed: Model = Model::new();
    {
        let db = Db::open(disk.clone(), options()).unwrap();
        let mut w = db.begin_write().unwrap();
        for ks in KEYSPACES {
            assert!(w.create_keyspace(ks).unwrap());
            committed.insert(ks.to_string(), BTreeMap::new());
        }
        w.commit().unwrap();
    }
    let mut i = 0;
    'sessions: loop {
        let db = Db::open(disk.clone(), options()).unwrap();
        let mut readers: Vec<(ReadTxn, Model)> = Vec::new();
        check_reader(&db.begin_read().unwrap(), &committed);
        loop {
            let mut w = db.begin_write().unwrap();
            let mut work = committed.clone();
            loop {
                let Some(op) = ops.get(i) else {
                    break 'sessions;
                };
                i += 1;
                match op {
                    Op::Commit => {
                        w.commit().unwrap();
                        committed = work;
                        break;
                    }
                    Op::Abort => break,
                    Op::Reopen => continue 'sessions,
                    Op::OpenReader if readers.len() < 3 => {
                        readers.push((db.begin_read().unwrap(), committed.clone()));
                    }
                    Op::CloseReader => {
                        if let Some((r, m)) = readers.pop() {
                            check_reader(&r, &m);
                        }
                    }
                    Op::OpenReader => {}
                    _ => apply(&mut w, &mut work, op),
                }
            }
            for (r, m) in &readers {
                check_reader(r, m);
            }
        }
    }
    let db = Db::open(disk, options()).unwrap();
    check_reader(&db.begin_read().unwrap(), &committed);
    if std::env::var_os("BTREE_MODEL_STATS").is_some() {
        let keys: usize = committed.values().map(|m| m.len()).sum();
        eprintln!("ops {} keys {keys} {:?}", ops.len(), db.stats());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn page_file_matches_a_btreemap_model(ops in prop::collection::vec(op(), 1..800)) {
        run(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Hundreds of thousands of ops: `cargo test -p cairn-storage --release
    /// --test btree_model -- --ignored`.
    #[test]
    #[ignore]
    fn page_file_matches_a_btreemap_model_long(ops in prop::collection::vec(op(), 1..3000)) {
        run(&ops);
    }
}
