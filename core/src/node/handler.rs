//! Routing of verified client requests on the main executor: serializable
//! reads are served from the applied state at once, linearizable reads
//! after a ReadIndex round (`reads.rs`), writes and membership changes are
//! proposed through Raft (`propose.rs`) and answered when their entry
//! applies on this member.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_net::server::{Handler, ResponseSink};
use cairn_schemas::rpc;

use super::backend::{BackendHandle, Cmd};
use super::channel::{Rx, Tx};
use super::convert;
use super::error::RequestError;
use super::reads::Reads;
use super::respond::{MembersKind, StatusInfo};
use super::snapshot_serve::{self, Snapshots};
use super::state::NodeState;
use super::transport::Transport;
use super::wal_task::{WalEvent, WalWrite};
use crate::raft::Raft;

thread_local! {
    /// The executor's node (one per executor thread).
    static NODE: RefCell<Option<std::rc::Weak<Node>>> = const { RefCell::new(None) };
}

/// A client waiting for its proposal to apply on this member.
pub struct Waiter {
    pub request_id: u64,
    /// None for the node's own proposals (auto-compaction, alarms, lease
    /// revocations and checkpoints).
    pub sink: Option<ResponseSink>,
    /// The node's NOSPACE alarm proposal: when it is done, another may be
    /// raised.
    pub no_space_alarm: bool,
    /// A compaction with `physical`: answered once the page file no longer
    /// holds the compacted history (etcd waits for its backend too).
    pub physical: bool,
    pub deadline: Instant,
    /// The leader this member forwarded the request to, if it did.
    pub forwarded_to: Option<u64>,
    /// That leader changed: at the deadline the waiter fails with "leader
    /// changed" rather than "request timed out".
    pub leader_changed: bool,
}

/// State shared by the connections, the peers and the Raft loop of the
/// main executor.
pub struct Node {
    pub state: RefCell<NodeState>,
    pub raft: RefCell<Raft>,
    pub member_id: u64,
    /// Proposals of this member waiting to apply, by sequence number.
    pub waiters: RefCell<HashMap<u64, Waiter>>,
    pub next_seq: Cell<u64>,
    /// Proposals waiting for a leader (or for a transient refusal to pass).
    pub pending: RefCell<super::propose::Pending>,
    pub reads: RefCell<Reads>,
    /// Wakes the Raft loop (capacity 1: a wake-up already queued is enough).
    pub wake: glommio::channels::local_channel::LocalSender<()>,
    pub wal_writes: Tx<WalWrite>,
    pub wal_events: Rx<WalEvent>,
    pub transport: Rc<dyn Transport>,
    /// A NOSPACE alarm proposal is in flight or applied; cleared when the
    /// alarm is disarmed, so that it can be raised again.
    pub no_space_proposed: Cell<bool>,
    /// The page-file thread.
    pub backend: BackendHandle,
    /// Applied index of the last batch handed to the backend.
    pub flushed_index: Cell<u64>,
    /// A timer will flush the next batch (`--backend-batch-interval`).
    pub flush_armed: Cell<bool>,
    /// `--backend-batch-limit`: changes that make a batch go at once.
    pub batch_limit: usize,
    pub batch_interval: Duration,
    /// Snapshot files being served.
    pub snapshots: RefCell<Snapshots>,
    /// How long a proposal or a linearizable read may wait (etcd: 5 s +
    /// 2 election timeouts).
    pub request_timeout: Duration,
    /// `--election-timeout`.
    pub election_timeout: Duration,
    /// A leadership transfer a client waits for.
    pub move_leader: RefCell<Option<super::propose::MoveLeaderWait>>,
    /// This member's name and client URLs, published through the log.
    pub published: RefCell<super::members::MemberInfo>,
    /// The hard state last written to the WAL (only a change of term or
    /// vote needs a write of its own; see `raft_loop::persist`).
    pub persisted_hard_state: Cell<crate::raft::HardState>,
    /// The leader as of the last Ready handled (to see changes).
    pub known_leader: Cell<Option<u64>>,
    /// The membership a joining member learned from its peers at start
    /// (until it applies the log's own).
    pub seed_members: RefCell<Option<super::members::Membership>>,
    /// Where a leader's snapshot is pulled to before it is installed.
    pub install_dir: std::path::PathBuf,
    /// The page file (`member/db`).
    pub db_path: std::path::PathBuf,
    /// `--backend-value-cache-bytes`.
    pub value_cache_bytes: usize,
    /// The leader's lease bookkeeping.
    pub lease_duties: RefCell<super::lease_leader::LeaseDuties>,
    /// `--lease-checkpoint-interval` (0: no checkpoints).
    pub lease_checkpoint_interval: Duration,
    /// `--strict-reconfig-check`.
    pub strict_reconfig_check: bool,
    /// When each peer last sent a Raft message (what the strict
    /// reconfiguration check calls connected).
    pub peer_heard: RefCell<HashMap<u64, std::time::Instant>>,
    /// The watches of this member's clients (`watch.rs`).
    pub watches: RefCell<super::watch::Watches>,
    /// What `--listen-metrics-urls` serves.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// The leader's heartbeat round trips (`metrics::PeerRtt`).
    pub peer_rtt: RefCell<crate::metrics::PeerRtt>,
}

