//! etcd's Cluster service: member add, remove, update and promote become
//! log entries (membership changes one server at a time; see
//! raft/membership.rs), proposed by the leader after it checked them
//! against the membership it applied. Member list is answered from the
//! member's own applied view, as etcd 3.4 does.

use cairn_schemas::rpc;

use super::entry::{self, Origin};
use super::error::RequestError;
use super::handler::Node;
use super::members::MemberInfo;
use super::propose::{map_propose_error, Refusal};
use super::reconfig_check::{self, Change};
use super::state::NodeState;
use crate::raft::ConfChange;

fn urls(v: Option<flatbuffers::Vector<'_, flatbuffers::ForwardsUOffset<&str>>>) -> Vec<String> {
    // etcdctl sends `--peer-urls "a, b"` untrimmed; etcd trims them.
    v.map(|v| v.iter().map(|u| u.trim().to_string()).collect())
        .unwrap_or_default()
}

fn check_urls(urls: &[String]) -> Result<(), RequestError> {
    if urls.is_empty() {
        return Err(RequestError::invalid("etcdserver: no peer URLs given"));
    }
    for u in urls {
        crate::config::parse_url(u)
            .map_err(|e| RequestError::invalid(format!("etcdserver: bad peer URL: {e}")))?;
    }
    Ok(())
}

/// Checks a write or membership change before it is proposed (on the
/// member the client talks to).
pub fn validate(state: &NodeState, req: &rpc::Request<'_>) -> Result<(), RequestError> {
    match req.body_type() {
        rpc::RequestBody::MemberAddRequest => {
            let r = req
                .body_as_member_add_request()
                .ok_or_else(|| RequestError::invalid("malformed member add"))?;
            check_urls(&urls(r.peer_urls()))
        }
        rpc::RequestBody::MemberUpdateRequest => {
            let r = req
                .body_as_member_update_request()
                .ok_or_else(|| RequestError::invalid("malformed member update"))?;
            check_urls(&urls(r.peer_urls()))
        }
        rpc::RequestBody::MemberRemoveRequest | rpc::RequestBody::MemberPromoteRequest => Ok(()),
        _ => state.validate_write(req),
    }
}

/// A new member's id: a hash of its peer URLs, the cluster and the time
/// (etcd's `NewMember`), never 0 and never one in use or removed.
fn new_member_id(state: &NodeState, peer_urls: &[String]) -> u64 {
    let mut sorted = peer_urls.to_vec();
    sorted.sort();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut salt = now;
    loop {
        let id = xxhash_rust::xxh3::xxh3_64(
            format!("{}|{}|{salt}", sorted.join(","), state.ids().cluster_id).as_bytes(),
        );
        let members = state.members();
        if id != 0 && members.get(id).is_none() && !members.is_removed(id) {
            return id;
        }
        salt = salt.wrapping_add(1);
    }
}

