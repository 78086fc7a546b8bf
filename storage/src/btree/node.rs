//! Branch and leaf nodes: the owned form the writer edits, the borrowed
//! view readers search in place, and the byte layout between them.
//!
//! ```text
//!  node page:
//!  +-------------+------------------------+------------------------+------+
//!  | page header | offsets: count x u32   | entries, packed        | free |
//!  | 40 bytes    | (byte offset in page)  |                        |      |
//!  +-------------+------------------------+------------------------+------+
//!
//!  leaf entry:   key_len u16 | val_len u32 | flags u8 | key | value or overflow page u64
//!  branch entry: child u64   | key_len u16 | key
//! ```
//!
//! Flags bit 0 set: the value lives in an overflow run starting at the
//! page id that follows the key, `val_len` bytes long. Branch entry `i`'s
//! key is the separator of child `i`: every key under child `i` is
//! `>= key_i` and every key under child `i-1` is `< key_i`. Entry 0's key is
//! kept but never compared (it stands for minus infinity).

use std::sync::Arc;

use super::page::{PageKind, COUNT_OFFSET, KIND_OFFSET, PAGE_HEADER_BYTES};
use super::search::{self, Index};

const LEAF_ENTRY_HEADER_BYTES: usize = 7;
const BRANCH_ENTRY_HEADER_BYTES: usize = 10;
const FLAG_OVERFLOW: u8 = 1;

/// A leaf value as the writer holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Inline(Bytes),
    Overflow { page: u64, len: u32 },
}

/// Key or value bytes of a leaf entry the writer holds: a range of the
/// verified committed page the leaf was copied from (the page is shared,
/// so copying a leaf allocates nothing per entry), or bytes of its own.
#[derive(Clone)]
pub(crate) enum Bytes {
    InPage {
        page: CachedPage,
        start: u32,
        len: u32,
    },
    Owned(Vec<u8>),
}

impl Bytes {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::InPage { page, start, len } => {
                &page.bytes()[*start as usize..(*start + *len) as usize]
            }
            Bytes::Owned(v) => v,
        }
    }

    /// `b`, a slice of `page`'s bytes, as a range of that page.
    fn in_page(page: &CachedPage, b: &[u8]) -> Bytes {
        let start = b.as_ptr() as usize - page.bytes().as_ptr() as usize;
        assert!(
            start + b.len() <= page.bytes().len(),
            "invariant: Bytes::in_page takes a slice of the page"
        );
        Bytes::InPage {
            page: page.clone(),
            start: start as u32,
            len: b.len() as u32,
        }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Bytes {
        Bytes::Owned(v)
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Bytes) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Bytes {}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_slice().fmt(f)
    }
}

/// A decoded node, edited by the write transaction.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Leaf(Vec<(Bytes, Value)>),
    Branch(Vec<(Vec<u8>, u64)>),
    /// A committed branch copied by the writer whose child ids alone
    /// changed: see [`CopiedBranch`].
    Copied(CopiedBranch),
}

/// A copy-on-write copy of a committed branch, kept as its page plus its
/// child ids. A put changes one child id per branch on its path and
/// rarely anything else, so the copy costs two allocations instead of one
/// per key, and encoding it is a page copy with the child ids patched in.
/// The first structural change (an entry added or removed) decodes it into
/// [`Node::Branch`] ([`Node::branch_entries`]).
#[derive(Clone)]
pub(crate) struct CopiedBranch {
    page: CachedPage,
    children: Vec<u64>,
    body_bytes: usize,
}

impl std::fmt::Debug for CopiedBranch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopiedBranch")
            .field("children", &self.children)
            .field("body_bytes", &self.body_bytes)
            .finish()
    }
}

pub(crate) fn leaf_entry_bytes(key: &[u8], v: &Value) -> usize {
    let v_bytes = match v {
        Value::Inline(b) => b.len(),
        Value::Overflow { .. } => 8,
    };
    4 + LEAF_ENTRY_HEADER_BYTES + key.len() + v_bytes
}

