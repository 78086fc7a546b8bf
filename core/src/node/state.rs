//! The node's state on the apply executor: the MVCC store, the ids that go
//! into response headers, and a reused builder that holds the last
//! response. Applying an entry and serving a read both leave their response
//! in [`NodeState::response`].

use cairn_schemas::rpc;

use crate::alarm::{put_cost_bytes, Alarm, AlarmSet};
use crate::mvcc;

use super::convert;
use super::entry::{self, Origin};
use super::error::RequestError;
use super::lease_state::{self, Leases, StoredLease};
use super::members::{MemberInfo, Membership};
use super::respond::{self, Fbb, HeaderInfo, MembersKind, StatusInfo};
use crate::raft::{ConfChange, Entry, EntryKind};

/// The ids a member reports in every response header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub cluster_id: u64,
    pub member_id: u64,
}

pub struct NodeState {
    store: mvcc::Store,
    ids: Ids,
    term: u64,
    applied_index: u64,
    /// Term of the entry at `applied_index` (Raft restarts from it).
    applied_term: u64,
    members: Membership,
    max_txn_ops: usize,
    /// --quota-backend-bytes: a write that would grow the store past it
    /// raises NOSPACE.
    quota_bytes: u64,
    alarms: AlarmSet,
    leases: Leases,
    builder: Fbb,
}

/// A committed entry that is not a valid request: the log is damaged in a
/// way its checksums did not catch, or a bug wrote it. Never client input
/// (requests are verified before they are proposed).
#[derive(Debug, thiserror::Error)]
#[error("entry {index} is not a valid request: {reason}")]
pub struct BadEntry {
    pub index: u64,
    pub reason: String,
}

/// etcd refuses writes without a key before they reach the log.
fn require_key(key: Option<flatbuffers::Vector<'_, u8>>) -> Result<(), RequestError> {
    match key {
        Some(k) if !k.is_empty() => Ok(()),
        _ => Err(mvcc::MvccError::EmptyKey.into()),
    }
}

/// Longest key a write may carry: what the page file's history keys
/// (revision prefix + key) allow with its 4 KiB pages. Checked before the
/// log, so no entry can fail to commit to the page file.
pub const MAX_KEY_BYTES: usize = 2009 - cairn_storage::layout::REVISION_PREFIX_BYTES;

fn check_key_len(key: &[u8]) -> Result<(), RequestError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(RequestError::invalid(format!(
            "etcdserver: key of {} bytes is too large (at most {MAX_KEY_BYTES})",
            key.len()
        )));
    }
    Ok(())
}

/// Every key a txn could put, on either branch, nested txns included.
fn check_txn_keys(t: &mvcc::TxnReq<'_>) -> Result<(), RequestError> {
    for op in t.success.iter().chain(&t.failure) {
        match op {
            mvcc::RequestOp::Put(p) => check_key_len(p.key)?,
            mvcc::RequestOp::Txn(t) => check_txn_keys(t)?,
            _ => {}
        }
    }
    Ok(())
}

