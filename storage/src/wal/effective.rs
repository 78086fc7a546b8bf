//! How records shape the log: which Entry index may come next, and which
//! entries are still in effect once later records replaced earlier ones.
//! No I/O here; the writer ([`super::Wal::append`]) and recovery apply the
//! same rule through [`LogEnd`], so the writer never accepts what recovery
//! would refuse.
//!
//! The rule (see `storage/FORMAT.md`, "Record"):
//!
//! * An Entry record at index `i` requires `1 <= i <= last + 1`, where
//!   `last` is the effective last index. `i == last + 1` appends; `i <= last`
//!   replaces: every earlier Entry at `>= i` is superseded (a Raft follower
//!   overwriting an uncommitted suffix). `i > last + 1` is a gap: refused.
//! * A Snapshot marker at index `s` (data: `s`, term, both u64 LE)
//!   supersedes every earlier Entry; the effective last index becomes `s`
//!   and later entries must be `> s`.
//! * HardState records do not touch indexes; the last one is in effect.

use super::record::{OwnedRecord, RecordKind};

/// Length of a Snapshot marker's data: index u64 LE, term u64 LE.
pub const SNAPSHOT_MARKER_DATA_BYTES: usize = 16;

/// The (index, term) a Snapshot marker record carries in its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotMarker {
    /// Index of the last entry the snapshot covers; the log resumes after it.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

impl SnapshotMarker {
    /// The record data: `index` u64 LE, then `term` u64 LE.
    pub fn encode(&self) -> [u8; SNAPSHOT_MARKER_DATA_BYTES] {
        let mut out = [0u8; SNAPSHOT_MARKER_DATA_BYTES];
        out[..8].copy_from_slice(&self.index.to_le_bytes());
        out[8..].copy_from_slice(&self.term.to_le_bytes());
        out
    }

    /// Decodes a Snapshot record: its data must be exactly 16 bytes and
    /// name the same index as the record header (a record that passed its
    /// checksum but disagrees with itself was written wrong).
    pub fn decode(record_index: u64, data: &[u8]) -> Result<SnapshotMarker, &'static str> {
        let bytes: &[u8; SNAPSHOT_MARKER_DATA_BYTES] = data
            .try_into()
            .map_err(|_| "snapshot marker data is not 16 bytes (index u64, term u64)")?;
        let (mut index, mut term) = ([0u8; 8], [0u8; 8]);
        index.copy_from_slice(&bytes[..8]);
        term.copy_from_slice(&bytes[8..]);
        let marker = SnapshotMarker {
            index: u64::from_le_bytes(index),
            term: u64::from_le_bytes(term),
        };
        if marker.index != record_index {
            return Err("snapshot marker data names another index than its record header");
        }
        Ok(marker)
    }
}

/// Why an Entry index cannot come next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IndexFault {
    /// `got > last + 1`: entries in between would be missing.
    Gap { expected: u64, got: u64 },
    /// `got` is 0 or not above the floor (a snapshot marker's index):
    /// those indexes can no longer be rewritten.
    BelowFloor { first_allowed: u64, got: u64 },
}

impl IndexFault {
    pub(crate) fn describe(&self) -> String {
        match *self {
            IndexFault::Gap { expected, got } => format!(
                "entry index {got} does not follow last index {} (gap)",
                expected - 1
            ),
            IndexFault::BelowFloor { first_allowed, got } => format!(
                "entry index {got} is below {first_allowed}, the first index that may still be \
                 written (snapshot marker)"
            ),
        }
    }
}

/// The effective end of the log while records are applied in order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogEnd {
    /// Effective last index: of the last Entry in effect, or of the last
    /// Snapshot marker if no entry followed it. `None`: nothing yet (an
    /// empty log accepts any first index >= 1).
    pub last: Option<u64>,
    /// Entries must be above this index: the last Snapshot marker's index
    /// (or, for a writer opened after skipping absorbed segments, at least
    /// the index before the first segment read).
    pub floor: Option<u64>,
}

