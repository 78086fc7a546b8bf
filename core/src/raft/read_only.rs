//! ReadIndex (§6.4 of Ongaro's thesis): a linearizable read without a log
//! write. The leader notes its commit index, confirms with a heartbeat
//! round that a majority still follows it, and then the read may be served
//! once the state machine has applied that index.
//!
//! Batching: one round is in flight at a time. Reads that arrive while it
//! is out wait in `queued` and all ride on the next round, so N reads cost
//! one heartbeat round, not N. A round's heartbeats are re-sent on each
//! heartbeat tick until a majority answers (messages may be lost).
//!
//! A read in round R gets the commit index at R's start, which is at least
//! the commit index when the read arrived (R starts after it), and R's
//! heartbeats leave after the read arrived: both conditions for
//! linearizability hold.

use std::collections::BTreeSet;

use super::message::NodeId;

/// A read waiting for confirmation; `from` is the node whose client asked
/// (the leader itself, or a follower that forwarded it).
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    pub(crate) from: NodeId,
    pub(crate) context: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Round {
    pub(crate) id: u64,
    pub(crate) index: u64,
    pub(crate) reads: Vec<PendingRead>,
    pub(crate) acks: BTreeSet<NodeId>,
}

#[derive(Debug, Default)]
pub(crate) struct ReadOnly {
    next_round_id: u64,
    pub(crate) queued: Vec<PendingRead>,
    pub(crate) inflight: Option<Round>,
}

impl ReadOnly {
    /// Starts a round at commit `index` with the queued reads; returns its
    /// id (the heartbeat context). Requires no round in flight.
    pub(crate) fn start_round(&mut self, index: u64, self_id: NodeId) -> u64 {
        assert!(
            self.inflight.is_none(),
            "invariant: one read round at a time"
        );
        self.next_round_id += 1;
        let id = self.next_round_id;
        let reads = std::mem::take(&mut self.queued);
        self.inflight = Some(Round {
            id,
            index,
            reads,
            acks: BTreeSet::from([self_id]),
        });
        id
    }

    /// Records that `from` answered round `id`; false if `id` is not the
    /// round in flight.
    pub(crate) fn ack(&mut self, id: u64, from: NodeId) -> bool {
        match self.inflight.as_mut() {
            Some(r) if r.id == id => {
                r.acks.insert(from);
                true
            }
            _ => false,
        }
    }

    pub(crate) fn round_context(&self) -> Option<Vec<u8>> {
        self.inflight.as_ref().map(|r| encode_round(r.id))
    }

    /// Drops every pending read (the leader stepped down).
    pub(crate) fn reset(&mut self) {
        self.queued.clear();
        self.inflight = None;
    }
}

pub(crate) fn encode_round(id: u64) -> Vec<u8> {
    id.to_le_bytes().to_vec()
}

pub(crate) fn decode_round(ctx: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(ctx.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_queued_during_a_round_share_the_next_round() {
        let mut ro = ReadOnly::default();
        ro.queued.push(PendingRead {
            from: 1,
            context: b"a".to_vec(),
        });
        let r1 = ro.start_round(5, 1);
        ro.queued.push(PendingRead {
            from: 1,
            context: b"b".to_vec(),
        });
        ro.queued.push(PendingRead {
            from: 2,
            context: b"c".to_vec(),
        });
        assert!(
            !ro.ack(r1 + 1, 2),
            "an answer to another round does not count"
        );
        assert!(ro.ack(r1, 2));
        let done = ro.inflight.take().unwrap();
        assert_eq!(done.reads.len(), 1);
        let r2 = ro.start_round(6, 1);
        assert_eq!(ro.inflight.as_ref().unwrap().reads.len(), 2);
        assert_eq!(decode_round(&encode_round(r2)), Some(r2));
    }
}
