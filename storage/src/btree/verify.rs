//! Whole-file verification of the last committed version: every reachable
//! page is read (bypassing the page cache), checked, and accounted for.
//!
//! Checks, each failing as [`BtreeError::Corrupt`] naming a page:
//!
//! * every page: checksum, id, kind, node structure (the read path's own
//!   checks), overflow and freelist runs as a whole, and a header txn id
//!   not after the version (a page reused by a later commit, e.g. under a
//!   read-only open of a live file, still passes its checksum);
//! * every reference (tree child, keyspace root, overflow run, freelist id)
//!   lies in `2..page_count` — named: the page holding the reference;
//! * keys strictly ascend inside a node and lie within the bounds its
//!   parent's separators give it; every leaf of a tree is at one depth;
//! * no page is reachable twice, and none is both reachable and free;
//! * every page below `page_count` is either reachable or free (a page that
//!   is neither has leaked) — named: the first such page.
//!
//! Time is O(file); memory is two bitmaps of `page_count` bits plus the
//! walk's stack, which holds at most one page's separators per level.

use super::error::{BtreeError, Result};
use super::meta::Meta;
use super::node::{NodeRef, ValueRef};
use super::page::{self, PageHeader, PageKind, MAX_VALUE_BYTES, PAGE_HEADER_BYTES};
use super::pager::Shared;
use super::Db;

/// Deeper than this is a cycle or garbage: a tree of `2^64` pages with at
/// least two children per branch is not that deep.
const MAX_DEPTH: u32 = 64;

/// What [`Db::verify`] found in a healthy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// The version verified (txn id of the last commit).
    pub txn_id: u64,
    /// Page size of the file.
    pub page_size_bytes: u32,
    /// Pages ever allocated (the meta's high-water mark).
    pub page_count: u64,
    /// Pages reachable from the version: both metas, the root tree, every
    /// keyspace's tree and overflow runs, the freelist run.
    pub reachable_pages: u64,
    /// Pages the freelist lists (`reachable_pages + free_pages ==
    /// page_count`).
    pub free_pages: u64,
    /// Every keyspace, sorted by name.
    pub keyspaces: Vec<KeyspaceReport>,
}

/// One keyspace in a [`VerifyReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyspaceReport {
    /// The keyspace name.
    pub name: String,
    /// Entries (keys).
    pub entries: u64,
    /// Pages of its tree, overflow runs included.
    pub pages: u64,
    /// Sum of key lengths.
    pub key_bytes: u64,
    /// Sum of value lengths (overflow values included).
    pub value_bytes: u64,
}

impl Db {
    /// Reads and checks every page reachable from the last committed
    /// version (see the module docs of `verify` for the list of checks).
    /// Runs alongside readers and the writer: it holds a read transaction,
    /// so the version it walks stays intact. Any failure is
    /// [`BtreeError::Corrupt`] naming the page.
    pub fn verify(&self) -> Result<VerifyReport> {
        let r = self.begin_read()?;
        verify_version(r.shared(), r.meta())
    }
}

/// One bit per page id below `page_count`.
struct Bitmap {
    words: Vec<u64>,
}

impl Bitmap {
    fn new(bits: u64) -> Bitmap {
        Bitmap {
            words: vec![0; bits.div_ceil(64) as usize],
        }
    }
    fn get(&self, i: u64) -> bool {
        self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
    /// Sets bit `i`; returns whether it was set already.
    fn test_and_set(&mut self, i: u64) -> bool {
        let w = &mut self.words[(i / 64) as usize];
        let was = *w & (1 << (i % 64)) != 0;
        *w |= 1 << (i % 64);
        was
    }
}

/// Totals of one tree.
#[derive(Default)]
struct Totals {
    entries: u64,
    pages: u64,
    key_bytes: u64,
    value_bytes: u64,
}

/// A node still to visit, with the key bounds its parent gives it.
struct Todo {
    id: u64,
    /// The page holding the reference (for out-of-range errors).
    referrer: u64,
    depth: u32,
    /// Every key under it is `>= lo` (None: no lower bound).
    lo: Option<Vec<u8>>,
    /// Every key under it is `< hi` (None: no upper bound).
    hi: Option<Vec<u8>>,
}

struct Walk<'a> {
    shared: &'a Shared,
    meta: Meta,
    reachable: Bitmap,
    reachable_pages: u64,
}