pub(crate) fn branch_entry_bytes(key: &[u8]) -> usize {
    4 + BRANCH_ENTRY_HEADER_BYTES + key.len()
}

impl Node {
    pub(crate) fn len(&self) -> usize {
        match self {
            Node::Leaf(e) => e.len(),
            Node::Branch(e) => e.len(),
            Node::Copied(c) => c.children.len(),
        }
    }

    /// Bytes the body needs (without the page header).
    pub(crate) fn body_bytes(&self) -> usize {
        match self {
            Node::Leaf(e) => e.iter().map(|(k, v)| leaf_entry_bytes(k, v)).sum(),
            Node::Branch(e) => e.iter().map(|(k, _)| branch_entry_bytes(k)).sum(),
            Node::Copied(c) => c.body_bytes,
        }
    }

    pub(crate) fn kind(&self) -> PageKind {
        match self {
            Node::Leaf(_) => PageKind::Leaf,
            Node::Branch(_) | Node::Copied(_) => PageKind::Branch,
        }
    }

    pub(crate) fn first_key(&self) -> &[u8] {
        match self {
            Node::Leaf(e) => e.first().map(|(k, _)| k.as_slice()).unwrap_or(&[]),
            Node::Branch(e) => e.first().map(|(k, _)| k.as_slice()).unwrap_or(&[]),
            Node::Copied(c) if c.children.is_empty() => &[],
            Node::Copied(c) => c.page.view().key(0),
        }
    }

    /// The writer's copy of committed leaf page `page`: entries point into
    /// the page, which they share (no allocation per entry).
    pub(crate) fn copy_leaf(page: CachedPage) -> Node {
        assert!(
            page.kind() == PageKind::Leaf,
            "invariant: copy_leaf copies a leaf page"
        );
        let v = page.view();
        let entries = (0..page.count())
            .map(|i| {
                let val = match v.value(i) {
                    ValueRef::Inline(b) => Value::Inline(Bytes::in_page(&page, b)),
                    ValueRef::Overflow { page, len } => Value::Overflow { page, len },
                };
                (Bytes::in_page(&page, v.key(i)), val)
            })
            .collect();
        Node::Leaf(entries)
    }

    /// The writer's copy of committed branch page `page` (see
    /// [`CopiedBranch`]).
    pub(crate) fn copy_branch(page: CachedPage) -> Node {
        assert!(
            page.kind() == PageKind::Branch,
            "invariant: copy_branch copies a branch page"
        );
        let v = page.view();
        let count = page.count();
        let children = (0..count).map(|i| v.child(i)).collect();
        let body_bytes = (0..count).map(|i| branch_entry_bytes(v.key(i))).sum();
        Node::Copied(CopiedBranch {
            page,
            children,
            body_bytes,
        })
    }

    /// Sets child `i` of a branch.
    pub(crate) fn set_child(&mut self, i: usize, id: u64) {
        match self {
            Node::Branch(e) => e[i].1 = id,
            Node::Copied(c) => c.children[i] = id,
            Node::Leaf(_) => panic!("invariant: set_child only on branches"),
        }
    }

    /// Rewrites every page id this node holds (children of a branch,
    /// overflow runs of a leaf) through `f`.
    pub(crate) fn map_ids(&mut self, mut f: impl FnMut(u64) -> u64) {
        match self {
            Node::Branch(e) => e.iter_mut().for_each(|(_, c)| *c = f(*c)),
            Node::Copied(c) => c.children.iter_mut().for_each(|c| *c = f(*c)),
            Node::Leaf(e) => {
                for (_, v) in e {
                    if let Value::Overflow { page, .. } = v {
                        *page = f(*page);
                    }
                }
            }
        }
    }

