//! Rewriting the log: an Entry at or below the effective last index
//! replaces the suffix from there on, a Snapshot marker restarts the log
//! after its index. Recovery must return what the writer left in effect,
//! across batches, segments, restarts, torn tails and absorbed segments.

use super::*;
use crate::wal::record::{encode_record, seal_batch, BatchSeal};

fn entry_t(term: u64, index: u64, data_bytes: usize) -> OwnedRecord {
    OwnedRecord {
        term,
        ..entry(index, data_bytes)
    }
}

fn entries_t(term: u64, range: Range<u64>, data_bytes: usize) -> Vec<OwnedRecord> {
    range.map(|i| entry_t(term, i, data_bytes)).collect()
}

fn marker(index: u64, term: u64) -> OwnedRecord {
    OwnedRecord {
        kind: RecordKind::Snapshot,
        term,
        index,
        data: SnapshotMarker { index, term }.encode().to_vec(),
    }
}

/// (index, term) of the entries in effect.
fn effective(rec: &Recovered) -> Vec<(u64, u64)> {
    rec.effective_log()
        .entries
        .iter()
        .map(|e| (e.index, e.term))
        .collect()
}

fn pairs(term: u64, range: Range<u64>) -> Vec<(u64, u64)> {
    range.map(|i| (i, term)).collect()
}

fn first_index_of(path: &Path) -> u64 {
    let name = path.file_name().unwrap().to_str().unwrap();
    u64::from_str_radix(&name[17..33], 16).unwrap()
}

#[test]
fn a_rewritten_suffix_is_what_recovery_returns() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(
        dir.path(),
        &opts,
        vec![
            entries_t(1, 1..6, 100),
            entries_t(1, 6..11, 100),
            entries_t(2, 7..9, 100),
        ],
    );
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(
        rec.records.len(),
        12,
        "raw records keep the superseded ones"
    );
    let mut want = pairs(1, 1..7);
    want.extend(pairs(2, 7..9));
    assert_eq!(effective(&rec), want);
    assert_eq!(rec.tail.last_index, Some(8));
    // The next session continues after the rewritten end and may rewrite
    // again, below the previous rewrite.
    write_batches(
        dir.path(),
        &opts,
        vec![entries_t(2, 9..10, 10), entries_t(3, 4..6, 10)],
    );
    let rec = recover(dir.path(), &opts).unwrap();
    let mut want = pairs(1, 1..4);
    want.extend(pairs(3, 4..6));
    assert_eq!(effective(&rec), want);
    assert_eq!(rec.tail.last_index, Some(5));
}

#[test]
fn the_writer_tracks_the_effective_last_index_and_refuses_gaps_and_zero() {
    let dir = tempdir();
    let d = dir.path().to_path_buf();
    run(move || async move {
        let opts = small_opts();
        let mut wal = Wal::open(&d, opts.clone(), &recover(&d, &opts).unwrap().tail)
            .await
            .unwrap();
        for i in 1..=5 {
            wal.append(RecordKind::Entry, 1, i, b"x").unwrap();
        }
        wal.flush().await.unwrap();
        // A rewrite inside a pending batch, before any flush.
        wal.append(RecordKind::Entry, 2, 3, b"y").unwrap();
        assert_eq!(wal.last_index(), Some(3));
        assert_eq!(wal.durable_last_index(), Some(5));
        let e = wal.append(RecordKind::Entry, 2, 5, b"").unwrap_err();
        assert!(
            matches!(
                e,
                WalError::IndexNotContiguous {
                    expected: 4,
                    got: 5
                }
            ),
            "{e}"
        );
        let e = wal.append(RecordKind::Entry, 2, 0, b"").unwrap_err();
        assert!(matches!(e, WalError::IndexBelowFloor { got: 0, .. }), "{e}");
        wal.append(RecordKind::Entry, 2, 2, b"z").unwrap();
        wal.flush().await.unwrap();
        assert_eq!(wal.durable_last_index(), Some(2));
        wal.close().await.unwrap();
    });
    let rec = recover(dir.path(), &small_opts()).unwrap();
    assert_eq!(effective(&rec), vec![(1, 1), (2, 2)]);
}

