//! §5.2 leader election, §5.4.1 election restriction, thesis §9.6 PreVote,
//! §6.2 CheckQuorum, §3.10 leadership transfer.

use super::super::{Message, MessageKind, Role};
use super::{config, restarted, Net};

#[test]
fn election_first_candidate_wins_with_majority() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.node(2).leader(), Some(1));
    assert_eq!(net.node(3).term(), net.node(1).term());
}

#[test]
fn election_leader_needs_majority() {
    let mut net = Net::cluster(5, |c| c.pre_vote = false);
    net.isolated.extend([3, 4, 5]);
    net.campaign(1);
    assert_eq!(
        net.node(1).role(),
        Role::Candidate,
        "two votes of five are not enough"
    );
    net.isolated.remove(&3);
    net.campaign(1);
    assert_eq!(net.node(1).role(), Role::Leader);
}

#[test]
fn election_one_vote_per_term_is_persisted() {
    let mut net = Net::cluster(3, |c| c.pre_vote = false);
    net.campaign(1);
    // Node 3 voted for 1 in term 1; a request from 2 in the same term is refused.
    let mut m = Message::new(MessageKind::Vote, 3);
    (m.from, m.term, m.index, m.log_term) = (2, 1, 5, 5);
    net.node(3).step(m);
    let rd = net.node(3).ready();
    assert_eq!(rd.hard_state.map(|h| h.vote).unwrap_or(1), 1);
    let resp: Vec<_> = rd
        .persisted_messages
        .iter()
        .filter(|m| m.kind == MessageKind::VoteResp)
        .collect();
    assert!(
        resp.iter().all(|m| m.reject),
        "a second vote in one term must be refused"
    );
    net.node(3).advance(rd);
}

#[test]
fn election_vote_waits_for_persistence() {
    let mut n = restarted(config(2, &[1, 2, 3]), 1, &[1]);
    let mut m = Message::new(MessageKind::Vote, 2);
    (m.from, m.term, m.index, m.log_term) = (1, 2, 1, 1);
    n.step(m);
    let rd = n.ready();
    assert_eq!(rd.hard_state.map(|h| (h.term, h.vote)), Some((2, 1)));
    assert!(
        rd.messages.is_empty(),
        "a vote grant must not leave before the vote is durable"
    );
    assert_eq!(rd.persisted_messages.len(), 1);
    assert!(!rd.persisted_messages[0].reject);
}

#[test]
fn election_rejects_candidate_with_stale_log() {
    // Node 1's log ends in term 1; nodes 2 and 3 hold an entry of term 2.
    let voters = [1, 2, 3];
    let mut net = Net::new(vec![
        restarted(config(1, &voters), 2, &[1]),
        restarted(config(2, &voters), 2, &[1, 2]),
        restarted(config(3, &voters), 2, &[1, 2]),
    ]);
    net.node(1).cfg.pre_vote = false;
    net.campaign(1);
    assert_ne!(
        net.node(1).role(),
        Role::Leader,
        "§5.4.1: a less up-to-date log cannot win"
    );
    net.campaign(2);
    assert_eq!(net.leaders(), vec![2]);
}

#[test]
fn election_timeouts_are_randomized_and_deterministic() {
    let timeouts = |seed: u64| {
        let mut c = config(1, &[1, 2, 3]);
        c.seed = seed;
        let mut n = restarted(c, 0, &[]);
        let mut out = Vec::new();
        for _ in 0..5 {
            let mut ticks = 0;
            while n.role() == Role::Follower {
                n.tick();
                ticks += 1;
            }
            out.push(ticks);
            n.become_follower(n.term(), 0);
        }
        out
    };
    let a = timeouts(42);
    assert_eq!(a, timeouts(42), "same seed, same timeouts");
    assert!(
        a.iter().all(|&t| (10..20).contains(&t)),
        "in [election_tick, 2 * election_tick): {a:?}"
    );
    assert!(a.iter().any(|&t| t != a[0]), "randomized: {a:?}");
}

#[test]
fn prevote_partitioned_node_does_not_disrupt() {
    let mut net = Net::cluster(3, |c| (c.pre_vote, c.check_quorum) = (true, true));
    net.campaign(1);
    let term = net.node(1).term();
    net.isolated.insert(3);
    net.tick_all(100);
    assert_eq!(
        net.node(3).term(),
        term,
        "PreVote keeps the isolated node's term"
    );
    net.isolated.clear();
    net.tick_all(5);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(
        net.node(1).term(),
        term,
        "the returning node deposed nobody"
    );
}

#[test]
fn without_prevote_a_partitioned_node_inflates_its_term() {
    let mut net = Net::cluster(3, |c| (c.pre_vote, c.check_quorum) = (false, false));
    net.campaign(1);
    let term = net.node(1).term();
    net.isolated.insert(3);
    net.tick_all(100);
    assert!(
        net.node(3).term() > term + 2,
        "the contrast that PreVote exists for"
    );
}

#[test]
fn check_quorum_leader_steps_down() {
    let mut net = Net::cluster(3, |c| c.check_quorum = true);
    net.campaign(1);
    net.isolated.extend([2, 3]);
    // The first check still sees the followers heard during the election.
    for _ in 0..2 * net.node(1).cfg.election_tick {
        net.node(1).tick();
    }
    assert_eq!(
        net.node(1).role(),
        Role::Follower,
        "a leader that lost its quorum steps down"
    );
}

#[test]
fn check_quorum_followers_ignore_votes_while_leader_is_alive() {
    let mut net = Net::cluster(3, |c| (c.pre_vote, c.check_quorum) = (false, true));
    net.campaign(1);
    let term = net.node(1).term();
    // Node 3 campaigns (as if its timer fired alone); 2 still hears 1.
    net.node(3).hup(false);
    net.settle();
    assert_eq!(
        net.node(2).term(),
        term,
        "in lease: the vote request is ignored"
    );
    assert_eq!(net.node(2).leader(), Some(1));
}

#[test]
fn leader_transfer_moves_leadership_with_timeout_now() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    net.node(1).transfer_leader(3).unwrap();
    net.settle();
    assert_eq!(net.leaders(), vec![3]);
    assert_eq!(net.node(1).leader(), Some(3));
}

#[test]
fn leader_transfer_refuses_proposals_then_gives_up() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.isolated.insert(3);
    net.node(1).transfer_leader(3).unwrap();
    assert_eq!(
        net.node(1).propose(vec![1]),
        Err(super::super::ProposeError::TransferInProgress)
    );
    for _ in 0..net.node(1).cfg.election_tick {
        net.node(1).tick();
    }
    net.settle();
    assert_eq!(net.node(1).role(), Role::Leader);
    assert!(
        net.node(1).propose(vec![1]).is_ok(),
        "the transfer was abandoned after an election timeout"
    );
}

#[test]
fn election_a_sole_voter_campaigns_without_waiting_for_a_timeout() {
    let mut net = Net::cluster(1, |_| {});
    net.node(1).campaign_if_sole_voter();
    net.settle();
    assert_eq!(net.leaders(), vec![1]);
    // With peers it never short-cuts the election timeout.
    let mut net = Net::cluster(3, |_| {});
    net.node(1).campaign_if_sole_voter();
    net.settle();
    assert!(net.leaders().is_empty());
}
