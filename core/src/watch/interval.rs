//! An interval tree over byte-string keys for stabbing queries: which of
//! the stored half-open intervals `[start, end)` contain a key? (etcd's
//! `adt.IntervalTree`, used the same way: the watchers of key ranges.)
//!
//! A treap ordered by `(start, id)`, each node augmented with the node of
//! its subtree whose `end` is largest. A stabbing query descends only into
//! subtrees whose largest end is past the key and, going right, only while
//! starts are at or before it: O(log n + matches) expected. Insert and
//! remove are O(log n) expected. Nodes live in one arena (`Vec`) with a
//! free list, so a tree that shrinks and grows again does not allocate.
//!
//! Priorities come from a fixed-seed generator: the shape is deterministic
//! for a given sequence of operations (no hidden randomness in the node).

use std::cmp::Ordering;

/// The exclusive end of an interval: a key, or no bound at all (etcd's
/// `range_end` of `\0`: every key from `start` on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Key(Box<[u8]>),
    Unbounded,
}

impl End {
    /// Whether a key below this end is... `key < end`.
    pub fn is_after(&self, key: &[u8]) -> bool {
        match self {
            End::Key(end) => key < &end[..],
            End::Unbounded => true,
        }
    }
}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (End::Unbounded, End::Unbounded) => Ordering::Equal,
            (End::Unbounded, _) => Ordering::Greater,
            (_, End::Unbounded) => Ordering::Less,
            (End::Key(a), End::Key(b)) => a.cmp(b),
        }
    }
}

const NIL: u32 = u32::MAX;

#[derive(Debug)]
struct Node {
    start: Box<[u8]>,
    end: End,
    id: u32,
    priority: u32,
    left: u32,
    right: u32,
    /// The node of this subtree with the largest `end`.
    max: u32,
}

/// See the module docs. `id`s are the caller's (watcher slots); an
/// interval is identified by `(start, id)`.
#[derive(Debug)]
pub struct IntervalTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    len: usize,
    rng: u64,
}

impl Default for IntervalTree {
    fn default() -> Self {
        IntervalTree {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            len: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl IntervalTree {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn next_priority(&mut self) -> u32 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    fn order(&self, n: u32, start: &[u8], id: u32) -> Ordering {
        let node = &self.nodes[n as usize];
        node.start[..].cmp(start).then(node.id.cmp(&id))
    }

    fn update(&mut self, t: u32) {
        let (left, right) = {
            let n = &self.nodes[t as usize];
            (n.left, n.right)
        };
        let mut best = t;
        for child in [left, right] {
            if child != NIL {
                let m = self.nodes[child as usize].max;
                if self.nodes[m as usize].end > self.nodes[best as usize].end {
                    best = m;
                }
            }
        }
        self.nodes[t as usize].max = best;
    }

    /// Splits `t` into the nodes ordered before `(start, id)` (and the
    /// node equal to it if `inclusive`) and the rest.
    fn split(&mut self, t: u32, start: &[u8], id: u32, inclusive: bool) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let left_side = match self.order(t, start, id) {
            Ordering::Less => true,
            Ordering::Equal => inclusive,
            Ordering::Greater => false,
        };
        if left_side {
            let right = self.nodes[t as usize].right;
            let (l, r) = self.split(right, start, id, inclusive);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let left = self.nodes[t as usize].left;
            let (l, r) = self.split(left, start, id, inclusive);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Joins two treaps where every node of `a` is ordered before `b`'s.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority > self.nodes[b as usize].priority {
            let right = self.nodes[a as usize].right;
            let m = self.merge(right, b);
            self.nodes[a as usize].right = m;
            self.update(a);
            a
        } else {
            let left = self.nodes[b as usize].left;
            let m = self.merge(a, left);
            self.nodes[b as usize].left = m;
            self.update(b);
            b
        }
    }

    /// Adds `[start, end)` for `id`. `(start, id)` must not be present.
    pub fn insert(&mut self, start: Box<[u8]>, end: End, id: u32) {
        let (l, r) = self.split(self.root, &start, id, false);
        let priority = self.next_priority();
        let node = Node {
            start,
            end,
            id,
            priority,
            left: NIL,
            right: NIL,
            max: NIL,
        };
        let n = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                let slot = u32::try_from(self.nodes.len())
                    .ok()
                    .filter(|&s| s != NIL)
                    .expect("invariant: one interval per watcher, at most MAX_WATCHERS_TOTAL");
                self.nodes.push(node);
                slot
            }
        };
        self.nodes[n as usize].max = n;
        let left = self.merge(l, n);
        self.root = self.merge(left, r);
        self.len += 1;
    }

    /// Removes the interval of `id` starting at `start`; false if absent.
    pub fn remove(&mut self, start: &[u8], id: u32) -> bool {
        let (l, r) = self.split(self.root, start, id, false);
        let (m, r) = self.split(r, start, id, true);
        let found = m != NIL;
        if found {
            debug_assert!(
                self.nodes[m as usize].left == NIL && self.nodes[m as usize].right == NIL,
                "interval tree invariant: (start, id) is unique"
            );
            let node = &mut self.nodes[m as usize];
            node.start = Box::default();
            node.end = End::Unbounded;
            self.free.push(m);
            self.len -= 1;
        }
        self.root = self.merge(l, r);
        found
    }