    /// The entries of a branch, decoding a [`Node::Copied`] first (for a
    /// structural change).
    pub(crate) fn branch_entries(&mut self) -> &mut Vec<(Vec<u8>, u64)> {
        if let Node::Copied(c) = self {
            let v = c.page.view();
            let e = (0..c.children.len())
                .map(|i| (v.key(i).to_vec(), c.children[i]))
                .collect();
            *self = Node::Branch(e);
        }
        match self {
            Node::Branch(e) => e,
            _ => panic!("invariant: branch_entries only on branches"),
        }
    }

    /// This node with a [`Node::Copied`] decoded into [`Node::Branch`].
    pub(crate) fn materialized(mut self) -> Node {
        if let Node::Copied(_) = self {
            self.branch_entries();
        }
        self
    }

    /// Writes the body into `page[40..]`; the caller seals the header.
    pub(crate) fn encode(&self, page: &mut [u8]) {
        if let Node::Copied(c) = self {
            return c.encode(page);
        }
        let n = self.len();
        let mut off = PAGE_HEADER_BYTES + 4 * n;
        assert!(
            PAGE_HEADER_BYTES + self.body_bytes() <= page.len(),
            "invariant: a node is split before it outgrows its page"
        );
        for i in 0..n {
            let slot = PAGE_HEADER_BYTES + 4 * i;
            page[slot..slot + 4].copy_from_slice(&(off as u32).to_le_bytes());
            let mut put = |b: &[u8]| {
                page[off..off + b.len()].copy_from_slice(b);
                off += b.len();
            };
            match self {
                Node::Leaf(e) => {
                    let (k, v) = &e[i];
                    put(&(k.len() as u16).to_le_bytes());
                    match v {
                        Value::Inline(b) => {
                            put(&(b.len() as u32).to_le_bytes());
                            put(&[0]);
                            put(k);
                            put(b);
                        }
                        Value::Overflow { page: p, len } => {
                            put(&len.to_le_bytes());
                            put(&[FLAG_OVERFLOW]);
                            put(k);
                            put(&p.to_le_bytes());
                        }
                    }
                }
                Node::Branch(e) => {
                    let (k, c) = &e[i];
                    put(&c.to_le_bytes());
                    put(&(k.len() as u16).to_le_bytes());
                    put(k);
                }
                Node::Copied(_) => unreachable!("encoded above"),
            }
        }
    }
}

impl CopiedBranch {
    /// The copied page's body (offsets and entries at the same places, so
    /// still valid) with the current child ids written over the old ones.
    fn encode(&self, page: &mut [u8]) {
        let src = self.page.bytes();
        assert!(
            src.len() == page.len(),
            "invariant: a copied branch is encoded into a page of its size"
        );
        page[PAGE_HEADER_BYTES..].copy_from_slice(&src[PAGE_HEADER_BYTES..]);
        let v = self.page.view();
        for (i, c) in self.children.iter().enumerate() {
            let off = v.entry(i);
            page[off..off + 8].copy_from_slice(&c.to_le_bytes());
        }
    }
}

/// A value read through [`ReadTxn::get_ref`](super::ReadTxn::get_ref):
/// the bytes of an inline value in its cached page (kept alive by the
/// guard), or an overflow value read into memory. Derefs to `[u8]`.
pub struct ValueGuard(GuardBytes);

enum GuardBytes {
    InPage {
        page: CachedPage,
        start: usize,
        len: usize,
    },
    Owned(Vec<u8>),
}

impl ValueGuard {
    /// Leaf entry `i`'s value in `page`; `None` if it lives in an
    /// overflow run.
    pub(crate) fn in_page(page: CachedPage, i: usize) -> Option<ValueGuard> {
        let (start, len) = page.inline_value(i)?;
        Some(ValueGuard(GuardBytes::InPage { page, start, len }))
    }

    pub(crate) fn owned(bytes: Vec<u8>) -> ValueGuard {
        ValueGuard(GuardBytes::Owned(bytes))
    }

    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            GuardBytes::InPage { page, start, len } => &page.bytes()[*start..*start + *len],
            GuardBytes::Owned(v) => v,
        }
    }
}

