//! Membership changes through the log, one server at a time (thesis §4.1),
//! learners, and leadership transfer (thesis §3.10).
//!
//! Why one server at a time and not joint consensus: any majority of the
//! old voter set and any majority of a set that differs by one server
//! overlap, so no joint quorum is needed, and every change is one entry.
//! A change takes effect on each node when the node *applies* its entry
//! (as etcd does). Safety then rests on two rules: the leader appends a
//! change only when the previous one is applied, and a new leader counts
//! every entry it inherited as a possibly pending change, so it first
//! commits an entry of its own term (the fix for the bug Ongaro reported
//! on raft-dev in 2015). Adding a voter the cluster cannot reach could
//! stall commits, so a learner is promoted only once it is nearly caught up.

use super::core::{ProposeError, Raft, Role};
use super::message::{ConfChange, Entry, EntryKind, Message, MessageKind, NodeId, NONE};
use super::progress::Progress;

impl Raft {
    /// Proposes one membership change; returns the index of its entry.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<u64, ProposeError> {
        self.propose_conf_change_with_context(cc, &[])
    }

    /// As [`Raft::propose_conf_change`], with `context` appended to the
    /// entry's data after the encoded change (Raft ignores it; the caller's
    /// state machine reads it when the entry applies).
    pub fn propose_conf_change_with_context(
        &mut self,
        cc: ConfChange,
        context: &[u8],
    ) -> Result<u64, ProposeError> {
        self.check_can_propose()?;
        if self.pending_conf_index > self.log.applied {
            return Err(ProposeError::ConfChangePending);
        }
        self.validate_conf_change(cc)?;
        let entry = Entry {
            term: 0,
            index: 0,
            kind: EntryKind::ConfChange,
            data: [cc.encode().as_slice(), context].concat(),
        };
        let index = self.append_entries(vec![entry]);
        self.pending_conf_index = index;
        Ok(index)
    }

    fn validate_conf_change(&self, cc: ConfChange) -> Result<(), ProposeError> {
        match cc {
            ConfChange::AddVoter(id) if self.voters.contains(&id) => {
                Err(ProposeError::InvalidConfChange("already a voter"))
            }
            ConfChange::AddVoter(id) if self.learners.contains(&id) => {
                let matched = self.prs.get(&id).map_or(0, |p| p.matched);
                let lag_entries = self.log.last_index().saturating_sub(matched);
                if lag_entries > self.cfg.max_learner_lag_entries {
                    return Err(ProposeError::LearnerBehind { id, lag_entries });
                }
                Ok(())
            }
            ConfChange::AddLearner(id)
                if self.voters.contains(&id) || self.learners.contains(&id) =>
            {
                Err(ProposeError::InvalidConfChange("already a member"))
            }
            ConfChange::Remove(id)
                if !self.voters.contains(&id) && !self.learners.contains(&id) =>
            {
                Err(ProposeError::InvalidConfChange("not a member"))
            }
            ConfChange::Remove(id) if self.voters.len() == 1 && self.voters.contains(&id) => Err(
                ProposeError::InvalidConfChange("cannot remove the last voter"),
            ),
            ConfChange::AddVoter(id) | ConfChange::AddLearner(id) if id == NONE => {
                Err(ProposeError::InvalidConfChange("id 0 names nobody"))
            }
            _ => Ok(()),
        }
    }

    /// Applies the change an applied entry carries, if it is one.
    pub(super) fn apply_entry_conf_change(&mut self, e: &Entry) {
        if e.kind != EntryKind::ConfChange {
            return;
        }
        match ConfChange::decode(&e.data) {
            Some(cc) => self.apply_conf_change(cc),
            None => tracing::warn!(
                id = self.id,
                index = e.index,
                "undecodable membership change ignored"
            ),
        }
    }

    fn apply_conf_change(&mut self, cc: ConfChange) {
        tracing::info!(id = self.id, ?cc, "applying membership change");
        let (added, removed) = match cc {
            ConfChange::AddVoter(id) => {
                self.learners.remove(&id);
                self.voters.insert(id);
                (Some(id), None)
            }
            ConfChange::AddLearner(id) => {
                if !self.voters.contains(&id) {
                    self.learners.insert(id);
                }
                (Some(id), None)
            }
            ConfChange::Remove(id) => {
                self.voters.remove(&id);
                self.learners.remove(&id);
                (None, Some(id))
            }
        };
        if self.role != Role::Leader {
            return;
        }
        if let Some(id) = added {
            let next = self.log.last_index() + 1;
            let max_inflight = self.cfg.max_inflight_msgs;
            self.prs.entry(id).or_insert_with(|| {
                let mut pr = Progress::new(next, max_inflight);
                pr.recent_active = true;
                pr
            });
        }
        if let Some(id) = removed {
            self.prs.remove(&id);
            if self.lead_transferee == id {
                self.lead_transferee = NONE;
            }
        }
        if !self.voters.contains(&self.id) {
            tracing::info!(
                id = self.id,
                term = self.term,
                "leader removed from the cluster; stepping down"
            );
            self.become_follower(self.term, NONE);
            return;
        }
        // The quorum may have shrunk.
        if self.maybe_commit() {
            self.bcast_append();
        }
        if let Some(id) = added {
            self.maybe_send_append(id, true);
        }
    }

    /// Hands leadership to voter `to`: bring its log up to date, then tell
    /// it to campaign at once (TimeoutNow). Proposals are refused meanwhile;
    /// the transfer is abandoned after an election timeout.
    pub fn transfer_leader(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        }
        if !self.voters.contains(&to) {
            return Err(ProposeError::InvalidTransfer("target is not a voter"));
        }
        if to == self.id || self.lead_transferee == to {
            return Ok(());
        }
        self.lead_transferee = to;
        self.election_elapsed = 0;
        let caught_up = self
            .prs
            .get(&to)
            .is_some_and(|p| p.matched == self.log.last_index());
        if caught_up {
            self.send(Message::new(MessageKind::TimeoutNow, to));
        } else {
            self.maybe_send_append(to, true);
        }
        Ok(())
    }
}
