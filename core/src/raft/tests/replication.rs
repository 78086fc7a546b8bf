//! §5.3 log replication, §5.4.2 committing entries from previous terms,
//! flow control, and the Ready contract (thesis §10.2.1: the leader
//! replicates in parallel with its own fsync).

use super::super::{Message, MessageKind, Role};
use super::{config, restarted, Net};

#[test]
fn replication_commits_on_majority_and_applies_everywhere() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.isolated.insert(3);
    let index = net.node(1).propose(b"a".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.node(1).committed(), index, "two of three is a majority");
    assert_eq!(net.applied[&1], vec![b"a".to_vec()]);
    net.isolated.clear();
    net.tick_all(2);
    assert_eq!(
        net.applied[&3],
        vec![b"a".to_vec()],
        "the lagging follower catches up"
    );
}

#[test]
fn leader_counts_itself_only_after_persisting() {
    let mut n = restarted(config(1, &[1]), 0, &[]);
    while n.role() != Role::Leader {
        n.tick();
    }
    while n.has_ready() {
        let rd = n.ready();
        n.advance(rd);
    }
    let index = n.propose(b"x".to_vec()).unwrap();
    assert!(n.committed() < index, "not durable anywhere yet");
    let rd = n.ready();
    assert_eq!(rd.entries.len(), 1);
    assert!(rd.committed_entries.is_empty());
    n.advance(rd);
    assert_eq!(
        n.committed(),
        index,
        "durable on the only voter after advance"
    );
}

#[test]
fn leader_sends_appends_before_its_own_fsync() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.node(1).propose(b"x".to_vec()).unwrap();
    let rd = net.node(1).ready();
    assert_eq!(rd.entries.len(), 1, "to persist");
    assert_eq!(
        Net::count(&rd.messages, MessageKind::Append),
        2,
        "sent now, in parallel with the fsync"
    );
    assert!(rd.persisted_messages.is_empty());
    net.node(1).advance(rd);
}

#[test]
fn follower_acks_append_only_after_persisting() {
    let mut f = restarted(config(2, &[1, 2, 3]), 1, &[1]);
    let mut m = Message::new(MessageKind::Append, 2);
    (m.from, m.term, m.index, m.log_term) = (1, 1, 1, 1);
    m.entries = super::entries(&[1, 1])[1..].to_vec();
    f.step(m);
    let rd = f.ready();
    assert_eq!(rd.entries.len(), 1);
    assert!(rd.messages.is_empty());
    assert_eq!(rd.persisted_messages[0].kind, MessageKind::AppendResp);
    assert_eq!(rd.persisted_messages[0].index, 2);
}

#[test]
fn follower_rejects_conflicting_append_with_hint() {
    // Follower: terms 1 1 2 2 2; the leader probes at index 5 with term 3.
    let mut f = restarted(config(2, &[1, 2, 3]), 3, &[1, 1, 2, 2, 2]);
    let mut m = Message::new(MessageKind::Append, 2);
    (m.from, m.term, m.index, m.log_term) = (1, 3, 5, 3);
    f.step(m);
    let rd = f.ready();
    let r = &rd.persisted_messages[0];
    assert!(r.reject);
    assert_eq!(
        (r.index, r.reject_hint, r.log_term),
        (5, 5, 2),
        "the last index with term <= 3, and its term"
    );
    f.advance(rd);
    // Probing at index 3 with term 1 (a term the follower holds only up to 2).
    let mut m = Message::new(MessageKind::Append, 2);
    (m.from, m.term, m.index, m.log_term) = (1, 3, 4, 1);
    f.step(m);
    let rd = f.ready();
    assert_eq!(
        (
            rd.persisted_messages[0].reject_hint,
            rd.persisted_messages[0].log_term
        ),
        (2, 1)
    );
}

