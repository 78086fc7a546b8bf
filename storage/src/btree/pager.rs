//! Pages in and out: the verified read path with its page cache, the
//! versions readers hold, and the allocator with its freelist.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::disk::Disk;
use super::error::{BtreeError, Result};
use super::meta::Meta;
use super::node::{self, CachedPage};
use super::page::{self, Limits, PageHeader, PageKind, MAX_VALUE_BYTES, PAGE_HEADER_BYTES};

/// A CLOCK cache of verified node pages, bounded by a page count.
/// Overflow and freelist runs bypass it (one large value would evict a
/// whole working set).
pub(crate) struct PageCache {
    slots: Vec<Option<(u64, Arc<CachedPage>, bool)>>,
    map: HashMap<u64, usize>,
    hand: usize,
    capacity_pages: usize,
    pub hits: u64,
    pub misses: u64,
}

impl PageCache {
    pub(crate) fn new(capacity_pages: usize) -> PageCache {
        PageCache {
            slots: Vec::new(),
            map: HashMap::new(),
            hand: 0,
            capacity_pages: capacity_pages.max(1),
            hits: 0,
            misses: 0,
        }
    }

    fn get(&mut self, id: u64) -> Option<Arc<CachedPage>> {
        let i = *self.map.get(&id)?;
        let slot = self.slots[i].as_mut()?;
        slot.2 = true;
        Some(slot.1.clone())
    }

    fn insert(&mut self, id: u64, page: Arc<CachedPage>) {
        if let Some(&i) = self.map.get(&id) {
            self.slots[i] = Some((id, page, true));
            return;
        }
        let i = if self.slots.len() < self.capacity_pages {
            self.slots.push(None);
            self.slots.len() - 1
        } else {
            // Bounded: two sweeps clear every reference bit.
            let mut victim = self.hand;
            for _ in 0..2 * self.slots.len() {
                let h = self.hand;
                self.hand = (self.hand + 1) % self.slots.len();
                match &mut self.slots[h] {
                    Some((_, _, referenced)) if *referenced => *referenced = false,
                    _ => {
                        victim = h;
                        break;
                    }
                }
            }
            if let Some((old, _, _)) = self.slots[victim].take() {
                self.map.remove(&old);
            }
            victim
        };
        self.slots[i] = Some((id, page, false));
        self.map.insert(id, i);
    }
}

/// The committed version and the versions open readers hold.
pub(crate) struct Versions {
    pub meta: Meta,
    /// Open read transactions: version (txn id) -> count.
    pub readers: BTreeMap<u64, usize>,
    /// Set when a commit failed part way; every later call fails.
    pub poisoned: bool,
}

impl Versions {
    /// The oldest version any reader can see (the committed one if none).
    pub(crate) fn oldest_visible(&self) -> u64 {
        self.readers
            .keys()
            .next()
            .copied()
            .unwrap_or(self.meta.txn_id)
    }
}

/// What readers and the writer share.
pub(crate) struct Shared {
    pub disk: Box<dyn Disk>,
    pub name: String,
    pub limits: Limits,
    pub cache: Mutex<PageCache>,
    pub versions: Mutex<Versions>,
}

impl Shared {
    pub(crate) fn versions(&self) -> MutexGuard<'_, Versions> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn cache(&self) -> MutexGuard<'_, PageCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn corrupt(&self, page: u64, reason: impl Into<String>) -> BtreeError {
        BtreeError::corrupt(self.name.clone(), page, reason)
    }

    fn read(&self, id: u64, buf: &mut [u8]) -> Result<()> {
        let offset = id * self.limits.page_size as u64;
        self.disk
            .read_at(offset, buf)
            .map_err(|e| BtreeError::io("reading page", self.name.clone(), offset, e))
    }

