//! The loop that drives the Raft core on the main executor.
//!
//! For each Ready, in the order the core asks for (raft/core.rs `Ready`):
//! send its `messages` at once (the leader's appends go out while its own
//! fsync runs), make its entries and hard state durable with one WAL write
//! and one fdatasync, then send `persisted_messages` (votes and append
//! acks promise what is on disk), apply the committed entries in order and
//! answer their waiters, serve the reads whose index is now applied, and
//! `advance`. Proposals and peer messages that arrive during the fsync are
//! stepped into the core at once and go out with the next Ready: that is
//! the group commit.
//!
//! A ticker advances Raft's clock every `--heartbeat-interval` and runs the
//! time-based duties: expiring waiters, retrying queued proposals and lost
//! reads, answering a leadership transfer, publishing this member.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::handler::Node;
use super::wal_task::{WalEvent, WalWrite};
use crate::raft::{Ready, Role};

/// Ticks between two checks that this member's attributes are published.
const PUBLISH_EVERY_TICKS: u64 = 5;

/// The in-memory Raft log keeps at most this many entries the page file
/// already holds (etcd's snapshot catch-up entries), so that a follower a
/// little behind catches up from the log; one further behind gets a
/// snapshot.
const RETAIN_ENTRIES: u64 = 5000;
/// ... and at most this many bytes of them.
const RETAIN_BYTES: u64 = 8 << 20;
/// How long a member that applied its own removal still runs, so that
/// what it queued for its peers is sent.
const REMOVED_STOP_DELAY: Duration = Duration::from_millis(500);
/// Compact when at least this many entries can go (not on every Ready).
const COMPACT_STEP_ENTRIES: u64 = 256;

/// Runs until the WAL writer is gone.
pub async fn run(node: Rc<Node>, wake: glommio::channels::local_channel::LocalReceiver<()>) {
    // A lone voter restarting leads at once (nothing else would wake it
    // before an election timeout).
    node.raft.borrow_mut().campaign_if_sole_voter();
    loop {
        if !node.process_ready().await {
            return;
        }
        if wake.recv().await.is_none() {
            return;
        }
    }
}

/// Ticks Raft every `interval`.
pub async fn tick(node: Rc<Node>, interval: Duration, election_timeout: Duration) {
    let mut ticks = 0u64;
    loop {
        glommio::timer::sleep(interval).await;
        ticks += 1;
        node.raft.borrow_mut().tick();
        let now = Instant::now();
        node.expire_waiters(now);
        node.retry_pending(now);
        node.retry_reads(now, election_timeout);
        node.check_move_leader(now);
        node.lease_tick(now);
        if ticks.is_multiple_of(PUBLISH_EVERY_TICKS) {
            node.maybe_publish();
        }
        node.wake();
    }
}

impl Node {
    /// Handles Readies until the core has nothing to do. False if the WAL
    /// writer is gone (the node is stopping).
    async fn process_ready(self: &Rc<Self>) -> bool {
        loop {
            let mut rd = {
                let mut raft = self.raft.borrow_mut();
                if !raft.has_ready() {
                    return true;
                }
                raft.ready()
            };
            self.send_messages(&rd.messages);
            if let Some(s) = &rd.snapshot {
                // This member fell behind what the leader's log holds: the
                // state comes from the leader's page file, before the WAL
                // records that the log now starts after the snapshot.
                if let Err(e) = self.install_snapshot(&s.meta).await {
                    tracing::error!(error = %e, "cannot install the leader's snapshot; stopping");
                    eprintln!("cairnd: fatal: cannot install the leader's snapshot: {e}");
                    std::process::exit(1);
                }
            }
            if !self.persist(&mut rd).await {
                return false;
            }
            self.send_messages(&rd.persisted_messages);
            self.apply_committed(&rd);
            self.on_read_states(&rd.read_states);
            self.raft.borrow_mut().advance(rd);
            self.after_advance();
        }
    }

