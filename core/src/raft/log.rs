//! The Raft log of one node: a snapshot boundary, the entries after it
//! (the persisted prefix and the unstable suffix not yet handed to the
//! caller for persistence), and the commit and apply cursors.
//!
//! Invariants (asserted): `snap_index <= applied <= committed <= last_index`,
//! `snap_index <= stable_index <= last_index`, entries are contiguous from
//! `snap_index + 1`, and a committed entry is never truncated.

use super::message::{Entry, Snapshot};

#[derive(Debug)]
pub(crate) struct RaftLog {
    /// Index and term of the last entry the snapshot covers (0, 0 if none).
    snap_index: u64,
    snap_term: u64,
    /// Entries `snap_index + 1 ..= last_index()`.
    entries: Vec<Entry>,
    /// Entries through this index are on stable storage.
    stable_index: u64,
    pub(crate) committed: u64,
    pub(crate) applied: u64,
    /// A snapshot received from the leader, not yet handed out in a Ready.
    pending_snapshot: Option<Snapshot>,
    /// The newest snapshot this node holds (sent to lagging followers).
    pub(crate) snapshot: Option<Snapshot>,
}

impl RaftLog {
    /// A log restored from what the caller persisted: the snapshot (if
    /// any), the entries after it, and the persisted commit index.
    pub(crate) fn restore_from(
        snapshot: Option<Snapshot>,
        entries: Vec<Entry>,
        commit: u64,
    ) -> RaftLog {
        let (snap_index, snap_term) = snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.index, s.meta.term));
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(
                e.index,
                snap_index + 1 + i as u64,
                "persisted log must be contiguous after the snapshot"
            );
        }
        let last = snap_index + entries.len() as u64;
        let committed = commit.clamp(snap_index, last);
        RaftLog {
            snap_index,
            snap_term,
            entries,
            stable_index: last,
            committed,
            applied: snap_index,
            pending_snapshot: None,
            snapshot,
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.snap_index + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.snap_index + self.entries.len() as u64
    }

    pub(crate) fn stable_index(&self) -> u64 {
        self.stable_index
    }

    /// The term of the entry at `index`; `None` if compacted or beyond the end.
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index == self.snap_index {
            return Some(self.snap_term);
        }
        if index < self.snap_index || index > self.last_index() {
            return None;
        }
        Some(self.entries[(index - self.snap_index - 1) as usize].term)
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.term(self.last_index())
            .expect("invariant: the last index always has a term")
    }

    pub(crate) fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index) == Some(term)
    }

    /// §5.4.1: a candidate's log is at least as up-to-date as ours.
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    pub(crate) fn entry(&self, index: u64) -> Option<&Entry> {
        if index <= self.snap_index || index > self.last_index() {
            return None;
        }
        Some(&self.entries[(index - self.snap_index - 1) as usize])
    }

    /// Entries from `lo` to the end, at most `max_bytes` (but always at
    /// least one entry if there is one). `lo` must not be compacted.
    pub(crate) fn entries_from(&self, lo: u64, max_bytes: u64) -> Vec<Entry> {
        assert!(
            lo > self.snap_index,
            "entries_from({lo}) below the snapshot at {}",
            self.snap_index
        );
        let mut out = Vec::new();
        let mut size_bytes = 0;
        for i in lo..=self.last_index() {
            let e = self.entry(i).expect("index within the log");
            size_bytes += e.size_bytes();
            if !out.is_empty() && size_bytes > max_bytes {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// The first index in `ents` that is absent from our log or has another
    /// term; 0 if all are present.
    fn find_conflict(&self, ents: &[Entry]) -> u64 {
        ents.iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// The largest index `<= index` whose term is `<= term`, with that term
    /// (0 if compacted). Used on both sides of fast log backtracking.
    pub(crate) fn find_conflict_by_term(&self, index: u64, term: u64) -> (u64, u64) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term(i) {
                None => return (i, 0),
                Some(t) if t <= term => return (i, t),
                Some(_) => i -= 1,
            }
        }
    }

    /// AppendEntries on a follower: if our log holds `(index, log_term)`,
    /// append `ents` after it (truncating a conflicting suffix), advance the
    /// commit index, and return the index of the last new entry.
    pub(crate) fn maybe_append(
        &mut self,
        index: u64,
        log_term: u64,
        committed: u64,
        ents: Vec<Entry>,
    ) -> Option<u64> {
        if !self.match_term(index, log_term) {
            return None;
        }
        let last_new = index + ents.len() as u64;
        let conflict = self.find_conflict(&ents);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "invariant: entry {conflict} conflicts with the committed prefix"
            );
            let skip = (conflict - index - 1) as usize;
            self.append(ents.into_iter().skip(skip).collect());
        }
        self.commit_to(committed.min(last_new));
        Some(last_new)
    }

    /// Appends `ents` (contiguous), truncating any suffix from `ents[0].index`.
    pub(crate) fn append(&mut self, ents: Vec<Entry>) {
        let Some(first) = ents.first() else { return };
        let after = first.index - 1;
        assert!(
            after >= self.committed,
            "invariant: append at {} would truncate committed {}",
            first.index,
            self.committed
        );
        assert!(
            after <= self.last_index(),
            "append at {} leaves a gap after {}",
            first.index,
            self.last_index()
        );
        self.entries.truncate((after - self.snap_index) as usize);
        self.stable_index = self.stable_index.min(after);
        for (i, e) in ents.iter().enumerate() {
            assert_eq!(
                e.index,
                first.index + i as u64,
                "appended entries must be contiguous"
            );
        }
        self.entries.extend(ents);
    }

    pub(crate) fn commit_to(&mut self, index: u64) {
        if index > self.committed {
            assert!(
                index <= self.last_index(),
                "invariant: commit {index} beyond last index {}",
                self.last_index()
            );
            self.committed = index;
        }
    }

    /// Commits `index` only if its entry has `term` (§5.4.2).
    pub(crate) fn maybe_commit(&mut self, index: u64, term: u64) -> bool {
        if index > self.committed && self.match_term(index, term) {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Entries the caller must persist.
    pub(crate) fn unstable_entries(&self) -> &[Entry] {
        &self.entries[(self.stable_index - self.snap_index) as usize..]
    }

    /// The caller persisted entries through `(index, term)`. Ignored if the
    /// log changed under that index since.
    pub(crate) fn stable_to(&mut self, index: u64, term: u64) {
        if index > self.stable_index && self.match_term(index, term) {
            self.stable_index = index;
        }
    }

    /// The highest index that may be applied: committed and persisted here.
    pub(crate) fn applicable_index(&self) -> u64 {
        self.committed.min(self.stable_index)
    }

    pub(crate) fn has_next_committed_entries(&self) -> bool {
        self.applicable_index() > self.applied
    }

    pub(crate) fn next_committed_entries(&self) -> Vec<Entry> {
        (self.applied + 1..=self.applicable_index())
            .map(|i| self.entry(i).expect("committed entry").clone())
            .collect()
    }

    pub(crate) fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.committed,
            "invariant: applied {index} beyond committed {}",
            self.committed
        );
        self.applied = self.applied.max(index);
    }

    /// Replaces the whole log by a snapshot from the leader.
    pub(crate) fn restore(&mut self, snap: Snapshot) {
        assert!(
            snap.meta.index > self.committed,
            "invariant: snapshot must be past the commit index"
        );
        self.snap_index = snap.meta.index;
        self.snap_term = snap.meta.term;
        self.entries.clear();
        self.stable_index = snap.meta.index;
        self.committed = snap.meta.index;
        self.applied = snap.meta.index;
        self.snapshot = Some(snap.clone());
        self.pending_snapshot = Some(snap);
    }

    pub(crate) fn pending_snapshot(&self) -> Option<&Snapshot> {
        self.pending_snapshot.as_ref()
    }

    /// The caller persisted the snapshot at `index` (a newer one that
    /// arrived meanwhile stays pending).
    pub(crate) fn snapshot_persisted(&mut self, index: u64) {
        if self
            .pending_snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index == index)
        {
            self.pending_snapshot = None;
        }
    }

    /// The caller took a snapshot of its state at `snap.meta.index`: drop
    /// the entries it covers and keep it to send to lagging followers.
    pub(crate) fn compact(&mut self, snap: Snapshot) {
        let index = snap.meta.index;
        assert!(
            index <= self.applied,
            "compact at {index} beyond applied {}",
            self.applied
        );
        assert!(
            index <= self.stable_index,
            "compact at {index} beyond persisted {}",
            self.stable_index
        );
        if index <= self.snap_index {
            return;
        }
        assert_eq!(
            self.term(index),
            Some(snap.meta.term),
            "snapshot term must match the log"
        );
        self.entries.drain(..(index - self.snap_index) as usize);
        self.snap_index = index;
        self.snap_term = snap.meta.term;
        self.snapshot = Some(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::super::message::EntryKind;
    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            kind: EntryKind::Normal,
            data: vec![],
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let ents = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| ent(i as u64 + 1, t))
            .collect();
        RaftLog::restore_from(None, ents, 0)
    }

    #[test]
    fn append_truncates_conflicting_suffix_only() {
        let mut log = log_of(&[1, 1, 2, 2]);
        assert_eq!(
            log.maybe_append(2, 1, 0, vec![ent(3, 3), ent(4, 3)]),
            Some(4)
        );
        assert_eq!(log.term(3), Some(3));
        assert_eq!(log.stable_index(), 2, "truncation un-persists the suffix");
        assert_eq!(log.unstable_entries().len(), 2);
        // A duplicate (older, shorter) append does not truncate.
        assert_eq!(log.maybe_append(2, 1, 0, vec![ent(3, 3)]), Some(3));
        assert_eq!(log.last_index(), 4);
        assert_eq!(log.maybe_append(4, 9, 0, vec![]), None);
    }

    #[test]
    fn find_conflict_by_term_skips_whole_terms() {
        let log = log_of(&[1, 1, 4, 4, 4, 5, 5]);
        assert_eq!(log.find_conflict_by_term(7, 4), (5, 4));
        assert_eq!(log.find_conflict_by_term(7, 2), (2, 1));
        assert_eq!(log.find_conflict_by_term(100, 9), (7, 5));
        assert_eq!(log.find_conflict_by_term(7, 0), (0, 0));
    }

    #[test]
    fn commit_only_matching_term() {
        let mut log = log_of(&[1, 2]);
        assert!(!log.maybe_commit(2, 1));
        assert!(log.maybe_commit(2, 2));
        assert_eq!(log.committed, 2);
    }

    #[test]
    fn compact_keeps_term_at_boundary() {
        let mut log = log_of(&[1, 1, 2]);
        log.commit_to(2);
        log.applied_to(2);
        log.compact(Snapshot {
            meta: super::super::message::SnapshotMeta {
                index: 2,
                term: 1,
                conf: Default::default(),
            },
            data: vec![],
        });
        assert_eq!(log.first_index(), 3);
        assert_eq!(log.term(2), Some(1));
        assert_eq!(log.term(1), None);
        assert_eq!(log.entries_from(3, 0).len(), 1);
    }

    proptest::proptest! {
        /// `maybe_append` against a model log (a `Vec` of terms): the same
        /// acceptance, and the same terms afterwards.
        #[test]
        fn maybe_append_matches_a_model(
            ops in proptest::collection::vec((0u64..8, 0u64..4, proptest::collection::vec(0u64..3, 0..4)), 1..40)
        ) {
            let mut log = log_of(&[]);
            let mut model: Vec<u64> = Vec::new(); // model[i] = term of index i + 1
            for (index, term_bump, bumps) in ops {
                let log_term = if index == 0 { 0 } else { model.get(index as usize - 1).copied().unwrap_or(1) + term_bump / 3 };
                let mut t = log_term.max(1);
                let ents: Vec<Entry> = bumps.iter().enumerate().map(|(i, b)| { t += b; ent(index + 1 + i as u64, t) }).collect();
                let model_ok = index == 0 || model.get(index as usize - 1) == Some(&log_term);
                let got = log.maybe_append(index, log_term, 0, ents.clone());
                proptest::prop_assert_eq!(got.is_some(), model_ok);
                if model_ok {
                    for e in &ents {
                        let at = e.index as usize - 1;
                        if model.get(at) != Some(&e.term) {
                            model.truncate(at);
                            model.push(e.term);
                        }
                    }
                }
                let terms: Vec<u64> = (1..=log.last_index()).map(|i| log.term(i).unwrap()).collect();
                proptest::prop_assert_eq!(&terms, &model);
            }
        }
    }

    #[test]
    #[should_panic(expected = "committed")]
    fn truncating_committed_entries_is_an_invariant_violation() {
        let mut log = log_of(&[1, 1]);
        log.commit_to(2);
        log.append(vec![ent(2, 3)]);
    }
}