    /// A verified branch or leaf page, from the cache or the disk.
    pub(crate) fn node(&self, id: u64) -> Result<Arc<CachedPage>> {
        {
            let mut c = self.cache();
            if let Some(p) = c.get(id) {
                c.hits += 1;
                return Ok(p);
            }
        }
        if id < 2 {
            return Err(self.corrupt(id, "tree points at a meta page"));
        }
        let mut buf = vec![0u8; self.limits.page_size].into_boxed_slice();
        self.read(id, &mut buf)?;
        let kind = match page::header(&buf).and_then(|h| PageKind::from_u8(h.kind)) {
            Some(k @ (PageKind::Leaf | PageKind::Branch)) => k,
            _ => PageKind::Leaf, // let verify name the mismatch
        };
        let h = page::verify(&buf, id, kind).map_err(|r| self.corrupt(id, r))?;
        let count = h.count.get() as usize;
        node::validate(&buf, kind, count).map_err(|r| self.corrupt(id, r))?;
        let p = Arc::new(CachedPage {
            bytes: buf,
            kind,
            count,
        });
        let mut c = self.cache();
        c.misses += 1;
        c.insert(id, p.clone());
        Ok(p)
    }

    /// Puts a page the writer just wrote into the cache (its id may have
    /// held an older page that no reader can see any more).
    pub(crate) fn cache_written(&self, id: u64, page: CachedPage) {
        self.cache().insert(id, Arc::new(page));
    }

    /// A verified overflow or freelist run, read whole, uncached.
    pub(crate) fn run(&self, id: u64, kind: PageKind) -> Result<(PageHeader, Vec<u8>)> {
        let ps = self.limits.page_size;
        if id < 2 {
            return Err(self.corrupt(id, "run points at a meta page"));
        }
        let mut first = vec![0u8; ps];
        self.read(id, &mut first)?;
        let h = page::header(&first).ok_or_else(|| self.corrupt(id, "short page"))?;
        let max_run_pages = (MAX_VALUE_BYTES + PAGE_HEADER_BYTES).div_ceil(ps) as u32 + 1;
        let n = h.run_pages.get();
        if n == 0 || n > max_run_pages {
            let c = page::verify(&first, id, kind).err();
            return Err(self.corrupt(id, c.unwrap_or_else(|| format!("run of {n} pages"))));
        }
        let mut buf = first;
        if n > 1 {
            buf.resize(n as usize * ps, 0);
            self.read(id + 1, &mut buf[ps..])?;
        }
        let h = page::verify(&buf, id, kind).map_err(|r| self.corrupt(id, r))?;
        Ok((h, buf))
    }
}

/// Page allocation for the single writer, with the undo log that lets a
/// dropped write transaction leave no trace.
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
    /// Pages allocated by this transaction: freeing one is immediate.
    fresh: HashSet<u64>,
}

impl Allocator {
    pub(crate) fn new(free: BTreeSet<u64>, page_count: u64) -> Allocator {
        Allocator {
            free,
            page_count,
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
    }

    /// Allocates a run of `n` contiguous pages; returns the first id.
    pub(crate) fn alloc(&mut self, n: u32) -> u64 {
        let n = u64::from(n.max(1));
        let start = self.find_free_run(n).unwrap_or_else(|| {
            let s = self.page_count;
            self.page_count += n;
            s
        });
        for id in start..start + n {
            if self.free.remove(&id) {
                self.taken.push(id);
            }
            self.fresh.insert(id);
        }
        start
    }

    fn find_free_run(&self, n: u64) -> Option<u64> {
        let (mut start, mut len) = (0u64, 0u64);
        for &id in &self.free {
            if len > 0 && id == start + len {
                len += 1;
            } else {
                start = id;
                len = 1;
            }
            if len == n {
                return Some(start);
            }
        }
        None
    }

    /// Frees a run: at once if this transaction allocated it, else once no
    /// reader can see it.
    pub(crate) fn free(&mut self, start: u64, n: u32) {
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

    #[test]
    fn freed_pages_wait_for_readers_of_older_versions() {
        let mut a = Allocator::new(BTreeSet::new(), 2);
        a.begin(1, 0);
        let p = a.alloc(1);
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
    fn rollback_restores_the_allocator() {
        let mut a = Allocator::new([5u64, 6, 7].into_iter().collect(), 10);
        a.begin(4, 3);
        let r = a.alloc(2);
        assert_eq!(r, 5);
        let x = a.alloc(3);
        assert_eq!(x, 10);
        a.free(x, 3);
        a.free(2, 1);
        a.rollback();
        assert_eq!(a.free, [5u64, 6, 7].into_iter().collect());
        assert_eq!(a.page_count, 10);
        assert!(a.pending.is_empty());
    }
}
