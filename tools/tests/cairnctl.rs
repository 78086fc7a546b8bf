//! cairnctl against a real cairnd: every command, its flags, output formats,
//! errors and exit codes, with the outputs etcdctl 3.4.23 gives for the
//! same requests. Build first: `cargo build -p cairn-tools -p cairn-core --bins`.

use std::time::{Duration, Instant};

use cairn_core::testkit::{free_port, run_bin, TestNode};

struct Ctl {
    endpoint: String,
}

impl Ctl {
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_stdin(args, None)
    }

    fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let mut all = vec!["--endpoints", &self.endpoint];
        all.extend_from_slice(args);
        run_bin("cairnctl", &all, stdin)
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "cairnctl {args:?} failed: {err}");
        out
    }
}

fn start() -> (TestNode, Ctl) {
    let node = TestNode::start();
    let ctl = Ctl {
        endpoint: node.endpoint(),
    };
    (node, ctl)
}

/// The `"revision":N` of a json header.
fn json_revision(out: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(out).expect("json output");
    v["header"]["revision"].as_i64().expect("header.revision")
}

#[test]
fn put_get_del_print_like_etcdctl() {
    let (_node, ctl) = start();
    assert_eq!(ctl.ok(&["put", "foo", "bar"]), "OK\n");
    assert_eq!(
        ctl.ok(&["put", "foo", "bar2", "--prev-kv"]),
        "OK\nfoo\nbar\n"
    );
    assert_eq!(ctl.ok(&["get", "foo"]), "foo\nbar2\n");
    assert_eq!(ctl.ok(&["get", "nonexist"]), "");
    for k in ["a", "b", "c", "d"] {
        ctl.ok(&["put", &format!("k/{k}"), &format!("v{k}")]);
    }
    assert_eq!(
        ctl.ok(&["get", "k/", "--prefix"]),
        "k/a\nva\nk/b\nvb\nk/c\nvc\nk/d\nvd\n"
    );
    assert_eq!(ctl.ok(&["get", "k/a", "k/c"]), "k/a\nva\nk/b\nvb\n");
    assert_eq!(
        ctl.ok(&["get", "k/c", "--from-key", "--keys-only"]),
        "k/c\n\nk/d\n\n"
    );
    assert_eq!(
        ctl.ok(&["get", "k/", "--prefix", "--limit", "2"]),
        "k/a\nva\nk/b\nvb\n"
    );
    assert_eq!(
        ctl.ok(&[
            "get",
            "k/",
            "--prefix",
            "--order",
            "DESCEND",
            "--print-value-only"
        ]),
        "vd\nvc\nvb\nva\n"
    );
    assert_eq!(
        ctl.ok(&[
            "get",
            "k/",
            "--prefix",
            "--sort-by",
            "VALUE",
            "--order",
            "DESCEND",
            "--limit",
            "1"
        ]),
        "k/d\nvd\n"
    );
    assert_eq!(
        ctl.ok(&["get", "k/", "--prefix", "--consistency", "s", "--keys-only"]),
        "k/a\n\nk/b\n\nk/c\n\nk/d\n\n"
    );
    assert_eq!(
        ctl.ok(&["--hex", "get", "foo"]),
        "\\x66\\x6f\\x6f\n\\x62\\x61\\x72\\x32\n"
    );
    assert_eq!(ctl.ok(&["del", "k/a"]), "1\n");
    assert_eq!(ctl.ok(&["del", "k/a"]), "0\n");
    assert_eq!(ctl.ok(&["del", "k/b", "--prev-kv"]), "1\nk/b\nvb\n");
    assert_eq!(ctl.ok(&["del", "k/", "--prefix"]), "2\n");
    assert_eq!(ctl.ok(&["get", "k/", "--prefix"]), "");
    ctl.ok(&["put", "z1", "1"]);
    ctl.ok(&["put", "z2", "2"]);
    assert_eq!(
        ctl.ok(&["del", "z", "--from-key", "--prev-kv"]),
        "2\nz1\n1\nz2\n2\n"
    );
}

