//! The simulated cluster: nodes with their disks and state machines,
//! clients, faults, and the step loop.

use std::collections::{BTreeMap, HashMap};

use super::super::message::{ConfChange, Entry, EntryKind, HardState, Message, NodeId, Snapshot};
use super::super::rng::SplitMix64;
use super::super::{Config, Persisted, Raft, Role};
use super::checker::Checker;
use super::history::{apply, Op, Outcome, Record};
use super::network::Network;
use super::{SimConfig, SimStats};

/// What survives a crash: exactly what was persisted from Readies.
#[derive(Default)]
pub(super) struct Disk {
    pub(super) hard_state: HardState,
    pub(super) snapshot: Option<Snapshot>,
    pub(super) entries: Vec<Entry>,
}

impl Disk {
    fn base(&self) -> u64 {
        self.snapshot.as_ref().map_or(0, |s| s.meta.index)
    }

    fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        let base = self.base();
        assert!(
            first.index > base,
            "sim: persisting entry {} under the snapshot at {base}",
            first.index
        );
        self.entries.truncate((first.index - base - 1) as usize);
        self.entries.extend_from_slice(ents);
    }
}

pub(super) struct Node {
    pub(super) id: NodeId,
    pub(super) raft: Option<Raft>,
    pub(super) disk: Disk,
    /// The state machine: register values by key, and its applied index.
    pub(super) kv: BTreeMap<u64, u64>,
    pub(super) applied: u64,
    /// Writes this node accepted: log index -> record.
    pub(super) pending_writes: BTreeMap<u64, usize>,
    /// Reads this node accepted: record -> read index once known.
    pub(super) pending_reads: BTreeMap<usize, Option<u64>>,
    /// Commit index already checked.
    pub(super) seen_commit: u64,
    /// The last term this node was seen leading.
    pub(super) led_term: u64,
    /// The step at which the nemesis crashes this node.
    pub(super) doomed_at_step: Option<u64>,
}

pub(super) struct Client {
    pub(super) target: NodeId,
    pub(super) busy: Option<usize>,
    pub(super) started_step: u64,
}

pub(crate) struct Sim {
    pub(super) cfg: SimConfig,
    pub(super) rng: SplitMix64,
    pub(super) now: u64,
    /// Orders invocations and responses for the history.
    pub(super) clock: u64,
    pub(super) net: super::network::Network,
    pub(super) nodes: Vec<Node>,
    pub(super) clients: Vec<Client>,
    pub(super) records: Vec<Record>,
    pub(super) record_client: Vec<usize>,
    /// Acknowledged writes: record -> the index it was applied at.
    pub(super) acked_at: HashMap<usize, u64>,
    /// When each write was first applied anywhere, its outcome there (the
    /// response its client would have got had it waited), and its index.
    pub(super) first_applied: HashMap<u64, (u64, Outcome, u64)>,
    pub(super) checker: Checker,
    pub(super) next_value: u64,
    pub(super) faults_on: bool,
    pub(super) trace: bool,
    pub(super) stats: SimStats,
}

fn encode_kv(kv: &BTreeMap<u64, u64>) -> Vec<u8> {
    kv.iter()
        .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect()
}

fn decode_kv(data: &[u8]) -> BTreeMap<u64, u64> {
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    data.chunks_exact(16)
        .map(|c| (word(&c[..8]), word(&c[8..])))
        .collect()
}

impl Sim {
    pub(crate) fn new(cfg: SimConfig, trace: bool) -> Sim {
        let mut sim = Sim {
            rng: SplitMix64::new(cfg.seed),
            now: 0,
            clock: 0,
            net: Network::new(cfg.net, cfg.node_count),
            nodes: Vec::new(),
            clients: Vec::new(),
            records: Vec::new(),
            record_client: Vec::new(),
            acked_at: HashMap::new(),
            first_applied: HashMap::new(),
            checker: Checker::default(),
            next_value: 1,
            faults_on: true,
            trace,
            stats: SimStats::default(),
            cfg,
        };
        for id in 1..=sim.cfg.node_count as u64 {
            let mut node = Node {
                id,
                raft: None,
                disk: Disk::default(),
                kv: BTreeMap::new(),
                applied: 0,
                pending_writes: BTreeMap::new(),
                pending_reads: BTreeMap::new(),
                seen_commit: 0,
                led_term: 0,
                doomed_at_step: None,
            };
            node.raft = Some(
                Raft::new(sim.node_config(id), Persisted::default()).expect("valid sim config"),
            );
            sim.nodes.push(node);
        }
        for c in 0..sim.cfg.clients {
            let target = 1 + (c as u64 % sim.cfg.node_count as u64);
            sim.clients.push(Client {
                target,
                busy: None,
                started_step: 0,
            });
        }
        sim
    }