impl Node {
    /// Status figures; only built for a StatusRequest (it reads counters
    /// from other executors).
    fn status_info(&self, state: &NodeState) -> StatusInfo<'static> {
        use std::sync::atomic::Ordering::Relaxed;
        let raft = self.raft.borrow();
        StatusInfo {
            version: env!("CARGO_PKG_VERSION"),
            db_size: self.metrics.db_sizes.file_len_bytes.load(Relaxed) as i64,
            db_size_in_use: self.metrics.db_sizes.in_use_bytes.load(Relaxed) as i64,
            leader: raft.leader().unwrap_or(0),
            raft_index: raft.last_index(),
            raft_term: raft.term(),
            raft_applied_index: state.applied_index(),
            // Every WAL fdatasync is one sample of the batch-size histogram.
            wal_fsyncs: self.metrics.wal_batch_entries.get_sample_count(),
            wal_entries: self.metrics.wal_batch_entries.get_sample_sum() as u64,
            is_learner: state
                .members()
                .get(self.member_id)
                .is_some_and(|m| m.is_learner),
            errors: state
                .alarms()
                .matching(0, None)
                .map(|(m, a)| format!("memberID:{m} alarm:{} ", a.name()))
                .collect(),
        }
    }

    /// This member knows a leader, has committed an entry of the leader's
    /// term (so everything before it), and has applied all it committed.
    pub fn caught_up(&self) -> bool {
        let r = self.raft.borrow();
        r.leader().is_some()
            && r.term_at(r.committed()) == Some(r.term())
            && self.state.borrow().applied_index() >= r.committed()
    }

    /// Wakes the Raft loop.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// A new sequence number for a waiter of this member.
    pub fn seq(&self) -> u64 {
        let s = self.next_seq.get() + 1;
        self.next_seq.set(s);
        s
    }

    pub fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }
}

/// What a request is, for routing.
enum Route {
    /// Served from this member's applied state now.
    Local,
    /// Served from the applied state once a ReadIndex round says so.
    Linearizable,
    /// Proposed through the log.
    Write,
    /// Answered by the leader (lease keep-alive and time-to-live).
    Leader,
}

