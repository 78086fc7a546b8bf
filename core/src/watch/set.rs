//! Every watcher of a member and where each one stands: synced watchers
//! take live events as entries apply, unsynced ones catch up from the
//! store's history (etcd's `watchableStore` with its synced and unsynced
//! groups).
//!
//! Invariants (checked by [`WatchSet::assert_invariants`]):
//! - a watcher is in exactly one of the synced group or the unsynced set;
//! - `next_revision` is the first revision whose events the watcher has
//!   not been handed. A synced watcher has been handed every event before
//!   the store's current revision + 1 (or its future start revision);
//!   an unsynced one every event before `next_revision`, and the next
//!   [`WatchSet::sync`] hands it the ones from there on;
//! - so a watcher sees each event of its range exactly once, in revision
//!   order, whatever moves it makes between the two states.

use std::collections::{BTreeSet, HashMap};

use crate::mvcc::{self, Change, Event, EventKind, HistoryLimits, KeyValue, Revision, Store};

use super::group::{Group, KeyRange};

/// What a client asks for when it creates a watch (the fields of
/// `WatchCreateRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSpec {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// 0: from the next revision.
    pub start_revision: Revision,
    pub progress_notify: bool,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    /// 0: the member picks one.
    pub watch_id: i64,
    pub fragment: bool,
}

/// Why a watch could not be created: the reason a created-and-canceled
/// response carries (etcd's texts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("mvcc: watcher range is empty")]
    EmptyRange,
    #[error("mvcc: duplicate watch ID provided on the WatchStream")]
    DuplicateId,
    #[error("etcdserver: too many watches on this connection")]
    TooMany,
    #[error("etcdserver: too many watches on this member")]
    TooManyInAll,
}

/// Most watches one member holds over all its connections. Bounds memory,
/// and keeps slot and interval numbers well inside `u32`.
pub const MAX_WATCHERS_TOTAL: usize = 1 << 24;

/// One watch of one connection.
#[derive(Clone, Debug)]
pub struct Watcher {
    pub conn: u64,
    /// The request id of the `WatchCreateRequest`: its stream.
    pub request_id: u64,
    pub watch_id: i64,
    pub range: KeyRange,
    pub no_put: bool,
    pub no_delete: bool,
    pub prev_kv: bool,
    pub progress_notify: bool,
    pub fragment: bool,
    /// See the module invariants.
    pub next_revision: Revision,
    synced: bool,
    /// No events were handed to it since the last progress tick (etcd's
    /// `progress[id]`).
    quiet: bool,
}

impl Watcher {
    fn wants(&self, e: &Event) -> bool {
        match e.kind {
            EventKind::Put => !self.no_put,
            EventKind::Delete => !self.no_delete,
        }
    }
}

/// An event with its previous key-value, when some watcher wants it.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub event: Event,
    /// The key at the event's revision - 1, if it existed (filled only
    /// for watchers with `prev_kv`).
    pub prev_kv: Option<KeyValue>,
}

/// Where a [`WatchSet`] sends what it decides (the node encodes and
/// queues responses; tests record them).
pub trait Outlet {
    /// Whether connection `conn` may be handed more responses now; when
    /// not, its watchers wait unsynced until it has room.
    fn has_room(&mut self, conn: u64) -> bool;
    /// Events for `w`; `revision` is the response header's (every event
    /// up to it has been handed to `w`).
    fn events(&mut self, w: &Watcher, revision: Revision, events: &[&WatchEvent]);
    /// `w` ended: its last response (`compact_revision` set when its
    /// history was compacted away).
    fn canceled(&mut self, w: &Watcher, compact_revision: Revision, reason: &str);
    /// A progress notification for `w` at `revision`.
    fn progress(&mut self, w: &Watcher, revision: Revision);
}

/// Bounds of a [`WatchSet`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_watchers_per_conn: usize,
    /// One catch-up response at most.
    pub history: HistoryLimits,
    /// Unsynced watchers served by one [`WatchSet::sync`] (etcd's
    /// `maxWatchersPerSync`).
    pub watchers_per_sync: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_watchers_per_conn: 1 << 16,
            history: HistoryLimits {
                max_revisions: 1000,
                max_bytes: 1 << 20,
            },
            watchers_per_sync: 512,
        }
    }
}

