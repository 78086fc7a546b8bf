//! Leader election (§5.2, §5.4.1), PreVote (thesis §9.6) and the term
//! rules every incoming message passes through first (§5.1).

use super::core::{Raft, Role};
use super::message::{EntryKind, Message, MessageKind, CAMPAIGN_TRANSFER, NONE};
use super::quorum::{vote_result, VoteResult};

impl Raft {
    /// Starts an election (after an election timeout, or at once when
    /// `transfer` is set by a leader's TimeoutNow).
    pub(super) fn hup(&mut self, transfer: bool) {
        if self.role == Role::Leader || !self.promotable() {
            return;
        }
        // A committed but unapplied membership change might remove us or
        // change the quorum; wait until it is applied.
        let pending_conf = (self.log.applied + 1..=self.log.committed).any(|i| {
            self.log
                .entry(i)
                .is_some_and(|e| e.kind == EntryKind::ConfChange)
        });
        if pending_conf {
            return;
        }
        if self.cfg.pre_vote && !transfer {
            self.campaign(true, false);
        } else {
            self.campaign(false, transfer);
        }
    }

    /// Campaigns at once when this node is the only voter: nobody else can
    /// lead, so waiting out an election timeout would only delay a
    /// single-member cluster's first write (etcd fast-forwards its ticks).
    pub fn campaign_if_sole_voter(&mut self) {
        if self.role != Role::Leader && self.voters.len() == 1 && self.voters.contains(&self.id) {
            self.hup(false);
        }
    }

