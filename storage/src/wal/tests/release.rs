//! Releasing absorbed segments: the log continues after them, across
//! restarts, even when no remaining segment holds an entry.

use super::*;

fn segment_count(dir: &Path) -> usize {
    file_names(dir)
        .iter()
        .filter(|n| n.ends_with(".wal"))
        .count()
}

/// Entries 1..=n in batches of 5, each ~8 KiB: several 256 KiB segments.
fn fill(dir: &Path, opts: &WalOptions, n: u64) {
    let batches = (0..n / 5)
        .map(|b| entries(b * 5 + 1..b * 5 + 6, 8 << 10))
        .collect();
    write_batches(dir, opts, batches);
}

#[test]
fn released_segments_go_and_the_log_continues_after_them() {
    let dir = tempdir();
    let opts = small_opts();
    fill(dir.path(), &opts, 200);
    let before = segment_count(dir.path());
    assert!(before >= 4, "{before} segments");
    let removed = release_segments(dir.path(), 120, 1).unwrap();
    assert!(!removed.is_empty());
    let rec = recover(dir.path(), &opts).unwrap();
    let first = rec.records.first().unwrap().index;
    assert!(first > 1 && first <= 121, "first remaining entry {first}");
    let idx: Vec<u64> = rec.records.iter().map(|r| r.index).collect();
    assert_eq!(idx, (first..=200).collect::<Vec<_>>());
    // Appending continues at 201 after a restart.
    write_batches(dir.path(), &opts, vec![entries(201..211, 100)]);
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.tail.last_index, Some(210));
}

#[test]
fn a_log_whose_segments_hold_no_entry_still_knows_its_next_index() {
    let dir = tempdir();
    let opts = small_opts();
    fill(dir.path(), &opts, 50);
    // A restart rolls to a fresh segment; releasing everything before it
    // leaves one segment without entries.
    write_batches(dir.path(), &opts, vec![]);
    release_segments(dir.path(), 50, 1).unwrap();
    assert_eq!(segment_count(dir.path()), 1);
    let rec = recover(dir.path(), &opts).unwrap();
    assert!(rec.records.is_empty());
    assert_eq!(rec.tail.last_index, Some(50));
    assert_eq!(rec.tail.next_index(), Some(51));
    // The writer continues at 51 and refuses anything else.
    write_batches(dir.path(), &opts, vec![entries(51..53, 10)]);
    let rec = recover(dir.path(), &opts).unwrap();
    let idx: Vec<u64> = rec.records.iter().map(|r| r.index).collect();
    assert_eq!(idx, vec![51, 52]);
}

#[test]
fn nothing_unabsorbed_and_never_the_newest_segment_is_released() {
    let dir = tempdir();
    let opts = small_opts();
    fill(dir.path(), &opts, 200);
    let n = segment_count(dir.path());
    assert!(release_segments(dir.path(), 0, 1).unwrap().is_empty());
    assert!(
        release_segments(dir.path(), 10_000, 0).unwrap().is_empty(),
        "0 keeps all"
    );
    release_segments(dir.path(), 10_000, 1).unwrap();
    assert_eq!(segment_count(dir.path()), 1, "the newest stays");
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.tail.last_index, Some(200));
    assert!(n > 1);
}

#[test]
fn keep_segments_bounds_what_is_released() {
    let dir = tempdir();
    let opts = small_opts();
    fill(dir.path(), &opts, 200);
    release_segments(dir.path(), 10_000, 3).unwrap();
    assert_eq!(segment_count(dir.path()), 3);
}

#[test]
fn recover_after_skips_absorbed_segments_and_keeps_the_tail() {
    let dir = tempdir();
    let opts = small_opts();
    fill(dir.path(), &opts, 200);
    let all = recover(dir.path(), &opts).unwrap();
    let rec = recover_after(dir.path(), &opts, Some(120)).unwrap();
    assert_eq!(rec.tail.segment, all.tail.segment);
    assert_eq!(rec.tail.last_index, all.tail.last_index);
    // Having skipped segments, the writer may not rewrite into them.
    assert!(rec.tail.rewrite_floor.is_some_and(|f| f <= 120));
    let first = rec.records.first().unwrap().index;
    assert!(first > 1 && first <= 121, "first returned entry {first}");
    let idx: Vec<u64> = rec.records.iter().map(|r| r.index).collect();
    assert_eq!(idx, (first..=200).collect::<Vec<_>>());
    // Nothing absorbed: the same as recover.
    let none = recover_after(dir.path(), &opts, Some(0)).unwrap();
    assert_eq!(none.records.len(), all.records.len());
    // Everything absorbed: only the last segment is read.
    let most = recover_after(dir.path(), &opts, Some(10_000)).unwrap();
    assert_eq!(most.tail.last_index, Some(200));
    assert!(most.records.len() < all.records.len());
}