fn route(req: &rpc::Request<'_>) -> Option<Route> {
    Some(match req.body_type() {
        rpc::RequestBody::RangeRequest => match req.body_as_range_request() {
            Some(r) if r.serializable() => Route::Local,
            _ => Route::Linearizable,
        },
        rpc::RequestBody::StatusRequest
        | rpc::RequestBody::MemberListRequest
        | rpc::RequestBody::LeaseLeasesRequest => Route::Local,
        rpc::RequestBody::LeaseKeepAliveRequest | rpc::RequestBody::LeaseTimeToLiveRequest => {
            Route::Leader
        }
        rpc::RequestBody::AlarmRequest => match req.body_as_alarm_request().map(|a| a.action()) {
            Some(rpc::AlarmAction::Get) => Route::Local,
            _ => Route::Write,
        },
        rpc::RequestBody::TxnRequest => match req.body_as_txn_request() {
            Some(t) if convert::txn_is_read_only(&t) => Route::Linearizable,
            _ => Route::Write,
        },
        rpc::RequestBody::PutRequest
        | rpc::RequestBody::DeleteRangeRequest
        | rpc::RequestBody::CompactionRequest
        | rpc::RequestBody::MemberAddRequest
        | rpc::RequestBody::MemberRemoveRequest
        | rpc::RequestBody::MemberUpdateRequest
        | rpc::RequestBody::MemberPromoteRequest
        | rpc::RequestBody::LeaseGrantRequest
        | rpc::RequestBody::LeaseRevokeRequest => Route::Write,
        _ => return None,
    })
}

impl Handler for Node {
    fn handle(&self, request_id: u64, req: rpc::Request<'_>, payload: &[u8], sink: &ResponseSink) {
        match req.body_type() {
            rpc::RequestBody::DefragmentRequest => {
                let node = self.rc();
                glommio::spawn_local(snapshot_serve::defragment(node, request_id, sink.clone()))
                    .detach();
                return;
            }
            rpc::RequestBody::SnapshotRequest => {
                let (id, offset) = req
                    .body_as_snapshot_request()
                    .map(|r| (r.snapshot_id(), r.offset()))
                    .unwrap_or((0, 0));
                let node = self.rc();
                glommio::spawn_local(snapshot_serve::snapshot(
                    node,
                    request_id,
                    id,
                    offset,
                    sink.clone(),
                ))
                .detach();
                return;
            }
            rpc::RequestBody::WatchCreateRequest
            | rpc::RequestBody::WatchCancelRequest
            | rpc::RequestBody::WatchProgressRequest => {
                self.watch_request(request_id, &req, sink);
                return;
            }
            rpc::RequestBody::MoveLeaderRequest => {
                let target = req
                    .body_as_move_leader_request()
                    .map_or(0, |m| m.target_id());
                self.move_leader(request_id, target, sink);
                return;
            }
            _ => {}
        }
        let Some(route) = route(&req) else {
            sink.send_error(
                request_id,
                rpc::ErrorCode::InvalidArgument,
                "etcdserver: empty request",
                0,
            );
            return;
        };
        match route {
            Route::Local => self.serve_local(request_id, &req, sink),
            Route::Linearizable => self.read_linearizable(request_id, payload, sink),
            Route::Write => self.write(request_id, &req, payload, sink),
            Route::Leader => self.leader_only(request_id, payload, sink),
        }
    }

    fn connection_closed(&self, sink: &ResponseSink) {
        self.watch_connection_closed(sink);
    }
}

impl Node {
    fn serve_local(&self, request_id: u64, req: &rpc::Request<'_>, sink: &ResponseSink) {
        let mut state = self.state.borrow_mut();
        match req.body_type() {
            rpc::RequestBody::StatusRequest => {
                let status = self.status_info(&state);
                state.status(&status);
            }
            rpc::RequestBody::MemberListRequest => state.members_response(MembersKind::List, None),
            _ => state.read(req),
        }
        sink.send(request_id, state.response());
    }

