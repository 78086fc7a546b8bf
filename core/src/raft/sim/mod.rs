//! Deterministic simulation of a Raft cluster: N nodes, a lossy,
//! duplicating, reordering, partitionable network, disks that lose what
//! was not persisted when a node crashes, restarts from what was, and
//! clients issuing puts, compare-and-swaps and ReadIndex reads on a few
//! registers. Everything derives from one seed, so a failure replays
//! exactly:
//!
//! ```text
//! CAIRN_SIM_SEED=1234 cargo test -p cairn-core --lib raft::sim -- --nocapture
//! ```
//!
//! (`CAIRN_SIM_TRACE=1` also prints the run's notable events.)
//!
//! Checked at every step ([`checker`]): at most one leader per term, log
//! matching, leader completeness, committed entries never change, state
//! machine safety. At the end, after healing and a quiet period: every
//! acknowledged write is applied on every member, and each register's
//! client history is linearizable: always by the linear-time check against
//! the log order ([`log_order`]), and for histories of up to a few hundred
//! operations also by the general Wing–Gong search ([`history`]).
//!
//! The harness proves it can fail: `sim_catches_planted_commit_by_counting_bug`
//! (Figure 8 of the Raft paper, via
//! `Config::unsafe_commit_by_replica_count_for_tests`) and
//! `sim_catches_planted_stale_local_reads` must find violations.

mod checker;
mod clients;
mod cluster;
mod history;
mod log_order;
mod network;

#[cfg(test)]
mod tests;

use super::rng::SplitMix64;
pub(crate) use cluster::Sim;
use network::NetConfig;

/// The shape of one run. Rates are per million per step.
#[derive(Clone, Debug)]
pub(crate) struct SimConfig {
    pub(crate) seed: u64,
    pub(crate) steps: u64,
    /// Processes; ids `1..=node_count`.
    pub(crate) node_count: usize,
    /// Ids `1..=initial_voters` bootstrap the cluster; the others start
    /// outside it and join through membership changes.
    pub(crate) initial_voters: usize,
    pub(crate) net: NetConfig,
    pub(crate) crash_per_million: u64,
    pub(crate) restart_per_million: u64,
    /// Crash a node a few steps after it becomes leader.
    pub(crate) crash_new_leader_per_million: u64,
    /// Crash a node while it handles a Ready (before or after its fsync).
    pub(crate) crash_in_ready_per_million: u64,
    /// Step messages between `ready` and `advance` (while "fsyncing").
    pub(crate) step_during_fsync_per_million: u64,
    pub(crate) partition_per_million: u64,
    pub(crate) heal_per_million: u64,
    pub(crate) compact_per_million: u64,
    pub(crate) membership_per_million: u64,
    pub(crate) transfer_per_million: u64,
    pub(crate) op_per_million: u64,
    pub(crate) clients: usize,
    pub(crate) keys: u64,
    pub(crate) op_timeout_steps: u64,
    pub(crate) pre_vote: bool,
    pub(crate) check_quorum: bool,
    pub(crate) election_tick: u32,
    pub(crate) max_inflight_msgs: usize,
    pub(crate) max_size_per_msg_bytes: u64,
    pub(crate) unsafe_commit: bool,
    /// PLANTED BUG: serve reads from the local state, without ReadIndex.
    pub(crate) unsafe_local_reads: bool,
    /// Quiet steps at the end for the cluster to converge.
    pub(crate) settle_steps_max: u64,
}

impl SimConfig {
    /// A run whose shape (cluster size, fault rates, features) is itself
    /// drawn from the seed, so many seeds cover many shapes.
    pub(crate) fn from_seed(seed: u64, steps: u64) -> SimConfig {
        let mut rng = SplitMix64::new(seed ^ 0x5EED_CA1B);
        let membership = rng.chance(350_000);
        let node_count = if membership || rng.chance(400_000) {
            5
        } else {
            3
        };
        SimConfig {
            seed,
            steps,
            node_count,
            initial_voters: if membership { 3 } else { node_count },
            net: NetConfig {
                delay_steps_max: rng.range(1, 6),
                loss_per_million: rng.range(0, 100_000),
                duplicate_per_million: rng.range(0, 50_000),
            },
            crash_per_million: rng.range(0, 4_000),
            restart_per_million: 30_000,
            crash_new_leader_per_million: rng.range(0, 300_000),
            crash_in_ready_per_million: rng.range(0, 2_000),
            step_during_fsync_per_million: if rng.chance(500_000) {
                rng.range(0, 300_000)
            } else {
                0
            },
            // Some runs are mostly partitioned: many short-lived leaders.
            partition_per_million: if rng.chance(200_000) {
                80_000
            } else {
                rng.range(0, 8_000)
            },
            heal_per_million: 15_000,
            compact_per_million: rng.range(0, 50_000),
            membership_per_million: if membership { 8_000 } else { 0 },
            transfer_per_million: rng.range(0, 3_000),
            op_per_million: rng.range(50_000, 300_000),
            clients: rng.range(2, 6) as usize,
            keys: rng.range(1, 4),
            op_timeout_steps: 60,
            pre_vote: rng.chance(600_000),
            check_quorum: rng.chance(600_000),
            election_tick: 10,
            max_inflight_msgs: rng.range(1, 8) as usize,
            max_size_per_msg_bytes: rng.range(40, 400),
            unsafe_commit: false,
            unsafe_local_reads: false,
            settle_steps_max: 4_000,
        }
    }
}

/// What a run did, for the test output.
#[derive(Debug, Default, Clone)]
pub(crate) struct SimStats {
    pub(crate) steps: u64,
    pub(crate) elections: u64,
    pub(crate) crashes: u64,
    pub(crate) ops_acked: u64,
    pub(crate) ops_indeterminate: u64,
    pub(crate) committed: u64,
    pub(crate) messages: u64,
    pub(crate) snapshots_installed: u64,
    pub(crate) conf_changes: u64,
}

/// Runs one simulation; `Err` names the violated property.
pub(crate) fn run(cfg: SimConfig) -> Result<SimStats, String> {
    let trace = std::env::var_os("CAIRN_SIM_TRACE").is_some();
    let mut sim = Sim::new(cfg, trace);
    sim.run()
}

/// The command that replays `seed` run for `steps` steps.
pub(crate) fn replay_command(seed: u64, steps: u64) -> String {
    format!("CAIRN_SIM_SEED={seed} CAIRN_SIM_STEPS={steps} cargo test -p cairn-core --lib raft::sim -- --nocapture")
}
