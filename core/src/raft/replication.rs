//! Log replication (§5.3), commitment (§5.4.2), snapshots (§7) and
//! ReadIndex (thesis §6.4): the leader's side and the follower's side.

use super::core::{ProposeError, Raft, Role};
use super::message::{Entry, EntryKind, Message, MessageKind, NodeId, ReadState};
use super::progress::ProgressState;
use super::read_only::{decode_round, PendingRead};

impl Raft {
    /// Appends `data` as a new entry; returns its index. Only the leader
    /// accepts proposals; the entry is committed (or lost) later.
    pub fn propose(&mut self, data: Vec<u8>) -> Result<u64, ProposeError> {
        self.check_can_propose()?;
        if self.log.last_index() - self.log.committed >= self.cfg.max_uncommitted_entries {
            return Err(ProposeError::Backpressure);
        }
        Ok(self.append_entries(vec![Entry {
            term: 0,
            index: 0,
            kind: EntryKind::Normal,
            data,
        }]))
    }

    pub(super) fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        }
        if self.lead_transferee != super::message::NONE {
            return Err(ProposeError::TransferInProgress);
        }
        Ok(())
    }

    /// Leader: stamps `ents` with our term and the next indexes, appends
    /// and sends them. Returns the last index. Our own match index moves
    /// only when the caller has persisted them (`advance`).
    pub(super) fn append_entries(&mut self, mut ents: Vec<Entry>) -> u64 {
        let mut index = self.log.last_index();
        for e in ents.iter_mut() {
            index += 1;
            e.term = self.term;
            e.index = index;
        }
        self.log.append(ents);
        if let Some(pr) = self.prs.get_mut(&self.id) {
            pr.next = index + 1;
        }
        self.bcast_append();
        index
    }

    pub(super) fn bcast_append(&mut self) {
        let peers: Vec<NodeId> = self.prs.keys().copied().filter(|&p| p != self.id).collect();
        for p in peers {
            self.maybe_send_append(p, true);
        }
    }

    pub(super) fn bcast_heartbeat(&mut self, context: Vec<u8>) {
        let peers: Vec<(NodeId, u64)> = self
            .prs
            .iter()
            .filter(|(&p, _)| p != self.id)
            .map(|(&p, pr)| (p, pr.matched))
            .collect();
        for (p, matched) in peers {
            let mut m = Message::new(MessageKind::Heartbeat, p);
            // Never more than the follower is known to hold.
            m.commit = matched.min(self.log.committed);
            m.context = context.clone();
            self.send(m);
        }
    }

    /// Sends `to` what it needs next, if its progress allows. Returns true
    /// if a message was sent.
    pub(super) fn maybe_send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let max_bytes = self.cfg.max_size_per_msg_bytes;
        let (committed, first) = (self.log.committed, self.log.first_index());
        let Some(pr) = self.prs.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev = pr.next - 1;
        let Some(log_term) = self.log.term(prev).filter(|_| pr.next >= first) else {
            return self.send_snapshot(to);
        };
        let entries = if pr.next <= self.log.last_index() {
            self.log.entries_from(pr.next, max_bytes)
        } else {
            vec![]
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let pr = self.prs.get_mut(&to).expect("progress checked above");
        if let Some(last) = entries.last().map(|e| e.index) {
            match pr.state {
                ProgressState::Replicate => {
                    pr.update_optimistic(last);
                    pr.inflights.add(last);
                }
                ProgressState::Probe => pr.probe_sent = true,
                ProgressState::Snapshot => unreachable!("a paused progress sends nothing"),
            }
        }
        let mut m = Message::new(MessageKind::Append, to);
        m.index = prev;
        m.log_term = log_term;
        m.entries = entries;
        m.commit = committed;
        self.send(m);
        true
    }

    fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(snap) = self.log.snapshot.clone() else {
            panic!(
                "invariant: entries before {} compacted but no snapshot held",
                self.log.first_index()
            );
        };
        let pr = self.prs.get_mut(&to).expect("progress of a member");
        if !pr.recent_active {
            return false;
        }
        tracing::info!(
            id = self.id,
            to,
            index = snap.meta.index,
            "sending snapshot"
        );
        pr.become_snapshot(snap.meta.index);
        let mut m = Message::new(MessageKind::Snapshot, to);
        m.snapshot = Some(snap);
        self.send(m);
        true
    }

    /// Gives up on snapshots that got no answer for two election timeouts
    /// (the message may be lost); the follower is probed again.
    pub(super) fn tick_snapshot_timeouts(&mut self) {
        let limit = 2 * self.cfg.election_tick;
        for pr in self.prs.values_mut() {
            if pr.state == ProgressState::Snapshot {
                pr.snapshot_elapsed_ticks += 1;
                if pr.snapshot_elapsed_ticks > limit {
                    pr.pending_snapshot = 0;
                    pr.become_probe();
                }
            }
        }
    }

    /// Commits the highest index a majority of voters holds, if it is of
    /// the current term (§5.4.2). Returns true if the commit index moved.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let prs = &self.prs;
        let mci =
            super::quorum::committed_index(&self.voters, |v| prs.get(&v).map_or(0, |p| p.matched));
        let moved = if self.cfg.unsafe_commit_by_replica_count_for_tests {
            let moved = mci > self.log.committed;
            self.log.commit_to(mci);
            moved
        } else {
            self.log.maybe_commit(mci, self.term)
        };
        if moved && self.read_only.inflight.is_none() && !self.read_only.queued.is_empty() {
            self.start_read_round();
        }
        moved
    }

    pub(super) fn step_leader(&mut self, m: Message) {
        if let Some(pr) = self.prs.get_mut(&m.from) {
            pr.recent_active = true;
        }
        match m.kind {
            MessageKind::AppendResp => self.handle_append_resp(m),
            MessageKind::HeartbeatResp => self.handle_heartbeat_resp(m),
            MessageKind::ReadIndex => self.handle_read_index(m.from, m.context),
            _ => {}
        }
    }

    fn handle_append_resp(&mut self, m: Message) {
        let from = m.from;
        if !self.prs.contains_key(&from) {
            return;
        }
        if m.reject {
            let mut hint = m.reject_hint;
            if m.log_term > 0 {
                hint = self.log.find_conflict_by_term(m.reject_hint, m.log_term).0;
            }
            let pr = self.prs.get_mut(&from).expect("checked");
            if pr.maybe_decr_to(m.index, hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.maybe_send_append(from, true);
            }
            return;
        }
        if m.index > self.log.last_index() {
            tracing::warn!(
                from,
                index = m.index,
                "acknowledgement beyond our log dropped"
            );
            return;
        }
        let pr = self.prs.get_mut(&from).expect("checked");
        let was_paused = pr.is_paused();
        if !pr.maybe_update(m.index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched >= pr.pending_snapshot => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Snapshot => {}
            ProgressState::Replicate => pr.inflights.free_to(m.index),
        }
        if self.maybe_commit() {
            self.bcast_append();
        } else if was_paused {
            self.maybe_send_append(from, true);
        }
        while self.maybe_send_append(from, false) {}
        let caught_up = self
            .prs
            .get(&from)
            .is_some_and(|p| p.matched == self.log.last_index());
        if from == self.lead_transferee && caught_up {
            self.send(Message::new(MessageKind::TimeoutNow, from));
        }
    }

    fn handle_heartbeat_resp(&mut self, m: Message) {
        let last = self.log.last_index();
        let Some(pr) = self.prs.get_mut(&m.from) else {
            return;
        };
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            // A lost append must not stall the window forever.
            pr.inflights.free_first();
        }
        if pr.matched < last {
            self.maybe_send_append(m.from, true);
        }
        if let Some(round) = decode_round(&m.context) {
            if self.read_only.ack(round, m.from) {
                self.maybe_release_reads();
            }
        }
    }

    /// Follower: AppendEntries (§5.3).
    pub(super) fn handle_append(&mut self, m: Message) {
        let mut r = Message::new(MessageKind::AppendResp, m.from);
        if m.index < self.log.committed {
            r.index = self.log.committed;
            return self.send(r);
        }
        let (index, log_term) = (m.index, m.log_term);
        match self.log.maybe_append(index, log_term, m.commit, m.entries) {
            Some(last_new) => r.index = last_new,
            None => {
                // Fast backtracking: point the leader at the last index
                // whose term could match, skipping whole terms.
                let (hint_index, hint_term) = self.log.find_conflict_by_term(index, log_term);
                r.index = index;
                r.reject = true;
                r.reject_hint = hint_index;
                r.log_term = hint_term;
            }
        }
        self.send(r);
    }

    pub(super) fn handle_heartbeat(&mut self, m: Message) {
        self.log.commit_to(m.commit.min(self.log.last_index()));
        let mut r = Message::new(MessageKind::HeartbeatResp, m.from);
        r.context = m.context;
        self.send(r);
    }

    pub(super) fn handle_snapshot(&mut self, mut m: Message) {
        let snap = m
            .snapshot
            .take()
            .expect("a Snapshot message carries a snapshot");
        let mut r = Message::new(MessageKind::AppendResp, m.from);
        if self.restore(snap) {
            tracing::info!(
                id = self.id,
                index = self.log.committed,
                "installed snapshot"
            );
            r.index = self.log.last_index();
        } else {
            r.index = self.log.committed;
        }
        self.send(r);
    }

    /// Replaces our log by `snap` unless we already have what it holds.
    fn restore(&mut self, snap: super::message::Snapshot) -> bool {
        let (index, term) = (snap.meta.index, snap.meta.term);
        if index <= self.log.committed {
            return false;
        }
        if self.log.match_term(index, term) {
            // We hold the entries: just learn that they are committed.
            self.log.commit_to(index);
            return false;
        }
        self.voters = snap.meta.conf.voters.iter().copied().collect();
        self.learners = snap.meta.conf.learners.iter().copied().collect();
        self.log.restore(snap);
        true
    }

    /// Asks for a linearizable read; `context` comes back in a
    /// [`ReadState`] (from `ready`) with the index to wait for. A follower
    /// forwards it to the leader (it may be lost: retry on a timeout).
    pub fn read_index(&mut self, context: Vec<u8>) -> Result<(), ProposeError> {
        match self.role {
            Role::Leader if self.read_only.queued.len() >= self.cfg.max_pending_reads => {
                Err(ProposeError::Backpressure)
            }
            Role::Leader => {
                self.handle_read_index(self.id, context);
                Ok(())
            }
            _ if self.leader != super::message::NONE => {
                let mut m = Message::new(MessageKind::ReadIndex, self.leader);
                m.context = context;
                self.send(m);
                Ok(())
            }
            _ => Err(ProposeError::NotLeader { leader: None }),
        }
    }

    fn handle_read_index(&mut self, from: NodeId, context: Vec<u8>) {
        if self.read_only.queued.len() >= self.cfg.max_pending_reads {
            return; // dropped: the client times out and retries
        }
        self.read_only.queued.push(PendingRead { from, context });
        // Until an entry of our term is committed, our commit index may be
        // behind the previous leader's: queue (§6.4 step 1).
        let committed_in_term = self.log.term(self.log.committed) == Some(self.term);
        if committed_in_term && self.read_only.inflight.is_none() {
            self.start_read_round();
        }
    }

    fn start_read_round(&mut self) {
        let round = self.read_only.start_round(self.log.committed, self.id);
        self.bcast_heartbeat(super::read_only::encode_round(round));
        self.maybe_release_reads();
    }

    fn maybe_release_reads(&mut self) {
        let Some(round) = self.read_only.inflight.as_ref() else {
            return;
        };
        if !super::quorum::has_quorum(&self.voters, |v| round.acks.contains(&v)) {
            return;
        }
        let round = self.read_only.inflight.take().expect("checked");
        for read in round.reads {
            if read.from == self.id {
                self.read_states.push(ReadState {
                    index: round.index,
                    context: read.context,
                });
            } else {
                let mut m = Message::new(MessageKind::ReadIndexResp, read.from);
                m.index = round.index;
                m.context = read.context;
                self.send(m);
            }
        }
        if !self.read_only.queued.is_empty() {
            self.start_read_round();
        }
    }
}
