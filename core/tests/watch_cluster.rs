//! Watches on a 3-member cluster: a watch on a follower sees the writes
//! made through the leader, and across a kill -9 of the leader a watcher
//! that reopens its watch elsewhere from its last revision + 1 misses
//! nothing and sees nothing twice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_core::testkit::TestCluster;
use cairn_net::client::{prefix_range_end, put_request};
use cairn_net::{BlockingClient, ClientError, ClientOptions};
use cairn_schemas::rpc;

fn client_of(c: &TestCluster, i: usize) -> BlockingClient {
    let addr: SocketAddr = c.nodes[i].endpoint().parse().unwrap();
    BlockingClient::connect(&[addr], ClientOptions::default()).unwrap()
}

fn watch_from(c: &BlockingClient, start: i64) -> cairn_net::WatchStream<'_> {
    c.watch(rpc::WatchCreateRequestT {
        key: Some(b"/k/".to_vec()),
        range_end: Some(prefix_range_end(b"/k/")),
        start_revision: start,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn follower_watch_and_leader_kill_resume_without_gap() {
    let mut c = TestCluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let wc = client_of(&c, follower);
    // Starts at revision 1: everything the writes below make.
    let mut on_follower = watch_from(&wc, 1);
    let lc = client_of(&c, leader);
    let mut acked = Vec::new();
    for i in 0..50 {
        let r = lc
            .put(put_request(format!("/k/{i}").as_bytes(), b"v"))
            .unwrap();
        acked.push(r.header.unwrap().revision);
    }
    // A watcher on the leader, which dies.
    let mut doomed = Some(watch_from(&lc, acked[0]));
    let mut seen: Vec<i64> = Vec::new();
    let read = |s: &mut cairn_net::WatchStream<'_>, seen: &mut Vec<i64>, until: i64| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.last().is_none_or(|l| *l < until) && Instant::now() < deadline {
            match s.recv_timeout(Duration::from_millis(200)) {
                Ok(Some(r)) => seen.extend(
                    r.events
                        .iter()
                        .flatten()
                        .map(|e| e.kv.as_ref().unwrap().mod_revision),
                ),
                Ok(None) | Err(ClientError::Closed(_)) => return false,
                Err(ClientError::Timeout) => {}
                Err(e) => panic!("{e}"),
            }
        }
        true
    };
    let mut follower_seen = Vec::new();
    assert!(read(
        &mut on_follower,
        &mut follower_seen,
        *acked.last().unwrap()
    ));
    assert_eq!(
        follower_seen, acked,
        "the follower's watch saw the leader's writes"
    );
    // Read part of the doomed stream, then kill the leader.
    assert!(read(doomed.as_mut().unwrap(), &mut seen, acked[20]));
    c.nodes[leader].kill9();
    let oc = client_of(&c, other);
    // Writes go on through a survivor once a new leader is elected.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 50;
    while acked.len() < 80 && Instant::now() < deadline {
        match oc.put(put_request(format!("/k/{i}").as_bytes(), b"w")) {
            Ok(r) => {
                acked.push(r.header.unwrap().revision);
                i += 1;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    assert_eq!(acked.len(), 80, "writes resumed after the leader died");
    // The doomed stream ends with the connection; reopen from last + 1.
    let _ = read(doomed.as_mut().unwrap(), &mut seen, i64::MAX);
    drop(doomed.take());
    let resume = seen.last().copied().unwrap_or(acked[0] - 1) + 1;
    let mut again = watch_from(&oc, resume);
    assert!(read(&mut again, &mut seen, *acked.last().unwrap()));
    assert_eq!(
        seen, acked,
        "no gap and no duplicate across the leader's death"
    );
    assert!(read(
        &mut on_follower,
        &mut follower_seen,
        *acked.last().unwrap()
    ));
    assert_eq!(follower_seen, acked);
}
