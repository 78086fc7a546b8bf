//! The B+tree algorithms: lookup (for readers and the writer alike) and the
//! writer's copy-on-write edits: path copy, split, merge, root collapse.
//!
//! Copy-on-write: the first time a write transaction touches a committed
//! node it decodes it under a provisional id (placed at commit: see
//! `alloc`) and frees the old id (pending
//! until no reader can see it), then points the parent at the copy — which
//! makes the parent dirty too, up to the root. Committed pages are never
//! written again while reachable from a version someone may read.

use std::sync::{Arc, MutexGuard};

use super::alloc::Allocator;
use super::error::{BtreeError, Result};
use super::node::{self, Node, NodeRef, Value, ValueGuard, ValueRef};
use super::page::{PageKind, PAGE_HEADER_BYTES};
use super::pager::{PageIdMap, Shared};

/// Where the tree walk gets nodes and overflow values from.
pub(crate) trait NodeSource {
    fn node(&self, id: u64) -> Result<NodeRef<'_>>;
    fn overflow(&self, page: u64, len: u32) -> Result<Vec<u8>>;
}

impl NodeSource for Shared {
    fn node(&self, id: u64) -> Result<NodeRef<'_>> {
        Ok(NodeRef::Page(Shared::node(self, id)?))
    }
    fn overflow(&self, page: u64, len: u32) -> Result<Vec<u8>> {
        let (h, mut buf) = self.run(page, PageKind::Overflow)?;
        let end = PAGE_HEADER_BYTES + len as usize;
        if h.count.get() != len || end > buf.len() {
            let why = format!(
                "overflow run holds {} bytes, leaf says {len}",
                h.count.get()
            );
            return Err(BtreeError::corrupt(self.name.clone(), page, why));
        }
        buf.truncate(end);
        buf.drain(..PAGE_HEADER_BYTES);
        Ok(buf)
    }
}

/// Resolves a value to its bytes.
pub(crate) fn value_bytes(src: &dyn NodeSource, v: ValueRef<'_>) -> Result<Vec<u8>> {
    match v {
        ValueRef::Inline(b) => Ok(b.to_vec()),
        ValueRef::Overflow { page, len } => src.overflow(page, len),
    }
}

/// What [`scan`] calls per entry (key, value).
pub(crate) type Visit<'f, E> = &'f mut dyn FnMut(&[u8], &[u8]) -> std::result::Result<(), E>;

/// Calls `f` with every entry of the tree rooted at `root`, in key order,
/// borrowing keys and inline values from the cached pages (one page
/// lookup per node, not per entry). Stops at the first error `f` returns.
pub(crate) fn scan<E: From<BtreeError>>(
    src: &dyn NodeSource,
    root: u64,
    f: Visit<'_, E>,
) -> std::result::Result<(), E> {
    if root == 0 {
        return Ok(());
    }
    let n = src.node(root)?;
    if n.is_leaf() {
        for i in 0..n.len() {
            match n.value(i) {
                ValueRef::Inline(v) => f(n.key(i), v)?,
                ValueRef::Overflow { page, len } => f(n.key(i), &src.overflow(page, len)?)?,
            }
        }
        return Ok(());
    }
    for i in 0..n.len() {
        scan(src, n.child(i), f)?;
    }
    Ok(())
}

/// Roots of subtrees that together hold the tree rooted at `root` (0 =
/// empty), in key order: the highest level of the tree with at least
/// `want` nodes, or the leaves if no level has that many.
pub(crate) fn subtrees(src: &dyn NodeSource, root: u64, want: usize) -> Result<Vec<u64>> {
    if root == 0 {
        return Ok(Vec::new());
    }
    let mut level = vec![root];
    while level.len() < want {
        let mut below = Vec::new();
        for &id in &level {
            let n = src.node(id)?;
            if n.is_leaf() {
                // Every node of a level has the same height.
                return Ok(level);
            }
            below.extend((0..n.len()).map(|i| n.child(i)));
        }
        level = below;
    }
    Ok(level)
}

/// Point lookup in the tree rooted at `root` (0 = empty).
pub(crate) fn get(src: &dyn NodeSource, root: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
    lookup(src, root, key, |v| value_bytes(src, v))
}

