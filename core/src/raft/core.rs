//! The [`Raft`] node: its configuration, roles and timers, and the
//! Ready/advance handoff. Elections live in `election.rs`, replication in
//! `replication.rs`, membership and leadership transfer in `membership.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::log::RaftLog;
use super::message::{
    ConfState, Entry, HardState, Message, MessageKind, NodeId, ReadState, Snapshot, NONE,
};
use super::progress::Progress;
use super::read_only::ReadOnly;
use super::rng::SplitMix64;

/// How a node is configured. Timeouts are in ticks: the caller decides
/// how long a tick is (Cairn: `--heartbeat-interval`).
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's id (not [`NONE`]).
    pub id: NodeId,
    /// The bootstrap membership; ignored when restarting from a snapshot
    /// (whose membership wins).
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// A follower campaigns after a random timeout in
    /// `[election_tick, 2 * election_tick)` without hearing from a leader.
    pub election_tick: u32,
    /// The leader sends heartbeats every `heartbeat_tick` ticks.
    pub heartbeat_tick: u32,
    /// Unacknowledged appends per follower in `Replicate` state.
    pub max_inflight_msgs: usize,
    /// The most entry bytes one append carries (at least one entry is sent).
    pub max_size_per_msg_bytes: u64,
    /// Campaign with a PreVote round first (§9.6 of the thesis).
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within an election
    /// timeout steps down; followers ignore votes while they hear a leader.
    pub check_quorum: bool,
    /// Seed of the randomized election timeouts.
    pub seed: u64,
    /// The caller's state machine has applied through this index (0: it
    /// restarts from the snapshot).
    pub applied: u64,
    /// A learner is promoted only if it is at most this many entries behind.
    pub max_learner_lag_entries: u64,
    /// The leader refuses proposals while this many entries are uncommitted
    /// (a bound on memory while followers are down).
    pub max_uncommitted_entries: u64,
    /// The leader refuses reads while this many wait for a ReadIndex round.
    pub max_pending_reads: usize,
    /// PLANTED BUG for the simulator's self-test: commit any entry that a
    /// majority holds, even from an older term (Figure 8 of the paper).
    pub unsafe_commit_by_replica_count_for_tests: bool,
}

