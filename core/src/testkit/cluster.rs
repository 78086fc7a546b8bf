//! [`TestCluster`]: several real `cairnd` members on 127.0.0.1, optionally
//! each behind a [`PeerProxy`] so a test can partition them.
//!
//! With proxies, member `i` listens for peers on its own port but
//! advertises its proxy's port (`--initial-advertise-peer-urls`, and the
//! `--initial-cluster` of every member), so every peer connection to `i`
//! passes through proxy `i`:
//!
//! ```text
//!   n1 ──▶ proxy(n2) ──▶ n2        n2 ──▶ proxy(n1) ──▶ n1
//!   n1 ──▶ proxy(n3) ──▶ n3        n3 ──▶ proxy(n1) ──▶ n1   ...
//! ```
//!
//! Proxy `i` blocking `from == j` loses j's messages to i (one way); both
//! directions blocked between every pair across two groups is a partition.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_net::{BlockingClient, ClientOptions};

use super::{free_port, test_dir, PeerProxy, TestNode};

/// A cluster of real `cairnd` processes on 127.0.0.1. Dropping it kills
/// every member (by pid), stops the proxies and removes the data dirs.
pub struct TestCluster {
    pub dir: PathBuf,
    pub nodes: Vec<TestNode>,
    /// One per member, in front of its peer listener (empty without).
    pub proxies: Vec<PeerProxy>,
    /// Each member's id, as its `status` reports it.
    pub member_ids: Vec<u64>,
}

impl TestCluster {
    /// Starts `n` members with `extra` flags and waits until one of them
    /// leads and every member knows it.
    pub fn start(n: usize, extra: &[&str]) -> TestCluster {
        Self::start_inner(n, extra, false)
    }

    /// As [`TestCluster::start`], each member behind a [`PeerProxy`] (see
    /// the module docs), so that [`TestCluster::isolate`],
    /// [`TestCluster::partition`] and [`TestCluster::block_link`] work.
    pub fn start_partitionable(n: usize, extra: &[&str]) -> TestCluster {
        Self::start_inner(n, extra, true)
    }

    fn start_inner(n: usize, extra: &[&str], proxied: bool) -> TestCluster {
        let dir = test_dir("cluster");
        let mut nodes: Vec<TestNode> = (1..=n)
            .map(|i| TestNode::member(&dir, &format!("n{i}"), free_port(), free_port(), extra))
            .collect();
        let mut proxies = Vec::new();
        if proxied {
            for m in nodes.iter_mut() {
                let p = PeerProxy::start(free_port(), m.peer_port).expect("start a peer proxy");
                m.advertise_peer_port = Some(p.addr().port());
                proxies.push(p);
            }
        }
        let ic = nodes
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for m in nodes.iter_mut() {
            m.initial_cluster = Some(ic.clone());
            m.launch();
        }
        let mut c = TestCluster {
            dir,
            nodes,
            proxies,
            member_ids: Vec::new(),
        };
        // Generous: five members and their clients share two test cores.
        c.wait_leader(Duration::from_secs(40));
        c.member_ids = c.nodes.iter().map(member_id).collect();
        c
    }