    fn node_config(&mut self, id: NodeId) -> Config {
        let mut c = Config::new(id, (1..=self.cfg.initial_voters as u64).collect());
        c.election_tick = self.cfg.election_tick;
        c.heartbeat_tick = 1;
        c.pre_vote = self.cfg.pre_vote;
        c.check_quorum = self.cfg.check_quorum;
        c.max_inflight_msgs = self.cfg.max_inflight_msgs;
        c.max_size_per_msg_bytes = self.cfg.max_size_per_msg_bytes;
        c.seed = self.rng.next_u64();
        c.max_learner_lag_entries = 50;
        c.unsafe_commit_by_replica_count_for_tests = self.cfg.unsafe_commit;
        c
    }

    fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            println!("[step {}] {}", self.now, what());
        }
    }

    pub(crate) fn run(&mut self) -> Result<SimStats, String> {
        let started = std::time::Instant::now();
        for _ in 0..self.cfg.steps {
            self.step()?;
        }
        self.settle()?;
        let run_time = started.elapsed();
        self.final_checks()?;
        self.log(|| {
            format!(
                "ran in {run_time:?}, checked in {:?}",
                started.elapsed() - run_time
            )
        });
        self.stats.steps = self.now;
        self.stats.elections = self.checker.elections;
        self.stats.messages = self.net.sent;
        Ok(self.stats.clone())
    }

    fn step(&mut self) -> Result<(), String> {
        self.now += 1;
        if self.faults_on {
            self.inject_faults()?;
        }
        for m in self.net.deliverable(self.now) {
            if let Some(raft) = self.nodes[m.to as usize - 1].raft.as_mut() {
                raft.step(m);
            }
        }
        for i in 0..self.nodes.len() {
            if self.rng.chance(900_000) {
                if let Some(raft) = self.nodes[i].raft.as_mut() {
                    raft.tick();
                }
            }
        }
        self.clients_act();
        if self.faults_on {
            self.admin_act();
        }
        for i in 0..self.nodes.len() {
            self.handle_ready(i)?;
        }
        for i in 0..self.nodes.len() {
            self.check_node(i)?;
        }
        Ok(())
    }

    fn check_node(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        let Some(raft) = node.raft.as_ref() else {
            return Ok(());
        };
        if raft.role() == Role::Leader {
            self.checker.leader(raft)?;
            if node.led_term != raft.term() {
                node.led_term = raft.term();
                // The nemesis: kill some leaders soon after they win, so
                // entries they appended are left half-replicated.
                if self.faults_on && self.rng.chance(self.cfg.crash_new_leader_per_million) {
                    node.doomed_at_step = Some(self.now + self.rng.range(1, 12));
                }
            }
        }
        if raft.committed() > node.seen_commit {
            self.checker
                .committed(raft, node.seen_commit + 1, raft.committed())?;
            self.stats.committed = self.stats.committed.max(raft.committed());
            node.seen_commit = raft.committed();
        }
        Ok(())
    }

    fn inject_faults(&mut self) -> Result<(), String> {
        let n = self.nodes.len();
        for i in 0..n {
            if self.nodes[i].doomed_at_step.is_some_and(|s| s <= self.now) {
                self.nodes[i].doomed_at_step = None;
                self.crash(i)?;
            }
        }
        if self.rng.chance(self.cfg.crash_per_million) {
            let i = self.rng.range(0, n as u64) as usize;
            self.crash(i)?;
        }
        if self.rng.chance(self.cfg.restart_per_million) {
            let i = self.rng.range(0, n as u64) as usize;
            self.restart(i);
        }
        if self.rng.chance(self.cfg.partition_per_million) {
            self.net.partition(&mut self.rng);
            let groups = self.net.describe();
            self.log(|| format!("partition {groups}"));
        }
        if self.net.is_partitioned() && self.rng.chance(self.cfg.heal_per_million) {
            self.net.heal();
            self.log(|| "heal".into());
        }
        Ok(())
    }

    fn crash(&mut self, i: usize) -> Result<(), String> {
        // What the node believed committed counts even if it dies now.
        self.check_node(i)?;
        let node = &mut self.nodes[i];
        if node.raft.take().is_none() {
            return Ok(());
        }
        self.stats.crashes += 1;
        let orphans: Vec<usize> = node
            .pending_writes
            .values()
            .copied()
            .chain(node.pending_reads.keys().copied())
            .collect();
        node.pending_writes.clear();
        node.pending_reads.clear();
        for r in orphans {
            self.abandon(r);
        }
        let id = self.nodes[i].id;
        self.log(|| format!("crash node {id}"));
        Ok(())
    }

    fn restart(&mut self, i: usize) {
        if self.nodes[i].raft.is_some() {
            return;
        }
        let id = self.nodes[i].id;
        let cfg = self.node_config(id);
        let node = &mut self.nodes[i];
        let persisted = Persisted {
            hard_state: node.disk.hard_state,
            snapshot: node.disk.snapshot.clone(),
            entries: node.disk.entries.clone(),
        };
        let raft = Raft::new(cfg, persisted).expect("restart from persisted state");
        node.kv = node
            .disk
            .snapshot
            .as_ref()
            .map(|s| decode_kv(&s.data))
            .unwrap_or_default();
        node.applied = node.disk.base();
        node.seen_commit = raft.committed();
        node.raft = Some(raft);
        self.log(|| format!("restart node {id}"));
    }

    /// Operator actions on the current leader: membership changes and
    /// leadership transfers.
    fn admin_act(&mut self) {
        let n = self.nodes.len() as u64;
        let want_conf = self.rng.chance(self.cfg.membership_per_million);
        let want_transfer = self.rng.chance(self.cfg.transfer_per_million);
        if !want_conf && !want_transfer {
            return;
        }
        let target = self.rng.range(1, n + 1);
        let Some(raft) = self
            .nodes
            .iter_mut()
            .filter_map(|x| x.raft.as_mut())
            .find(|r| r.role() == Role::Leader)
        else {
            return;
        };
        if want_transfer {
            let _ = raft.transfer_leader(target);
            return;
        }
        let conf = raft.conf_state();
        let cc = if conf.voters.contains(&target) {
            if conf.voters.len() <= 3 {
                return;
            }
            ConfChange::Remove(target)
        } else if conf.learners.contains(&target) {
            ConfChange::AddVoter(target)
        } else {
            ConfChange::AddLearner(target)
        };
        if raft.propose_conf_change(cc).is_ok() {
            self.stats.conf_changes += 1;
            let id = raft.id();
            self.log(|| format!("leader {id} proposes {cc:?}"));
        }
    }

    fn handle_ready(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..8 {
            let Some(raft) = self.nodes[i].raft.as_mut() else {
                return Ok(());
            };
            if !raft.has_ready() {
                return Ok(());
            }
            let rd = raft.ready();
            self.checker.appended(
                self.nodes[i].id,
                self.nodes[i].raft.as_ref().expect("live"),
                &rd.entries,
            )?;
            self.check_node(i)?;
            for m in rd.messages.iter().cloned() {
                self.send(m);
            }
            if self.rng.chance(self.cfg.step_during_fsync_per_million) {
                // A pipelined runtime steps messages while the fsync runs.
                let id = self.nodes[i].id;
                for m in self.net.deliverable_to(id, self.now + 1) {
                    self.nodes[i].raft.as_mut().expect("live").step(m);
                }
            }
            if self.faults_on && self.rng.chance(self.cfg.crash_in_ready_per_million) {
                return self.crash(i); // before the fsync: this Ready is lost
            }
            let disk = &mut self.nodes[i].disk;
            if let Some(s) = &rd.snapshot {
                disk.snapshot = Some(s.clone());
                disk.entries.clear();
            }
            disk.append(&rd.entries);
            if let Some(hs) = rd.hard_state {
                disk.hard_state = hs;
            }
            if self.faults_on && self.rng.chance(self.cfg.crash_in_ready_per_million) {
                return self.crash(i); // after the fsync, before anything else
            }
            for m in rd.persisted_messages.iter().cloned() {
                self.send(m);
            }
            self.apply_ready(i, &rd)?;
            let node = &mut self.nodes[i];
            node.raft.as_mut().expect("live").advance(rd);
            self.serve_reads(i);
            self.maybe_compact(i);
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        self.net.send(&mut self.rng, self.now, m);
    }

    fn apply_ready(&mut self, i: usize, rd: &super::super::Ready) -> Result<(), String> {
        let id = self.nodes[i].id;
        if let Some(s) = &rd.snapshot {
            let node = &mut self.nodes[i];
            node.kv = decode_kv(&s.data);
            node.applied = s.meta.index;
            self.stats.snapshots_installed += 1;
            self.log(|| format!("node {id} installs snapshot at {}", s.meta.index));
        }
        for e in &rd.committed_entries {
            self.checker.apply(id, e)?;
            let node = &mut self.nodes[i];
            assert_eq!(
                e.index,
                node.applied + 1,
                "sim: node {id} applies out of order"
            );
            node.applied = e.index;
            if e.kind != EntryKind::Normal || e.data.is_empty() {
                continue;
            }
            let (op_id, op) = Op::decode(&e.data).expect("sim entries decode");
            let old = node.kv.get(&op.key()).copied().unwrap_or(0);
            let (new, outcome) = apply(old, op);
            node.kv.insert(op.key(), new);
            if !self.first_applied.contains_key(&op_id) {
                self.clock += 1;
                self.first_applied
                    .insert(op_id, (self.clock, outcome, e.index));
            }
            if let Some(r) = node.pending_writes.remove(&e.index) {
                if op_id == r as u64 + 1 {
                    self.acked_at.insert(r, e.index);
                    self.complete(r, outcome);
                } else {
                    self.abandon(r);
                }
            }
        }
        for rs in &rd.read_states {
            let r = u64::from_le_bytes(rs.context.as_slice().try_into().expect("8-byte context"))
                as usize
                - 1;
            if let Some(slot) = self.nodes[i].pending_reads.get_mut(&r) {
                *slot = Some(rs.index);
            }
        }
        Ok(())
    }

    fn serve_reads(&mut self, i: usize) {
        let node = &self.nodes[i];
        let ready: Vec<usize> = node
            .pending_reads
            .iter()
            .filter(|(_, idx)| idx.is_some_and(|x| x <= node.applied))
            .map(|(&r, _)| r)
            .collect();
        for r in ready {
            let node = &mut self.nodes[i];
            node.pending_reads.remove(&r);
            let value = node.kv.get(&self.records[r].op.key()).copied().unwrap_or(0);
            self.complete(r, Outcome::Read(value));
        }
    }

    fn maybe_compact(&mut self, i: usize) {
        if !self.rng.chance(self.cfg.compact_per_million) {
            return;
        }
        let node = &mut self.nodes[i];
        let raft = node.raft.as_mut().expect("live");
        if node.applied < raft.first_index() + 10 {
            return;
        }
        raft.compact(encode_kv(&node.kv));
        let snap = raft.snapshot().expect("just compacted").clone();
        let base = node.disk.base();
        let drop = (snap.meta.index - base) as usize;
        node.disk.entries.drain(..drop.min(node.disk.entries.len()));
        node.disk.snapshot = Some(snap);
    }

    /// Heal, restart everyone, stop faults and new operations, and let the
    /// cluster converge.
    fn settle(&mut self) -> Result<(), String> {
        self.faults_on = false;
        self.net.heal();
        self.net.cfg.loss_per_million = 0;
        self.net.cfg.duplicate_per_million = 0;
        for i in 0..self.nodes.len() {
            self.restart(i);
        }
        for _ in 0..self.cfg.settle_steps_max {
            self.step()?;
            if self.converged() {
                return Ok(());
            }
        }
        Err(format!(
            "liveness: no convergence within {} quiet steps",
            self.cfg.settle_steps_max
        ))
    }

    pub(super) fn members(&self) -> Vec<NodeId> {
        let leader = self
            .nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .find(|r| r.role() == Role::Leader);
        leader
            .map(|l| {
                let c = l.conf_state();
                c.voters.into_iter().chain(c.learners).collect()
            })
            .unwrap_or_default()
    }

    fn converged(&self) -> bool {
        let Some(leader) = self
            .nodes
            .iter()
            .filter_map(|n| n.raft.as_ref())
            .find(|r| r.role() == Role::Leader)
        else {
            return false;
        };
        let in_flight = self.clients.iter().any(|c| c.busy.is_some());
        let target = leader.committed();
        !in_flight
            && leader.last_index() == target
            && leader.term_at(target) == Some(leader.term())
            && self
                .members()
                .iter()
                .all(|&m| self.nodes[m as usize - 1].applied == target)
    }
}
