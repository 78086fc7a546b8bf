//! Raft replication with real `cairnd` processes on 127.0.0.1: every
//! member serves reads and writes, an acknowledged write survives the loss
//! of the leader, a restarted member catches up, a paused leader serves no
//! stale read, a peer of another cluster is refused, and membership
//! changes (learner add, promote, remove) go through the log.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_core::testkit::{
    assert_linearizable, free_port, Recorder, RecorderOptions, TestCluster, TestNode,
};
use cairn_net::client::{get_request, put_request};
use cairn_net::{BlockingClient, ClientOptions};
use cairn_schemas::rpc;

fn client_of(n: &TestNode) -> BlockingClient {
    let addr: SocketAddr = n.endpoint().parse().unwrap();
    BlockingClient::connect(&[addr], ClientOptions::default()).unwrap()
}

fn get(c: &BlockingClient, key: &str, serializable: bool) -> Option<String> {
    let mut r = get_request(key.as_bytes());
    r.serializable = serializable;
    let resp = c.range(r).ok()?;
    resp.kvs
        .unwrap_or_default()
        .first()
        .map(|kv| String::from_utf8_lossy(kv.value.as_deref().unwrap_or_default()).into_owned())
}

/// Retries `f` until it returns true or `limit` passes.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn every_member_accepts_writes_and_serves_linearizable_reads() {
    let c = TestCluster::start(3, &[]);
    for (i, n) in c.nodes.iter().enumerate() {
        let cl = client_of(n);
        cl.put(put_request(format!("k{i}").as_bytes(), b"v"))
            .unwrap_or_else(|e| panic!("put through {}: {e}", n.name));
    }
    for n in &c.nodes {
        let cl = client_of(n);
        for i in 0..3 {
            // A linearizable read sees every acknowledged write at once.
            assert_eq!(
                get(&cl, &format!("k{i}"), false).as_deref(),
                Some("v"),
                "{}",
                n.name
            );
        }
    }
    // Every member applied the same history: same revision everywhere.
    let revs: Vec<i64> = c
        .nodes
        .iter()
        .map(|n| {
            let cl = client_of(n);
            let r = cl.range(get_request(b"k0")).unwrap();
            r.header.unwrap().revision
        })
        .collect();
    assert!(revs.iter().all(|r| *r == revs[0]), "{revs:?}");
}

