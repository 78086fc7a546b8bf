#!/usr/bin/env python3
"""A 3-member Cairn cluster beside a 3-member etcd 3.4 cluster, in one run.

Starts three cairnd members on free 127.0.0.1 ports (data dirs under
--data-root, on the real file system), measures them, stops them and removes
their data; then does the same with three etcd members (Debian's
etcd-server, the same member names, flags and default heartbeat/election
timeouts). Only one cluster runs at a time. For each cluster:

  1. puts: one cairn-bench process per client count (default 1, 16, 64, 256),
     32 B keys, 256 B values, a key space of 100000, all three client
     endpoints given (connection j goes to endpoint j mod 3; followers
     forward to the leader), --driver native for Cairn and --driver etcd
     for etcd. Each step runs --secs seconds (or --total requests). Records
     throughput, p50/p99 latency, the CPU time of the three server processes
     per 1000 puts (from /proc/PID/stat before and after), their summed RSS
     at the end of the step, and the load generator's own CPU (% of one
     core: both drivers run on one thread, so a figure near 100 % would mean
     the bench, not the server, set the pace).
  2. failover, --rounds times: find the leader (`ctl endpoint status`),
     kill -9 it, then write in a tight loop through the two survivors (one
     `cairn-bench put --total 1 --request-timeout --attempt-timeout` per
     attempt, alternating which survivor is dialled first) and record the
     time from the kill to the first acknowledged write; restart the killed
     member on its data dir and time until every member passes `ctl
     endpoint health`. One attempt on a healthy cluster is timed too: with
     the attempt timeout it bounds the resolution of the failover figure.

Prints a markdown report on stdout (progress on stderr) and, with
--json-out, every raw figure as JSON. Every process it starts is stopped by
its pid, also on errors and signals; the data dirs are removed at exit.

    perf/scripts/setup-etcd-driver.sh --no-build   # etcd, etcdctl
    cargo build --release --workspace --bins
    perf/scripts/cluster_vs_etcd.py --json-out target/bench-data/cluster.json > cluster.md
    perf/scripts/cluster_vs_etcd.py --quick        # a smoke run: small counts, 2 failover rounds
"""
import argparse, json, os, re, shutil, signal, statistics, subprocess, time

from benchlib import DRIVER, R, ServerProcess, cairn_bench, etcd_version, exit_on_signals, fingerprint, \
    free_port, log, median_secs, real_fs_dir, require

NAMES = ("n1", "n2", "n3")
KEY_BYTES, VALUE_BYTES, KEY_SPACE = 32, 256, 100_000
POLL_SECS = 0.05
# A load generator above this share of its one thread may be what limits a step.
BENCH_SATURATED_PCT = 90
CTL_ENV = ServerProcess.ctl_env
LABEL = {"cairn": "Cairn", "etcd": "etcd"}


class Member(ServerProcess):
    health_timeout = 10

    def __init__(self, kind, name, root, cluster, port, peer):
        super().__init__(os.path.join(root, f"{name}.log"))
        self.kind, self.name = kind, name
        self.port, self.peer = port, peer
        self.dir = os.path.join(root, name)
        self.cluster = cluster

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    @property
    def peer_url(self):
        return f"http://127.0.0.1:{self.peer}"

    def cmd(self):
        initial_cluster, token = self.cluster.initial_cluster, self.cluster.token
        c = f"http://127.0.0.1:{self.port}"
        exe = "etcd" if self.kind == "etcd" else os.path.join(R, "cairnd")
        extra = ["--logger", "zap"] if self.kind == "etcd" else []
        return [exe, "--name", self.name, "--data-dir", self.dir, "--listen-client-urls", c,
                "--advertise-client-urls", c, "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url, "--initial-cluster", initial_cluster,
                "--initial-cluster-state", "new", "--initial-cluster-token", token,
                "--log-level", "warn"] + extra

    def health_args(self):
        return self.cluster.ctl_args([self], "endpoint", "health")

    def healthy(self):
        return super().healthy(self.port)


