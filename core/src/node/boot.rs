//! Start-up: who this member is and what Raft restarts from.
//!
//! Three cases, as etcd:
//!
//! * **Restart** (`member/identity` exists and the member holds data): the
//!   ids come from the identity file; bootstrap flags are ignored (a
//!   warning says so when they describe another cluster). Raft restarts
//!   from the page file's applied position (as a snapshot with no data:
//!   the page file *is* the state) plus the WAL entries after it.
//! * **New cluster** (`--initial-cluster-state new`): ids derive from the
//!   flags, the same on every member (a hash of the peer URLs and the
//!   token). The log starts with one membership change per
//!   `--initial-cluster` member (term 1, committed), written to the WAL
//!   before Raft runs, so the membership is in the log from index 1 and a
//!   member joining later learns it from there.
//! * **Join** (`--initial-cluster-state existing`, empty data dir): the
//!   member asks the peers named in `--initial-cluster` who the cluster is,
//!   finds itself by its peer URLs (added with `member add` first), and
//!   starts with an empty log that the leader fills.

use std::path::Path;

use super::entry::{self, Origin};
use super::identity;
use super::members::{MemberInfo, Membership};
use super::state::Ids;
use super::wal_task::{self, WalWrite};
use super::NodeError;
use crate::config::Config;
use crate::raft::{ConfChange, Entry, EntryKind, HardState, Persisted, Snapshot, SnapshotMeta};
use cairn_storage::wal::OwnedRecord;

/// What the node starts from.
pub struct Boot {
    pub ids: Ids,
    /// The membership at the page file's applied index.
    pub members: Membership,
    pub persisted: Persisted,
    /// Written to the WAL before Raft's first Ready (a new cluster's
    /// first entries).
    pub initial_write: Option<WalWrite>,
    /// Whom to dial before the applied membership says (a joining member
    /// learns its peers from the query).
    pub seed: Option<Membership>,
}

/// The page file's position.
pub struct Applied {
    pub index: u64,
    pub term: u64,
    pub members: Option<Vec<u8>>,
}

/// The WAL's entries after `applied` and its hard state in effect (later
/// records of an index replace earlier ones: a follower's rewritten
/// suffix; see `cairn_storage::wal::effective_log`).
pub fn effective_log(
    records: &[OwnedRecord],
    applied: u64,
) -> Result<(Vec<Entry>, Option<HardState>), NodeError> {
    let log = cairn_storage::wal::effective_log(records);
    let mut entries: Vec<Entry> = Vec::new();
    for r in log.entries.iter().filter(|r| r.index > applied) {
        let e = wal_task::decode_entry(r.term, r.index, &r.data).ok_or_else(|| {
            NodeError::Inconsistent(format!(
                "WAL entry {} has an unknown kind (written by another version?)",
                r.index
            ))
        })?;
        let want = entries.last().map_or(applied + 1, |l| l.index + 1);
        if e.index != want {
            return Err(NodeError::Inconsistent(format!(
                "the WAL holds entry {} where entry {want} was expected (the page file holds entries through {applied})",
                e.index
            )));
        }
        entries.push(e);
    }
    let hs = match log.hard_state {
        None => None,
        Some(d) => Some(wal_task::decode_hard_state(d).ok_or_else(|| {
            NodeError::Inconsistent("a WAL hard state record is not 24 bytes".into())
        })?),
    };
    Ok((entries, hs))
}

/// A member's id from its peer URLs and the cluster token (etcd derives it
/// the same way for `--initial-cluster` members).
pub fn member_id_of(urls: &[String], token: &str) -> u64 {
    let mut u = urls.to_vec();
    u.sort();
    xxhash_rust::xxh3::xxh3_64(format!("{}|{token}", u.join(",")).as_bytes())
}

