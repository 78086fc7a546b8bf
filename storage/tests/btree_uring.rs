//! The page file over O_DIRECT + io_uring (`UringDisk`), in a real
//! directory under the target dir (never tmpfs, which has no O_DIRECT to
//! test): a model run against a `BTreeMap`, unaligned reads, growth, large
//! overflow values, the descriptor's flags, and the fallbacks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_storage::btree::{Db, Disk, Options, UringDisk};
use tempfile::TempDir;

fn tmp() -> TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

/// Whether O_DIRECT + io_uring works in the target dir; tests that need it
/// say so and skip when it does not (a sandbox without io_uring).
fn direct_supported() -> Option<u64> {
    let dir = tmp();
    match UringDisk::open(&dir.path().join("probe")) {
        Ok(d) => {
            eprintln!("O_DIRECT alignment here: {} bytes", d.offset_align_bytes());
            Some(d.offset_align_bytes())
        }
        Err(e) => {
            eprintln!("skipping O_DIRECT checks: {e}");
            None
        }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = splitmix64(self.0);
        self.0 % n
    }
}

fn model_options(page_size_bytes: u32) -> Options {
    Options {
        page_size_bytes,
        cache_size_bytes: 16 * u64::from(page_size_bytes), // most reads go to the disk
        grow_chunk_bytes: 64 << 10,                        // grows often
        ..Options::default()
    }
}

fn value(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(20) {
        0 => 1000 + rng.below(20_000), // overflow run
        1..=4 => 300 + rng.below(700),
        _ => rng.below(100),
    } as usize;
    let b = rng.below(256) as u8;
    (0..len).map(|i| b ^ (i as u8)).collect()
}

fn assert_matches(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, seed: u64) {
    let r = db.begin_read().unwrap();
    let got: Vec<(Vec<u8>, Vec<u8>)> = r.range("kv", ..).unwrap().map(|e| e.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(got == want, "seed {seed}: file and model differ");
}

/// Random transactions (puts of small, medium and overflow values,
/// deletes, gets; commit or abort) and reopens, checked against a model.
fn run_model(page_size_bytes: u32, seed: u64, budget: Duration) {
    let align = direct_supported();
    let direct = align.is_some_and(|a| u64::from(page_size_bytes) % a == 0);
    let opts = model_options(page_size_bytes);
    let mut rng = Rng(seed);
    let dir = tmp();
    let path = dir.path().join("db");
    let mut db = Db::open_path(&path, opts.clone()).unwrap();
    assert_eq!(db.uses_direct_io(), direct, "seed {seed}");
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.commit().unwrap();
    let mut model = BTreeMap::new();
    let deadline = Instant::now() + budget;
    for round in 0..400 {
        if Instant::now() > deadline {
            break;
        }
        let mut view = model.clone();
        let mut w = db.begin_write().unwrap();
        for _ in 0..1 + rng.below(150) {
            let k = rng.below(3000).to_be_bytes()[6..].to_vec();
            match rng.below(10) {
                0..=5 => {
                    let v = value(&mut rng);
                    w.put("kv", &k, &v).unwrap();
                    view.insert(k, v);
                }
                6..=8 => assert_eq!(w.delete("kv", &k).unwrap(), view.remove(&k).is_some()),
                _ => assert_eq!(w.get("kv", &k).unwrap(), view.get(&k).cloned()),
            }
        }
        if rng.below(5) == 0 {
            w.abort();
        } else {
            w.commit().unwrap();
            model = view;
        }
        if round % 10 == 0 {
            assert_matches(&db, &model, seed);
        }
        if rng.below(15) == 0 {
            drop(db);
            db = Db::open_path(&path, opts.clone()).unwrap();
            assert_eq!(db.uses_direct_io(), direct, "seed {seed}");
            assert_matches(&db, &model, seed);
        }
    }
    drop(db);
    let db = Db::open_path(&path, opts).unwrap();
    assert_matches(&db, &model, seed);
}

#[test]
fn random_transactions_and_reopens_match_a_btreemap_with_4k_pages() {
    run_model(4096, 0xcafe_f00d, Duration::from_secs(3));
}

#[test]
fn random_transactions_and_reopens_match_a_btreemap_with_512_byte_pages() {
    run_model(512, 0x5eed_0512, Duration::from_secs(2));
}

#[test]
fn unaligned_reads_return_the_bytes_written() {
    let Some(align) = direct_supported() else {
        return;
    };
    let dir = tmp();
    let path = dir.path().join("f");
    let d = UringDisk::open(&path).unwrap();
    d.grow(64 << 10).unwrap();
    let len = d.len_bytes().unwrap();
    assert!(len >= 64 << 10 && len.is_multiple_of(align));
    let a: Vec<u8> = (0..8192u32).map(|i| (i * 7) as u8).collect();
    let b: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 1) as u8).collect();
    d.write_pages(&[(0, &a), (16384, &b)]).unwrap();
    d.sync().unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[..8192], &a[..]);
    assert_eq!(&on_disk[16384..20480], &b[..]);
    for (offset, n) in [
        (0, 512),
        (0, 40),
        (7, 100),
        (4000, 200),
        (8190, 8200),
        (len - 10, 10),
    ] {
        let mut buf = vec![0u8; n as usize];
        d.read_at(offset, &mut buf).unwrap();
        let at = offset as usize;
        assert_eq!(buf, on_disk[at..at + n as usize], "read of {n} at {offset}");
    }
    let mut past_end = vec![0u8; 8];
    assert!(d.read_at(len - 4, &mut past_end).is_err());
}