#[test]
fn leader_backtracks_over_a_whole_conflicting_term_at_once() {
    // Leader log: 1, then term 3 entries; follower: 1, then many term-2 entries.
    let voters = [1, 2, 3];
    let mut leader_cfg = config(1, &voters);
    leader_cfg.pre_vote = false;
    let mut net = Net::new(vec![
        restarted(leader_cfg, 3, &[1, 3, 3, 3, 3, 3, 3, 3, 3, 3]),
        restarted(
            config(2, &voters),
            2,
            &[1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
        ),
        restarted(config(3, &voters), 3, &[1, 3, 3, 3, 3, 3, 3, 3, 3, 3]),
    ]);
    net.isolated.insert(3);
    net.node(1).hup(false);
    // Candidate → needs 2's vote: 2's log (last term 2) is behind, so it grants.
    net.settle();
    assert_eq!(net.node(1).role(), Role::Leader);
    let appends_to_2 = |net: &mut Net| {
        let msgs = net.take_queue();
        let n = msgs
            .iter()
            .filter(|m| m.to == 2 && m.kind == MessageKind::Append)
            .count();
        for m in msgs {
            if !net.isolated.contains(&m.to) && !net.isolated.contains(&m.from) {
                net.deliver(m);
            }
        }
        n
    };
    let mut rounds = 0;
    while net.node(2).term_at(11) != Some(4) && rounds < 20 {
        appends_to_2(&mut net);
        rounds += 1;
    }
    assert_eq!(
        net.node(2).term_at(2),
        Some(3),
        "the conflicting term-2 suffix was replaced"
    );
    assert!(
        rounds <= 4,
        "one rejection skips all of term 2 ({rounds} rounds)"
    );
}

#[test]
fn leader_commits_only_own_term_entries_by_counting() {
    // §5.4.2 / Figure 8: node 1 holds an entry of term 2 that 2 and 3 lack.
    let voters = [1, 2, 3];
    // Node 2's acknowledgements of index 3 (the leader's own-term entry)
    // are lost: the leader knows that a majority holds index 2 only.
    let lost_ack =
        |m: &Message| m.from == 2 && m.kind == MessageKind::AppendResp && !m.reject && m.index >= 3;
    let build = |unsafe_commit: bool| {
        let mut c1 = config(1, &voters);
        (c1.pre_vote, c1.max_size_per_msg_bytes) = (false, 1); // one entry per append
        c1.unsafe_commit_by_replica_count_for_tests = unsafe_commit;
        let mut net = Net::new(vec![
            restarted(c1, 2, &[1, 2]),
            restarted(config(2, &voters), 2, &[1]),
            restarted(config(3, &voters), 2, &[1]),
        ]);
        net.isolated.insert(3);
        net.node(1).hup(false);
        net.settle_without(lost_ack);
        assert_eq!(net.node(1).role(), Role::Leader);
        net
    };
    let mut net = build(false);
    assert_eq!(net.node(1).progress(2).map(|p| p.matched), Some(2));
    assert!(
        net.node(1).committed() < 2,
        "index 2 is on a majority but of an older term: not committed"
    );
    net.tick_all(2);
    assert_eq!(
        net.node(1).committed(),
        3,
        "once an own-term entry is on a majority, both commit"
    );

    let bad = &mut build(true);
    assert_eq!(
        bad.node(1).committed(),
        2,
        "the planted bug commits by counting replicas"
    );
}

#[test]
fn replication_pipelines_within_inflight_window() {
    let mut net = Net::cluster(2, |c| {
        (c.max_inflight_msgs, c.max_size_per_msg_bytes) = (3, 1)
    });
    net.campaign(1);
    net.settle();
    for i in 0..10u8 {
        net.node(1).propose(vec![i]).unwrap();
    }
    let msgs = net.take_queue();
    let appends = msgs
        .iter()
        .filter(|m| m.kind == MessageKind::Append && !m.entries.is_empty())
        .count();
    assert_eq!(
        appends, 3,
        "at most max_inflight_msgs unacknowledged appends"
    );
    assert!(
        msgs.iter().all(|m| m.entries.len() <= 1),
        "max_size_per_msg_bytes bounds each append"
    );
    for m in msgs {
        net.deliver(m);
    }
    net.settle();
    assert_eq!(
        net.applied[&2].len(),
        10,
        "the window slides as acks return"
    );
}

impl Net {
    /// Delivers everything except messages matching `hold`, which are dropped.
    pub(super) fn settle_without(&mut self, hold: impl Fn(&Message) -> bool) {
        for _ in 0..1000 {
            let msgs = self.take_queue();
            if msgs.is_empty() {
                return;
            }
            for m in msgs.into_iter().filter(|m| !hold(m)) {
                if !self.isolated.contains(&m.to) && !self.isolated.contains(&m.from) {
                    self.deliver(m);
                }
            }
        }
    }
}

#[test]
fn proposals_are_refused_beyond_the_uncommitted_bound() {
    let mut net = Net::cluster(3, |c| c.max_uncommitted_entries = 5);
    net.campaign(1);
    net.isolated.extend([2, 3]);
    let accepted = (0..10u8)
        .filter(|&i| net.node(1).propose(vec![i]).is_ok())
        .count();
    assert_eq!(accepted, 5);
    assert_eq!(
        net.node(1).propose(vec![0]),
        Err(super::super::ProposeError::Backpressure)
    );
    net.isolated.clear();
    net.tick_all(2);
    assert!(
        net.node(1).propose(vec![0]).is_ok(),
        "accepted again once committed"
    );
}

#[test]
fn malformed_messages_are_dropped_not_fatal() {
    let mut f = restarted(config(2, &[1, 2, 3]), 1, &[1]);
    let mut gap = Message::new(MessageKind::Append, 2);
    (gap.from, gap.term, gap.index, gap.log_term) = (1, 1, 1, 1);
    gap.entries = super::entries(&[1, 1, 1])[2..].to_vec(); // index 3 after 1: a gap
    f.step(gap);
    let mut future_term = Message::new(MessageKind::Append, 2);
    (
        future_term.from,
        future_term.term,
        future_term.index,
        future_term.log_term,
    ) = (1, 1, 1, 1);
    future_term.entries = super::entries(&[1, 5])[1..].to_vec(); // term 5 from a term-1 leader
    f.step(future_term);
    let mut empty_snap = Message::new(MessageKind::Snapshot, 2);
    (empty_snap.from, empty_snap.term) = (1, 1);
    f.step(empty_snap);
    assert_eq!(f.last_index(), 1);

    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    let mut ack = Message::new(MessageKind::AppendResp, 1);
    (ack.from, ack.term, ack.index) = (2, net.node(1).term(), 1000);
    net.node(1).step(ack);
    assert_eq!(
        net.node(1).progress(2).map(|p| p.matched),
        Some(1),
        "an ack beyond our log is ignored"
    );
}