#[test]
fn a_rewrite_in_a_batch_after_a_segment_roll_is_recovered() {
    let dir = tempdir();
    let opts = small_opts();
    // 24 KiB batches: 10 fit in a 256 KiB segment, the 11th rolls.
    let mut batches: Vec<_> = (0..12)
        .map(|b| entries_t(1, 1 + b * 6..1 + (b + 1) * 6, 4000))
        .collect();
    // Batches 10 and 11 (entries 61..72) are in segment 1; rewrite 67..
    batches.push(entries_t(2, 67..70, 100));
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(stats[10].rolled && stats[12].segment_seq == stats[10].segment_seq);
    let rec = recover(dir.path(), &opts).unwrap();
    let mut want = pairs(1, 1..67);
    want.extend(pairs(2, 67..70));
    assert_eq!(effective(&rec), want);
    assert_eq!(rec.tail.last_index, Some(69));
    // The restart's segment is named after the rewritten end.
    let tail = rec.tail.segment.unwrap();
    write_batches(dir.path(), &opts, vec![entries_t(2, 70..71, 10)]);
    let next = segment_path(dir.path(), tail.seq + 1);
    assert_eq!(first_index_of(&next), 70);
    assert_eq!(
        recover(dir.path(), &opts).unwrap().tail.last_index,
        Some(70)
    );
}

#[test]
fn a_rewrite_reaching_into_the_previous_segment_is_recovered() {
    let dir = tempdir();
    let opts = small_opts();
    let mut batches: Vec<_> = (0..11)
        .map(|b| entries_t(1, 1 + b * 6..1 + (b + 1) * 6, 4000))
        .collect();
    // Entries 1..=60 are in segment 0, 61..=66 in segment 1. Rewrite from
    // 55, which lives in segment 0.
    batches.push(entries_t(3, 55..70, 4000));
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(stats[10].rolled && stats[10].segment_seq == 1);
    let rec = recover(dir.path(), &opts).unwrap();
    let mut want = pairs(1, 1..55);
    want.extend(pairs(3, 55..70));
    assert_eq!(effective(&rec), want);
    assert_eq!(rec.tail.last_index, Some(69));
    // Across a restart too (the log now spans three segments).
    write_batches(dir.path(), &opts, vec![entries_t(3, 70..71, 10)]);
    let rec = recover(dir.path(), &opts).unwrap();
    want.push((70, 3));
    assert_eq!(effective(&rec), want);
}

#[test]
fn a_rewrite_in_the_batch_that_rolls_names_the_segment_after_the_old_end() {
    let dir = tempdir();
    let opts = small_opts();
    let mut batches: Vec<_> = (0..10)
        .map(|b| entries_t(1, 1 + b * 6..1 + (b + 1) * 6, 4000))
        .collect();
    // Segment 0 is full: this batch rolls and rewrites from 58 at once.
    batches.push(entries_t(2, 58..64, 4000));
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(stats[10].rolled);
    // The segment was activated when the durable log ended at 60.
    assert_eq!(first_index_of(&segment_path(dir.path(), 1)), 61);
    let rec = recover(dir.path(), &opts).unwrap();
    let mut want = pairs(1, 1..58);
    want.extend(pairs(2, 58..64));
    assert_eq!(effective(&rec), want);
}

#[test]
fn a_snapshot_marker_restarts_the_log_after_its_index() {
    let dir = tempdir();
    let opts = small_opts();
    let hs = OwnedRecord {
        kind: RecordKind::HardState,
        term: 7,
        index: 0,
        data: b"term=7 vote=2 commit=100".to_vec(),
    };
    write_batches(
        dir.path(),
        &opts,
        vec![
            entries_t(1, 1..6, 100),
            vec![marker(100, 7), hs.clone()],
            entries_t(7, 101..104, 100),
        ],
    );
    let rec = recover(dir.path(), &opts).unwrap();
    let log = rec.effective_log();
    assert_eq!(
        log.snapshot,
        Some(SnapshotMarker {
            index: 100,
            term: 7
        })
    );
    assert_eq!(log.hard_state, Some(&hs.data[..]));
    assert_eq!(effective(&rec), pairs(7, 101..104));
    assert_eq!(rec.tail.last_index, Some(103));
    assert_eq!(rec.tail.rewrite_floor, Some(100));

    // The reopened writer knows the floor: indexes at or below the marker
    // are refused, rewrites above it and markers anywhere are not.
    let d = dir.path().to_path_buf();
    let tail = rec.tail.clone();
    run(move || async move {
        let mut wal = Wal::open(&d, small_opts(), &tail).await.unwrap();
        for bad in [100, 3] {
            let e = wal.append(RecordKind::Entry, 8, bad, b"").unwrap_err();
            assert!(
                matches!(
                    e,
                    WalError::IndexBelowFloor {
                        first_allowed: 101,
                        ..
                    }
                ),
                "{e}"
            );
        }
        let e = wal
            .append(
                RecordKind::Snapshot,
                8,
                90,
                &SnapshotMarker { index: 91, term: 8 }.encode(),
            )
            .unwrap_err();
        assert!(
            matches!(e, WalError::BadSnapshotMarker { index: 90, .. }),
            "{e}"
        );
        wal.append(RecordKind::Entry, 8, 102, b"r").unwrap();
        wal.flush().await.unwrap();
        // A marker below the last index (a lagging follower's snapshot
        // cannot be older, but the WAL does not care) still resets.
        wal.append_snapshot_marker(101, 8).unwrap();
        assert_eq!(wal.last_index(), Some(101));
        wal.flush().await.unwrap();
        wal.close().await.unwrap();
    });
    let rec = recover(dir.path(), &opts).unwrap();
    let log = rec.effective_log();
    assert_eq!(
        log.snapshot,
        Some(SnapshotMarker {
            index: 101,
            term: 8
        })
    );
    assert!(log.entries.is_empty());
    assert_eq!(rec.tail.last_index, Some(101));
    // A new segment after a marker with no entries is named after it.
    write_batches(dir.path(), &opts, vec![entries_t(8, 102..103, 1)]);
    let last = recover(dir.path(), &opts).unwrap().tail.segment.unwrap();
    assert_eq!(first_index_of(&last.path), 102);
}

