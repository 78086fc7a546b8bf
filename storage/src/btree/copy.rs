//! Compact copy: the version a [`ReadTxn`] sees, written into a new page
//! file that is as small as practical (defragmentation, snapshots).
//!
//! The trees are bulk loaded bottom-up from the sorted iteration rather
//! than built by inserts: each leaf is filled up to the page capacity, and
//! each finished node adds one entry to the level above it, which fills the
//! same way. A level keeps one finished node back before writing it, so
//! that at the end the last node, if under a quarter full, can take entries
//! from the one before it (the tree's own underflow rule then holds for
//! every node but a lone root). Memory is two nodes per level plus a 1 MiB
//! write buffer (and one value being copied, up to 64 MiB).
//!
//! Page ids are handed out in the order pages are finished, so the file is
//! written front to back: overflow runs just before the leaf that points at
//! them, every node before its parent, the root tree last, then both metas.
//! The new file has no free pages, `page_count * page_size` bytes, and its
//! meta says txn 1 (slot 1); slot 0 holds the same tree as txn 0, so a
//! damaged slot 1 falls back to identical data, not to an empty file. Data
//! pages say txn 0: no page is from after either version.
//!
//! Creation is atomic as in `create_atomically`: written under
//! `<path>.tmp`, fdatasync, renamed into place, directory fsync. A crash
//! leaves no file at `path` or a complete one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::cursor::Cursor;
use super::error::{BtreeError, Result};
use super::meta::Meta;
use super::node::{self, Node, Value};
use super::page::{self, Limits, PageKind, Seal, PAGE_HEADER_BYTES};
use super::pager::Shared;
use super::txn::ReadTxn;
use super::{check_options, Db, Options};

/// The txn id of the copy's meta (slot 1).
const COPY_TXN_ID: u64 = 1;
/// The txn id in the copy's data pages: 0, not after either meta's version
/// (slot 0 holds the same tree as txn 0), as `Db::verify` checks.
const PAGE_TXN_ID: u64 = 0;
/// Finished pages are written in batches of about this many bytes.
const FLUSH_BYTES: usize = 1 << 20;

/// What [`ReadTxn::compact_to`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyStats {
    /// Entries copied, over all keyspaces.
    pub entries: u64,
    /// Keyspaces copied (empty ones included).
    pub keyspaces: u64,
    /// Pages of the new file, both metas included.
    pub page_count: u64,
    /// Length of the new file (`page_count * page_size`).
    pub file_len_bytes: u64,
}

impl Db {
    /// [`ReadTxn::compact_to`] of the last committed version.
    pub fn compact_to(&self, path: &Path, opts: Options) -> Result<CopyStats> {
        self.begin_read()?.compact_to(path, opts)
    }
}

impl ReadTxn {
    /// Writes the version this transaction sees, every keyspace and entry,
    /// into a new, compact page file at `path` with the page size of
    /// `opts` (bulk loaded: full leaves and branches, no free pages, no
    /// grow-chunk padding). `path` must not exist; the file appears
    /// complete or not at all. The writer may keep committing meanwhile.
    /// Fails with [`BtreeError::KeyTooLarge`] if a key does not fit the new
    /// page size.
    pub fn compact_to(&self, path: &Path, opts: Options) -> Result<CopyStats> {
        check_options(&opts)?;
        let io = |op: &'static str, p: &Path| {
            let name = p.display().to_string();
            move |e| BtreeError::io(op, name, 0, e)
        };
        if path.exists() {
            let e = io::Error::new(io::ErrorKind::AlreadyExists, "will not replace a file");
            return Err(io("compacting into", path)(e));
        }
        let mut tmp_name = path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        match std::fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing", &tmp)(e)),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io("creating", &tmp))?;
        let written = write_copy(self, &file, &tmp, &opts)
            .and_then(|s| file.sync_data().map_err(io("fdatasync", &tmp)).map(|_| s));
        drop(file);
        let stats = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        std::fs::rename(&tmp, path).map_err(io("renaming", &tmp))?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("syncing directory", dir))?;
        tracing::info!(
            path = %path.display(),
            txn_id = self.txn_id(),
            entries = stats.entries,
            keyspaces = stats.keyspaces,
            file_len_bytes = stats.file_len_bytes,
            "page file compacted into a new file"
        );
        Ok(stats)
    }
}

