//! Leases on real `cairnd` processes: expiry on time (deleting the keys
//! in one revision), keep-alive, revoke, errors, restarts (page file and
//! WAL), checkpoints, and a 3-member cluster across a leader kill.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::testkit::{TestCluster, TestNode};
use cairn_net::client::FailoverClient;
use cairn_net::client::{get_request, put_request};
use cairn_net::{BlockingClient, ClientError, ClientOptions};
use cairn_schemas::rpc;

fn put_leased(c: &BlockingClient, key: &str, lease: i64) -> Result<i64, ClientError> {
    let r = c.put(rpc::PutRequestT {
        lease,
        ..put_request(key.as_bytes(), b"v")
    })?;
    Ok(r.header.map_or(0, |h| h.revision))
}

fn exists(c: &BlockingClient, key: &str) -> bool {
    let r = c.range(get_request(key.as_bytes())).unwrap();
    r.kvs.is_some_and(|k| !k.is_empty())
}

fn revision(c: &BlockingClient) -> i64 {
    c.status().unwrap().header.map_or(0, |h| h.revision)
}

/// Polls `f` every 20 ms until it holds or `limit` passes; the time it took.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn server_code(e: ClientError) -> rpc::ErrorCode {
    match e {
        ClientError::Server { code, .. } => code,
        other => panic!("expected a server error, got {other}"),
    }
}

#[test]
fn an_expired_lease_deletes_its_keys_in_one_revision_on_time() {
    let n = TestNode::start();
    let c = n.client();
    let granted_at = Instant::now();
    let g = c.lease_grant(3, 0).unwrap();
    assert_eq!(g.ttl, 3);
    assert!(g.id > 0);
    put_leased(&c, "a", g.id).unwrap();
    put_leased(&c, "b", g.id).unwrap();
    c.put(put_request(b"plain", b"x")).unwrap();
    let before = revision(&c);
    let ttl = c.lease_time_to_live(g.id, true).unwrap();
    assert_eq!(ttl.granted_ttl, 3);
    assert!((1..=3).contains(&ttl.ttl), "{ttl:?}");
    assert_eq!(ttl.keys.map_or(0, |k| k.len()), 2);
    let gone = wait_for(Duration::from_secs(10), || !exists(&c, "a"))
        .expect("the leased key outlived its lease by 7 s");
    let elapsed = granted_at.elapsed();
    // Expired no earlier than the TTL, and within a second after it.
    assert!(
        elapsed >= Duration::from_millis(2900) && gone < Duration::from_millis(4500),
        "expired after {elapsed:?}"
    );
    assert!(!exists(&c, "b"));
    assert!(exists(&c, "plain"));
    assert_eq!(revision(&c), before + 1, "both keys go in one revision");
    let ttl = c.lease_time_to_live(g.id, false).unwrap();
    assert_eq!((ttl.ttl, ttl.granted_ttl), (-1, 0));
    assert!(c.lease_leases().unwrap().ids.unwrap_or_default().is_empty());
}

#[test]
fn keep_alive_holds_a_lease_and_its_end_lets_it_expire() {
    let n = TestNode::start();
    let c = n.client();
    let g = c.lease_grant(2, 0).unwrap();
    put_leased(&c, "held", g.id).unwrap();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let r = c.lease_keep_alive_once(g.id).unwrap();
        assert_eq!((r.id, r.ttl), (g.id, 2));
        std::thread::sleep(Duration::from_millis(600));
    }
    assert!(exists(&c, "held"), "a kept-alive lease expired");
    assert!(
        wait_for(Duration::from_secs(5), || !exists(&c, "held")).is_some(),
        "the lease did not expire once keep-alives stopped"
    );
    // A keep-alive of a lease that is gone answers TTL 0 (etcd's answer).
    assert_eq!(c.lease_keep_alive_once(g.id).unwrap().ttl, 0);
}