class Cluster:
    def __init__(self, kind, root):
        self.kind = kind
        self.root = os.path.join(root, kind)
        os.makedirs(self.root)
        self.token = f"bench-{kind}-{os.getpid()}"
        self.ctl = shutil.which("etcdctl") if kind == "etcd" else os.path.join(R, "cairnctl")
        ports = set()
        while len(ports) < 2 * len(NAMES):  # free now, and distinct
            ports.add(free_port())
        ports = sorted(ports)
        self.members = [Member(kind, n, self.root, self, ports[2 * i], ports[2 * i + 1]) for i, n in enumerate(NAMES)]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def ctl_args(self, members, *args):
        return [self.ctl, "--endpoints=" + ",".join(m.endpoint for m in members), "--dial-timeout=1s",
                "--command-timeout=3s"] + list(args)

    def endpoints(self, members=None):
        return ",".join(m.endpoint for m in (members or self.members))

    def pids(self):
        return [m.proc.pid for m in self.members if m.alive()]

    def start(self, timeout):
        for m in self.members:
            m.spawn()
        return self.wait_healthy(timeout)

    def wait_healthy(self, timeout):
        """Seconds until every member passes `endpoint health`; exits if one dies or time runs out."""
        t0 = time.monotonic()
        pending = list(self.members)
        while pending:
            for m in pending:
                if not m.alive():
                    raise SystemExit(f"{self.kind} {m.name} exited ({m.proc.returncode}); log tail:\n{m.log_tail()}")
            pending = [m for m in pending if not m.healthy()]
            if pending and time.monotonic() - t0 > timeout:
                raise SystemExit(f"{self.kind}: {', '.join(m.name for m in pending)} not healthy after "
                                 f"{timeout:.0f}s; log tail:\n{pending[0].log_tail()}")
            if pending:
                time.sleep(POLL_SECS)
        return time.monotonic() - t0

    def leader(self, timeout):
        """The member that calls itself leader in `endpoint status` (polled until one does)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            live = [m for m in self.members if m.alive()]
            out = subprocess.run(self.ctl_args(live, "endpoint", "status", "-w", "json"), capture_output=True,
                                 text=True, timeout=15, env=CTL_ENV)
            try:
                for e in json.loads(out.stdout or "[]"):
                    st = e["Status"]
                    if st["leader"] and st["leader"] == st["header"]["member_id"]:
                        return next(m for m in live if m.endpoint == e["Endpoint"])
            except (ValueError, KeyError, StopIteration):
                pass
            time.sleep(POLL_SECS)
        raise SystemExit(f"{self.kind}: no leader after {timeout:.0f}s")

    def stop(self):
        for m in self.members:
            m.kill9()


def put_args(kind, endpoints, clients, bound):
    return ["put", "--driver", DRIVER[kind], "--endpoints", endpoints, "--clients", str(clients),
            "--key-size", str(KEY_BYTES), "--val-size", str(VALUE_BYTES), "--key-space", str(KEY_SPACE),
            "--json"] + bound


def throughput(cluster, clients, bound, hist_dir):
    hist = os.path.join(hist_dir, f"{cluster.kind}-3node-put-{clients}.json")
    r = cairn_bench(put_args(cluster.kind, cluster.endpoints(), clients, bound) + ["--hist-out", hist],
                    cluster.pids())
    r["server"] = cluster.kind
    r["hist"] = hist
    warn = "  (bench saturated)" if r["client_cpu_pct"] >= BENCH_SATURATED_PCT else ""
    log(f"{cluster.kind:5} put c={clients:<3} {r['ops_per_sec']:>8.0f}/s p50 {r['p50_us']}us p99 {r['p99_us']}us "
        f"cpu {r['server_cpu_ms_per_1000']:.0f}ms/1000 rss {r['server_rss_mib']:.0f}MiB "
        f"bench cpu {r['client_cpu_pct']:.0f}% err {r['errors']}{warn}")
    return r


def attempt(kind, members, timeout):
    """One put through `members` (dialled in that order) with a per-request timeout; True if acknowledged."""
    args = [os.path.join(R, "cairn-bench")] + put_args(kind, ",".join(m.endpoint for m in members), 1,
                                                        ["--total", "1", "--request-timeout", str(timeout)])
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0


def attempt_cost(cluster, timeout, n=5):
    """Median seconds one acknowledged write attempt takes on the healthy cluster."""
    return median_secs(n, lambda i: attempt(cluster.kind, cluster.members[i % 3:] + cluster.members[:i % 3], timeout),
                       f"{cluster.kind}: a write attempt failed on a healthy cluster (raise --attempt-timeout?)")


def failover(cluster, a):
    """kill -9 the leader, time the first acknowledged write through the
    survivors, restart the killed member and time until all are healthy."""
    leader = cluster.leader(a.start_timeout)
    survivors = [m for m in cluster.members if m is not leader]
    t0 = time.monotonic()
    leader.proc.send_signal(signal.SIGKILL)
    leader.proc.wait()
    attempts = 0
    while True:
        order = survivors[attempts % 2:] + survivors[:attempts % 2]
        attempts += 1
        if attempt(cluster.kind, order, a.attempt_timeout):
            ack = time.monotonic() - t0
            break
        if time.monotonic() - t0 > a.failover_timeout:
            raise SystemExit(f"{cluster.kind}: no write acknowledged {a.failover_timeout:.0f}s after killing "
                             f"{leader.name}; log tail of {survivors[0].name}:\n{survivors[0].log_tail()}")
    new_leader = cluster.leader(a.start_timeout)
    t1 = time.monotonic()
    leader.spawn()
    healthy = cluster.wait_healthy(a.start_timeout)
    r = {"server": cluster.kind, "killed": leader.name, "new_leader": new_leader.name, "ack_secs": ack,
         "attempts": attempts, "restart_healthy_secs": time.monotonic() - t1, "wait_secs": healthy}
    log(f"{cluster.kind:5} failover: killed leader {leader.name}, first acknowledged write after "
        f"{ack * 1e3:.0f} ms ({attempts} attempts), new leader {new_leader.name}; {leader.name} healthy again "
        f"{r['restart_healthy_secs'] * 1e3:.0f} ms after its restart")
    return r


def check_perf(cluster):
    """etcdctl's own load generator against the cluster (60 s): its writes/s."""
    out = subprocess.run(cluster.ctl_args(cluster.members, "check", "perf", "--load=l"), capture_output=True,
                         text=True, timeout=300, env=CTL_ENV)
    m = re.search(r"Throughput (?:is|too low:) (\d+) writes/s", out.stdout + out.stderr)
    log(f"etcd  etcdctl check perf --load=l: {m.group(0) if m else 'no throughput line'}")
    return int(m.group(1)) if m else None