    /// The `--initial-cluster` value naming every member.
    pub fn initial_cluster(&self) -> String {
        self.nodes
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// All client endpoints, comma-separated (for cairnctl --endpoints).
    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|m| m.endpoint())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Each member's name and client address (for a [`super::Recorder`]).
    pub fn client_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.name.clone(), n.endpoint().parse().ok()?)))
            .collect()
    }

    /// The member id each running member reports as leader, by index of
    /// the member that leads; waits until the running members agree.
    pub fn wait_leader(&mut self, limit: Duration) -> usize {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_leader_among(&all, limit)
    }

    /// As [`TestCluster::wait_leader`], asking only the members `among`
    /// (the side of a partition); the leader is one of them.
    pub fn wait_leader_among(&mut self, among: &[usize], limit: Duration) -> usize {
        let start = Instant::now();
        loop {
            if let Some(i) = self.leader_among(among) {
                return i;
            }
            if start.elapsed() > limit {
                let logs: String = self
                    .nodes
                    .iter()
                    .map(|n| format!("--- {}:\n{}", n.name, n.log()))
                    .collect();
                panic!("no agreed leader among {among:?} after {limit:?}; logs:\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The index of the leader if every running member names the same one.
    pub fn leader_now(&mut self) -> Option<usize> {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.leader_among(&all)
    }

    /// The index of the leader if every running member of `among` names
    /// the same one, and it is one of them.
    pub fn leader_among(&mut self, among: &[usize]) -> Option<usize> {
        let mut leader = None;
        let mut ids = Vec::new();
        for &i in among {
            let n = &mut self.nodes[i];
            if !n.is_running() {
                continue;
            }
            let st = status(n)?;
            let me = st.header.as_ref().map_or(0, |h| h.member_id);
            ids.push((i, me));
            if st.leader == 0 || leader.is_some_and(|l| l != st.leader) {
                return None;
            }
            leader = Some(st.leader);
        }
        let leader = leader?;
        ids.iter().find(|(_, id)| *id == leader).map(|(i, _)| *i)
    }

    /// The id of the leader member `i` knows of (0: none), if it answers.
    pub fn leader_seen_by(&self, i: usize) -> Option<u64> {
        status(&self.nodes[i]).map(|s| s.leader)
    }

    /// A client that knows every member (fails over between them).
    pub fn client(&self) -> BlockingClient {
        let addrs: Vec<std::net::SocketAddr> = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint().parse().ok())
            .collect();
        BlockingClient::connect(&addrs, ClientOptions::default()).expect("connect to the cluster")
    }

    fn proxies(&self) -> &[PeerProxy] {
        assert!(
            self.proxies.len() == self.nodes.len() && self.member_ids.len() == self.nodes.len(),
            "partitions need a cluster from TestCluster::start_partitionable"
        );
        &self.proxies
    }

    /// Cuts member `i` off: nobody reaches it, and it reaches nobody.
    pub fn isolate(&self, i: usize) {
        let proxies = self.proxies();
        proxies[i].block_all();
        for (j, p) in proxies.iter().enumerate() {
            if j != i {
                p.block_from(&[self.member_ids[i]]);
            }
        }
    }

    /// Splits the members into `groups` (each member in at most one; one
    /// left out is cut off from everybody): members of different groups
    /// exchange nothing. Adds to the faults already in place.
    pub fn partition(&self, groups: &[&[usize]]) {
        let proxies = self.proxies();
        let group_of = |i: usize| groups.iter().position(|g| g.contains(&i));
        for (i, p) in proxies.iter().enumerate() {
            let others: Vec<u64> = (0..self.nodes.len())
                .filter(|&j| j != i && (group_of(j).is_none() || group_of(j) != group_of(i)))
                .map(|j| self.member_ids[j])
                .collect();
            p.block_from(&others);
        }
    }

    /// Loses every message from member `from` to member `to` (one way).
    pub fn block_link(&self, from: usize, to: usize) {
        self.proxies()[to].block_from(&[self.member_ids[from]]);
    }

    /// Removes every fault.
    pub fn heal(&self) {
        for p in self.proxies() {
            p.heal();
        }
    }
}

fn status(n: &TestNode) -> Option<cairn_schemas::rpc::StatusResponseT> {
    let opts = ClientOptions {
        dial_timeout: Duration::from_millis(200),
        request_timeout: Duration::from_millis(500),
        ..Default::default()
    };
    let addr = n.endpoint().parse().ok()?;
    BlockingClient::connect(&[addr], opts).ok()?.status().ok()
}

fn member_id(n: &TestNode) -> u64 {
    let st = status(n).unwrap_or_else(|| panic!("{} does not answer status", n.name));
    st.header
        .map(|h| h.member_id)
        .filter(|id| *id != 0)
        .unwrap_or_else(|| panic!("{} reports no member id", n.name))
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in self.nodes.iter_mut() {
            n.kill9();
        }
        for p in self.proxies.iter_mut() {
            p.stop();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
