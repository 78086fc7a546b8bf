//! Read and write transactions, and the commit protocol.
//!
//! A [`ReadTxn`] pins the version that was committed when it began: it
//! registers its txn id with the shared [`Versions`](super::pager::Versions)
//! and the allocator keeps every page that version can reach until it ends.
//! A [`WriteTxn`] (one at a time: it borrows the `Db` mutably) edits a
//! private set of dirty nodes; commit writes them to fresh pages, syncs,
//! then writes and syncs the meta. Dropping it without commit leaves no
//! trace.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeBounds;
use std::sync::{Arc, MutexGuard, OnceLock};

use super::alloc::Allocator;
use super::cursor::{Cursor, Range};
use super::error::{BtreeError, Result};
use super::meta::Meta;
use super::node::{CachedPage, Node, ValueGuard, ValueRef};
use super::page::{self, PageKind, Seal, MAX_VALUE_BYTES, PAGE_HEADER_BYTES};
use super::pager::{PageIdMap, Shared};
use super::tree::{self, NodeSource, TreeWriter};

fn not_found(name: &str) -> BtreeError {
    BtreeError::KeyspaceNotFound {
        name: name.to_string(),
    }
}

/// The keyspace root a root-tree value names.
fn decode_root(shared: &Shared, meta_root: u64, v: ValueRef<'_>) -> Result<u64> {
    match v {
        ValueRef::Inline(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        }
        _ => Err(BtreeError::corrupt(
            shared.name.clone(),
            meta_root,
            "keyspace root is not 8 bytes",
        )),
    }
}

fn keyspace_root(src: &dyn NodeSource, shared: &Shared, root: u64, name: &str) -> Result<u64> {
    match tree::lookup(src, root, name.as_bytes(), |v| decode_root(shared, root, v))? {
        Some(r) => Ok(r),
        None => Err(not_found(name)),
    }
}

fn keyspace_names(src: &dyn NodeSource, root: u64) -> Result<BTreeSet<Vec<u8>>> {
    let mut c = Cursor::new(src, root);
    let mut out = BTreeSet::new();
    let mut e = c.first()?;
    while let Some((k, _)) = e {
        out.insert(k);
        e = c.next()?;
    }
    Ok(out)
}

/// A consistent, read-only version of the page file. Never blocks and is
/// never blocked by the writer; `Send + Sync`, so it can be handed to
/// another thread (a snapshot stream).
pub struct ReadTxn {
    shared: Arc<Shared>,
    meta: Meta,
    /// The first keyspace this transaction resolved and its root: the
    /// version never changes, so repeated reads of one keyspace (the
    /// common case) skip the root-tree lookup, without a lock.
    first_keyspace: OnceLock<(Box<str>, u64)>,
}

impl ReadTxn {
    pub(crate) fn begin(shared: Arc<Shared>) -> Result<ReadTxn> {
        let meta = {
            let mut v = shared.versions();
            if v.poisoned {
                return Err(BtreeError::Poisoned);
            }
            let meta = v.meta;
            *v.readers.entry(meta.txn_id).or_insert(0) += 1;
            meta
        };
        Ok(ReadTxn {
            shared,
            meta,
            first_keyspace: OnceLock::new(),
        })
    }

    /// The version (txn id of the commit) this transaction reads.
    pub fn txn_id(&self) -> u64 {
        self.meta.txn_id
    }

    /// What readers share (for whole-file walks: verify, compact copy).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The committed meta this transaction reads.
    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    fn root_of(&self, keyspace: &str) -> Result<u64> {
        if let Some((name, root)) = self.first_keyspace.get() {
            if **name == *keyspace {
                return Ok(*root);
            }
        }
        let root = keyspace_root(&*self.shared, &self.shared, self.meta.root_page, keyspace)?;
        let _first = self.first_keyspace.get_or_init(|| (keyspace.into(), root));
        Ok(root)
    }