impl LogEnd {
    /// Whether an Entry at `index` may come next.
    pub(crate) fn check_entry(&self, index: u64) -> Result<(), IndexFault> {
        let first_allowed = self.floor.map_or(1, |f| f + 1);
        if index < first_allowed {
            return Err(IndexFault::BelowFloor {
                first_allowed,
                got: index,
            });
        }
        match self.last {
            Some(last) if index > last + 1 => Err(IndexFault::Gap {
                expected: last + 1,
                got: index,
            }),
            _ => Ok(()),
        }
    }

    /// Moves the end past a record that passed the checks.
    pub(crate) fn apply(&mut self, kind: RecordKind, index: u64) {
        match kind {
            RecordKind::Entry => self.last = Some(index),
            RecordKind::Snapshot => {
                self.last = Some(index);
                self.floor = Some(index);
            }
            RecordKind::HardState => {}
        }
    }

    /// The index the next appended Entry gets when it does not replace
    /// anything; 0 while the log is empty (the on-disk convention).
    pub(crate) fn next_index_or_zero(&self) -> u64 {
        self.last.map_or(0, |l| l + 1)
    }
}

/// What the log holds once superseded records are dropped: what a node
/// needs at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EffectiveLog<'r> {
    /// The last Snapshot marker, if any: the log resumes after its index.
    pub snapshot: Option<SnapshotMarker>,
    /// Entry records in effect, in index order, contiguous; each one is the
    /// last record written for its index.
    pub entries: Vec<&'r OwnedRecord>,
    /// Data of the last HardState record, if any.
    pub hard_state: Option<&'r [u8]>,
}

