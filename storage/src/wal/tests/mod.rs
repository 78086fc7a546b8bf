//! Tests of the WAL as a whole: writer + recovery on real files.

mod damage;
mod model;
mod release;
mod rewrite;
mod verify;

use std::future::Future;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;

/// glommio locks memory for its rings and buffers (ulimit -l is small):
/// one executor at a time across the tests of this binary.
static GLOMMIO: Mutex<()> = Mutex::new(());

pub(crate) fn run<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let _guard = GLOMMIO.lock().unwrap_or_else(|e| e.into_inner());
    glommio::LocalExecutorBuilder::default()
        .spawn(f)
        .expect("spawn glommio executor")
        .join()
        .expect("glommio executor panicked")
}

fn small_opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 256 << 10,
        max_batch_bytes: 64 << 10,
        direct_io: DirectIo::Auto,
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(std::env::temp_dir()).expect("tempdir")
}

fn entry(index: u64, data_bytes: usize) -> OwnedRecord {
    let data = (0..data_bytes)
        .map(|i| (index as usize * 31 + i * 7 + 1) as u8)
        .collect();
    OwnedRecord {
        kind: RecordKind::Entry,
        term: 1 + index / 10,
        index,
        data,
    }
}

fn entries(range: Range<u64>, data_bytes: usize) -> Vec<OwnedRecord> {
    range.map(|i| entry(i, data_bytes)).collect()
}

/// Recovers `dir`, opens a writer at the tail (or at `tail_override`),
/// writes one flush per batch, closes.
fn write_batches_at(
    dir: &Path,
    opts: &WalOptions,
    batches: Vec<Vec<OwnedRecord>>,
    tail_override: Option<TailPosition>,
) -> Vec<FlushStats> {
    let (dir, opts) = (dir.to_path_buf(), opts.clone());
    run(move || async move {
        let tail = tail_override.unwrap_or_else(|| recover(&dir, &opts).expect("recover").tail);
        let mut wal = Wal::open(&dir, opts, &tail).await.expect("open");
        let mut stats = Vec::new();
        for batch in batches {
            for r in batch {
                wal.append(r.kind, r.term, r.index, &r.data)
                    .expect("append");
            }
            stats.push(wal.flush().await.expect("flush"));
        }
        wal.close().await.expect("close");
        stats
    })
}

fn write_batches(dir: &Path, opts: &WalOptions, batches: Vec<Vec<OwnedRecord>>) -> Vec<FlushStats> {
    write_batches_at(dir, opts, batches, None)
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    let prefix = format!("{seq:016x}-");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&prefix) && n.ends_with(".wal")
        })
        .expect("segment exists")
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn overwrite(path: &Path, offset: u64, bytes: &[u8]) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

/// Deterministic non-zero garbage.
fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x as u8) | 1
        })
        .collect()
}

#[test]
fn empty_or_missing_dir_is_an_empty_log() {
    let dir = tempdir();
    let missing = dir.path().join("member/wal");
    let rec = recover(&missing, &small_opts()).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(
        rec.tail,
        TailPosition {
            segment: None,
            last_index: None,
            rewrite_floor: None
        }
    );
    let rec = recover(dir.path(), &small_opts()).unwrap();
    assert!(rec.records.is_empty() && rec.tail.segment.is_none());
}

#[test]
fn records_round_trip_across_restart() {
    let dir = tempdir();
    let opts = small_opts();
    let hs = OwnedRecord {
        kind: RecordKind::HardState,
        term: 3,
        index: 2,
        data: b"vote=2".to_vec(),
    };
    let mut first = entries(1..4, 100);
    first.push(hs.clone());
    write_batches(dir.path(), &opts, vec![first.clone(), entries(4..5, 0)]);
    let rec = recover(dir.path(), &opts).unwrap();
    let mut want = first;
    want.extend(entries(4..5, 0));
    assert_eq!(rec.records, want);
    assert_eq!(rec.tail.last_index, Some(4));
    assert!(rec.torn_tail.is_none());

    // Second session continues at the tail.
    write_batches(dir.path(), &opts, vec![entries(5..9, 1000)]);
    let rec = recover(dir.path(), &opts).unwrap();
    want.extend(entries(5..9, 1000));
    assert_eq!(rec.records, want);
    assert_eq!(rec.tail.next_index(), Some(9));
    assert_eq!(file_names(dir.path())[0], segment_file_name(0, 0));
}