    /// The value of `key` in `keyspace`.
    pub fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        tree::get(&*self.shared, self.root_of(keyspace)?, key)
    }

    /// The value of `key` in `keyspace`, borrowed from the page cache
    /// (no copy of an inline value; a value in an overflow run is read
    /// into memory). The guard keeps its page alive, not the version.
    pub fn get_ref(&self, keyspace: &str, key: &[u8]) -> Result<Option<ValueGuard>> {
        tree::get_guard(&self.shared, self.root_of(keyspace)?, key)
    }

    /// A cursor over `keyspace`.
    pub fn cursor(&self, keyspace: &str) -> Result<Cursor<'_>> {
        Ok(Cursor::new(&*self.shared, self.root_of(keyspace)?))
    }

    /// Entries of `keyspace` within `range`, ascending.
    pub fn range<R: RangeBounds<[u8]>>(&self, keyspace: &str, range: R) -> Result<Range<'_>> {
        Ok(Range::new(self.cursor(keyspace)?, range, false))
    }

    /// Entries of `keyspace` within `range`, descending.
    pub fn range_rev<R: RangeBounds<[u8]>>(&self, keyspace: &str, range: R) -> Result<Range<'_>> {
        Ok(Range::new(self.cursor(keyspace)?, range, true))
    }

    /// Calls `f` with every entry of `keyspace` in key order, borrowing
    /// the bytes from the page cache: the fast way to read a whole
    /// keyspace (one page lookup per page, no copy of inline values).
    /// Stops at the first error `f` returns.
    pub fn scan<E: From<BtreeError>>(
        &self,
        keyspace: &str,
        mut f: impl FnMut(&[u8], &[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let root = self.root_of(keyspace)?;
        tree::scan(&*self.shared, root, &mut f)
    }

    /// [`scan`](Self::scan) on up to `threads` threads, for reading a
    /// whole large keyspace at once (a restart): the keyspace is cut into
    /// runs of whole subtrees in key order, and each thread folds the
    /// entries of its run into its own `init()` with `f`. Returns the
    /// states in key order (none for an empty keyspace). Stops at the
    /// first error any `f` returns.
    pub fn scan_parallel<T, E>(
        &self,
        keyspace: &str,
        threads: usize,
        init: impl Fn() -> T + Sync,
        f: impl Fn(&mut T, &[u8], &[u8]) -> std::result::Result<(), E> + Sync,
    ) -> std::result::Result<Vec<T>, E>
    where
        T: Send,
        E: From<BtreeError> + Send,
    {
        let root = self.root_of(keyspace)?;
        let threads = threads.max(1);
        // Several subtrees per thread even out their sizes.
        let subtrees = tree::subtrees(&*self.shared, root, 8 * threads)?;
        let runs: Vec<&[u64]> = subtrees
            .chunks(subtrees.len().div_ceil(threads).max(1))
            .collect();
        let shared = &*self.shared;
        let fold = |run: &[u64]| -> std::result::Result<T, E> {
            let mut state = init();
            for &id in run {
                tree::scan(shared, id, &mut |k, v| f(&mut state, k, v))?;
            }
            Ok(state)
        };
        std::thread::scope(|s| {
            let Some((first, rest)) = runs.split_first() else {
                return Ok(Vec::new());
            };
            let others: Vec<_> = rest.iter().map(|run| s.spawn(|| fold(run))).collect();
            let mut out = vec![fold(first)?];
            for h in others {
                let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                out.push(r?);
            }
            Ok(out)
        })
    }

    /// Names of all keyspaces, sorted.
    pub fn keyspaces(&self) -> Result<Vec<String>> {
        let names = keyspace_names(&*self.shared, self.meta.root_page)?;
        Ok(names
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect())
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        let mut v = self.shared.versions();
        if let Some(c) = v.readers.get_mut(&self.meta.txn_id) {
            *c -= 1;
            if *c == 0 {
                v.readers.remove(&self.meta.txn_id);
            }
        }
    }
}

/// A keyspace the write transaction has touched.
#[derive(Clone, Copy, Debug)]
struct Keyspace {
    root: u64,
    exists: bool,
    /// Its entry in the root tree must be rewritten at commit.
    changed: bool,
}

/// The single write transaction. Sees its own writes; invisible to readers
/// until [`commit`](WriteTxn::commit) returns; dropped = aborted.
pub struct WriteTxn<'db> {
    w: TreeWriter<'db>,
    meta: Meta,
    grow_chunk_bytes: u64,
    keyspaces: BTreeMap<Vec<u8>, Keyspace>,
    done: bool,
}