/// Point lookup that hands the value, borrowed from its page, to `f`
/// (no copy unless `f` makes one).
pub(crate) fn lookup<R>(
    src: &dyn NodeSource,
    root: u64,
    key: &[u8],
    f: impl FnOnce(ValueRef<'_>) -> Result<R>,
) -> Result<Option<R>> {
    if root == 0 {
        return Ok(None);
    }
    let mut id = root;
    loop {
        let n = src.node(id)?;
        if n.is_leaf() {
            let i = n.lower_bound(key);
            if i < n.len() && n.key(i) == key {
                return f(n.value(i)).map(Some);
            }
            return Ok(None);
        }
        id = n.child(n.child_index(key));
    }
}

/// Point lookup that returns the value borrowed from its cached page
/// (an overflow value is read into memory).
pub(crate) fn get_guard(src: &Shared, root: u64, key: &[u8]) -> Result<Option<ValueGuard>> {
    if root == 0 {
        return Ok(None);
    }
    let mut id = root;
    loop {
        let n = NodeRef::Page(src.node(id)?);
        if n.is_leaf() {
            let i = n.lower_bound(key);
            if i >= n.len() || n.key(i) != key {
                return Ok(None);
            }
            if let ValueRef::Overflow { page, len } = n.value(i) {
                return Ok(Some(ValueGuard::owned(src.overflow(page, len)?)));
            }
            let NodeRef::Page(p) = n else {
                unreachable!("built from a page above")
            };
            return Ok(ValueGuard::in_page(p, i)); // Some: the value is inline
        }
        id = n.child(n.child_index(key));
    }
}

/// The writer's view: committed pages through the shared cache, plus the
/// nodes and overflow values this transaction made dirty.
pub(crate) struct TreeWriter<'a> {
    pub shared: Arc<Shared>,
    pub alloc: MutexGuard<'a, Allocator>,
    pub nodes: PageIdMap<Node>,
    pub overflow: PageIdMap<Vec<u8>>,
}

impl NodeSource for TreeWriter<'_> {
    fn node(&self, id: u64) -> Result<NodeRef<'_>> {
        match self.nodes.get(&id) {
            Some(n) => Ok(NodeRef::Dirty(n)),
            None => NodeSource::node(&*self.shared, id),
        }
    }
    fn overflow(&self, page: u64, len: u32) -> Result<Vec<u8>> {
        match self.overflow.get(&page) {
            Some(v) => Ok(v.clone()),
            None => self.shared.overflow(page, len),
        }
    }
}

/// The pieces a dirty node was split into (usually just itself): the
/// first keeps the node's id and, in the parent, the node's separator;
/// `rest` holds `(separator, id)` of the others, in key order. An unsplit
/// node costs no allocation (an empty `Vec` allocates nothing).
struct Parts {
    first: u64,
    rest: Vec<(Vec<u8>, u64)>,
}

fn dirty(nodes: &mut PageIdMap<Node>, id: u64) -> &mut Node {
    nodes
        .get_mut(&id)
        .unwrap_or_else(|| panic!("invariant: page {id} was made dirty before editing"))
}

