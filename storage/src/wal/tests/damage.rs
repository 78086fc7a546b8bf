//! Damage on disk: torn tails are truncated, everything else is refused
//! with the file and offset.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::*;

/// Writes two good batches and a 3-block last batch; returns (segment path,
/// pristine bytes, last batch stats, records of the good batches).
fn log_with_big_last_batch(
    dir: &Path,
    opts: &WalOptions,
) -> (PathBuf, Vec<u8>, FlushStats, Vec<OwnedRecord>) {
    let good = vec![entries(1..4, 500), entries(4..6, 3000)];
    let mut batches = good.clone();
    batches.push(entries(6..9, 3000)); // 64 + 3 * 3032 bytes: 3 blocks
    let stats = write_batches(dir, opts, batches);
    let last = stats[2];
    assert_eq!(last.written_bytes, 3 * BLOCK_SIZE_BYTES);
    let path = segment_path(dir, 0);
    (
        path.clone(),
        std::fs::read(&path).unwrap(),
        last,
        good.concat(),
    )
}

#[test]
fn torn_tail_is_truncated() {
    let dir = tempdir();
    let opts = small_opts();
    let (path, pristine, last, good) = log_with_big_last_batch(dir.path(), &opts);
    let mut cuts: Vec<u64> = (0..80).chain((80..last.batch_bytes).step_by(97)).collect();
    cuts.push(last.batch_bytes - 1);
    for (n, &cut) in cuts.iter().enumerate() {
        for fill_garbage in [false, true] {
            std::fs::write(&path, &pristine).unwrap();
            let len = (last.written_bytes - cut) as usize;
            let fill = if fill_garbage {
                garbage(len, n as u64)
            } else {
                vec![0; len]
            };
            overwrite(&path, last.offset + cut, &fill);
            // A batch that is all zeros is indistinguishable from the clean end.
            let damaged = std::fs::read(&path).unwrap()[last.offset as usize..]
                .iter()
                .any(|&b| b != 0);
            let rec = recover(dir.path(), &opts)
                .unwrap_or_else(|e| panic!("cut {cut} garbage {fill_garbage}: {e}"));
            assert_eq!(rec.records, good, "cut {cut} garbage {fill_garbage}");
            let tail = rec.tail.segment.as_ref().unwrap();
            assert_eq!(tail.offset, last.offset);
            if damaged {
                let torn = rec.torn_tail.unwrap_or_else(|| {
                    panic!("cut {cut} garbage {fill_garbage}: torn tail not reported")
                });
                assert_eq!(torn.offset, last.offset);
            }
            // The repair is durable and complete: a second pass sees a clean end.
            let again = recover(dir.path(), &opts).unwrap();
            assert!(
                again.torn_tail.is_none(),
                "cut {cut}: second recovery still torn"
            );
            assert_eq!(again.records, good);
        }
    }
    // Only the first block lost, later blocks of the batch written.
    std::fs::write(&path, &pristine).unwrap();
    overwrite(&path, last.offset, &[0; BLOCK_SIZE_BYTES as usize]);
    assert_eq!(recover(dir.path(), &opts).unwrap().records, good);

    // The writer continues over the truncated region.
    write_batches(dir.path(), &opts, vec![entries(6..8, 10)]);
    let mut want = good.clone();
    want.extend(entries(6..8, 10));
    assert_eq!(recover(dir.path(), &opts).unwrap().records, want);
}

#[test]
fn torn_padding_keeps_the_batch() {
    let dir = tempdir();
    let opts = small_opts();
    let (path, _, last, good) = log_with_big_last_batch(dir.path(), &opts);
    overwrite(&path, last.offset + last.batch_bytes, &garbage(8, 1));
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.records.len(), good.len() + 3);
    assert_eq!(
        rec.tail.segment.unwrap().offset,
        last.offset + last.written_bytes
    );
}

#[test]
fn zeroed_tail_is_clean_end() {
    let dir = tempdir();
    let opts = small_opts();
    let stats = write_batches(
        dir.path(),
        &opts,
        vec![entries(1..3, 10), entries(3..4, 10)],
    );
    let rec = recover(dir.path(), &opts).unwrap();
    assert!(rec.torn_tail.is_none());
    assert_eq!(
        rec.tail.segment.unwrap().offset,
        stats[1].offset + stats[1].written_bytes
    );
    assert_eq!(rec.records, entries(1..4, 10));
}

