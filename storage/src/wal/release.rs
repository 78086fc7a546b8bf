//! Releasing segments the page file has absorbed.
//!
//! A segment may go once every entry in effect in it is at or below the
//! index the page file durably reflects: that is known when the *next*
//! segment's first index (from its name, checked against its header at
//! recovery) is at most `through_index + 1` (FORMAT.md, "Recovery after
//! the page file": rewrites do not change this). The newest segment never
//! goes, so the log always knows where it continues, and neither does the
//! newest segment holding the log's last HardState (the Raft term and
//! vote) unless a later segment holds a HardState too. Segments are
//! removed oldest first and the directory is synced after, so a crash
//! part-way leaves a contiguous suffix, which recovery accepts.

use std::path::{Path, PathBuf};

use super::hard_state::{find_hard_state, Find};
use super::recovery::prev_end_offset;
use super::segment::{self, SegmentName};
use crate::WalError;

/// Removes the oldest segments of the WAL in `dir` whose entries are all
/// `<= through_index`, while more than `keep_segments` segments remain
/// (etcd's `--max-wals`: 0 keeps every segment). Returns the removed
/// paths, oldest first.
pub fn release_segments(
    dir: &Path,
    through_index: u64,
    keep_segments: usize,
) -> Result<Vec<PathBuf>, WalError> {
    if keep_segments == 0 {
        return Ok(Vec::new());
    }
    let listing = segment::list(dir)?;
    let segs = &listing.segments;
    // first_index 0 marks a log that began in that segment: no index is
    // known, so nothing before it can be proven absorbed.
    let absorbed = segs
        .windows(2)
        .enumerate()
        .take_while(|(i, pair)| {
            let next_first = pair[1].first_index;
            segs.len() - i > keep_segments && next_first != 0 && next_first <= through_index + 1
        })
        .count();
    let releasable = keep_last_hard_state(segs, absorbed)?;
    let mut removed = Vec::new();
    for seg in &segs[..releasable] {
        std::fs::remove_file(&seg.path).map_err(|e| WalError::io("removing", &seg.path, e))?;
        removed.push(seg.path.clone());
    }
    if !removed.is_empty() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| WalError::io("syncing", dir, e))?;
        tracing::info!(
            segments = removed.len(),
            through_index,
            "released WAL segments absorbed by the page file"
        );
    }
    Ok(removed)
}

/// How many of the `absorbed` oldest segments may go without losing the
/// log's last HardState: all of them if a kept segment holds a HardState
/// (it is later than any in the absorbed ones) or none of them does,
/// else those before the newest absorbed segment that holds one.
fn keep_last_hard_state(segs: &[SegmentName], absorbed: usize) -> Result<usize, WalError> {
    if absorbed == 0 {
        return Ok(0);
    }
    let data_end = |i: usize| match segs.get(i + 1) {
        Some(next) => prev_end_offset(next).map(Some),
        None => Ok(None),
    };
    let holds_hard_state = |i: usize| -> Result<bool, WalError> {
        Ok(find_hard_state(&segs[i].path, data_end(i)?, Find::Any)?.is_some())
    };
    for i in absorbed..segs.len() {
        if holds_hard_state(i)? {
            return Ok(absorbed);
        }
    }
    for i in (0..absorbed).rev() {
        if holds_hard_state(i)? {
            return Ok(i);
        }
    }
    Ok(absorbed)
}