    /// Makes the Ready's entries and hard state durable. The core's
    /// `advance` reads only the last entry of `rd.entries`, so the rest
    /// move to the WAL writer instead of being copied.
    ///
    /// A Ready whose only change is the commit index is not written: the
    /// commit index need not be durable (a restarted member learns it from
    /// the leader again, and never below what its page file applied), so an
    /// fsync for it would only delay applying — on the leader, every write
    /// (etcd's `MustSync` makes the same call). Term and vote changes and
    /// entries are always written, with the hard state of the moment.
    async fn persist(&self, rd: &mut Ready) -> bool {
        let term_or_vote_changed = rd.hard_state.is_some_and(|hs| {
            let last = self.persisted_hard_state.get();
            hs.term != last.term || hs.vote != last.vote
        });
        if rd.entries.is_empty() && rd.snapshot.is_none() && !term_or_vote_changed {
            return true;
        }
        // The latest commit index goes with every write that happens anyway.
        let hs = rd
            .hard_state
            .unwrap_or_else(|| self.raft.borrow().hard_state());
        self.persisted_hard_state.set(hs);
        let last = rd.entries.last().cloned();
        let entries = std::mem::take(&mut rd.entries);
        rd.entries.extend(last);
        let write = WalWrite {
            snapshot: rd.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term)),
            entries,
            hard_state: Some(hs),
        };
        if self.wal_writes.send(write).await.is_err() {
            return false;
        }
        matches!(self.wal_events.recv().await, Some(WalEvent::Written))
    }

    fn apply_committed(self: &Rc<Self>, rd: &Ready) {
        if rd.committed_entries.is_empty() {
            return;
        }
        let mut membership_changed = false;
        {
            let mut state = self.state.borrow_mut();
            state.set_term(self.raft.borrow().term());
            for e in &rd.committed_entries {
                if e.index <= state.applied_index() {
                    // Held by an installed snapshot already.
                    continue;
                }
                let mark = state.store().pending_changes();
                let origin = match state.apply_entry(e) {
                    Ok(o) => o,
                    Err(err) => {
                        // Entries were verified before they were proposed,
                        // and the WAL checks every record: this is a bug or
                        // damage the checksums missed. Stop; never diverge.
                        tracing::error!(error = %err, "cannot apply a committed entry");
                        eprintln!("cairnd: fatal: {err}");
                        std::process::exit(1);
                    }
                };
                self.watch_applied(&state, mark);
                membership_changed |= super::entry::changes_peers(e);
                if let Some(o) = origin {
                    if o.member == self.member_id && o.seq != 0 {
                        self.answer(o.seq, state.response());
                    }
                }
            }
        }
        if membership_changed {
            self.on_membership_change();
        }
        self.schedule_flush();
    }

    /// Dials the current members; stops when this member was removed.
    fn on_membership_change(&self) {
        let state = self.state.borrow();
        self.transport.set_members(state.members());
        let members = state.members();
        let learner = members.get(self.member_id).is_some_and(|m| m.is_learner);
        self.metrics.is_learner.set(i64::from(learner));
        self.peer_rtt
            .borrow_mut()
            .retain(|id| members.get(id).is_some());
        if state.members().is_removed(self.member_id) {
            tracing::warn!(
                member = format!("{:x}", self.member_id),
                "this member was removed from the cluster; stopping"
            );
            drop(state);
            // Not at once: what this member just queued for its peers (as
            // leader, the commit of its own removal, which the member that
            // forwarded the request waits for) goes out first.
            let node = self.rc();
            glommio::spawn_local(async move {
                glommio::timer::sleep(REMOVED_STOP_DELAY).await;
                node.flush_backend();
                eprintln!("cairnd: the member has been permanently removed from the cluster");
                std::process::exit(0);
            })
            .detach();
        }
    }

    /// Sends a Ready's messages, timing the leader's heartbeats
    /// (`etcd_network_peer_round_trip_time_seconds`).
    fn send_messages(&self, messages: &[crate::raft::Message]) {
        let mut now = None;
        for m in messages {
            if m.kind == crate::raft::MessageKind::Heartbeat {
                let now = *now.get_or_insert_with(Instant::now);
                self.peer_rtt.borrow_mut().heartbeat_sent(m.to, now);
            }
            self.transport.send_raft(m);
        }
    }

    /// Gauges that follow every Ready (atomic stores).
    fn update_metrics(&self, leader: Option<u64>, role: Role) {
        let m = &self.metrics;
        m.has_leader.set(i64::from(leader.is_some()));
        m.is_leader.set(i64::from(role == Role::Leader));
        m.proposals_committed
            .set(self.raft.borrow().committed() as i64);
        m.proposals_applied
            .set(self.state.borrow().applied_index() as i64);
        m.proposals_pending.set(self.waiters.borrow().len() as i64);
    }

    fn after_advance(&self) {
        self.raft.borrow_mut().campaign_if_sole_voter();
        let (leader, term, role) = {
            let r = self.raft.borrow();
            (r.leader(), r.term(), r.role())
        };
        self.update_metrics(leader, role);
        if leader != self.known_leader.replace(leader) {
            if leader.is_some() {
                self.metrics.leader_changes.inc();
            }
            match leader {
                Some(l) => tracing::info!(
                    leader = format!("{l:x}"),
                    term,
                    is_me = role == Role::Leader,
                    "leader elected"
                ),
                None => tracing::info!(term, "no leader"),
            }
            // A heartbeat's grace: what the old leader sent just before
            // (the commit of its own removal, say) is still on its way.
            self.shorten_forwarded_elsewhere(leader, self.election_timeout / 10);
            self.lease_leadership(role == Role::Leader);
            // Queued proposals can go now.
            if leader.is_some() {
                self.retry_pending(Instant::now());
            }
        }
        self.serve_ready_reads();
        self.check_move_leader(Instant::now());
        self.maybe_compact_log();
    }

    /// Drops log entries the page file durably holds, keeping a bounded
    /// tail of them for followers (see [`RETAIN_ENTRIES`]).
    fn maybe_compact_log(&self) {
        let durable = self
            .backend
            .stats
            .durable_applied_index
            .load(std::sync::atomic::Ordering::Relaxed);
        let mut raft = self.raft.borrow_mut();
        let first = raft.first_index();
        if durable < first + COMPACT_STEP_ENTRIES {
            return;
        }
        let floor = durable.saturating_sub(RETAIN_ENTRIES).max(first);
        let mut index = durable;
        let mut kept_bytes = 0u64;
        while index > floor {
            kept_bytes += raft.entry(index).map_or(0, |e| e.size_bytes());
            if kept_bytes > RETAIN_BYTES {
                break;
            }
            index -= 1;
        }
        if index >= first + COMPACT_STEP_ENTRIES {
            raft.compact_to(index, Vec::new());
        }
    }
}
