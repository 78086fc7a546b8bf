//! `verify`: the read-only check shares recovery's scan and changes nothing.

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use crate::wal::recovery::*;
use crate::wal::*;
use crate::wal::{DirectIo, Wal};

fn opts() -> WalOptions {
    WalOptions {
        segment_size_bytes: 256 << 10,
        max_batch_bytes: 64 << 10,
        direct_io: DirectIo::Auto,
    }
}

fn entry(index: u64) -> OwnedRecord {
    OwnedRecord {
        kind: RecordKind::Entry,
        term: 2,
        index,
        data: format!("entry {index}").into_bytes(),
    }
}

/// One writer session (recover, open, one flush per batch, close):
/// each session starts a new segment.
fn session(dir: &Path, batches: Vec<Vec<OwnedRecord>>) {
    let dir = dir.to_path_buf();
    crate::wal::tests::run(move || async move {
        let tail = recover(&dir, &opts()).expect("recover").tail;
        let mut wal = Wal::open(&dir, opts(), &tail).await.expect("open");
        for batch in batches {
            for r in batch {
                wal.append(r.kind, r.term, r.index, &r.data)
                    .expect("append");
            }
            wal.flush().await.expect("flush");
        }
        wal.close().await.expect("close");
    });
}

/// Two sessions: segment 0 holds entries 1..=5 in two batches plus a
/// HardState, segment 1 holds 6..=7 in one batch (block 1).
fn two_session_log(dir: &Path) -> Vec<OwnedRecord> {
    let hs = OwnedRecord {
        kind: RecordKind::HardState,
        term: 2,
        index: 0,
        data: b"vote".to_vec(),
    };
    let mut first: Vec<OwnedRecord> = (1..4).map(entry).collect();
    first.push(hs);
    let second: Vec<OwnedRecord> = (4..6).map(entry).collect();
    let third: Vec<OwnedRecord> = (6..8).map(entry).collect();
    session(dir, vec![first.clone(), second.clone()]);
    session(dir, vec![third.clone()]);
    [first, second, third].concat()
}

fn segment_paths(dir: &Path) -> Vec<PathBuf> {
    segment::list(dir)
        .unwrap()
        .segments
        .into_iter()
        .map(|s| s.path)
        .collect()
}

fn snapshot(dir: &Path) -> Vec<Vec<u8>> {
    segment_paths(dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir_in(std::env::temp_dir()).expect("tempdir")
}

#[test]
fn verify_reports_segments_records_and_index_range() {
    let dir = tempdir();
    let written = two_session_log(dir.path());
    let mut seen = Vec::new();
    let report = verify_each(dir.path(), &opts(), |pos, r| seen.push((pos, r))).unwrap();
    assert_eq!(
        seen.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        written
    );
    assert_eq!(
        seen[0].0,
        RecordPosition {
            segment_seq: 0,
            offset: 4096 + 64
        }
    );
    let second = 4096 + 64 + (RECORD_HEADER_BYTES + b"entry 1".len()) as u64;
    assert_eq!(seen[1].0.offset, second);
    // Batch 2 of segment 0 starts at the next block; segment 1's first.
    assert_eq!(
        seen[4].0,
        RecordPosition {
            segment_seq: 0,
            offset: 8192 + 64
        }
    );
    assert_eq!(
        seen[6].0,
        RecordPosition {
            segment_seq: 1,
            offset: 4096 + 64
        }
    );
    assert_eq!(report.record_count, 8);
    assert_eq!(report.entry_count, 7);
    assert_eq!((report.first_index, report.last_index), (Some(1), Some(7)));
    assert!(report.torn_tail.is_none());
    let segs: Vec<_> = report
        .segments
        .iter()
        .map(|s| {
            (
                s.seq,
                s.first_index,
                s.data_bytes,
                s.batch_count,
                s.record_count,
            )
        })
        .collect();
    assert_eq!(segs, vec![(0, 0, 8192, 2, 6), (1, 6, 4096, 1, 2)]);
    assert_eq!(report.segments[0].size_bytes, 256 << 10);
    assert_eq!(report.segments[0].path, segment_paths(dir.path())[0]);
    // The same records recover returns.
    assert_eq!(recover(dir.path(), &opts()).unwrap().records, written);
}

#[test]
fn verify_of_missing_or_empty_dir_is_an_empty_log() {
    let dir = tempdir();
    assert_eq!(
        verify(&dir.path().join("nope"), &opts()).unwrap(),
        VerifyReport::default()
    );
    assert_eq!(
        verify(dir.path(), &opts()).unwrap(),
        VerifyReport::default()
    );
}

#[test]
fn verify_reports_a_torn_tail_without_zeroing_it() {
    let dir = tempdir();
    let written = two_session_log(dir.path());
    let last = segment_paths(dir.path()).pop().unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.write_all_at(&[0xA5; 1000], 8192).unwrap();
    let before = snapshot(dir.path());

    let report = verify(dir.path(), &opts()).unwrap();
    let torn = report.torn_tail.clone().expect("torn tail reported");
    assert_eq!(
        (torn.path.as_path(), torn.offset, torn.zeroed_bytes),
        (last.as_path(), 8192, 4096)
    );
    assert_eq!(report.record_count, written.len() as u64);
    // The writer's zero-filled next segment, left by its close.
    assert!(!report.tmp_files.is_empty());
    assert_eq!(snapshot(dir.path()), before, "verify must not write");
    assert!(
        report.tmp_files.iter().all(|p| p.exists()),
        "verify must not remove files"
    );

    // recover zeroes exactly what verify announced.
    let rec = recover(dir.path(), &opts()).unwrap();
    assert_eq!(rec.torn_tail, Some(torn));
    assert_eq!(rec.records, written);
    let after = verify(dir.path(), &opts()).unwrap();
    assert!(after.torn_tail.is_none() && after.tmp_files.is_empty());
}

#[test]
fn verify_refuses_corruption_exactly_as_recover_does() {
    let dir = tempdir();
    two_session_log(dir.path());
    let first = segment_paths(dir.path()).remove(0);
    // A byte inside the data of record 2 of the first batch.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    let at = 4096 + 64 + (RECORD_HEADER_BYTES + 7) as u64 + RECORD_HEADER_BYTES as u64 + 2;
    f.write_all_at(b"Z", at).unwrap();
    let before = snapshot(dir.path());
    let by_verify = verify(dir.path(), &opts()).unwrap_err().to_string();
    assert_eq!(snapshot(dir.path()), before);
    let by_recover = recover(dir.path(), &opts()).unwrap_err().to_string();
    assert_eq!(by_verify, by_recover);
    let record = 4096 + 64 + (RECORD_HEADER_BYTES + 7) as u64;
    assert!(
        by_verify.contains(&format!(
            "{} offset {record}: record checksum mismatch",
            first.display()
        )),
        "{by_verify}"
    );
}