#[test]
fn a_snapshot_marker_in_an_empty_log_starts_it() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(
        dir.path(),
        &opts,
        vec![vec![marker(1000, 4)], entries_t(4, 1001..1003, 10)],
    );
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(effective(&rec), pairs(4, 1001..1003));
    assert_eq!(rec.tail.next_index(), Some(1003));
}

#[test]
fn torn_tail_after_a_rewrite_is_truncated_and_the_earlier_rewrite_kept() {
    let dir = tempdir();
    let opts = small_opts();
    let stats = write_batches(
        dir.path(),
        &opts,
        vec![
            entries_t(1, 1..6, 100),
            entries_t(2, 3..5, 100),
            entries_t(3, 4..8, 3000),
        ],
    );
    let last = stats[2];
    assert!(last.written_bytes > BLOCK_SIZE_BYTES);
    // The last batch reached the disk only in part: its second block is
    // garbage.
    let path = segment_path(dir.path(), 0);
    overwrite(
        &path,
        last.offset + BLOCK_SIZE_BYTES,
        &garbage(BLOCK_SIZE_BYTES as usize, 9),
    );
    let rec = recover(dir.path(), &opts).unwrap();
    let torn = rec.torn_tail.as_ref().expect("torn tail reported");
    assert_eq!(
        (torn.path.as_path(), torn.offset),
        (path.as_path(), last.offset)
    );
    assert_eq!(effective(&rec), vec![(1, 1), (2, 1), (3, 2), (4, 2)]);
    assert_eq!(rec.tail.last_index, Some(4));
    // The next start sees a clean end and the writer continues at 5.
    let rec = recover(dir.path(), &opts).unwrap();
    assert!(rec.torn_tail.is_none());
    write_batches(dir.path(), &opts, vec![entries_t(4, 5..6, 10)]);
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(effective(&rec).last(), Some(&(5, 4)));
}

/// Writes one batch that the writer would refuse, sealed like a real one,
/// at the tail of the last segment. Returns (segment path, record offsets).
fn forge_batch(dir: &Path, records: &[OwnedRecord]) -> (PathBuf, Vec<u64>) {
    let rec = recover(dir, &small_opts()).unwrap();
    let tail = rec.tail.segment.clone().unwrap();
    let mut buf = vec![0u8; BATCH_HEADER_BYTES];
    let mut offsets = Vec::new();
    for r in records {
        offsets.push(tail.offset + buf.len() as u64);
        encode_record(&mut buf, r.kind, r.term, r.index, &r.data);
    }
    let seal = BatchSeal {
        seq: tail.seq,
        offset: tail.offset,
        first_index: rec.tail.next_index().unwrap_or(0),
        record_count: records.len() as u32,
        salt: tail.salt,
    };
    seal_batch(&mut buf, &seal);
    overwrite(&tail.path, tail.offset, &buf);
    (tail.path, offsets)
}

fn corrupt_at(err: &WalError) -> (&Path, u64, &str) {
    match err {
        WalError::Corrupt {
            path,
            offset,
            reason,
        } => (path, *offset, reason),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_gap_after_a_rewrite_is_refused_with_file_and_offset() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(
        dir.path(),
        &opts,
        vec![entries_t(1, 1..6, 10), entries_t(2, 4..5, 10)],
    );
    // Effective end is 4: 5 may follow (or anything lower), 6 may not.
    let (path, offsets) = forge_batch(
        dir.path(),
        &[entry_t(2, 5, 10), entry_t(2, 6, 10), entry_t(2, 8, 10)],
    );
    let err = recover(dir.path(), &opts).unwrap_err();
    let (p, offset, reason) = corrupt_at(&err);
    assert_eq!((p, offset), (path.as_path(), offsets[2]), "{err}");
    assert!(
        reason.contains("entry index 8 does not follow last index 6"),
        "{err}"
    );
    // verify names the same spot.
    let err = verify(dir.path(), &opts).unwrap_err();
    assert_eq!(corrupt_at(&err).1, offsets[2]);
}

#[test]
fn an_entry_at_or_below_a_snapshot_marker_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(
        dir.path(),
        &opts,
        vec![entries_t(1, 1..6, 10), vec![marker(50, 2)]],
    );
    let (path, offsets) = forge_batch(dir.path(), &[entry_t(2, 50, 10)]);
    let err = recover(dir.path(), &opts).unwrap_err();
    let (p, offset, reason) = corrupt_at(&err);
    assert_eq!((p, offset), (path.as_path(), offsets[0]), "{err}");
    assert!(reason.contains("snapshot marker"), "{err}");
}