#[test]
fn a_small_first_segment_is_followed_by_full_ones_and_recovers() {
    let dir = tempdir();
    let opts = small_opts();
    let small = opts.max_batch_bytes + BLOCK_SIZE_BYTES;
    let write = |first: u64, batches: u64| {
        let (d, o) = (dir.path().to_path_buf(), opts.clone());
        run(move || async move {
            let tail = recover(&d, &o).expect("recover").tail;
            let mut wal = Wal::open_sized(&d, o, &tail, small).await.expect("open");
            for b in 0..batches {
                for r in entries(first + b * 6..first + (b + 1) * 6, 4000) {
                    wal.append(r.kind, r.term, r.index, &r.data)
                        .expect("append");
                }
                wal.flush().await.expect("flush");
            }
            wal.close().await.expect("close");
        })
    };
    // 24 KiB batches: two fit in the small first segment, ten in a full one.
    write(1, 15);
    let size = |seq| {
        std::fs::metadata(segment_path(dir.path(), seq))
            .unwrap()
            .len()
    };
    assert_eq!(size(0), small, "the first segment is one batch large");
    assert_eq!(size(1), opts.segment_size_bytes);
    // A reopened writer starts in a new small segment (seq 3), then rolls
    // to full ones (its third batch goes to seq 4).
    write(91, 3);
    let names = file_names(dir.path());
    assert!(
        names.contains(&"0000000000000003-000000000000005b.wal".to_string()),
        "{names:?}"
    );
    assert_eq!(size(3), small, "{names:?}");
    assert_eq!(size(4), opts.segment_size_bytes, "{names:?}");
    let rec = recover(dir.path(), &opts).unwrap();
    let indexes: Vec<u64> = rec
        .records
        .iter()
        .filter(|r| r.kind == RecordKind::Entry)
        .map(|r| r.index)
        .collect();
    assert_eq!(indexes, (1..=108).collect::<Vec<_>>());
}

#[test]
fn rollover_creates_preallocated_segments() {
    let dir = tempdir();
    let opts = small_opts();
    // 24 KiB batches: 10 fit in the 252 KiB after a segment's header block.
    let batches: Vec<_> = (0..45)
        .map(|b| entries(1 + b * 6..1 + (b + 1) * 6, 4000))
        .collect();
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(
        stats.iter().filter(|s| s.rolled).count() >= 3,
        "expected several rollovers: {stats:?}"
    );
    for s in &stats {
        assert_eq!(s.offset % BLOCK_SIZE_BYTES, 0);
        assert_eq!(s.written_bytes % BLOCK_SIZE_BYTES, 0);
        if s.rolled {
            assert_eq!(
                s.offset, BLOCK_SIZE_BYTES,
                "a new segment starts after its header block"
            );
        }
    }
    let last_seq = stats.last().unwrap().segment_seq;
    for seq in 0..=last_seq {
        let p = segment_path(dir.path(), seq);
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            opts.segment_size_bytes,
            "{} preallocated",
            p.display()
        );
    }
    // The names carry the first index of each segment.
    for s in stats.iter().filter(|s| s.rolled) {
        let p = segment_path(dir.path(), s.segment_seq);
        let first_index =
            u64::from_str_radix(&p.file_name().unwrap().to_str().unwrap()[17..33], 16).unwrap();
        let batch_no = stats.iter().position(|x| x == s).unwrap() as u64;
        assert_eq!(first_index, 1 + batch_no * 6);
    }
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, entries(1..271, 4000));
    assert_eq!(rec.tail.segment.as_ref().unwrap().seq, last_seq);
}

#[test]
fn next_segment_is_zero_filled_ahead_of_use() {
    let dir = tempdir();
    let opts = small_opts();
    let (d, o) = (dir.path().to_path_buf(), opts.clone());
    let tmp_len = run(move || async move {
        let mut wal = Wal::open(&d, o, &recover(&d, &small_opts()).unwrap().tail)
            .await
            .unwrap();
        wal.append(RecordKind::Entry, 1, 1, b"x").unwrap();
        wal.flush().await.unwrap();
        // Give the background zero-fill time to finish.
        for _ in 0..200 {
            glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
            let p = d.join("0000000000000001.wal.tmp");
            if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
                == small_opts().segment_size_bytes
            {
                break;
            }
        }
        let len = std::fs::metadata(d.join("0000000000000001.wal.tmp"))
            .map(|m| m.len())
            .unwrap_or(0);
        wal.close().await.unwrap();
        len
    });
    assert_eq!(tmp_len, opts.segment_size_bytes);
    // A leftover .tmp is set aside by recovery at once and removed in the
    // background.
    recover(dir.path(), &opts).unwrap();
    assert!(!dir.path().join("0000000000000001.wal.tmp").exists());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_names(dir.path()).len() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(file_names(dir.path()), vec![segment_file_name(0, 0)]);
}

#[test]
fn writer_refuses_non_contiguous_entries() {
    let dir = tempdir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let mut wal = Wal::open(&d, small_opts(), &recover(&d, &small_opts()).unwrap().tail)
            .await
            .unwrap();
        wal.append(RecordKind::Entry, 1, 5, b"").unwrap();
        let e = wal.append(RecordKind::Entry, 1, 7, b"").unwrap_err();
        assert!(
            matches!(
                e,
                WalError::IndexNotContiguous {
                    expected: 6,
                    got: 7
                }
            ),
            "{e}"
        );
        // HardState indexes are free.
        wal.append(RecordKind::HardState, 1, 2, b"").unwrap();
        wal.append(RecordKind::Entry, 1, 6, b"").unwrap();
        wal.flush().await.unwrap();
        wal.close().await.unwrap();
    });
    assert_eq!(
        recover(dir.path(), &small_opts()).unwrap().tail.last_index,
        Some(6)
    );
}

