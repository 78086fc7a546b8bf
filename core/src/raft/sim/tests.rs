//! The simulation runs: many seeds in the normal test run, a longer soak
//! behind `#[ignore]`, a replay of one seed from `CAIRN_SIM_SEED`, and the
//! self-test that the harness catches a planted Figure 8 bug.

use super::{replay_command, run, SimConfig, SimStats};

const STEPS_PER_SEED: u64 = 3_000;
const SEEDS_PER_BATCH: u64 = 100;

fn env_seed() -> Option<u64> {
    std::env::var("CAIRN_SIM_SEED")
        .ok()
        .map(|s| s.parse().expect("CAIRN_SIM_SEED must be a u64"))
}

fn run_seed(seed: u64, steps: u64) -> SimStats {
    let cfg = SimConfig::from_seed(seed, steps);
    match run(cfg.clone()) {
        Ok(stats) => stats,
        Err(violation) => {
            panic!(
                "simulation seed {seed} failed: {violation}\n  config: {cfg:?}\n  replay: {}",
                replay_command(seed, steps)
            )
        }
    }
}

fn run_batch(first_seed: u64) {
    if env_seed().is_some() {
        return; // replaying one seed instead
    }
    let started = std::time::Instant::now();
    let mut total = SimStats::default();
    for seed in first_seed..first_seed + SEEDS_PER_BATCH {
        let s = run_seed(seed, STEPS_PER_SEED);
        total.steps += s.steps;
        total.elections += s.elections;
        total.committed += s.committed;
        total.crashes += s.crashes;
        total.ops_acked += s.ops_acked;
        total.ops_indeterminate += s.ops_indeterminate;
        total.messages += s.messages;
        total.snapshots_installed += s.snapshots_installed;
        total.conf_changes += s.conf_changes;
    }
    println!(
        "seeds {first_seed}..{}: {total:?} in {:?}",
        first_seed + SEEDS_PER_BATCH,
        started.elapsed()
    );
    // The runs must exercise what they claim to.
    assert!(
        total.elections > SEEDS_PER_BATCH,
        "too few elections: {total:?}"
    );
    assert!(
        total.ops_acked > 10 * SEEDS_PER_BATCH,
        "too few acknowledged ops: {total:?}"
    );
    assert!(
        total.crashes > 0 && total.snapshots_installed > 0 && total.conf_changes > 0,
        "{total:?}"
    );
}

#[test]
fn sim_seeds_batch_0() {
    run_batch(0);
}

#[test]
fn sim_seeds_batch_1() {
    run_batch(SEEDS_PER_BATCH);
}

#[test]
fn sim_seeds_batch_2() {
    run_batch(2 * SEEDS_PER_BATCH);
}

#[test]
fn sim_seeds_batch_3() {
    run_batch(3 * SEEDS_PER_BATCH);
}

/// `CAIRN_SIM_SEED=n` replays seed n (add `CAIRN_SIM_TRACE=1` for events).
#[test]
fn sim_replay_seed_from_env() {
    if let Some(seed) = env_seed() {
        let steps = std::env::var("CAIRN_SIM_STEPS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(STEPS_PER_SEED);
        println!("{:?}", run_seed(seed, steps));
    }
}

/// A longer soak: `cargo test -p cairn-core --lib raft::sim -- --ignored`
/// (`CAIRN_SIM_SOAK_SEEDS=first..end` picks the seeds).
#[test]
#[ignore]
fn sim_soak() {
    let range = std::env::var("CAIRN_SIM_SOAK_SEEDS").unwrap_or_else(|_| "10000..11000".into());
    let (a, b) = range
        .split_once("..")
        .expect("CAIRN_SIM_SOAK_SEEDS=first..end");
    let (a, b): (u64, u64) = (a.parse().expect("first seed"), b.parse().expect("end seed"));
    let mut failed = Vec::new();
    for seed in a..b {
        if let Err(violation) = run(SimConfig::from_seed(seed, 10_000)) {
            println!(
                "seed {seed}: {}\n  replay: {}",
                violation.lines().next().unwrap_or(""),
                replay_command(seed, 10_000)
            );
            failed.push(seed);
        }
    }
    assert!(
        failed.is_empty(),
        "failed seeds (replay with CAIRN_SIM_STEPS=10000): {failed:?}"
    );
}

/// Figure 8 of the Raft paper: a leader that commits an entry of an
/// earlier term because a majority holds it can lose it to a later leader.
/// With the planted bug switched on, the simulation must find a violation.
#[test]
fn sim_catches_planted_commit_by_counting_bug() {
    let mut found = None;
    for seed in 0..SEEDS_FOR_PLANTED_BUG {
        if let Err(violation) = run(planted_bug_config(seed)) {
            found = Some((seed, violation));
            break;
        }
    }
    let (seed, violation) = found.expect("the simulation did not catch the planted Figure 8 bug");
    println!("planted bug caught at seed {seed}: {violation}");
    assert!(
        [
            "commit safety",
            "leader completeness",
            "state machine safety",
            "acknowledged write",
            "lineariz"
        ]
        .iter()
        .any(|p| violation.contains(p)),
        "unexpected kind of violation: {violation}"
    );
}

/// Reads served from a node's local state (no ReadIndex) can be stale; the
/// linearizability check must notice.
#[test]
fn sim_catches_planted_stale_local_reads() {
    let found = (0..100).find_map(|seed| {
        let mut cfg = SimConfig::from_seed(seed, 2_000);
        cfg.unsafe_local_reads = true;
        run(cfg).err().map(|v| (seed, v))
    });
    let (seed, violation) = found.expect("stale local reads went unnoticed in 100 seeds");
    println!(
        "stale reads caught at seed {seed}: {}",
        violation.lines().next().unwrap_or("")
    );
    assert!(violation.contains("lineariz"), "{violation}");
}

const SEEDS_FOR_PLANTED_BUG: u64 = 200;

/// Figure 8 needs leaders that append entries and lose them before they
/// replicate: frequent partitions, lossy links, leaders killed soon after
/// they win, one entry per append. The same shape with the correct commit
/// rule finds nothing (`sim_planted_bug_hit_rate` runs both).
fn planted_bug_config(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::from_seed(seed, 3_000);
    cfg.unsafe_commit = true;
    cfg.node_count = 3;
    cfg.initial_voters = 3;
    cfg.membership_per_million = 0;
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.partition_per_million = 80_000;
    cfg.net.loss_per_million = 250_000;
    cfg.crash_per_million = 5_000;
    cfg.crash_new_leader_per_million = 700_000;
    cfg.restart_per_million = 100_000;
    cfg.max_size_per_msg_bytes = 1;
    cfg.max_inflight_msgs = 1;
    cfg
}

/// How often the planted bug is found, and that the same shape finds
/// nothing without it: `cargo test -p cairn-core --lib raft::sim -- --ignored`.
#[test]
#[ignore]
fn sim_planted_bug_hit_rate() {
    let hits = |unsafe_commit: bool| {
        (0..SEEDS_FOR_PLANTED_BUG)
            .filter(|&s| {
                let mut cfg = planted_bug_config(s);
                cfg.unsafe_commit = unsafe_commit;
                run(cfg).is_err()
            })
            .count()
    };
    let (with_bug, without_bug) = (hits(true), hits(false));
    println!("planted bug found in {with_bug} of {SEEDS_FOR_PLANTED_BUG} seeds; {without_bug} without it");
    assert_eq!(without_bug, 0);
}