#[test]
fn corruption_before_tail_is_refused_with_file_and_offset() {
    let dir = tempdir();
    let opts = small_opts();
    let stats = write_batches(
        dir.path(),
        &opts,
        vec![entries(1..3, 100), entries(3..5, 100), entries(5..6, 100)],
    );
    let path = segment_path(dir.path(), 0);
    let pristine = std::fs::read(&path).unwrap();
    // A byte in the data of the second record of the first batch.
    let record2 = stats[0].offset + (BATCH_HEADER_BYTES + RECORD_HEADER_BYTES + 100) as u64;
    let spots = [
        (
            record2 + RECORD_HEADER_BYTES as u64 + 5,
            record2,
            "record checksum mismatch",
        ),
        (
            stats[1].offset + 9,
            stats[1].offset,
            "batch header checksum mismatch",
        ),
        (stats[0].offset, stats[0].offset, "bad magic"),
    ];
    for (flip_at, want_offset, want_reason) in spots {
        std::fs::write(&path, &pristine).unwrap();
        let mut b = [0u8; 1];
        std::fs::File::open(&path)
            .unwrap()
            .read_exact_at(&mut b, flip_at)
            .unwrap();
        overwrite(&path, flip_at, &[b[0] ^ 0x40]);
        let err = recover(dir.path(), &opts).unwrap_err();
        match &err {
            WalError::Corrupt {
                path: p,
                offset,
                reason,
            } => {
                assert_eq!(p, &path);
                assert_eq!(*offset, want_offset, "{err}");
                assert!(reason.contains(want_reason), "{err}");
            }
            other => panic!("expected Corrupt, got {other}"),
        }
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!(
                "WAL corrupt at {} offset {want_offset}: ",
                path.display()
            )),
            "{msg}"
        );
    }
}

#[test]
fn damage_in_an_earlier_segment_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    let batches: Vec<_> = (0..12)
        .map(|b| entries(1 + b * 4..1 + (b + 1) * 4, 6000))
        .collect();
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(stats.last().unwrap().segment_seq >= 1);
    // Zero the LAST batch of segment 0: it looks torn, but segment 1 exists.
    let last0 = stats.iter().rfind(|s| s.segment_seq == 0).unwrap();
    let path = segment_path(dir.path(), 0);
    overwrite(&path, last0.offset, &vec![0; last0.written_bytes as usize]);
    match recover(dir.path(), &opts).unwrap_err() {
        WalError::Corrupt {
            path: p, offset, ..
        } => assert_eq!((p, offset), (path, last0.offset)),
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn missing_segment_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    let batches: Vec<_> = (0..30)
        .map(|b| entries(1 + b * 4..1 + (b + 1) * 4, 6000))
        .collect();
    let stats = write_batches(dir.path(), &opts, batches);
    assert!(stats.last().unwrap().segment_seq >= 2);
    std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
    let err = recover(dir.path(), &opts).unwrap_err();
    assert!(err.to_string().contains("segment sequence gap"), "{err}");
}