#[test]
fn grow_keeps_earlier_bytes_and_writes_zeros() {
    let Some(align) = direct_supported() else {
        return;
    };
    let dir = tmp();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![0xab; 1000]).unwrap(); // an unaligned end
    let d = UringDisk::open(&path).unwrap();
    d.grow(3 << 20).unwrap();
    d.sync().unwrap();
    let len = d.len_bytes().unwrap();
    assert!(len >= 3 << 20 && len.is_multiple_of(align), "len {len}");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[..1000].iter().all(|&b| b == 0xab));
    assert!(bytes[1000..].iter().all(|&b| b == 0));
    d.grow(4096).unwrap(); // shrinking is not growing: no-op
    assert_eq!(d.len_bytes().unwrap(), len);
}

#[test]
fn large_overflow_values_span_many_pages() {
    let dir = tmp();
    let path = dir.path().join("db");
    let db = Db::open_path(&path, Options::default()).unwrap();
    let big = |n: usize, salt: u8| -> Vec<u8> { (0..n).map(|i| (i % 251) as u8 ^ salt).collect() };
    // 1 MiB + 1 crosses the largest single write; 20 MiB the staging
    // buffer the disk keeps between commits.
    let sizes = [
        (b"a", 1 << 20 | 1, 1u8),
        (b"b", 20 << 20, 2),
        (b"c", 5000, 3),
    ];
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    for (k, n, salt) in sizes {
        w.put("kv", k, &big(n, salt)).unwrap();
    }
    w.commit().unwrap();
    let mut w = db.begin_write().unwrap();
    w.put("kv", b"a", &big(3 << 20, 9)).unwrap(); // replaced: a new run
    w.commit().unwrap();
    drop(db);
    let db = Db::open_path(&path, Options::default()).unwrap();
    let r = db.begin_read().unwrap();
    assert_eq!(r.get("kv", b"a").unwrap(), Some(big(3 << 20, 9)));
    assert_eq!(r.get("kv", b"b").unwrap(), Some(big(20 << 20, 2)));
    assert_eq!(r.get("kv", b"c").unwrap(), Some(big(5000, 3)));
}

/// The `flags` line of `/proc/self/fdinfo` for a descriptor open on `path`.
fn fd_flags(path: &Path) -> Option<i32> {
    for e in std::fs::read_dir("/proc/self/fd").ok()? {
        let e = e.ok()?;
        if std::fs::read_link(e.path()).ok().as_deref() != Some(path) {
            continue;
        }
        let info = std::fs::read_to_string(Path::new("/proc/self/fdinfo").join(e.file_name()));
        let info = info.ok()?;
        let line = info.lines().find(|l| l.starts_with("flags:"))?;
        return i32::from_str_radix(line["flags:".len()..].trim(), 8).ok();
    }
    None
}

#[test]
fn the_page_file_descriptor_has_o_direct() {
    let Some(_) = direct_supported() else {
        return;
    };
    let dir = tmp();
    let path = dir.path().canonicalize().unwrap().join("db");
    let db = Db::open_path(&path, Options::default()).unwrap();
    assert!(db.uses_direct_io());
    let flags = fd_flags(&path).expect("an open descriptor on the page file");
    assert_ne!(flags & libc::O_DIRECT, 0, "flags {flags:o}");
    drop(db);
    let opts = Options {
        direct_io: false,
        ..Options::default()
    };
    let db = Db::open_path(&path, opts).unwrap();
    assert!(!db.uses_direct_io());
    let flags = fd_flags(&path).expect("an open descriptor on the page file");
    assert_eq!(flags & libc::O_DIRECT, 0, "flags {flags:o}");
}

#[test]
fn a_page_size_below_the_alignment_falls_back_to_buffered_io() {
    let Some(align) = direct_supported() else {
        return;
    };
    let dir = tmp();
    let opts = Options {
        page_size_bytes: 512,
        ..Options::default()
    };
    let db = Db::open_path(&dir.path().join("db"), opts.clone()).unwrap();
    assert_eq!(db.uses_direct_io(), 512 % align == 0);
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.put("kv", b"k", b"v").unwrap();
    w.commit().unwrap();
    drop(db);
    // Reopened with a default (4096) page size in the options: the file's
    // own 512 decides.
    let db = Db::open_path(&dir.path().join("db"), Options::default()).unwrap();
    assert_eq!(db.uses_direct_io(), 512 % align == 0);
    assert_eq!(
        db.begin_read().unwrap().get("kv", b"k").unwrap(),
        Some(b"v".to_vec())
    );
}

fn tmpfs_dir() -> Option<PathBuf> {
    let shm = Path::new("/dev/shm");
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    let is_tmpfs = mounts
        .lines()
        .any(|l| l.split(' ').nth(1) == Some("/dev/shm") && l.split(' ').nth(2) == Some("tmpfs"));
    (is_tmpfs && shm.is_dir()).then(|| shm.to_path_buf())
}

#[test]
fn tmpfs_falls_back_to_buffered_io() {
    let Some(shm) = tmpfs_dir() else {
        eprintln!("skipping: no tmpfs at /dev/shm");
        return;
    };
    let dir = tempfile::tempdir_in(shm).unwrap();
    let path = dir.path().join("db");
    let db = Db::open_path(&path, Options::default()).unwrap();
    assert!(!db.uses_direct_io());
    let mut w = db.begin_write().unwrap();
    w.create_keyspace("kv").unwrap();
    w.put("kv", b"k", b"v").unwrap();
    w.commit().unwrap();
    drop(db);
    let db = Db::open_path(&path, Options::default()).unwrap();
    assert!(!db.uses_direct_io());
    assert_eq!(
        db.begin_read().unwrap().get("kv", b"k").unwrap(),
        Some(b"v".to_vec())
    );
}
