//! The leader's lease duties (etcd's primary lessor):
//!
//! - keep-alive and time-to-live are answered by the leader alone, after a
//!   ReadIndex round (so it still leads and has applied every grant it
//!   committed); a follower forwards them and relays the answer;
//! - expired leases are revoked through the log, at most
//!   [`REVOKES_PER_TICK`] per tick (etcd's 1000/s at the default 100 ms
//!   tick), so a storm of expiries does not stall writes; a revocation
//!   is proposed again only if it has not applied after
//!   [`REVOKE_RETRY`];
//! - long leases are checkpointed through the log every
//!   `--lease-checkpoint-interval`, so a new leader or a restart does not
//!   give them their whole TTL again;
//! - becoming leader refreshes every expiry to now + TTL (+ an election
//!   timeout), so a leader change never cuts a lease short.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_net::server::ResponseSink;
use cairn_schemas::rpc;
use flatbuffers::FlatBufferBuilder;

use super::error::RequestError;
use super::handler::Node;
use crate::raft::Role;

/// Most revocations proposed per tick.
pub const REVOKES_PER_TICK: usize = 100;
/// A proposed revocation that has not applied after this is proposed again.
const REVOKE_RETRY: Duration = Duration::from_secs(3);
/// Most leases one checkpoint entry carries (etcd's 1000).
const CHECKPOINTS_PER_ENTRY: usize = 1000;

/// The leader's bookkeeping.
#[derive(Default)]
pub struct LeaseDuties {
    /// Revocations proposed and when.
    revoking: HashMap<i64, Instant>,
    last_checkpoint: Option<Instant>,
}

/// True for the requests only the leader answers.
pub fn is_leader_only(req: &rpc::Request<'_>) -> bool {
    matches!(
        req.body_type(),
        rpc::RequestBody::LeaseKeepAliveRequest | rpc::RequestBody::LeaseTimeToLiveRequest
    )
}

fn encode_request(
    b: &mut FlatBufferBuilder<'_>,
    body_type: rpc::RequestBody,
    body: flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
) -> Vec<u8> {
    let req = rpc::Request::create(
        b,
        &rpc::RequestArgs {
            body_type,
            body: Some(body),
        },
    );
    b.finish(req, None);
    b.finished_data().to_vec()
}

/// A LeaseGrantRequest with its id set.
pub fn grant_with_id(ttl: i64, id: i64) -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(64);
    let g = rpc::LeaseGrantRequest::create(&mut b, &rpc::LeaseGrantRequestArgs { ttl, id });
    encode_request(
        &mut b,
        rpc::RequestBody::LeaseGrantRequest,
        g.as_union_value(),
    )
}

fn revoke_request(id: i64) -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(64);
    let r = rpc::LeaseRevokeRequest::create(&mut b, &rpc::LeaseRevokeRequestArgs { id });
    encode_request(
        &mut b,
        rpc::RequestBody::LeaseRevokeRequest,
        r.as_union_value(),
    )
}

fn checkpoint_request(checkpoints: &[(i64, i64)]) -> Vec<u8> {
    let mut b = FlatBufferBuilder::with_capacity(64 + 24 * checkpoints.len());
    let cps: Vec<_> = checkpoints
        .iter()
        .map(|&(id, remaining_ttl)| {
            rpc::LeaseCheckpoint::create(&mut b, &rpc::LeaseCheckpointArgs { id, remaining_ttl })
        })
        .collect();
    let cps = b.create_vector(&cps);
    let c = rpc::LeaseCheckpointRequest::create(
        &mut b,
        &rpc::LeaseCheckpointRequestArgs {
            checkpoints: Some(cps),
        },
    );
    encode_request(
        &mut b,
        rpc::RequestBody::LeaseCheckpointRequest,
        c.as_union_value(),
    )
}

impl Node {
    /// A new lease id: positive, unlikely to collide (the member id, the
    /// time and a counter hashed), and not in use here. A collision with a
    /// grant in flight elsewhere fails at apply with "lease already exists",
    /// as in etcd.
    pub fn new_lease_id(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let state = self.state.borrow();
        let mut salt = self.seq();
        loop {
            let h = xxhash_rust::xxh3::xxh3_64(
                &[
                    self.member_id.to_le_bytes(),
                    now.to_le_bytes(),
                    salt.to_le_bytes(),
                ]
                .concat(),
            );
            let id = (h >> 1) as i64;
            if id != 0 && !state.leases().lessor.exists(id) {
                return id;
            }
            salt = salt.wrapping_add(1);
        }
    }

