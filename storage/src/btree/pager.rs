//! Pages in and out: the verified read path with its page cache and the
//! versions readers hold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::alloc::is_provisional;
use super::disk::Disk;
use super::error::{BtreeError, Result};
use super::meta::Meta;
use super::node::{self, CachedPage};
use super::page::{self, Limits, PageHeader, PageKind, MAX_VALUE_BYTES, PAGE_HEADER_BYTES};

/// Multiplier of the page-id hash (2^64 / golden ratio, odd).
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// Hashes a page id in a few instructions (SipHash, the std default,
/// costs more than the rest of a cache hit). Folding the high half of the
/// product down keeps the low bits, which pick the bucket, dependent on
/// every bit of the id (ids within one stripe share their low bits).
#[derive(Default, Clone, Copy)]
pub(crate) struct PageIdHasher(u64);

impl Hasher for PageIdHasher {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(HASH_MUL);
        h ^ (h >> 32)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(HASH_MUL);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id;
    }
}

/// A map keyed by page id, hashed with [`PageIdHasher`].
pub(crate) type PageIdMap<V> = HashMap<u64, V, BuildHasherDefault<PageIdHasher>>;
/// A set of page ids, hashed with [`PageIdHasher`].
pub(crate) type PageIdSet = HashSet<u64, BuildHasherDefault<PageIdHasher>>;

/// Stripes of the page cache at most (a power of two); small caches have
/// fewer, so that each stripe still holds a useful number of pages.
const MAX_CACHE_STRIPES: usize = 16;
/// A cache is split into stripes of at least this many pages.
const MIN_STRIPE_PAGES: usize = 1024;

/// One cached page and its CLOCK reference bit.
struct Slot {
    page: CachedPage,
    referenced: bool,
}

/// One stripe of the cache: the pages whose id falls in it, evicted by
/// CLOCK over `ring` (every cached id appears in `ring` exactly once).
///
/// Pages sit in a table indexed by page id (`id >> shift`), grown as ids
/// come: a lookup is one memory access where a hash map takes two (its
/// control bytes, then the bucket), and a point read makes one lookup per
/// level of the tree. The table costs 24 bytes per page id up to the
/// highest one cached: 0.6 % of the file at 4 KiB pages.
struct Stripe {
    slots: Vec<Option<Slot>>,
    shift: u32,
    ring: Vec<u64>,
    hand: usize,
    capacity_pages: usize,
    hits: u64,
    misses: u64,
}

impl Stripe {
    fn slot(&mut self, id: u64) -> Option<&mut Slot> {
        let i = usize::try_from(id >> self.shift).ok()?;
        self.slots.get_mut(i)?.as_mut()
    }

    fn get(&mut self, id: u64) -> Option<CachedPage> {
        let slot = self.slot(id)?;
        slot.referenced = true;
        let page = slot.page.clone();
        self.hits += 1;
        Some(page)
    }

    fn insert(&mut self, id: u64, page: CachedPage) {
        if is_provisional(id) {
            debug_assert!(false, "invariant: only placed pages are cached");
            return;
        }
        // Below 2^62 >> shift: fits a usize on a 64-bit target.
        let i = (id >> self.shift) as usize;
        if i >= self.slots.len() {
            let len = (i + 1).max(self.slots.len() * 2);
            self.slots.resize_with(len, || None);
        }
        if let Some(old) = self.slots[i].as_mut() {
            // A reused id (its old page is visible to no reader any more),
            // or two readers that missed on the same page at once.
            old.page = page;
            return;
        }
        self.slots[i] = Some(Slot {
            page,
            referenced: false,
        });
        if self.ring.len() < self.capacity_pages {
            self.ring.push(id);
            return;
        }
        // Bounded: two sweeps clear every reference bit.
        for _ in 0..2 * self.ring.len() {
            let h = self.hand;
            self.hand = (self.hand + 1) % self.ring.len();
            let victim = self.ring[h];
            match self.slot(victim) {
                Some(s) if s.referenced => s.referenced = false,
                _ => {
                    self.slots[(victim >> self.shift) as usize] = None;
                    self.ring[h] = id;
                    return;
                }
            }
        }
        panic!("invariant: a CLOCK sweep finds a victim within two rounds");
    }
}

/// A CLOCK cache of verified node pages, bounded by a page count, split
/// into stripes by page id so that concurrent readers rarely wait on one
/// lock. Overflow and freelist runs bypass it (one large value would evict
/// a whole working set).
pub(crate) struct PageCache {
    stripes: Box<[Mutex<Stripe>]>,
}

impl PageCache {
    pub(crate) fn new(capacity_pages: usize) -> PageCache {
        let capacity_pages = capacity_pages.max(1);
        // A power of two (the stripe is picked by masking the id).
        let n = 1usize
            << (capacity_pages / MIN_STRIPE_PAGES)
                .clamp(1, MAX_CACHE_STRIPES)
                .ilog2();
        let stripes = (0..n)
            .map(|i| {
                // The first `capacity % n` stripes take one page more.
                let cap = capacity_pages / n + usize::from(i < capacity_pages % n);
                Mutex::new(Stripe {
                    slots: Vec::new(),
                    shift: n.ilog2(),
                    ring: Vec::new(),
                    hand: 0,
                    capacity_pages: cap.max(1),
                    hits: 0,
                    misses: 0,
                })
            })
            .collect();
        PageCache { stripes }
    }