impl<'db> WriteTxn<'db> {
    pub(crate) fn begin(
        shared: Arc<Shared>,
        mut alloc: MutexGuard<'db, Allocator>,
        grow_chunk_bytes: u64,
    ) -> Result<WriteTxn<'db>> {
        let (meta, oldest) = {
            let v = shared.versions();
            if v.poisoned {
                return Err(BtreeError::Poisoned);
            }
            (v.meta, v.oldest_visible())
        };
        alloc.begin(meta.txn_id + 1, oldest);
        Ok(WriteTxn {
            w: TreeWriter {
                shared,
                alloc,
                nodes: PageIdMap::default(),
                overflow: PageIdMap::default(),
            },
            meta,
            grow_chunk_bytes,
            keyspaces: BTreeMap::new(),
            done: false,
        })
    }

    /// The txn id this transaction commits as.
    pub fn txn_id(&self) -> u64 {
        self.meta.txn_id + 1
    }

    fn lookup(&self, keyspace: &str) -> Result<Keyspace> {
        if let Some(k) = self.keyspaces.get(keyspace.as_bytes()) {
            return Ok(*k);
        }
        let root = self.meta.root_page;
        let shared = &self.w.shared;
        match tree::lookup(&self.w, root, keyspace.as_bytes(), |v| {
            decode_root(shared, root, v)
        })? {
            Some(root) => Ok(Keyspace {
                root,
                exists: true,
                changed: false,
            }),
            None => Ok(Keyspace {
                root: 0,
                exists: false,
                changed: false,
            }),
        }
    }

    fn root_of(&self, keyspace: &str) -> Result<u64> {
        match self.lookup(keyspace)? {
            k if k.exists => Ok(k.root),
            _ => Err(not_found(keyspace)),
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        let max = self.w.shared.limits.max_key_bytes();
        if key.len() > max {
            return Err(BtreeError::KeyTooLarge {
                key_bytes: key.len(),
                max_key_bytes: max,
            });
        }
        Ok(())
    }

    /// Creates `keyspace` if missing; returns whether it was created.
    pub fn create_keyspace(&mut self, keyspace: &str) -> Result<bool> {
        self.check_key(keyspace.as_bytes())?;
        let k = self.lookup(keyspace)?;
        if k.exists {
            return Ok(false);
        }
        let k = Keyspace {
            root: 0,
            exists: true,
            changed: true,
        };
        self.keyspaces.insert(keyspace.as_bytes().to_vec(), k);
        Ok(true)
    }

    /// Deletes `keyspace` and frees its pages; returns whether it existed.
    pub fn delete_keyspace(&mut self, keyspace: &str) -> Result<bool> {
        let k = self.lookup(keyspace)?;
        if !k.exists {
            return Ok(false);
        }
        self.w.free_tree(k.root)?;
        let k = Keyspace {
            root: 0,
            exists: false,
            changed: true,
        };
        self.keyspaces.insert(keyspace.as_bytes().to_vec(), k);
        Ok(true)
    }

    /// Names of all keyspaces, sorted, including this transaction's changes.
    pub fn keyspaces(&self) -> Result<Vec<String>> {
        let mut names = keyspace_names(&self.w, self.meta.root_page)?;
        for (n, k) in &self.keyspaces {
            if k.exists {
                names.insert(n.clone());
            } else {
                names.remove(n);
            }
        }
        Ok(names
            .into_iter()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect())
    }

    /// Inserts or replaces `key`; returns whether it existed.
    pub fn put(&mut self, keyspace: &str, key: &[u8], value: &[u8]) -> Result<bool> {
        self.check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(BtreeError::ValueTooLarge {
                value_bytes: value.len(),
                max_value_bytes: MAX_VALUE_BYTES,
            });
        }
        let root = self.root_of(keyspace)?;
        let (root, existed) = self.w.insert(root, key, value)?;
        self.set_root(keyspace, root);
        Ok(existed)
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&mut self, keyspace: &str, key: &[u8]) -> Result<bool> {
        let root = self.root_of(keyspace)?;
        match self.w.remove(root, key)? {
            Some(root) => {
                self.set_root(keyspace, root);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn set_root(&mut self, keyspace: &str, root: u64) {
        let k = Keyspace {
            root,
            exists: true,
            changed: true,
        };
        // Every put sets the root: no allocation once the name is known.
        match self.keyspaces.get_mut(keyspace.as_bytes()) {
            Some(e) => *e = k,
            None => {
                self.keyspaces.insert(keyspace.as_bytes().to_vec(), k);
            }
        }
    }

    /// The value of `key` in `keyspace`, as this transaction sees it.
    pub fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        tree::get(&self.w, self.root_of(keyspace)?, key)
    }

    /// A cursor over `keyspace`, as this transaction sees it.
    pub fn cursor(&self, keyspace: &str) -> Result<Cursor<'_>> {
        Ok(Cursor::new(&self.w, self.root_of(keyspace)?))
    }

    /// Entries of `keyspace` within `range`, ascending.
    pub fn range<R: RangeBounds<[u8]>>(&self, keyspace: &str, range: R) -> Result<Range<'_>> {
        Ok(Range::new(self.cursor(keyspace)?, range, false))
    }

    /// Entries of `keyspace` within `range`, descending.
    pub fn range_rev<R: RangeBounds<[u8]>>(&self, keyspace: &str, range: R) -> Result<Range<'_>> {
        Ok(Range::new(self.cursor(keyspace)?, range, true))
    }

    /// Drops every change (same as dropping the transaction).
    pub fn abort(self) {}

    /// Makes the changes durable and visible; returns the new version's txn
    /// id. On error the file is unchanged or the commit is durable but was
    /// not acknowledged; the `Db` is poisoned either way (reopen it).
    pub fn commit(mut self) -> Result<u64> {
        let r = self.commit_inner();
        if r.is_err() {
            self.w.shared.versions().poisoned = true;
        }
        self.done = r.is_ok();
        r
    }

    fn commit_inner(&mut self) -> Result<u64> {
        let mut root = self.meta.root_page;
        let changed: Vec<(Vec<u8>, Keyspace)> = std::mem::take(&mut self.keyspaces)
            .into_iter()
            .filter(|(_, k)| k.changed)
            .collect();
        for (name, k) in &changed {
            if k.exists {
                root = self.w.insert(root, name, &k.root.to_le_bytes())?.0;
            } else if let Some(r) = self.w.remove(root, name)? {
                root = r;
            }
        }
        let placement = self.w.place();
        root = placement.real(root);
        // The root tree's values name keyspace roots by their provisional
        // ids: write the real ones over them. The path is dirty and the
        // values keep their size, so this edits in place and makes no page.
        let made = self.w.alloc.provisional_end();
        for (name, k) in changed.iter().filter(|(_, k)| k.exists) {
            let real = placement.real(k.root).to_le_bytes();
            root = self.w.insert(root, name, &real)?.0;
        }
        assert!(
            self.w.alloc.provisional_end() == made,
            "invariant: fixing keyspace roots after placement makes no page"
        );
        let (freelist_page, freelist_pages, freelist) = self.build_freelist();
        let meta = Meta {
            txn_id: self.meta.txn_id + 1,
            page_size: self.meta.page_size,
            root_page: root,
            freelist_page,
            freelist_pages,
            page_count: self.w.alloc.page_count,
        };
        let written = self.write_pages(&meta, freelist)?;
        let shared = &self.w.shared;
        let sync_err = |e| BtreeError::io("fdatasync", shared.name.clone(), 0, e);
        shared.disk.sync().map_err(sync_err)?;
        let slot_offset = meta.slot() * u64::from(meta.page_size);
        shared
            .disk
            .write_at(slot_offset, &meta.encode(meta.slot()))
            .map_err(|e| BtreeError::io("writing meta", shared.name.clone(), slot_offset, e))?;
        shared.disk.sync().map_err(sync_err)?;
        for (id, p) in written {
            shared.cache_written(id, p);
        }
        shared.versions().meta = meta;
        Ok(meta.txn_id)
    }

    /// Frees the old freelist run and allocates the new one. Allocation only
    /// removes ids, so the run sized before it is large enough after it.
    fn build_freelist(&mut self) -> (u64, u32, Vec<u64>) {
        if self.meta.freelist_page != 0 {
            self.w
                .alloc
                .free(self.meta.freelist_page, self.meta.freelist_pages);
        }
        let n = self.w.alloc.persisted_ids().len();
        if n == 0 {
            return (0, 0, Vec::new());
        }
        let pages = self.w.shared.limits.overflow_pages(8 * n);
        let start = self.w.alloc.alloc_run(pages);
        (start, pages, self.w.alloc.persisted_ids())
    }

    /// Encodes and writes every dirty page (grown file first), adjacent
    /// pages coalesced into one run, all runs in one `Disk::write_runs`,
    /// which hands the memory to encode into (the disk's own staging
    /// memory for io_uring). Returns the node pages for the cache.
    fn write_pages(&mut self, meta: &Meta, freelist: Vec<u64>) -> Result<Vec<(u64, CachedPage)>> {
        let ps = meta.page_size as usize;
        let shared = self.w.shared.clone();
        let mut dirty: Vec<(u64, u32, Dirty<'_>)> = Vec::with_capacity(self.w.nodes.len() + 1);
        dirty.extend(self.w.nodes.iter().map(|(&id, n)| (id, 1, Dirty::Node(n))));
        for (&id, v) in &self.w.overflow {
            let pages = shared.limits.overflow_pages(v.len());
            dirty.push((id, pages, Dirty::Overflow(v)));
        }
        if meta.freelist_page != 0 {
            let f = Dirty::Freelist(&freelist);
            dirty.push((meta.freelist_page, meta.freelist_pages, f));
        }
        dirty.sort_unstable_by_key(|d| d.0);
        // Runs of adjacent pages: (first page, dirty[from..to]) and where
        // each goes in the file.
        let mut runs: Vec<(u64, usize, usize)> = Vec::new();
        let mut io_runs: Vec<(u64, usize)> = Vec::new();
        let (mut i, mut prev_end) = (0, 2);
        while i < dirty.len() {
            let (start, mut end) = (dirty[i].0, dirty[i].0 + u64::from(dirty[i].1));
            assert!(
                start >= prev_end,
                "invariant: the pages of a commit do not overlap (page {start})"
            );
            let mut j = i + 1;
            while j < dirty.len() && dirty[j].0 == end {
                end += u64::from(dirty[j].1);
                j += 1;
            }
            runs.push((start, i, j));
            io_runs.push((start * ps as u64, (end - start) as usize * ps));
            (i, prev_end) = (j, end);
        }
        self.grow_for(meta.page_count * ps as u64)?;
        let mut cached = Vec::with_capacity(self.w.nodes.len());
        let mut encode = |all: &mut [u8]| {
            let mut at = 0;
            for (&(start, i, j), &(_, len)) in runs.iter().zip(&io_runs) {
                let run = &mut all[at..at + len];
                for &(id, pages, item) in &dirty[i..j] {
                    let from = (id - start) as usize * ps;
                    let buf = &mut run[from..from + pages as usize * ps];
                    encode_dirty(buf, id, pages, meta.txn_id, item);
                    if let Dirty::Node(_) = item {
                        cached.push((id, CachedPage::new(buf)));
                    }
                }
                at += len;
            }
        };
        // One call for the whole commit: a disk with a queue (io_uring)
        // keeps every run in flight at once.
        let first_offset = io_runs.first().map_or(0, |w| w.0);
        shared
            .disk
            .write_runs(&io_runs, &mut encode)
            .map_err(|e| BtreeError::io("writing pages", shared.name.clone(), first_offset, e))?;
        Ok(cached)
    }

    /// Grows the file in whole chunks of zeros to hold `needed_bytes`.
    fn grow_for(&self, needed_bytes: u64) -> Result<()> {
        let shared = &self.w.shared;
        let len = shared
            .disk
            .len_bytes()
            .map_err(|e| BtreeError::io("stat", shared.name.clone(), 0, e))?;
        if len >= needed_bytes {
            return Ok(());
        }
        let target = needed_bytes.div_ceil(self.grow_chunk_bytes) * self.grow_chunk_bytes;
        shared
            .disk
            .grow(target)
            .map_err(|e| BtreeError::io("growing file", shared.name.clone(), len, e))
    }
}