/// Copies every keyspace of `txn`'s version into `file` (empty, new).
fn write_copy(txn: &ReadTxn, file: &File, path: &Path, opts: &Options) -> Result<CopyStats> {
    let limits = Limits {
        page_size: opts.page_size_bytes as usize,
    };
    let shared: &Shared = txn.shared();
    let src = txn.meta();
    let mut w = PageWriter::new(file, path.display().to_string(), limits);
    let mut stats = CopyStats {
        entries: 0,
        keyspaces: 0,
        page_count: 0,
        file_len_bytes: 0,
    };
    let mut names = TreeBuilder::new(limits);
    let mut c = Cursor::new(shared, src.root_page);
    let mut e = c.first()?;
    while let Some((name, v)) = e {
        let b: [u8; 8] = v.as_slice().try_into().map_err(|_| {
            BtreeError::corrupt(
                shared.name.clone(),
                src.root_page,
                "keyspace root is not 8 bytes",
            )
        })?;
        let root = copy_tree(shared, u64::from_le_bytes(b), &mut w, &mut stats)?;
        check_key(&limits, &name)?;
        let root = Value::Inline(root.to_le_bytes().to_vec().into());
        names.push(&mut w, 0, Item::Leaf(name, root))?;
        stats.keyspaces += 1;
        e = c.next()?;
    }
    let root_page = names.finish(&mut w)?;
    w.flush()?;
    let meta = Meta {
        txn_id: COPY_TXN_ID,
        page_size: opts.page_size_bytes,
        root_page,
        freelist_page: 0,
        freelist_pages: 0,
        page_count: w.next_page,
    };
    let older = Meta { txn_id: 0, ..meta };
    w.write_at(0, &older.encode(0))?;
    w.write_at(u64::from(meta.page_size), &meta.encode(1))?;
    stats.page_count = meta.page_count;
    stats.file_len_bytes = meta.page_count * u64::from(meta.page_size);
    Ok(stats)
}

fn check_key(limits: &Limits, key: &[u8]) -> Result<()> {
    let max = limits.max_key_bytes();
    if key.len() > max {
        return Err(BtreeError::KeyTooLarge {
            key_bytes: key.len(),
            max_key_bytes: max,
        });
    }
    Ok(())
}

/// Bulk loads one keyspace's tree; returns its root (0: empty).
fn copy_tree(
    shared: &Shared,
    root: u64,
    w: &mut PageWriter<'_>,
    stats: &mut CopyStats,
) -> Result<u64> {
    let mut b = TreeBuilder::new(w.limits);
    let mut c = Cursor::new(shared, root);
    let mut e = c.first()?;
    while let Some((k, v)) = e {
        check_key(&w.limits, &k)?;
        let v = w.value(&k, v)?;
        b.push(w, 0, Item::Leaf(k, v))?;
        stats.entries += 1;
        e = c.next()?;
    }
    b.finish(w)
}

/// Hands out page ids in order and writes finished pages front to back.
struct PageWriter<'f> {
    file: &'f File,
    name: String,
    limits: Limits,
    /// The next id to hand out (0 and 1 are the metas).
    next_page: u64,
    /// Pages `buf_first_page..next_page`, sealed, not yet written.
    buf: Vec<u8>,
    buf_first_page: u64,
}