/// What a txn can add to the store: the larger of its branches' puts
/// (etcd's `costTxn`).
fn txn_put_cost_bytes(t: &mvcc::TxnReq<'_>) -> u64 {
    fn branch(ops: &[mvcc::RequestOp<'_>]) -> u64 {
        ops.iter()
            .map(|op| match op {
                mvcc::RequestOp::Put(p) => put_cost_bytes(p.key, p.value),
                mvcc::RequestOp::Txn(t) => txn_put_cost_bytes(t),
                _ => 0,
            })
            .sum()
    }
    branch(&t.success).max(branch(&t.failure))
}

impl NodeState {
    pub fn new(ids: Ids, term: u64, max_txn_ops: usize, quota_bytes: u64) -> NodeState {
        NodeState {
            store: mvcc::Store::new(),
            ids,
            term,
            applied_index: 0,
            applied_term: 0,
            members: Membership::default(),
            max_txn_ops,
            quota_bytes,
            alarms: AlarmSet::default(),
            leases: Leases::new(std::time::Duration::ZERO),
            builder: Fbb::with_capacity(64 << 10),
        }
    }

    /// A node whose state was loaded from the page file: `store` holds
    /// every entry through `applied.0` (of term `applied.1`).
    #[allow(clippy::too_many_arguments)]
    pub fn restored(
        ids: Ids,
        term: u64,
        max_txn_ops: usize,
        quota_bytes: u64,
        store: mvcc::Store,
        applied: (u64, u64),
        alarms: AlarmSet,
        members: Membership,
        leases: &[StoredLease],
    ) -> NodeState {
        let mut s = NodeState {
            store,
            applied_index: applied.0,
            applied_term: applied.1,
            alarms,
            members,
            ..NodeState::new(ids, term, max_txn_ops, quota_bytes)
        };
        s.leases.restore(leases, &s.store);
        s
    }

    /// Replaces the state with a snapshot's (installed from the leader):
    /// the limits, ids and term stay.
    pub fn install(
        &mut self,
        store: mvcc::Store,
        applied: (u64, u64),
        alarms: AlarmSet,
        members: Membership,
        leases: &[StoredLease],
    ) {
        self.store = store;
        self.applied_index = applied.0;
        self.applied_term = applied.1;
        self.alarms = alarms;
        self.members = members;
        // Only a follower installs a snapshot, so no expiry is lost here.
        let mut fresh = Leases::new(std::time::Duration::ZERO);
        fresh.lessor = self.leases.lessor.emptied();
        fresh.restore(leases, &self.store);
        self.leases = fresh;
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub fn leases_mut(&mut self) -> &mut Leases {
        &mut self.leases
    }

    pub fn members(&self) -> &Membership {
        &self.members
    }

    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }

    /// The Raft term response headers carry.
    pub fn set_term(&mut self, term: u64) {
        self.term = term;
    }

    /// The cluster id (a member that joined learns it after start).
    pub fn set_ids(&mut self, ids: Ids) {
        self.ids = ids;
    }

    /// The store's changes since the last batch, with the position they
    /// bring the page file to.
    pub fn take_batch(&mut self) -> super::backend::Batch {
        super::backend::Batch {
            changes: self.store.take_changes(),
            applied_index: self.applied_index,
            current_revision: self.store.current_revision(),
            compact_revision: self.store.stored_compact_revision(),
            alarms: self.alarms.to_codes(),
            applied_term: self.applied_term,
            members: self.members.encode(),
            leases: self.leases.take_dirty(),
        }
    }

    /// The header of a response built outside the state (snapshot, defrag).
    pub fn header_info(&self) -> HeaderInfo {
        self.header()
    }

    /// The raised alarms.
    pub fn alarms(&self) -> &AlarmSet {
        &self.alarms
    }

    fn refuse_if_no_space(&self) -> Result<(), RequestError> {
        if self.alarms.any(Alarm::NoSpace) {
            return Err(Self::no_space());
        }
        Ok(())
    }

    fn no_space() -> RequestError {
        RequestError::new(
            rpc::ErrorCode::NoSpace,
            "etcdserver: mvcc: database space exceeded",
        )
    }

    /// Apply-time guard: while NOSPACE is raised, writes are refused. It
    /// depends only on replicated state (the alarm is raised through the
    /// log), never on this member's `--quota-backend-bytes`, so replaying
    /// the log after a restart with another quota gives the same result.
    fn check_space(&self) -> Result<(), RequestError> {
        self.refuse_if_no_space()
    }

    /// Propose-time quota check (etcd's `checkQuota` at the API layer): true
    /// if applying `req` would grow the store past the quota. The caller
    /// refuses the request and proposes the NOSPACE alarm.
    pub fn exceeds_quota(&self, req: &rpc::Request<'_>) -> bool {
        let cost = match req.body_type() {
            rpc::RequestBody::PutRequest => match req.body_as_put_request() {
                Some(p) => {
                    let p = convert::put(&p);
                    put_cost_bytes(p.key, p.value)
                }
                None => 0,
            },
            rpc::RequestBody::TxnRequest => {
                match req.body_as_txn_request().map(|t| convert::txn(&t)) {
                    Some(Ok(t)) => txn_put_cost_bytes(&t),
                    _ => 0,
                }
            }
            _ => return false,
        };
        cost > 0 && self.store.approx_size_bytes().saturating_add(cost) > self.quota_bytes
    }

    /// The error a write gets while space is exceeded.
    pub fn no_space_error() -> RequestError {
        Self::no_space()
    }

    /// The bytes of the last response built.
    pub fn response(&self) -> &[u8] {
        self.builder.finished_data()
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    pub fn store(&self) -> &mvcc::Store {
        &self.store
    }

    /// Drops from memory the values the page file durably holds (through
    /// `revision`).
    pub fn evict_through(&mut self, revision: mvcc::Revision) -> usize {
        self.store.evict_through(revision)
    }

    fn header(&self) -> HeaderInfo {
        HeaderInfo {
            cluster_id: self.ids.cluster_id,
            member_id: self.ids.member_id,
            revision: self.store.current_revision(),
            raft_term: self.term,
        }
    }

    fn error(&mut self, e: RequestError) {
        respond::error(&mut self.builder, &e);
    }

    /// Checks a write before it is proposed, so that requests that can
    /// never apply do not cost a log entry. Apply checks again.
    pub fn validate_write(&self, req: &rpc::Request<'_>) -> Result<(), RequestError> {
        match req.body_type() {
            rpc::RequestBody::PutRequest => {
                let p = req
                    .body_as_put_request()
                    .ok_or_else(|| RequestError::invalid("malformed put"))?;
                require_key(p.key())?;
                check_key_len(p.key().map(|k| k.bytes()).unwrap_or_default())?;
                self.refuse_if_no_space()
            }
            rpc::RequestBody::DeleteRangeRequest => {
                let d = req
                    .body_as_delete_range_request()
                    .ok_or_else(|| RequestError::invalid("malformed delete"))?;
                require_key(d.key())
            }
            rpc::RequestBody::TxnRequest => {
                let t = req
                    .body_as_txn_request()
                    .ok_or_else(|| RequestError::invalid("malformed txn"))?;
                let t = convert::txn(&t)?;
                mvcc::validate_txn(&t, self.max_txn_ops)?;
                check_txn_keys(&t)?;
                // Only txns that write get here (read-only ones are reads).
                self.refuse_if_no_space()
            }
            rpc::RequestBody::AlarmRequest | rpc::RequestBody::LeaseRevokeRequest => Ok(()),
            rpc::RequestBody::LeaseGrantRequest => {
                let ttl = req.body_as_lease_grant_request().map_or(0, |g| g.ttl());
                if ttl > crate::lease::MAX_LEASE_TTL_SECS {
                    return Err(crate::lease::LeaseError::TtlTooLarge.into());
                }
                Ok(())
            }
            rpc::RequestBody::CompactionRequest => {
                let c = req
                    .body_as_compaction_request()
                    .ok_or_else(|| RequestError::invalid("malformed compaction"))?;
                if c.revision() > self.store.current_revision() {
                    return Err(mvcc::MvccError::FutureRevision.into());
                }
                // The store starts with no compaction point (etcd's -1), so
                // only a real earlier compaction refuses a revision.
                if self.store.compact_revision() > 0
                    && c.revision() <= self.store.compact_revision()
                {
                    return Err(mvcc::MvccError::Compacted {
                        compact_revision: self.store.compact_revision(),
                    }
                    .into());
                }
                Ok(())
            }
            _ => Err(RequestError::invalid("etcdserver: not a write request")),
        }
    }

    /// Applies the committed Raft entry `e`. Returns who waits for it
    /// (its response is then in [`NodeState::response`]); `None` when
    /// nobody does.
    pub fn apply_entry(&mut self, e: &Entry) -> Result<Option<Origin>, BadEntry> {
        if e.index != self.applied_index + 1 {
            return Err(BadEntry {
                index: e.index,
                reason: format!("applied index is {}", self.applied_index),
            });
        }
        let bad = |reason: String| BadEntry {
            index: e.index,
            reason,
        };
        let origin = match e.kind {
            EntryKind::Normal => match entry::decode_normal(&e.data).map_err(bad)? {
                entry::Normal::Empty => None,
                entry::Normal::Request { origin, request } => {
                    self.apply_request_bytes(e.index, request)?;
                    Some(origin)
                }
                entry::Normal::Publish(m) => {
                    self.members.publish(m.id, m.name, m.client_urls);
                    None
                }
                entry::Normal::Update { origin, member } => {
                    self.members.update_peer_urls(member.id, member.peer_urls);
                    self.members_response(MembersKind::Update, None);
                    Some(origin)
                }
            },
            EntryKind::ConfChange => {
                let cc = ConfChange::decode(&e.data)
                    .ok_or_else(|| bad("undecodable membership change".into()))?;
                let (origin, member) = entry::decode_conf_context(&e.data[9..]).map_err(bad)?;
                self.apply_conf_change(cc, member);
                Some(origin)
            }
        };
        self.applied_index = e.index;
        self.applied_term = e.term;
        Ok(origin)
    }

    /// A membership change, as Raft applies it too (raft/membership.rs).
    fn apply_conf_change(&mut self, cc: ConfChange, member: Option<MemberInfo>) {
        let (kind, added) = match cc {
            ConfChange::AddVoter(id) if self.members.get(id).is_some_and(|m| m.is_learner) => {
                self.members.promote(id);
                (MembersKind::Promote, None)
            }
            ConfChange::AddVoter(id) | ConfChange::AddLearner(id) => {
                let mut m = member.unwrap_or_default();
                m.id = id;
                m.is_learner = matches!(cc, ConfChange::AddLearner(_));
                self.members.add(m.clone());
                (MembersKind::Add, Some(m))
            }
            ConfChange::Remove(id) => {
                self.members.remove(id);
                (MembersKind::Remove, None)
            }
        };
        self.members_response(kind, added.as_ref());
    }

    /// Builds a Cluster API response from the applied membership.
    pub fn members_response(&mut self, kind: MembersKind, added: Option<&MemberInfo>) {
        let h = self.header();
        respond::members(&mut self.builder, &h, kind, added, &self.members);
    }

    /// Builds a MoveLeaderResponse.
    pub fn move_leader_response(&mut self) {
        respond::move_leader(&mut self.builder);
    }

    /// Builds an error response.
    pub fn error_response(&mut self, e: RequestError) {
        self.error(e);
    }

    fn apply_request_bytes(&mut self, index: u64, data: &[u8]) -> Result<(), BadEntry> {
        let req = cairn_schemas::verify_request(data).map_err(|e| BadEntry {
            index,
            reason: e.to_string(),
        })?;
        let result = self.apply_request(&req);
        if let Err(e) = result {
            if e.code == rpc::ErrorCode::Internal {
                // A stored value could not be read (logged with the page):
                // answering would make this member's state diverge from
                // the log. Stop; a restart replays the entry.
                eprintln!("cairnd: fatal: applying entry {index}: {}", e.message);
                std::process::exit(1);
            }
            self.error(e);
        }
        Ok(())
    }

    fn apply_request(&mut self, req: &rpc::Request<'_>) -> Result<(), RequestError> {
        let mark = self.store.pending_changes();
        let result = self.apply_write(req);
        // Keys follow their leases whatever the write was (a revoke's
        // deletes detach nothing that is still attached).
        self.leases.follow(self.store.changes_since(mark));
        result
    }

    fn apply_write(&mut self, req: &rpc::Request<'_>) -> Result<(), RequestError> {
        match req.body_type() {
            rpc::RequestBody::PutRequest => {
                let p = req
                    .body_as_put_request()
                    .ok_or_else(|| RequestError::invalid("malformed put"))?;
                let put = convert::put(&p);
                self.check_space()?;
                self.leases.check_put(put.lease)?;
                let r = self.store.put(&put)?;
                let h = self.header();
                respond::put(&mut self.builder, &h, &r);
            }
            rpc::RequestBody::DeleteRangeRequest => {
                let d = req
                    .body_as_delete_range_request()
                    .ok_or_else(|| RequestError::invalid("malformed delete"))?;
                let r = self.store.delete_range(&convert::delete_range(&d))?;
                let h = self.header();
                respond::check_size(respond::delete_bytes(&r))?;
                respond::delete_range(&mut self.builder, &h, &r);
            }
            rpc::RequestBody::TxnRequest => {
                let fb = req
                    .body_as_txn_request()
                    .ok_or_else(|| RequestError::invalid("malformed txn"))?;
                let t = convert::txn(&fb)?;
                if !convert::txn_is_read_only(&fb) {
                    self.check_space()?;
                    lease_state::check_txn_leases(&self.leases, &t)?;
                }
                // --max-txn-ops was checked before proposing; apply must not
                // depend on this member's flags (a replay after a restart
                // with a smaller limit would refuse an acknowledged txn).
                let r = self.store.txn(&t, usize::MAX)?;
                let h = self.header();
                respond::check_size(respond::txn_bytes(&r))?;
                respond::txn(&mut self.builder, &h, &r);
            }
            rpc::RequestBody::AlarmRequest => {
                let a = req
                    .body_as_alarm_request()
                    .ok_or_else(|| RequestError::invalid("malformed alarm request"))?;
                let alarm = convert::alarm(a.alarm());
                let changed: Vec<(u64, Alarm)> = match a.action() {
                    rpc::AlarmAction::Activate => {
                        let alarm = alarm.ok_or_else(|| {
                            RequestError::invalid("etcdserver: no alarm type given")
                        })?;
                        let member = if a.member_id() == 0 {
                            self.ids.member_id
                        } else {
                            a.member_id()
                        };
                        self.alarms.activate(member, alarm);
                        vec![(member, alarm)]
                    }
                    rpc::AlarmAction::Deactivate => self.alarms.deactivate(a.member_id(), alarm),
                    _ => return Err(RequestError::invalid("etcdserver: alarm get is a read")),
                };
                let h = self.header();
                respond::alarms(&mut self.builder, &h, &changed);
            }
            rpc::RequestBody::CompactionRequest => {
                let c = req
                    .body_as_compaction_request()
                    .ok_or_else(|| RequestError::invalid("malformed compaction"))?;
                self.store.compact(c.revision())?;
                let h = self.header();
                respond::compaction(&mut self.builder, &h);
            }
            rpc::RequestBody::LeaseGrantRequest => {
                let g = req
                    .body_as_lease_grant_request()
                    .ok_or_else(|| RequestError::invalid("malformed lease grant"))?;
                let ttl = self.leases.grant(g.id(), g.ttl())?;
                let h = self.header();
                lease_state::grant_response(&mut self.builder, &h, g.id(), ttl);
            }
            rpc::RequestBody::LeaseRevokeRequest => {
                let id = req.body_as_lease_revoke_request().map_or(0, |r| r.id());
                let keys = self.leases.revoke(id)?;
                if !keys.is_empty() {
                    self.store
                        .txn(&lease_state::revoke_txn(&keys), usize::MAX)?;
                }
                let h = self.header();
                lease_state::revoke_response(&mut self.builder, &h);
            }
            rpc::RequestBody::LeaseCheckpointRequest => {
                let c = req
                    .body_as_lease_checkpoint_request()
                    .ok_or_else(|| RequestError::invalid("malformed lease checkpoint"))?;
                for cp in c.checkpoints().iter().flatten() {
                    self.leases.checkpoint(cp.id(), cp.remaining_ttl());
                }
                let h = self.header();
                lease_state::checkpoint_response(&mut self.builder, &h);
            }
            _ => return Err(RequestError::invalid("etcdserver: not a write request")),
        }
        Ok(())
    }

    /// Serves a read (range, read-only txn) from the applied state.
    pub fn read(&mut self, req: &rpc::Request<'_>) {
        if let Err(e) = self.read_request(req) {
            self.error(e);
        }
    }

    /// Builds a StatusResponse.
    pub fn status(&mut self, status: &StatusInfo<'_>) {
        let h = self.header();
        respond::status(&mut self.builder, &h, status);
    }

    fn read_request(&mut self, req: &rpc::Request<'_>) -> Result<(), RequestError> {
        let h = self.header();
        match req.body_type() {
            rpc::RequestBody::RangeRequest => {
                let r = req
                    .body_as_range_request()
                    .ok_or_else(|| RequestError::invalid("malformed range"))?;
                let rr = convert::range(&r);
                let result = self.store.range(&rr)?;
                respond::check_size(respond::range_bytes(&result, rr.keys_only))?;
                respond::range(&mut self.builder, &h, &result, rr.keys_only);
            }
            rpc::RequestBody::TxnRequest => {
                let t = req
                    .body_as_txn_request()
                    .ok_or_else(|| RequestError::invalid("malformed txn"))?;
                let t = convert::txn(&t)?;
                // Read-only: the store does not change, so no revision is spent.
                let r = self.store.txn(&t, self.max_txn_ops)?;
                respond::check_size(respond::txn_bytes(&r))?;
                respond::txn(&mut self.builder, &h, &r);
            }
            rpc::RequestBody::AlarmRequest => {
                let a = req
                    .body_as_alarm_request()
                    .ok_or_else(|| RequestError::invalid("malformed alarm request"))?;
                let list: Vec<(u64, Alarm)> = self
                    .alarms
                    .matching(a.member_id(), convert::alarm(a.alarm()))
                    .collect();
                respond::alarms(&mut self.builder, &h, &list);
            }
            rpc::RequestBody::LeaseLeasesRequest => {
                lease_state::leases_response(&mut self.builder, &h, &self.leases);
            }
            rpc::RequestBody::LeaseTimeToLiveRequest => {
                let r = req
                    .body_as_lease_time_to_live_request()
                    .ok_or_else(|| RequestError::invalid("malformed lease time-to-live"))?;
                self.require_primary()?;
                lease_state::time_to_live_response(
                    &mut self.builder,
                    &h,
                    &self.leases,
                    r.id(),
                    r.keys(),
                );
            }
            rpc::RequestBody::LeaseKeepAliveRequest => {
                let id = req.body_as_lease_keep_alive_request().map_or(0, |r| r.id());
                self.require_primary()?;
                // etcd answers an unknown lease with TTL 0.
                let ttl = self.leases.renew(id);
                lease_state::keep_alive_response(&mut self.builder, &h, id, ttl);
            }
            _ => return Err(RequestError::invalid("etcdserver: not a read request")),
        }
        Ok(())
    }

    pub fn ids(&self) -> Ids {
        self.ids
    }

    /// Keep-alive and time-to-live are the leader's: it alone knows expiries.
    fn require_primary(&self) -> Result<(), RequestError> {
        if self.leases.lessor.is_primary() {
            Ok(())
        } else {
            Err(RequestError::leader_changed())
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_limit_matches_the_page_file() {
        assert_eq!(
            super::MAX_KEY_BYTES + cairn_storage::layout::REVISION_PREFIX_BYTES,
            cairn_storage::btree::max_key_bytes(4096)
        );
    }
}
