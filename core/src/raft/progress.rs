//! What the leader knows about each follower's log, and how fast it may
//! send to it (§5.3 plus etcd's flow control).
//!
//! - `Probe`: the leader does not know where the follower's log matches;
//!   it sends one append per heartbeat interval and waits for the answer.
//! - `Replicate`: the logs match at `matched`; the leader streams appends
//!   optimistically (pipelining), at most `max_inflight_msgs` unacknowledged.
//! - `Snapshot`: the entries the follower needs are compacted away; a
//!   snapshot is on its way and nothing else is sent until it lands (or a
//!   timeout gives up on it).

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe,
    Replicate,
    Snapshot,
}

/// A bounded window of in-flight appends, each named by its last index.
#[derive(Clone, Debug)]
pub(crate) struct Inflights {
    last_indexes: VecDeque<u64>,
    cap: usize,
}

impl Inflights {
    pub(crate) fn new(cap: usize) -> Inflights {
        assert!(cap > 0, "the in-flight window needs room for one message");
        Inflights {
            last_indexes: VecDeque::with_capacity(cap),
            cap,
        }
    }

    pub(crate) fn full(&self) -> bool {
        self.last_indexes.len() >= self.cap
    }

    pub(crate) fn add(&mut self, last_index: u64) {
        assert!(!self.full(), "invariant: add to a full in-flight window");
        if let Some(&back) = self.last_indexes.back() {
            assert!(
                last_index > back,
                "in-flight appends must have increasing last indexes"
            );
        }
        self.last_indexes.push_back(last_index);
    }

    /// The follower acknowledged everything through `index`.
    pub(crate) fn free_to(&mut self, index: u64) {
        while self.last_indexes.front().is_some_and(|&i| i <= index) {
            self.last_indexes.pop_front();
        }
    }

    pub(crate) fn free_first(&mut self) {
        self.last_indexes.pop_front();
    }

    pub(crate) fn reset(&mut self) {
        self.last_indexes.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.last_indexes.len()
    }
}

#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to match the leader's log (and be persisted
    /// on the follower).
    pub matched: u64,
    /// The next index to send.
    pub next: u64,
    pub state: ProgressState,
    /// In `Probe`: an append is out and unanswered.
    pub(crate) probe_sent: bool,
    /// In `Snapshot`: the index of the snapshot being sent.
    pub(crate) pending_snapshot: u64,
    pub(crate) snapshot_elapsed_ticks: u32,
    /// Heard from since the last CheckQuorum round.
    pub(crate) recent_active: bool,
    pub(crate) inflights: Inflights,
}

impl Progress {
    pub(crate) fn new(next: u64, max_inflight_msgs: usize) -> Progress {
        Progress {
            matched: 0,
            next,
            state: ProgressState::Probe,
            probe_sent: false,
            pending_snapshot: 0,
            snapshot_elapsed_ticks: 0,
            recent_active: false,
            inflights: Inflights::new(max_inflight_msgs),
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.snapshot_elapsed_ticks = 0;
        self.state = state;
        self.inflights.reset();
    }

    pub(crate) fn become_probe(&mut self) {
        // After a snapshot, resume from past it: the follower has it (or
        // the probe's rejection will move `next` back).
        let next = if self.state == ProgressState::Snapshot {
            (self.matched + 1).max(self.pending_snapshot + 1)
        } else {
            self.matched + 1
        };
        self.reset_state(ProgressState::Probe);
        self.next = next;
    }

    pub(crate) fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next = self.matched + 1;
    }

    pub(crate) fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// The follower acknowledged `index`; false if that is old news.
    pub(crate) fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next = self.next.max(index + 1);
        updated
    }

    /// Pipelining: assume the append of entries through `last` will succeed.
    pub(crate) fn update_optimistic(&mut self, last: u64) {
        self.next = last + 1;
    }

    /// The follower rejected an append at `rejected`; `probe_hint` is the
    /// next index worth probing (from the fast-backtracking hint). Returns
    /// false if the rejection is stale.
    pub(crate) fn maybe_decr_to(&mut self, rejected: u64, probe_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next = self.matched + 1;
            return true;
        }
        if self.next.saturating_sub(1) != rejected {
            return false;
        }
        self.next = rejected.min(probe_hint + 1).max(self.matched + 1).max(1);
        self.probe_sent = false;
        true
    }

    /// Appends sent and not yet acknowledged (in `Replicate`).
    pub fn inflight_count(&self) -> usize {
        self.inflights.len()
    }

    pub(crate) fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inflight_window_bounds_pipelining() {
        let mut pr = Progress::new(1, 2);
        pr.become_replicate();
        pr.inflights.add(3);
        pr.update_optimistic(3);
        assert!(!pr.is_paused());
        pr.inflights.add(5);
        assert!(pr.is_paused(), "two appends in flight fill a window of two");
        pr.maybe_update(3);
        pr.inflights.free_to(3);
        assert!(!pr.is_paused());
        assert_eq!(pr.inflights.len(), 1);
    }

    #[test]
    fn stale_rejection_is_ignored_in_probe() {
        let mut pr = Progress::new(10, 4);
        assert!(
            !pr.maybe_decr_to(5, 3),
            "rejection of an index we did not just send"
        );
        assert!(pr.maybe_decr_to(9, 3));
        assert_eq!(pr.next, 4);
    }

    #[test]
    fn replicate_rejection_falls_back_to_match() {
        let mut pr = Progress::new(1, 4);
        pr.maybe_update(5);
        pr.become_replicate();
        pr.update_optimistic(9);
        assert!(!pr.maybe_decr_to(4, 0));
        assert!(pr.maybe_decr_to(7, 0));
        assert_eq!(pr.next, 6);
    }
}
