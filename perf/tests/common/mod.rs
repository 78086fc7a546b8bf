//! Helpers of the integration tests: binaries run with a time bound, and a
//! real etcd started on free 127.0.0.1 ports.

#![allow(dead_code)] // each test file uses a part

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_core::testkit::{bin_path, free_port, remove_dir, test_dir};
use serde_json::Value;

/// Runs `program` with `args`; returns (exit code, stdout, stderr). Killed
/// (by pid) and reported as a failure if it runs longer than `limit`.
pub fn run_bounded(program: &Path, args: &[&str], limit: Duration) -> (i32, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    // Read both pipes on threads so a chatty child cannot block on a full one.
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait child") {
            break st;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} {args:?} still running after {limit:?}: killed; stderr:\n{}",
                program.display(),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status.code().unwrap_or(-1),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    )
}

/// Longest a short cairn-bench run of a test may take.
pub const BENCH_LIMIT: Duration = Duration::from_secs(60);

/// `cairn-bench ARGS`, bounded by [`BENCH_LIMIT`].
pub fn bench(args: &[&str]) -> (i32, String, String) {
    run_bounded(&bin_path("cairn-bench"), args, BENCH_LIMIT)
}

/// `cairn-bench compare` of saved runs (file, driver, clients) prints one
/// row per run in order, and `compare --plot DIR/runs.svg` names each run
/// by its file stem.
pub fn assert_compares_and_plots(dir: &Path, runs: &[(&str, &str, u32)]) {
    let files: Vec<&str> = runs.iter().map(|r| r.0).collect();
    let mut args = vec!["compare"];
    args.extend(&files);
    let (code, out, err) = bench(&args);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().collect();
    assert_eq!(rows.len(), 2 + runs.len(), "{out}");
    for (row, (file, driver, clients)) in rows[2..].iter().zip(runs) {
        let want = format!("| {file} | put | uniform | {driver} | {clients} |");
        assert!(row.starts_with(&want), "{out}");
    }
    // Flags may follow the files.
    let svg = dir.join("runs.svg").display().to_string();
    let mut args = vec!["compare"];
    args.extend(&files);
    args.extend(["--plot", svg.as_str()]);
    let (code, _, err) = bench(&args);
    assert_eq!(code, 0, "{err}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(drawn.starts_with("<svg"));
    for f in files {
        let stem = Path::new(f)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            drawn.lines().any(|l| l.trim() == stem),
            "{stem} not in the plot"
        );
    }
}

/// `cairn-bench ARGS` (with `--json`) that must succeed; its one JSON line.
pub fn bench_json(args: &[&str]) -> Value {
    let (code, out, err) = bench(args);
    assert_eq!(code, 0, "cairn-bench {args:?} exited {code}:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "--json prints exactly one line, got:\n{out}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {}", lines[0]))
}

pub fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not an unsigned integer in {v}"))
}

/// The checks every successful run's report passes: requests done without
/// errors, percentiles in order, a positive rate, named as asked.
pub fn assert_sane(v: &Value, workload: &str, driver: &str) {
    assert_eq!(v["workload"], workload, "{v}");
    assert_eq!(v["driver"], driver, "{v}");
    assert!(u(v, "ok") > 0, "{v}");
    assert_eq!(u(v, "errors"), 0, "{v}");
    assert_eq!(u(v, "total"), u(v, "ok"), "{v}");
    assert!(v["ops_per_sec"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["secs"].as_f64().unwrap() > 0.0, "{v}");
    let (p50, p90, p99, p999, max) = (
        u(v, "p50_us"),
        u(v, "p90_us"),
        u(v, "p99_us"),
        u(v, "p999_us"),
        u(v, "max_us"),
    );
    assert!(
        0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{v}"
    );
    assert!(v["key_dist"].is_string(), "{v}");
}

/// `name` on PATH, if it is there.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// One single-member etcd on free 127.0.0.1 ports, its data dir under the
/// target dir (a real file system, as etcd's fsyncs should be). Dropping
/// it kills the process by pid and removes the dir.
pub struct Etcd {
    child: Child,
    pub client_port: u16,
    dir: PathBuf,
}

/// Longest etcd may take to start and elect itself.
const ETCD_START_LIMIT: Duration = Duration::from_secs(30);

impl Etcd {
    pub fn start(binary: &Path) -> Etcd {
        let dir = test_dir("etcd");
        let (client_port, peer_port) = (free_port(), free_port());
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let log = std::fs::File::create(dir.join("etcd.log")).expect("etcd log");
        let child = Command::new(binary)
            .args(["--name", "e", "--data-dir"])
            .arg(dir.join("data"))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("e={peer}")])
            .args(["--logger", "zap", "--log-level", "error"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        let mut etcd = Etcd {
            child,
            client_port,
            dir,
        };
        etcd.wait_healthy();
        etcd
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// Until `GET /health` says true (the member has a leader: itself).
    fn wait_healthy(&mut self) {
        let started = Instant::now();
        while started.elapsed() < ETCD_START_LIMIT {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("etcd exited ({st}) at start; log:\n{}", self.log());
            }
            if self
                .health()
                .is_some_and(|h| h.contains(r#""health":"true""#))
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd not healthy after {ETCD_START_LIMIT:?}; log:\n{}",
            self.log()
        );
    }

    fn health(&self) -> Option<String> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.client_port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // SIGKILL to our own child, by pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            remove_dir(&self.dir);
        }
    }
}