impl TreeWriter<'_> {
    fn new_node(&mut self, n: Node) -> u64 {
        let id = self.alloc.alloc(1);
        self.nodes.insert(id, n);
        id
    }

    /// Copy-on-write: a dirty copy of node `id`, under a fresh id unless
    /// this transaction already owns it.
    fn make_dirty(&mut self, id: u64) -> Result<u64> {
        if self.nodes.contains_key(&id) {
            return Ok(id);
        }
        let p = self.shared.node_for_copy(id)?;
        let n = match p.kind() {
            PageKind::Branch => Node::copy_branch(p),
            _ => Node::copy_leaf(p),
        };
        self.alloc.free(id, 1);
        Ok(self.new_node(n))
    }

    fn make_value(&mut self, key: &[u8], value: &[u8]) -> Value {
        let v = Value::Inline(value.to_vec().into());
        if node::leaf_entry_bytes(key, &v) <= self.shared.limits.max_entry_bytes() {
            return v;
        }
        let pages = self.shared.limits.overflow_pages(value.len());
        let page = self.alloc.alloc(pages);
        self.overflow.insert(page, value.to_vec());
        Value::Overflow {
            page,
            len: value.len() as u32,
        }
    }

    fn free_value(&mut self, v: &Value) {
        if let Value::Overflow { page, len } = v {
            self.overflow.remove(page);
            let pages = self.shared.limits.overflow_pages(*len as usize);
            self.alloc.free(*page, pages);
        }
    }

    /// Inserts or replaces; returns the new root and whether the key existed.
    pub(crate) fn insert(&mut self, root: u64, key: &[u8], value: &[u8]) -> Result<(u64, bool)> {
        let v = self.make_value(key, value);
        if root == 0 {
            let leaf = Node::Leaf(vec![(key.to_vec().into(), v)]);
            return Ok((self.new_node(leaf), false));
        }
        let (mut parts, old, appended) = self.insert_rec(root, key, v)?;
        let existed = old.is_some();
        if let Some(old) = old {
            self.free_value(&old);
        }
        while !parts.rest.is_empty() {
            let first_key = dirty(&mut self.nodes, parts.first).first_key().to_vec();
            let mut entries = Vec::with_capacity(1 + parts.rest.len());
            entries.push((first_key, parts.first));
            entries.append(&mut parts.rest);
            let id = self.new_node(Node::Branch(entries));
            parts = self.split(id, appended);
        }
        Ok((parts.first, existed))
    }

    /// Inserts below `id`; also returns whether the key went after every
    /// key of this subtree (an append: then splits fill the left piece,
    /// so that keys inserted in order — the revision-keyed history — leave
    /// full pages behind instead of half-full ones).
    fn insert_rec(
        &mut self,
        id: u64,
        key: &[u8],
        v: Value,
    ) -> Result<(Parts, Option<Value>, bool)> {
        let id = self.make_dirty(id)?;
        let mut old = None;
        let mut appended = false;
        let descend = match dirty(&mut self.nodes, id) {
            Node::Leaf(e) => {
                match e.binary_search_by(|(k, _)| k.as_slice().cmp(key)) {
                    Ok(i) => old = Some(std::mem::replace(&mut e[i].1, v)),
                    Err(i) => {
                        appended = i == e.len();
                        e.insert(i, (key.to_vec().into(), v));
                    }
                }
                None
            }
            n @ (Node::Branch(_) | Node::Copied(_)) => {
                let i = NodeRef::Dirty(n).child_index(key);
                let last = i + 1 == n.len();
                Some((i, NodeRef::Dirty(n).child(i), v, last))
            }
        };
        if let Some((i, child, v, last)) = descend {
            let (parts, o, a) = self.insert_rec(child, key, v)?;
            old = o;
            appended = a && last;
            self.splice(id, i, parts);
        }
        Ok((self.split(id, appended), old, appended))
    }

    /// Replaces child `i` of branch `id` by `parts`; the first part keeps
    /// child `i`'s separator (every key in it is still `>=` that).
    fn splice(&mut self, id: u64, i: usize, parts: Parts) {
        let n = dirty(&mut self.nodes, id);
        n.set_child(i, parts.first);
        if !parts.rest.is_empty() {
            let e = n.branch_entries();
            for (j, p) in parts.rest.into_iter().enumerate() {
                e.insert(i + 1 + j, p);
            }
        }
    }

    /// Splits dirty node `id` until every piece fits a page: at byte
    /// midpoints, or after an append by filling pieces from the left.
    /// The first piece keeps `id`.
    fn split(&mut self, id: u64, appended: bool) -> Parts {
        let usable = self.shared.limits.usable_bytes();
        let n = dirty(&mut self.nodes, id);
        if n.body_bytes() <= usable {
            return Parts {
                first: id,
                rest: Vec::new(),
            };
        }
        let whole = self.nodes.remove(&id).unwrap_or_else(|| unreachable!());
        let whole = whole.materialized();
        let mut pieces = Vec::new();
        if appended {
            fill_left(whole, usable, &mut pieces);
        } else {
            halve(whole, usable, &mut pieces);
        }
        let mut pieces = pieces.into_iter();
        let first = pieces
            .next()
            .unwrap_or_else(|| panic!("invariant: a split leaves at least one piece"));
        self.nodes.insert(id, first);
        let rest = pieces
            .map(|p| (p.first_key().to_vec(), self.new_node(p)))
            .collect();
        Parts { first: id, rest }
    }

    /// Removes `key`; returns the new root, or `None` if the key is absent
    /// (then nothing was copied).
    pub(crate) fn remove(&mut self, root: u64, key: &[u8]) -> Result<Option<u64>> {
        if get(self, root, key)?.is_none() {
            return Ok(None);
        }
        let (mut root, old) = self.remove_rec(root, key)?;
        self.free_value(&old);
        loop {
            match self.nodes.get(&root) {
                Some(n @ (Node::Branch(_) | Node::Copied(_))) if n.len() == 1 => {
                    let child = NodeRef::Dirty(n).child(0);
                    self.nodes.remove(&root);
                    self.alloc.free(root, 1);
                    root = child;
                }
                Some(Node::Leaf(e)) if e.is_empty() => {
                    self.nodes.remove(&root);
                    self.alloc.free(root, 1);
                    return Ok(Some(0));
                }
                _ => return Ok(Some(root)),
            }
        }
    }

    fn remove_rec(&mut self, id: u64, key: &[u8]) -> Result<(u64, Value)> {
        let id = self.make_dirty(id)?;
        let (i, child) = match dirty(&mut self.nodes, id) {
            Node::Leaf(e) => {
                let i = e
                    .binary_search_by(|(k, _)| k.as_slice().cmp(key))
                    .unwrap_or_else(|_| panic!("invariant: remove_rec only for present keys"));
                return Ok((id, e.remove(i).1));
            }
            n @ (Node::Branch(_) | Node::Copied(_)) => {
                let i = NodeRef::Dirty(n).child_index(key);
                (i, NodeRef::Dirty(n).child(i))
            }
        };
        let (new_child, v) = self.remove_rec(child, key)?;
        dirty(&mut self.nodes, id).set_child(i, new_child);
        self.rebalance(id, i)?;
        Ok((id, v))
    }

    /// After a delete under child `i` of branch `id`: drops the child if it
    /// is empty, merges it with a sibling if it is under a quarter full.
    fn rebalance(&mut self, id: u64, i: usize) -> Result<()> {
        let underflow = self.shared.limits.underflow_bytes();
        // Deletes may add or remove entries here: decode a copied branch.
        let child = dirty(&mut self.nodes, id).branch_entries()[i].1;
        let c = dirty(&mut self.nodes, child);
        if c.len() == 0 {
            self.nodes.remove(&child);
            self.alloc.free(child, 1);
            if let Node::Branch(e) = dirty(&mut self.nodes, id) {
                e.remove(i);
            }
            return Ok(());
        }
        let siblings = match dirty(&mut self.nodes, id) {
            Node::Branch(e) => e.len(),
            Node::Leaf(_) | Node::Copied(_) => 0,
        };
        if c_body(&self.nodes, child) >= underflow || siblings < 2 {
            return Ok(());
        }
        let (l, r) = if i > 0 { (i - 1, i) } else { (i, i + 1) };
        let (l_id, r_id, r_sep) = match dirty(&mut self.nodes, id) {
            Node::Branch(e) => (e[l].1, e[r].1, e[r].0.clone()),
            Node::Leaf(_) | Node::Copied(_) => unreachable!("decoded at the start"),
        };
        let l_id = self.make_dirty(l_id)?;
        let r_id = self.make_dirty(r_id)?;
        let right = self.nodes.remove(&r_id).unwrap_or_else(|| unreachable!());
        let right = right.materialized();
        self.alloc.free(r_id, 1);
        let left = dirty(&mut self.nodes, l_id);
        if !matches!(left, Node::Leaf(_)) {
            left.branch_entries();
        }
        match (dirty(&mut self.nodes, l_id), right) {
            (Node::Leaf(a), Node::Leaf(b)) => a.extend(b),
            (Node::Branch(a), Node::Branch(mut b)) => {
                // b's first key stands for minus infinity inside b; in the
                // merged node it needs the real separator from the parent.
                b[0].0 = r_sep;
                a.extend(b);
            }
            _ => panic!("invariant: siblings are on the same level"),
        }
        if let Node::Branch(e) = dirty(&mut self.nodes, id) {
            e[l].1 = l_id;
            e.remove(r);
        }
        let parts = self.split(l_id, false);
        self.splice(id, l, parts);
        Ok(())
    }

    /// Frees every page of the tree at `root` (a deleted keyspace).
    pub(crate) fn free_tree(&mut self, root: u64) -> Result<()> {
        let mut stack = if root == 0 { vec![] } else { vec![root] };
        while let Some(id) = stack.pop() {
            let mut runs = Vec::new();
            {
                let n = NodeSource::node(self, id)?;
                for i in 0..n.len() {
                    if !n.is_leaf() {
                        stack.push(n.child(i));
                    } else if let ValueRef::Overflow { page, len } = n.value(i) {
                        runs.push(Value::Overflow { page, len });
                    }
                }
            }
            for v in runs {
                self.free_value(&v);
            }
            self.nodes.remove(&id);
            self.alloc.free(id, 1);
        }
        Ok(())
    }
}

