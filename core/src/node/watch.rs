//! Watches on a member: the node's side of [`crate::watch`].
//!
//! - Requests: `WatchCreateRequest` answers `created` on its own request
//!   id and opens a stream there (`ResponseSink::push`); a
//!   `WatchCancelRequest` is answered on its id and ends the watch's
//!   stream with a `canceled` response; a `WatchProgressRequest` is
//!   answered (`watch_id` -1, the header's revision) once every watch of
//!   the connection has been handed every event up to the current
//!   revision, at once when they all have.
//! - Live events: after each entry applies (on every member), its changes
//!   go to the synced watchers ([`Node::watch_applied`]).
//! - Slow clients: a connection holding more than [`QUEUE_HIGH_WATER_BYTES`]
//!   unwritten gets no live events; its watchers turn unsynced and a sync
//!   task catches them up from the store's history once it drains, in
//!   bounded batches. Memory per connection stays bounded by the high
//!   water mark plus one response.
//! - A closed connection's watches are dropped; a follower that installs a
//!   snapshot resyncs every watcher from the new state.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use cairn_net::server::ResponseSink;
use cairn_schemas::rpc;

use crate::mvcc::{Revision, Store};
use crate::watch::{fragment, Limits, Outlet, WatchEvent, WatchSet, WatchSpec, Watcher};

use super::handler::Node;
use super::respond::{Fbb, HeaderInfo};
use super::state::NodeState;
use super::watch_respond::{
    event_size_bytes, watch_response, WatchFields, RESPONSE_OVERHEAD_BYTES,
};

/// Unwritten bytes past which a connection's watchers get no live events
/// and wait unsynced (etcd bounds each watch stream's channel instead).
pub const QUEUE_HIGH_WATER_BYTES: usize = 4 << 20;

/// Pause between catch-up rounds that sent something / that could not.
const SYNC_BUSY_PAUSE: Duration = Duration::from_millis(2);
const SYNC_IDLE_PAUSE: Duration = Duration::from_millis(50);

/// etcd's reason when the server cancels a watch it does not know.
const NOT_FOUND: &str = "mvcc: watcher does not exist";

struct Conn {
    sink: ResponseSink,
    /// Progress requests waiting for the connection's watchers to sync.
    progress_waiting: Vec<u64>,
}

/// Every watch of this member, and the connections they stream on.
pub struct Watches {
    set: WatchSet,
    conns: HashMap<u64, Conn>,
    builder: Fbb,
    /// `--max-request-bytes`: fragments stay under it.
    max_request_bytes: usize,
    /// The catch-up task is running.
    sync_running: bool,
}

impl Watches {
    pub fn new(max_request_bytes: usize) -> Watches {
        Watches {
            set: WatchSet::new(Limits::default()),
            conns: HashMap::new(),
            builder: Fbb::with_capacity(4 << 10),
            max_request_bytes,
            sync_running: false,
        }
    }

    /// Runs `f` with the set and an outlet over this member's connections.
    fn with_outlet<R>(
        &mut self,
        header: HeaderInfo,
        f: impl FnOnce(&mut WatchSet, &mut Out<'_>) -> R,
    ) -> R {
        let mut out = Out {
            conns: &self.conns,
            b: &mut self.builder,
            header,
            max_request_bytes: self.max_request_bytes,
            sent: 0,
        };
        f(&mut self.set, &mut out)
    }
}

/// The [`Outlet`] that encodes responses onto the connections' sinks.
struct Out<'a> {
    conns: &'a HashMap<u64, Conn>,
    b: &'a mut Fbb,
    header: HeaderInfo,
    max_request_bytes: usize,
    /// Responses pushed.
    sent: usize,
}

impl Out<'_> {
    fn push(&mut self, w: &Watcher, h: &HeaderInfo, f: &WatchFields<'_>, events: &[&WatchEvent]) {
        let Some(c) = self.conns.get(&w.conn) else {
            return;
        };
        let payload = watch_response(self.b, h, f, events, w.prev_kv);
        c.sink.push(w.request_id, payload);
        self.sent += 1;
    }
}

