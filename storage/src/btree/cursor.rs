//! Cursors over one keyspace, in both directions, and the bounded range
//! iterators built on them.
//!
//! A cursor keeps the path from the root to its leaf entry as a stack of
//! `(page id, index)`; stepping past the end of a leaf climbs to the first
//! ancestor with a neighbour and descends along its edge. It holds no page
//! borrowed across calls, only ids, so a step costs a few cache lookups.

use std::ops::{Bound, RangeBounds};

use super::error::Result;
use super::tree::{value_bytes, NodeSource};

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A position in one keyspace of a transaction's version.
///
/// Every move returns the entry it lands on, or `None` past either end;
/// after `None` the cursor is unpositioned and `next`/`prev` keep
/// returning `None` until `first`, `last` or `seek`.
pub struct Cursor<'t> {
    src: &'t dyn NodeSource,
    root: u64,
    stack: Vec<(u64, usize)>,
}

impl<'t> Cursor<'t> {
    pub(crate) fn new(src: &'t dyn NodeSource, root: u64) -> Cursor<'t> {
        Cursor {
            src,
            root,
            stack: Vec::new(),
        }
    }

    fn current(&self) -> Result<Option<Entry>> {
        let Some(&(id, i)) = self.stack.last() else {
            return Ok(None);
        };
        let n = self.src.node(id)?;
        if i >= n.len() {
            return Ok(None);
        }
        Ok(Some((
            n.key(i).to_vec(),
            value_bytes(self.src, n.value(i))?,
        )))
    }

    /// Descends from `id` along the left (or right) edge to a leaf.
    fn descend_edge(&mut self, mut id: u64, leftmost: bool) -> Result<Option<Entry>> {
        loop {
            let n = self.src.node(id)?;
            if n.len() == 0 {
                self.stack.clear();
                return Ok(None);
            }
            let i = if leftmost { 0 } else { n.len() - 1 };
            self.stack.push((id, i));
            if n.is_leaf() {
                break;
            }
            id = n.child(i);
        }
        self.current()
    }

    /// The smallest entry.
    pub fn first(&mut self) -> Result<Option<Entry>> {
        self.stack.clear();
        if self.root == 0 {
            return Ok(None);
        }
        self.descend_edge(self.root, true)
    }

    /// The largest entry.
    pub fn last(&mut self) -> Result<Option<Entry>> {
        self.stack.clear();
        if self.root == 0 {
            return Ok(None);
        }
        self.descend_edge(self.root, false)
    }

    /// The first entry with a key `>= key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<Entry>> {
        self.stack.clear();
        let mut id = self.root;
        if id == 0 {
            return Ok(None);
        }
        loop {
            let n = self.src.node(id)?;
            if n.is_leaf() {
                let i = n.lower_bound(key);
                if i < n.len() {
                    self.stack.push((id, i));
                    return self.current();
                }
                if n.len() == 0 {
                    return Ok(None);
                }
                self.stack.push((id, n.len() - 1));
                return self.next();
            }
            let i = n.child_index(key);
            self.stack.push((id, i));
            id = n.child(i);
        }
    }

    /// The next entry in key order. (Not `Iterator::next`: a cursor moves
    /// both ways and re-seeks; [`Range`] is the iterator.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry>> {
        self.step(true)
    }

    /// The previous entry in key order.
    pub fn prev(&mut self) -> Result<Option<Entry>> {
        self.step(false)
    }

    fn step(&mut self, forward: bool) -> Result<Option<Entry>> {
        // Climb until some level has a neighbour in this direction.
        while let Some((id, i)) = self.stack.pop() {
            let n = self.src.node(id)?;
            let j = if forward {
                (i + 1 < n.len()).then_some(i + 1)
            } else {
                i.checked_sub(1)
            };
            let Some(j) = j else { continue };
            self.stack.push((id, j));
            if n.is_leaf() {
                return self.current();
            }
            let child = n.child(j);
            return self.descend_edge(child, forward);
        }
        Ok(None)
    }
}

/// Entries of a key range, ascending or descending. Yields
/// `Err` once and then stops if a page fails to read or verify.
pub struct Range<'t> {
    cursor: Cursor<'t>,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    reverse: bool,
    started: bool,
    done: bool,
}

fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl<'t> Range<'t> {
    pub(crate) fn new<R: RangeBounds<[u8]>>(cursor: Cursor<'t>, r: R, reverse: bool) -> Range<'t> {
        Range {
            cursor,
            lo: owned(r.start_bound()),
            hi: owned(r.end_bound()),
            reverse,
            started: false,
            done: false,
        }
    }

    fn start(&mut self) -> Result<Option<Entry>> {
        let c = &mut self.cursor;
        if !self.reverse {
            return match &self.lo {
                Bound::Unbounded => c.first(),
                Bound::Included(k) => c.seek(k),
                Bound::Excluded(k) => match c.seek(k)? {
                    Some(e) if e.0 == *k => c.next(),
                    other => Ok(other),
                },
            };
        }
        match &self.hi {
            Bound::Unbounded => c.last(),
            Bound::Included(k) => match c.seek(k)? {
                Some(e) if e.0 == *k => Ok(Some(e)),
                Some(_) => c.prev(),
                None => c.last(),
            },
            Bound::Excluded(k) => match c.seek(k)? {
                Some(_) => c.prev(),
                None => c.last(),
            },
        }
    }

    fn in_bounds(&self, key: &[u8]) -> bool {
        if self.reverse {
            match &self.lo {
                Bound::Unbounded => true,
                Bound::Included(k) => key >= k.as_slice(),
                Bound::Excluded(k) => key > k.as_slice(),
            }
        } else {
            match &self.hi {
                Bound::Unbounded => true,
                Bound::Included(k) => key <= k.as_slice(),
                Bound::Excluded(k) => key < k.as_slice(),
            }
        }
    }
}

impl Iterator for Range<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.done {
            return None;
        }
        let r = if !self.started {
            self.started = true;
            self.start()
        } else if self.reverse {
            self.cursor.prev()
        } else {
            self.cursor.next()
        };
        match r {
            Ok(Some(e)) if self.in_bounds(&e.0) => Some(Ok(e)),
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