    fn stripe(&self, id: u64) -> MutexGuard<'_, Stripe> {
        // The stripe count is a power of two.
        let i = (id as usize) & (self.stripes.len() - 1);
        self.stripes[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached page `id` (counted as a hit), if present.
    pub(crate) fn get(&self, id: u64) -> Option<CachedPage> {
        self.stripe(id).get(id)
    }

    /// The cached page `id` (counted as a hit), if present, made the first
    /// candidate for eviction.
    pub(crate) fn get_superseded(&self, id: u64) -> Option<CachedPage> {
        let mut s = self.stripe(id);
        let p = s.get(id)?;
        if let Some(slot) = s.slot(id) {
            slot.referenced = false;
        }
        Some(p)
    }

    /// Counts a read of page `id` from the disk that is not cached.
    pub(crate) fn count_miss(&self, id: u64) {
        self.stripe(id).misses += 1;
    }

    /// Caches page `id`, replacing what the id held before; `missed`:
    /// count it as a miss (a read from the disk).
    pub(crate) fn insert(&self, id: u64, page: CachedPage, missed: bool) {
        let mut s = self.stripe(id);
        s.misses += u64::from(missed);
        s.insert(id, page);
    }

    /// (hits, misses) since open.
    pub(crate) fn counters(&self) -> (u64, u64) {
        self.stripes.iter().fold((0, 0), |(h, m), s| {
            let s = s.lock().unwrap_or_else(|e| e.into_inner());
            (h + s.hits, m + s.misses)
        })
    }

    /// Pages cached now (for tests).
    #[cfg(test)]
    fn len_pages(&self) -> usize {
        self.stripes
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(|e| e.into_inner());
                s.slots.iter().filter(|x| x.is_some()).count()
            })
            .sum()
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
    pub cache: PageCache,
    pub versions: Mutex<Versions>,
}

impl Shared {
    pub(crate) fn versions(&self) -> MutexGuard<'_, Versions> {
        self.versions.lock().unwrap_or_else(|e| e.into_inner())
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
    pub(crate) fn node(&self, id: u64) -> Result<CachedPage> {
        if let Some(p) = self.cache.get(id) {
            return Ok(p);
        }
        let p = self.read_node(id)?;
        self.cache.insert(id, p.clone(), true);
        Ok(p)
    }

    /// Node page `id` for the writer to copy (copy-on-write): it is about
    /// to be superseded, so a miss does not put it into the cache and a hit
    /// loses its reference bit (CLOCK evicts it first, unless a reader of
    /// an older version still uses it). Caching it would evict live pages.
    pub(crate) fn node_for_copy(&self, id: u64) -> Result<CachedPage> {
        if let Some(p) = self.cache.get_superseded(id) {
            return Ok(p);
        }
        self.cache.count_miss(id);
        self.read_node(id)
    }

    /// Reads node page `id` from the disk and checks it (checksum seeded
    /// with the id, kind, structure), reading into the allocation the
    /// cache will hold.
    pub(crate) fn read_node(&self, id: u64) -> Result<CachedPage> {
        if id < 2 {
            return Err(self.corrupt(id, "tree points at a meta page"));
        }
        let mut bytes = vec![0u8; self.limits.page_size];
        let buf = &mut bytes[..];
        self.read(id, buf)?;
        let kind = match page::header(buf).and_then(|h| PageKind::from_u8(h.kind)) {
            Some(k @ (PageKind::Leaf | PageKind::Branch)) => k,
            _ => PageKind::Leaf, // let verify name the mismatch
        };
        let h = page::verify(buf, id, kind).map_err(|r| self.corrupt(id, r))?;
        let count = h.count.get() as usize;
        node::validate(buf, kind, count).map_err(|r| self.corrupt(id, r))?;
        Ok(CachedPage::new(&bytes))
    }

    /// Puts a page the writer just wrote into the cache (its id may have
    /// held an older page that no reader can see any more).
    pub(crate) fn cache_written(&self, id: u64, page: CachedPage) {
        self.cache.insert(id, page, false);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::page::KIND_OFFSET;

    fn leaf_page() -> CachedPage {
        let mut b = vec![0u8; 512];
        b[KIND_OFFSET] = PageKind::Leaf as u8;
        CachedPage::new(&b)
    }

    #[test]
    fn cache_holds_at_most_its_capacity_over_every_stripe() {
        for capacity in [1, 7, 1024, 5000, 40_000] {
            let c = PageCache::new(capacity);
            for id in 0..3 * capacity as u64 {
                c.insert(id, leaf_page(), true);
            }
            assert_eq!(c.len_pages(), capacity, "capacity {capacity}");
            assert_eq!(c.counters(), (0, 3 * capacity as u64));
        }
    }

    #[test]
    fn clock_keeps_a_referenced_page_over_an_unreferenced_one() {
        let c = PageCache::new(4);
        for id in 0..4 {
            c.insert(id, leaf_page(), true);
        }
        assert!(c.get(2).is_some());
        c.insert(10, leaf_page(), true); // evicts 0: not referenced
        c.insert(11, leaf_page(), true); // evicts 1
        c.insert(12, leaf_page(), true); // 2 loses its bit, 3 goes
        assert!(c.get(2).is_some(), "the referenced page stays");
        assert!(c.get(0).is_none() && c.get(1).is_none() && c.get(3).is_none());
        for id in [10, 11, 12] {
            assert!(c.get(id).is_some());
        }
        assert!(c.get_superseded(2).is_some());
        c.insert(13, leaf_page(), true);
        assert!(c.get(2).is_none(), "a superseded page goes first");
        assert!([10, 11, 12, 13].iter().all(|&id| c.get(id).is_some()));
    }
}
