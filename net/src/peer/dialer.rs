//! The sending side: one task per peer that dials it, says `Hello`, and
//! streams the peer's queue over the connection, reconnecting with
//! exponential backoff whenever anything fails.
//!
//! Logging is per state change (connected, lost, failing for a new
//! reason), never per message or per retry of the same failure.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::io::AsyncWriteExt;

use super::handshake::{dial, encode_hello, Greeted};
use super::queue::SendQueue;
use super::{Identity, PeerError, PeerLimits, BACKOFF_MAX, BACKOFF_MIN};

/// What the dialer tells the node about its peers. Called from the peer's
/// task on the dialer's executor; an implementation may call back into the
/// [`Dialer`] (e.g. `remove_peer` on a removal).
pub trait DialerEvents {
    /// The peer refused our `Hello`; `removed` when it says we were removed
    /// from the cluster. Called once per refused attempt (at most once per
    /// backoff period, which is at most [`BACKOFF_MAX`]).
    fn refused(&self, peer: u64, reason: &str, removed: bool);

    /// A connection to the peer was lost, or an attempt to connect failed
    /// (not a refusal). Called once per failure, so at most once per
    /// backoff period; Raft may treat the peer as unreachable.
    fn disconnected(&self, _peer: u64) {}
}

/// A write batch buffer larger than this is freed after the write, so one
/// burst does not pin its memory.
const RETAINED_BATCH_BYTES_MAX: usize = 4 << 20;

struct Shared {
    local: Cell<Identity>,
    limits: PeerLimits,
    events: Rc<dyn DialerEvents>,
}

/// What the node and the peer's task share.
struct PeerSlot {
    id: u64,
    addrs: RefCell<Vec<SocketAddr>>,
    queue: RefCell<SendQueue>,
    /// The task, waiting for frames to be queued.
    waker: RefCell<Option<Waker>>,
    connected: Cell<bool>,
    /// The peer showed it is up (it dialed us): end the backoff now.
    nudged: Cell<bool>,
}

impl PeerSlot {
    fn set_connected(&self, connected: bool) {
        self.connected.set(connected);
        self.queue.borrow_mut().set_connected(connected);
    }