    fn write(&self, request_id: u64, req: &rpc::Request<'_>, payload: &[u8], sink: &ResponseSink) {
        let mut state = self.state.borrow_mut();
        if let Err(e) = super::cluster_api::validate(&state, req) {
            sink.send_error(request_id, e.code, &e.message, e.compact_revision);
            return;
        }
        if state.exceeds_quota(req) {
            let e = NodeState::no_space_error();
            sink.send_error(request_id, e.code, &e.message, 0);
            let member_id = state.ids().member_id;
            drop(state);
            self.raise_no_space(member_id);
            return;
        }
        state.set_term(self.raft.borrow().term());
        drop(state);
        let physical = req
            .body_as_compaction_request()
            .is_some_and(|c| c.physical());
        // A grant without an id gets one here (etcd: the member the client
        // talks to picks it), so every member applies the same id.
        let assigned = match req.body_as_lease_grant_request() {
            Some(g) if g.id() == 0 => Some(super::lease_leader::grant_with_id(
                g.ttl(),
                self.new_lease_id(),
            )),
            _ => None,
        };
        let payload = assigned.as_deref().unwrap_or(payload);
        let seq = self.add_waiter(request_id, Some(sink.clone()), physical, None);
        self.submit(seq, payload.to_vec());
    }

    /// Registers a waiter (answered by [`Node::answer`] or
    /// [`Node::fail`], or failed at its deadline); returns its sequence
    /// number. `sink` None: the node's own proposal.
    pub fn add_waiter(
        &self,
        request_id: u64,
        sink: Option<ResponseSink>,
        physical: bool,
        forwarded_to: Option<u64>,
    ) -> u64 {
        let seq = self.seq();
        self.waiters.borrow_mut().insert(
            seq,
            Waiter {
                request_id,
                sink,
                physical,
                deadline: self.deadline(),
                forwarded_to,
                leader_changed: false,
                no_space_alarm: false,
            },
        );
        seq
    }

    /// Answers the waiter `seq` with `response` (an encoded Response).
    pub fn answer(self: &Rc<Self>, seq: u64, response: &[u8]) {
        let Some(w) = self.waiters.borrow_mut().remove(&seq) else {
            return;
        };
        match w {
            Waiter {
                request_id,
                sink: Some(sink),
                physical: true,
                ..
            } => {
                let response = response.to_vec();
                let n = self.clone();
                glommio::spawn_local(async move {
                    // glommio runs a new task at once, up to its first
                    // await: let the apply loop finish (it holds the state).
                    futures_lite::future::yield_now().await;
                    n.flush_backend();
                    let (tx, rx) = futures_channel::oneshot::channel();
                    if n.backend.send(Cmd::Barrier(tx)) {
                        let _ = rx.await;
                    }
                    sink.send(request_id, &response);
                })
                .detach();
            }
            Waiter {
                request_id,
                sink: Some(sink),
                ..
            } => sink.send(request_id, response),
            Waiter {
                sink: None,
                no_space_alarm,
                ..
            } => {
                // The NOSPACE alarm applied: from now on the alarm state
                // itself refuses writes, and once disarmed the next excess
                // may raise it again.
                if no_space_alarm {
                    self.no_space_proposed.set(false);
                }
                if let Ok(resp) = cairn_schemas::verify_response(response) {
                    if let Some(e) = resp.body_as_error() {
                        tracing::warn!(
                            seq,
                            error = e.message().unwrap_or(""),
                            "internal proposal failed"
                        );
                    }
                }
            }
        }
    }

    /// Fails the waiter `seq` with `e`.
    pub fn fail(&self, seq: u64, e: &RequestError) {
        if let Some(w) = self.waiters.borrow_mut().remove(&seq) {
            self.metrics.proposals_failed.inc();
            if let Some(sink) = w.sink {
                sink.send_error(w.request_id, e.code, &e.message, e.compact_revision);
            } else {
                if w.no_space_alarm {
                    self.no_space_proposed.set(false);
                }
                tracing::warn!(seq, error = %e.message, "internal proposal failed");
            }
        }
    }

    /// The leader changed: requests forwarded to another leader may have
    /// died with it. They get one more `grace` (the entry may still commit
    /// under the new leader, and then it is answered as usual), then fail
    /// with "leader changed": the outcome is unknown, as for a timeout, but
    /// the client learns it within an election instead of at the deadline
    /// and may retry through the new leader.
    pub fn shorten_forwarded_elsewhere(&self, leader: Option<u64>, grace: Duration) {
        let soon = Instant::now() + grace;
        for w in self.waiters.borrow_mut().values_mut() {
            if w.forwarded_to.is_some_and(|to| Some(to) != leader) {
                w.deadline = w.deadline.min(soon);
                w.leader_changed = true;
            }
        }
    }

