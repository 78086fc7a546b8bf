//! §7 snapshots and thesis §4 membership changes: one server at a time,
//! learners, removal of the leader.

use super::super::{ConfChange, Persisted, ProposeError, Raft, Role};
use super::{config, Net};

fn cluster_with_learner() -> Net {
    let mut net = Net::cluster(3, |_| {});
    let mut c4 = config(4, &[1, 2, 3]); // bootstrap view, as the others started
    c4.seed = 99;
    net.nodes
        .insert(4, Raft::new(c4, Persisted::default()).unwrap());
    net.applied.insert(4, Vec::new());
    net.read_states.insert(4, Vec::new());
    net.campaign(1);
    net.node(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    net.settle();
    net.tick_all(2);
    net
}

#[test]
fn learner_receives_the_log_but_never_votes_or_campaigns() {
    let mut net = cluster_with_learner();
    assert_eq!(net.node(4).conf_state().learners, vec![4]);
    net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    net.tick_all(1);
    assert_eq!(net.applied[&4], vec![b"x".to_vec()]);
    net.isolated.extend([1, 2, 3]);
    net.tick_all(50);
    assert_eq!(
        net.node(4).role(),
        Role::Follower,
        "a learner never campaigns"
    );
}

#[test]
fn learner_does_not_count_toward_commit() {
    let mut net = cluster_with_learner();
    net.isolated.extend([2, 3]);
    let index = net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    assert_eq!(net.node(4).last_index(), index, "the learner holds it");
    assert!(
        net.node(1).committed() < index,
        "but leader + learner are not a majority of voters"
    );
}

#[test]
fn promotion_refused_while_learner_is_far_behind() {
    let mut net = Net::cluster(3, |c| c.max_learner_lag_entries = 5);
    net.nodes.insert(
        4,
        Raft::new(config(4, &[1, 2, 3]), Persisted::default()).unwrap(),
    );
    net.applied.insert(4, Vec::new());
    net.read_states.insert(4, Vec::new());
    net.campaign(1);
    net.node(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    net.settle();
    net.isolated.insert(4);
    for i in 0..10u8 {
        net.node(1).propose(vec![i]).unwrap();
    }
    net.tick_all(1);
    let r = net.node(1).propose_conf_change(ConfChange::AddVoter(4));
    assert!(
        matches!(r, Err(ProposeError::LearnerBehind { id: 4, .. })),
        "{r:?}"
    );
    net.isolated.clear();
    net.tick_all(3);
    assert!(net
        .node(1)
        .propose_conf_change(ConfChange::AddVoter(4))
        .is_ok());
    net.tick_all(2);
    assert_eq!(net.node(2).conf_state().voters, vec![1, 2, 3, 4]);
}

#[test]
fn only_one_membership_change_at_a_time() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.settle();
    net.isolated.extend([2, 3]);
    net.node(1)
        .propose_conf_change(ConfChange::AddLearner(4))
        .unwrap();
    assert_eq!(
        net.node(1).propose_conf_change(ConfChange::AddLearner(5)),
        Err(ProposeError::ConfChangePending)
    );
}

#[test]
fn removed_leader_steps_down_and_others_elect() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.node(1)
        .propose_conf_change(ConfChange::Remove(1))
        .unwrap();
    net.settle();
    net.tick_all(1);
    assert_ne!(
        net.node(1).role(),
        Role::Leader,
        "the removed leader stepped down"
    );
    assert_eq!(net.node(2).conf_state().voters, vec![2, 3]);
    net.tick_all(40);
    let leaders = net.leaders();
    assert_eq!(leaders.len(), 1);
    assert_ne!(leaders[0], 1);
}

#[test]
fn snapshot_sent_when_follower_needs_compacted_entries() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.isolated.insert(3);
    for i in 0..20u8 {
        net.node(1).propose(vec![i]).unwrap();
    }
    net.settle();
    net.node(1).compact(b"state-at-21".to_vec());
    assert!(net.node(1).first_index() > 2);
    net.isolated.clear();
    net.tick_all(3);
    assert_eq!(
        net.node(3).snapshot().map(|s| s.data.as_slice()),
        Some(&b"state-at-21"[..])
    );
    assert_eq!(net.node(3).committed(), net.node(1).committed());
    net.node(1).propose(b"after".to_vec()).unwrap();
    net.settle();
    assert_eq!(
        net.applied[&3],
        vec![b"after".to_vec()],
        "replication resumes after the snapshot"
    );
}

#[test]
fn compact_to_keeps_the_entries_after_the_given_index() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    for i in 0..20u8 {
        net.node(1).propose(vec![i]).unwrap();
    }
    net.settle();
    let last = net.node(1).last_index();
    net.node(1).compact_to(last - 5, Vec::new());
    assert_eq!(net.node(1).first_index(), last - 4);
    assert!(net.node(1).entry(last - 4).is_some());
    // Never past what is applied, and never backwards.
    net.node(1).compact_to(u64::MAX, Vec::new());
    assert_eq!(net.node(1).first_index(), net.node(1).applied() + 1);
    net.node(1).compact_to(3, Vec::new());
    assert_eq!(net.node(1).first_index(), net.node(1).applied() + 1);
}

#[test]
fn restart_recovers_term_vote_log_and_membership() {
    let mut net = cluster_with_learner();
    net.node(1).propose(b"x".to_vec()).unwrap();
    net.settle();
    let n2 = net.node(2);
    let persisted = Persisted {
        hard_state: n2.hard_state(),
        snapshot: None,
        entries: (1..=n2.last_index())
            .map(|i| n2.entry(i).unwrap().clone())
            .collect(),
    };
    let mut cfg = config(2, &[1, 2, 3]);
    cfg.applied = n2.applied();
    let r = Raft::new(cfg, persisted).unwrap();
    assert_eq!(
        (r.term(), r.last_index()),
        (net.node(2).term(), net.node(2).last_index())
    );
    assert_eq!(
        r.conf_state().learners,
        vec![4],
        "membership changes through `applied` are re-applied"
    );
}

#[test]
fn snapshot_arriving_during_fsync_is_not_lost() {
    use super::super::{ConfState, Message, MessageKind, Snapshot, SnapshotMeta};
    let mut f = super::restarted(config(2, &[1, 2, 3]), 1, &[1, 1, 1]);
    let mut hb = Message::new(MessageKind::Heartbeat, 2);
    (hb.from, hb.term, hb.commit) = (1, 1, 3);
    f.step(hb);
    let r1 = f.ready();
    assert_eq!(r1.committed_entries.len(), 3);
    // While r1 is being persisted and applied, a snapshot arrives.
    let mut m = Message::new(MessageKind::Snapshot, 2);
    (m.from, m.term) = (1, 1);
    let conf = ConfState {
        voters: vec![1, 2, 3],
        learners: vec![],
    };
    m.snapshot = Some(Snapshot {
        meta: SnapshotMeta {
            index: 10,
            term: 1,
            conf,
        },
        data: b"s".to_vec(),
    });
    f.step(m);
    f.advance(r1);
    let r2 = f.ready();
    assert_eq!(
        r2.snapshot.as_ref().map(|s| s.meta.index),
        Some(10),
        "still handed out"
    );
    assert_eq!(
        r2.persisted_messages[0].index, 10,
        "acknowledged once persisted"
    );
    f.advance(r2);
    assert_eq!((f.applied(), f.committed(), f.first_index()), (10, 10, 11));
}
