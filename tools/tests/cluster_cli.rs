//! cairnctl against a real 3-member cairnd cluster: `member`, `endpoint
//! --cluster`, `move-leader` and failover past a dead member, with the
//! outputs etcdctl 3.4.23 gives for the same commands against etcd.
//!
//! Every test is ignored until the cluster server (Raft wiring, the Cluster
//! service and MoveLeader) is in cairnd; then run them with
//! `cargo build -p cairn-tools -p cairn-core --bins &&
//!  cargo test -p cairn-tools --test cluster_cli -- --include-ignored`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::testkit::{bin_path, free_port, run_bin, test_dir};

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Member {
    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }
    fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }
    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }
    /// Kills the process (by its pid, through its handle) and reaps it.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // After kill -9 the kernel tears the process's io_uring down
        // asynchronously; until then its listening socket still accepts
        // (and then drops) connections. A dead endpoint is one that
        // refuses: wait for that (bounded).
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10)
            && std::net::TcpStream::connect(("127.0.0.1", self.client_port)).is_ok()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A cluster started with etcd's flags (`--initial-cluster`, `--initial-
/// cluster-state new`, ...); dropping it kills every member.
struct Cluster {
    dir: PathBuf,
    members: Vec<Member>,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let dir = test_dir("cluster");
        let members: Vec<Member> = (1..=n)
            .map(|i| Member {
                name: format!("n{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial: Vec<String> = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect();
        let mut c = Cluster { dir, members };
        for i in 0..n {
            let m = &c.members[i];
            let data = c.dir.join(&m.name);
            let log = std::fs::File::create(c.dir.join(format!("{}.log", m.name))).expect("log");
            let child = Command::new(bin_path("cairnd"))
                .args([
                    "--name",
                    &m.name,
                    "--data-dir",
                    &data.display().to_string(),
                    "--initial-cluster",
                    &initial.join(","),
                    "--initial-advertise-peer-urls",
                    &m.peer_url(),
                    "--listen-peer-urls",
                    &m.peer_url(),
                    "--listen-client-urls",
                    &m.client_url(),
                    "--advertise-client-urls",
                    &m.client_url(),
                    "--initial-cluster-token",
                    "cairn-cluster-cli",
                    "--initial-cluster-state",
                    "new",
                ])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("spawn cairnd");
            c.members[i].child = Some(child);
        }
        c.wait_for_leader(Duration::from_secs(30));
        c
    }

    /// Every member's client endpoint, comma-separated.
    fn endpoints(&self) -> String {
        let eps: Vec<String> = self.members.iter().map(|m| m.endpoint()).collect();
        eps.join(",")
    }

    fn ctl(&self, endpoints: &str, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["--endpoints", endpoints];
        all.extend_from_slice(args);
        run_bin("cairnctl", &all, None)
    }

    /// `endpoint status -w json` of every member: (member id, leader id).
    fn statuses(&self) -> Vec<(u64, u64)> {
        let (_, out, _) = self.ctl(&self.endpoints(), &["endpoint", "status", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v.as_array()
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let s = &e["Status"];
                        (
                            s["header"]["member_id"].as_u64().unwrap_or(0),
                            s["leader"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The leader's id once every member agrees on one.
    fn wait_for_leader(&self, limit: Duration) -> u64 {
        let start = Instant::now();
        while start.elapsed() < limit {
            let st = self.statuses();
            if st.len() == self.members.len() && st[0].1 != 0 && st.iter().all(|s| s.1 == st[0].1) {
                return st[0].1;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no leader after {limit:?}; logs in {}", self.dir.display());
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.kill();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `Member <16 hex> <words> cluster <16 hex>` (ids padded as Go's %16x).
fn is_member_line(line: &str, words: &str) -> bool {
    let Some(rest) = line.strip_prefix("Member ") else {
        return false;
    };
    let hex16 = |s: &str| s.len() == 16 && s.trim_start().chars().all(|c| c.is_ascii_hexdigit());
    let id = &rest[..16.min(rest.len())];
    let tail = &rest[16.min(rest.len())..];
    let want = format!(" {words} cluster ");
    hex16(id) && tail.starts_with(&want) && hex16(&tail[want.len()..])
}

#[test]
fn member_list_shows_every_member_in_every_format() {
    let c = Cluster::start(3);
    let (code, out, err) = c.ctl(&c.members[0].endpoint(), &["member", "list"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for m in &c.members {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(", {}, ", m.name)))
            .unwrap_or_else(|| panic!("{} missing in {out}", m.name));
        assert!(
            line.ends_with(&format!(
                ", started, {}, {}, {}, false",
                m.name,
                m.peer_url(),
                m.client_url()
            )),
            "{line}"
        );
    }
    let (_, table, _) = c.ctl(&c.endpoints(), &["member", "list", "-w", "table"]);
    assert!(
        table.contains("|        ID        | STATUS  | NAME |"),
        "{table}"
    );
    let (_, json, _) = c.ctl(&c.endpoints(), &["member", "list", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        v["header"]["cluster_id"].as_u64().unwrap_or(0) != 0,
        "{json}"
    );
    assert!(v["header"].get("revision").is_none(), "{json}");
    assert_eq!(v["members"].as_array().map(|a| a.len()), Some(3));
    let (_, fields, _) = c.ctl(&c.endpoints(), &["member", "list", "-w", "fields"]);
    assert!(fields.starts_with("\"ClusterID\" : "), "{fields}");
    assert_eq!(fields.matches("\"IsLearner\" : false\n\n").count(), 3);
}

#[test]
fn endpoint_status_and_health_with_cluster_ask_every_member() {
    let c = Cluster::start(3);
    let one = c.members[1].endpoint();
    let (code, out, err) = c.ctl(&one, &["endpoint", "status", "--cluster"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    for m in &c.members {
        let prefix = format!("{}, ", m.client_url());
        assert!(lines.iter().any(|l| l.starts_with(&prefix)), "{out}");
    }
    assert_eq!(
        out.matches(", true, false, ").count(),
        1,
        "one leader: {out}"
    );
    let (code, out, err) = c.ctl(&one, &["endpoint", "health", "--cluster"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    for m in &c.members {
        let healthy = format!(
            "{} is healthy: successfully committed proposal: took = ",
            m.client_url()
        );
        assert!(err.contains(&healthy), "{err}");
    }
}

#[test]
fn a_dead_member_is_unhealthy_and_fails_status() {
    let mut c = Cluster::start(3);
    c.members[2].kill();
    let dead = c.members[2].client_url();
    let args = [
        "--command-timeout=1s",
        "--dial-timeout=500ms",
        "endpoint",
        "health",
        "--cluster",
    ];
    let (code, _, err) = c.ctl(&c.members[0].endpoint(), &args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{dead} is unhealthy: failed to commit proposal: context deadline exceeded\n"
        )),
        "{err}"
    );
    assert!(err.ends_with("Error: unhealthy cluster\n"), "{err}");
    let args = ["--command-timeout=1s", "endpoint", "status", "--cluster"];
    let (code, out, err) = c.ctl(&c.members[0].endpoint(), &args);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(
        err,
        format!("Failed to get the status of endpoint {dead} (context deadline exceeded)\n")
    );
}

#[test]
fn learner_is_added_listed_updated_and_removed() {
    let c = Cluster::start(3);
    let eps = c.endpoints();
    let peer = format!("http://127.0.0.1:{}", free_port());
    let flag = format!("--peer-urls={peer}");
    let (code, out, err) = c.ctl(&eps, &["member", "add", "n4", &flag, "--learner"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(is_member_line(lines[0], "added to"), "{out}");
    let new_id = lines[0][7..23].trim().to_string();
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "ETCD_NAME=\"n4\"");
    let mut conf: Vec<String> = c
        .members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url()))
        .collect();
    conf.push(format!("n4={peer}"));
    for part in &conf {
        assert!(lines[3].contains(part.as_str()), "{out}");
    }
    assert!(lines[3].starts_with("ETCD_INITIAL_CLUSTER=\""), "{out}");
    assert_eq!(
        lines[4],
        format!("ETCD_INITIAL_ADVERTISE_PEER_URLS=\"{peer}\"")
    );
    assert_eq!(lines[5], "ETCD_INITIAL_CLUSTER_STATE=\"existing\"");

    let (_, list, _) = c.ctl(&eps, &["member", "list"]);
    assert!(
        list.contains(&format!("{new_id}, unstarted, , {peer}, , true\n")),
        "{list}"
    );
    let (code, _, err) = c.ctl(&eps, &["member", "promote", &new_id]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: etcdserver: can only promote a learner member which is in sync with leader\n"
        )
    );
    let peer2 = format!("http://127.0.0.1:{}", free_port());
    let flag2 = format!("--peer-urls={peer2}");
    let (code, out, err) = c.ctl(&eps, &["member", "update", &new_id, &flag2]);
    assert_eq!(code, 0, "{err}");
    assert!(is_member_line(out.trim_end(), "updated in"), "{out}");
    let (code, out, err) = c.ctl(&eps, &["member", "remove", &new_id]);
    assert_eq!(code, 0, "{err}");
    assert!(is_member_line(out.trim_end(), "removed from"), "{out}");
    let (_, list, _) = c.ctl(&eps, &["member", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    let (code, _, err) = c.ctl(&eps, &["member", "remove", &new_id]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: etcdserver: member not found\n")
    );
    // A voter's peer URL is taken.
    let taken = format!("--peer-urls={}", c.members[0].peer_url());
    let (code, _, err) = c.ctl(&eps, &["member", "add", "n5", &taken]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: etcdserver: Peer URLs already exists\n")
    );
}

#[test]
fn move_leader_hands_leadership_to_a_follower() {
    let c = Cluster::start(3);
    let leader = c.wait_for_leader(Duration::from_secs(10));
    let statuses = c.statuses();
    let follower = statuses
        .iter()
        .map(|s| s.0)
        .find(|id| *id != leader)
        .expect("a follower");
    // Only a follower's endpoint: etcdctl finds no leader among them.
    let follower_ep = c
        .members
        .iter()
        .zip(&statuses)
        .find(|(_, s)| s.0 == follower)
        .map(|(m, _)| m.endpoint())
        .expect("follower endpoint");
    let (code, _, err) = c.ctl(&follower_ep, &["move-leader", &format!("{follower:x}")]);
    assert_eq!(
        (code, err),
        (
            128,
            format!("Error: no leader endpoint given at [{follower_ep}]\n")
        )
    );
    let (code, out, err) = c.ctl(&c.endpoints(), &["move-leader", &format!("{follower:x}")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Leadership transferred from {leader:x} to {follower:x}\n")
    );
    assert_eq!(c.wait_for_leader(Duration::from_secs(10)), follower);
    let (code, _, err) = c.ctl(&c.endpoints(), &["move-leader", "1234"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: etcdserver: bad leader transferee\n")
    );
}

#[test]
fn commands_move_past_a_dead_first_endpoint() {
    let mut c = Cluster::start(3);
    c.members[0].kill();
    c.wait_for_leader_among_live();
    let eps = c.endpoints();
    let (code, out, err) = c.ctl(&eps, &["put", "k", "v"]);
    assert_eq!((code, out.as_str()), (0, "OK\n"), "{err}");
    let (code, out, err) = c.ctl(&eps, &["get", "k"]);
    assert_eq!((code, out.as_str()), (0, "k\nv\n"), "{err}");
    let (code, out, err) = c.ctl(&eps, &["member", "list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 3);
}

impl Cluster {
    /// Waits until the members still running agree on a leader.
    fn wait_for_leader_among_live(&self) {
        let live: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.child.is_some())
            .map(|m| m.endpoint())
            .collect();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let (code, _, _) = self.ctl(&live.join(","), &["endpoint", "health"]);
            if code == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "no leader among live members; logs in {}",
            self.dir.display()
        );
    }
}
