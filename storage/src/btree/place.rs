//! Placing a write transaction's pages at commit: every provisional id
//! (see `alloc`) becomes a real page id, and every reference to one — a
//! branch's children, a leaf's overflow runs, the dirty-page maps — is
//! rewritten. Only dirty nodes can refer to provisional pages: a committed
//! page never points at an uncommitted one.

use super::alloc::{is_provisional, PROVISIONAL_BASE};
use super::page::PageKind;
use super::tree::TreeWriter;

/// Marks a provisional id that was freed again before commit.
const UNPLACED: u64 = u64::MAX;

/// Provisional id -> real id, for one transaction's pages.
pub(crate) struct Placement {
    /// Indexed by `id - PROVISIONAL_BASE`.
    real: Vec<u64>,
}

impl Placement {
    /// The real id of `id` (a real id stays as it is).
    pub(crate) fn real(&self, id: u64) -> u64 {
        if !is_provisional(id) {
            return id;
        }
        let r = self
            .real
            .get((id - PROVISIONAL_BASE) as usize)
            .copied()
            .unwrap_or(UNPLACED);
        assert!(
            r != UNPLACED,
            "invariant: provisional page {id:#x} is placed before anything refers to it"
        );
        r
    }
}

impl TreeWriter<'_> {
    /// Places every page this transaction made: overflow runs first (each
    /// needs contiguous pages), then branches, then leaves, each group in
    /// the order it was made, so that pages likely to be freed together
    /// (branches are copied again by almost every commit) lie together.
    pub(crate) fn place(&mut self) -> Placement {
        let count = (self.alloc.provisional_end() - PROVISIONAL_BASE) as usize;
        let mut real = vec![UNPLACED; count];
        let index = |id: u64| (id - PROVISIONAL_BASE) as usize;

        let mut runs: Vec<(u64, u32)> = self
            .overflow
            .iter()
            .map(|(&id, v)| (id, self.shared.limits.overflow_pages(v.len())))
            .collect();
        runs.sort_unstable();
        for (id, pages) in runs {
            real[index(id)] = self.alloc.alloc_run(pages);
        }

        let (mut branches, mut leaves) = (Vec::new(), Vec::new());
        for (&id, n) in &self.nodes {
            assert!(
                is_provisional(id),
                "invariant: a dirty page is provisional until placed (page {id})"
            );
            match n.kind() {
                PageKind::Branch => branches.push(id),
                _ => leaves.push(id),
            }
        }
        branches.sort_unstable();
        leaves.sort_unstable();
        let ids = self
            .alloc
            .place_pages((branches.len() + leaves.len()) as u64);
        for (&id, r) in branches.iter().chain(&leaves).zip(ids) {
            real[index(id)] = r;
        }
        let placement = Placement { real };

        let nodes = std::mem::take(&mut self.nodes);
        self.nodes.reserve(nodes.len());
        for (id, mut n) in nodes {
            n.map_ids(|c| placement.real(c));
            self.nodes.insert(placement.real(id), n);
        }
        let overflow = std::mem::take(&mut self.overflow);
        self.overflow.reserve(overflow.len());
        for (id, v) in overflow {
            self.overflow.insert(placement.real(id), v);
        }
        placement
    }
}
