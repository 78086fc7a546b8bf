//! The cluster-wide safety properties of Raft (Figure 3 of the paper),
//! checked as the simulation runs. Each returns the violation as text.

use std::collections::{BTreeMap, HashMap};

use super::super::message::{Entry, EntryKind, NodeId};
use super::super::Raft;

/// A fingerprint of an entry's content.
type Content = (EntryKind, Vec<u8>);

#[derive(Default)]
pub(crate) struct Checker {
    /// Election safety: the leader of each term.
    leaders: BTreeMap<u64, NodeId>,
    /// Log matching: what `(index, term)` holds and the term before it.
    entries: HashMap<(u64, u64), (Content, Option<u64>)>,
    /// Every entry any node ever considered committed.
    committed: BTreeMap<u64, (u64, Content)>,
    /// State machine safety: what was applied at each index.
    applied: HashMap<u64, (u64, Content)>,
    pub(crate) elections: u64,
}

impl Checker {
    /// Election safety and leader completeness, for a node that is leader.
    pub(crate) fn leader(&mut self, raft: &Raft) -> Result<(), String> {
        let (term, id) = (raft.term(), raft.id());
        match self.leaders.get(&term) {
            Some(&other) if other != id => {
                return Err(format!(
                    "election safety: {other} and {id} both leaders in term {term}"
                ))
            }
            Some(_) => return Ok(()),
            None => {}
        }
        self.leaders.insert(term, id);
        self.elections += 1;
        let covered_by_snapshot = raft.first_index().saturating_sub(1);
        for (&index, (t, _)) in self.committed.iter() {
            if index > covered_by_snapshot && raft.term_at(index) != Some(*t) {
                return Err(format!(
                    "leader completeness: leader {id} of term {term} lacks committed entry {index} of term {t} (has {:?})",
                    raft.term_at(index)
                ));
            }
        }
        Ok(())
    }

    /// Log matching, for entries a node is about to persist: one
    /// `(index, term)` always names the same content and the same
    /// previous term (so, by induction, the same prefix).
    pub(crate) fn appended(
        &mut self,
        node: NodeId,
        raft: &Raft,
        ents: &[Entry],
    ) -> Result<(), String> {
        for e in ents {
            let prev = if e.index > 1 {
                raft.term_at(e.index - 1)
            } else {
                Some(0)
            };
            let content = (e.kind, e.data.clone());
            match self.entries.get(&(e.index, e.term)) {
                Some((c, p)) => {
                    if *c != content {
                        return Err(format!(
                            "log matching: node {node} has other content at index {} term {}",
                            e.index, e.term
                        ));
                    }
                    if let (Some(p), Some(prev)) = (p, prev) {
                        if *p != prev {
                            return Err(format!(
                                "log matching: node {node} has term {prev} before ({}, {}), another node {p}",
                                e.index, e.term
                            ));
                        }
                    }
                }
                None => {
                    self.entries.insert((e.index, e.term), (content, prev));
                }
            }
        }
        Ok(())
    }

    /// Committed entries never change: `raft` believes `lo..=hi` committed.
    pub(crate) fn committed(&mut self, raft: &Raft, lo: u64, hi: u64) -> Result<(), String> {
        for index in lo.max(raft.first_index())..=hi {
            let e = raft
                .entry(index)
                .ok_or_else(|| format!("node {} committed {index} but lacks it", raft.id()))?;
            let content = (e.kind, e.data.clone());
            match self.committed.get(&index) {
                Some((t, c)) if (*t, c) != (e.term, &content) => {
                    return Err(format!(
                        "commit safety: node {} commits term {} at index {index}, earlier term {t} was committed there",
                        raft.id(),
                        e.term
                    ))
                }
                Some(_) => {}
                None => {
                    self.committed.insert(index, (e.term, content));
                }
            }
        }
        Ok(())
    }

    /// State machine safety: no two nodes apply different entries at one index.
    pub(crate) fn apply(&mut self, node: NodeId, e: &Entry) -> Result<(), String> {
        let content = (e.kind, e.data.clone());
        match self.applied.get(&e.index) {
            Some((t, c)) if (*t, c) != (e.term, &content) => Err(format!(
                "state machine safety: node {node} applies term {} at index {}, another node applied term {t}",
                e.term, e.index
            )),
            Some(_) => Ok(()),
            None => {
                self.applied.insert(e.index, (e.term, content));
                Ok(())
            }
        }
    }

    /// The content applied at `index`, if any node applied it.
    pub(crate) fn applied_at(&self, index: u64) -> Option<&[u8]> {
        self.applied.get(&index).map(|(_, (_, d))| d.as_slice())
    }
}
