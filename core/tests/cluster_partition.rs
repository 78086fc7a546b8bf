//! Network partitions between real `cairnd` members (each behind a
//! fault-injecting peer proxy, see `testkit::proxy`), with clients on every
//! member recording a history that must stay linearizable: a leader cut off
//! from the majority acknowledges nothing, the majority goes on, and after
//! the partitions heal every member converges on one history.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_core::testkit::linearizability::{Op, OpKind, Outcome};
use cairn_core::testkit::rng::SplitMix64;
use cairn_core::testkit::{assert_linearizable, Recorder, RecorderOptions, TestCluster};
use cairn_net::client::{get_request, put_request};
use cairn_net::{BlockingClient, ClientOptions};

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

fn quick_client(c: &TestCluster, i: usize) -> Option<BlockingClient> {
    let addr: SocketAddr = c.nodes[i].endpoint().parse().ok()?;
    let opts = ClientOptions {
        dial_timeout: Duration::from_millis(300),
        request_timeout: Duration::from_secs(1),
        ..ClientOptions::default()
    };
    BlockingClient::connect(&[addr], opts).ok()
}

fn is_acked_put(o: &Op) -> bool {
    matches!(o.kind, OpKind::Put(_)) && o.outcome == Outcome::Ok
}

/// After the faults heal: a write through the cluster reaches every member,
/// and every member then reports the same revision (one history applied).
fn assert_converged(c: &mut TestCluster) {
    c.wait_leader(Duration::from_secs(20));
    let marker = format!("converged/{}", std::process::id());
    assert!(
        eventually(Duration::from_secs(10), || c
            .client()
            .put(put_request(marker.as_bytes(), b"1"))
            .is_ok()),
        "no write accepted after healing"
    );
    let n = c.nodes.len();
    let mut revisions = vec![0i64; n];
    let converged = eventually(Duration::from_secs(20), || {
        for (i, rev) in revisions.iter_mut().enumerate() {
            let Some(cl) = quick_client(c, i) else {
                return false;
            };
            let mut r = get_request(marker.as_bytes());
            r.serializable = true;
            let Ok(resp) = cl.range(r) else {
                return false;
            };
            if resp.kvs.unwrap_or_default().is_empty() {
                return false;
            }
            *rev = resp.header.map_or(0, |h| h.revision);
        }
        revisions.iter().all(|r| *r == revisions[0])
    });
    assert!(
        converged,
        "members did not converge: revisions {revisions:?}"
    );
}

fn recorder_options(seed: u64, tag: &str) -> RecorderOptions {
    RecorderOptions {
        clients: 4,
        keys: (0..4).map(|i| format!("{tag}/{i}")).collect(),
        seed,
        ..RecorderOptions::default()
    }
}

/// The two tests run one after the other: together they start eight
/// members and their clients on the two cores a test run has.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_partitioned_minority_leader_acknowledges_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut c = TestCluster::start_partitionable(3, &[]);
    let rec = Recorder::start(&c.client_addrs(), recorder_options(7, "minority"));
    std::thread::sleep(Duration::from_millis(700));
    let old = c.wait_leader(Duration::from_secs(5));
    let old_name = c.nodes[old].name.clone();
    let majority: Vec<usize> = (0..3).filter(|&i| i != old).collect();

    c.isolate(old);
    let cut_at = Instant::now();
    let new = c.wait_leader_among(&majority, Duration::from_secs(15));
    eprintln!(
        "{} cut off; {} leads the majority after {:?}",
        old_name,
        c.nodes[new].name,
        cut_at.elapsed()
    );
    let majority_acks =
        |r: &Recorder| r.count(|o| is_acked_put(o) && o.invoke > cut_at && o.via != old_name);
    assert!(
        eventually(Duration::from_secs(10), || majority_acks(&rec) >= 10),
        "the majority acknowledged {} writes in 10 s",
        majority_acks(&rec)
    );
    // A write sent to the old leader itself is not acknowledged.
    if let Some(oc) = quick_client(&c, old) {
        let r = oc.put(put_request(b"minority/direct", b"x"));
        assert!(r.is_err(), "the cut-off old leader acknowledged a write");
    }
    std::thread::sleep(Duration::from_millis(500));

    let healed_at = Instant::now();
    c.heal();
    let new_id = c.member_ids[new];
    assert!(
        eventually(Duration::from_secs(15), || {
            c.leader_now().is_some_and(|l| l != old) && c.leader_seen_by(old) == Some(new_id)
        }),
        "the old leader does not follow {} after healing; its log:\n{}",
        c.nodes[new].name,
        c.nodes[old].log()
    );
    std::thread::sleep(Duration::from_millis(500));
    let ops = rec.finish();

    let acked_by_old: Vec<&Op> = ops
        .iter()
        .filter(|o| {
            is_acked_put(o) && o.via == old_name && o.invoke >= cut_at && o.complete <= healed_at
        })
        .collect();
    assert!(
        acked_by_old.is_empty(),
        "the cut-off old leader acknowledged writes: {acked_by_old:?}"
    );
    let tried_on_old = ops
        .iter()
        .filter(|o| o.via == old_name && o.invoke >= cut_at && o.complete <= healed_at)
        .count();
    assert!(
        tried_on_old > 0,
        "no client tried the old leader while cut off"
    );
    let summary = assert_linearizable(&ops);
    eprintln!("history: {summary}; {tried_on_old} ops sent to the cut-off leader");
    assert_converged(&mut c);
}