def measure(kind, root, a, bound, res):
    cluster = Cluster(kind, root)
    try:
        secs = cluster.start(a.start_timeout)
        log(f"{kind:5} cluster of {len(cluster.members)} healthy after {secs:.1f}s "
            f"(clients {cluster.endpoints()})")
        res["attempt_secs"][kind] = attempt_cost(cluster, a.attempt_timeout)
        for c in a.clients:
            res["steps"].append(throughput(cluster, c, bound, a.hist_dir))
        if kind == "etcd" and a.check_perf:
            res["etcdctl_check_perf_writes_per_sec"] = check_perf(cluster)
        for _ in range(a.rounds):
            res["failover"].append(failover(cluster, a))
    finally:
        cluster.stop()
        if not a.keep:
            shutil.rmtree(cluster.root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="1,16,64,256", help="client counts, one put step each")
    bound = ap.add_mutually_exclusive_group()
    bound.add_argument("--secs", type=float, help="seconds per put step (default 5)")
    bound.add_argument("--total", type=int, help="requests per put step instead of --secs")
    ap.add_argument("--rounds", type=int, help="failover rounds per cluster (default 10)")
    ap.add_argument("--attempt-timeout", type=float, default=0.1,
                    help="per-attempt request timeout of the failover write loop, seconds")
    ap.add_argument("--failover-timeout", type=float, default=60, help="longest wait for a write after a kill")
    ap.add_argument("--start-timeout", type=float, default=60, help="seconds a (re)start may take")
    ap.add_argument("--check-perf", action="store_true",
                    help="also run `etcdctl check perf --load=l` (60 s) against the etcd cluster, "
                         "an independent load generator to set beside cairn-bench's etcd driver")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 300 requests per step, 2 failover rounds (unless given)")
    ap.add_argument("--data-root", default=os.path.join(os.path.dirname(R), "bench-data"))
    ap.add_argument("--json-out", help="write every raw figure here as JSON")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    ap.add_argument("--hist-dir", default=os.path.join(os.path.dirname(R), "bench-data", "hist"),
                    help="where each put step saves its run (cairn-bench --hist-out)")
    ap.add_argument("--plot-dir", default="perf/results",
                    help="where `cairn-bench compare --plot` draws each --plot-clients step, etcd beside Cairn")
    ap.add_argument("--plot-clients", default="64,256")
    a = ap.parse_args()
    os.makedirs(a.hist_dir, exist_ok=True)
    os.makedirs(a.plot_dir, exist_ok=True)
    a.clients = [int(c) for c in a.clients.split(",")]
    if a.rounds is None:
        a.rounds = 2 if a.quick else 10
    if a.secs is None and a.total is None:
        if a.quick:
            a.total = 300
        else:
            a.secs = 5.0
    bound = ["--total", str(a.total)] if a.total else ["--duration", str(a.secs)]
    require(R, ("cairnd", "cairn-bench", "cairnctl"), ("etcd", "etcdctl"))
    root, _ = real_fs_dir(a.data_root, "cluster-")
    exit_on_signals()
    res = {"machine": fingerprint(root), "etcd_version": etcd_version(), "members": len(NAMES),
           "key_bytes": KEY_BYTES, "value_bytes": VALUE_BYTES, "key_space": KEY_SPACE,
           "step": {"total": a.total} if a.total else {"secs": a.secs}, "rounds": a.rounds,
           "attempt_timeout_secs": a.attempt_timeout, "steps": [], "failover": [], "attempt_secs": {}}
    try:
        for kind in ("cairn", "etcd"):
            measure(kind, root, a, bound, res)
    finally:
        if a.json_out:
            os.makedirs(os.path.dirname(os.path.abspath(a.json_out)), exist_ok=True)
            with open(a.json_out, "w") as f:
                json.dump(res, f, indent=1)
        if a.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(res)
    plots = []
    for c in (int(x) for x in a.plot_clients.split(",")):
        files = [r["hist"] for r in res["steps"] if r["clients"] == c]
        if len(files) == 2:
            out = os.path.join(a.plot_dir, f"3node-put-{c}.svg")
            subprocess.run([os.path.join(R, "cairn-bench"), "compare", "--plot", out] + files,
                           check=True, capture_output=True, text=True)
            plots.append(out)
    if plots:
        print("\nPlots (Cairn beside etcd, `cairn-bench compare --plot`): " +
              ", ".join(f"[{os.path.basename(p)}]({p})" for p in plots))