#[test]
fn revoke_deletes_keys_and_bad_lease_requests_get_etcd_errors() {
    let n = TestNode::start();
    let c = n.client();
    let e = put_leased(&c, "k", 0x1234).unwrap_err();
    assert_eq!(server_code(e), rpc::ErrorCode::LeaseNotFound);
    assert!(!exists(&c, "k"));
    // A txn putting with a missing lease changes nothing either.
    let txn = rpc::TxnRequestT {
        success: Some(vec![rpc::RequestOpT {
            op: rpc::RequestOpKindT::PutRequest(Box::new(rpc::PutRequestT {
                lease: 0x1234,
                ..put_request(b"t", b"v")
            })),
        }]),
        ..Default::default()
    };
    assert_eq!(
        server_code(c.txn(txn).unwrap_err()),
        rpc::ErrorCode::LeaseNotFound
    );
    let g = c.lease_grant(60, 0x77).unwrap();
    assert_eq!(g.id, 0x77);
    assert_eq!(
        server_code(c.lease_grant(60, 0x77).unwrap_err()),
        rpc::ErrorCode::LeaseExists
    );
    assert_eq!(
        server_code(c.lease_grant(9_000_000_001, 0).unwrap_err()),
        rpc::ErrorCode::LeaseTtlTooLarge
    );
    put_leased(&c, "k1", 0x77).unwrap();
    put_leased(&c, "k2", 0x77).unwrap();
    // A put without the lease detaches that key.
    c.put(put_request(b"k2", b"mine")).unwrap();
    let before = revision(&c);
    c.lease_revoke(0x77).unwrap();
    assert!(!exists(&c, "k1"));
    assert!(exists(&c, "k2"), "a detached key went with the lease");
    assert_eq!(revision(&c), before + 1);
    assert_eq!(
        server_code(c.lease_revoke(0x77).unwrap_err()),
        rpc::ErrorCode::LeaseNotFound
    );
}

#[test]
fn leases_and_their_keys_survive_a_kill9_from_the_page_file_and_the_wal() {
    let mut n = TestNode::start();
    let c = n.client();
    let a = c.lease_grant(30, 0).unwrap().id;
    put_leased(&c, "in-page-file", a).unwrap();
    // Past the backend batch interval: `a` is in the page file.
    std::thread::sleep(Duration::from_millis(400));
    let b = c.lease_grant(30, 0).unwrap().id;
    put_leased(&c, "in-wal", b).unwrap();
    n.kill9();
    n.restart();
    let c = n.client();
    let mut ids = c.lease_leases().unwrap().ids.unwrap_or_default();
    ids.sort_unstable();
    let mut want = vec![a, b];
    want.sort_unstable();
    assert_eq!(ids, want);
    for (id, key) in [(a, "in-page-file"), (b, "in-wal")] {
        let t = c.lease_time_to_live(id, true).unwrap();
        assert_eq!(t.granted_ttl, 30);
        // Refreshed at promotion: never cut short by the restart.
        assert!(t.ttl >= 29, "{t:?}");
        let keys: Vec<Vec<u8>> = t
            .keys
            .unwrap_or_default()
            .into_iter()
            .map(|k| k.key.unwrap_or_default())
            .collect();
        assert_eq!(keys, vec![key.as_bytes().to_vec()]);
    }
    c.lease_revoke(a).unwrap();
    assert!(!exists(&c, "in-page-file"));
    // And once more, from the page file only, after a clean stop.
    n.stop();
    n.restart();
    let c = n.client();
    assert_eq!(c.lease_leases().unwrap().ids.unwrap_or_default(), vec![b]);
}

#[test]
fn a_checkpointed_lease_keeps_its_remaining_ttl_across_a_restart() {
    let mut n = TestNode::start_with(&["--lease-checkpoint-interval", "1s"]);
    let c = n.client();
    let id = c.lease_grant(60, 0).unwrap().id;
    std::thread::sleep(Duration::from_secs(5));
    n.kill9();
    n.restart();
    let t = n.client().lease_time_to_live(id, false).unwrap();
    // Without checkpoints the restart would grant 60 s (+1) again.
    assert!(
        (50..=58).contains(&t.ttl),
        "remaining TTL after restart: {t:?}"
    );
    // A keep-alive clears the remainder: the whole TTL again, also after
    // another restart.
    assert_eq!(n.client().lease_keep_alive_once(id).unwrap().ttl, 60);
    std::thread::sleep(Duration::from_millis(1500));
    n.kill9();
    n.restart();
    let t = n.client().lease_time_to_live(id, false).unwrap();
    assert!(
        t.ttl >= 55,
        "remaining TTL after keep-alive and restart: {t:?}"
    );
}

