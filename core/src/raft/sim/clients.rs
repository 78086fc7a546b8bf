//! Clients: they issue puts, compare-and-swaps and ReadIndex reads to the
//! node they believe leads, give up after a timeout, and their history is
//! checked at the end.

use super::super::ProposeError;
use super::cluster::Sim;
use super::history::{check_register, Op, Outcome, Record};
use super::log_order;

impl Sim {
    /// The client of record `r` stops waiting: the outcome stays unknown.
    pub(super) fn abandon(&mut self, r: usize) {
        let c = self.record_client[r];
        if self.clients[c].busy == Some(r) {
            self.clients[c].busy = None;
            self.stats.ops_indeterminate += 1;
        }
    }

    pub(super) fn complete(&mut self, r: usize, outcome: Outcome) {
        let c = self.record_client[r];
        if self.clients[c].busy != Some(r) {
            return; // the client gave up already
        }
        self.clients[c].busy = None;
        self.clock += 1;
        self.records[r].response = Some((self.clock, outcome));
        self.stats.ops_acked += 1;
    }

    pub(super) fn clients_act(&mut self) {
        for c in 0..self.clients.len() {
            if let Some(r) = self.clients[c].busy {
                if self.now - self.clients[c].started_step > self.cfg.op_timeout_steps {
                    self.abandon(r);
                    self.clients[c].target = self.rng.range(1, self.nodes.len() as u64 + 1);
                }
                continue;
            }
            if self.faults_on && self.rng.chance(self.cfg.op_per_million) {
                self.issue(c);
            }
        }
    }

    fn random_op(&mut self) -> Op {
        let key = self.rng.range(1, self.cfg.keys + 1);
        let value = self.next_value;
        match self.rng.range(0, 10) {
            0..=3 => {
                self.next_value += 1;
                Op::Put { key, value }
            }
            4..=6 => Op::Get { key },
            _ => {
                self.next_value += 1;
                // Expect a recent value often enough that some swaps succeed.
                let expect = if self.rng.chance(300_000) {
                    0
                } else {
                    value.saturating_sub(self.rng.range(1, 4))
                };
                Op::Cas { key, expect, value }
            }
        }
    }

    fn issue(&mut self, c: usize) {
        let op = self.random_op();
        let r = self.records.len();
        let op_id = r as u64 + 1;
        let target = self.clients[c].target;
        let node = &mut self.nodes[target as usize - 1];
        let Some(raft) = node.raft.as_mut() else {
            self.clients[c].target = self.rng.range(1, self.nodes.len() as u64 + 1);
            return;
        };
        let accepted = match op {
            Op::Get { .. } if self.cfg.unsafe_local_reads => {
                node.pending_reads.insert(r, Some(0)); // served from local state, no ReadIndex
                Ok(())
            }
            Op::Get { .. } => raft.read_index(op_id.to_le_bytes().to_vec()).map(|()| {
                node.pending_reads.insert(r, None);
            }),
            _ => raft.propose(op.encode(op_id)).map(|index| {
                node.pending_writes.insert(index, r);
            }),
        };
        match accepted {
            Ok(()) => {
                self.clock += 1;
                self.records.push(Record {
                    op,
                    invoke: self.clock,
                    response: None,
                });
                self.record_client.push(c);
                self.clients[c].busy = Some(r);
                self.clients[c].started_step = self.now;
            }
            Err(ProposeError::NotLeader { leader: Some(l) }) => self.clients[c].target = l,
            Err(_) => self.clients[c].target = self.rng.range(1, self.nodes.len() as u64 + 1),
        }
    }

    pub(super) fn final_checks(&self) -> Result<(), String> {
        let members = self.members();
        for (&r, &index) in &self.acked_at {
            let op_id = r as u64 + 1;
            let applied = self
                .checker
                .applied_at(index)
                .and_then(Op::decode)
                .map(|(id, _)| id);
            if applied != Some(op_id) {
                return Err(format!(
                    "acknowledged write {op_id} at index {index} is not what was applied there"
                ));
            }
            for &m in &members {
                if self.nodes[m as usize - 1].applied < index {
                    return Err(format!(
                        "acknowledged write {op_id} at index {index} not applied on member {m}"
                    ));
                }
            }
        }
        // A write whose client gave up is in the history only if it took
        // effect (the final log says), answered when it was first applied
        // (it was committed then). A read without an answer changed nothing.
        let completed = |(r, rec): (usize, &Record)| {
            let applied = self.first_applied.get(&(r as u64 + 1));
            let index = applied.map(|&(_, _, index)| index);
            match (rec.response, rec.op, applied) {
                (Some(_), _, _) => Some((rec.clone(), index)),
                (None, Op::Get { .. }, _) | (None, _, None) => None,
                (None, _, Some(&(t, outcome, _))) => Some((
                    Record {
                        response: Some((t, outcome)),
                        ..rec.clone()
                    },
                    index,
                )),
            }
        };
        for key in 1..=self.cfg.keys {
            let (h, indexes): (Vec<Record>, Vec<Option<u64>>) = self
                .records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.op.key() == key)
                .filter_map(completed)
                .unzip();
            if h.is_empty() {
                continue;
            }
            log_order::check(&h, &indexes)?;
            // The general search, independent of the log order, where it is
            // cheap; beyond its budget the log-order check stands alone.
            if h.len() <= WGL_OPS_MAX {
                if let Err(e) = check_register(&h) {
                    if !e.contains("exceeded") {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Histories up to this size also get the exponential general search.
const WGL_OPS_MAX: usize = 400;