fn verify_version(shared: &Shared, meta: Meta) -> Result<VerifyReport> {
    let mut w = Walk {
        shared,
        meta,
        reachable: Bitmap::new(meta.page_count),
        reachable_pages: 0,
    };
    w.mark(0, meta.slot())?;
    w.mark(1, meta.slot())?;
    let mut names = Vec::new();
    w.tree(meta.root_page, meta.slot(), Some(&mut names))?;
    let mut keyspaces = Vec::with_capacity(names.len());
    for (name, root, leaf) in names {
        let t = w.tree(root, leaf, None)?;
        keyspaces.push(KeyspaceReport {
            name: String::from_utf8_lossy(&name).into_owned(),
            entries: t.entries,
            pages: t.pages,
            key_bytes: t.key_bytes,
            value_bytes: t.value_bytes,
        });
    }
    let free = w.freelist()?;
    let free_pages = w.check_free(&free)?;
    Ok(VerifyReport {
        txn_id: meta.txn_id,
        page_size_bytes: meta.page_size,
        page_count: meta.page_count,
        reachable_pages: w.reachable_pages,
        free_pages,
        keyspaces,
    })
}

/// `(keyspace name, its root page, the root-tree leaf naming it)`.
type KeyspaceRoots = Vec<(Vec<u8>, u64, u64)>;