/// The text of a watch canceled because its history was compacted.
pub const COMPACTED_REASON: &str = "etcdserver: mvcc: required revision has been compacted";

#[derive(Debug, Default)]
struct Conn {
    /// etcd's `watchStream.nextID`: ids start at 0.
    next_id: i64,
    watchers: usize,
    unsynced: usize,
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct WatchSet {
    slots: Vec<Option<Watcher>>,
    free: Vec<u32>,
    by_id: HashMap<(u64, i64), u32>,
    conns: HashMap<u64, Conn>,
    synced: Group,
    unsynced: BTreeSet<u32>,
    /// Where the last sync stopped (round robin over the unsynced).
    cursor: u32,
    limits: Limits,
    /// Reused by `notify`: (watcher slot, event index) matches.
    matches: Vec<(u32, u32)>,
}

/// What [`WatchSet::create`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Created {
    pub watch_id: i64,
    /// The watcher starts in the past: a [`WatchSet::sync`] hands it its
    /// history.
    pub unsynced: bool,
}

impl WatchSet {
    pub fn new(limits: Limits) -> WatchSet {
        WatchSet {
            limits,
            ..Default::default()
        }
    }

    /// Watchers in all.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Watchers waiting to catch up.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    /// Whether every watcher of `conn` has been handed every event up to
    /// the current revision (a progress request may be answered).
    pub fn all_synced(&self, conn: u64) -> bool {
        self.conns.get(&conn).is_none_or(|c| c.unsynced == 0)
    }

    pub fn get(&self, conn: u64, watch_id: i64) -> Option<&Watcher> {
        let slot = *self.by_id.get(&(conn, watch_id))?;
        self.slots[slot as usize].as_ref()
    }