/// The ids of a new cluster from the flags.
pub fn compute_ids(cfg: &Config) -> Ids {
    let token = &cfg.initial_cluster_token;
    let mut ids: Vec<u64> = cfg
        .initial_cluster
        .iter()
        .map(|m| member_id_of(&m.peer_urls, token))
        .collect();
    ids.sort_unstable();
    let mut buf = Vec::new();
    for id in &ids {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    buf.extend_from_slice(token.as_bytes());
    Ids {
        cluster_id: xxhash_rust::xxh3::xxh3_64(&buf),
        member_id: member_id_of(&cfg.initial_advertise_peer_urls, token),
    }
}

/// The membership `--initial-cluster` describes.
fn initial_members(cfg: &Config) -> Vec<MemberInfo> {
    cfg.initial_cluster
        .iter()
        .map(|m| MemberInfo {
            id: member_id_of(&m.peer_urls, &cfg.initial_cluster_token),
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
            client_urls: Vec::new(),
            is_learner: false,
        })
        .collect()
}

pub fn boot(
    cfg: &Config,
    member_dir: &Path,
    applied: &Applied,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
) -> Result<Boot, NodeError> {
    let ident = identity::read(member_dir).map_err(|e| NodeError::Inconsistent(e.to_string()))?;
    let has_log = applied.index > 0 || !entries.is_empty();
    match ident {
        Some(ids) if has_log => restart(cfg, ids, applied, entries, hard_state),
        None if has_log => Err(NodeError::Inconsistent(format!(
            "{} holds data but no member identity file: it was written by an older Cairn; \
             take a snapshot with that version and restore it",
            member_dir.display()
        ))),
        // Nothing durable yet (or a crash right after the identity was
        // written): bootstrap, which derives the same ids again.
        _ if cfg.initial_cluster_state == "existing" => join(cfg, member_dir, ident),
        _ => new_cluster(cfg, member_dir),
    }
}

fn restart(
    cfg: &Config,
    ids: Ids,
    applied: &Applied,
    entries: Vec<Entry>,
    hard_state: Option<HardState>,
) -> Result<Boot, NodeError> {
    let members = match &applied.members {
        Some(b) => Membership::decode(b)
            .map_err(|e| NodeError::Inconsistent(format!("page file membership: {e}")))?,
        None => Membership::default(),
    };
    if cfg.initial_cluster_state == "new" && compute_ids(cfg).cluster_id != ids.cluster_id {
        tracing::warn!(
            "the data dir belongs to cluster {:x}; --initial-cluster and --initial-cluster-token \
             describe another one and are ignored (they only matter for a new member)",
            ids.cluster_id
        );
    }
    let snapshot = (applied.index > 0).then(|| Snapshot {
        meta: SnapshotMeta {
            index: applied.index,
            term: applied.term,
            conf: members.conf_state(),
        },
        data: Vec::new(),
    });
    let mut hs = hard_state.unwrap_or_default();
    hs.commit = hs.commit.max(applied.index);
    hs.term = hs.term.max(applied.term);
    Ok(Boot {
        ids,
        members,
        persisted: Persisted {
            hard_state: hs,
            snapshot,
            entries,
        },
        initial_write: None,
        seed: None,
    })
}

fn new_cluster(cfg: &Config, member_dir: &Path) -> Result<Boot, NodeError> {
    let ids = compute_ids(cfg);
    identity::write(member_dir, ids).map_err(|e| NodeError::Inconsistent(e.to_string()))?;
    let entries: Vec<Entry> = initial_members(cfg)
        .iter()
        .enumerate()
        .map(|(i, m)| Entry {
            term: 1,
            index: i as u64 + 1,
            kind: EntryKind::ConfChange,
            data: [
                ConfChange::AddVoter(m.id).encode(),
                entry::conf_context(Origin::default(), Some(m)),
            ]
            .concat(),
        })
        .collect();
    let hs = HardState {
        term: 1,
        vote: 0,
        commit: entries.len() as u64,
    };
    tracing::info!(
        cluster = format!("{:x}", ids.cluster_id),
        member = format!("{:x}", ids.member_id),
        members = entries.len(),
        "bootstrapping a new cluster"
    );
    Ok(Boot {
        ids,
        members: Membership::default(),
        persisted: Persisted {
            hard_state: hs,
            snapshot: None,
            entries: entries.clone(),
        },
        initial_write: Some(WalWrite {
            snapshot: None,
            entries,
            hard_state: Some(hs),
        }),
        seed: None,
    })
}

fn join(cfg: &Config, member_dir: &Path, known: Option<Ids>) -> Result<Boot, NodeError> {
    let (cluster_id, members) = super::peers::query_cluster(cfg)?;
    let me = members
        .find_by_peer_urls(&cfg.initial_advertise_peer_urls)
        .ok_or_else(|| {
            NodeError::Inconsistent(format!(
                "member {} (peer URLs {}) is not in the cluster: add it with `cairnctl member add` first",
                cfg.name,
                cfg.initial_advertise_peer_urls.join(",")
            ))
        })?;
    let ids = Ids {
        cluster_id,
        member_id: me.id,
    };
    if known != Some(ids) {
        identity::write(member_dir, ids).map_err(|e| NodeError::Inconsistent(e.to_string()))?;
    }
    tracing::info!(
        cluster = format!("{cluster_id:x}"),
        member = format!("{:x}", me.id),
        "joining an existing cluster"
    );
    Ok(Boot {
        ids,
        members: Membership::default(),
        persisted: Persisted::default(),
        initial_write: None,
        seed: Some(members),
    })
}
