//! The plan of a sweep and its budget.
//!
//! The plan: the WAL-like default (one O_DIRECT write of `--block-size`,
//! then fdatasync) first, then O_DIRECT at each `--block-sizes` entry, then
//! each `--queue-depths` entry at the default block size, then buffered
//! write + fdatasync at each block size — each case once.
//!
//! The budget: `--duration` bounds the whole run, preallocation included.
//! Each case, when it starts, takes its weight's share of the time still
//! left, so a case that overran (every case runs at least
//! [`MIN_OPS_PER_CASE`] rounds) is paid for by the ones after it rather than
//! by the total. The default case weighs [`DEFAULT_CASE_WEIGHT`] times the
//! others: the verdict rests on its p99.

use std::time::{Duration, Instant};

use super::case::{CaseSpec, IoKind};
use super::FsyncConfig;
use super::FsyncError;

/// The default case's share of the budget relative to any other case.
pub const DEFAULT_CASE_WEIGHT: u32 = 4;
/// Rounds every case runs, however small its share of the budget.
pub const MIN_OPS_PER_CASE: u64 = 20;
/// The preallocated file's size unless `--file-size` says otherwise...
pub const DEFAULT_FILE_SIZE_BYTES: u64 = 64 << 20;
/// ...or unless the largest round needs more to fit this many times.
pub const ROUNDS_PER_FILE_MIN: u64 = 64;
/// Free space left untouched beside the file.
pub const FREE_SPACE_RESERVE_BYTES: u64 = 16 << 20;
/// O_DIRECT alignment the file size is rounded up to.
const ALIGN_BYTES: u64 = 4096;

/// A case and its weight in the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedCase {
    pub spec: CaseSpec,
    pub weight: u32,
}

/// The cases of a sweep, the WAL-like default first, without repeats.
pub fn plan(cfg: &FsyncConfig) -> Vec<PlannedCase> {
    let layout = cfg.layout();
    let default = CaseSpec::wal_like(cfg.block_size_bytes, layout);
    let mut specs = vec![default];
    if !cfg.default_only {
        let direct = |block_size_bytes, queue_depth| CaseSpec {
            block_size_bytes,
            queue_depth,
            ..default
        };
        specs.extend(cfg.block_sizes_bytes.iter().map(|&bs| direct(bs, 1)));
        specs.extend(
            cfg.queue_depths
                .iter()
                .map(|&qd| direct(cfg.block_size_bytes, qd)),
        );
        specs.extend(cfg.block_sizes_bytes.iter().map(|&bs| CaseSpec {
            io: IoKind::Buffered,
            ..direct(bs, 1)
        }));
    }
    let mut cases: Vec<PlannedCase> = Vec::with_capacity(specs.len());
    for spec in specs {
        if !cases.iter().any(|c| c.spec == spec) {
            let weight = if cases.is_empty() {
                DEFAULT_CASE_WEIGHT
            } else {
                1
            };
            cases.push(PlannedCase { spec, weight });
        }
    }
    cases
}

/// The file's size: `requested` (rounded up to 4 KiB) or the default, and
/// in either case room for at least one round of the largest case (and by
/// default [`ROUNDS_PER_FILE_MIN`] of them).
pub fn file_size_bytes(requested: Option<u64>, cases: &[PlannedCase]) -> u64 {
    let largest_round = cases
        .iter()
        .map(|c| c.spec.batch_bytes())
        .max()
        .unwrap_or(ALIGN_BYTES);
    match requested {
        Some(n) => n
            .div_ceil(ALIGN_BYTES)
            .saturating_mul(ALIGN_BYTES)
            .max(largest_round),
        None => DEFAULT_FILE_SIZE_BYTES.max(largest_round.saturating_mul(ROUNDS_PER_FILE_MIN)),
    }
}

/// Refuses a file that would not fit beside [`FREE_SPACE_RESERVE_BYTES`].
pub fn check_room(
    dir: &std::path::Path,
    need_bytes: u64,
    free_bytes: u64,
) -> Result<(), FsyncError> {
    if need_bytes.saturating_add(FREE_SPACE_RESERVE_BYTES) > free_bytes {
        return Err(FsyncError::NoRoom {
            dir: dir.to_path_buf(),
            need_bytes,
            free_bytes,
        });
    }
    Ok(())
}

/// Hands out the run's time to cases as they start.
#[derive(Debug)]
pub struct Budget {
    started: Instant,
    total: Duration,
    weight_left: u32,
}