#[test]
fn put_reads_value_from_stdin_and_honours_ignore_flags() {
    let (_node, ctl) = start();
    let (code, out, err) = ctl.run_stdin(&["put", "sk"], Some("line1\nline2\n"));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "OK\n", ""));
    assert_eq!(ctl.ok(&["get", "sk"]), "sk\nline1\nline2\n\n");
    assert_eq!(ctl.ok(&["put", "sk", "--ignore-value"]), "OK\n");
    assert_eq!(
        ctl.ok(&["get", "sk", "--print-value-only"]),
        "line1\nline2\n\n"
    );
    assert_eq!(ctl.ok(&["put", "sk", "v2", "--ignore-lease"]), "OK\n");
    let (code, _, err) = ctl.run(&["put", "nokey", "--ignore-value"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error: etcdserver: key not found"), "{err}");
    let (code, out, err) = ctl.run(&["put", "k"]);
    assert_eq!((code, out.as_str()), (128, ""));
    assert_eq!(
        err,
        "Error: put command needs 1 argument and input from stdin or 2 arguments\n"
    );
    let (code, _, err) = ctl.run(&["put", "k", "v", "--lease", "zz"]);
    assert_eq!(code, 128);
    assert_eq!(err, "Error: bad lease ID (strconv.ParseInt: parsing \"zz\": invalid syntax), expecting ID in Hex\n");
    let (code, _, err) = ctl.run(&["put", "k", "v", "--ignore-value"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: put command needs only 1 argument when 'ignore-value' is set\n"
        )
    );
}

#[test]
fn json_and_fields_outputs_carry_the_header() {
    let (_node, ctl) = start();
    let out = ctl.ok(&["-w", "json", "put", "foo", "bar"]);
    let rev = json_revision(&out);
    assert!(rev >= 2, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["header"]["cluster_id"].as_u64().unwrap() > 0, "{out}");
    assert!(v["header"]["member_id"].as_u64().unwrap() > 0, "{out}");
    assert!(v["header"]["raft_term"].as_u64().unwrap() > 0, "{out}");
    assert!(v.get("prev_kv").is_none(), "zero fields are omitted: {out}");

    let out = ctl.ok(&["get", "foo", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kvs"][0]["key"], "Zm9v");
    assert_eq!(v["kvs"][0]["value"], "YmFy");
    assert_eq!(v["kvs"][0]["create_revision"].as_i64(), Some(rev));
    assert_eq!(v["kvs"][0]["version"].as_i64(), Some(1));
    assert!(v["kvs"][0].get("lease").is_none(), "{out}");
    assert_eq!(v["count"].as_i64(), Some(1));
    assert!(v.get("more").is_none(), "{out}");

    let out = ctl.ok(&["get", "nonexist", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v.as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["header"],
        "{out}"
    );

    let out = ctl.ok(&["del", "foo", "--prev-kv", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deleted"].as_i64(), Some(1));
    assert_eq!(v["prev_kvs"][0]["value"], "YmFy");

    let fields = ctl.ok(&["put", "foo", "x", "-w", "fields"]);
    assert!(fields.starts_with("\"ClusterID\" : "), "{fields}");
    assert!(fields.contains("\"Revision\" : "), "{fields}");
    let fields = ctl.ok(&["get", "foo", "-w", "fields", "--count-only"]);
    assert!(
        fields.ends_with("\"More\" : false\n\"Count\" : 1\n"),
        "{fields}"
    );
}

#[test]
fn unsupported_outputs_fail_with_etcdctl_codes() {
    let (_node, ctl) = start();
    let (code, out, err) = ctl.run(&["put", "foo", "bar", "-w", "table"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (4, "", "Error: table not supported as output format\n")
    );
    // Like etcdctl, the put was applied before the printer refused.
    assert_eq!(ctl.ok(&["get", "foo"]), "foo\nbar\n");
    let (code, _, err) = ctl.run(&["get", "foo", "-w", "yaml"]);
    assert_eq!(
        (code, err.as_str()),
        (4, "Error: unsupported output format\n")
    );
    let (code, _, err) = ctl.run(&["get", "foo", "--print-value-only", "-w", "json"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: print-value-only is only for `--write-out=simple`\n"
        )
    );
    let (code, _, err) = ctl.run(&["get", "foo", "--count-only"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: --count-only is only for `--write-out=fields`\n"
        )
    );
    let (code, _, err) = ctl.run(&["get", "foo", "--consistency", "x"]);
    assert_eq!(
        (code, err.as_str()),
        (4, "Error: unknown consistency flag \"x\"\n")
    );
}

#[test]
fn txn_from_stdin_takes_success_and_failure_paths() {
    let (_node, ctl) = start();
    ctl.ok(&["put", "foo", "bar"]);
    let input = "value(\"foo\") = \"bar\"\n\nput foo bar2\n\nput foo bar3\n\n";
    let (code, out, err) = ctl.run_stdin(&["txn"], Some(input));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "SUCCESS\n\nOK\n", "")
    );
    assert_eq!(ctl.ok(&["get", "foo", "--print-value-only"]), "bar2\n");
    let (code, out, _) = ctl.run_stdin(&["txn"], Some(input));
    assert_eq!((code, out.as_str()), (0, "FAILURE\n\nOK\n"));
    assert_eq!(ctl.ok(&["get", "foo", "--print-value-only"]), "bar3\n");

    let many = "mod(\"foo\") > \"0\"\nc(\"foo\") != \"0\"\nversion(\"foo\") < \"100\"\nval(\"foo\") = \"bar3\"\n\n\
put foo bar4 --prev-kv\nget foo\ndel nothing\nget fo --prefix --keys-only\n\n\n";
    let (code, out, err) = ctl.run_stdin(&["txn"], Some(many));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "SUCCESS\n\nOK\nfoo\nbar3\n\nfoo\nbar4\n\n0\n\nfoo\n\n");

    let (code, out, _) = ctl.run_stdin(&["txn", "-w", "json"], Some("\nget foo\n\n\n"));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["succeeded"], true);
    assert_eq!(
        v["responses"][0]["Response"]["ResponseRange"]["kvs"][0]["value"],
        "YmFyNA=="
    );

    let (code, out, _) = ctl.run_stdin(&["txn", "-i"], Some(input));
    assert_eq!(code, 0);
    assert_eq!(out, "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n\nOK\n");
}

#[test]
fn txn_input_errors_exit_3() {
    let (_node, ctl) = start();
    let cases: &[(&str, &str)] = &[
        (
            "value(\"foo\") = \"bar\"\n\nput foo bar2\n\nput foo bar3\n",
            "Error: EOF\n",
        ),
        ("", "Error: EOF\n"),
        ("bogus\n\n\n\n", "Error: malformed comparison: bogus\n"),
        (
            "ver(\"foo\") = \"x\"\n\n\n\n",
            "Error: invalid txn compare request: ver(\"foo\") = \"x\"\n",
        ),
        ("\nfrob x\n\n\n", "Error: invalid txn request: frob x\n"),
        (
            "\nget foo -w json\n\n\n",
            "Error: invalid txn request: get foo -w json\n",
        ),
    ];
    for (input, want) in cases {
        let (code, out, err) = ctl.run_stdin(&["txn"], Some(input));
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (3, "", *want),
            "input {input:?}"
        );
    }
    let (code, _, err) = ctl.run_stdin(&["txn"], Some("\nput a b\nput a c\n\n\n"));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error: etcdserver: duplicate key given in txn request\n"
    );
}

#[test]
fn compaction_then_reading_a_compacted_revision_fails() {
    let (_node, ctl) = start();
    for v in ["a", "b", "c", "d"] {
        ctl.ok(&["put", "foo", v]);
    }
    assert_eq!(ctl.ok(&["compaction", "3"]), "compacted revision 3\n");
    let (code, out, err) = ctl.run(&["get", "foo", "--rev", "2"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "Error: etcdserver: mvcc: required revision has been compacted\n"
        )
    );
    assert_eq!(
        ctl.ok(&["get", "foo", "--rev", "3", "--print-value-only"]),
        "b\n"
    );
    let (code, _, err) = ctl.run(&["compaction", "3"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: etcdserver: mvcc: required revision has been compacted\n"
        )
    );
    let (code, _, err) = ctl.run(&["compaction", "1000"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: etcdserver: mvcc: required revision is a future revision\n"
        )
    );
    let (code, _, err) = ctl.run(&["get", "foo", "--rev", "1000"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: etcdserver: mvcc: required revision is a future revision\n"
        )
    );
    assert_eq!(
        ctl.ok(&["compaction", "4", "--physical", "-w", "json"]),
        "compacted revision 4\n"
    );
    let (code, _, err) = ctl.run(&["compaction", "abc"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: strconv.ParseInt: parsing \"abc\": invalid syntax\n"
        )
    );
}

#[test]
fn endpoint_health_and_status() {
    let (_node, ctl) = start();
    ctl.ok(&["put", "foo", "bar"]);
    let (code, out, err) = ctl.run(&["endpoint", "health"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let prefix = format!(
        "{} is healthy: successfully committed proposal: took = ",
        ctl.endpoint
    );
    assert!(err.starts_with(&prefix) && err.ends_with("s\n"), "{err}");

    let out = ctl.ok(&["endpoint", "health", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["endpoint"], ctl.endpoint.as_str());
    assert_eq!(v[0]["health"], true);
    assert!(v[0].get("error").is_none());

    let table = ctl.ok(&["endpoint", "health", "-w", "table"]);
    assert!(table.contains("|    ENDPOINT     | HEALTH |"), "{table}");

    let out = ctl.ok(&["endpoint", "status"]);
    let cols: Vec<&str> = out.trim_end_matches('\n').split(", ").collect();
    assert_eq!(cols.len(), 10, "{out}");
    assert_eq!(cols[0], ctl.endpoint);
    assert_eq!(cols[4], "true", "a single node leads: {out}");
    assert_eq!(cols[5], "false");

    let table = ctl.ok(&["endpoint", "status", "-w", "table"]);
    let header = table.lines().nth(1).unwrap();
    // Column widths follow the content (etcdctl's tablewriter); names and order are fixed.
    let names: Vec<&str> = header
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        names,
        [
            "ENDPOINT",
            "ID",
            "VERSION",
            "DB SIZE",
            "IS LEADER",
            "IS LEARNER",
            "RAFT TERM",
            "RAFT INDEX",
            "RAFT APPLIED INDEX",
            "ERRORS"
        ],
        "{table}"
    );

    let out = ctl.ok(&["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["Endpoint"], ctl.endpoint.as_str());
    assert!(v[0]["Status"]["raftIndex"].as_u64().unwrap() > 0, "{out}");
    assert_eq!(
        v[0]["Status"]["leader"],
        v[0]["Status"]["header"]["member_id"]
    );
}

#[test]
fn down_endpoint_fails_within_the_dial_timeout() {
    let down = format!("127.0.0.1:{}", free_port());
    let start = Instant::now();
    let (code, out, err) = run_bin(
        "cairnctl",
        &["--endpoints", &down, "--dial-timeout", "1s", "get", "foo"],
        None,
    );
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "Error: context deadline exceeded\n")
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );

    let (code, out, err) = run_bin(
        "cairnctl",
        &[
            "--endpoints",
            &down,
            "--dial-timeout",
            "1s",
            "endpoint",
            "health",
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (1, ""));
    let want = format!("{down} is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster\n");
    assert_eq!(err, want);

    let (code, out, err) = run_bin(
        "cairnctl",
        &["--endpoints", &down, "endpoint", "status", "-w", "json"],
        None,
    );
    assert_eq!((code, out.as_str()), (1, "[]\n"));
    assert_eq!(
        err,
        format!("Failed to get the status of endpoint {down} (context deadline exceeded)\n")
    );
}

#[test]
fn a_down_endpoint_before_a_live_one_is_skipped() {
    let (_node, ctl) = start();
    let both = Ctl {
        endpoint: format!("127.0.0.1:{},{}", free_port(), ctl.endpoint),
    };
    assert_eq!(both.ok(&["put", "foo", "bar"]), "OK\n");
    assert_eq!(both.ok(&["get", "foo"]), "foo\nbar\n");
}

#[test]
fn bad_arguments_and_flags_are_reported() {
    let none = |args: &[&str]| run_bin("cairnctl", args, None);
    let (code, out, err) = none(&["get", "foo", "--limit", "x"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("NAME:\n\tget - Gets the key or a range of keys\n"),
        "{out}"
    );
    let msg = "Error: invalid argument \"x\" for \"--limit\" flag: strconv.ParseInt: parsing \"x\": invalid syntax\n";
    assert_eq!(err, format!("{msg}\n{msg}"));
    let (code, _, err) = none(&["get", "foo", "--bogus"]);
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "Error: unknown flag: --bogus\n\nError: unknown flag: --bogus\n"
        )
    );
    let (code, _, err) = none(&["frobnicate"]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("Error: unknown command \"frobnicate\" for \"cairnctl\"\n"),
        "{err}"
    );
    let (code, _, err) = none(&["get"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: get command needs one argument as key and an optional argument as range_end\n"
        )
    );
    let (code, _, err) = none(&["del", "a", "b", "c"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: del command needs one argument as key and an optional argument as range_end\n"
        )
    );
    let (code, _, err) = none(&["get", "k", "--prefix", "--from-key"]);
    assert_eq!(
        (code, err.as_str()),
        (
            128,
            "Error: `--prefix` and `--from-key` cannot be set at the same time, choose one\n"
        )
    );
    let (code, _, err) = none(&["compaction"]);
    assert_eq!(
        (code, err.as_str()),
        (128, "Error: compaction command needs 1 argument\n")
    );
    let (code, _, err) = none(&["--dial-timeout", "xyz", "get", "foo"]);
    assert_eq!(code, 1);
    assert!(err.starts_with("Error: invalid argument \"xyz\" for \"--dial-timeout\" flag: time: invalid duration \"xyz\"\n"), "{err}");
}

#[test]
fn version_prints_client_and_api_versions() {
    let (code, out, err) = run_bin("cairnctl", &["version"], None);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        format!(
            "cairnctl version: {}\nAPI version: 3.4\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn alarm_list_and_disarm_after_the_quota_is_hit() {
    let node = TestNode::start_with(&["--quota-backend-bytes", "32768"]);
    let ctl = Ctl {
        endpoint: node.endpoint(),
    };
    assert_eq!(ctl.ok(&["alarm", "list"]), "", "no alarm yet");
    let value = "x".repeat(2000);
    let mut refused = None;
    for i in 0..100 {
        let (code, _out, err) = ctl.run(&["put", &format!("k{i}"), &value]);
        if code != 0 {
            refused = Some((code, err));
            break;
        }
    }
    let (code, err) = refused.expect("the quota refuses a put");
    assert_eq!(code, 1);
    assert_eq!(err, "Error: etcdserver: mvcc: database space exceeded\n");
    // The alarm is raised through the log, just after the refusal.
    let start = std::time::Instant::now();
    let mut list = ctl.ok(&["alarm", "list"]);
    while list.is_empty() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
        list = ctl.ok(&["alarm", "list"]);
    }
    assert!(
        list.starts_with("memberID:") && list.ends_with(" alarm:NOSPACE \n"),
        "{list:?}"
    );
    let json = ctl.ok(&["alarm", "list", "-w", "json"]);
    assert!(
        json.starts_with("{\"alarms\":[{\"memberID\":") && json.ends_with(",\"alarm\":1}]}\n"),
        "{json}"
    );
    let status = ctl.ok(&["endpoint", "status"]);
    assert!(status.trim_end().ends_with("alarm:NOSPACE"), "{status}");
    // Reads and deletes still work.
    assert!(ctl.ok(&["get", "k0"]).starts_with("k0\n"));
    let deleted: i64 = ctl.ok(&["del", "k", "--prefix"]).trim().parse().unwrap();
    assert!(deleted > 0);
    let rev = json_revision(&ctl.ok(&["get", "k0", "-w", "json"]));
    assert_eq!(
        ctl.ok(&["compaction", &rev.to_string()]),
        format!("compacted revision {rev}\n")
    );
    let (code, _, err) = ctl.run(&["put", "small", "v"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "Error: etcdserver: mvcc: database space exceeded\n"),
        "still armed"
    );
    assert!(ctl.ok(&["alarm", "disarm"]).ends_with(" alarm:NOSPACE \n"));
    assert_eq!(ctl.ok(&["alarm", "list"]), "");
    assert_eq!(ctl.ok(&["put", "small", "v"]), "OK\n");
}