impl std::ops::Deref for ValueGuard {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for ValueGuard {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl std::fmt::Debug for ValueGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ValueGuard").field(&self.as_bytes()).finish()
    }
}

/// A value as a reader sees it.
pub(crate) enum ValueRef<'a> {
    Inline(&'a [u8]),
    Overflow { page: u64, len: u32 },
}

fn u16_at(b: &[u8], off: usize) -> usize {
    u16::from_le_bytes([b[off], b[off + 1]]) as usize
}
fn u32_at(b: &[u8], off: usize) -> usize {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// A node read in place from its page bytes.
#[derive(Clone, Copy)]
pub(crate) struct PageView<'a> {
    page: &'a [u8],
    kind: PageKind,
}

impl<'a> PageView<'a> {
    fn entry(&self, i: usize) -> usize {
        u32_at(self.page, PAGE_HEADER_BYTES + 4 * i)
    }
    fn key(&self, i: usize) -> &'a [u8] {
        let off = self.entry(i);
        match self.kind {
            PageKind::Leaf => {
                let kl = u16_at(self.page, off);
                let s = off + LEAF_ENTRY_HEADER_BYTES;
                &self.page[s..s + kl]
            }
            _ => {
                let kl = u16_at(self.page, off + 8);
                let s = off + BRANCH_ENTRY_HEADER_BYTES;
                &self.page[s..s + kl]
            }
        }
    }
    fn child(&self, i: usize) -> u64 {
        u64_at(self.page, self.entry(i))
    }
    fn value(&self, i: usize) -> ValueRef<'a> {
        let off = self.entry(i);
        let kl = u16_at(self.page, off);
        let vl = u32_at(self.page, off + 2);
        let s = off + LEAF_ENTRY_HEADER_BYTES + kl;
        if self.page[off + 6] & FLAG_OVERFLOW != 0 {
            ValueRef::Overflow {
                page: u64_at(self.page, s),
                len: vl as u32,
            }
        } else {
            ValueRef::Inline(&self.page[s..s + vl])
        }
    }
}

/// Checks that every offset and length of a checksum-valid node page stays
/// inside the page, so the accessors above cannot panic on it. The error is
/// the reason, for `BtreeError::Corrupt`.
pub(crate) fn validate(page: &[u8], kind: PageKind, count: usize) -> Result<(), String> {
    let body_start = PAGE_HEADER_BYTES + 4 * count;
    if body_start > page.len() || (count == 0 && kind == PageKind::Branch) {
        return Err(format!("{kind:?} entry count {count} does not fit"));
    }
    for i in 0..count {
        let off = u32_at(page, PAGE_HEADER_BYTES + 4 * i);
        let fits = |end: usize| off >= body_start && end <= page.len();
        let ok = match kind {
            PageKind::Leaf => {
                fits(off + LEAF_ENTRY_HEADER_BYTES) && {
                    let kl = u16_at(page, off);
                    let vl = u32_at(page, off + 2);
                    let vb = if page[off + 6] & FLAG_OVERFLOW != 0 {
                        8
                    } else {
                        vl
                    };
                    fits(off + LEAF_ENTRY_HEADER_BYTES + kl + vb)
                }
            }
            _ => {
                fits(off + BRANCH_ENTRY_HEADER_BYTES)
                    && fits(off + BRANCH_ENTRY_HEADER_BYTES + u16_at(page, off + 8))
            }
        };
        if !ok {
            return Err(format!(
                "{kind:?} entry {i} at offset {off} runs off the page"
            ));
        }
    }
    Ok(())
}

/// A node as the tree walk sees it: in a cached page, or dirty in the
/// write transaction.
pub(crate) enum NodeRef<'a> {
    Page(CachedPage),
    Dirty(&'a Node),
}

