//! A simulated network: every message gets a random delay (so messages
//! reorder), may be lost or duplicated, and is dropped if a partition
//! separates its ends when it is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::super::message::{Message, NodeId};
use super::super::rng::SplitMix64;

#[derive(Clone, Copy, Debug)]
pub(crate) struct NetConfig {
    pub(crate) delay_steps_max: u64,
    pub(crate) loss_per_million: u64,
    pub(crate) duplicate_per_million: u64,
}

struct InFlight {
    due_step: u64,
    tiebreak: u64,
    msg: Message,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.due_step, self.tiebreak) == (other.due_step, other.tiebreak)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due_step, self.tiebreak).cmp(&(other.due_step, other.tiebreak))
    }
}

pub(crate) struct Network {
    pub(crate) cfg: NetConfig,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// `group[id]`: nodes in different groups cannot talk.
    group: Vec<u32>,
    pub(crate) sent: u64,
    pub(crate) dropped: u64,
}

/// Bound on messages in flight: a run that exceeds it has a bug (a message
/// storm), and memory stays bounded.
const IN_FLIGHT_MAX: usize = 200_000;

impl Network {
    pub(crate) fn new(cfg: NetConfig, node_count: usize) -> Network {
        Network {
            cfg,
            queue: BinaryHeap::new(),
            group: vec![0; node_count + 1],
            sent: 0,
            dropped: 0,
        }
    }

    pub(crate) fn send(&mut self, rng: &mut SplitMix64, now: u64, msg: Message) {
        self.sent += 1;
        if rng.chance(self.cfg.loss_per_million) {
            self.dropped += 1;
            return;
        }
        let copies = if rng.chance(self.cfg.duplicate_per_million) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let due_step = now + rng.range(1, self.cfg.delay_steps_max + 1);
            self.queue.push(Reverse(InFlight {
                due_step,
                tiebreak: rng.next_u64(),
                msg: msg.clone(),
            }));
        }
        assert!(
            self.queue.len() < IN_FLIGHT_MAX,
            "message storm: {} messages in flight",
            self.queue.len()
        );
    }

    /// Messages to `to` due by `now` whose ends can talk (others stay queued).
    pub(crate) fn deliverable_to(&mut self, to: NodeId, now: u64) -> Vec<Message> {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queue)
            .into_vec()
            .into_iter()
            .partition(|m| m.0.msg.to == to && m.0.due_step <= now);
        self.queue = rest.into();
        let mut mine: Vec<InFlight> = mine.into_iter().map(|m| m.0).collect();
        mine.sort();
        mine.into_iter()
            .map(|m| m.msg)
            .filter(|m| self.group[m.from as usize] == self.group[m.to as usize])
            .collect()
    }

    /// Messages due at `now` whose ends can talk.
    pub(crate) fn deliverable(&mut self, now: u64) -> Vec<Message> {
        let mut out = Vec::new();
        while self.queue.peek().is_some_and(|m| m.0.due_step <= now) {
            let m = self.queue.pop().expect("peeked").0.msg;
            if self.connected(m.from, m.to) {
                out.push(m);
            } else {
                self.dropped += 1;
            }
        }
        out
    }

    pub(crate) fn connected(&self, a: NodeId, b: NodeId) -> bool {
        self.group[a as usize] == self.group[b as usize]
    }

    /// Splits the nodes into random groups (any shape, including one node
    /// alone or everyone apart).
    pub(crate) fn partition(&mut self, rng: &mut SplitMix64) {
        let groups = rng.range(2, 4) as u32;
        for g in self.group.iter_mut().skip(1) {
            *g = rng.range(0, u64::from(groups)) as u32;
        }
    }

    pub(crate) fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        self.group.iter().skip(1).any(|&g| g != self.group[1])
    }

    pub(crate) fn describe(&self) -> String {
        format!("{:?}", &self.group[1..])
    }
}
