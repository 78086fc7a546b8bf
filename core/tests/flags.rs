//! cairnd's command line: unknown flags and bad values exit 2 with a clear
//! error; start-up conflicts exit non-zero with the reason.

use std::time::Duration;

use cairn_core::testkit::{run_bin, TestNode};

#[test]
fn unknown_flag_exits_2() {
    let (code, _out, err) = run_bin("cairnd", &["--no-such-flag"], None);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn bad_values_exit_2_with_the_reason() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--initial-cluster-state", "maybe"],
            "initial-cluster-state",
        ),
        (
            &["--listen-client-urls", "http://not-an-ip:x"],
            "listen-client-urls",
        ),
        (&["--max-request-bytes", "lots"], "max-request-bytes"),
        (
            &[
                "--name",
                "a",
                "--initial-cluster",
                "b=http://127.0.0.1:2380",
            ],
            "couldn't find local name",
        ),
        (&["--cores", "0,99"], "--cores"),
    ];
    for (args, needle) in cases {
        let (code, _out, err) = run_bin("cairnd", args, None);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn port_in_use_is_an_error() {
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port().to_string();
    let mut node = TestNode::start();
    node.client_port = port.parse().unwrap();
    let status = node
        .restart_expect_exit(Duration::from_secs(10))
        .expect("must exit");
    assert!(!status.success());
    assert!(node.log().contains("cannot listen"), "{}", node.log());
}

#[test]
fn second_process_on_the_same_data_dir_is_refused() {
    let node = TestNode::start();
    let mut other = TestNode::start();
    other.data_dir = node.data_dir.clone();
    let status = other
        .restart_expect_exit(Duration::from_secs(10))
        .expect("must exit");
    assert!(!status.success());
    assert!(
        other.log().contains("in use by another cairnd"),
        "{}",
        other.log()
    );
}

#[test]
fn io_uring_set_up_failure_says_what_to_do() {
    use std::os::unix::process::CommandExt;
    let dir = cairn_core::testkit::test_dir("memlock");
    let mut cmd = std::process::Command::new(cairn_core::testkit::bin_path("cairnd"));
    let port = cairn_core::testkit::free_port();
    cmd.args(["--data-dir", &dir.join("d").display().to_string()])
        .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")]);
    // SAFETY: setrlimit is async-signal-safe; the child has one thread here.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim);
            Ok(())
        });
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("cairnd started despite a locked-memory limit of 0");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("io_uring") && err.contains("ulimit -l"),
        "{err}"
    );
    cairn_core::testkit::remove_dir(&dir);
}

/// `cairnd` with no flags at all (the README's first command) serves from
/// `default.cairn` in the working directory, a relative path.
#[test]
fn default_flags_serve_from_a_relative_data_dir() {
    let dir = cairn_core::testkit::test_dir("defaults");
    let port = cairn_core::testkit::free_port();
    let peer = cairn_core::testkit::free_port();
    let mut child = std::process::Command::new(cairn_core::testkit::bin_path("cairnd"))
        .current_dir(&dir)
        // Only the ports differ from the defaults, so that tests can run in parallel.
        .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
        .args([
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{port}"),
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = std::time::Instant::now();
    let ok = loop {
        if let Ok(c) = cairn_net::BlockingClient::connect(&[addr], Default::default()) {
            if c.put(cairn_net::client::put_request(b"k", b"v")).is_ok() {
                break true;
            }
        }
        if start.elapsed() > Duration::from_secs(10) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "cairnd with default flags did not serve");
    assert!(dir.join("default.cairn/member/wal").is_dir());
    cairn_core::testkit::remove_dir(&dir);
}
