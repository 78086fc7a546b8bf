//! Routing of verified client requests on the apply executor: reads are
//! served from the applied state at once; writes are checked, queued for
//! the WAL writer, and answered when their entry is durable and applied.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use cairn_net::server::{Handler, ResponseSink};
use cairn_schemas::rpc;
use glommio::channels::local_channel::LocalSender;

use super::backend::{BackendHandle, Cmd};
use super::convert;
use super::respond::StatusInfo;
use super::snapshot_serve::{self, Snapshots};
use super::state::NodeState;
use super::wal_task::Proposal;

thread_local! {
    /// The executor's node (one per executor thread).
    static NODE: RefCell<Option<std::rc::Weak<Node>>> = const { RefCell::new(None) };
}

/// A client waiting for its write to apply.
pub struct Waiter {
    pub request_id: u64,
    /// None for the node's own proposals (auto-compaction).
    pub sink: Option<ResponseSink>,
    /// A compaction with `physical`: answered once the page file no longer
    /// holds the compacted history (etcd waits for its backend too).
    pub physical: bool,
}

/// State shared by the connections and the apply loop of one executor.
pub struct Node {
    pub state: RefCell<NodeState>,
    /// Waiters in proposal order; the WAL reports durability in that order.
    pub waiters: RefCell<VecDeque<Waiter>>,
    /// Proposals to the WAL writer (unbounded locally; see `proposal_pump`).
    pub proposals: LocalSender<Proposal>,
    /// Index of the last durable entry.
    pub last_index: Cell<u64>,
    pub wal_stats: std::sync::Arc<super::wal_task::WalStats>,
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
    pub batch_interval: std::time::Duration,
    /// Snapshot files being served.
    pub snapshots: RefCell<Snapshots>,
}

impl Node {
    /// Status figures; only built for a StatusRequest (it reads counters
    /// from other executors).
    fn status_info(&self, state: &NodeState) -> StatusInfo<'static> {
        use std::sync::atomic::Ordering::Relaxed;
        let b = &self.backend.stats;
        StatusInfo {
            version: env!("CARGO_PKG_VERSION"),
            db_size: b.file_len_bytes.load(Relaxed) as i64,
            db_size_in_use: b.in_use_bytes.load(Relaxed) as i64,
            leader: state.ids().member_id,
            raft_index: self.last_index.get(),
            raft_term: state.term(),
            raft_applied_index: state.applied_index(),
            wal_fsyncs: self.wal_stats.fsyncs.load(Relaxed),
            wal_entries: self.wal_stats.entries.load(Relaxed),
            errors: state
                .alarms()
                .matching(0, None)
                .map(|(m, a)| format!("memberID:{m} alarm:{} ", a.name()))
                .collect(),
        }
    }
}

impl Handler for Node {
    fn handle(&self, request_id: u64, req: rpc::Request<'_>, payload: &[u8], sink: &ResponseSink) {
        let is_read = match req.body_type() {
            rpc::RequestBody::RangeRequest | rpc::RequestBody::StatusRequest => true,
            rpc::RequestBody::AlarmRequest => req
                .body_as_alarm_request()
                .map(|a| a.action() == rpc::AlarmAction::Get)
                .unwrap_or(false),
            rpc::RequestBody::TxnRequest => req
                .body_as_txn_request()
                .map(|t| convert::txn_is_read_only(&t))
                .unwrap_or(false),
            rpc::RequestBody::PutRequest
            | rpc::RequestBody::DeleteRangeRequest
            | rpc::RequestBody::CompactionRequest => false,
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
            _ => {
                sink.send_error(
                    request_id,
                    rpc::ErrorCode::InvalidArgument,
                    "etcdserver: empty request",
                    0,
                );
                return;
            }
        };
        let mut state = self.state.borrow_mut();
        if req.body_type() == rpc::RequestBody::StatusRequest {
            let status = self.status_info(&state);
            state.status(&status);
            sink.send(request_id, state.response());
            return;
        }
        if is_read {
            state.read(&req);
            sink.send(request_id, state.response());
            return;
        }
        if let Err(e) = state.validate_write(&req) {
            sink.send_error(request_id, e.code, &e.message, e.compact_revision);
            return;
        }
        if state.exceeds_quota(&req) {
            let e = NodeState::no_space_error();
            sink.send_error(request_id, e.code, &e.message, 0);
            let member_id = state.ids().member_id;
            drop(state);
            self.raise_no_space(member_id);
            return;
        }
        drop(state);
        if self
            .proposals
            .try_send(Proposal {
                data: payload.to_vec(),
            })
            .is_err()
        {
            sink.send_error(
                request_id,
                rpc::ErrorCode::Unavailable,
                "etcdserver: server stopped",
                0,
            );
            return;
        }
        let physical = req
            .body_as_compaction_request()
            .is_some_and(|c| c.physical());
        self.waiters.borrow_mut().push_back(Waiter {
            request_id,
            sink: Some(sink.clone()),
            physical,
        });
    }
}

/// Applies a durable batch in order and answers each waiter.
pub fn apply_durable(node: &Rc<Node>, first_index: u64, entries: Vec<Vec<u8>>) {
    let mut state = node.state.borrow_mut();
    let mut waiters = node.waiters.borrow_mut();
    for (i, data) in entries.iter().enumerate() {
        let index = first_index + i as u64;
        if let Err(e) = state.apply(index, data) {
            // Entries were verified before they were proposed: this is our bug.
            panic!("invariant violated: a proposed entry failed to apply: {e}");
        }
        node.last_index.set(index);

        match waiters.pop_front() {
            Some(Waiter {
                request_id,
                sink: Some(sink),
                physical: true,
            }) => {
                let response = state.response().to_vec();
                let n = node.clone();
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
            Some(Waiter {
                request_id,
                sink: Some(sink),
                physical: false,
            }) => sink.send(request_id, state.response()),
            Some(Waiter { sink: None, .. }) => {
                // An internal proposal (the NOSPACE alarm among them) applied:
                // from now on the alarm state itself refuses writes, and once
                // disarmed the next excess may raise it again.
                node.no_space_proposed.set(false);
                if let Ok(resp) = cairn_schemas::verify_response(state.response()) {
                    if let Some(e) = resp.body_as_error() {
                        tracing::warn!(
                            index,
                            error = e.message().unwrap_or(""),
                            "internal proposal failed"
                        );
                    }
                }
            }
            None => {}
        }
    }
    if state.store().pending_changes() >= node.batch_limit {
        drop(state);
        drop(waiters);
        node.flush_backend();
    } else if !node.flush_armed.replace(true) {
        let n = node.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(n.batch_interval).await;
            n.flush_armed.set(false);
            n.flush_backend();
        })
        .detach();
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

    /// This node as an `Rc` (handlers get `&self`; tasks need ownership).
    fn rc(&self) -> Rc<Node> {
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
        self.propose_internal(b.finished_data().to_vec());
    }

    /// Proposes a request of the node's own (auto-compaction); its result
    /// is logged, not sent anywhere.
    pub fn propose_internal(&self, data: Vec<u8>) {
        if self.proposals.try_send(Proposal { data }).is_ok() {
            self.waiters.borrow_mut().push_back(Waiter {
                request_id: 0,
                sink: None,
                physical: false,
            });
        }
    }
}