#[test]
fn oversized_record_is_an_error() {
    let dir = tempdir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let opts = small_opts();
        let max = opts.max_record_data_bytes();
        let mut wal = Wal::open(&d, opts, &recover(&d, &small_opts()).unwrap().tail)
            .await
            .unwrap();
        let e = wal
            .append(RecordKind::Entry, 1, 1, &vec![7; max + 1])
            .unwrap_err();
        assert!(matches!(e, WalError::RecordTooLarge { .. }), "{e}");
        assert_eq!(wal.pending_records(), 0);
        // Exactly the maximum fills one whole batch.
        wal.append(RecordKind::Entry, 1, 1, &vec![7; max]).unwrap();
        let e = wal.append(RecordKind::Entry, 1, 2, b"x").unwrap_err();
        assert!(matches!(e, WalError::BatchFull { .. }), "{e}");
        let s = wal.flush().await.unwrap();
        assert_eq!(s.written_bytes, 64 << 10);
        wal.append(RecordKind::Entry, 1, 2, b"x").unwrap();
        wal.flush().await.unwrap();
        wal.close().await.unwrap();
    });
    let rec = recover(dir.path(), &small_opts()).unwrap();
    assert_eq!(rec.records.len(), 2);
    assert_eq!(
        rec.records[0].data.len(),
        small_opts().max_record_data_bytes()
    );
}

#[test]
fn invalid_options_are_rejected() {
    let bad = [
        WalOptions {
            segment_size_bytes: 1000,
            ..small_opts()
        },
        WalOptions {
            max_batch_bytes: 256 << 10,
            ..small_opts()
        },
        WalOptions {
            max_batch_bytes: 0,
            ..small_opts()
        },
    ];
    for o in bad {
        assert!(
            matches!(o.validate(), Err(WalError::InvalidOptions { .. })),
            "{o:?}"
        );
    }
    WalOptions::default().validate().unwrap();
}

/// O_DIRECT flag of the open descriptor of `path`, read from /proc.
fn fd_flags_have_o_direct(path: &Path) -> Option<bool> {
    for fd in std::fs::read_dir("/proc/self/fd").ok()? {
        let fd = fd.ok()?;
        if std::fs::read_link(fd.path()).ok().as_deref() == Some(path) {
            let info =
                std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.file_name().to_str()?))
                    .ok()?;
            let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?.trim();
            let flags = u32::from_str_radix(flags, 8).ok()?;
            return Some(flags & libc::O_DIRECT as u32 != 0);
        }
    }
    None
}

/// Opens a writer in `dir` with `direct_io`, appends one record, and reports
/// (wal.direct_io(), O_DIRECT seen in /proc for the open segment).
fn probe_direct(dir: &Path, direct_io: DirectIo) -> Result<(bool, Option<bool>), WalError> {
    let d = dir.to_path_buf();
    run(move || async move {
        let opts = WalOptions {
            direct_io,
            ..small_opts()
        };
        let mut wal = Wal::open(&d, opts.clone(), &recover(&d, &opts)?.tail).await?;
        wal.append(RecordKind::HardState, 1, 1, b"probe")?;
        wal.flush().await?;
        let seen = fd_flags_have_o_direct(&wal.current_segment_path());
        let direct = wal.direct_io();
        wal.close().await?;
        Ok((direct, seen))
    })
}

#[test]
fn direct_io_is_used_on_a_real_file_system() {
    let dir = tempdir();
    let (direct, seen) = probe_direct(dir.path(), DirectIo::Auto).unwrap();
    // /tmp is ext4 here; elsewhere Auto may legitimately fall back.
    assert_eq!(
        Some(direct),
        seen,
        "direct_io() must match the descriptor flags"
    );
    let (direct, seen) = probe_direct(dir.path(), DirectIo::Off).unwrap();
    assert!(!direct);
    assert_eq!(seen, Some(false));
    assert_eq!(recover(dir.path(), &small_opts()).unwrap().records.len(), 2);
}

#[test]
fn buffered_fallback_on_tmpfs() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return;
    }
    let dir = tempfile::tempdir_in(shm).unwrap();
    let (direct, seen) = probe_direct(dir.path(), DirectIo::Auto).unwrap();
    assert!(!direct, "tmpfs has no O_DIRECT");
    assert_eq!(seen, Some(false));
    let other = tempfile::tempdir_in(shm).unwrap();
    let err = probe_direct(other.path(), DirectIo::Require).unwrap_err();
    assert!(matches!(err, WalError::DirectIoUnsupported { .. }), "{err}");
    let rec = recover(dir.path(), &small_opts()).unwrap();
    assert_eq!(
        rec.records,
        vec![OwnedRecord {
            kind: RecordKind::HardState,
            term: 1,
            index: 1,
            data: b"probe".to_vec()
        }]
    );
}
