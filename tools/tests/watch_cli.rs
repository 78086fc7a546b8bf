//! `cairnctl watch` against a real cairnd, output byte for byte as
//! etcdctl 3.4.23 prints it for the same writes (captured from etcdctl
//! against etcd 3.4.23; the header ids are this node's). Build first:
//! `cargo build -p cairn-tools -p cairn-core --bins`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::testkit::{bin_path, run_bin, test_dir, TestNode};

struct Watch {
    child: Child,
    dir: std::path::PathBuf,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Watch {
    /// Starts `cairnctl --endpoints EP ARGS...` with its output in files.
    fn start(ep: &str, args: &[&str], stdin: Option<&str>) -> Watch {
        let dir = test_dir("watch-cli");
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let err = dir.join("err");
        let mut cmd = Command::new(bin_path("cairnctl"));
        cmd.arg("--endpoints")
            .arg(ep)
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = cmd.spawn().expect("start cairnctl");
        if let Some(s) = stdin {
            use std::io::Write;
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(s.as_bytes())
                .unwrap();
        }
        Watch {
            child,
            dir,
            out,
            err,
        }
    }

    fn out(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn err(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until stdout holds `lines` lines (or 10 s), then stops it.
    fn finish(mut self, lines: usize) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.out().lines().count() < lines && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let got = (self.out(), self.err());
        let _ = std::fs::remove_dir_all(&self.dir);
        got
    }
}

fn ctl(ep: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["--endpoints", ep];
    all.extend_from_slice(args);
    run_bin("cairnctl", &all, None)
}

fn ok(ep: &str, args: &[&str]) {
    let (code, _, err) = ctl(ep, args);
    assert_eq!(code, 0, "{args:?}: {err}");
}

/// `"cluster_id":..,"member_id":..` of this node, as json prints them.
fn ids(ep: &str) -> (u64, u64) {
    let (_, out, _) = ctl(ep, &["get", "x", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    (
        v["header"]["cluster_id"].as_u64().unwrap(),
        v["header"]["member_id"].as_u64().unwrap(),
    )
}

/// Starts watches, waits until the server created them.
fn settle() {
    std::thread::sleep(Duration::from_millis(700));
}

/// The writes of the etcdctl capture: put /cfg/a 1, put /other x, put
/// /cfg/b 2, put /cfg/a 11, del /cfg/a (revisions 2..6 on a new node).
fn writes(ep: &str) {
    ok(ep, &["put", "/cfg/a", "1"]);
    ok(ep, &["put", "/other", "x"]);
    ok(ep, &["put", "/cfg/b", "2"]);
    ok(ep, &["put", "/cfg/a", "11"]);
    ok(ep, &["del", "/cfg/a"]);
}

#[test]
fn watch_prints_simple_json_and_fields_like_etcdctl() {
    let node = TestNode::start();
    let ep = node.endpoint();
    let simple = Watch::start(&ep, &["watch", "/cfg/", "--prefix"], None);
    let prev = Watch::start(&ep, &["watch", "/cfg/", "--prefix", "--prev-kv"], None);
    let json = Watch::start(
        &ep,
        &["watch", "/cfg/", "--prefix", "--prev-kv", "-w", "json"],
        None,
    );
    let fields = Watch::start(&ep, &["watch", "/cfg/a", "-w", "fields"], None);
    let hex = Watch::start(&ep, &["watch", "/cfg/a", "--hex"], None);
    settle();
    writes(&ep);
    let (cid, mid) = ids(&ep);
    assert_eq!(
        simple.finish(11).0,
        "PUT\n/cfg/a\n1\nPUT\n/cfg/b\n2\nPUT\n/cfg/a\n11\nDELETE\n/cfg/a\n\n"
    );
    assert_eq!(
        prev.finish(15).0,
        "PUT\n/cfg/a\n1\nPUT\n/cfg/b\n2\nPUT\n/cfg/a\n1\n/cfg/a\n11\nDELETE\n/cfg/a\n11\n/cfg/a\n\n"
    );
    let h = |rev: i64| {
        format!("{{\"cluster_id\":{cid},\"member_id\":{mid},\"revision\":{rev},\"raft_term\":2}}")
    };
    let tail = "\"CompactRevision\":0,\"Canceled\":false,\"Created\":false}\n";
    let want = [
        format!("{{\"Header\":{},\"Events\":[{{\"kv\":{{\"key\":\"L2NmZy9h\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"MQ==\"}}}}],{tail}", h(2)),
        format!("{{\"Header\":{},\"Events\":[{{\"kv\":{{\"key\":\"L2NmZy9i\",\"create_revision\":4,\"mod_revision\":4,\"version\":1,\"value\":\"Mg==\"}}}}],{tail}", h(4)),
        format!("{{\"Header\":{},\"Events\":[{{\"kv\":{{\"key\":\"L2NmZy9h\",\"create_revision\":2,\"mod_revision\":5,\"version\":2,\"value\":\"MTE=\"}},\"prev_kv\":{{\"key\":\"L2NmZy9h\",\"create_revision\":2,\"mod_revision\":2,\"version\":1,\"value\":\"MQ==\"}}}}],{tail}", h(5)),
        format!("{{\"Header\":{},\"Events\":[{{\"type\":1,\"kv\":{{\"key\":\"L2NmZy9h\",\"mod_revision\":6}},\"prev_kv\":{{\"key\":\"L2NmZy9h\",\"create_revision\":2,\"mod_revision\":5,\"version\":2,\"value\":\"MTE=\"}}}}],{tail}", h(6)),
    ]
    .concat();
    assert_eq!(json.finish(4).0, want);
    let hdr = |rev: i64| {
        format!(
            "\"ClusterID\" : {cid}\n\"MemberID\" : {mid}\n\"Revision\" : {rev}\n\"RaftTerm\" : 2\n"
        )
    };
    let want = format!(
        "{}\"Type\" : PUT\n\"Key\" : \"/cfg/a\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 2\n\"Version\" : 1\n\"Value\" : \"1\"\n\"Lease\" : 0\n\
         {}\"Type\" : PUT\n\"Key\" : \"/cfg/a\"\n\"CreateRevision\" : 2\n\"ModRevision\" : 5\n\"Version\" : 2\n\"Value\" : \"11\"\n\"Lease\" : 0\n\
         {}\"Type\" : DELETE\n\"Key\" : \"/cfg/a\"\n\"CreateRevision\" : 0\n\"ModRevision\" : 6\n\"Version\" : 0\n\"Value\" : \"\"\n\"Lease\" : 0\n",
        hdr(2),
        hdr(5),
        hdr(6)
    );
    assert_eq!(fields.finish(33).0, want);
    assert_eq!(
        hex.finish(9).0,
        "PUT\n\\x2f\\x63\\x66\\x67\\x2f\\x61\n\\x31\nPUT\n\\x2f\\x63\\x66\\x67\\x2f\\x61\n\\x31\\x31\nDELETE\n\\x2f\\x63\\x66\\x67\\x2f\\x61\n\n"
    );
}

#[test]
fn watch_rev_replays_history_in_one_response_and_compacted_rev_is_canceled() {
    let node = TestNode::start();
    let ep = node.endpoint();
    writes(&ep);
    let w = Watch::start(&ep, &["watch", "/cfg/b", "--rev", "4"], None);
    assert_eq!(w.finish(3).0, "PUT\n/cfg/b\n2\n");
    let (cid, mid) = ids(&ep);
    let w = Watch::start(
        &ep,
        &["watch", "/cfg/", "--prefix", "--rev", "2", "-w", "json"],
        None,
    );
    let (out, _) = w.finish(1);
    assert_eq!(
        out.lines().count(),
        1,
        "history comes as one response: {out}"
    );
    assert!(out.starts_with(&format!(
        "{{\"Header\":{{\"cluster_id\":{cid},\"member_id\":{mid},\"revision\":6,\"raft_term\":2}},\"Events\":[{{\"kv\":{{\"key\":\"L2NmZy9h\""
    )));
    ok(&ep, &["compaction", "5"]);
    let (code, out, err) = ctl(&ep, &["watch", "/cfg/", "--prefix", "--rev", "3"]);
    assert_eq!(code, 5);
    assert_eq!(out, "compacted revision 5\n");
    assert_eq!(
        err,
        "watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n"
    );
    let (code, out, _) = ctl(
        &ep,
        &["watch", "/cfg/", "--prefix", "--rev", "3", "-w", "json"],
    );
    assert_eq!(code, 5);
    assert_eq!(
        out,
        format!("{{\"Header\":{{\"cluster_id\":{cid},\"member_id\":{mid},\"raft_term\":2}},\"Events\":[],\"CompactRevision\":5,\"Canceled\":true,\"Created\":false}}\n")
    );
    let (code, _, err) = ctl(&ep, &["watch", "b", "a"]);
    assert_eq!(code, 5);
    assert_eq!(
        err,
        "watch was canceled (mvcc: watcher range is empty)\nError: watch is canceled by the server\n"
    );
}

#[test]
fn watch_runs_a_command_per_event_with_etcdctl_environment() {
    let node = TestNode::start();
    let ep = node.endpoint();
    writes(&ep);
    let w = Watch::start(
        &ep,
        &[
            "watch",
            "/cfg/a",
            "--rev",
            "5",
            "--",
            "sh",
            "-c",
            "echo \"$ETCD_WATCH_REVISION $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY $ETCD_WATCH_VALUE\"",
        ],
        None,
    );
    assert_eq!(
        w.finish(8).0,
        "PUT\n/cfg/a\n11\nDELETE\n/cfg/a\n\n6 \"PUT\" \"/cfg/a\" \"11\"\n6 \"DELETE\" \"/cfg/a\" \"\"\n"
    );
    let (code, _, err) = ctl(
        &ep,
        &["watch", "/cfg/a", "--rev", "5", "--", "sh", "-c", "exit 3"],
    );
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "command [\"sh\" \"-c\" \"exit 3\"] error (exit status 3)\n"
    );
}

#[test]
fn watch_argument_errors_match_etcdctl() {
    let node = TestNode::start();
    let ep = node.endpoint();
    for (args, msg) in [
        (&["watch"][..], "bad number of arguments"),
        (
            &["watch", "a", "b", "--prefix"][..],
            "`range_end` and `--prefix` are mutually exclusive",
        ),
        (
            &["watch", "a", "--"][..],
            "bad number of arguments (found separator --, but no commands)",
        ),
    ] {
        let (code, out, err) = ctl(&ep, args);
        assert_eq!(
            (code, out.as_str(), err),
            (128, "", format!("Error: {msg}\n")),
            "{args:?}"
        );
    }
}

#[test]
fn interactive_watch_reads_watch_and_progress_lines() {
    let node = TestNode::start();
    let ep = node.endpoint();
    ok(&ep, &["put", "/x", "0"]);
    let w = Watch::start(
        &ep,
        &["watch", "-i"],
        Some("watch /p\nbogus\nwatch\n\nprogress\n"),
    );
    settle();
    ok(&ep, &["put", "/p", "1"]);
    let (out, err) = w.finish(4);
    assert_eq!(out, "progress notify: 2\nPUT\n/p\n1\n");
    assert_eq!(
        err,
        "Invalid command bogus (only support watch)\nInvalid command watch (command type or key is not provided)\nInvalid command:  (watch and progress supported)\n"
    );
}