impl Budget {
    /// `started` is when the run began (setup counts against the total).
    pub fn new(started: Instant, total: Duration, cases: &[PlannedCase]) -> Budget {
        Budget {
            started,
            total,
            weight_left: cases.iter().map(|c| c.weight).sum(),
        }
    }

    /// The deadline of a case of `weight` starting now.
    pub fn deadline(&mut self, weight: u32) -> Instant {
        let now = Instant::now();
        let left = self.total.saturating_sub(now - self.started);
        let share = share_of(left, weight, self.weight_left);
        self.weight_left = self.weight_left.saturating_sub(weight);
        now + share
    }
}

/// `weight` parts of `left` out of `weight_left`.
pub fn share_of(left: Duration, weight: u32, weight_left: u32) -> Duration {
    assert!(
        weight <= weight_left,
        "invariant: a case's weight is part of the weight left"
    );
    left * weight / weight_left.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsync::case::Layout;

    fn cfg(default_only: bool) -> FsyncConfig {
        FsyncConfig {
            block_sizes_bytes: vec![4 << 10, 64 << 10, 1 << 20],
            queue_depths: vec![1, 4, 16],
            default_only,
            ..FsyncConfig::default()
        }
    }

    #[test]
    fn the_wal_like_case_comes_first_and_no_case_repeats() {
        let cases = plan(&cfg(false));
        let labels: Vec<String> = cases.iter().map(|c| c.spec.label()).collect();
        assert_eq!(
            labels,
            [
                "direct 4K qd1",
                "direct 64K qd1",
                "direct 1M qd1",
                "direct 4K qd4",
                "direct 4K qd16",
                "buffered 4K qd1",
                "buffered 64K qd1",
                "buffered 1M qd1",
            ]
        );
        assert_eq!(
            cases[0].spec,
            CaseSpec::wal_like(4096, Layout::Preallocated)
        );
        assert_eq!(cases[0].weight, DEFAULT_CASE_WEIGHT);
        assert!(cases[1..].iter().all(|c| c.weight == 1));
    }

    #[test]
    fn default_only_plans_the_wal_like_case_alone() {
        let cases = plan(&FsyncConfig {
            extend: true,
            ..cfg(true)
        });
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].spec, CaseSpec::wal_like(4096, Layout::Extend));
    }

    #[test]
    fn the_file_holds_the_largest_round() {
        let cases = plan(&cfg(false));
        assert_eq!(file_size_bytes(None, &cases), 64 << 20);
        assert_eq!(file_size_bytes(Some(1), &cases), 1 << 20, "one 1 MiB round");
        assert_eq!(
            file_size_bytes(Some((2 << 20) + 1), &cases),
            (2 << 20) + 4096
        );
        let big = [PlannedCase {
            spec: CaseSpec {
                queue_depth: 16,
                ..CaseSpec::wal_like(1 << 20, Layout::Preallocated)
            },
            weight: 1,
        }];
        assert_eq!(
            file_size_bytes(None, &big),
            (16 << 20) * ROUNDS_PER_FILE_MIN
        );
    }

    #[test]
    fn a_file_that_does_not_fit_is_refused_with_sizes() {
        let dir = std::path::Path::new("/d");
        assert!(check_room(dir, 64 << 20, 1 << 30).is_ok());
        let e = check_room(dir, 64 << 20, 70 << 20).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("64 MiB") && msg.contains("70 MiB"), "{msg}");
    }

    #[test]
    fn shares_split_the_time_left_by_weight() {
        let left = Duration::from_secs(8);
        assert_eq!(share_of(left, 4, 8), Duration::from_secs(4));
        assert_eq!(
            share_of(left, 1, 1),
            left,
            "the last case takes all that is left"
        );
        assert_eq!(share_of(Duration::ZERO, 1, 3), Duration::ZERO);
        // Eight cases: the default weighs 4, the seven others 1 each.
        let hour = Duration::from_secs(3600);
        let started = Instant::now();
        let mut b = Budget::new(started, hour, &plan(&cfg(false)));
        let first = b.deadline(DEFAULT_CASE_WEIGHT) - started;
        assert!(
            first.abs_diff(hour * 4 / 11) < Duration::from_secs(1),
            "{first:?}"
        );
        // Nothing was spent, so the next case shares the whole hour with 6 others.
        let second = b.deadline(1) - started;
        assert!(
            second.abs_diff(hour / 7) < Duration::from_secs(1),
            "{second:?}"
        );
    }
}