    /// Calls `f(id)` for every interval that contains `key`.
    pub fn stab(&self, key: &[u8], f: &mut impl FnMut(u32)) {
        self.stab_from(self.root, key, f);
    }

    fn stab_from(&self, t: u32, key: &[u8], f: &mut impl FnMut(u32)) {
        if t == NIL {
            return;
        }
        let n = &self.nodes[t as usize];
        if !self.nodes[n.max as usize].end.is_after(key) {
            return;
        }
        self.stab_from(n.left, key, f);
        if &n.start[..] <= key {
            if n.end.is_after(key) {
                f(n.id);
            }
            self.stab_from(n.right, key, f);
        }
    }

    /// Checks the treap and augmentation invariants; panics naming the
    /// broken one. O(n): for tests.
    pub fn assert_invariants(&self) {
        let mut count = 0;
        self.check(self.root, None, &mut count);
        assert_eq!(count, self.len, "interval tree invariant: len counts nodes");
    }

    fn check(&self, t: u32, parent_priority: Option<u32>, count: &mut usize) -> Option<&End> {
        if t == NIL {
            return None;
        }
        *count += 1;
        let n = &self.nodes[t as usize];
        if let Some(p) = parent_priority {
            assert!(n.priority <= p, "interval tree invariant: heap order");
        }
        for (child, before) in [(n.left, true), (n.right, false)] {
            if child != NIL {
                let o = self.order(child, &n.start, n.id);
                assert_eq!(
                    o,
                    if before {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    },
                    "interval tree invariant: search order"
                );
            }
        }
        let mut max = &n.end;
        for child in [n.left, n.right] {
            if let Some(e) = self.check(child, Some(n.priority), count) {
                max = max.max(e);
            }
        }
        assert_eq!(
            &self.nodes[n.max as usize].end, max,
            "interval tree invariant: max end of the subtree"
        );
        Some(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> Box<[u8]> {
        vec![b].into_boxed_slice()
    }

    #[test]
    fn stab_finds_exactly_the_containing_intervals() {
        let mut t = IntervalTree::default();
        t.insert(key(b'a'), End::Key(key(b'c')), 1);
        t.insert(key(b'b'), End::Unbounded, 2);
        t.insert(key(b'b'), End::Key(key(b'b')), 3);
        t.insert(key(b'd'), End::Key(key(b'f')), 4);
        t.assert_invariants();
        let stab = |k: u8| {
            let mut v = Vec::new();
            t.stab(&[k], &mut |id| v.push(id));
            v.sort();
            v
        };
        assert_eq!(stab(b'a'), vec![1]);
        assert_eq!(stab(b'b'), vec![1, 2]);
        assert_eq!(stab(b'c'), vec![2]);
        assert_eq!(stab(b'e'), vec![2, 4]);
        assert_eq!(stab(b'f'), vec![2]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, Option<u8>, u32),
        Remove(usize),
        Stab(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..20, proptest::option::of(0u8..22), 0u32..8)
                .prop_map(|(s, e, id)| Op::Insert(s, e, id)),
            2 => (0usize..64).prop_map(Op::Remove),
            3 => (0u8..22).prop_map(Op::Stab),
        ]
    }

    proptest! {
        /// Against a list of intervals: every stab returns exactly the
        /// intervals containing the key, through inserts and removes.
        #[test]
        fn matches_a_brute_force_model(ops in proptest::collection::vec(op(), 1..200)) {
            let mut t = IntervalTree::default();
            let mut model: Vec<(u8, Option<u8>, u32)> = Vec::new();
            for o in ops {
                match o {
                    Op::Insert(s, e, id) => {
                        if model.iter().any(|m| m.0 == s && m.2 == id) {
                            continue;
                        }
                        let end = e.map_or(End::Unbounded, |e| End::Key(key(e)));
                        t.insert(key(s), end, id);
                        model.push((s, e, id));
                    }
                    Op::Remove(i) => {
                        if model.is_empty() {
                            prop_assert!(!t.remove(&[1], 1));
                            continue;
                        }
                        let (s, _, id) = model.swap_remove(i % model.len());
                        prop_assert!(t.remove(&[s], id));
                        prop_assert!(!t.remove(&[s], id));
                    }
                    Op::Stab(k) => {
                        let mut got = Vec::new();
                        t.stab(&[k], &mut |id| got.push(id));
                        got.sort();
                        let mut want: Vec<u32> = model
                            .iter()
                            .filter(|(s, e, _)| *s <= k && e.is_none_or(|e| k < e))
                            .map(|m| m.2)
                            .collect();
                        want.sort();
                        prop_assert_eq!(got, want);
                    }
                }
                t.assert_invariants();
                prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
