//! Page allocation for the single writer, with the undo log that lets a
//! dropped write transaction leave no trace.
//!
//! While a write transaction edits, every page it creates gets a
//! *provisional* id (at or above [`PROVISIONAL_BASE`], never on disk). At
//! commit the pages are *placed*: given real ids in as few contiguous runs
//! as the free space allows, so that the commit's pages go to the device
//! in a few large writes rather than one small write per page. On this
//! kind of disk a 4 KiB write costs about as much as a 256 KiB one, so a
//! commit's write time follows the number of runs it writes, not its bytes.
//!
//! Placement policy ([`Allocator::place_pages`]): free runs of at least
//! [`LONG_RUN_PAGES`] pages first, in address order; then the end of the
//! file, unless the free pages in shorter runs (scattered holes, which
//! would each cost a write) have grown past 1/[`SHORT_FREE_DIVISOR`] of the
//! file: then those holes are filled first, so the file stays bounded.
//! Holes left alone meanwhile tend to merge into long runs as the pages
//! around them are freed.

use std::collections::{BTreeMap, BTreeSet};

use super::pager::PageIdSet;

/// First provisional page id (2^62: far beyond any real page, still a
/// valid `u64` offset computation never made for it).
pub(crate) const PROVISIONAL_BASE: u64 = 1 << 62;

/// Whether `id` is a provisional id (a page not yet placed).
pub(crate) fn is_provisional(id: u64) -> bool {
    id >= PROVISIONAL_BASE
}

/// A free run at least this long is placed into without hesitation
/// (64 KiB at 4 KiB pages: one write of that size costs about what a
/// 4 KiB write does).
pub(crate) const LONG_RUN_PAGES: u64 = 16;

/// Free pages in runs shorter than [`LONG_RUN_PAGES`] are left for later
/// while they are at most 1/this of the file's pages. At 1 M random keys,
/// 1/16 costs the file 6 % and 1/8 costs 14 %, for about the same commit
/// time; filling every hole at once made commits ~10 % slower.
pub(crate) const SHORT_FREE_DIVISOR: u64 = 16;

/// The single writer's allocator.
///
/// A page freed by transaction `F` was reachable from version `F - 1`, so
/// it waits in `pending[F]` until no reader holds a version older than `F`.
#[derive(Debug, Default)]
pub(crate) struct Allocator {
    /// Reusable now.
    pub free: BTreeSet<u64>,
    /// Freed by a committed (or the current) transaction, not yet reusable.
    pub pending: BTreeMap<u64, Vec<u64>>,
    /// High-water mark: page ids `>= page_count` were never handed out.
    pub page_count: u64,
    txn_id: u64,
    begin_page_count: u64,
    /// Ids this transaction took out of `free` (undo log).
    taken: Vec<u64>,
    /// Real pages placed by this transaction: freeing one is immediate.
    fresh: PageIdSet,
    /// The next provisional id this transaction hands out.
    next_provisional: u64,
}

impl Allocator {
    pub(crate) fn new(free: BTreeSet<u64>, page_count: u64) -> Allocator {
        Allocator {
            free,
            page_count,
            next_provisional: PROVISIONAL_BASE,
            ..Allocator::default()
        }
    }

    /// Starts transaction `txn_id`; releases what no reader can see.
    pub(crate) fn begin(&mut self, txn_id: u64, oldest_visible: u64) {
        while let Some((&f, _)) = self.pending.first_key_value() {
            if f > oldest_visible {
                break;
            }
            if let Some((_, ids)) = self.pending.pop_first() {
                self.free.extend(ids);
            }
        }
        self.txn_id = txn_id;
        self.begin_page_count = self.page_count;
        self.taken.clear();
        self.fresh.clear();
        self.next_provisional = PROVISIONAL_BASE;
    }

    /// A provisional id for a new run of `n` pages (placed at commit).
    pub(crate) fn alloc(&mut self, n: u32) -> u64 {
        let id = self.next_provisional;
        self.next_provisional += u64::from(n.max(1));
        id
    }

    /// Provisional ids handed out so far: `PROVISIONAL_BASE..` this.
    pub(crate) fn provisional_end(&self) -> u64 {
        self.next_provisional
    }

    /// Places a run of `n` contiguous pages now: the first free run long
    /// enough in address order, else the end of the file. Returns its
    /// first id.
    pub(crate) fn alloc_run(&mut self, n: u32) -> u64 {
        let n = u64::from(n.max(1));
        let start = self.find_free_run(n).unwrap_or_else(|| self.grow(n));
        for id in start..start + n {
            self.take(id);
        }
        start
    }

    /// Places `n` single pages (see the module doc for the policy);
    /// returns their ids, ascending within each run.
    pub(crate) fn place_pages(&mut self, n: u64) -> Vec<u64> {
        let mut out = Vec::with_capacity(n as usize);
        if n == 0 {
            return out;
        }
        let runs = self.free_runs();
        let long: u64 = runs
            .iter()
            .filter(|r| r.1 >= LONG_RUN_PAGES)
            .map(|r| r.1)
            .sum();
        let short = self.free.len() as u64 - long;
        let fill_holes = long < n && short * SHORT_FREE_DIVISOR > self.page_count;
        let long_runs = runs.iter().filter(|r| r.1 >= LONG_RUN_PAGES);
        let holes = runs.iter().filter(|r| fill_holes && r.1 < LONG_RUN_PAGES);
        for &(start, len) in long_runs.chain(holes) {
            let want = n - out.len() as u64;
            if want == 0 {
                break;
            }
            for id in start..start + len.min(want) {
                self.take(id);
                out.push(id);
            }
        }
        let rest = n - out.len() as u64;
        if rest > 0 {
            let start = self.grow(rest);
            for id in start..start + rest {
                self.take(id);
                out.push(id);
            }
        }
        out
    }