impl Outlet for Out<'_> {
    fn has_room(&mut self, conn: u64) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| !c.sink.is_closed() && c.sink.queued_bytes() < QUEUE_HIGH_WATER_BYTES)
    }

    fn events(&mut self, w: &Watcher, revision: Revision, events: &[&WatchEvent]) {
        let h = HeaderInfo {
            revision,
            ..self.header
        };
        let mut f = WatchFields {
            watch_id: w.watch_id,
            ..Default::default()
        };
        if !w.fragment {
            self.push(w, &h, &f, events);
            return;
        }
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| event_size_bytes(e, w.prev_kv))
            .collect();
        let parts = fragment::fragments(&sizes, RESPONSE_OVERHEAD_BYTES, self.max_request_bytes);
        let last = parts.len() - 1;
        for (i, p) in parts.into_iter().enumerate() {
            f.fragment = i < last;
            self.push(w, &h, &f, &events[p]);
        }
    }

    fn canceled(&mut self, w: &Watcher, compact_revision: Revision, reason: &str) {
        // etcd's compaction cancel carries no revision in its header.
        let h = HeaderInfo {
            revision: 0,
            ..self.header
        };
        let f = WatchFields {
            watch_id: w.watch_id,
            canceled: true,
            compact_revision,
            cancel_reason: Some(reason),
            ..Default::default()
        };
        self.push(w, &h, &f, &[]);
    }

    fn progress(&mut self, w: &Watcher, revision: Revision) {
        let h = HeaderInfo {
            revision,
            ..self.header
        };
        let f = WatchFields {
            watch_id: w.watch_id,
            ..Default::default()
        };
        self.push(w, &h, &f, &[]);
    }
}

fn spec(c: &rpc::WatchCreateRequest<'_>) -> WatchSpec {
    let filters = c.filters();
    let has = |f: rpc::WatchFilter| filters.is_some_and(|v| v.iter().any(|x| x == f));
    WatchSpec {
        key: c.key().map(|k| k.bytes().to_vec()).unwrap_or_default(),
        range_end: c
            .range_end()
            .map(|k| k.bytes().to_vec())
            .unwrap_or_default(),
        start_revision: c.start_revision(),
        progress_notify: c.progress_notify(),
        no_put: has(rpc::WatchFilter::NoPut),
        no_delete: has(rpc::WatchFilter::NoDelete),
        prev_kv: c.prev_kv(),
        watch_id: c.watch_id(),
        fragment: c.fragment(),
    }
}

impl Node {
    /// Serves a watch request (create, cancel, progress).
    pub(super) fn watch_request(
        &self,
        request_id: u64,
        req: &rpc::Request<'_>,
        sink: &ResponseSink,
    ) {
        let state = self.state.borrow();
        let header = state.header_info();
        let mut w = self.watches.borrow_mut();
        let conn = sink.connection_id();
        w.conns.entry(conn).or_insert_with(|| Conn {
            sink: sink.clone(),
            progress_waiting: Vec::new(),
        });
        if let Some(c) = req.body_as_watch_create_request() {
            let spec = spec(&c);
            let current = state.store().current_revision();
            let created = w.set.create(conn, request_id, &spec, current);
            // A watch that cannot be created is created and canceled in
            // one response (etcd's form), with watch id -1.
            let reason = created.as_ref().err().map(|e| e.to_string());
            let f = WatchFields {
                watch_id: created.as_ref().map_or(-1, |c| c.watch_id),
                created: true,
                canceled: reason.is_some(),
                cancel_reason: reason.as_deref(),
                ..Default::default()
            };
            sink.send(
                request_id,
                watch_response(&mut w.builder, &header, &f, &[], false),
            );
            if let Some(c) = created.ok().filter(|c| c.unsynced) {
                w.with_outlet(header, |set, out| {
                    set.sync_watch(state.store(), conn, c.watch_id, out)
                });
                if w.set.has_unsynced() {
                    drop(w);
                    self.start_watch_sync();
                }
            }
        } else if let Some(c) = req.body_as_watch_cancel_request() {
            match w.set.cancel(conn, c.watch_id()) {
                Some(watcher) => {
                    let f = WatchFields {
                        watch_id: watcher.watch_id,
                        canceled: true,
                        ..Default::default()
                    };
                    let payload = watch_response(&mut w.builder, &header, &f, &[], false);
                    sink.push(watcher.request_id, payload);
                    sink.send(request_id, payload);
                }
                None => sink.send_error(request_id, rpc::ErrorCode::InvalidArgument, NOT_FOUND, 0),
            }
        } else if req.body_as_watch_progress_request().is_some() {
            if w.set.all_synced(conn) {
                let f = WatchFields {
                    watch_id: -1,
                    ..Default::default()
                };
                sink.send(
                    request_id,
                    watch_response(&mut w.builder, &header, &f, &[], false),
                );
            } else {
                if let Some(c) = w.conns.get_mut(&conn) {
                    c.progress_waiting.push(request_id);
                }
                drop(w);
                self.start_watch_sync();
            }
        } else {
            sink.send_error(
                request_id,
                rpc::ErrorCode::InvalidArgument,
                "malformed watch request",
                0,
            );
        }
    }

