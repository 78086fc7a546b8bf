//! `cairnctl lease ...` and `put --lease` against a real cairnd, with the
//! outputs, errors and exit codes etcdctl 3.4.23 gives against etcd 3.4.23
//! for the same commands. Build first: `cargo build -p cairn-tools -p
//! cairn-core --bins`.

use std::time::{Duration, Instant};

use cairn_core::testkit::{run_bin, TestNode};

fn ctl(node: &TestNode, args: &[&str]) -> (i32, String, String) {
    let ep = node.endpoint();
    let mut all = vec!["--endpoints", ep.as_str()];
    all.extend_from_slice(args);
    run_bin("cairnctl", &all, None)
}

fn ok(node: &TestNode, args: &[&str]) -> String {
    let (code, out, err) = ctl(node, args);
    assert_eq!(code, 0, "cairnctl {args:?} failed: {err}");
    out
}

/// `lease 694d... granted with TTL(10s)` → the id.
fn granted_id(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 5, "{line:?}");
    assert_eq!(words[0], "lease");
    assert_eq!(words[1].len(), 16, "{line:?}");
    assert!(words[1].chars().all(|c| c.is_ascii_hexdigit()));
    words[1].to_string()
}

#[test]
fn grant_put_timetolive_list_keep_alive_revoke_print_like_etcdctl() {
    let node = TestNode::start();
    let out = ok(&node, &["lease", "grant", "100"]);
    let id = granted_id(&out);
    assert_eq!(out, format!("lease {id} granted with TTL(100s)\n"));
    assert_eq!(ok(&node, &["put", "k1", "v", "--lease", &id]), "OK\n");
    assert_eq!(
        ok(&node, &["put", "k2", "v", &format!("--lease={id}")]),
        "OK\n"
    );
    let ttl = ok(&node, &["lease", "timetolive", &id, "--keys"]);
    let remaining: i64 = ttl
        .split("remaining(")
        .nth(1)
        .and_then(|s| s.split('s').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{ttl:?}"));
    assert!((98..=100).contains(&remaining), "{ttl:?}");
    assert_eq!(
        ttl,
        format!(
            "lease {id} granted with TTL(100s), remaining({remaining}s), attached keys([k1 k2])\n"
        )
    );
    assert_eq!(
        ok(&node, &["lease", "list"]),
        format!("found 1 leases\n{id}\n")
    );
    assert_eq!(
        ok(&node, &["lease", "keep-alive", "--once", &id]),
        format!("lease {id} keepalived with TTL(100)\n")
    );
    let json = ok(&node, &["lease", "timetolive", &id, "--keys", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["granted-ttl"], 100);
    assert_eq!(v["keys"], serde_json::json!(["azE=", "azI="]));
    assert_eq!(
        v["id"].as_i64(),
        Some(i64::from_str_radix(&id, 16).unwrap())
    );
    assert_eq!(
        ok(&node, &["lease", "revoke", &id]),
        format!("lease {id} revoked\n")
    );
    assert_eq!(ok(&node, &["get", "k1"]), "");
    assert_eq!(
        ok(&node, &["lease", "timetolive", &id]),
        format!("lease {id} already expired\n")
    );
    // Table is not a lease format (exit 4, after the request, as etcdctl).
    let (code, _, err) = ctl(&node, &["lease", "list", "-w", "table"]);
    assert_eq!(
        (code, err.as_str()),
        (4, "Error: table not supported as output format\n")
    );
}

#[test]
fn lease_errors_and_exit_codes_match_etcdctl() {
    let node = TestNode::start();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["lease", "revoke", "1234"],
            1,
            "Error: failed to revoke lease (etcdserver: requested lease not found)\n",
        ),
        (
            &["lease", "keep-alive", "--once", "1234"],
            2,
            "Error: etcdserver: requested lease not found\n",
        ),
        (
            &["lease", "grant", "abc"],
            128,
            "Error: bad TTL (strconv.ParseInt: parsing \"abc\": invalid syntax)\n",
        ),
        (
            &["lease", "grant"],
            128,
            "Error: lease grant command needs TTL argument\n",
        ),
        (
            &["lease", "revoke", "xyz"],
            128,
            "Error: bad lease ID arg (strconv.ParseInt: parsing \"xyz\": invalid syntax), expecting ID in Hex\n",
        ),
        (
            &["put", "k", "v", "--lease", "1234"],
            1,
            "Error: etcdserver: requested lease not found\n",
        ),
    ];
    for (args, code, err) in cases {
        let (c, out, e) = ctl(&node, args);
        assert_eq!((c, e.as_str(), out.as_str()), (*code, *err, ""), "{args:?}");
    }
    // An unknown lease's time-to-live is no error.
    assert_eq!(
        ok(&node, &["lease", "timetolive", "1234"]),
        "lease 0000000000001234 already expired\n"
    );
    // TTLs below the minimum (1.5 election timeouts) are raised to it.
    let out = ok(&node, &["lease", "grant", "1"]);
    assert!(out.ends_with("granted with TTL(2s)\n"), "{out}");
}

#[test]
fn keep_alive_streams_until_the_lease_is_revoked() {
    let node = TestNode::start();
    let id = granted_id(&ok(&node, &["lease", "grant", "3"]));
    let ep = node.endpoint();
    let bin = cairn_core::testkit::bin_path("cairnctl");
    let started = Instant::now();
    let child = std::process::Command::new(bin)
        .args(["--endpoints", &ep, "lease", "keep-alive", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past the TTL the lease still lives; then it is revoked underneath.
    std::thread::sleep(Duration::from_secs(4));
    assert!(ok(&node, &["lease", "timetolive", &id]).contains("granted with TTL(3s)"));
    ok(&node, &["lease", "revoke", &id]);
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "{stdout}");
    let (last, renewals) = lines.split_last().unwrap();
    assert_eq!(*last, format!("lease {id} expired or revoked."));
    for l in renewals {
        assert_eq!(*l, format!("lease {id} keepalived with TTL(3)"));
    }
}