impl Config {
    /// Sensible defaults for `id` in a cluster of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            learners: Vec::new(),
            election_tick: 10,
            heartbeat_tick: 1,
            max_inflight_msgs: 256,
            max_size_per_msg_bytes: 1 << 20,
            pre_vote: true,
            check_quorum: true,
            seed: id,
            applied: 0,
            max_learner_lag_entries: 1000,
            max_uncommitted_entries: 10_000,
            max_pending_reads: 10_000,
            unsafe_commit_by_replica_count_for_tests: false,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.id == NONE {
            return Err(ConfigError::Invalid("id must not be 0"));
        }
        if self.heartbeat_tick == 0 || self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::Invalid(
                "need 0 < heartbeat_tick < election_tick",
            ));
        }
        if self.max_inflight_msgs == 0 {
            return Err(ConfigError::Invalid("max_inflight_msgs must be positive"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid raft config: {0}")]
    Invalid(&'static str),
}

/// What the caller persisted and restarts from.
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("a leadership transfer is in progress")]
    TransferInProgress,
    #[error("a membership change is still pending")]
    ConfChangePending,
    #[error("invalid membership change: {0}")]
    InvalidConfChange(&'static str),
    #[error("too much work pending (uncommitted entries or queued reads); retry later")]
    Backpressure,
    #[error("invalid leadership transfer: {0}")]
    InvalidTransfer(&'static str),
    #[error("learner {id} is {lag_entries} entries behind; not promoted")]
    LearnerBehind { id: NodeId, lag_entries: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// The output of one round of work. Handle it in this order: persist
/// `snapshot`, `entries` and `hard_state` (one fsync); send
/// `persisted_messages`; install `snapshot` and apply `committed_entries`;
/// then call [`Raft::advance`]. `messages` may be sent at once, before or
/// during the fsync: only the leader's appends, heartbeats and such go
/// there, which promise nothing about this node's disk. The leader counts
/// itself toward a commit only after `advance`, so it replicates in
/// parallel with its own fsync (thesis §10.2.1).
#[derive(Clone, Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    /// Send now.
    pub messages: Vec<Message>,
    /// Send only once `entries`, `hard_state` and `snapshot` are durable:
    /// votes, vote grants and append acknowledgements.
    pub persisted_messages: Vec<Message>,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
}

/// One Raft node. See the module docs for the driving loop.
pub struct Raft {
    pub(super) id: NodeId,
    pub(super) cfg: Config,
    pub(super) term: u64,
    pub(super) vote: NodeId,
    pub(super) log: RaftLog,
    pub(super) role: Role,
    pub(super) leader: NodeId,
    pub(super) voters: BTreeSet<NodeId>,
    pub(super) learners: BTreeSet<NodeId>,
    /// The leader's view of every other member (and itself).
    pub(super) prs: BTreeMap<NodeId, Progress>,
    pub(super) votes: BTreeMap<NodeId, bool>,
    pub(super) msgs: Vec<Message>,
    pub(super) persisted_msgs: Vec<Message>,
    pub(super) election_elapsed: u32,
    pub(super) heartbeat_elapsed: u32,
    pub(super) randomized_election_timeout: u32,
    pub(super) rng: SplitMix64,
    /// The index of the last membership change appended; a new one waits
    /// until this one is applied.
    pub(super) pending_conf_index: u64,
    pub(super) lead_transferee: NodeId,
    pub(super) read_only: ReadOnly,
    pub(super) read_states: Vec<ReadState>,
    /// The hard state last handed out (or restored).
    prev_hard_state: HardState,
    ready_outstanding: bool,
}

impl Raft {
    /// A node restarting from `persisted` (all-default for a new node).
    pub fn new(cfg: Config, persisted: Persisted) -> Result<Raft, ConfigError> {
        cfg.validate()?;
        let conf = match &persisted.snapshot {
            Some(s) => s.meta.conf.clone(),
            None => ConfState {
                voters: cfg.voters.clone(),
                learners: cfg.learners.clone(),
            },
        };
        let hs = persisted.hard_state;
        let mut log = RaftLog::restore_from(persisted.snapshot, persisted.entries, hs.commit);
        let mut raft = Raft {
            id: cfg.id,
            term: hs.term,
            vote: hs.vote,
            log: RaftLog::restore_from(None, Vec::new(), 0),
            role: Role::Follower,
            leader: NONE,
            voters: conf.voters.iter().copied().collect(),
            learners: conf.learners.iter().copied().collect(),
            prs: BTreeMap::new(),
            votes: BTreeMap::new(),
            msgs: Vec::new(),
            persisted_msgs: Vec::new(),
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: cfg.election_tick,
            rng: SplitMix64::new(cfg.seed ^ cfg.id.rotate_left(32)),
            pending_conf_index: 0,
            lead_transferee: NONE,
            read_only: ReadOnly::default(),
            read_states: Vec::new(),
            prev_hard_state: hs,
            ready_outstanding: false,
            cfg,
        };
        // The caller's state machine already holds entries through
        // `applied`: re-apply the membership changes among them.
        let applied = raft.cfg.applied.min(log.committed);
        for i in log.applied + 1..=applied {
            let e = log.entry(i).expect("applied entry in the log").clone();
            raft.apply_entry_conf_change(&e);
        }
        log.applied = log.applied.max(applied);
        raft.log = log;
        raft.become_follower(hs.term, NONE);
        Ok(raft)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node follows (or is); `None` if unknown.
    pub fn leader(&self) -> Option<NodeId> {
        (self.leader != NONE).then_some(self.leader)
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }
    pub fn conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
        }
    }
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }
    pub fn committed(&self) -> u64 {
        self.log.committed
    }
    pub fn applied(&self) -> u64 {
        self.log.applied
    }
    /// The term of the entry at `index`, if this node holds it.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        self.log.term(index)
    }
    /// The entry at `index`, if held and not compacted.
    pub fn entry(&self, index: u64) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// The first index not compacted into the snapshot.
    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }
    /// The leader's view of `id` (None on followers or unknown ids).
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        if self.role == Role::Leader {
            self.prs.get(&id)
        } else {
            None
        }
    }

    /// A voter (not a learner, not removed) may campaign.
    pub(super) fn promotable(&self) -> bool {
        self.voters.contains(&self.id)
    }

    /// Queues `m` (stamping `from` and, unless set, `term`).
    pub(super) fn send(&mut self, mut m: Message) {
        m.from = self.id;
        if m.term == 0 {
            m.term = self.term;
        }
        match m.kind {
            MessageKind::Vote | MessageKind::VoteResp | MessageKind::AppendResp => {
                self.persisted_msgs.push(m)
            }
            _ => self.msgs.push(m),
        }
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => self.tick_election(),
        }
    }

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_tick {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_active() {
                tracing::info!(
                    id = self.id,
                    term = self.term,
                    "leader lost its quorum; stepping down"
                );
                self.become_follower(self.term, NONE);
                return;
            }
            self.lead_transferee = NONE;
        }
        self.tick_snapshot_timeouts();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            let ctx = self.read_only.round_context().unwrap_or_default();
            self.bcast_heartbeat(ctx);
        }
    }

    /// CheckQuorum: a majority of voters was heard from since the last
    /// round (the leader counts itself); resets the marks.
    fn quorum_active(&mut self) -> bool {
        let id = self.id;
        let active = super::quorum::has_quorum(&self.voters, |v| {
            v == id || self.prs.get(&v).is_some_and(|p| p.recent_active)
        });
        for (&v, pr) in self.prs.iter_mut() {
            pr.recent_active = v == id;
        }
        active
    }

    fn reset(&mut self, term: u64) {
        if term != self.term {
            self.term = term;
            self.vote = NONE;
        }
        self.leader = NONE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        let t = u64::from(self.cfg.election_tick);
        self.randomized_election_timeout = self.rng.range(t, 2 * t) as u32;
        self.lead_transferee = NONE;
        self.votes.clear();
        self.read_only.reset();
        let next = self.log.last_index() + 1;
        let max_inflight = self.cfg.max_inflight_msgs;
        self.prs = self
            .voters
            .iter()
            .chain(self.learners.iter())
            .map(|&v| (v, Progress::new(next, max_inflight)))
            .collect();
        let stable = self.log.stable_index();
        if let Some(pr) = self.prs.get_mut(&self.id) {
            pr.matched = stable;
            pr.recent_active = true;
        }
    }

    pub(super) fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
    }

    pub(super) fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invariant: a leader does not pre-campaign"
        );
        // Neither term nor vote change: that is the point of PreVote.
        self.votes.clear();
        self.leader = NONE;
        self.role = Role::PreCandidate;
    }

    pub(super) fn become_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "invariant: a leader does not campaign"
        );
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = Role::Candidate;
    }

    pub(super) fn become_leader(&mut self) {
        assert_ne!(
            self.role,
            Role::Follower,
            "invariant: only a candidate becomes leader"
        );
        self.reset(self.term);
        self.leader = self.id;
        self.role = Role::Leader;
        // Entries of earlier terms may hide a membership change not yet
        // applied: allow a new one only after all of them are applied.
        self.pending_conf_index = self.log.last_index();
        tracing::info!(id = self.id, term = self.term, "became leader");
        // §5.4.2: commit an entry of our own term to commit the earlier ones.
        // (`append_entries` also sends it to every follower.)
        self.append_entries(vec![Entry {
            term: 0,
            index: 0,
            kind: super::message::EntryKind::Normal,
            data: Vec::new(),
        }]);
    }

    pub fn has_ready(&self) -> bool {
        self.hard_state() != self.prev_hard_state
            || !self.log.unstable_entries().is_empty()
            || self.log.pending_snapshot().is_some()
            || !self.msgs.is_empty()
            || !self.persisted_msgs.is_empty()
            || self.log.has_next_committed_entries()
            || !self.read_states.is_empty()
    }

    /// Takes the work to do; call [`Raft::advance`] with it when done,
    /// before the next `ready`.
    pub fn ready(&mut self) -> Ready {
        assert!(
            !self.ready_outstanding,
            "ready() called again before advance()"
        );
        self.ready_outstanding = true;
        let hs = self.hard_state();
        let hard_state = (hs != self.prev_hard_state).then_some(hs);
        self.prev_hard_state = hs;
        Ready {
            hard_state,
            snapshot: self.log.pending_snapshot().cloned(),
            entries: self.log.unstable_entries().to_vec(),
            messages: std::mem::take(&mut self.msgs),
            persisted_messages: std::mem::take(&mut self.persisted_msgs),
            committed_entries: self.log.next_committed_entries(),
            read_states: std::mem::take(&mut self.read_states),
        }
    }

    /// The caller persisted and applied `rd`.
    pub fn advance(&mut self, rd: Ready) {
        assert!(self.ready_outstanding, "advance() without ready()");
        self.ready_outstanding = false;
        if let Some(s) = &rd.snapshot {
            self.log.snapshot_persisted(s.meta.index);
        }
        if let Some(last) = rd.entries.last() {
            self.log.stable_to(last.index, last.term);
        }
        // Messages may be stepped between `ready` and `advance` (while the
        // fsync runs); if a snapshot replaced the log meanwhile, the entries
        // it covers are not applied again, and neither are their changes.
        let snapshot_index = self.log.first_index() - 1;
        for e in rd
            .committed_entries
            .iter()
            .filter(|e| e.index > snapshot_index)
        {
            self.log.applied_to(e.index);
            self.apply_entry_conf_change(e);
        }
        if self.role == Role::Leader {
            let stable = self.log.stable_index();
            let id = self.id;
            if self
                .prs
                .get_mut(&id)
                .is_some_and(|pr| pr.maybe_update(stable))
                && self.maybe_commit()
            {
                self.bcast_append();
            }
        }
    }

    /// Snapshots the caller's state machine at the applied index (`data`
    /// is its serialized state) and drops the log entries it covers.
    /// Call between `advance` and the next `ready`.
    pub fn compact(&mut self, data: Vec<u8>) {
        self.compact_to(u64::MAX, data);
    }

    /// As [`Raft::compact`], but keeps the entries after `index` (at most
    /// the applied and persisted index): a leader keeps recent entries so
    /// that a follower a little behind catches up from the log rather than
    /// from a snapshot.
    pub fn compact_to(&mut self, index: u64, data: Vec<u8>) {
        assert!(
            !self.ready_outstanding,
            "compact() between ready() and advance()"
        );
        let index = index.min(self.log.applied).min(self.log.stable_index());
        if index < self.log.first_index() {
            return;
        }
        let Some(term) = self.log.term(index) else {
            return;
        };
        let meta = super::message::SnapshotMeta {
            index,
            term,
            conf: self.conf_state(),
        };
        self.log.compact(Snapshot { meta, data });
    }

    /// The newest snapshot held, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.log.snapshot.as_ref()
    }
}
