"""Helpers shared by the scripts that run Cairn beside etcd on this machine
(bench_vs_etcd.py, db_size.py, cluster_vs_etcd.py, etcd_driver_check.py): ports, /proc figures of
server processes, the machine's fingerprint, running cairn-bench with the
servers' CPU time measured around it, and the checks every script makes
before it starts (binaries present, data dirs on a real file system).
"""
import json, os, platform, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
R = os.path.join(REPO, "target", "release")
TICK = os.sysconf("SC_CLK_TCK")
# cairn-bench's driver for each kind of server.
DRIVER = {"etcd": "etcd", "cairn": "native"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def port_busy(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no conflict
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def wait_port(port, secs=15):
    end = time.time() + secs
    while time.time() < end:
        if port_open(port):
            return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port} after {secs}s")


def proc_cpu_secs(pid):
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(f[11]) + int(f[12])) / TICK  # utime + stime


def proc_mem_mib(pid, field="VmRSS"):
    """VmRSS (resident now) or VmHWM (peak resident) of a process, MiB."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def run(args, timeout, what, env=None):
    """Runs a command to completion; exits with its output if it fails."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{what}: no answer after {timeout:.0f}s: {' '.join(args)}")
    if out.returncode != 0:
        raise SystemExit(f"{what} failed (exit {out.returncode}): {' '.join(args)}\n{out.stdout}{out.stderr}")
    return out.stdout


def require(bin_dir, bins, etcd_tools=("etcd",)):
    """Exits with the command that provides them if a binary is missing."""
    for b in bins:
        if not os.path.exists(os.path.join(bin_dir, b)):
            raise SystemExit(f"{bin_dir}/{b} missing: cargo build --release --workspace --bins")
    for b in etcd_tools:
        if not shutil.which(b):
            raise SystemExit(f"{b} missing: perf/scripts/setup-etcd-driver.sh --no-build")


def real_fs_dir(data_root, prefix):
    """A fresh dir under data_root; exits if it is on a RAM file system
    (fsync would cost nothing there). Returns (path, file system type)."""
    os.makedirs(data_root, exist_ok=True)
    root = tempfile.mkdtemp(prefix=prefix, dir=data_root)
    fs = subprocess.run(["df", "-T", root], capture_output=True, text=True).stdout.splitlines()[-1].split()[1]
    if fs in ("tmpfs", "ramfs"):
        shutil.rmtree(root, ignore_errors=True)
        raise SystemExit(f"{data_root} is on {fs}: use a real file system (--data-root)")
    return root, fs


def exit_on_signals():
    """SIGINT, SIGTERM and SIGHUP raise SystemExit, so `finally` blocks stop the servers."""
    def on_signal(sig, _frame):
        raise SystemExit(f"signal {sig}: stopping")

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)


def etcd_version():
    return subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]


def fingerprint(data_dir):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    df = subprocess.run(["df", "-T", data_dir], capture_output=True, text=True).stdout.splitlines()[-1].split()
    dev, fs = df[0], df[1]
    model = "?"
    base = os.path.basename(dev).rstrip("0123456789")
    for p in (f"/sys/block/{base}/device/model", f"/sys/block/{base}/device/vendor"):
        if os.path.exists(p):
            model = open(p).read().strip()
            break
    if model == "?" and base.startswith("vd"):
        model = "virtio block device"
    return {
        "cpu": cpu, "cores": os.cpu_count(), "mem_mib": mem, "kernel": platform.release(),
        "fs": fs, "device": dev, "device_model": model,
    }


def cairn_bench(args, pids, bin_dir=R, timeout=None):
    """Runs `cairn-bench ARGS` (which must include --json) and returns its
    JSON, plus the server processes' CPU time during the run (summed over
    `pids`, from /proc/PID/stat), per 1000 successful requests, and their
    summed RSS at the end. Exits if cairn-bench fails."""
    args = [os.path.join(bin_dir, "cairn-bench")] + list(args)
    cpu0 = sum(proc_cpu_secs(p) for p in pids)
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"cairn-bench: no answer after {timeout:.0f}s: {' '.join(args)}")
    cpu1 = sum(proc_cpu_secs(p) for p in pids)
    if out.returncode != 0:
        raise SystemExit(f"cairn-bench failed: {' '.join(args)}\n{out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["server_cpu_secs"] = cpu1 - cpu0
    r["server_cpu_ms_per_1000"] = 1e6 * (cpu1 - cpu0) / max(r["ok"], 1)
    r["server_rss_mib"] = sum(proc_mem_mib(p) for p in pids)
    return r


def log_findings(path):
    """Warning and error lines of a server's log (all its starts)."""
    pat = re.compile(r'\b(WARN|ERROR)\b|"level":"(warn|error|fatal|panic)"')
    try:
        return [l.rstrip() for l in open(path, errors="replace") if pat.search(l)]
    except OSError:
        return []


class ServerProcess:
    """One server process started by a script, its output appended to
    `log_path`. Subclasses say how it is started (`cmd()`) and probed
    (`health_args()`, `ctl_env`)."""
    ctl_env = dict(os.environ, ETCDCTL_API="3")
    health_timeout = 30

    def __init__(self, log_path):
        self.log_path = log_path
        self.proc = None

    def cmd(self):
        raise NotImplementedError

    def health_args(self):
        raise NotImplementedError

    def spawn(self):
        """Starts the server; returns the log offset where this start's lines begin."""
        with open(self.log_path, "a") as logf:
            offset = logf.tell()
            self.proc = subprocess.Popen(self.cmd(), stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        return offset

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def log_tail(self, n=30):
        try:
            return "".join(open(self.log_path, errors="replace").readlines()[-n:])
        except OSError:
            return ""

    def healthy(self, port):
        """One probe: the client port accepts, then `ctl endpoint health` exits 0."""
        if not port_open(port):
            return False
        try:
            out = subprocess.run(self.health_args(), capture_output=True, timeout=self.health_timeout,
                                 env=self.ctl_env)
        except subprocess.TimeoutExpired:
            return False
        return out.returncode == 0


def median_secs(n, once, failure):
    """Median seconds `once()` takes over n calls; exits with `failure` if a call returns False."""
    t = []
    for i in range(n):
        t0 = time.monotonic()
        if not once(i):
            raise SystemExit(failure)
        t.append(time.monotonic() - t0)
    return statistics.median(t)