/// Folds `records` (in file order, as [`super::recover`] returns them) into
/// the log they leave in effect: an Entry at index `i` drops every earlier
/// entry at `>= i`, a Snapshot marker drops every earlier entry.
///
/// ```
/// use cairn_storage::wal::{effective_log, OwnedRecord, RecordKind, SnapshotMarker};
///
/// let entry = |term, index| OwnedRecord { kind: RecordKind::Entry, term, index, data: vec![] };
/// let marker = SnapshotMarker { index: 10, term: 2 };
/// let records = vec![
///     entry(1, 1), entry(1, 2), entry(1, 3),
///     entry(2, 2), // a new leader replaced 2..=3
///     OwnedRecord { kind: RecordKind::Snapshot, term: 2, index: 10, data: marker.encode().to_vec() },
///     entry(2, 11), entry(2, 12),
/// ];
/// let log = effective_log(&records);
/// assert_eq!(log.snapshot, Some(marker));
/// let kept: Vec<u64> = log.entries.iter().map(|e| e.index).collect();
/// assert_eq!(kept, vec![11, 12]);
/// let before_marker = effective_log(&records[..4]);
/// let kept: Vec<(u64, u64)> = before_marker.entries.iter().map(|e| (e.index, e.term)).collect();
/// assert_eq!(kept, vec![(1, 1), (2, 2)]);
/// ```
///
/// # Panics
///
/// If `records` break the index rule (a gap, or an invalid Snapshot
/// marker): recovery refuses such a log, so that is a broken invariant of
/// the caller, not bad file data.
pub fn effective_log(records: &[OwnedRecord]) -> EffectiveLog<'_> {
    let mut log = EffectiveLog::default();
    for r in records {
        match r.kind {
            RecordKind::HardState => log.hard_state = Some(&r.data),
            RecordKind::Snapshot => {
                let marker = SnapshotMarker::decode(r.index, &r.data)
                    .expect("invariant: recovery validated every snapshot marker");
                log.snapshot = Some(marker);
                log.entries.clear();
            }
            RecordKind::Entry => {
                if let Some(first) = log.entries.first().map(|e| e.index) {
                    // Keep the entries below r.index (none if r.index is
                    // below them all: a truncation past the first returned).
                    let keep = r.index.saturating_sub(first) as usize;
                    assert!(
                        keep <= log.entries.len(),
                        "invariant: entry index {} continues or rewrites the log ending at {}",
                        r.index,
                        first + log.entries.len() as u64 - 1
                    );
                    log.entries.truncate(keep);
                }
                log.entries.push(r);
            }
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: RecordKind, term: u64, index: u64, data: &[u8]) -> OwnedRecord {
        OwnedRecord {
            kind,
            term,
            index,
            data: data.to_vec(),
        }
    }

    fn entry(term: u64, index: u64) -> OwnedRecord {
        rec(RecordKind::Entry, term, index, &[index as u8, term as u8])
    }

    fn snapshot(index: u64, term: u64) -> OwnedRecord {
        let data = SnapshotMarker { index, term }.encode();
        rec(RecordKind::Snapshot, term, index, &data)
    }

    fn indexes_terms(log: &EffectiveLog<'_>) -> Vec<(u64, u64)> {
        log.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn a_rewritten_index_supersedes_it_and_everything_after() {
        let records = vec![
            entry(1, 1),
            entry(1, 2),
            entry(1, 3),
            entry(1, 4),
            entry(2, 3),
            entry(2, 4),
            entry(2, 5),
        ];
        let log = effective_log(&records);
        assert_eq!(
            indexes_terms(&log),
            vec![(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]
        );
        assert!(log.snapshot.is_none() && log.hard_state.is_none());
    }

    #[test]
    fn a_snapshot_marker_drops_every_earlier_entry() {
        let records = vec![
            entry(1, 1),
            entry(1, 2),
            snapshot(10, 3),
            entry(3, 11),
            snapshot(5, 4),
            entry(4, 6),
        ];
        let log = effective_log(&records);
        assert_eq!(log.snapshot, Some(SnapshotMarker { index: 5, term: 4 }));
        assert_eq!(indexes_terms(&log), vec![(6, 4)]);
    }

    #[test]
    fn the_last_hard_state_is_in_effect() {
        let records = vec![
            rec(RecordKind::HardState, 1, 0, b"a"),
            entry(1, 1),
            rec(RecordKind::HardState, 1, 0, b"b"),
        ];
        assert_eq!(effective_log(&records).hard_state, Some(&b"b"[..]));
    }

    #[test]
    fn a_rewrite_below_the_first_returned_entry_restarts_the_list() {
        // recover_after skipped the segments that held 1..=4.
        let records = vec![entry(1, 5), entry(1, 6), entry(2, 3)];
        assert_eq!(indexes_terms(&effective_log(&records)), vec![(3, 2)]);
    }

    #[test]
    fn log_end_refuses_gaps_zero_and_indexes_at_or_below_a_snapshot() {
        let mut end = LogEnd::default();
        assert!(matches!(
            end.check_entry(0),
            Err(IndexFault::BelowFloor {
                first_allowed: 1,
                got: 0
            })
        ));
        end.check_entry(7).unwrap();
        end.apply(RecordKind::Entry, 7);
        assert_eq!(
            end.check_entry(9),
            Err(IndexFault::Gap {
                expected: 8,
                got: 9
            })
        );
        end.check_entry(8).unwrap();
        end.check_entry(2).unwrap();
        end.apply(RecordKind::Snapshot, 20);
        assert_eq!(end.next_index_or_zero(), 21);
        assert_eq!(
            end.check_entry(20),
            Err(IndexFault::BelowFloor {
                first_allowed: 21,
                got: 20
            })
        );
        end.check_entry(21).unwrap();
        end.apply(RecordKind::HardState, 3);
        assert_eq!(end.last, Some(20));
    }

    #[test]
    fn snapshot_marker_data_round_trips_and_must_match_its_header() {
        let m = SnapshotMarker { index: 9, term: 4 };
        assert_eq!(SnapshotMarker::decode(9, &m.encode()), Ok(m));
        assert!(SnapshotMarker::decode(8, &m.encode()).is_err());
        assert!(SnapshotMarker::decode(9, &m.encode()[..15]).is_err());
    }
}