    /// Fails every waiter past its deadline.
    pub fn expire_waiters(&self, now: Instant) {
        let expired: Vec<(u64, bool)> = self
            .waiters
            .borrow()
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(&s, w)| (s, w.leader_changed))
            .collect();
        for (seq, leader_changed) in expired {
            let e = if leader_changed {
                RequestError::leader_changed()
            } else {
                RequestError::timeout()
            };
            self.fail(seq, &e);
        }
        self.metrics
            .proposals_pending
            .set(self.waiters.borrow().len() as i64);
    }
}

impl Node {
    /// Hands the applied changes since the last batch to the backend (a
    /// no-op when nothing was applied since).
    pub fn flush_backend(&self) {
        let mut state = self.state.borrow_mut();
        let durable = self
            .backend
            .stats
            .durable_revision
            .load(std::sync::atomic::Ordering::Relaxed);
        state.evict_through(durable as i64);
        let applied = state.applied_index();
        if applied == self.flushed_index.get() && state.store().pending_changes() == 0 {
            return;
        }
        let batch = state.take_batch();
        self.flushed_index.set(applied);
        if !self.backend.send(Cmd::Commit(batch)) {
            panic!("invariant violated: the backend thread is gone while the node runs");
        }
    }

    /// Flushes now if the batch is full, else arms the batch timer.
    pub fn schedule_flush(self: &Rc<Self>) {
        if self.state.borrow().store().pending_changes() >= self.batch_limit {
            self.flush_backend();
        } else if !self.flush_armed.replace(true) {
            let n = self.clone();
            glommio::spawn_local(async move {
                glommio::timer::sleep(n.batch_interval).await;
                n.flush_armed.set(false);
                n.flush_backend();
            })
            .detach();
        }
    }

    /// This node as an `Rc` (handlers get `&self`; tasks need ownership).
    pub fn rc(&self) -> Rc<Node> {
        NODE.with(|n| {
            n.borrow()
                .as_ref()
                .and_then(std::rc::Weak::upgrade)
                .expect("invariant: the node is registered on its executor")
        })
    }

    /// Registers `node` so that handlers can reach it as an `Rc`.
    pub fn register(node: &Rc<Node>) {
        NODE.with(|n| *n.borrow_mut() = Some(Rc::downgrade(node)));
    }

    /// Proposes the NOSPACE alarm through the log (once until it applies).
    fn raise_no_space(&self, member_id: u64) {
        if self.no_space_proposed.replace(true) {
            return;
        }
        tracing::warn!("database space exceeded: raising the NOSPACE alarm; reads, deletes and compaction still work");
        let mut b = flatbuffers::FlatBufferBuilder::with_capacity(128);
        let a = rpc::AlarmRequest::create(
            &mut b,
            &rpc::AlarmRequestArgs {
                action: rpc::AlarmAction::Activate,
                member_id,
                alarm: rpc::AlarmType::NoSpace,
            },
        );
        let req = rpc::Request::create(
            &mut b,
            &rpc::RequestArgs {
                body_type: rpc::RequestBody::AlarmRequest,
                body: Some(a.as_union_value()),
            },
        );
        b.finish(req, None);
        let seq = self.add_waiter(0, None, false, None);
        if let Some(w) = self.waiters.borrow_mut().get_mut(&seq) {
            w.no_space_alarm = true;
        }
        self.submit(seq, b.finished_data().to_vec());
    }

    /// Proposes a request of the node's own (auto-compaction, alarms); its
    /// result is logged, not sent anywhere.
    pub fn propose_internal(&self, data: Vec<u8>) {
        let seq = self.add_waiter(0, None, false, None);
        self.submit(seq, data);
    }
}
