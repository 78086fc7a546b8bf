//! `cairnctl lock` and `cairnctl elect` against a real cairnd: outputs as
//! etcdctl 3.4.23's, and a lock contended by several processes, some of
//! them killed -9 while holding it: never two holders at once, and the
//! lock passes on once the dead holder's lease expires.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_core::testkit::{bin_path, run_bin, test_dir, TestNode};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `cairnctl --endpoints EP ARGS` in a process group of its own (so that
/// the command it runs dies with it).
fn spawn_ctl(ep: &str, args: &[&str]) -> Child {
    Command::new(bin_path("cairnctl"))
        .arg("--endpoints")
        .arg(ep)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap()
}

fn kill_group(c: &mut Child) {
    // SAFETY: kill(2) on the process group this test created.
    unsafe {
        libc::kill(-(c.id() as i32), libc::SIGKILL);
    }
    let _ = c.wait();
}

#[derive(Debug)]
struct Hold {
    who: usize,
    start: f64,
    end: Option<f64>,
}

fn holds(log: &str) -> Vec<Hold> {
    let mut out: Vec<Hold> = Vec::new();
    for line in log.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (who, t): (usize, f64) = (w[1].parse().unwrap(), w[2].parse().unwrap());
        match w[0] {
            "in" => out.push(Hold {
                who,
                start: t,
                end: None,
            }),
            _ => {
                if let Some(h) = out.iter_mut().rev().find(|h| h.who == who) {
                    h.end = Some(t);
                }
            }
        }
    }
    out
}

#[test]
fn a_lock_contended_by_processes_some_killed_holding_it_never_has_two_holders() {
    let node = TestNode::start();
    let ep = node.endpoint();
    let dir = test_dir("lock");
    let log = dir.join("holds.log");
    let log_s = log.display().to_string();
    // Odd contenders hold until killed; even ones for 0.3 s.
    let n = 6;
    let mut children: Vec<Child> = (0..n)
        .map(|i| {
            let hold = if i % 2 == 1 { "60" } else { "0.3" };
            let script = format!(
                "echo in {i} $(date +%s.%N) >> {log_s}; sleep {hold}; echo out {i} $(date +%s.%N) >> {log_s}"
            );
            spawn_ctl(&ep, &["lock", "--ttl", "2", "shared", "--", "sh", "-c", &script])
        })
        .collect();
    let mut killed_at: Vec<(usize, f64)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut done = vec![false; n];
    while done.iter().any(|d| !d) && Instant::now() < deadline {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for h in holds(&text) {
            if h.who % 2 == 1 && !done[h.who] {
                // A victim holds the lock: kill it (and its command) -9.
                std::thread::sleep(Duration::from_millis(200));
                kill_group(&mut children[h.who]);
                killed_at.push((h.who, now_secs()));
                done[h.who] = true;
            }
        }
        for (i, c) in children.iter_mut().enumerate() {
            if i % 2 == 0 && !done[i] {
                if let Ok(Some(status)) = c.try_wait() {
                    assert!(status.success(), "contender {i} failed: {status}");
                    done[i] = true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in &mut children {
        kill_group(c);
    }
    assert!(
        done.iter().all(|d| *d),
        "contenders still waiting: {done:?}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let mut hs = holds(&text);
    hs.sort_by(|a, b| a.start.total_cmp(&b.start));
    assert_eq!(hs.len(), n, "{text}");
    for pair in hs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        match a.end {
            // A finished holder released before the next one took it.
            Some(end) => assert!(end <= b.start, "two holders at once:\n{text}"),
            // A killed holder: the next one only after its lease expired.
            None => {
                let killed = killed_at.iter().find(|k| k.0 == a.who).unwrap().1;
                let after = b.start - killed;
                assert!(
                    (1.0..8.0).contains(&after),
                    "lock passed {after:.2} s after holder {} was killed:\n{text}",
                    a.who
                );
            }
        }
    }
    cairn_core::testkit::remove_dir(&dir);
}

#[test]
fn lock_and_elect_print_like_etcdctl() {
    let node = TestNode::start();
    let ep = node.endpoint();
    let ctl = |args: &[&str]| {
        let mut all = vec!["--endpoints", ep.as_str()];
        all.extend_from_slice(args);
        run_bin("cairnctl", &all, None)
    };
    // With a command: its environment, and the lock is released after.
    let (code, out, err) = ctl(&[
        "lock",
        "l1",
        "--",
        "sh",
        "-c",
        "echo $ETCD_LOCK_KEY $ETCD_LOCK_REV",
    ]);
    assert_eq!(code, 0, "{err}");
    let words: Vec<&str> = out.split_whitespace().collect();
    assert!(words[0].starts_with("l1/"), "{out}");
    assert!(words[1].parse::<i64>().unwrap() > 0, "{out}");
    let (code, out, _) = ctl(&["get", "l1/", "--prefix"]);
    assert_eq!((code, out.as_str()), (0, ""));
    // A failing command: its exit status, as etcdctl.
    let (code, _, err) = ctl(&["lock", "l1", "--", "sh", "-c", "exit 3"]);
    assert_eq!((code, err.as_str()), (1, "Error: exit status 3\n"));
    for (args, err) in [
        (
            &["lock"][..],
            "Error: lock takes a lock name argument and an optional command to execute\n",
        ),
        (
            &["elect", "e"][..],
            "Error: no proposal argument but -l not set\n",
        ),
        (
            &["elect", "a", "b", "c"][..],
            "Error: elect takes one election name argument and an optional proposal argument\n",
        ),
    ] {
        let (code, out, e) = ctl(args);
        assert_eq!((code, out.as_str(), e.as_str()), (128, "", err), "{args:?}");
    }
    // Without a command: the key and its (empty) value, held until SIGINT.
    let mut holder = spawn_ctl(&ep, &["lock", "l2"]);
    let mut elect = spawn_ctl(&ep, &["elect", "e1", "p1"]);
    let mut listen = spawn_ctl(&ep, &["elect", "-l", "e1"]);
    std::thread::sleep(Duration::from_millis(1500));
    for c in [&mut holder, &mut elect, &mut listen] {
        // SAFETY: kill(2) on a child this test started.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGINT);
        }
    }
    let outs: Vec<(Option<i32>, String)> = [holder, elect, listen]
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            (o.status.code(), String::from_utf8(o.stdout).unwrap())
        })
        .collect();
    let (code, out) = &outs[0];
    assert_eq!(*code, Some(0));
    assert!(out.starts_with("l2/") && out.ends_with("\n\n"), "{out:?}");
    let (code, out) = &outs[1];
    assert_eq!(*code, Some(0));
    assert!(out.starts_with("e1/") && out.ends_with("\np1\n"), "{out:?}");
    assert_eq!(&outs[2].1, out, "the observer saw the leader");
    // Both gave their keys back.
    let (_, out, _) = ctl(&["get", "", "--prefix", "--keys-only"]);
    assert_eq!(out, "");
}