/// What one dirty page or run of a commit holds.
#[derive(Clone, Copy)]
enum Dirty<'a> {
    Node(&'a Node),
    Overflow(&'a [u8]),
    Freelist(&'a [u64]),
}

/// Encodes and seals `item` into `buf` (zeroed, `pages` pages long) as
/// page `id` of transaction `txn_id`.
fn encode_dirty(buf: &mut [u8], id: u64, pages: u32, txn_id: u64, item: Dirty<'_>) {
    let s = match item {
        Dirty::Node(n) => {
            n.encode(buf);
            seal(id, txn_id, n.kind(), 1, n.len() as u32)
        }
        Dirty::Overflow(v) => {
            buf[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + v.len()].copy_from_slice(v);
            seal(id, txn_id, PageKind::Overflow, pages, v.len() as u32)
        }
        Dirty::Freelist(ids) => {
            for (i, free) in ids.iter().enumerate() {
                let at = PAGE_HEADER_BYTES + 8 * i;
                buf[at..at + 8].copy_from_slice(&free.to_le_bytes());
            }
            seal(id, txn_id, PageKind::Freelist, pages, ids.len() as u32)
        }
    };
    page::seal(buf, s);
}

fn seal(page_id: u64, txn_id: u64, kind: PageKind, run_pages: u32, count: u32) -> Seal {
    Seal {
        page_id,
        txn_id,
        kind,
        run_pages,
        count,
    }
}

impl Drop for WriteTxn<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.w.alloc.rollback();
        }
    }
}