/// A verified node page, shared by the cache and the readers: its checksum,
/// id, kind and structure were checked when it was read (or the writer
/// encoded it itself). One allocation: the page's search index (see
/// `search`), then the page bytes.
#[derive(Clone)]
pub(crate) struct CachedPage(Arc<[u8]>);

impl CachedPage {
    /// Copies a node page that passed `page::verify` and [`validate`], or
    /// that [`Node::encode`] wrote and `page::seal` sealed, behind its
    /// search index.
    pub(crate) fn new(page: &[u8]) -> CachedPage {
        let kind = match page.get(KIND_OFFSET).copied() {
            Some(k) if k == PageKind::Leaf as u8 => PageKind::Leaf,
            Some(k) if k == PageKind::Branch as u8 => PageKind::Branch,
            _ => panic!("invariant: a cached page is a verified branch or leaf page"),
        };
        let count = u32_at(page, COUNT_OFFSET);
        let view = PageView { page, kind };
        CachedPage(search::indexed(page, kind, count, |i| view.key(i)))
    }

    fn index(&self) -> Index<'_> {
        Index(&self.0)
    }

    pub(crate) fn kind(&self) -> PageKind {
        if self.index().kind_byte() == PageKind::Leaf as u8 {
            PageKind::Leaf
        } else {
            PageKind::Branch
        }
    }

    /// Entries of the node (the header's `count`).
    pub(crate) fn count(&self) -> usize {
        self.index().count()
    }

    /// The page's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0[self.index().len()..]
    }

    /// `(start, len)` in the page of leaf entry `i`'s value if it is
    /// inline, `None` if it lives in an overflow run.
    fn inline_value(&self, i: usize) -> Option<(usize, usize)> {
        match self.view().value(i) {
            ValueRef::Inline(b) => {
                let start = b.as_ptr() as usize - self.bytes().as_ptr() as usize;
                Some((start, b.len()))
            }
            ValueRef::Overflow { .. } => None,
        }
    }

    fn view(&self) -> PageView<'_> {
        PageView {
            page: self.bytes(),
            kind: self.kind(),
        }
    }

    /// The first entry whose key is `> key` (`upper`) or `>= key`, among
    /// the compared ones (a branch's entry 0 is not).
    fn bound(&self, key: &[u8], upper: bool) -> usize {
        let view = self.view();
        self.index().bound(key, upper, |i| view.key(i))
    }
}