    fn campaign(&mut self, pre: bool, transfer: bool) {
        let (vote_term, kind) = if pre {
            self.become_pre_candidate();
            (self.term + 1, MessageKind::PreVote)
        } else {
            self.become_candidate();
            (self.term, MessageKind::Vote)
        };
        if self.poll(self.id, true) == VoteResult::Won {
            // A single voter wins at once.
            return self.on_election_won(pre);
        }
        let voters: Vec<_> = self
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.id)
            .collect();
        for v in voters {
            let mut m = Message::new(kind, v);
            m.term = vote_term;
            m.index = self.log.last_index();
            m.log_term = self.log.last_term();
            if transfer {
                m.context = CAMPAIGN_TRANSFER.to_vec();
            }
            self.send(m);
        }
    }

    fn poll(&mut self, from: u64, granted: bool) -> VoteResult {
        self.votes.entry(from).or_insert(granted);
        vote_result(&self.voters, &self.votes)
    }

    fn on_election_won(&mut self, pre: bool) {
        if pre {
            self.campaign(false, false);
        } else {
            self.become_leader();
        }
    }

    /// Feeds one message from a peer into the state machine.
    pub fn step(&mut self, m: Message) {
        if m.to != self.id || !well_formed(&m) {
            return;
        }
        if !self.step_term(&m) {
            return;
        }
        match m.kind {
            MessageKind::Vote | MessageKind::PreVote => self.handle_vote_request(m),
            _ => match self.role {
                Role::Leader => self.step_leader(m),
                Role::Candidate | Role::PreCandidate => self.step_candidate(m),
                Role::Follower => self.step_follower(m),
            },
        }
    }

    /// The term rules. Returns false if the message is to be dropped.
    fn step_term(&mut self, m: &Message) -> bool {
        let is_vote = matches!(m.kind, MessageKind::Vote | MessageKind::PreVote);
        if m.term > self.term {
            if is_vote {
                let force = m.context == CAMPAIGN_TRANSFER;
                // While we hear from a leader, a vote request is from a
                // node that could not hear it (partitioned, or removed):
                // ignore it rather than depose a working leader.
                let lease =
                    self.cfg.check_quorum || (self.cfg.pre_vote && m.kind == MessageKind::PreVote);
                let in_lease =
                    lease && self.leader != NONE && self.election_elapsed < self.cfg.election_tick;
                if !force && in_lease {
                    return false;
                }
            }
            match m.kind {
                // PreVote changes nobody's term; a granted PreVoteResp
                // carries the term the candidate is about to take.
                MessageKind::PreVote => {}
                MessageKind::PreVoteResp if !m.reject => {}
                MessageKind::Append | MessageKind::Heartbeat | MessageKind::Snapshot => {
                    self.become_follower(m.term, m.from)
                }
                _ => self.become_follower(m.term, NONE),
            }
            return true;
        }
        if m.term < self.term {
            if (self.cfg.check_quorum || self.cfg.pre_vote)
                && matches!(m.kind, MessageKind::Append | MessageKind::Heartbeat)
            {
                // A stale leader (or one cut off by our PreVote refusals)
                // learns the current term from this and steps down.
                self.send(Message::new(MessageKind::AppendResp, m.from));
            } else if m.kind == MessageKind::PreVote {
                let mut r = Message::new(MessageKind::PreVoteResp, m.from);
                r.reject = true;
                self.send(r);
            }
            return false;
        }
        true
    }

    fn handle_vote_request(&mut self, m: Message) {
        let pre = m.kind == MessageKind::PreVote;
        let can_vote = self.vote == m.from
            || (self.vote == NONE && self.leader == NONE)
            || (pre && m.term > self.term);
        let resp_kind = if pre {
            MessageKind::PreVoteResp
        } else {
            MessageKind::VoteResp
        };
        let mut r = Message::new(resp_kind, m.from);
        if can_vote && self.log.is_up_to_date(m.index, m.log_term) {
            // The response carries the request's term: for PreVote, the
            // candidate's future term, so it is not taken for stale.
            r.term = m.term;
            if !pre {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            r.reject = true;
        }
        self.send(r);
    }

    fn step_candidate(&mut self, m: Message) {
        let my_resp = if self.role == Role::PreCandidate {
            MessageKind::PreVoteResp
        } else {
            MessageKind::VoteResp
        };
        match m.kind {
            MessageKind::Append => {
                self.become_follower(m.term, m.from);
                self.handle_append(m);
            }
            MessageKind::Heartbeat => {
                self.become_follower(m.term, m.from);
                self.handle_heartbeat(m);
            }
            MessageKind::Snapshot => {
                self.become_follower(m.term, m.from);
                self.handle_snapshot(m);
            }
            k if k == my_resp => match self.poll(m.from, !m.reject) {
                VoteResult::Won => self.on_election_won(self.role == Role::PreCandidate),
                VoteResult::Lost => self.become_follower(self.term, NONE),
                VoteResult::Pending => {}
            },
            _ => {}
        }
    }

    fn step_follower(&mut self, m: Message) {
        match m.kind {
            MessageKind::Append => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_append(m);
            }
            MessageKind::Heartbeat => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_heartbeat(m);
            }
            MessageKind::Snapshot => {
                self.election_elapsed = 0;
                self.leader = m.from;
                self.handle_snapshot(m);
            }
            MessageKind::TimeoutNow => self.hup(true),
            MessageKind::ReadIndexResp => self.read_states.push(super::message::ReadState {
                index: m.index,
                context: m.context,
            }),
            _ => {}
        }
    }
}

/// Messages come from the network: a malformed one is dropped, never
/// allowed to trip an assertion about our own log.
fn well_formed(m: &Message) -> bool {
    let ok = match m.kind {
        MessageKind::Append => {
            let mut prev_term = m.log_term;
            m.entries.iter().enumerate().all(|(i, e)| {
                let ok =
                    e.index == m.index + 1 + i as u64 && e.term >= prev_term && e.term <= m.term;
                prev_term = e.term;
                ok
            })
        }
        MessageKind::Snapshot => m
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.index > 0 && s.meta.term <= m.term),
        _ => true,
    };
    if !ok {
        tracing::warn!(from = m.from, kind = ?m.kind, "malformed message dropped");
    }
    ok
}
