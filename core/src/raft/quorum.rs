//! Majority arithmetic over the voter set. Cairn changes membership one
//! server at a time, so there is only ever one majority config (no joint
//! quorums): any two majorities of configurations that differ by one server
//! overlap (§4.2 of Ongaro's thesis).

use std::collections::{BTreeMap, BTreeSet};

use super::message::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Won,
    Lost,
    Pending,
}

/// The size of a majority of `n` voters.
pub(crate) fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// The highest index replicated on a majority of `voters`, given each
/// voter's match index (absent voters count as 0).
pub(crate) fn committed_index(voters: &BTreeSet<NodeId>, matched: impl Fn(NodeId) -> u64) -> u64 {
    if voters.is_empty() {
        return 0;
    }
    let mut idx: Vec<u64> = voters.iter().map(|&v| matched(v)).collect();
    idx.sort_unstable_by(|a, b| b.cmp(a));
    idx[majority(voters.len()) - 1]
}

/// The outcome of an election so far.
pub(crate) fn vote_result(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let granted = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&true))
        .count();
    let rejected = voters
        .iter()
        .filter(|v| votes.get(v) == Some(&false))
        .count();
    let need = majority(voters.len());
    if granted >= need {
        VoteResult::Won
    } else if voters.len() - rejected >= need {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// True if `acks` holds a majority of `voters`.
pub(crate) fn has_quorum(voters: &BTreeSet<NodeId>, acks: impl Fn(NodeId) -> bool) -> bool {
    voters.iter().filter(|&&v| acks(v)).count() >= majority(voters.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn committed_index_is_the_majority_median() {
        let m: BTreeMap<u64, u64> = [(1, 5), (2, 3), (3, 9)].into();
        assert_eq!(committed_index(&set(&[1, 2, 3]), |v| m[&v]), 5);
        assert_eq!(
            committed_index(&set(&[1, 2, 3, 4]), |v| *m.get(&v).unwrap_or(&0)),
            3
        );
        assert_eq!(committed_index(&set(&[3]), |v| m[&v]), 9);
    }

    #[test]
    fn election_leader_needs_majority() {
        let voters = set(&[1, 2, 3, 4, 5]);
        let mut votes = BTreeMap::from([(1, true), (2, true)]);
        assert_eq!(vote_result(&voters, &votes), VoteResult::Pending);
        votes.insert(3, true);
        assert_eq!(vote_result(&voters, &votes), VoteResult::Won);
        let lost = BTreeMap::from([(1, true), (2, false), (3, false), (4, false)]);
        assert_eq!(vote_result(&voters, &lost), VoteResult::Lost);
    }
}
