//! Data-driven scripts (`raft/testdata/*.txt`, in the style of etcd's raft
//! testdata): commands in, the messages and state they produce out, so a
//! message flow reads like a specification. Lines starting with `> ` are
//! commands; the lines after one are its expected output.
//! `CAIRN_RAFT_REWRITE=1` rewrites the files with the actual output.
//!
//! Commands: `cluster N [prevote=0|1] [check_quorum=0|1] [max_size=BYTES]`,
//! `campaign ID`, `tick ID [N]`, `propose ID DATA`, `read ID CTX`,
//! `deliver` (one hop: every queued message, then what it produced),
//! `drop` (lose every queued message), `isolate ID`, `heal`, `status`.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::super::{Message, Raft};
use super::Net;

struct Script {
    net: Net,
    /// Messages produced and not yet delivered.
    queue: Vec<Message>,
    isolated: BTreeSet<u64>,
}

fn show(m: &Message, after_fsync: bool) -> String {
    let mut s = format!("{}->{} {:?} term={}", m.from, m.to, m.kind, m.term);
    for (name, v) in [
        ("index", m.index),
        ("log_term", m.log_term),
        ("commit", m.commit),
        ("hint", m.reject_hint),
    ] {
        if v != 0 {
            let _ = write!(s, " {name}={v}");
        }
    }
    if !m.entries.is_empty() {
        let ents: Vec<String> = m
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{}/{}{}",
                    e.term,
                    e.index,
                    if e.data.is_empty() {
                        String::new()
                    } else {
                        format!(":{}", String::from_utf8_lossy(&e.data))
                    }
                )
            })
            .collect();
        let _ = write!(s, " entries=[{}]", ents.join(" "));
    }
    if m.reject {
        s.push_str(" REJECT");
    }
    if !m.context.is_empty() {
        let _ = write!(s, " ctx={}", m.context.len());
    }
    if after_fsync {
        s.push_str("  (after fsync)");
    }
    s
}

impl Script {
    /// Handles every Ready; returns the lines describing its output.
    fn pump(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for node in self.net.nodes.values_mut() {
            while node.has_ready() {
                let rd = node.ready();
                for (m, late) in rd
                    .messages
                    .iter()
                    .map(|m| (m, false))
                    .chain(rd.persisted_messages.iter().map(|m| (m, true)))
                {
                    out.push(show(m, late));
                    self.queue.push(m.clone());
                }
                for e in rd.committed_entries.iter().filter(|e| !e.data.is_empty()) {
                    out.push(format!(
                        "{} applies {}/{}:{}",
                        node.id(),
                        e.term,
                        e.index,
                        String::from_utf8_lossy(&e.data)
                    ));
                }
                for r in &rd.read_states {
                    out.push(format!("{} read ready at index {}", node.id(), r.index));
                }
                node.advance(rd);
            }
        }
        out
    }

    fn status(node: &Raft) -> String {
        format!(
            "{}: {:?} term={} leader={} last={} commit={} applied={}",
            node.id(),
            node.role(),
            node.term(),
            node.leader().unwrap_or(0),
            node.last_index(),
            node.committed(),
            node.applied()
        )
    }

    fn run(&mut self, cmd: &str) -> Vec<String> {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let arg = |i: usize| {
            words
                .get(i)
                .map(|w| w.parse::<u64>().expect("numeric argument"))
                .unwrap_or(1)
        };
        let mut out = Vec::new();
        match words[0] {
            "cluster" => {
                let opt = |name: &str, default: u64| {
                    words
                        .iter()
                        .find_map(|w| w.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                        .map_or(default, |v| v.parse().expect("number"))
                };
                let (pv, cq, size) = (
                    opt("prevote", 1) == 1,
                    opt("check_quorum", 1) == 1,
                    opt("max_size", 1 << 20),
                );
                self.net = Net::cluster(arg(1), |c| {
                    (c.pre_vote, c.check_quorum, c.max_size_per_msg_bytes) = (pv, cq, size)
                });
            }
            "campaign" => self.net.node(arg(1)).hup(false),
            "tick" => (0..arg(2)).for_each(|_| self.net.node(arg(1)).tick()),
            "propose" => match self.net.node(arg(1)).propose(words[2].as_bytes().to_vec()) {
                Ok(i) => out.push(format!("index {i}")),
                Err(e) => out.push(format!("error: {e}")),
            },
            "read" => {
                if let Err(e) = self
                    .net
                    .node(arg(1))
                    .read_index(words[2].as_bytes().to_vec())
                {
                    out.push(format!("error: {e}"));
                }
            }
            "deliver" => {
                for m in std::mem::take(&mut self.queue) {
                    if !self.isolated.contains(&m.to) && !self.isolated.contains(&m.from) {
                        self.net.deliver(m);
                    }
                }
            }
            "drop" => self.queue.clear(),
            "isolate" => {
                self.isolated.insert(arg(1));
            }
            "heal" => self.isolated.clear(),
            "status" => out.extend(self.net.nodes.values().map(Script::status)),
            other => panic!("unknown script command {other:?}"),
        }
        out.extend(self.pump());
        out
    }
}

fn run_file(name: &str) {
    let path = format!("{}/src/raft/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut script = Script {
        net: Net::cluster(1, |_| {}),
        queue: Vec::new(),
        isolated: BTreeSet::new(),
    };
    let (mut expected, mut actual) = (String::new(), String::new());
    for line in text.lines() {
        if let Some(cmd) = line.strip_prefix("> ") {
            actual.push_str(line);
            actual.push('\n');
            for l in script.run(cmd) {
                actual.push_str(&l);
                actual.push('\n');
            }
        } else if line.starts_with('#') || line.is_empty() {
            actual.push_str(line);
            actual.push('\n');
        }
        expected.push_str(line);
        expected.push('\n');
    }
    if std::env::var_os("CAIRN_RAFT_REWRITE").is_some() {
        std::fs::write(&path, &actual).expect("rewrite testdata");
        return;
    }
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        let (e, a) = (expected.lines().count(), actual.lines().count());
        panic!(
            "{path} differs ({e} vs {a} lines; CAIRN_RAFT_REWRITE=1 to accept):\n{}",
            diff.join("\n")
        );
    }
}

#[test]
fn script_election_and_prevote() {
    run_file("election.txt");
}

#[test]
fn script_replication_and_backtracking() {
    run_file("replication.txt");
}