    /// Keep-alive or time-to-live from a client: served after a ReadIndex
    /// round on the leader; forwarded to it by a follower.
    pub fn leader_only(&self, request_id: u64, payload: &[u8], sink: &ResponseSink) {
        let (role, leader) = {
            let r = self.raft.borrow();
            (r.role(), r.leader())
        };
        match (role, leader) {
            (Role::Leader, _) => self.read_linearizable(request_id, payload, sink),
            (_, Some(leader)) => {
                let seq = self.add_waiter(request_id, Some(sink.clone()), false, Some(leader));
                self.transport.forward(leader, self.member_id, seq, payload);
            }
            (_, None) => {
                let e = RequestError::no_leader();
                sink.send_error(request_id, e.code, &e.message, 0);
            }
        }
    }

    /// Leader: a follower forwarded a leader-only request.
    pub fn on_forwarded_leader_only(&self, origin: u64, seq: u64, request: &[u8]) {
        if self.raft.borrow().role() == Role::Leader {
            self.read_for_peer(origin, seq, request.to_vec());
        } else {
            self.transport
                .forward_refused(origin, seq, &RequestError::leader_changed());
        }
    }

    /// The leader answered our forwarded request `seq` itself.
    pub fn on_forward_reply(self: &Rc<Self>, from: u64, seq: u64, response: &[u8]) {
        let ours = self
            .waiters
            .borrow()
            .get(&seq)
            .is_some_and(|w| w.forwarded_to == Some(from));
        if ours {
            self.answer(seq, response);
        }
    }

    /// Leadership changed: the lessor becomes primary (every expiry
    /// refreshed) or stops being it.
    pub fn lease_leadership(&self, leader: bool) {
        let mut state = self.state.borrow_mut();
        let leases = state.leases_mut();
        if leader && !leases.lessor.is_primary() {
            let now = leases.now();
            leases.lessor.promote(now, self.election_timeout);
            self.lease_duties.borrow_mut().revoking.clear();
        } else if !leader && leases.lessor.is_primary() {
            leases.lessor.demote();
        }
    }

    /// Every tick on the leader: revoke what expired, checkpoint when due.
    pub fn lease_tick(&self, now: Instant) {
        if self.raft.borrow().role() != Role::Leader {
            return;
        }
        let (expired, checkpoints) = {
            let mut state = self.state.borrow_mut();
            let cleared: Vec<(i64, i64)> =
                std::mem::take(&mut state.leases_mut().renewed_with_remainder)
                    .into_iter()
                    .map(|id| (id, 0))
                    .collect();
            let leases = state.leases();
            let lessor_now = leases.now();
            let mut duties = self.lease_duties.borrow_mut();
            duties.revoking.retain(|id, at| {
                leases.lessor.exists(*id) && now.duration_since(*at) < REVOKE_RETRY
            });
            let expired: Vec<i64> = leases
                .lessor
                .expired(lessor_now, REVOKES_PER_TICK + duties.revoking.len())
                .into_iter()
                .filter(|id| !duties.revoking.contains_key(id))
                .take(REVOKES_PER_TICK)
                .collect();
            for id in &expired {
                duties.revoking.insert(*id, now);
            }
            let interval = self.lease_checkpoint_interval;
            let due = !interval.is_zero()
                && duties
                    .last_checkpoint
                    .is_none_or(|t| now.duration_since(t) >= interval);
            let checkpoints = if due {
                duties.last_checkpoint = Some(now);
                // Only leases that outlive the next checkpoint gain by one.
                leases
                    .lessor
                    .due_checkpoints(lessor_now, interval.as_secs() as i64, usize::MAX)
            } else {
                Vec::new()
            };
            let mut checkpoints = checkpoints;
            checkpoints.extend(cleared);
            (expired, checkpoints)
        };
        for id in expired {
            tracing::debug!(lease = format!("{id:x}"), "lease expired; revoking");
            self.propose_internal(revoke_request(id));
        }
        for chunk in checkpoints.chunks(CHECKPOINTS_PER_ENTRY) {
            self.propose_internal(checkpoint_request(chunk));
        }
    }
}