impl<'f> PageWriter<'f> {
    fn new(file: &'f File, name: String, limits: Limits) -> PageWriter<'f> {
        PageWriter {
            file,
            name,
            limits,
            next_page: 2,
            buf: Vec::with_capacity(FLUSH_BYTES + limits.page_size),
            buf_first_page: 2,
        }
    }

    /// Appends `pages` zeroed pages to the buffer; returns the first id and
    /// the run's bytes.
    fn take(&mut self, pages: u32) -> (u64, &mut [u8]) {
        let id = self.next_page;
        self.next_page += u64::from(pages);
        let at = self.buf.len();
        self.buf
            .resize(at + pages as usize * self.limits.page_size, 0);
        (id, &mut self.buf[at..])
    }

    fn node(&mut self, n: &Node) -> Result<u64> {
        let (id, page) = self.take(1);
        n.encode(page);
        let s = Seal {
            page_id: id,
            txn_id: PAGE_TXN_ID,
            kind: n.kind(),
            run_pages: 1,
            count: n.len() as u32,
        };
        page::seal(page, s);
        self.flush_if_full()?;
        Ok(id)
    }

    /// A leaf value as the tree's writer would store it: inline if the
    /// entry fits half a page, else in an overflow run written now.
    fn value(&mut self, key: &[u8], value: Vec<u8>) -> Result<Value> {
        let v = Value::Inline(value.into());
        if node::leaf_entry_bytes(key, &v) <= self.limits.max_entry_bytes() {
            return Ok(v);
        }
        let Value::Inline(value) = v else {
            unreachable!()
        };
        let pages = self.limits.overflow_pages(value.len());
        let (page, run) = self.take(pages);
        run[PAGE_HEADER_BYTES..PAGE_HEADER_BYTES + value.len()].copy_from_slice(&value);
        let s = Seal {
            page_id: page,
            txn_id: PAGE_TXN_ID,
            kind: PageKind::Overflow,
            run_pages: pages,
            count: value.len() as u32,
        };
        page::seal(run, s);
        self.flush_if_full()?;
        Ok(Value::Overflow {
            page,
            len: value.len() as u32,
        })
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let offset = self.buf_first_page * self.limits.page_size as u64;
        let buf = std::mem::take(&mut self.buf);
        self.write_at(offset, &buf)?;
        self.buf = buf;
        self.buf.clear();
        // A large overflow run grew the buffer: give that memory back.
        self.buf.shrink_to(FLUSH_BYTES + self.limits.page_size);
        self.buf_first_page = self.next_page;
        Ok(())
    }

    fn write_at(&self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all_at(bytes, offset)
            .map_err(|e| BtreeError::io("writing pages", self.name.clone(), offset, e))
    }
}

/// One entry for a level of the tree being built.
enum Item {
    Leaf(Vec<u8>, Value),
    Branch(Vec<u8>, u64),
}

impl Item {
    fn bytes(&self) -> usize {
        match self {
            Item::Leaf(k, v) => node::leaf_entry_bytes(k, v),
            Item::Branch(k, _) => node::branch_entry_bytes(k),
        }
    }
}

/// One level of the tree being built: the node filling up, and the full
/// node before it, kept back until the next one fills (see the module
/// docs).
struct Level {
    cur: Node,
    cur_bytes: usize,
    held: Option<Node>,
}

/// Builds one tree bottom-up from entries pushed in ascending key order.
struct TreeBuilder {
    levels: Vec<Level>,
    usable_bytes: usize,
    underflow_bytes: usize,
}

impl TreeBuilder {
    fn new(limits: Limits) -> TreeBuilder {
        TreeBuilder {
            levels: Vec::new(),
            usable_bytes: limits.usable_bytes(),
            underflow_bytes: limits.underflow_bytes(),
        }
    }

    /// Adds an entry at `level` (0: leaves); a node that cannot take it is
    /// full and becomes the held one, writing the one held before.
    fn push(&mut self, w: &mut PageWriter<'_>, level: usize, item: Item) -> Result<()> {
        if level == self.levels.len() {
            let cur = match item {
                Item::Leaf(..) => Node::Leaf(Vec::new()),
                Item::Branch(..) => Node::Branch(Vec::new()),
            };
            self.levels.push(Level {
                cur,
                cur_bytes: 0,
                held: None,
            });
        }
        let bytes = item.bytes();
        let lv = &mut self.levels[level];
        if lv.cur_bytes + bytes > self.usable_bytes {
            let empty = match lv.cur {
                Node::Leaf(_) => Node::Leaf(Vec::new()),
                Node::Branch(_) | Node::Copied(_) => Node::Branch(Vec::new()),
            };
            let full = std::mem::replace(&mut lv.cur, empty);
            lv.cur_bytes = 0;
            if let Some(done) = lv.held.replace(full) {
                self.write(w, level, &done)?;
            }
        }
        let lv = &mut self.levels[level];
        lv.cur_bytes += bytes;
        match (&mut lv.cur, item) {
            (Node::Leaf(e), Item::Leaf(k, v)) => e.push((k.into(), v)),
            (Node::Branch(e), Item::Branch(k, c)) => e.push((k, c)),
            _ => panic!("invariant: a level of the bulk load holds one kind of node"),
        }
        Ok(())
    }