fn hard_state(data: &[u8]) -> OwnedRecord {
    OwnedRecord {
        kind: RecordKind::HardState,
        term: 2,
        index: 0,
        data: data.to_vec(),
    }
}

/// Entries 1..=200 as in `fill`, with a HardState only in the first
/// batch (segment 0): a follower whose term, vote and commit then stood
/// still.
fn fill_with_one_hard_state(dir: &Path, opts: &WalOptions) {
    let mut batches: Vec<Vec<OwnedRecord>> = (0..40)
        .map(|b| entries(b * 5 + 1..b * 5 + 6, 8 << 10))
        .collect();
    batches[0].push(hard_state(b"term=2 vote=1 commit=5"));
    write_batches(dir, opts, batches);
}

#[test]
fn recover_after_returns_the_last_hard_state_of_a_skipped_segment() {
    let dir = tempdir();
    let opts = small_opts();
    fill_with_one_hard_state(dir.path(), &opts);
    // Two restarts without a write: two more segments, none with a record.
    write_batches(dir.path(), &opts, vec![]);
    write_batches(dir.path(), &opts, vec![]);
    let rec = recover_after(dir.path(), &opts, Some(200)).unwrap();
    assert_eq!(rec.records, vec![hard_state(b"term=2 vote=1 commit=5")]);
    assert_eq!(
        rec.effective_log().hard_state,
        Some(&b"term=2 vote=1 commit=5"[..])
    );
    assert_eq!(rec.tail.last_index, Some(200));
    // A HardState in a segment that is read wins; nothing is added.
    write_batches(dir.path(), &opts, vec![vec![hard_state(b"term=3")]]);
    let rec = recover_after(dir.path(), &opts, Some(200)).unwrap();
    assert_eq!(rec.records, vec![hard_state(b"term=3")]);
}

#[test]
fn release_keeps_the_segment_with_the_last_hard_state() {
    let dir = tempdir();
    let opts = small_opts();
    fill_with_one_hard_state(dir.path(), &opts);
    write_batches(dir.path(), &opts, vec![]);
    let n = segment_count(dir.path());
    assert!(n >= 4, "{n} segments");
    // Every segment but the newest is absorbed, but segment 0 holds the
    // only HardState: it and everything after it stay.
    assert!(release_segments(dir.path(), 10_000, 1).unwrap().is_empty());
    assert_eq!(segment_count(dir.path()), n);
    // Once a newer segment holds a HardState, the older ones can go.
    write_batches(
        dir.path(),
        &opts,
        vec![vec![hard_state(b"term=3")], entries(201..203, 10)],
    );
    let removed = release_segments(dir.path(), 10_000, 1).unwrap();
    assert_eq!(removed.len(), n);
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.effective_log().hard_state, Some(&b"term=3"[..]));
    assert_eq!(rec.tail.last_index, Some(202));
}

#[test]
fn release_stops_at_the_newest_absorbed_segment_with_a_hard_state() {
    let dir = tempdir();
    let opts = small_opts();
    // HardStates in the first batches of segment 0 and of the segment
    // holding entries 101..; nothing after.
    let mut batches: Vec<Vec<OwnedRecord>> = (0..40)
        .map(|b| entries(b * 5 + 1..b * 5 + 6, 8 << 10))
        .collect();
    batches[0].push(hard_state(b"old"));
    batches[20].push(hard_state(b"new"));
    let stats = write_batches(dir.path(), &opts, batches);
    let hs_seq = stats[20].segment_seq;
    assert!(hs_seq > 0 && hs_seq < stats[39].segment_seq);
    let removed = release_segments(dir.path(), 10_000, 1).unwrap();
    assert_eq!(removed.len() as u64, hs_seq);
    let rec = recover(dir.path(), &opts).unwrap();
    assert_eq!(rec.effective_log().hard_state, Some(&b"new"[..]));
}