    /// Marks real page `id` as placed by this transaction.
    fn take(&mut self, id: u64) {
        if self.free.remove(&id) {
            self.taken.push(id);
        }
        self.fresh.insert(id);
    }

    /// Extends the file by `n` pages; returns the first new id.
    fn grow(&mut self, n: u64) -> u64 {
        let s = self.page_count;
        self.page_count += n;
        s
    }

    /// The free runs `(start, len)` in address order.
    fn free_runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for &id in &self.free {
            match runs.last_mut() {
                Some((s, l)) if *s + *l == id => *l += 1,
                _ => runs.push((id, 1)),
            }
        }
        runs
    }

    fn find_free_run(&self, n: u64) -> Option<u64> {
        self.free_runs().into_iter().find(|r| r.1 >= n).map(|r| r.0)
    }

    /// Frees a run: nothing to do for a provisional one (never placed); at
    /// once if this transaction placed it; else once no reader can see it.
    pub(crate) fn free(&mut self, start: u64, n: u32) {
        if is_provisional(start) {
            return;
        }
        for id in start..start + u64::from(n.max(1)) {
            if self.fresh.remove(&id) {
                self.free.insert(id);
            } else {
                self.pending.entry(self.txn_id).or_default().push(id);
            }
        }
    }

    /// Undoes everything since `begin` (a dropped write transaction).
    pub(crate) fn rollback(&mut self) {
        self.free.extend(self.taken.drain(..));
        let _beyond = self.free.split_off(&self.begin_page_count);
        self.pending.remove(&self.txn_id);
        self.page_count = self.begin_page_count;
        self.fresh.clear();
        self.next_provisional = PROVISIONAL_BASE;
    }

    /// Every id the persisted freelist holds: after a restart there are no
    /// readers, so pending pages are free too.
    pub(crate) fn persisted_ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.free.iter().copied().collect();
        ids.extend(self.pending.values().flatten().copied());
        ids.sort_unstable();
        ids
    }

    pub(crate) fn pending_pages(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u64>) -> BTreeSet<u64> {
        ids.into_iter().collect()
    }

    #[test]
    fn freed_pages_wait_for_readers_of_older_versions() {
        let mut a = Allocator::new(BTreeSet::new(), 2);
        a.begin(1, 0);
        let p = a.alloc_run(1);
        assert_eq!(p, 2);
        a.begin(2, 1);
        a.free(p, 1);
        assert!(a.free.is_empty(), "txn 2 freed a committed page: pending");
        a.begin(3, 1); // a reader still holds version 1
        assert!(a.free.is_empty());
        a.begin(3, 2);
        assert!(a.free.contains(&p));
    }

    #[test]
    fn provisional_ids_are_never_real_and_freeing_them_is_nothing() {
        let mut a = Allocator::new(set([5, 6]), 10);
        a.begin(4, 3);
        let x = a.alloc(1);
        let y = a.alloc(3);
        assert!(is_provisional(x) && is_provisional(y));
        assert_eq!(y, x + 1);
        assert_eq!(a.provisional_end(), x + 4);
        a.free(y, 3);
        assert_eq!(a.free, set([5, 6]));
        assert!(a.pending.is_empty());
        a.begin(5, 4);
        assert_eq!(a.alloc(1), PROVISIONAL_BASE, "each transaction starts over");
    }

    #[test]
    fn rollback_restores_the_allocator() {
        let mut a = Allocator::new(set([5, 6, 7]), 10);
        a.begin(4, 3);
        let r = a.alloc_run(2);
        assert_eq!(r, 5);
        let x = a.alloc_run(3);
        assert_eq!(x, 10);
        a.free(x, 3);
        a.free(2, 1);
        let placed = a.place_pages(4);
        assert_eq!(placed.len(), 4);
        a.rollback();
        assert_eq!(a.free, set([5, 6, 7]));
        assert_eq!(a.page_count, 10);
        assert!(a.pending.is_empty());
    }

    #[test]
    fn placement_takes_long_runs_and_leaves_a_few_holes_for_later() {
        // 1000 pages; holes at 100, 102, 104 (3 pages: under 1/16 of the
        // file) and a long run 200..240.
        let free = set([100, 102, 104].into_iter().chain(200..240));
        let mut a = Allocator::new(free, 1000);
        a.begin(2, 1);
        let ids = a.place_pages(50);
        let want: Vec<u64> = (200..240).chain(1000..1010).collect();
        assert_eq!(ids, want, "the long run, then the end of the file");
        assert_eq!(a.page_count, 1010);
        assert_eq!(a.free, set([100, 102, 104]));
    }

    #[test]
    fn placement_fills_holes_once_they_are_too_many() {
        // 64 pages; 10 scattered free pages are more than 1/16 of the file.
        let holes: Vec<u64> = (0..10).map(|i| 10 + 5 * i).collect();
        let mut a = Allocator::new(set(holes.iter().copied()), 64);
        a.begin(2, 1);
        let ids = a.place_pages(12);
        let mut want = holes.clone();
        want.extend([64, 65]);
        assert_eq!(ids, want);
        assert!(a.free.is_empty());
        assert_eq!(a.page_count, 66);
    }

    #[test]
    fn placed_pages_freed_in_the_same_transaction_are_free_at_once() {
        let mut a = Allocator::new(BTreeSet::new(), 2);
        a.begin(1, 0);
        let ids = a.place_pages(3);
        assert_eq!(ids, vec![2, 3, 4]);
        a.free(3, 1);
        assert!(a.free.contains(&3));
        assert!(a.pending.is_empty());
    }
}
