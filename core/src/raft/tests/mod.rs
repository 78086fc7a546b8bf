//! Unit tests of the Raft core, grouped by the section of the Raft paper
//! (or Ongaro's thesis) whose property they prove. A small synchronous
//! harness delivers messages between nodes; tests decide what is lost.

mod election;
mod membership;
mod reads;
mod replication;
mod script;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{
    Config, Entry, EntryKind, HardState, Message, MessageKind, NodeId, Persisted, Raft, Role,
};

/// Nodes plus a queue of messages in flight. Every Ready is persisted
/// (here: nothing to do) and advanced at once; committed data entries are
/// recorded per node.
pub(super) struct Net {
    pub(super) nodes: BTreeMap<NodeId, Raft>,
    pub(super) queue: VecDeque<Message>,
    /// Nodes cut off from everyone.
    pub(super) isolated: BTreeSet<NodeId>,
    pub(super) applied: BTreeMap<NodeId, Vec<Vec<u8>>>,
    pub(super) read_states: BTreeMap<NodeId, Vec<super::ReadState>>,
}

pub(super) fn config(id: NodeId, voters: &[NodeId]) -> Config {
    let mut c = Config::new(id, voters.to_vec());
    c.seed = 7 * id;
    c
}

pub(super) fn entries(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &term)| Entry {
            term,
            index: i as u64 + 1,
            kind: EntryKind::Normal,
            data: vec![],
        })
        .collect()
}

/// A node restarting with `terms` as its persisted log at `term`.
pub(super) fn restarted(cfg: Config, term: u64, terms: &[u64]) -> Raft {
    let persisted = Persisted {
        hard_state: HardState {
            term,
            vote: 0,
            commit: 0,
        },
        snapshot: None,
        entries: entries(terms),
    };
    Raft::new(cfg, persisted).expect("valid config")
}

impl Net {
    pub(super) fn new(nodes: Vec<Raft>) -> Net {
        let ids: Vec<NodeId> = nodes.iter().map(|n| n.id()).collect();
        Net {
            nodes: nodes.into_iter().map(|n| (n.id(), n)).collect(),
            queue: VecDeque::new(),
            isolated: BTreeSet::new(),
            applied: ids.iter().map(|&i| (i, Vec::new())).collect(),
            read_states: ids.iter().map(|&i| (i, Vec::new())).collect(),
        }
    }

    /// `n` fresh nodes `1..=n` with `tweak` applied to each config.
    pub(super) fn cluster(n: u64, tweak: impl Fn(&mut Config)) -> Net {
        let voters: Vec<NodeId> = (1..=n).collect();
        Net::new(
            voters
                .iter()
                .map(|&id| {
                    let mut c = config(id, &voters);
                    tweak(&mut c);
                    Raft::new(c, Persisted::default()).expect("valid config")
                })
                .collect(),
        )
    }

    pub(super) fn node(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("node exists")
    }

    /// Handles every pending Ready, queueing the messages.
    pub(super) fn pump(&mut self) {
        for (&id, node) in self.nodes.iter_mut() {
            while node.has_ready() {
                let rd = node.ready();
                self.queue.extend(rd.messages.iter().cloned());
                self.queue.extend(rd.persisted_messages.iter().cloned());
                let applied = self.applied.get_mut(&id).expect("known node");
                applied.extend(
                    rd.committed_entries
                        .iter()
                        .filter(|e| e.kind == EntryKind::Normal && !e.data.is_empty())
                        .map(|e| e.data.clone()),
                );
                self.read_states
                    .get_mut(&id)
                    .expect("known node")
                    .extend(rd.read_states.iter().cloned());
                node.advance(rd);
            }
        }
    }

    fn deliverable(&self, m: &Message) -> bool {
        self.nodes.contains_key(&m.to)
            && !self.isolated.contains(&m.to)
            && !self.isolated.contains(&m.from)
    }

    /// Delivers messages until none are left (dropping those to or from
    /// isolated nodes). Returns how many were delivered.
    pub(super) fn settle(&mut self) -> usize {
        let mut delivered = 0;
        self.pump();
        while let Some(m) = self.queue.pop_front() {
            if self.deliverable(&m) {
                delivered += 1;
                self.node(m.to).step(m);
            }
            self.pump();
            assert!(delivered < 100_000, "message storm");
        }
        delivered
    }

    /// Takes the queued messages without delivering them.
    pub(super) fn take_queue(&mut self) -> Vec<Message> {
        self.pump();
        self.queue.drain(..).collect()
    }

    pub(super) fn deliver(&mut self, m: Message) {
        self.node(m.to).step(m);
    }

    /// `id`'s election timer fires (PreVote first if configured); settles.
    pub(super) fn campaign(&mut self, id: NodeId) {
        self.node(id).hup(false);
        self.settle();
    }

    /// Ticks everyone `n` times, settling after each tick.
    pub(super) fn tick_all(&mut self, n: usize) {
        for _ in 0..n {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node(id).tick();
            }
            self.settle();
        }
    }

    pub(super) fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.role() == Role::Leader)
            .map(|n| n.id())
            .collect()
    }

    pub(super) fn count(msgs: &[Message], kind: MessageKind) -> usize {
        msgs.iter().filter(|m| m.kind == kind).count()
    }
}