    /// Hands the changes the entry just applied recorded (since `mark`,
    /// a `pending_changes` taken before it) to the synced watchers.
    pub(super) fn watch_applied(&self, state: &NodeState, mark: usize) {
        let mut w = self.watches.borrow_mut();
        if w.set.is_empty() {
            return;
        }
        let store = state.store();
        let changes = store.changes_since(mark);
        if changes.is_empty() {
            return;
        }
        w.with_outlet(state.header_info(), |set, out| {
            set.notify(store, changes, out)
        });
        if w.set.has_unsynced() && !w.sync_running {
            drop(w);
            self.start_watch_sync();
        }
    }

    /// The connection closed: its watches go.
    pub(super) fn watch_connection_closed(&self, sink: &ResponseSink) {
        let mut w = self.watches.borrow_mut();
        let conn = sink.connection_id();
        w.set.drop_connection(conn);
        w.conns.remove(&conn);
    }

    /// The store was replaced by a snapshot's (whose revision is ahead of
    /// `old_current`): every watcher catches up from it.
    pub(super) fn watch_resync(&self, old_current: Revision) {
        let mut w = self.watches.borrow_mut();
        if w.set.is_empty() {
            return;
        }
        w.set.resync_all(old_current);
        drop(w);
        self.start_watch_sync();
    }

    /// A progress tick: quiet watchers with `progress_notify` get one.
    pub(super) fn watch_progress_tick(&self) {
        let state = self.state.borrow();
        let mut w = self.watches.borrow_mut();
        let current = state.store().current_revision();
        w.with_outlet(state.header_info(), |set, out| {
            set.progress_tick(current, out)
        });
    }

    /// Starts the catch-up task unless it runs.
    fn start_watch_sync(&self) {
        let mut w = self.watches.borrow_mut();
        if std::mem::replace(&mut w.sync_running, true) {
            return;
        }
        drop(w);
        glommio::spawn_local(watch_sync(self.rc())).detach();
    }

    /// One catch-up round; returns whether work remains and whether the
    /// round sent anything.
    fn watch_sync_round(&self) -> (bool, bool) {
        let state = self.state.borrow();
        let store: &Store = state.store();
        let header = state.header_info();
        let mut w = self.watches.borrow_mut();
        let (left, sent) = w.with_outlet(header, |set, out| {
            let left = set.sync(store, out);
            (left, out.sent)
        });
        let Watches {
            set,
            conns,
            builder,
            ..
        } = &mut *w;
        let mut waiting = false;
        for (conn, c) in conns.iter_mut() {
            if c.progress_waiting.is_empty() {
                continue;
            }
            if !set.all_synced(*conn) {
                waiting = true;
                continue;
            }
            let f = WatchFields {
                watch_id: -1,
                ..Default::default()
            };
            for id in c.progress_waiting.drain(..) {
                c.sink
                    .send(id, watch_response(builder, &header, &f, &[], false));
            }
        }
        (left > 0 || waiting, sent > 0)
    }
}

/// Catches up unsynced watchers until none is left.
async fn watch_sync(node: Rc<Node>) {
    // glommio runs a new task at once up to its first await, and this one
    // may be spawned while an entry applies (the state is borrowed).
    futures_lite::future::yield_now().await;
    loop {
        let (more, progressed) = node.watch_sync_round();
        if !more {
            node.watches.borrow_mut().sync_running = false;
            return;
        }
        let pause = if progressed {
            SYNC_BUSY_PAUSE
        } else {
            SYNC_IDLE_PAUSE
        };
        glommio::timer::sleep(pause).await;
    }
}

/// Sends progress notifications every `interval` (etcd's
/// `--experimental-watch-progress-notify-interval`).
pub(super) async fn progress_ticker(node: Rc<Node>, interval: Duration) {
    loop {
        glommio::timer::sleep(interval).await;
        node.watch_progress_tick();
    }
}