fn names(c: &TestCluster, members: &[usize]) -> String {
    let names: Vec<&str> = members.iter().map(|&i| c.nodes[i].name.as_str()).collect();
    format!("{{{}}}", names.join(","))
}

/// One fault the random schedule can inject (added to those in place).
fn inject(c: &TestCluster, rng: &mut SplitMix64) -> String {
    let n = c.nodes.len();
    let pick = |rng: &mut SplitMix64| rng.below(n as u64) as usize;
    match rng.below(5) {
        0 => {
            c.heal();
            "heal".into()
        }
        1 => {
            let i = pick(rng);
            c.isolate(i);
            format!("isolate {}", c.nodes[i].name)
        }
        2 => {
            // A random split; the minority side may hold the leader.
            let mut a = Vec::new();
            let mut b = Vec::new();
            for i in 0..n {
                if rng.below(2) == 0 {
                    a.push(i)
                } else {
                    b.push(i)
                }
            }
            c.partition(&[&a, &b]);
            format!("partition {} | {}", names(c, &a), names(c, &b))
        }
        k => {
            let f = pick(rng);
            let t = (f + 1 + rng.below(n as u64 - 1) as usize) % n;
            c.block_link(f, t);
            if k == 3 {
                return format!("block {} -> {}", c.nodes[f].name, c.nodes[t].name);
            }
            c.block_link(t, f);
            format!("block {} <-> {}", c.nodes[f].name, c.nodes[t].name)
        }
    }
}

#[test]
fn random_partitions_keep_the_history_linearizable() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    const VAR: &str = "CAIRN_PARTITION_SEED";
    const FAULTS_FOR: Duration = Duration::from_secs(20);
    let seed = SplitMix64::seed_from_env(VAR);
    eprintln!("random partitions: seed {seed} (replay with {VAR}={seed})");
    let mut rng = SplitMix64::new(seed);
    let mut c = TestCluster::start_partitionable(5, &[]);
    let rec = Recorder::start(&c.client_addrs(), recorder_options(seed, "random"));
    let start = Instant::now();
    while start.elapsed() < FAULTS_FOR {
        let what = inject(&c, &mut rng);
        let hold_ms = 300 + rng.below(2200);
        eprintln!(
            "{:6.2}s {what} for {hold_ms} ms",
            start.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(hold_ms));
        // Half the time, heal before the next fault, so faults do not
        // pile up into a cluster that never has a quorum.
        if rng.below(2) == 0 {
            c.heal();
            eprintln!("{:6.2}s heal", start.elapsed().as_secs_f64());
        }
    }
    c.heal();
    let healed_at = Instant::now();
    c.wait_leader(Duration::from_secs(20));
    let acked_after = |r: &Recorder| r.count(|o| is_acked_put(o) && o.invoke > healed_at);
    assert!(
        eventually(Duration::from_secs(10), || acked_after(&rec) >= 10),
        "writes not acknowledged again after healing (seed {seed})"
    );
    let ops = rec.finish();
    let acked = ops.iter().filter(|o| is_acked_put(o)).count();
    let summary = assert_linearizable(&ops);
    eprintln!("history (seed {seed}): {summary}");
    assert!(acked > 50, "too few writes acknowledged: {acked}");
    assert_converged(&mut c);
}