    /// Adds a watcher for `conn` whose stream is `request_id`, at the
    /// store's current revision `current`.
    pub fn create(
        &mut self,
        conn: u64,
        request_id: u64,
        spec: &WatchSpec,
        current: Revision,
    ) -> Result<Created, CreateError> {
        let range = KeyRange::new(&spec.key, &spec.range_end).ok_or(CreateError::EmptyRange)?;
        let c = self.conns.entry(conn).or_default();
        if c.watchers >= self.limits.max_watchers_per_conn {
            return Err(CreateError::TooMany);
        }
        if self.by_id.len() >= MAX_WATCHERS_TOTAL {
            return Err(CreateError::TooManyInAll);
        }
        let watch_id = if spec.watch_id != 0 {
            if self.by_id.contains_key(&(conn, spec.watch_id)) {
                return Err(CreateError::DuplicateId);
            }
            spec.watch_id
        } else {
            while self.by_id.contains_key(&(conn, c.next_id)) {
                c.next_id += 1;
            }
            c.next_id += 1;
            c.next_id - 1
        };
        // etcd: from the next revision, or a future one, is synced now.
        let (next_revision, synced) = match spec.start_revision {
            0 => (current + 1, true),
            r if r > current => (r, true),
            r => (r.max(1), false),
        };
        let w = Watcher {
            conn,
            request_id,
            watch_id,
            range,
            no_put: spec.no_put,
            no_delete: spec.no_delete,
            prev_kv: spec.prev_kv,
            progress_notify: spec.progress_notify,
            fragment: spec.fragment,
            next_revision,
            synced,
            quiet: true,
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                // Slots are reused, so there are at most MAX_WATCHERS_TOTAL.
                u32::try_from(self.slots.len() - 1)
                    .expect("invariant: at most MAX_WATCHERS_TOTAL slots")
            }
        };
        c.watchers += 1;
        if synced {
            self.synced.add(slot, &w.range);
        } else {
            c.unsynced += 1;
            self.unsynced.insert(slot);
        }
        self.slots[slot as usize] = Some(w);
        self.by_id.insert((conn, watch_id), slot);
        Ok(Created {
            watch_id,
            unsynced: !synced,
        })
    }

    /// Removes a watcher and returns it.
    fn remove_slot(&mut self, slot: u32) -> Watcher {
        let w = self.slots[slot as usize]
            .take()
            .expect("watch set invariant: a listed slot holds a watcher");
        if w.synced {
            let removed = self.synced.remove(slot, &w.range);
            assert!(
                removed,
                "watch set invariant: a synced watcher is in the group"
            );
        } else {
            let removed = self.unsynced.remove(&slot);
            assert!(
                removed,
                "watch set invariant: an unsynced watcher is listed"
            );
        }
        self.by_id.remove(&(w.conn, w.watch_id));
        if let Some(c) = self.conns.get_mut(&w.conn) {
            c.watchers -= 1;
            c.unsynced -= usize::from(!w.synced);
        }
        self.free.push(slot);
        w
    }

    /// Cancels watch `watch_id` of `conn`: removed and returned.
    pub fn cancel(&mut self, conn: u64, watch_id: i64) -> Option<Watcher> {
        let slot = *self.by_id.get(&(conn, watch_id))?;
        Some(self.remove_slot(slot))
    }

    /// Drops every watcher of a connection that closed; returns how many.
    pub fn drop_connection(&mut self, conn: u64) -> usize {
        let Some(c) = self.conns.remove(&conn) else {
            return 0;
        };
        let slots: Vec<u32> = self
            .by_id
            .iter()
            .filter(|((c, _), _)| *c == conn)
            .map(|(_, &s)| s)
            .collect();
        for &s in &slots {
            self.remove_slot(s);
        }
        debug_assert_eq!(slots.len(), c.watchers);
        slots.len()
    }

    fn mark_unsynced(&mut self, slot: u32, next_revision: Revision) {
        let w = self.slots[slot as usize]
            .as_mut()
            .expect("watch set invariant: a listed slot holds a watcher");
        if !w.synced {
            return;
        }
        let removed = self.synced.remove(slot, &w.range);
        assert!(
            removed,
            "watch set invariant: a synced watcher is in the group"
        );
        w.synced = false;
        w.next_revision = w.next_revision.max(next_revision);
        self.unsynced.insert(slot);
        if let Some(c) = self.conns.get_mut(&w.conn) {
            c.unsynced += 1;
        }
    }

    fn mark_synced(&mut self, slot: u32) {
        let w = self.slots[slot as usize]
            .as_mut()
            .expect("watch set invariant: a listed slot holds a watcher");
        assert!(
            !w.synced,
            "watch set invariant: only an unsynced watcher syncs"
        );
        self.unsynced.remove(&slot);
        w.synced = true;
        self.synced.add(slot, &w.range);
        if let Some(c) = self.conns.get_mut(&w.conn) {
            c.unsynced -= 1;
        }
    }

    /// Hands the events of one applied entry (`changes`: what the store
    /// recorded for it, all of one revision) to the synced watchers. A
    /// watcher whose connection has no room becomes unsynced at that
    /// revision instead.
    pub fn notify(&mut self, store: &Store, changes: &[Change], out: &mut dyn Outlet) {
        if matches!(changes.first(), Some(Change::Drop { .. })) {
            self.compacted(store, changes, out);
            return;
        }
        if self.synced.is_empty() {
            return;
        }
        let mut events: Vec<WatchEvent> = changes
            .iter()
            .filter_map(Event::from_change)
            .map(|event| WatchEvent {
                event,
                prev_kv: None,
            })
            .collect();
        let Some(revision) = events.first().map(|e| e.event.revision()) else {
            return;
        };
        debug_assert!(
            events.iter().all(|e| e.event.revision() == revision),
            "an entry's changes share one revision"
        );
        let mut matches = std::mem::take(&mut self.matches);
        matches.clear();
        for (i, e) in events.iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 events in one entry");
            self.synced
                .matching(&e.event.kv.key, &mut |slot| matches.push((slot, i)));
        }
        if matches.is_empty() {
            self.matches = matches;
            return;
        }
        matches.sort_unstable();
        self.fill_prev_kvs(store, &matches, &mut events);
        let mut refs: Vec<&WatchEvent> = Vec::new();
        let mut to_unsync = Vec::new();
        for group in matches.chunk_by(|a, b| a.0 == b.0) {
            let slot = group[0].0;
            let w = self.slots[slot as usize]
                .as_mut()
                .expect("watch set invariant: a matched slot holds a watcher");
            if revision < w.next_revision {
                continue;
            }
            refs.clear();
            refs.extend(
                group
                    .iter()
                    .map(|&(_, i)| &events[i as usize])
                    .filter(|e| w.wants(&e.event)),
            );
            if refs.is_empty() {
                continue;
            }
            if !out.has_room(w.conn) {
                to_unsync.push(slot);
                continue;
            }
            out.events(w, revision, &refs);
            w.next_revision = revision + 1;
            w.quiet = false;
        }
        for slot in to_unsync {
            self.mark_unsynced(slot, revision);
        }
        self.matches = matches;
    }

    /// A compaction applied (`changes`: the records it dropped). A
    /// compaction at R drops the deletes made at R too, so an unsynced
    /// watcher still to be handed revision R loses events if one of them
    /// was in its range: it is canceled as compacted, as one below R is at
    /// its next sync. (etcd has the same loss and does not notice it.)
    fn compacted(&mut self, store: &Store, changes: &[Change], out: &mut dyn Outlet) {
        let at = store.compact_revision();
        let lost: Vec<&[u8]> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Drop { revision, key } if *revision == at => Some(&key[..]),
                _ => None,
            })
            .collect();
        if lost.is_empty() {
            return;
        }
        let doomed: Vec<u32> = self
            .unsynced
            .iter()
            .copied()
            .filter(|&slot| {
                self.slots[slot as usize].as_ref().is_some_and(|w| {
                    w.next_revision == at && lost.iter().any(|k| w.range.contains(k))
                })
            })
            .collect();
        for slot in doomed {
            let w = self.remove_slot(slot);
            out.canceled(&w, at, COMPACTED_REASON);
        }
    }

    /// Reads `prev_kv` once for each event a matched watcher wants it for.
    fn fill_prev_kvs(&self, store: &Store, matches: &[(u32, u32)], events: &mut [WatchEvent]) {
        let mut want = vec![false; events.len()];
        for &(slot, i) in matches {
            if self.slots[slot as usize]
                .as_ref()
                .is_some_and(|w| w.prev_kv)
            {
                want[i as usize] = true;
            }
        }
        for (e, _) in events.iter_mut().zip(want).filter(|(_, w)| *w) {
            e.prev_kv = prev_kv(store, &e.event);
        }
    }

    /// Catches up to [`Limits::watchers_per_sync`] unsynced watchers whose
    /// connection has room by one history read each (bounded by
    /// [`Limits::history`]); cancels those whose next revision was
    /// compacted. Returns how many watchers are still unsynced.
    pub fn sync(&mut self, store: &Store, out: &mut dyn Outlet) -> usize {
        let slots: Vec<u32> = self
            .unsynced
            .range(self.cursor.saturating_add(1)..)
            .chain(self.unsynced.range(..=self.cursor))
            .copied()
            .take(self.limits.watchers_per_sync)
            .collect();
        for slot in slots {
            self.cursor = slot;
            self.sync_one(store, slot, out);
        }
        self.unsynced.len()
    }

    /// [`WatchSet::sync`] of one watcher (a watch just created in the
    /// past gets its history at once, not at the next round).
    pub fn sync_watch(&mut self, store: &Store, conn: u64, watch_id: i64, out: &mut dyn Outlet) {
        let Some(&slot) = self.by_id.get(&(conn, watch_id)) else {
            return;
        };
        if self.unsynced.contains(&slot) {
            self.sync_one(store, slot, out);
        }
    }

    /// Connections with an unsynced watcher.
    pub fn has_unsynced(&self) -> bool {
        !self.unsynced.is_empty()
    }

    fn sync_one(&mut self, store: &Store, slot: u32, out: &mut dyn Outlet) {
        let current = store.current_revision();
        let compacted = store.compact_revision();
        let w = self.slots[slot as usize]
            .as_ref()
            .expect("watch set invariant: an unsynced slot holds a watcher");
        if w.next_revision < compacted {
            let w = self.remove_slot(slot);
            out.canceled(&w, compacted, COMPACTED_REASON);
            return;
        }
        if w.next_revision > current {
            self.mark_synced(slot);
            return;
        }
        if !out.has_room(w.conn) {
            return;
        }
        let (key, end) = w.range.as_request();
        let history = match store.history(key, end, w.next_revision, current, self.limits.history) {
            Ok(h) => h,
            Err(mvcc::MvccError::Compacted { .. }) => {
                let w = self.remove_slot(slot);
                out.canceled(&w, compacted, COMPACTED_REASON);
                return;
            }
            // A value that cannot be read (logged by the store): try
            // again at the next sync.
            Err(_) => return,
        };
        let events: Vec<WatchEvent> = history
            .events
            .into_iter()
            .filter(|e| w.wants(e))
            .map(|event| WatchEvent {
                prev_kv: if w.prev_kv {
                    prev_kv(store, &event)
                } else {
                    None
                },
                event,
            })
            .collect();
        let w = self.slots[slot as usize]
            .as_mut()
            .expect("watch set invariant: an unsynced slot holds a watcher");
        if !events.is_empty() {
            let refs: Vec<&WatchEvent> = events.iter().collect();
            out.events(w, history.next_revision - 1, &refs);
            w.quiet = false;
        }
        w.next_revision = history.next_revision;
        if w.next_revision > current {
            self.mark_synced(slot);
        }
    }

    /// A progress tick (etcd's `--experimental-watch-progress-notify-
    /// interval`): each synced watcher with `progress_notify` that was
    /// handed no events since the last tick gets a progress notification
    /// at `current`.
    pub fn progress_tick(&mut self, current: Revision, out: &mut dyn Outlet) {
        for w in self.slots.iter_mut().flatten() {
            if !w.progress_notify {
                continue;
            }
            if w.quiet && w.synced {
                out.progress(w, current);
            }
            w.quiet = true;
        }
    }

    /// The store was replaced (a snapshot installed): every watcher
    /// catches up from the new store, from where it stood at the old
    /// store's revision `old_current`.
    pub fn resync_all(&mut self, old_current: Revision) {
        let synced: Vec<u32> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, w)| w.as_ref().is_some_and(|w| w.synced))
            .map(|(i, _)| i as u32)
            .collect();
        for slot in synced {
            self.mark_unsynced(slot, old_current + 1);
        }
    }

    /// Checks the module invariants; panics naming the broken one. O(n):
    /// for tests.
    pub fn assert_invariants(&self) {
        let mut synced = 0;
        let mut per_conn: HashMap<u64, (usize, usize)> = HashMap::new();
        for (slot, w) in self.slots.iter().enumerate() {
            let Some(w) = w else { continue };
            let slot = slot as u32;
            assert_eq!(
                self.by_id.get(&(w.conn, w.watch_id)),
                Some(&slot),
                "watch set invariant: ids map to slots"
            );
            assert_eq!(
                self.unsynced.contains(&slot),
                !w.synced,
                "watch set invariant: one state at a time"
            );
            synced += usize::from(w.synced);
            let c = per_conn.entry(w.conn).or_default();
            c.0 += 1;
            c.1 += usize::from(!w.synced);
        }
        assert_eq!(
            synced,
            self.synced.len(),
            "watch set invariant: the synced group"
        );
        for (conn, (n, u)) in per_conn {
            let c = &self.conns[&conn];
            assert_eq!(
                (c.watchers, c.unsynced),
                (n, u),
                "watch set invariant: connection counts"
            );
        }
    }
}

/// The key of `e` at the revision before it, if it existed.
fn prev_kv(store: &Store, e: &Event) -> Option<KeyValue> {
    store.kv_at(&e.kv.key, e.revision() - 1).ok().flatten()
}
