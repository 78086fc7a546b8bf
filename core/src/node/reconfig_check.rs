//! etcd's `--strict-reconfig-check` (on by default): the leader refuses a
//! membership change that would leave the cluster unable to reach a quorum
//! of started, connected voters. Pure logic over the applied membership and
//! who the leader heard from recently (see `Node::peer_heard`).
//!
//! - Adding a voter needs a quorum of the grown cluster already started
//!   (a member counts as started once it published its name); adding
//!   anyone needs every voter connected.
//! - Promoting a learner needs a quorum of the grown cluster started (the
//!   learner counts as started).
//! - Removing a voter needs a quorum of the rest started, and, unless the
//!   removed member is down anyway, a quorum of the rest connected.
//!   Removing a learner is always allowed.

use super::members::Membership;

pub const NOT_ENOUGH_STARTED: &str =
    "etcdserver: re-configuration failed due to not enough started members";
pub const UNHEALTHY: &str = "etcdserver: unhealthy cluster";

/// The change being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Add { learner: bool },
    Promote(u64),
    Remove(u64),
}

fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// `Ok` if `change` is safe; else etcd's error text. `me` is the leader
/// checking; `connected(id)` says whether it heard from peer `id` recently.
pub fn check(
    members: &Membership,
    me: u64,
    connected: impl Fn(u64) -> bool,
    change: Change,
) -> Result<(), &'static str> {
    let voters: Vec<_> = members.iter().filter(|m| !m.is_learner).collect();
    let started = |skip: u64| {
        voters
            .iter()
            .filter(|m| m.id != skip && !m.name.is_empty())
            .count()
    };
    let is_up = |id: u64| id == me || connected(id);
    match change {
        Change::Add { learner } => {
            if !learner {
                let (n, s) = (voters.len() + 1, started(0));
                // A lone started member may add its second (etcd's
                // special case), though the pair then needs both.
                if !(s == 1 && n == 2) && s < quorum(n) {
                    return Err(NOT_ENOUGH_STARTED);
                }
            }
            if !voters.iter().all(|m| is_up(m.id)) {
                return Err(UNHEALTHY);
            }
            Ok(())
        }
        Change::Promote(_) => {
            if started(0) + 1 < quorum(voters.len() + 1) {
                return Err(NOT_ENOUGH_STARTED);
            }
            Ok(())
        }
        Change::Remove(id) => {
            if !voters.iter().any(|m| m.id == id) {
                return Ok(());
            }
            if started(id) < quorum(voters.len() - 1) {
                return Err(NOT_ENOUGH_STARTED);
            }
            // A member that is down is no part of the active quorum.
            if !is_up(id) {
                return Ok(());
            }
            let active = voters.iter().filter(|m| is_up(m.id)).count();
            if active - 1 < quorum(voters.len() - 1) {
                return Err(UNHEALTHY);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::members::MemberInfo;

    fn cluster(voters: &[(u64, bool)], learners: &[u64]) -> Membership {
        let mut m = Membership::default();
        for &(id, started) in voters {
            m.add(MemberInfo {
                id,
                name: if started {
                    format!("n{id}")
                } else {
                    String::new()
                },
                peer_urls: vec![format!("http://127.0.0.1:{}", 2000 + id)],
                client_urls: Vec::new(),
                is_learner: false,
            });
        }
        for &id in learners {
            m.add(MemberInfo {
                id,
                name: format!("n{id}"),
                peer_urls: vec![format!("http://127.0.0.1:{}", 2000 + id)],
                client_urls: Vec::new(),
                is_learner: true,
            });
        }
        m
    }

    fn all(_: u64) -> bool {
        true
    }

    #[test]
    fn a_healthy_cluster_takes_every_change() {
        let m = cluster(&[(1, true), (2, true), (3, true)], &[4]);
        for c in [
            Change::Add { learner: false },
            Change::Add { learner: true },
            Change::Promote(4),
            Change::Remove(2),
            Change::Remove(1),
            Change::Remove(4),
        ] {
            assert_eq!(check(&m, 1, all, c), Ok(()), "{c:?}");
        }
    }

    #[test]
    fn removing_a_voter_while_another_is_down_loses_the_quorum() {
        let m = cluster(&[(1, true), (2, true), (3, true)], &[]);
        let down3 = |id| id != 3;
        assert_eq!(check(&m, 1, down3, Change::Remove(2)), Err(UNHEALTHY));
        // The member that is down may go: it is no part of the quorum.
        assert_eq!(check(&m, 1, down3, Change::Remove(3)), Ok(()));
        // Nor may anyone be added while a voter is down.
        assert_eq!(
            check(&m, 1, down3, Change::Add { learner: true }),
            Err(UNHEALTHY)
        );
        // Five members with one down may lose one more.
        let m5 = cluster(
            &[(1, true), (2, true), (3, true), (4, true), (5, true)],
            &[],
        );
        assert_eq!(check(&m5, 1, down3, Change::Remove(2)), Ok(()));
        let down34 = |id| id != 3 && id != 4;
        assert_eq!(check(&m5, 1, down34, Change::Remove(2)), Err(UNHEALTHY));
    }

    #[test]
    fn members_that_never_started_count_against_the_quorum() {
        // Two added voters never started: a third would leave 1 of 4.
        let m = cluster(&[(1, true), (2, false)], &[]);
        assert_eq!(
            check(&m, 1, all, Change::Add { learner: false }),
            Err(NOT_ENOUGH_STARTED)
        );
        // Learners need no started quorum.
        assert_eq!(check(&m, 1, all, Change::Add { learner: true }), Ok(()));
        // A lone member may add its second.
        let one = cluster(&[(1, true)], &[]);
        assert_eq!(check(&one, 1, all, Change::Add { learner: false }), Ok(()));
        // Removing the started one of a pair whose other never started
        // leaves nobody started.
        assert_eq!(
            check(&m, 1, all, Change::Remove(1)),
            Err(NOT_ENOUGH_STARTED)
        );
        assert_eq!(check(&m, 1, all, Change::Remove(2)), Ok(()));
        let m3 = cluster(&[(1, true), (2, false), (3, false)], &[4]);
        assert_eq!(
            check(&m3, 1, all, Change::Promote(4)),
            Err(NOT_ENOUGH_STARTED)
        );
    }
}