#[test]
fn a_malformed_snapshot_marker_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(dir.path(), &opts, vec![entries_t(1, 1..3, 10)]);
    let bad = OwnedRecord {
        data: SnapshotMarker { index: 9, term: 1 }.encode().to_vec(),
        ..marker(10, 1)
    };
    let (path, offsets) = forge_batch(dir.path(), &[bad]);
    let err = recover(dir.path(), &opts).unwrap_err();
    assert_eq!(corrupt_at(&err).0, path.as_path());
    assert_eq!(corrupt_at(&err).1, offsets[0], "{err}");
}

/// Entries 1..=200 in batches of 5 (~8 KiB each, several segments), with
/// rewrites of the suffix along the way, then a rewrite well after.
fn log_with_rewrites(dir: &Path, opts: &WalOptions) {
    let mut batches = Vec::new();
    let mut next = 1;
    let mut term = 1;
    for b in 0.. {
        if next > 200 {
            break;
        }
        if b % 7 == 6 {
            // A new leader replaces the last three entries.
            term += 1;
            next -= 3;
        }
        batches.push(entries_t(term, next..next + 5, 8 << 10));
        next += 5;
    }
    write_batches(dir, opts, batches);
}

#[test]
fn recover_after_skips_absorbed_segments_with_rewrites_present() {
    let dir = tempdir();
    let opts = small_opts();
    log_with_rewrites(dir.path(), &opts);
    let all = recover(dir.path(), &opts).unwrap();
    let full = effective(&all);
    assert_eq!(full.len() as u64, all.tail.last_index.unwrap());
    for applied in [0, 60, 120, 150, 10_000] {
        let rec = recover_after(dir.path(), &opts, Some(applied)).unwrap();
        assert_eq!(rec.tail.segment, all.tail.segment, "applied {applied}");
        assert_eq!(rec.tail.last_index, all.tail.last_index);
        let above: Vec<_> = effective(&rec)
            .into_iter()
            .filter(|(i, _)| *i > applied)
            .collect();
        let want: Vec<_> = full.iter().copied().filter(|(i, _)| *i > applied).collect();
        assert_eq!(above, want, "applied {applied}");
        // What it returns is a suffix of the full effective log.
        let got = effective(&rec);
        assert!(full.ends_with(&got), "applied {applied}");
        if (60..10_000).contains(&applied) {
            assert!(rec.records.len() < all.records.len(), "applied {applied}");
            let floor = rec.tail.rewrite_floor.unwrap();
            assert!(floor <= applied, "floor {floor} above applied {applied}");
        }
    }
}

#[test]
fn a_snapshot_marker_lets_older_segments_be_skipped_and_released() {
    let dir = tempdir();
    let opts = small_opts();
    let batches: Vec<_> = (0..20)
        .map(|b| entries_t(1, 1 + b * 5..1 + (b + 1) * 5, 8 << 10))
        .collect();
    write_batches(dir.path(), &opts, batches);
    // A follower installs a snapshot through 5000: its log restarts there.
    write_batches(
        dir.path(),
        &opts,
        vec![vec![marker(5000, 3)], entries_t(3, 5001..5004, 10)],
    );
    let all = recover(dir.path(), &opts).unwrap();
    assert_eq!(effective(&all), pairs(3, 5001..5004));
    assert!(all.records.len() > 100);
    // The page file now holds the snapshot: applied = 5000.
    let rec = recover_after(dir.path(), &opts, Some(5000)).unwrap();
    assert_eq!(rec.tail, all.tail);
    assert!(
        rec.records.iter().all(|r| r.index >= 5000),
        "{:?}",
        rec.records.len()
    );
    assert_eq!(effective(&rec), pairs(3, 5001..5004));
    let removed = release_segments(dir.path(), 5000, 1).unwrap();
    assert!(removed.len() >= 2, "{removed:?}");
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(effective(&rec), pairs(3, 5001..5004));
    assert_eq!(rec.tail.last_index, Some(5003));
}
