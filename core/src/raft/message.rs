//! The values Raft exchanges with its caller and its peers: log entries,
//! the hard state, snapshots and messages. Plain Rust structs; the wire
//! encoding (FlatBuffers) belongs to `net`.

/// A member id. `0` ([`NONE`]) means "nobody" (no vote, no known leader).
pub type NodeId = u64;

/// The id that names no node.
pub const NONE: NodeId = 0;

/// What a log entry carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// Application data (the leader's empty entry at the start of its term
    /// is a `Normal` entry with no data).
    Normal,
    /// A membership change: `data` is a [`ConfChange::encode`]d change.
    ConfChange,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub term: u64,
    pub index: u64,
    pub kind: EntryKind,
    pub data: Vec<u8>,
}

impl Entry {
    /// The bytes this entry counts for in `max_size_per_msg_bytes`.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64 + 24
    }
}

/// What must be on stable storage before a node answers anyone: its term,
/// its vote in that term, and the highest index it knows to be committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub vote: NodeId,
    pub commit: u64,
}

/// The membership: voters decide elections and commits, learners only
/// receive the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfState {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// Where a snapshot stands in the log and the membership at that point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub conf: ConfState,
}

/// A state-machine snapshot: `data` is opaque to Raft (the application's
/// state at `meta.index`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// One membership change. Cairn changes one server at a time (see the
/// module docs for why).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Add a voter, or promote a learner to voter.
    AddVoter(NodeId),
    /// Add a non-voting learner.
    AddLearner(NodeId),
    /// Remove a voter or a learner (the leader may remove itself).
    Remove(NodeId),
}

impl ConfChange {
    /// Layout: `kind: u8` (1 voter, 2 learner, 3 remove) then `id: u64` LE.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, id) = match *self {
            ConfChange::AddVoter(id) => (1u8, id),
            ConfChange::AddLearner(id) => (2, id),
            ConfChange::Remove(id) => (3, id),
        };
        let mut out = Vec::with_capacity(9);
        out.push(kind);
        out.extend_from_slice(&id.to_le_bytes());
        out
    }

    /// `None` if `bytes` is shorter than 9 bytes or of an unknown kind.
    /// Bytes after the first 9 are the caller's context (Cairn puts the
    /// member's name and URLs there); Raft ignores them.
    pub fn decode(bytes: &[u8]) -> Option<ConfChange> {
        let bytes = bytes.get(..9)?;
        let id = u64::from_le_bytes(bytes[1..9].try_into().ok()?);
        match bytes[0] {
            1 => Some(ConfChange::AddVoter(id)),
            2 => Some(ConfChange::AddLearner(id)),
            3 => Some(ConfChange::Remove(id)),
            _ => None,
        }
    }
}

/// The kinds of messages peers exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// RequestVote (`index`/`log_term`: the candidate's last entry;
    /// `context` = [`CAMPAIGN_TRANSFER`] when forced by a leader transfer).
    Vote,
    VoteResp,
    /// Like `Vote` at `term + 1`, but nobody changes term or vote.
    PreVote,
    PreVoteResp,
    /// AppendEntries: `index`/`log_term` name the entry before `entries`.
    Append,
    /// `index`: the follower's last matching index (accept) or the rejected
    /// `index` with `reject_hint` / `log_term` for fast backtracking.
    AppendResp,
    /// Carries `commit` and, for ReadIndex, the round id in `context`.
    Heartbeat,
    HeartbeatResp,
    /// Carries `snapshot`.
    Snapshot,
    /// A leader tells its transfer target to campaign now.
    TimeoutNow,
    /// A follower forwards a ReadIndex request (`context`) to the leader.
    ReadIndex,
    /// The leader's answer: `index` is the read index for `context`.
    ReadIndexResp,
}

/// `context` of a `Vote` that a leader transfer forces.
pub const CAMPAIGN_TRANSFER: &[u8] = b"transfer";

/// A message between peers. One flat struct (as etcd's `raftpb.Message`):
/// each kind uses the fields its doc names and leaves the rest default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub kind: MessageKind,
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub entries: Vec<Entry>,
    pub commit: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub snapshot: Option<Snapshot>,
    pub context: Vec<u8>,
}

impl Message {
    /// A message of `kind` to `to` with every other field default; the
    /// sender fills in `from` and `term`.
    pub fn new(kind: MessageKind, to: NodeId) -> Message {
        Message {
            kind,
            from: NONE,
            to,
            term: 0,
            log_term: 0,
            index: 0,
            entries: Vec::new(),
            commit: 0,
            reject: false,
            reject_hint: 0,
            snapshot: None,
            context: Vec::new(),
        }
    }
}

/// A linearizable read that is ready: once the state machine has applied
/// `index`, the read identified by `context` may be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub index: u64,
    pub context: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_change_roundtrips_and_rejects_garbage() {
        for cc in [
            ConfChange::AddVoter(7),
            ConfChange::AddLearner(u64::MAX),
            ConfChange::Remove(1),
        ] {
            assert_eq!(ConfChange::decode(&cc.encode()), Some(cc));
        }
        assert_eq!(ConfChange::decode(&[9; 9]), None);
        assert_eq!(ConfChange::decode(&[1; 3]), None);
    }

    #[test]
    fn conf_change_context_after_the_change_is_ignored() {
        let mut data = ConfChange::AddLearner(42).encode();
        data.extend_from_slice(b"name and urls");
        assert_eq!(ConfChange::decode(&data), Some(ConfChange::AddLearner(42)));
    }
}