impl Walk<'_> {
    fn corrupt(&self, page: u64, reason: impl Into<String>) -> BtreeError {
        BtreeError::corrupt(self.shared.name.clone(), page, reason)
    }

    /// A reference held by page `referrer` must name a data page.
    fn check_ref(&self, id: u64, referrer: u64) -> Result<()> {
        if id < 2 || id >= self.meta.page_count {
            let why = format!(
                "points at page {id}, outside the data pages 2..{}",
                self.meta.page_count
            );
            return Err(self.corrupt(referrer, why));
        }
        Ok(())
    }

    /// Counts page `id` as reachable; reaching it twice is corruption.
    fn mark(&mut self, id: u64, referrer: u64) -> Result<()> {
        if self.reachable.test_and_set(id) {
            let why = format!("page is reachable twice (again from page {referrer})");
            return Err(self.corrupt(id, why));
        }
        self.reachable_pages += 1;
        Ok(())
    }

    fn read(&self, id: u64, buf: &mut [u8]) -> Result<()> {
        let offset = id * self.shared.limits.page_size as u64;
        self.shared
            .disk
            .read_at(offset, buf)
            .map_err(|e| BtreeError::io("reading page", self.shared.name.clone(), offset, e))
    }

    /// Reads and checks a node page, uncached.
    fn node(&self, id: u64) -> Result<NodeRef<'static>> {
        let p = self.shared.read_node(id)?;
        let h = page::header(p.bytes())
            .unwrap_or_else(|| panic!("invariant: a verified page holds its header"));
        self.check_txn(id, &h)?;
        Ok(NodeRef::Page(p))
    }

    /// Reads, checks and marks a run (overflow or freelist) that page
    /// `referrer` points at; `expect_pages` is the length the referrer
    /// implies.
    fn run(
        &mut self,
        id: u64,
        kind: PageKind,
        referrer: u64,
        expect_pages: u32,
    ) -> Result<(PageHeader, Vec<u8>)> {
        self.check_ref(id, referrer)?;
        let ps = self.shared.limits.page_size;
        let mut buf = vec![0u8; ps];
        self.read(id, &mut buf)?;
        let h = page::header(&buf).ok_or_else(|| self.corrupt(id, "short page"))?;
        let n = h.run_pages.get();
        if n != expect_pages || id + u64::from(n) > self.meta.page_count {
            // A damaged first page is the likelier story: say so if it is.
            let why = page::verify(&buf, id, kind).err().unwrap_or_else(|| {
                format!(
                    "run of {n} pages where {expect_pages} were expected \
                     (page_count {})",
                    self.meta.page_count
                )
            });
            return Err(self.corrupt(id, why));
        }
        for p in id..id + u64::from(n) {
            self.mark(p, referrer)?;
        }
        buf.resize(n as usize * ps, 0);
        if n > 1 {
            self.read(id + 1, &mut buf[ps..])?;
        }
        let h = page::verify(&buf, id, kind).map_err(|r| self.corrupt(id, r))?;
        self.check_txn(id, &h)?;
        Ok((h, buf))
    }

    /// A page reachable from version `T` was written by a txn `<= T`.
    fn check_txn(&self, id: u64, h: &PageHeader) -> Result<()> {
        let t = h.txn_id.get();
        if t > self.meta.txn_id {
            let why = format!(
                "page written by txn {t}, after the version {} that reaches it",
                self.meta.txn_id
            );
            return Err(self.corrupt(id, why));
        }
        Ok(())
    }

    /// Walks the tree at `root` (0: empty), referenced by page `referrer`.
    /// The root tree passes `names` to collect the keyspace roots.
    fn tree(
        &mut self,
        root: u64,
        referrer: u64,
        mut names: Option<&mut KeyspaceRoots>,
    ) -> Result<Totals> {
        let mut t = Totals::default();
        if root == 0 {
            return Ok(t);
        }
        let mut leaf_depth = None;
        let mut stack = vec![Todo {
            id: root,
            referrer,
            depth: 0,
            lo: None,
            hi: None,
        }];
        while let Some(todo) = stack.pop() {
            self.check_ref(todo.id, todo.referrer)?;
            self.mark(todo.id, todo.referrer)?;
            t.pages += 1;
            let n = self.node(todo.id)?;
            self.check_keys(&n, &todo)?;
            if !n.is_leaf() {
                if todo.depth + 1 >= MAX_DEPTH {
                    return Err(self.corrupt(todo.id, "tree deeper than 64 levels"));
                }
                push_children(&n, &todo, &mut stack);
                continue;
            }
            let d = *leaf_depth.get_or_insert(todo.depth);
            if d != todo.depth {
                let why = format!(
                    "leaf at depth {}, other leaves of the tree at depth {d}",
                    todo.depth
                );
                return Err(self.corrupt(todo.id, why));
            }
            for i in 0..n.len() {
                t.entries += 1;
                t.key_bytes += n.key(i).len() as u64;
                let len = self.value(todo.id, n.value(i), &mut t)?;
                t.value_bytes += len;
                if let Some(names) = names.as_deref_mut() {
                    let root = self.keyspace_root(todo.id, n.value(i))?;
                    names.push((n.key(i).to_vec(), root, todo.id));
                }
            }
        }
        Ok(t)
    }

    /// Checks an overflow value of leaf `leaf`; returns the value length.
    fn value(&mut self, leaf: u64, v: ValueRef<'_>, t: &mut Totals) -> Result<u64> {
        let (page, len) = match v {
            ValueRef::Inline(b) => return Ok(b.len() as u64),
            ValueRef::Overflow { page, len } => (page, len),
        };
        if len as usize > MAX_VALUE_BYTES {
            let why = format!("overflow value of {len} bytes exceeds the maximum");
            return Err(self.corrupt(leaf, why));
        }
        let pages = self.shared.limits.overflow_pages(len as usize);
        let (h, _) = self.run(page, PageKind::Overflow, leaf, pages)?;
        if h.count.get() != len {
            let why = format!(
                "overflow run holds {} bytes, leaf {leaf} says {len}",
                h.count.get()
            );
            return Err(self.corrupt(page, why));
        }
        t.pages += u64::from(pages);
        Ok(u64::from(len))
    }

    /// A root-tree value: the 8-byte root page of a keyspace (0: empty).
    fn keyspace_root(&self, leaf: u64, v: ValueRef<'_>) -> Result<u64> {
        let b: [u8; 8] = match v {
            ValueRef::Inline(b) => b.try_into().ok(),
            ValueRef::Overflow { .. } => None,
        }
        .ok_or_else(|| self.corrupt(leaf, "keyspace root is not 8 inline bytes"))?;
        Ok(u64::from_le_bytes(b))
    }

    /// Keys strictly ascend and stay within `[lo, hi)`. A branch's entry 0
    /// key stands for `lo` and is not compared.
    fn check_keys(&self, n: &NodeRef<'_>, todo: &Todo) -> Result<()> {
        let first = if n.is_leaf() { 0 } else { 1 };
        for i in first..n.len() {
            let k = n.key(i);
            let ascending = i == first || n.key(i - 1) < k;
            let above_lo = todo.lo.as_deref().is_none_or(|lo| k >= lo);
            let below_hi = todo.hi.as_deref().is_none_or(|hi| k < hi);
            if !(ascending && above_lo && below_hi) {
                let why = if ascending {
                    format!("key {i} lies outside the bounds its parent gives")
                } else {
                    format!("key {i} does not ascend")
                };
                return Err(self.corrupt(todo.id, why));
            }
        }
        Ok(())
    }

    /// Reads and marks the freelist run; returns the ids it lists.
    fn freelist(&mut self) -> Result<Vec<u64>> {
        let (id, pages) = (self.meta.freelist_page, self.meta.freelist_pages);
        if id == 0 {
            return Ok(Vec::new());
        }
        let (h, buf) = self.run(id, PageKind::Freelist, self.meta.slot(), pages)?;
        let n = h.count.get() as usize;
        let body = buf
            .get(PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + 8 * n)
            .ok_or_else(|| self.corrupt(id, "freelist overruns its run"))?;
        Ok(body
            .chunks_exact(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect())
    }

    /// Free ids are data pages, listed once, not reachable; together with
    /// the reachable pages they are every page. Returns the free count.
    fn check_free(&self, free: &[u64]) -> Result<u64> {
        let list = self.meta.freelist_page;
        let mut seen = Bitmap::new(self.meta.page_count);
        for &p in free {
            self.check_ref(p, list)?;
            if seen.test_and_set(p) {
                return Err(self.corrupt(list, format!("freelist lists page {p} twice")));
            }
            if self.reachable.get(p) {
                let why = format!("page is reachable and also free (freelist page {list})");
                return Err(self.corrupt(p, why));
            }
        }
        let accounted = self.reachable_pages + free.len() as u64;
        if accounted != self.meta.page_count {
            let leaked = (2..self.meta.page_count)
                .find(|&p| !self.reachable.get(p) && !seen.get(p))
                .unwrap_or(0);
            return Err(self.corrupt(leaked, "page is neither reachable nor free (leaked)"));
        }
        Ok(free.len() as u64)
    }
}

/// Pushes the children of a branch, last first (so they pop in key
/// order), each with the bounds its separators give it.
fn push_children(n: &NodeRef<'_>, todo: &Todo, stack: &mut Vec<Todo>) {
    let len = n.len();
    for i in (0..len).rev() {
        stack.push(Todo {
            id: n.child(i),
            referrer: todo.id,
            depth: todo.depth + 1,
            lo: if i == 0 {
                todo.lo.clone()
            } else {
                Some(n.key(i).to_vec())
            },
            hi: if i + 1 < len {
                Some(n.key(i + 1).to_vec())
            } else {
                todo.hi.clone()
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_reports_a_second_set() {
        let mut b = Bitmap::new(130);
        assert!(!b.test_and_set(129));
        assert!(b.test_and_set(129));
        assert!(b.get(129) && !b.get(128));
    }
}