#[test]
fn index_gap_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(dir.path(), &opts, vec![entries(1..4, 10)]);
    // A writer told the log ends at 10 writes 11: a gap on disk.
    let mut tail = recover(dir.path(), &opts).unwrap().tail;
    tail.last_index = Some(10);
    // The reopened writer starts a new segment, whose header claims 11.
    let stats = write_batches_at(dir.path(), &opts, vec![entries(11..12, 10)], Some(tail));
    let err = recover(dir.path(), &opts).unwrap_err();
    match &err {
        WalError::Corrupt {
            offset,
            reason,
            path,
        } => {
            assert_eq!(*offset, 0, "the new segment's header: {err}");
            assert!(
                path.to_string_lossy()
                    .contains(&format!("{:016x}-", stats[0].segment_seq)),
                "{err}"
            );
            assert!(reason.contains("does not follow last index 3"), "{err}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn index_regression_is_corruption() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(dir.path(), &opts, vec![entries(1..4, 10)]);
    let mut tail = recover(dir.path(), &opts).unwrap().tail;
    tail.last_index = Some(1);
    write_batches_at(dir.path(), &opts, vec![entries(2..3, 10)], Some(tail));
    assert!(matches!(
        recover(dir.path(), &opts),
        Err(WalError::Corrupt { .. })
    ));
}

/// A write the previous (killed) process had in flight may land after the
/// next process reopened the log. The reopened writer starts a new segment,
/// so such a late write can only hit the old segment past the end its
/// successor's header records, where recovery never reads.
#[test]
fn late_write_from_a_dead_writer_cannot_clobber_the_log() {
    let dir = tempdir();
    let opts = small_opts();
    write_batches(
        dir.path(),
        &opts,
        vec![entries(1..4, 100), entries(4..6, 100)],
    );
    let old = recover(dir.path(), &opts).unwrap().tail.segment.unwrap();
    // The next process appends after reopening.
    let stats = write_batches(dir.path(), &opts, vec![entries(6..9, 100)]);
    assert_ne!(
        stats[0].segment_seq, old.seq,
        "reopened writer must not reuse the old segment"
    );
    // Now the dead process's late write lands at its old tail.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&old.path)
        .unwrap();
    f.write_all_at(&[0x5a; 3000], old.offset).unwrap();
    f.sync_all().unwrap();
    let rec = recover(dir.path(), &opts).unwrap();
    let indexes: Vec<u64> = rec.records.iter().map(|r| r.index).collect();
    assert_eq!(indexes, (1..9).collect::<Vec<u64>>());
    assert!(rec.torn_tail.is_none());
}

/// A valid header of an empty batch at `offset` of segment 0 (`pristine`).
fn batch_header_at(pristine: &[u8], offset: u64) -> Vec<u8> {
    let h = crate::wal::record::decode_segment_header(pristine).unwrap();
    let mut b = vec![0u8; BLOCK_SIZE_BYTES as usize];
    crate::wal::record::seal_batch(
        &mut b[..crate::wal::record::BATCH_HEADER_BYTES],
        &crate::wal::record::BatchSeal {
            seq: h.seq.get(),
            offset,
            first_index: 9,
            record_count: 0,
            salt: h.salt.get(),
        },
    );
    b
}

/// F4 (FORMAT.md): at most one batch is in flight and segments are made of
/// zeros, so nothing lies past the bad spot plus one largest batch.
/// Recovery reads the last segment only that far: a batch header beyond is
/// never looked at, one within makes the bad spot corruption.
#[test]
fn the_last_segment_is_read_only_one_batch_past_its_data() {
    let dir = tempdir();
    let opts = WalOptions {
        segment_size_bytes: 4 << 20,
        ..small_opts()
    };
    let (path, pristine, last, good) = log_with_big_last_batch(dir.path(), &opts);
    let bad = last.offset;
    let step = crate::wal::recovery::READ_STEP_BYTES as u64;
    let far = bad + BLOCK_SIZE_BYTES + opts.max_batch_bytes + step;
    let file_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        far + BLOCK_SIZE_BYTES <= file_len,
        "segment too small for the test"
    );
    std::fs::write(&path, &pristine).unwrap();
    overwrite(&path, bad, &[0xAB; 64]);
    overwrite(&path, far, &batch_header_at(&pristine, far));
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.records, good);
    let torn = rec.torn_tail.expect("the torn batch is reported");
    assert_eq!(torn.offset, bad);
    assert!(torn.offset + torn.zeroed_bytes <= far);
    // Within one batch of the bad spot, a valid batch means the bad spot
    // had been acknowledged: corruption.
    std::fs::write(&path, &pristine).unwrap();
    overwrite(&path, bad, &[0xAB; 64]);
    let near = bad + 2 * BLOCK_SIZE_BYTES;
    overwrite(&path, near, &batch_header_at(&pristine, near));
    let e = recover(dir.path(), &opts).unwrap_err().to_string();
    assert!(e.contains("a valid batch follows"), "{e}");
}
