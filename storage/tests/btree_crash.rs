//! Power cuts through the simulated disk: a scripted workload commits
//! several versions; the power is cut at every write/grow/sync step in
//! turn, with unsynced writes lost, kept in order, torn, or kept in any
//! subset (reordered by the device); the reopened file must
//! hold exactly the last acknowledged version — or the version being
//! committed, if the cut came at its meta write or the sync after it.

use std::collections::BTreeMap;

use cairn_storage::btree::{Db, Options, PowerCut, SimDisk, WriteTxn};

type Version = BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>;

fn options() -> Options {
    Options {
        page_size_bytes: 512,
        cache_size_bytes: 16 * 512,
        grow_chunk_bytes: 8 * 512,
        ..Options::default()
    }
}

/// Mutations of commit `c` applied to both the db and the model.
fn script(c: u32, w: &mut WriteTxn<'_>, m: &mut Version) {
    fn put(w: &mut WriteTxn<'_>, m: &mut Version, ks: &str, k: Vec<u8>, v: Vec<u8>) {
        w.put(ks, &k, &v).unwrap();
        m.entry(ks.to_string()).or_default().insert(k, v);
    }
    match c {
        0 => {
            w.create_keyspace("kv").unwrap();
            w.create_keyspace("meta").unwrap();
            for i in 0u32..120 {
                put(
                    w,
                    m,
                    "kv",
                    i.to_be_bytes().to_vec(),
                    vec![c as u8; (i % 50) as usize],
                );
            }
            put(w, m, "meta", b"big".to_vec(), vec![7; 3000]);
        }
        1 | 3 => {
            for i in (0u32..120).step_by(3) {
                put(w, m, "kv", i.to_be_bytes().to_vec(), vec![c as u8; 30]);
            }
            put(w, m, "meta", b"applied".to_vec(), c.to_le_bytes().to_vec());
        }
        2 => {
            for i in (0u32..120).filter(|i| i % 4 != 0) {
                w.delete("kv", &i.to_be_bytes()).unwrap();
                m.get_mut("kv").unwrap().remove(&i.to_be_bytes().to_vec());
            }
            put(w, m, "meta", b"big".to_vec(), vec![9; 2000]);
        }
        _ => {
            w.delete_keyspace("meta").unwrap();
            m.remove("meta");
            w.create_keyspace("other").unwrap();
            m.insert("other".into(), BTreeMap::new());
            put(w, m, "other", b"x".to_vec(), vec![1; 600]);
        }
    }
}

const COMMITS: u32 = 5;

fn content(db: &Db) -> Version {
    let r = db.begin_read().unwrap();
    let mut v = Version::new();
    for ks in r.keyspaces().unwrap() {
        let entries = r.range(&ks, ..).unwrap().map(|e| e.unwrap()).collect();
        v.insert(ks, entries);
    }
    v
}

/// Runs the workload until the disk fails. Returns every version in order
/// (index 0 = empty file) and how many commits were acknowledged.
fn workload(disk: &SimDisk) -> (Vec<Version>, usize) {
    let db = Db::open(disk.clone(), options()).unwrap();
    let mut versions = vec![Version::new()];
    let mut acked = 0;
    for c in 0..COMMITS {
        let Ok(mut w) = db.begin_write() else { break };
        let mut m = versions.last().cloned().unwrap_or_default();
        script(c, &mut w, &mut m);
        versions.push(m);
        if w.commit().is_err() {
            break;
        }
        acked += 1;
    }
    (versions, acked)
}

#[test]
fn every_power_cut_leaves_the_last_committed_version_or_the_one_in_flight() {
    // A clean run gives the step count and where each meta write is.
    let clean = SimDisk::new();
    let created = {
        drop(Db::open(clean.clone(), options()).unwrap());
        clean.steps()
    };
    let (versions, acked) = workload(&clean);
    assert_eq!(acked, COMMITS as usize);
    let total = clean.steps();
    let mut cuts = 0;
    for step in created..total {
        let disk = SimDisk::new();
        drop(Db::open(disk.clone(), options()).unwrap());
        disk.fail_at_step(step);
        let (_, acked) = workload(&disk);
        assert!(disk.is_power_off(), "step {step} was reached");
        let unsynced = disk.unsynced_ops();
        let mut modes = vec![PowerCut::LoseUnsynced];
        for ops in 0..=unsynced {
            for torn_bytes in [0, 1, 100, 511] {
                modes.push(PowerCut::KeepPrefix { ops, torn_bytes });
            }
        }
        for mask in 0..(1u64 << unsynced.min(8)) {
            modes.push(PowerCut::KeepSubset { mask });
        }
        for mode in modes {
            let after = disk.after_power_cut(mode);
            let db = Db::open(after.clone(), options())
                .unwrap_or_else(|e| panic!("step {step} {mode:?}: reopen failed: {e}"));
            let got = content(&db);
            let ok = got == versions[acked]
                || (mode != PowerCut::LoseUnsynced && got == versions[acked + 1]);
            assert!(
                ok,
                "step {step} {mode:?}: content is neither version {acked} nor the one in flight"
            );
            // The recovered file takes further commits.
            let mut w = db.begin_write().unwrap();
            w.create_keyspace("after").unwrap();
            w.put("after", b"k", &[5; 700]).unwrap();
            w.commit().unwrap();
            drop(db);
            let db = Db::open(after, options()).unwrap();
            let mut expect = got.clone();
            expect.insert("after".into(), [(b"k".to_vec(), vec![5; 700])].into());
            assert_eq!(
                content(&db),
                expect,
                "step {step} {mode:?}: commit after recovery"
            );
            cuts += 1;
        }
    }
    assert!(cuts > 100, "only {cuts} cuts tried");
}

#[test]
fn a_cut_before_the_meta_write_always_keeps_the_previous_version() {
    // With unsynced writes lost, whatever the step, the content is exactly
    // the last acknowledged version (never the one in flight).
    let probe = SimDisk::new();
    drop(Db::open(probe.clone(), options()).unwrap());
    let created = probe.steps();
    let _ = workload(&probe);
    for step in created..probe.steps() {
        let disk = SimDisk::new();
        drop(Db::open(disk.clone(), options()).unwrap());
        disk.fail_at_step(step);
        let (versions, acked) = workload(&disk);
        let db = Db::open(disk.after_power_cut(PowerCut::LoseUnsynced), options()).unwrap();
        assert_eq!(content(&db), versions[acked], "step {step}");
    }
}
