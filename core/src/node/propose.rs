//! Getting a request into the log, from whichever member the client
//! talks to.
//!
//! The leader proposes it at once; a follower forwards it (with its own
//! member id and the waiter's sequence number) to the leader over the peer
//! network; with no leader known it waits in [`Pending`] and is retried on
//! every tick until its deadline. Each entry carries its origin, so the
//! member that holds the waiter answers it when the entry applies there.
//!
//! Refusals are either final (the client gets the error) or transient (no
//! leader, a leadership transfer or a membership change in progress): a
//! transient one is queued and tried again until the deadline. Only the
//! node's own queues hold such requests, so nothing is proposed twice by
//! this code: a forward lost with a crashed leader times out instead.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;

use cairn_schemas::rpc;

use super::entry::{self, Origin};
use super::error::RequestError;
use super::handler::Node;
use crate::raft::{ProposeError, Role};

/// Most requests held while no leader is known (more are refused).
const MAX_PENDING: usize = 65_536;

/// A request waiting to be proposed.
pub struct PendingProposal {
    pub origin: Origin,
    pub request: Vec<u8>,
    pub deadline: Instant,
}

#[derive(Default)]
pub struct Pending {
    queue: VecDeque<PendingProposal>,
}

/// Why a proposal did not go into the log.
pub enum Refusal {
    /// Try again later (until the deadline).
    Transient,
    Final(RequestError),
}

impl From<RequestError> for Refusal {
    fn from(e: RequestError) -> Refusal {
        Refusal::Final(e)
    }
}

pub fn map_propose_error(e: ProposeError) -> Refusal {
    match e {
        ProposeError::NotLeader { .. }
        | ProposeError::TransferInProgress
        | ProposeError::ConfChangePending => Refusal::Transient,
        ProposeError::Backpressure => Refusal::Final(RequestError::new(
            rpc::ErrorCode::Unavailable,
            "etcdserver: too many requests",
        )),
        ProposeError::InvalidConfChange(why) => {
            Refusal::Final(RequestError::invalid(format!("etcdserver: {why}")))
        }
        ProposeError::LearnerBehind { .. } => Refusal::Final(RequestError::new(
            rpc::ErrorCode::LearnerNotReady,
            "etcdserver: can only promote a learner member which is in sync with leader",
        )),
        ProposeError::InvalidTransfer(_) => Refusal::Final(RequestError::new(
            rpc::ErrorCode::BadTransferee,
            "etcdserver: bad leader transferee",
        )),
    }
}

/// A client waiting for a leadership transfer.
pub struct MoveLeaderWait {
    pub target: u64,
    pub request_id: u64,
    pub sink: cairn_net::server::ResponseSink,
    pub deadline: Instant,
}

impl Node {
    /// Sends this member's request `seq` on its way into the log.
    pub fn submit(&self, seq: u64, request: Vec<u8>) {
        let origin = Origin {
            member: self.member_id,
            seq,
        };
        self.submit_for(origin, request, self.deadline());
    }

    /// Proposes (leader), forwards (follower) or queues (no leader) a
    /// request on behalf of `origin`.
    pub fn submit_for(&self, origin: Origin, request: Vec<u8>, deadline: Instant) {
        let (role, leader) = {
            let r = self.raft.borrow();
            (r.role(), r.leader())
        };
        match (role, leader) {
            (Role::Leader, _) => match self.propose_request(origin, &request) {
                Ok(()) => self.wake(),
                Err(Refusal::Transient) => self.queue(origin, request, deadline),
                Err(Refusal::Final(e)) => self.refuse(origin, &e),
            },
            (_, Some(leader)) => {
                if origin.member == self.member_id {
                    if let Some(w) = self.waiters.borrow_mut().get_mut(&origin.seq) {
                        w.forwarded_to = Some(leader);
                    }
                }
                self.transport
                    .forward(leader, origin.member, origin.seq, &request)
            }
            (_, None) => self.queue(origin, request, deadline),
        }
    }

    fn queue(&self, origin: Origin, request: Vec<u8>, deadline: Instant) {
        let mut p = self.pending.borrow_mut();
        if p.queue.len() >= MAX_PENDING {
            drop(p);
            self.refuse(origin, &RequestError::no_leader());
            return;
        }
        p.queue.push_back(PendingProposal {
            origin,
            request,
            deadline,
        });
    }

    /// Fails `origin`'s waiter, here or on its member.
    fn refuse(&self, origin: Origin, e: &RequestError) {
        if origin.member == self.member_id {
            self.fail(origin.seq, e);
        } else {
            self.transport.forward_refused(origin.member, origin.seq, e);
        }
    }

    /// Tries the queued requests again (on every tick); those past their
    /// deadline fail with "no leader".
    pub fn retry_pending(&self, now: Instant) {
        let queued: Vec<PendingProposal> = self.pending.borrow_mut().queue.drain(..).collect();
        for p in queued {
            let alive = p.origin.member != self.member_id
                || self.waiters.borrow().contains_key(&p.origin.seq);
            if !alive {
                continue;
            }
            if p.deadline <= now {
                self.refuse(p.origin, &RequestError::no_leader());
            } else {
                self.submit_for(p.origin, p.request, p.deadline);
            }
        }
    }