def spread(xs):
    """'median ms (min–max, n runs)' of a list of seconds."""
    if not xs:
        return "-"
    return (f"**{statistics.median(xs) * 1e3:.0f} ms** ({min(xs) * 1e3:.0f}–{max(xs) * 1e3:.0f}, "
            f"{len(xs)} runs)")


def report(res):
    p = print
    fp = res["machine"]
    step = f"{res['step']['secs']:g} s" if "secs" in res["step"] else f"{res['step']['total']} requests"
    p(f"Machine: {fp['cpu']}, {fp['cores']} cores, {fp['mem_mib']} MiB, Linux {fp['kernel']}, data dirs on "
      f"{fp['fs']} ({fp['device']}, {fp['device_model']}). {res['etcd_version']}.\n")
    p(f"Three members of each on 127.0.0.1, one cluster at a time, default flags (heartbeat 100 ms, election "
      f"1000 ms). Puts: {step} per step, {res['key_bytes']} B keys, {res['value_bytes']} B values, key space "
      f"{res['key_space']}, one cairn-bench process (native driver for Cairn, etcd-client over gRPC for etcd) "
      f"given all three client endpoints; CPU = the three servers' user+sys per 1000 puts; RSS = their sum at "
      f"the end of the step; bench CPU = the load generator's own, % of its one thread.\n")
    p("| clients | Cairn ops/s | etcd ops/s | ratio | Cairn p50/p99 µs | etcd p50/p99 µs | Cairn CPU ms/1000 | "
      "etcd CPU ms/1000 | Cairn RSS MiB | etcd RSS MiB | bench CPU % (Cairn/etcd) |")
    p("|---|---|---|---|---|---|---|---|---|---|---|")
    by = {}
    for r in res["steps"]:
        by.setdefault(r["clients"], {})[r["server"]] = r
    saturated = []
    for c, d in by.items():
        k, e = d.get("cairn"), d.get("etcd")
        if not (k and e):
            continue
        saturated += [f"{LABEL[r['server']]} at {c} clients ({r['client_cpu_pct']:.0f} %)" for r in (k, e)
                      if r["client_cpu_pct"] >= BENCH_SATURATED_PCT]
        errs = "" if not (k["errors"] or e["errors"]) else f" ⚠ errors {k['errors']}/{e['errors']}"
        p(f"| {c} | {k['ops_per_sec']:.0f} | {e['ops_per_sec']:.0f} | "
          f"{k['ops_per_sec'] / max(e['ops_per_sec'], 1):.1f}× | {k['p50_us']}/{k['p99_us']} | "
          f"{e['p50_us']}/{e['p99_us']} | {k['server_cpu_ms_per_1000']:.1f} | {e['server_cpu_ms_per_1000']:.1f} | "
          f"{k['server_rss_mib']:.0f} | {e['server_rss_mib']:.0f} | "
          f"{k['client_cpu_pct']:.0f}/{e['client_cpu_pct']:.0f}{errs} |")
    p("")
    if saturated:
        p(f"**Load generator check: cairn-bench used ≥ {BENCH_SATURATED_PCT} % of its one thread for "
          f"{', '.join(saturated)}: those figures may be the bench's limit, not the server's.**\n")
    else:
        p(f"Load generator check: cairn-bench stayed below {BENCH_SATURATED_PCT} % of its one thread at every "
          f"step, with either driver: the figures are the servers'.\n")
    cp = res.get("etcdctl_check_perf_writes_per_sec")
    if cp is not None:
        best = max((r["ops_per_sec"] for r in res["steps"] if r["server"] == "etcd"), default=0)
        p(f"`etcdctl check perf --load=l` (etcd's own load generator) reached {cp} writes/s on the etcd cluster; "
          f"cairn-bench --driver etcd reached {best:.0f} puts/s at best.\n")
    fo = res["failover"]
    p(f"Failover: kill -9 of the leader, then one put at a time through the two survivors "
      f"(`cairn-bench put --total 1 --request-timeout {res['attempt_timeout_secs']:g}` per attempt); time from "
      f"the kill to the first acknowledged write; then the killed member restarts on its data dir, time until "
      f"all three pass `endpoint health`. Median (min–max).\n")
    p("| | Cairn | etcd |")
    p("|---|---|---|")

    def col(kind, key):
        return spread([r[key] for r in fo if r["server"] == kind])

    p(f"| kill -9 leader → first acknowledged write | {col('cairn', 'ack_secs')} | {col('etcd', 'ack_secs')} |")
    p(f"| restart of the killed member → all healthy | {col('cairn', 'restart_healthy_secs')} | "
      f"{col('etcd', 'restart_healthy_secs')} |")
    att = {k: statistics.median([r["attempts"] for r in fo if r["server"] == k] or [0]) for k in ("cairn", "etcd")}
    p(f"| write attempts until acknowledged, median | {att['cairn']:g} | {att['etcd']:g} |")
    cost = res["attempt_secs"]
    p(f"| one acknowledged attempt on a healthy cluster (resolution) | "
      f"{cost.get('cairn', 0) * 1e3:.0f} ms | {cost.get('etcd', 0) * 1e3:.0f} ms |")


if __name__ == "__main__":
    main()
