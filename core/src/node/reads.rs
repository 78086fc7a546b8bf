//! Linearizable reads (Raft's ReadIndex, thesis §6.4) on any member.
//!
//! A read asks Raft for a read index (the leader's commit index confirmed
//! by a quorum's heartbeat acks; a follower asks the leader); Raft batches
//! the reads that arrive during one round. Once this member has applied
//! that index, the read is served from its applied state. A read whose
//! answer got lost (a follower's ReadIndex to a leader that died) is asked
//! again after an election timeout, and fails at its deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cairn_net::server::ResponseSink;

use super::error::RequestError;
use super::handler::Node;
use crate::raft::ReadState;

/// Most linearizable reads waiting at once on one member.
const MAX_READS: usize = 65_536;

/// Who gets a read's answer.
enum ReplyTo {
    Client {
        request_id: u64,
        sink: ResponseSink,
    },
    /// A follower forwarded it (lease keep-alive, time-to-live): its
    /// waiter `seq`.
    Peer {
        member: u64,
        seq: u64,
    },
}

struct PendingRead {
    request: Vec<u8>,
    reply_to: ReplyTo,
    deadline: Instant,
    /// The read index, once Raft gave it.
    index: Option<u64>,
    /// When Raft last took the request (None: not taken, e.g. no leader).
    asked: Option<Instant>,
}

#[derive(Default)]
pub struct Reads {
    pending: HashMap<u64, PendingRead>,
    next_ctx: u64,
}

impl Node {
    pub fn read_linearizable(&self, request_id: u64, payload: &[u8], sink: &ResponseSink) {
        let reply_to = ReplyTo::Client {
            request_id,
            sink: sink.clone(),
        };
        self.read_for(reply_to, payload.to_vec());
    }

    /// Leader: serves a follower's forwarded leader-only read.
    pub fn read_for_peer(&self, member: u64, seq: u64, request: Vec<u8>) {
        self.read_for(ReplyTo::Peer { member, seq }, request);
    }

    fn read_for(&self, reply_to: ReplyTo, request: Vec<u8>) {
        let ctx = {
            let mut reads = self.reads.borrow_mut();
            if reads.pending.len() >= MAX_READS {
                drop(reads);
                let e = RequestError::new(
                    cairn_schemas::rpc::ErrorCode::Unavailable,
                    "etcdserver: too many requests",
                );
                self.reply_error(reply_to, &e);
                return;
            }
            reads.next_ctx += 1;
            let ctx = reads.next_ctx;
            reads.pending.insert(
                ctx,
                PendingRead {
                    request,
                    reply_to,
                    deadline: self.deadline(),
                    index: None,
                    asked: None,
                },
            );
            ctx
        };
        self.ask_read(ctx, Instant::now());
    }

    fn reply(&self, to: ReplyTo, response: &[u8]) {
        match to {
            ReplyTo::Client { request_id, sink } => sink.send(request_id, response),
            ReplyTo::Peer { member, seq } => self.transport.forward_reply(member, seq, response),
        }
    }

    fn reply_error(&self, to: ReplyTo, e: &RequestError) {
        match to {
            ReplyTo::Client { request_id, sink } => {
                sink.send_error(request_id, e.code, &e.message, e.compact_revision)
            }
            ReplyTo::Peer { member, seq } => self.transport.forward_refused(member, seq, e),
        }
    }

    fn ask_read(&self, ctx: u64, now: Instant) {
        let taken = self
            .raft
            .borrow_mut()
            .read_index(ctx.to_le_bytes().to_vec())
            .is_ok();
        if let Some(r) = self.reads.borrow_mut().pending.get_mut(&ctx) {
            r.asked = taken.then_some(now);
        }
        if taken {
            self.wake();
        }
    }

    /// Raft confirmed read indexes.
    pub fn on_read_states(&self, states: &[ReadState]) {
        let mut reads = self.reads.borrow_mut();
        for s in states {
            let Ok(ctx) = <[u8; 8]>::try_from(s.context.as_slice()) else {
                continue;
            };
            if let Some(r) = reads.pending.get_mut(&u64::from_le_bytes(ctx)) {
                r.index = Some(r.index.map_or(s.index, |i| i.min(s.index)));
            }
        }
    }

    /// Serves every read whose index this member has applied.
    pub fn serve_ready_reads(&self) {
        let applied = self.state.borrow().applied_index();
        let ready: Vec<PendingRead> = {
            let mut reads = self.reads.borrow_mut();
            let ctxs: Vec<u64> = reads
                .pending
                .iter()
                .filter(|(_, r)| r.index.is_some_and(|i| i <= applied))
                .map(|(&c, _)| c)
                .collect();
            ctxs.iter()
                .filter_map(|c| reads.pending.remove(c))
                .collect()
        };
        if ready.is_empty() {
            return;
        }
        let mut state = self.state.borrow_mut();
        for r in ready {
            match cairn_schemas::verify_request(&r.request) {
                Ok(req) => {
                    state.read(&req);
                    self.reply(r.reply_to, state.response());
                }
                Err(e) => self.reply_error(r.reply_to, &RequestError::invalid(e.to_string())),
            }
        }
    }

    /// On every tick: fail reads past their deadline, ask again for those
    /// Raft did not take or whose answer is overdue.
    pub fn retry_reads(&self, now: Instant, resend_after: Duration) {
        let (expired, again): (Vec<u64>, Vec<u64>) = {
            let reads = self.reads.borrow();
            let expired = reads
                .pending
                .iter()
                .filter(|(_, r)| r.deadline <= now)
                .map(|(&c, _)| c)
                .collect();
            let again = reads
                .pending
                .iter()
                .filter(|(_, r)| {
                    r.deadline > now
                        && r.index.is_none()
                        && r.asked
                            .is_none_or(|t| now.duration_since(t) >= resend_after)
                })
                .map(|(&c, _)| c)
                .collect();
            (expired, again)
        };
        for ctx in expired {
            let r = self.reads.borrow_mut().pending.remove(&ctx);
            if let Some(r) = r {
                self.reply_error(r.reply_to, &RequestError::timeout());
            }
        }
        for ctx in again {
            self.ask_read(ctx, now);
        }
    }
}