impl NodeRef<'_> {
    pub(crate) fn is_leaf(&self) -> bool {
        match self {
            NodeRef::Page(p) => p.kind() == PageKind::Leaf,
            NodeRef::Dirty(n) => matches!(n, Node::Leaf(_)),
        }
    }
    pub(crate) fn len(&self) -> usize {
        match self {
            NodeRef::Page(p) => p.count(),
            NodeRef::Dirty(n) => n.len(),
        }
    }
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        match self {
            NodeRef::Page(p) => p.view().key(i),
            NodeRef::Dirty(Node::Leaf(e)) => e[i].0.as_slice(),
            NodeRef::Dirty(Node::Branch(e)) => &e[i].0,
            NodeRef::Dirty(Node::Copied(c)) => c.page.view().key(i),
        }
    }
    pub(crate) fn child(&self, i: usize) -> u64 {
        match self {
            NodeRef::Page(p) => p.view().child(i),
            NodeRef::Dirty(Node::Branch(e)) => e[i].1,
            NodeRef::Dirty(Node::Copied(c)) => c.children[i],
            NodeRef::Dirty(Node::Leaf(_)) => panic!("invariant: child() only on branches"),
        }
    }
    pub(crate) fn value(&self, i: usize) -> ValueRef<'_> {
        match self {
            NodeRef::Page(p) => p.view().value(i),
            NodeRef::Dirty(Node::Leaf(e)) => match &e[i].1 {
                Value::Inline(b) => ValueRef::Inline(b.as_slice()),
                Value::Overflow { page, len } => ValueRef::Overflow {
                    page: *page,
                    len: *len,
                },
            },
            NodeRef::Dirty(Node::Branch(_) | Node::Copied(_)) => {
                panic!("invariant: value() only on leaves")
            }
        }
    }

    /// Leaf: index of the first key `>= key` (may be `len`).
    pub(crate) fn lower_bound(&self, key: &[u8]) -> usize {
        if let NodeRef::Page(p) = self {
            return p.bound(key, false);
        }
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Branch: the child whose subtree holds `key` (the last separator
    /// `<= key`; child 0 for anything smaller).
    pub(crate) fn child_index(&self, key: &[u8]) -> usize {
        match self {
            NodeRef::Page(p) => return p.bound(key, true).max(1) - 1,
            NodeRef::Dirty(Node::Copied(c)) => return c.page.bound(key, true).max(1) - 1,
            NodeRef::Dirty(_) => {}
        }
        let (mut lo, mut hi) = (1, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.key(mid) <= key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_leaf_reads_back_in_place_and_decoded() {
        let n = Node::Leaf(vec![
            (b"a".to_vec().into(), Value::Inline(b"1".to_vec().into())),
            (
                b"bb".to_vec().into(),
                Value::Overflow {
                    page: 77,
                    len: 5000,
                },
            ),
            (b"c".to_vec().into(), Value::Inline(Vec::new().into())),
        ]);
        let mut page = vec![0u8; 512];
        n.encode(&mut page);
        page[KIND_OFFSET] = PageKind::Leaf as u8;
        page[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&3u32.to_le_bytes());
        validate(&page, PageKind::Leaf, 3).unwrap();
        let r = NodeRef::Page(CachedPage::new(&page));
        assert_eq!(r.key(1), b"bb");
        assert_eq!(r.lower_bound(b"b"), 1);
        assert_eq!(r.lower_bound(b"d"), 3);
        assert!(matches!(
            r.value(1),
            ValueRef::Overflow {
                page: 77,
                len: 5000
            }
        ));
        match Node::copy_leaf(CachedPage::new(&page)) {
            Node::Leaf(e) => assert_eq!(e.len(), 3),
            Node::Branch(_) | Node::Copied(_) => panic!("leaf expected"),
        }
    }

    #[test]
    fn a_copied_branch_encodes_like_the_decoded_one_with_the_same_children() {
        let full = Node::Branch(vec![(vec![], 5), (b"m".to_vec(), 6), (b"tt".to_vec(), 7)]);
        let mut page = vec![0u8; 512];
        full.encode(&mut page);
        page[KIND_OFFSET] = PageKind::Branch as u8;
        page[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&3u32.to_le_bytes());
        let mut copied = Node::copy_branch(CachedPage::new(&page));
        assert_eq!(copied.body_bytes(), full.body_bytes());
        assert_eq!(NodeRef::Dirty(&copied).child_index(b"n"), 1);
        copied.set_child(1, 60);
        let mut edited = full.clone();
        edited.set_child(1, 60);
        let (mut a, mut b) = (vec![0u8; 512], vec![0u8; 512]);
        copied.encode(&mut a);
        edited.encode(&mut b);
        assert_eq!(a[PAGE_HEADER_BYTES..], b[PAGE_HEADER_BYTES..]);
        match copied.materialized() {
            Node::Branch(e) => assert_eq!(e[2], (b"tt".to_vec(), 7)),
            _ => panic!("decoded branch expected"),
        }
    }

    #[test]
    fn branch_child_index_picks_the_last_separator_not_above_the_key() {
        let n = Node::Branch(vec![(vec![], 5), (b"m".to_vec(), 6), (b"t".to_vec(), 7)]);
        let r = NodeRef::Dirty(&n);
        assert_eq!(r.child_index(b"a"), 0);
        assert_eq!(r.child_index(b"m"), 1);
        assert_eq!(r.child_index(b"s"), 1);
        assert_eq!(r.child_index(b"z"), 2);
    }
}
