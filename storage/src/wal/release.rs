//! Releasing segments the page file has absorbed.
//!
//! A segment may go once every entry in it is at or below the index the
//! page file durably reflects: that is known when the *next* segment's
//! first index (from its name, checked against its header at recovery) is
//! at most `through_index + 1`. The newest segment never goes, so the log
//! always knows where it continues. Segments are removed oldest first and
//! the directory is synced after, so a crash part-way leaves a contiguous
//! suffix, which recovery accepts.

use std::path::{Path, PathBuf};

use super::segment;
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
    let mut removed = Vec::new();
    for (i, pair) in segs.windows(2).enumerate() {
        let remaining = segs.len() - i;
        let next_first = pair[1].first_index;
        // first_index 0 marks a log that began in that segment: no index
        // is known, so nothing before it can be proven absorbed.
        if remaining <= keep_segments || next_first == 0 || next_first > through_index + 1 {
            break;
        }
        std::fs::remove_file(&pair[0].path)
            .map_err(|e| WalError::io("removing", &pair[0].path, e))?;
        removed.push(pair[0].path.clone());
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