    /// Writes a finished node of `level` and adds it to the level above.
    fn write(&mut self, w: &mut PageWriter<'_>, level: usize, n: &Node) -> Result<()> {
        let id = w.node(n)?;
        self.push(w, level + 1, Item::Branch(n.first_key().to_vec(), id))
    }

    /// Writes what is left, level by level; returns the root (0: empty).
    fn finish(mut self, w: &mut PageWriter<'_>) -> Result<u64> {
        let mut level = 0;
        while level < self.levels.len() {
            let lv = &mut self.levels[level];
            let cur = std::mem::replace(&mut lv.cur, Node::Leaf(Vec::new()));
            let Some(held) = lv.held.take() else {
                // Nothing was ever written at this level, so nothing above
                // it exists: its one node is the root.
                assert!(
                    level + 1 == self.levels.len(),
                    "invariant: a level with a parent has written a node"
                );
                return w.node(&cur);
            };
            let (a, b) = balance_tail(held, cur, self.underflow_bytes);
            self.write(w, level, &a)?;
            self.write(w, level, &b)?;
            level += 1;
        }
        Ok(0)
    }
}

/// The last two nodes of a level: if the last one is under a quarter full,
/// it takes entries from the end of the full one before it until it is
/// not. Both still fit: the full one only shrinks, and the last one ends at
/// most one entry (half a page) past a quarter page.
fn balance_tail(held: Node, cur: Node, underflow_bytes: usize) -> (Node, Node) {
    if cur.body_bytes() >= underflow_bytes {
        return (held, cur);
    }
    match (held, cur) {
        (Node::Leaf(mut a), Node::Leaf(b)) => {
            a.extend(b);
            let sizes = a.iter().map(|(k, v)| node::leaf_entry_bytes(k, v));
            let cut = tail_cut(sizes, underflow_bytes);
            let b = a.split_off(cut);
            (Node::Leaf(a), Node::Leaf(b))
        }
        (Node::Branch(mut a), Node::Branch(b)) => {
            a.extend(b);
            let sizes = a.iter().map(|(k, _)| node::branch_entry_bytes(k));
            let cut = tail_cut(sizes, underflow_bytes);
            let b = a.split_off(cut);
            (Node::Branch(a), Node::Branch(b))
        }
        _ => panic!("invariant: a level of the bulk load holds one kind of node"),
    }
}

/// The largest index whose tail holds at least `min_bytes`, kept at `>= 1`
/// so the head is not empty.
fn tail_cut(
    sizes: impl DoubleEndedIterator<Item = usize> + ExactSizeIterator,
    min_bytes: usize,
) -> usize {
    let mut acc = 0;
    for (i, s) in sizes.enumerate().rev() {
        acc += s;
        if acc >= min_bytes {
            return i.max(1);
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_cut_leaves_at_least_min_bytes_in_the_tail_and_one_entry_in_the_head() {
        assert_eq!(tail_cut([10, 10, 10, 10].into_iter(), 15), 2);
        assert_eq!(tail_cut([10, 10, 10, 10].into_iter(), 10), 3);
        assert_eq!(tail_cut([10, 10].into_iter(), 100), 1);
    }

    #[test]
    fn a_short_last_leaf_takes_entries_from_the_full_one_before_it() {
        let leaf = |n: usize| {
            Node::Leaf(
                (0..n)
                    .map(|i| (vec![i as u8].into(), Value::Inline(vec![0; 20].into())))
                    .collect(),
            )
        };
        let (a, b) = balance_tail(leaf(40), leaf(1), 200);
        assert!(b.body_bytes() >= 200, "{}", b.body_bytes());
        assert_eq!(a.len() + b.len(), 41);
    }
}