    /// Leader: puts `request` (a verified client request) into the log.
    pub fn propose_request(&self, origin: Origin, request: &[u8]) -> Result<(), Refusal> {
        let req = cairn_schemas::verify_request(request)
            .map_err(|e| RequestError::invalid(format!("malformed request: {e}")))?;
        match req.body_type() {
            rpc::RequestBody::MemberAddRequest
            | rpc::RequestBody::MemberRemoveRequest
            | rpc::RequestBody::MemberUpdateRequest
            | rpc::RequestBody::MemberPromoteRequest => {
                super::cluster_api::propose_member_change(self, origin, &req)
            }
            _ => self
                .raft
                .borrow_mut()
                .propose(entry::request(origin, request))
                .map(|_| ())
                .map_err(map_propose_error),
        }
    }

    /// Leader: a follower forwarded a request.
    pub fn on_forward(&self, origin: u64, seq: u64, request: &[u8]) {
        if cairn_schemas::verify_request(request)
            .is_ok_and(|r| super::lease_leader::is_leader_only(&r))
        {
            self.on_forwarded_leader_only(origin, seq, request);
            return;
        }
        let origin = Origin {
            member: origin,
            seq,
        };
        self.submit_for(origin, request.to_vec(), self.deadline());
    }

    /// The leader refused our forwarded request `seq`.
    pub fn on_forward_refused(&self, seq: u64, code: u16, message: &str) {
        let code = rpc::ErrorCode(code);
        self.fail(seq, &RequestError::new(code, message));
    }

    /// MoveLeader: only the leader transfers its leadership.
    pub fn move_leader(
        &self,
        request_id: u64,
        target: u64,
        sink: &cairn_net::server::ResponseSink,
    ) {
        let result = {
            let mut raft = self.raft.borrow_mut();
            if raft.role() != Role::Leader {
                Err(RequestError::new(
                    rpc::ErrorCode::NotLeader,
                    "etcdserver: not leader",
                ))
            } else if raft.leader() == Some(target) {
                Ok(true)
            } else {
                raft.transfer_leader(target).map(|_| false).map_err(|e| {
                    match map_propose_error(e) {
                        Refusal::Final(e) => e,
                        Refusal::Transient => RequestError::leader_changed(),
                    }
                })
            }
        };
        match result {
            Ok(true) => {
                let mut state = self.state.borrow_mut();
                state.move_leader_response();
                sink.send(request_id, state.response());
            }
            Ok(false) => {
                self.wake();
                *self.move_leader.borrow_mut() = Some(MoveLeaderWait {
                    target,
                    request_id,
                    sink: sink.clone(),
                    deadline: self.deadline(),
                });
            }
            Err(e) => sink.send_error(request_id, e.code, &e.message, 0),
        }
    }

    /// Answers a waiting MoveLeader once the target leads (or too late).
    pub fn check_move_leader(&self, now: Instant) {
        let done = match self.move_leader.borrow().as_ref() {
            None => return,
            Some(w) => self.raft.borrow().leader() == Some(w.target) || w.deadline <= now,
        };
        if !done {
            return;
        }
        let Some(w) = self.move_leader.borrow_mut().take() else {
            return;
        };
        if self.raft.borrow().leader() == Some(w.target) {
            let mut state = self.state.borrow_mut();
            state.move_leader_response();
            w.sink.send(w.request_id, state.response());
        } else {
            w.sink.send_error(
                w.request_id,
                rpc::ErrorCode::Timeout,
                "etcdserver: request timed out, leader transfer took too long",
                0,
            );
        }
    }

    /// Publishes this member's name and client URLs once it is in the
    /// membership and they differ from what the log holds.
    pub fn maybe_publish(self: &Rc<Self>) {
        let current = self.state.borrow().members().get(self.member_id).cloned();
        let Some(current) = current else { return };
        let want = self.published.borrow().clone();
        if current.name == want.name && current.client_urls == want.client_urls {
            return;
        }
        let (role, leader) = {
            let r = self.raft.borrow();
            (r.role(), r.leader())
        };
        let me = super::members::MemberInfo {
            id: self.member_id,
            ..want
        };
        match (role, leader) {
            (Role::Leader, _) => self.propose_publish(&me),
            (_, Some(l)) => self.transport.publish(l, &me),
            _ => {}
        }
    }

    /// Leader: proposes a member's published attributes.
    pub fn propose_publish(&self, m: &super::members::MemberInfo) {
        if self.raft.borrow().role() != Role::Leader {
            return;
        }
        let unchanged = self
            .state
            .borrow()
            .members()
            .get(m.id)
            .is_some_and(|c| c.name == m.name && c.client_urls == m.client_urls);
        if unchanged {
            return;
        }
        if self.raft.borrow_mut().propose(entry::publish(m)).is_ok() {
            self.wake();
        }
    }
}