#[test]
fn leases_outlive_a_leader_kill_and_keep_alive_works_through_followers() {
    let mut c = TestCluster::start(3, &[]);
    let leader = c.wait_leader(Duration::from_secs(5));
    let follower = (leader + 1) % 3;
    let fc = c.nodes[follower].client();
    // Granted through a follower.
    let short = fc.lease_grant(6, 0).unwrap().id;
    let kept = fc.lease_grant(3, 0).unwrap().id;
    put_leased(&fc, "short", short).unwrap();
    put_leased(&fc, "kept", kept).unwrap();
    let granted_at = Instant::now();
    // A keep-alive loop over every endpoint, as a client would run it.
    let addrs: Vec<_> = c.client_addrs().into_iter().map(|(_, a)| a).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let keeper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let opts = ClientOptions {
                request_timeout: Duration::from_millis(800),
                ..ClientOptions::default()
            };
            let mut client: Option<FailoverClient> = None;
            let mut renewed = 0;
            while !stop.load(Ordering::Relaxed) {
                if client.is_none() {
                    client = FailoverClient::connect(&addrs, opts.clone()).ok();
                }
                if let Some(cl) = &client {
                    match cl.lease_keep_alive_once(kept) {
                        Ok(r) if r.ttl > 0 => renewed += 1,
                        Ok(_) => panic!("the kept-alive lease is gone"),
                        Err(e) => eprintln!("keep-alive failed via {:?}: {e:?}", cl.endpoint()),
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            renewed
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    c.nodes[leader].kill9();
    let survivor = c.nodes[follower].client();
    // The new leader refreshed every TTL when it took over: the short
    // lease is still there past its original expiry.
    std::thread::sleep(Duration::from_millis(6500).saturating_sub(granted_at.elapsed()));
    assert!(
        exists(&survivor, "short"),
        "a leader change cut the lease short"
    );
    assert!(
        wait_for(Duration::from_secs(15), || !exists(&survivor, "short")).is_some(),
        "the lease never expired under the new leader"
    );
    assert!(exists(&survivor, "kept"), "the kept-alive lease expired");
    stop.store(true, Ordering::Relaxed);
    let renewed = keeper.join().unwrap();
    assert!(
        renewed > 5,
        "only {renewed} keep-alives succeeded; logs:\n{}\n{}",
        c.nodes[follower].log(),
        c.nodes[(leader + 2) % 3].log()
    );
    assert!(
        wait_for(Duration::from_secs(8), || !exists(&survivor, "kept")).is_some(),
        "the lease did not expire once keep-alives stopped"
    );
}

#[test]
fn a_lease_keeper_holds_a_lease_until_dropped_and_notices_a_revoke() {
    use cairn_net::client::LeaseKeeper;
    let n = TestNode::start();
    let c = n.client();
    let addrs = [n.endpoint().parse().unwrap()];
    let g = c.lease_grant(2, 0).unwrap();
    put_leased(&c, "kept", g.id).unwrap();
    let keeper = LeaseKeeper::start(&addrs, ClientOptions::default(), g.id, g.ttl);
    std::thread::sleep(Duration::from_secs(4));
    assert!(keeper.is_alive());
    assert!(exists(&c, "kept"), "a kept lease expired");
    drop(keeper);
    assert!(
        wait_for(Duration::from_secs(5), || !exists(&c, "kept")).is_some(),
        "the lease outlived its keeper"
    );
    // A keeper whose lease is revoked underneath notices.
    let g = c.lease_grant(30, 0).unwrap();
    let keeper = LeaseKeeper::start(&addrs, ClientOptions::default(), g.id, g.ttl);
    c.lease_revoke(g.id).unwrap();
    // It learns at its next renewal (TTL/3 = 10 s at the latest).
    assert!(
        wait_for(Duration::from_secs(15), || !keeper.is_alive()).is_some(),
        "the keeper did not notice the revoke"
    );
}
