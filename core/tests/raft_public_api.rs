//! The Raft core through its public API only, as the node runtime will use
//! it: three nodes, a driver that persists and delivers, a write, a
//! linearizable read, the loss of the leader and a restart from disk.

use std::collections::BTreeMap;

use cairn_core::raft::{Config, Entry, HardState, Message, NodeId, Persisted, Raft, Role};

#[derive(Default, Clone)]
struct Disk {
    hard_state: HardState,
    entries: Vec<Entry>,
}

struct Cluster {
    nodes: BTreeMap<NodeId, Raft>,
    disks: BTreeMap<NodeId, Disk>,
    applied: BTreeMap<NodeId, Vec<Vec<u8>>>,
    reads: BTreeMap<NodeId, Vec<(u64, Vec<u8>)>>,
    down: Vec<NodeId>,
}

fn config(id: NodeId) -> Config {
    Config::new(id, vec![1, 2, 3])
}

impl Cluster {
    fn new() -> Cluster {
        let ids = [1, 2, 3];
        Cluster {
            nodes: ids
                .iter()
                .map(|&id| (id, Raft::new(config(id), Persisted::default()).unwrap()))
                .collect(),
            disks: ids.iter().map(|&id| (id, Disk::default())).collect(),
            applied: ids.iter().map(|&id| (id, Vec::new())).collect(),
            reads: ids.iter().map(|&id| (id, Vec::new())).collect(),
            down: Vec::new(),
        }
    }

    /// One round: tick everyone, handle every Ready, deliver messages.
    fn round(&mut self) {
        let mut inbox: Vec<Message> = Vec::new();
        for (id, node) in self.nodes.iter_mut() {
            if self.down.contains(id) {
                continue;
            }
            node.tick();
            while node.has_ready() {
                let rd = node.ready();
                inbox.extend(rd.messages.iter().cloned()); // may go before the fsync
                let disk = self.disks.get_mut(id).unwrap();
                if let Some(first) = rd.entries.first() {
                    disk.entries.truncate(first.index as usize - 1);
                    disk.entries.extend(rd.entries.iter().cloned());
                }
                if let Some(hs) = rd.hard_state {
                    disk.hard_state = hs;
                }
                // "fsync" done: now the messages that promise durability.
                inbox.extend(rd.persisted_messages.iter().cloned());
                let applied = self.applied.get_mut(id).unwrap();
                applied.extend(
                    rd.committed_entries
                        .iter()
                        .filter(|e| !e.data.is_empty())
                        .map(|e| e.data.clone()),
                );
                let reads = self.reads.get_mut(id).unwrap();
                reads.extend(rd.read_states.iter().map(|r| (r.index, r.context.clone())));
                node.advance(rd);
            }
        }
        for m in inbox {
            if !self.down.contains(&m.to) && !self.down.contains(&m.from) {
                self.nodes.get_mut(&m.to).unwrap().step(m);
            }
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .find(|n| n.role() == Role::Leader && !self.down.contains(&n.id()))
            .map(|n| n.id())
    }

    fn run_until(&mut self, what: &str, mut done: impl FnMut(&mut Cluster) -> bool) {
        for _ in 0..500 {
            if done(self) {
                return;
            }
            self.round();
        }
        panic!("not reached within 500 rounds: {what}");
    }
}

#[test]
fn three_nodes_replicate_read_fail_over_and_restart() {
    let mut c = Cluster::new();
    c.run_until("a leader", |c| c.leader().is_some());
    let l1 = c.leader().unwrap();
    c.nodes
        .get_mut(&l1)
        .unwrap()
        .propose(b"one".to_vec())
        .unwrap();
    c.run_until("applied everywhere", |c| {
        c.applied.values().all(|a| a == &[b"one".to_vec()])
    });

    let follower = (1..=3).find(|&id| id != l1).unwrap();
    c.nodes
        .get_mut(&follower)
        .unwrap()
        .read_index(b"r1".to_vec())
        .unwrap();
    c.run_until("a read state on the follower", |c| {
        !c.reads[&follower].is_empty()
    });
    let (read_index, ctx) = c.reads[&follower][0].clone();
    assert_eq!(ctx, b"r1");
    assert!(
        c.nodes[&follower].applied() >= read_index,
        "serve once applied through the read index"
    );

    c.down.push(l1);
    c.run_until("a new leader", |c| c.leader().is_some_and(|l| l != l1));
    let l2 = c.leader().unwrap();
    c.nodes
        .get_mut(&l2)
        .unwrap()
        .propose(b"two".to_vec())
        .unwrap();
    c.run_until("the survivors apply it", |c| c.applied[&l2].len() == 2);

    // The old leader restarts from its disk and catches up.
    let disk = c.disks[&l1].clone();
    let persisted = Persisted {
        hard_state: disk.hard_state,
        snapshot: None,
        entries: disk.entries,
    };
    c.nodes
        .insert(l1, Raft::new(config(l1), persisted).unwrap());
    c.applied.insert(l1, Vec::new());
    c.down.clear();
    c.run_until("the restarted node applies both", |c| {
        c.applied[&l1] == [b"one".to_vec(), b"two".to_vec()]
    });
}