/// Leader: checks a membership change against the applied membership and
/// proposes it.
pub fn propose_member_change(
    node: &Node,
    origin: Origin,
    req: &rpc::Request<'_>,
) -> Result<(), Refusal> {
    let state = node.state.borrow();
    let members = state.members();
    // A member that the client saw added may not be applied here yet (the
    // member that answered the add may apply before the leader does):
    // not found is final only once this leader applied all it committed.
    let behind = {
        let raft = node.raft.borrow();
        raft.applied() < raft.committed()
    };
    let not_found = || -> Refusal {
        if behind {
            Refusal::Transient
        } else {
            RequestError::member_not_found().into()
        }
    };
    let (cc, member): (ConfChange, Option<MemberInfo>) = match req.body_type() {
        rpc::RequestBody::MemberAddRequest => {
            let r = req
                .body_as_member_add_request()
                .ok_or_else(|| RequestError::invalid("malformed member add"))?;
            let peer_urls = urls(r.peer_urls());
            check_urls(&peer_urls)?;
            if members.peer_url_in_use(&peer_urls, 0) {
                return Err(RequestError::new(
                    rpc::ErrorCode::PeerUrlExists,
                    "etcdserver: Peer URLs already exists",
                )
                .into());
            }
            let id = new_member_id(&state, &peer_urls);
            let m = MemberInfo {
                id,
                name: String::new(),
                peer_urls,
                client_urls: Vec::new(),
                is_learner: r.is_learner(),
            };
            let cc = if r.is_learner() {
                ConfChange::AddLearner(id)
            } else {
                ConfChange::AddVoter(id)
            };
            (cc, Some(m))
        }
        rpc::RequestBody::MemberRemoveRequest => {
            let id = req.body_as_member_remove_request().map_or(0, |r| r.id());
            if members.get(id).is_none() {
                return Err(not_found());
            }
            (ConfChange::Remove(id), None)
        }
        rpc::RequestBody::MemberPromoteRequest => {
            let id = req.body_as_member_promote_request().map_or(0, |r| r.id());
            match members.get(id) {
                None => return Err(not_found()),
                Some(m) if !m.is_learner => {
                    return Err(RequestError::new(
                        rpc::ErrorCode::MemberNotLearner,
                        "etcdserver: can only promote a learner member",
                    )
                    .into())
                }
                Some(_) => {
                    // etcd's rule: a learner is ready once it holds 90% of
                    // what the leader committed.
                    let raft = node.raft.borrow();
                    let matched = raft.progress(id).map_or(0, |p| p.matched);
                    if matched.saturating_mul(10) < raft.committed().saturating_mul(9) {
                        return Err(RequestError::new(
                            rpc::ErrorCode::LearnerNotReady,
                            "etcdserver: can only promote a learner member which is in sync with leader",
                        )
                        .into());
                    }
                    (ConfChange::AddVoter(id), None)
                }
            }
        }
        rpc::RequestBody::MemberUpdateRequest => {
            let r = req
                .body_as_member_update_request()
                .ok_or_else(|| RequestError::invalid("malformed member update"))?;
            let peer_urls = urls(r.peer_urls());
            check_urls(&peer_urls)?;
            let Some(existing) = members.get(r.id()) else {
                return Err(not_found());
            };
            if members.peer_url_in_use(&peer_urls, r.id()) {
                return Err(RequestError::new(
                    rpc::ErrorCode::PeerUrlExists,
                    "etcdserver: Peer URLs already exists",
                )
                .into());
            }
            let m = MemberInfo {
                peer_urls,
                ..existing.clone()
            };
            drop(state);
            return node
                .raft
                .borrow_mut()
                .propose(entry::update(origin, &m))
                .map(|_| ())
                .map_err(map_propose_error);
        }
        _ => return Err(RequestError::invalid("etcdserver: not a membership change").into()),
    };
    if node.strict_reconfig_check {
        let change = match cc {
            ConfChange::AddLearner(_) => Change::Add { learner: true },
            ConfChange::AddVoter(id) if members.get(id).is_some() => Change::Promote(id),
            ConfChange::AddVoter(_) => Change::Add { learner: false },
            ConfChange::Remove(id) => Change::Remove(id),
        };
        let heard = node.peer_heard.borrow();
        // Connected: the stream is up, and the peer answered within an
        // election timeout (a paused process keeps its socket open).
        let connected = |id| {
            node.transport.connected(id)
                && heard
                    .get(&id)
                    .is_some_and(|t| t.elapsed() <= node.election_timeout)
        };
        reconfig_check::check(members, node.member_id, connected, change)
            .map_err(|e| RequestError::new(rpc::ErrorCode::Unhealthy, e))?;
    }
    drop(state);
    let context = entry::conf_context(origin, member.as_ref());
    node.raft
        .borrow_mut()
        .propose_conf_change_with_context(cc, &context)
        .map(|_| ())
        .map_err(map_propose_error)
}
