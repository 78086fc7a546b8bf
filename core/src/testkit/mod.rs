//! Test support: start real `cairnd` processes on free 127.0.0.1 ports with
//! data dirs on the real filesystem (under the cargo target dir, never
//! tmpfs: O_DIRECT needs a real filesystem), and stop them by pid.
//!
//! Used by the integration tests of every crate (as a dev-dependency).
//!
//! - [`TestNode`]: one `cairnd`; [`TestCluster`] several, optionally each
//!   behind a [`PeerProxy`] ([`proxy`]) so a test can partition them.
//! - [`Recorder`] ([`history`]): clients that record a history of puts and
//!   gets; [`linearizability`] checks such a history.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_net::{BlockingClient, ClientOptions};

mod cluster;
pub mod history;
pub mod linearizability;
pub mod proxy;
pub mod rng;

pub use cluster::TestCluster;
pub use history::{assert_linearizable, Recorder, RecorderOptions};
pub use proxy::PeerProxy;

/// The directory holding the workspace's built binaries (`target/<profile>`),
/// found from the running test executable (`target/<profile>/deps/test-…`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// Path of a workspace binary; panics with a hint if it was not built.
pub fn bin_path(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace --bins` (the test script does)",
        p.display()
    );
    p
}

/// A minimal HTTP/1.0 GET (tests only): (status, body).
pub fn http_get(addr: impl std::net::ToSocketAddrs, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let bad = || std::io::Error::other(format!("not an HTTP response: {raw:?}"));
    let status = raw
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let body = raw.split_once("\r\n\r\n").ok_or_else(bad)?.1.to_string();
    Ok((status, body))
}

/// A fresh directory for one test, under the target dir (a real filesystem).
pub fn test_dir(tag: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let d = bin_dir()
        .join("cairn-test-tmp")
        .join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create test dir");
    d
}

/// A free TCP port on 127.0.0.1 for a test server.
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768+),
/// so the kernel never hands them to an outgoing connection or a bind to
/// port 0; and each is used once per test process, so a node restarted on
/// its old port after kill -9 cannot find it taken by another test.
pub fn free_port() -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    const BASE: u64 = 20000;
    const SPAN: u64 = 12000;
    let start = (std::process::id() as u64 * 7919) % SPAN;
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (BASE + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {BASE}..{}", BASE + SPAN);
}

/// One `cairnd` process. Dropping it kills the process (by pid) and
/// removes its data dir.
pub struct TestNode {
    pub name: String,
    pub data_dir: PathBuf,
    pub client_port: u16,
    pub peer_port: u16,
    /// The peer port other members are told to dial (`--initial-advertise-
    /// peer-urls`), when it is not `peer_port`: a [`PeerProxy`] in front.
    pub advertise_peer_port: Option<u16>,
    pub extra_args: Vec<String>,
    /// `--initial-cluster` (default: this member alone).
    pub initial_cluster: Option<String>,
    /// `--initial-cluster-state`.
    pub cluster_state: String,
    /// `--listen-metrics-urls` port (every test node serves /metrics).
    pub metrics_port: u16,
    child: Option<Child>,
    log_path: PathBuf,
    keep_dir: bool,
}

impl TestNode {
    /// Starts a single node with default flags and waits until it answers.
    pub fn start() -> TestNode {
        Self::start_with(&[])
    }

    /// Starts a single node with extra flags and waits until it answers.
    pub fn start_with(extra: &[&str]) -> TestNode {
        let dir = test_dir("node");
        let mut n = TestNode {
            name: "n1".into(),
            data_dir: dir.join("data"),
            client_port: free_port(),
            peer_port: free_port(),
            advertise_peer_port: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            initial_cluster: None,
            cluster_state: "new".into(),
            metrics_port: free_port(),
            child: None,
            log_path: dir.join("cairnd.log"),
            keep_dir: false,
        };
        n.spawn();
        n.wait_healthy(Duration::from_secs(15));
        n
    }

    /// A member of a cluster, not started yet (see [`TestCluster`]).
    pub fn member(
        dir: &Path,
        name: &str,
        client_port: u16,
        peer_port: u16,
        extra: &[&str],
    ) -> TestNode {
        TestNode {
            name: name.into(),
            data_dir: dir.join(name),
            client_port,
            peer_port,
            advertise_peer_port: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            initial_cluster: None,
            cluster_state: "new".into(),
            metrics_port: free_port(),
            child: None,
            log_path: dir.join(format!("{name}.log")),
            // The cluster owns (and removes) the directory.
            keep_dir: true,
        }
    }