    /// Waits until at least one frame is queued.
    async fn queued(&self) {
        poll_fn(|cx| {
            if !self.queue.borrow().is_empty() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

struct PeerEntry {
    slot: Rc<PeerSlot>,
    /// Dropping it cancels the peer's task (and closes its connection).
    _task: glommio::Task<()>,
}

/// Outbound peer connections of one member, on one glommio executor.
pub struct Dialer {
    shared: Rc<Shared>,
    peers: RefCell<HashMap<u64, PeerEntry>>,
}

impl Dialer {
    /// A dialer with no peers yet. Dropping it stops every peer's task.
    pub fn new(local: Identity, limits: PeerLimits, events: Rc<dyn DialerEvents>) -> Rc<Dialer> {
        Rc::new(Dialer {
            shared: Rc::new(Shared {
                local: Cell::new(local),
                limits,
                events,
            }),
            peers: RefCell::new(HashMap::new()),
        })
    }

    /// Adds peer `id` at `addrs` (tried in order), or changes its
    /// addresses: the current connection is closed and a new one dialed,
    /// keeping the queued frames. Same addresses: nothing happens. Spawns
    /// the peer's task on the current glommio executor (must run on one).
    pub fn set_peer(&self, id: u64, addrs: Vec<SocketAddr>) {
        let unchanged = self
            .peers
            .borrow()
            .get(&id)
            .is_some_and(|e| *e.slot.addrs.borrow() == addrs);
        if unchanged {
            return;
        }
        let previous = self.peers.borrow_mut().remove(&id);
        let slot = match previous {
            Some(PeerEntry { slot, _task: task }) => {
                drop(task);
                slot.set_connected(false);
                *slot.addrs.borrow_mut() = addrs;
                slot
            }
            None => Rc::new(PeerSlot {
                id,
                addrs: RefCell::new(addrs),
                queue: RefCell::new(SendQueue::new(self.shared.limits.max_frame_bytes)),
                waker: RefCell::new(None),
                connected: Cell::new(false),
                nudged: Cell::new(false),
            }),
        };
        let task = glommio::spawn_local(run_peer(self.shared.clone(), slot.clone()));
        self.peers
            .borrow_mut()
            .insert(id, PeerEntry { slot, _task: task });
    }

    /// Stops peer `id`'s task and drops its queue. Unknown ids are ignored.
    pub fn remove_peer(&self, id: u64) {
        let entry = self.peers.borrow_mut().remove(&id);
        drop(entry);
    }

    /// Queues one encoded peer `Frame` payload for `to`. False, and the
    /// payload dropped, if `to` is unknown, its queue is full (in frames
    /// or bytes; see [`super::QUEUE_FRAMES_MAX`]) or the payload is over
    /// `max_frame_bytes`. Raft tolerates the loss.
    pub fn send(&self, to: u64, payload: Vec<u8>) -> bool {
        let peers = self.peers.borrow();
        let Some(entry) = peers.get(&to) else {
            return false;
        };
        let slot = &entry.slot;
        if !slot.queue.borrow_mut().push(payload) {
            return false;
        }
        if let Some(w) = slot.waker.borrow_mut().take() {
            w.wake();
        }
        true
    }

    /// Frames and payload bytes queued for `id` (zeros for an unknown id).
    pub fn queued(&self, id: u64) -> (usize, usize) {
        self.peers.borrow().get(&id).map_or((0, 0), |e| {
            let q = e.slot.queue.borrow();
            (q.len(), q.bytes())
        })
    }

    /// True while a connection to `id` is established and accepted.
    /// Peer `id` is up again (it dialed in): if its connection is down,
    /// retry now instead of at the end of the backoff, which may have
    /// grown while the peer was away.
    pub fn nudge(&self, id: u64) {
        if let Some(e) = self.peers.borrow().get(&id) {
            if !e.slot.connected.get() {
                e.slot.nudged.set(true);
            }
        }
    }

    pub fn connected(&self, id: u64) -> bool {
        self.peers
            .borrow()
            .get(&id)
            .is_some_and(|e| e.slot.connected.get())
    }

    /// Sets the cluster id sent in later `Hello`s (a member that joined an
    /// existing cluster learns it after start). Open connections stay.
    pub fn set_cluster_id(&self, cluster_id: u64) {
        let mut local = self.shared.local.get();
        local.cluster_id = cluster_id;
        self.shared.local.set(local);
    }
}

/// The peer's state as logged: a line is written when it changes.
#[derive(PartialEq, Eq)]
enum LinkState {
    Idle,
    Connected,
    Failing(String),
}

/// One peer's task: connect, stream, back off, forever (until cancelled).
async fn run_peer(shared: Rc<Shared>, slot: Rc<PeerSlot>) {
    let peer = slot.id;
    let mut backoff = BACKOFF_MIN;
    let mut state = LinkState::Idle;
    loop {
        let addrs = slot.addrs.borrow().clone();
        let me = shared.local.get();
        let hello = encode_hello(me.cluster_id, me.member_id, peer);
        let failure = match dial(&addrs, &hello, shared.limits.max_frame_bytes).await {
            Ok(conn) => {
                tracing::info!(peer, addr = %conn.addr, "connected to peer");
                state = LinkState::Connected;
                backoff = BACKOFF_MIN;
                slot.set_connected(true);
                let why = stream_queue(&slot, conn).await;
                slot.set_connected(false);
                why
            }
            Err(e) => e,
        };
        let summary = match &failure {
            PeerError::Refused { reason, removed } => {
                format!("refused: {reason} (removed: {removed})")
            }
            PeerError::Connect { .. } => "cannot connect".to_string(),
            PeerError::Timeout { what, .. } => format!("{what} timed out"),
            other => other.to_string(),
        };
        let next = LinkState::Failing(summary);
        if state != next {
            match state {
                LinkState::Connected => {
                    tracing::warn!(peer, reason = %failure, "lost connection to peer")
                }
                _ => {
                    tracing::warn!(peer, reason = %failure, "cannot reach peer (retrying quietly)")
                }
            }
            state = next;
        }
        match &failure {
            PeerError::Refused { reason, removed } => shared.events.refused(peer, reason, *removed),
            _ => shared.events.disconnected(peer),
        }
        if backoff_or_nudge(&slot, backoff).await {
            backoff = BACKOFF_MIN;
        } else {
            backoff = next_backoff(backoff);
        }
    }
}

/// How often a backoff checks for a nudge.
const NUDGE_CHECK: Duration = Duration::from_millis(10);

/// Sleeps `backoff`, or less if the peer is nudged meanwhile (true then).
async fn backoff_or_nudge(slot: &PeerSlot, backoff: Duration) -> bool {
    slot.nudged.set(false);
    let until = std::time::Instant::now() + backoff;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return false;
        }
        glommio::timer::sleep(left.min(NUDGE_CHECK)).await;
        if slot.nudged.replace(false) {
            return true;
        }
    }
}

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_MAX)
}

/// Writes the queue to the connection until something fails; returns why.
/// Everything queued when the task wakes goes out in one write.
async fn stream_queue(slot: &PeerSlot, conn: Greeted) -> PeerError {
    let Greeted {
        mut reader,
        mut writer,
        ..
    } = conn;
    let write = async {
        let mut batch = Vec::new();
        let mut next_id = 1u64;
        loop {
            slot.queued().await;
            slot.queue.borrow_mut().drain_into(&mut batch, &mut next_id);
            if let Err(e) = writer.write_all(&batch).await {
                return PeerError::Write(e);
            }
            batch.clear();
            if batch.capacity() > RETAINED_BATCH_BYTES_MAX {
                batch = Vec::new();
            }
        }
    };
    // The listener sends nothing after HelloAck, so a read ending means the
    // connection is gone; this notices it while idle, not one write later.
    let watch = async {
        match reader.next().await {
            Err(e) => PeerError::Frame(e),
            Ok(_) => PeerError::Unexpected {
                expected: "nothing after HelloAck",
                got: "a frame",
            },
        }
    };
    futures_lite::future::or(write, watch).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut b = BACKOFF_MIN;
        let mut seen = vec![b];
        for _ in 0..10 {
            b = next_backoff(b);
            seen.push(b);
        }
        assert_eq!(seen[1], BACKOFF_MIN * 2);
        assert!(seen.iter().all(|d| *d <= BACKOFF_MAX));
        assert_eq!(*seen.last().unwrap(), BACKOFF_MAX);
    }
}