/// Writers that put distinct keys through the cluster until stopped,
/// moving to another member when theirs dies, and record what was
/// acknowledged.
struct Writers {
    acked: Arc<Mutex<HashMap<String, String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Writers {
    fn start(c: &TestCluster, n: usize) -> Writers {
        let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let addrs: Vec<SocketAddr> = c
            .nodes
            .iter()
            .map(|n| n.endpoint().parse().unwrap())
            .collect();
        let threads = (0..n)
            .map(|t| {
                let acked = acked.clone();
                let stop = stop.clone();
                let mut addrs = addrs.clone();
                let n_addrs = addrs.len();
                addrs.rotate_left(t % n_addrs);
                std::thread::spawn(move || write_until(t, &addrs, &acked, &stop))
            })
            .collect();
        Writers {
            acked,
            stop,
            threads,
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    fn finish(self) -> HashMap<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }
}

fn write_until(
    t: usize,
    addrs: &[SocketAddr],
    acked: &Mutex<HashMap<String, String>>,
    stop: &AtomicBool,
) {
    let mut i = 0;
    let mut client: Option<BlockingClient> = None;
    while !stop.load(Ordering::Relaxed) {
        let cl = match client.take() {
            Some(c) => c,
            None => match BlockingClient::connect(addrs, ClientOptions::default()) {
                Ok(c) => c,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let (k, v) = (format!("t{t}/k{i}"), format!("v{i}"));
        match cl.put(put_request(k.as_bytes(), v.as_bytes())) {
            Ok(_) => {
                acked.lock().unwrap().insert(k, v);
                client = Some(cl);
            }
            Err(cairn_net::ClientError::Server { .. }) => client = Some(cl),
            Err(_) => {}
        }
        i += 1;
    }
}

/// Clients on a few shared keys beside the test's own load; their history
/// is checked for linearizability at the end.
fn recorder(c: &TestCluster, seed: u64) -> Recorder {
    let opts = RecorderOptions {
        clients: 2,
        keys: (0..3).map(|i| format!("lin/{i}")).collect(),
        seed,
        ..RecorderOptions::default()
    };
    Recorder::start(&c.client_addrs(), opts)
}

/// Stops the recording clients and checks their history is linearizable.
fn check_history(rec: Recorder) {
    let summary = assert_linearizable(&rec.finish());
    eprintln!("history: {summary}");
}

/// Every acknowledged write is on member `n`, read linearizably there.
fn assert_has_all(n: &TestNode, acked: &HashMap<String, String>) {
    let cl = client_of(n);
    for (k, v) in acked {
        let got = cl
            .range(get_request(k.as_bytes()))
            .unwrap_or_else(|e| panic!("read of {k} on {}: {e}", n.name));
        let got = got.kvs.unwrap_or_default();
        let got = got.first().and_then(|kv| kv.value.as_deref());
        assert_eq!(got, Some(v.as_bytes()), "{} lost {k}", n.name);
    }
}

#[test]
fn a_rolling_restart_under_load_loses_no_acknowledged_write() {
    let mut c = TestCluster::start(3, &[]);
    let w = Writers::start(&c, 3);
    let rec = recorder(&c, 21);
    for i in 0..3 {
        let before = w.count();
        c.nodes[i].kill9();
        c.nodes[i].launch();
        c.nodes[i].wait_healthy(Duration::from_secs(30));
        assert!(
            eventually(Duration::from_secs(15), || w.count() > before + 20),
            "writes stopped after restarting {}",
            c.nodes[i].name
        );
    }
    let acked = w.finish();
    c.wait_leader(Duration::from_secs(10));
    for n in &c.nodes {
        assert_has_all(n, &acked);
    }
    check_history(rec);
}

#[test]
fn five_members_lose_two_and_go_on() {
    let mut c = TestCluster::start(5, &[]);
    let w = Writers::start(&c, 2);
    let rec = recorder(&c, 31);
    std::thread::sleep(Duration::from_millis(500));
    let leader = c.wait_leader(Duration::from_secs(5));
    let other = (leader + 1) % 5;
    c.nodes[leader].kill9();
    c.nodes[other].kill9();
    let before = w.count();
    assert!(
        eventually(Duration::from_secs(10), || w.count() > before + 20),
        "three of five members did not go on"
    );
    let acked = w.finish();
    for (i, n) in c.nodes.iter().enumerate() {
        if i != leader && i != other {
            assert_has_all(n, &acked);
        }
    }
    check_history(rec);
}

#[test]
fn acknowledged_writes_survive_kill9_of_the_leader_under_load() {
    let mut c = TestCluster::start(3, &[]);
    let w = Writers::start(&c, 4);
    // Beside the writers, clients on a few shared keys whose history must
    // stay linearizable through the failover and the restart.
    let rec = recorder(&c, 11);
    std::thread::sleep(Duration::from_millis(800));
    let leader = c.wait_leader(Duration::from_secs(5));
    c.nodes[leader].kill9();
    let killed_at = Instant::now();
    let before = w.count();
    // A new leader accepts writes within about two election timeouts.
    assert!(
        eventually(Duration::from_secs(10), || w.count() > before + 10),
        "no write acknowledged within 10 s of killing the leader"
    );
    let failover = killed_at.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let acked = w.finish();
    eprintln!("failover: writes acknowledged again {failover:?} after kill -9");
    assert!(
        acked.len() > 50,
        "too few writes acknowledged: {}",
        acked.len()
    );
    for (i, n) in c.nodes.iter().enumerate() {
        if i != leader {
            assert_has_all(n, &acked);
        }
    }
    // The killed leader comes back as a follower and catches up.
    c.nodes[leader].launch();
    c.nodes[leader].wait_healthy(Duration::from_secs(15));
    let cl = client_of(&c.nodes[leader]);
    let (k, v) = acked.iter().next().unwrap();
    assert!(
        eventually(Duration::from_secs(15), || get(&cl, k, true).as_deref()
            == Some(v)),
        "restarted member did not catch up; log:\n{}",
        c.nodes[leader].log()
    );
    c.wait_leader(Duration::from_secs(10));
    check_history(rec);
}

#[test]
fn a_restarted_follower_catches_up_on_what_it_missed() {
    let mut c = TestCluster::start(3, &[]);
    let rec = recorder(&c, 41);
    let leader = c.wait_leader(Duration::from_secs(5));
    let f = (leader + 1) % 3;
    c.nodes[f].kill9();
    let cl = client_of(&c.nodes[leader]);
    for i in 0..100 {
        cl.put(put_request(format!("m{i}").as_bytes(), b"x"))
            .unwrap();
    }
    c.nodes[f].launch();
    c.nodes[f].wait_healthy(Duration::from_secs(15));
    let fc = client_of(&c.nodes[f]);
    assert!(eventually(Duration::from_secs(15), || get(
        &fc, "m99", true
    )
    .as_deref()
        == Some("x")));
    assert_eq!(get(&fc, "m0", true).as_deref(), Some("x"));
    check_history(rec);
}

#[test]
fn a_follower_far_behind_catches_up_through_a_snapshot() {
    let mut c = TestCluster::start(3, &["--backend-batch-interval", "10ms"]);
    let rec = recorder(&c, 51);
    let leader = c.wait_leader(Duration::from_secs(5));
    let f = (leader + 1) % 3;
    c.nodes[f].kill9();
    // More than the leader's log keeps behind its page file (8 MiB, and
    // it compacts 256 entries at a time).
    let cl = client_of(&c.nodes[leader]);
    let v = vec![b'v'; 8 << 10];
    for i in 0..1500 {
        cl.put(put_request(format!("s{i}").as_bytes(), &v)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    cl.put(put_request(b"last", b"1")).unwrap();
    c.nodes[f].launch();
    c.nodes[f].wait_healthy(Duration::from_secs(30));
    let fc = client_of(&c.nodes[f]);
    assert!(
        eventually(Duration::from_secs(20), || get(&fc, "last", true)
            .as_deref()
            == Some("1")),
        "follower did not catch up; log:\n{}",
        c.nodes[f].log()
    );
    assert!(
        c.nodes[f].log().contains("installed the leader's snapshot"),
        "{}",
        c.nodes[f].log()
    );
    assert_eq!(get(&fc, "s0", true).map(|s| s.len()), Some(8 << 10));
    // It goes on replicating after the install, and survives a restart.
    cl.put(put_request(b"after", b"2")).unwrap();
    assert!(eventually(Duration::from_secs(10), || get(
        &fc, "after", true
    )
    .as_deref()
        == Some("2")));
    c.nodes[f].kill9();
    c.nodes[f].launch();
    c.nodes[f].wait_healthy(Duration::from_secs(30));
    let fc = client_of(&c.nodes[f]);
    // (Serializable reads may lag until the leader tells the commit index.)
    assert!(eventually(Duration::from_secs(10), || get(
        &fc, "after", true
    )
    .as_deref()
        == Some("2")));
    assert_eq!(get(&fc, "s1499", true).map(|s| s.len()), Some(8 << 10));
    check_history(rec);
}

#[test]
fn a_learner_joining_a_compacted_cluster_catches_up_through_a_snapshot() {
    let c = TestCluster::start(3, &["--backend-batch-interval", "10ms"]);
    let rec = recorder(&c, 61);
    let cl = c.client();
    // More than the leader keeps of its log behind the page file.
    let v = vec![b'w'; 8 << 10];
    for i in 0..1500 {
        cl.put(put_request(format!("l{i}").as_bytes(), &v)).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    cl.put(put_request(b"last", b"1")).unwrap();
    let mut n4 = TestNode::member(&c.dir, "n4", free_port(), free_port(), &[]);
    call_ok(
        &cl,
        rpc::RequestBodyT::MemberAddRequest(Box::new(rpc::MemberAddRequestT {
            peer_urls: Some(vec![n4.peer_url()]),
            is_learner: true,
        })),
    )
    .unwrap();
    n4.initial_cluster = Some(format!("{},n4={}", c.initial_cluster(), n4.peer_url()));
    n4.cluster_state = "existing".into();
    n4.launch();
    n4.wait_healthy(Duration::from_secs(30));
    let c4 = client_of(&n4);
    assert!(
        eventually(Duration::from_secs(20), || get(&c4, "last", true)
            .as_deref()
            == Some("1")),
        "learner did not catch up; log:\n{}",
        n4.log()
    );
    assert!(
        n4.log().contains("installed the leader's snapshot"),
        "{}",
        n4.log()
    );
    assert_eq!(get(&c4, "l0", true).map(|s| s.len()), Some(8 << 10));
    // It knows the whole membership, itself a learner.
    let members = member_list(&c4);
    assert_eq!(members.len(), 4, "{members:?}");
    assert!(members.iter().any(|m| m.is_learner));
    n4.kill9();
    check_history(rec);
}

#[test]
fn a_paused_leader_serves_no_stale_read_after_it_resumes() {
    let mut c = TestCluster::start(3, &[]);
    let rec = recorder(&c, 71);
    let old = c.wait_leader(Duration::from_secs(5));
    client_of(&c.nodes[old])
        .put(put_request(b"x", b"1"))
        .unwrap();
    let old_client = client_of(&c.nodes[old]);
    c.nodes[old].signal(libc::SIGSTOP);
    // The others elect a new leader and take a newer write.
    let other = (old + 1) % 3;
    let oc = client_of(&c.nodes[other]);
    assert!(
        eventually(Duration::from_secs(15), || oc
            .put(put_request(b"x", b"2"))
            .is_ok()),
        "the majority did not accept a write while the leader was paused"
    );
    c.nodes[old].signal(libc::SIGCONT);
    // The old leader must not answer a linearizable read with "1".
    let v = get(&old_client, "x", false);
    assert!(
        v.is_none() || v.as_deref() == Some("2"),
        "stale read: {v:?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || get(&old_client, "x", false)
            .as_deref()
            == Some("2")),
        "old leader's log:\n{}",
        c.nodes[old].log()
    );
    check_history(rec);
}

#[test]
fn a_peer_of_another_cluster_is_refused() {
    let c = TestCluster::start(3, &[]);
    // A member of another cluster (another token) names two of our
    // members as its peers: they refuse it, and it never gets a leader.
    let dir = cairn_core::testkit::test_dir("stranger");
    let mut s = TestNode::member(
        &dir,
        "x",
        free_port(),
        free_port(),
        &["--initial-cluster-token", "other"],
    );
    s.initial_cluster = Some(format!(
        "x={},n1={},n2={}",
        s.peer_url(),
        c.nodes[0].peer_url(),
        c.nodes[1].peer_url()
    ));
    s.launch();
    let refused = eventually(Duration::from_secs(10), || {
        s.log().contains("cluster ID mismatch")
    });
    let log = s.log();
    s.kill9();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(refused, "stranger's log:\n{log}");
    // Our cluster is unaffected.
    c.client().put(put_request(b"still", b"ok")).unwrap();
}

fn member_list(cl: &BlockingClient) -> Vec<rpc::MemberT> {
    match cl
        .call(&rpc::RequestBodyT::MemberListRequest(Box::default()))
        .unwrap()
    {
        rpc::ResponseBodyT::MemberListResponse(r) => r.members.unwrap_or_default(),
        other => panic!("unexpected {other:?}"),
    }
}

fn call_ok(cl: &BlockingClient, body: rpc::RequestBodyT) -> Result<rpc::ResponseBodyT, String> {
    match cl.call(&body) {
        Ok(rpc::ResponseBodyT::Error(e)) => Err(e.message.unwrap_or_default()),
        Ok(r) => Ok(r),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn a_learner_joins_catches_up_is_promoted_and_an_old_member_is_removed() {
    let mut c = TestCluster::start(3, &[]);
    let rec = recorder(&c, 81);
    let cl = c.client();
    for i in 0..50 {
        cl.put(put_request(format!("j{i}").as_bytes(), b"y"))
            .unwrap();
    }
    let mut n4 = TestNode::member(&c.dir, "n4", free_port(), free_port(), &[]);
    let added = call_ok(
        &cl,
        rpc::RequestBodyT::MemberAddRequest(Box::new(rpc::MemberAddRequestT {
            peer_urls: Some(vec![n4.peer_url()]),
            is_learner: true,
        })),
    )
    .unwrap();
    let id4 = match added {
        rpc::ResponseBodyT::MemberAddResponse(r) => r.member.unwrap().id,
        other => panic!("unexpected {other:?}"),
    };
    n4.initial_cluster = Some(format!("{},n4={}", c.initial_cluster(), n4.peer_url()));
    n4.cluster_state = "existing".into();
    n4.launch();
    n4.wait_healthy(Duration::from_secs(30));
    let c4 = client_of(&n4);
    assert!(
        eventually(Duration::from_secs(20), || get(&c4, "j49", true).as_deref()
            == Some("y")),
        "learner did not catch up; log:\n{}",
        n4.log()
    );
    let listed = member_list(&cl);
    assert!(
        listed.iter().any(|m| m.id == id4 && m.is_learner),
        "{listed:?}"
    );
    // Promotion (retried: the learner must be nearly caught up first).
    assert!(eventually(Duration::from_secs(20), || call_ok(
        &cl,
        rpc::RequestBodyT::MemberPromoteRequest(Box::new(rpc::MemberPromoteRequestT { id: id4 }))
    )
    .is_ok()));
    assert!(member_list(&cl)
        .iter()
        .any(|m| m.id == id4 && !m.is_learner));
    // Promoting a voter is refused with etcd's text.
    let e = call_ok(
        &cl,
        rpc::RequestBodyT::MemberPromoteRequest(Box::new(rpc::MemberPromoteRequestT { id: id4 })),
    )
    .unwrap_err();
    assert!(e.contains("can only promote a learner member"), "{e}");
    // Remove an old member: it stops, and the cluster of 3 goes on.
    let victim_id = member_list(&cl)
        .iter()
        .find(|m| m.name.as_deref() == Some("n1"))
        .unwrap()
        .id;
    // (Asked through n2: n1 stops as soon as it applies its removal.)
    call_ok(
        &client_of(&c.nodes[1]),
        rpc::RequestBodyT::MemberRemoveRequest(Box::new(rpc::MemberRemoveRequestT {
            id: victim_id,
        })),
    )
    .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || !c.nodes[0].is_running()),
        "removed member still runs"
    );
    assert_eq!(member_list(&c4).len(), 3);
    assert!(eventually(Duration::from_secs(15), || client_of(&n4)
        .put(put_request(b"after-remove", b"z"))
        .is_ok()));
    n4.kill9();
    check_history(rec);
}

#[test]
fn a_change_that_would_lose_the_quorum_is_refused() {
    let mut c = TestCluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(5));
    let (down, up) = ((leader + 1) % 3, (leader + 2) % 3);
    let cl = client_of(&c.nodes[leader]);
    let id_of = |name: &str| {
        member_list(&cl)
            .iter()
            .find(|m| m.name.as_deref() == Some(name))
            .unwrap()
            .id
    };
    let (down_id, up_id) = (id_of(&c.nodes[down].name), id_of(&c.nodes[up].name));
    let lost = |c: &TestCluster| {
        c.nodes[leader]
            .log()
            .matches("lost connection to peer")
            .count()
    };
    let lost_before = lost(&c);
    c.nodes[down].kill9();
    assert!(eventually(Duration::from_secs(10), || lost(&c) > lost_before));
    let remove = |id| {
        call_ok(
            &cl,
            rpc::RequestBodyT::MemberRemoveRequest(Box::new(rpc::MemberRemoveRequestT { id })),
        )
    };
    // Removing the other follower would leave one of two: refused, and
    // nothing changes.
    assert_eq!(remove(up_id).unwrap_err(), "etcdserver: unhealthy cluster");
    let add = call_ok(
        &cl,
        rpc::RequestBodyT::MemberAddRequest(Box::new(rpc::MemberAddRequestT {
            peer_urls: Some(vec!["http://127.0.0.1:1".into()]),
            is_learner: true,
        })),
    );
    assert_eq!(add.unwrap_err(), "etcdserver: unhealthy cluster");
    assert_eq!(member_list(&cl).len(), 3);
    // The member that is down may be removed; the two go on.
    remove(down_id).unwrap();
    assert_eq!(member_list(&cl).len(), 2);
    cl.put(put_request(b"two", b"ok")).unwrap();
}
