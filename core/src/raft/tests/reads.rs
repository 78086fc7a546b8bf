//! Thesis §6.4: ReadIndex linearizable reads, batched over heartbeat rounds.

use super::super::{MessageKind, ReadState};
use super::Net;

fn ctx(i: u8) -> Vec<u8> {
    vec![i]
}

#[test]
fn read_index_waits_for_heartbeat_quorum() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.isolated.extend([2, 3]);
    net.node(1).read_index(ctx(1)).unwrap();
    net.tick_all(3);
    assert!(
        net.read_states[&1].is_empty(),
        "no majority confirmed the leadership yet"
    );
    net.isolated.clear();
    net.tick_all(1);
    let commit = net.node(1).committed();
    assert_eq!(
        net.read_states[&1],
        vec![ReadState {
            index: commit,
            context: ctx(1)
        }]
    );
}

#[test]
fn read_index_batches_many_reads_into_one_round() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.node(1).read_index(ctx(0)).unwrap(); // starts a round
    for i in 1..=20 {
        net.node(1).read_index(ctx(i)).unwrap(); // queued for the next round
    }
    let msgs = net.take_queue();
    assert_eq!(
        Net::count(&msgs, MessageKind::Heartbeat),
        2,
        "one round: one heartbeat per follower"
    );
    for m in msgs {
        net.deliver(m);
    }
    net.settle();
    assert_eq!(
        net.read_states[&1].len(),
        21,
        "the queued reads shared the second round"
    );
}

#[test]
fn read_index_on_follower_is_forwarded_to_leader() {
    let mut net = Net::cluster(3, |_| {});
    net.campaign(1);
    net.node(1).propose(b"w".to_vec()).unwrap();
    net.settle();
    net.node(3).read_index(ctx(7)).unwrap();
    net.settle();
    let commit = net.node(1).committed();
    assert_eq!(
        net.read_states[&3],
        vec![ReadState {
            index: commit,
            context: ctx(7)
        }]
    );
}

#[test]
fn read_index_waits_for_an_entry_of_the_leaders_term() {
    let mut net = Net::cluster(3, |_| {});
    net.isolated.extend([2, 3]);
    net.node(1).hup(true); // a candidate that will win once healed
    net.isolated.clear();
    // Win the election but hold back the appends of the new term.
    let msgs = net.take_queue();
    for m in msgs {
        net.deliver(m);
    }
    let msgs = net.take_queue();
    for m in msgs.into_iter().filter(|m| m.kind != MessageKind::Append) {
        net.deliver(m);
    }
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.node(1).committed(), 0);
    net.node(1).read_index(ctx(1)).unwrap();
    net.pump();
    assert!(
        net.queue.iter().all(|m| m.kind != MessageKind::Heartbeat),
        "no round before our term commits"
    );
    net.queue.clear();
    net.tick_all(2);
    assert_eq!(net.read_states[&1].len(), 1);
    assert!(
        net.read_states[&1][0].index >= 1,
        "the read index covers the new term's entry"
    );
}

#[test]
fn read_index_without_leader_is_refused() {
    let mut net = Net::cluster(3, |_| {});
    assert!(net.node(2).read_index(ctx(1)).is_err());
}