fn c_body(nodes: &PageIdMap<Node>, id: u64) -> usize {
    nodes.get(&id).map(Node::body_bytes).unwrap_or(0)
}

/// Cuts `n` at its byte midpoint until every piece fits in `usable` bytes.
/// Entries are at most half of `usable`, so halves always make
/// progress.
fn halve(n: Node, usable: usize, out: &mut Vec<Node>) {
    let n = n.materialized();
    if n.body_bytes() <= usable || n.len() < 2 {
        out.push(n);
        return;
    }
    let total = n.body_bytes();
    let (a, b) = match n {
        Node::Leaf(mut e) => {
            let cut = cut_index(e.iter().map(|(k, v)| node::leaf_entry_bytes(k, v)), total);
            let b = e.split_off(cut);
            (Node::Leaf(e), Node::Leaf(b))
        }
        Node::Branch(mut e) => {
            let cut = cut_index(e.iter().map(|(k, _)| node::branch_entry_bytes(k)), total);
            let b = e.split_off(cut);
            (Node::Branch(e), Node::Branch(b))
        }
        Node::Copied(_) => unreachable!("materialized above"),
    };
    halve(a, usable, out);
    halve(b, usable, out);
}

/// Cuts `n` so that each piece but the last holds as much as fits in
/// `usable` bytes (leaving [`APPEND_SLACK_BYTES`] free, so that an update
/// that grows an entry a little does not split the page again).
fn fill_left(n: Node, usable: usize, out: &mut Vec<Node>) {
    let n = n.materialized();
    if n.body_bytes() <= usable || n.len() < 2 {
        out.push(n);
        return;
    }
    let room = usable.saturating_sub(APPEND_SLACK_BYTES).max(usable / 2);
    let (a, b) = match n {
        Node::Leaf(mut e) => {
            let cut = fill_index(e.iter().map(|(k, v)| node::leaf_entry_bytes(k, v)), room);
            let b = e.split_off(cut);
            (Node::Leaf(e), Node::Leaf(b))
        }
        Node::Branch(mut e) => {
            let cut = fill_index(e.iter().map(|(k, _)| node::branch_entry_bytes(k)), room);
            let b = e.split_off(cut);
            (Node::Branch(e), Node::Branch(b))
        }
        Node::Copied(_) => unreachable!("materialized above"),
    };
    out.push(a);
    fill_left(b, usable, out);
}

/// Bytes a left-filled page keeps free.
const APPEND_SLACK_BYTES: usize = 64;

/// Number of leading entries whose sizes fit in `room`, kept inside
/// `1..len` so both pieces are non-empty.
fn fill_index(sizes: impl ExactSizeIterator<Item = usize>, room: usize) -> usize {
    let len = sizes.len();
    let mut acc = 0;
    for (i, s) in sizes.enumerate() {
        acc += s;
        if acc > room {
            return i.clamp(1, len - 1);
        }
    }
    len - 1
}

/// First index where the running size reaches half of `total`, kept inside
/// `1..len` so both halves are non-empty.
fn cut_index(sizes: impl ExactSizeIterator<Item = usize>, total: usize) -> usize {
    let len = sizes.len();
    let mut acc = 0;
    for (i, s) in sizes.enumerate() {
        acc += s;
        if acc * 2 >= total {
            return (i + 1).clamp(1, len - 1);
        }
    }
    len - 1
}