    /// Starts the process (without waiting for it to answer).
    pub fn launch(&mut self) {
        self.spawn();
    }

    /// Whether the process is running (not exited, not killed by us).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends `sig` (e.g. SIGSTOP / SIGCONT) to the process.
    pub fn signal(&self, sig: i32) {
        if let Some(pid) = self.pid() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(pid as i32, sig) };
        }
    }

    /// The peer URL this member advertises (the one others dial).
    pub fn peer_url(&self) -> String {
        let port = self.advertise_peer_port.unwrap_or(self.peer_port);
        format!("http://127.0.0.1:{port}")
    }

    /// The command line this node runs with.
    pub fn args(&self) -> Vec<String> {
        let c = format!("http://127.0.0.1:{}", self.client_port);
        let listen_p = format!("http://127.0.0.1:{}", self.peer_port);
        let p = self.peer_url();
        let mut a: Vec<String> = vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            c.clone(),
            "--advertise-client-urls".into(),
            c,
            "--listen-peer-urls".into(),
            listen_p,
            "--initial-advertise-peer-urls".into(),
            p.clone(),
            "--initial-cluster".into(),
            self.initial_cluster
                .clone()
                .unwrap_or_else(|| format!("{}={p}", self.name)),
            "--initial-cluster-state".into(),
            self.cluster_state.clone(),
            "--listen-metrics-urls".into(),
            format!("http://127.0.0.1:{}", self.metrics_port),
        ];
        a.extend(self.extra_args.iter().cloned());
        a
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let child = Command::new(bin_path("cairnd"))
            .args(self.args())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("spawn cairnd");
        self.child = Some(child);
    }

    /// `127.0.0.1:PORT` of the client listener.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `GET path` on the metrics listener: (HTTP status, body).
    pub fn http_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(("127.0.0.1", self.metrics_port), path)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The node's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A blocking client connected to this node.
    pub fn client(&self) -> BlockingClient {
        let addr = self.endpoint().parse().expect("endpoint");
        BlockingClient::connect(&[addr], ClientOptions::default()).expect("connect to test node")
    }

    /// Polls `status` until the node answers or `limit` passes (then panics
    /// with the node's log).
    pub fn wait_healthy(&mut self, limit: Duration) {
        let start = Instant::now();
        let addr = self.endpoint().parse().expect("endpoint");
        let opts = ClientOptions {
            dial_timeout: Duration::from_millis(200),
            request_timeout: Duration::from_millis(500),
            ..Default::default()
        };
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("cairnd exited with {st} during start; log:\n{}", self.log());
                }
            }
            if let Ok(c) = BlockingClient::connect(&[addr], opts.clone()) {
                if c.status().is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cairnd not healthy after {limit:?}; log:\n{}", self.log());
    }

    /// Sends SIGKILL to the process and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit (up to 10 s, then
    /// SIGKILL); returns how it exited if it did so by itself.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(st)) = c.try_wait() {
                    return Some(st);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        None
    }

    /// The page file (`member/db`).
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("member").join("db")
    }

    /// Starts the process again on the same data dir and ports.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
        self.wait_healthy(Duration::from_secs(30));
    }

    /// Starts the process again without waiting (for tests that expect it
    /// to refuse to start); returns its exit status if it exits within `limit`.
    pub fn restart_expect_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.kill9();
        self.spawn();
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    self.child = None;
                    return Some(st);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Keep the data dir after the test (for debugging).
    pub fn keep_dir(&mut self) {
        self.keep_dir = true;
    }

    /// The WAL directory.
    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("member").join("wal")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
        if !self.keep_dir && !std::thread::panicking() {
            if let Some(parent) = self.data_dir.parent() {
                let _ = std::fs::remove_dir_all(parent);
            }
        }
    }
}

/// Runs a workspace binary with `args` and returns (exit code, stdout, stderr).
pub fn run_bin(name: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut cmd = Command::new(bin_path(name));
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn binary");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Removes a directory tree, ignoring errors.
pub fn remove_dir(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}
