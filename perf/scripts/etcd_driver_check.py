#!/usr/bin/env python3
"""Is cairn-bench's etcd driver a fair load generator? Sets it beside an
independent one, etcd's own `etcdctl check perf`, against one etcd.

    perf/scripts/setup-etcd-driver.sh --no-build   # etcd, etcdctl (3.4)
    cargo build --release --workspace --bins
    perf/scripts/etcd_driver_check.py > driver-check.md            # loads s, m, l; about 6 minutes
    perf/scripts/etcd_driver_check.py --quick                      # load s only, 2 s bench steps (~75 s)
    perf/scripts/etcd_driver_check.py --quick --bin-dir target/debug   # the same with a debug build

Starts a single-member etcd on free 127.0.0.1 ports (data dir under
--data-root, on a real file system), then for each `check perf` load
(s: 50 clients at 150 writes/s, m: 200 at 1000/s, l: 500 at 8000/s,
xl: 1000 at 15000/s; etcdctl gives every client its own connection and
writes 20 + 256 byte keys with 1024 byte values, for a fixed 60 s):

  1. `etcdctl check perf --load=X`: its writes/s (it prints no
     percentiles, only the slowest request and the standard deviation);
  2. `cairn-bench put --driver etcd` open loop at the same rate and client
     count (--rate, --conns = clients), 276 byte keys, 1024 byte values:
     the same load through our driver, with p50/p99;
  3. the same closed loop: as fast as the clients go;
  4. two cairn-bench processes at once, closed loop, each with half the
     clients: if their sum is well above (3), one process, i.e. the
     driver's one thread, was the bottleneck, not etcd.

Prints a markdown table on stdout (progress on stderr): generator,
clients, ops/s, p50/p99 where the generator reports them, the load
generator's CPU (% of one core) and etcd's. etcd is stopped by its pid at
the end, also on errors and signals, and its data dir removed.

This is a measurement tool: run it on a quiet machine; --quick only checks
that it works.
"""
import argparse, json, os, re, resource, shutil, subprocess, sys, time

from benchlib import R, ServerProcess, etcd_version, exit_on_signals, fingerprint, free_port, log, \
    proc_cpu_secs, real_fs_dir, require

# etcdctl 3.4 `check perf` (etcdctl/ctlv3/command/check.go): per load, the
# rate limit (writes/s) and the client count; 60 s, fixed.
CHECK_PERF = {"s": (150, 50), "m": (1000, 200), "l": (8000, 500), "xl": (15000, 1000)}
CHECK_PERF_SECS = 60
CHECK_PERF_PREFIX = "/etcdctl-check-perf/"
# Its keys are the prefix and 256 bytes; its values 1024 bytes.
KEY_BYTES = len(CHECK_PERF_PREFIX) + 256
VALUE_BYTES = 1024
# Bounds etcd's live data (100k keys of 1.3 KB) however long the steps.
KEY_SPACE = 100_000
# Room for the revisions written between two compactions.
QUOTA_BYTES = 8 << 30
# Two processes summing to this much more than one mean the driver limits.
DRIVER_BOUND_RATIO = 1.3


class Etcd(ServerProcess):
    health_timeout = 10

    def __init__(self, root):
        super().__init__(os.path.join(root, "etcd.log"))
        self.dir = os.path.join(root, "etcd")
        self.port, self.peer = free_port(), free_port()
        while self.peer == self.port:
            self.peer = free_port()

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.port}"

    def cmd(self):
        c, p = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer}"
        return ["etcd", "--name", "e", "--data-dir", self.dir, "--listen-client-urls", c,
                "--advertise-client-urls", c, "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                "--initial-cluster", f"e={p}", "--quota-backend-bytes", str(QUOTA_BYTES),
                "--logger", "zap", "--log-level", "warn"]

    def health_args(self):
        return ["etcdctl", f"--endpoints={self.endpoint}", "--dial-timeout=1s", "--command-timeout=3s",
                "endpoint", "health"]

    def ctl(self, *args, timeout=120):
        out = subprocess.run(["etcdctl", f"--endpoints={self.endpoint}", "--command-timeout=100s"] + list(args),
                             capture_output=True, text=True, timeout=timeout, env=self.ctl_env)
        if out.returncode != 0:
            raise SystemExit(f"etcdctl {' '.join(args)} failed (exit {out.returncode}):\n{out.stdout}{out.stderr}")
        return out.stdout

    def compact(self):
        """Drops the history of the steps so far (and defragments), so that
        the next load starts from the same small data set."""
        rev = json.loads(self.ctl("endpoint", "status", "-w", "json"))[0]["Status"]["header"]["revision"]
        self.ctl("compact", str(rev), "--physical")
        self.ctl("defrag")

    def start(self, timeout=30):
        self.spawn()
        t0 = time.monotonic()
        while not self.healthy(self.port):
            if not self.alive():
                raise SystemExit(f"etcd exited ({self.proc.returncode}); log tail:\n{self.log_tail()}")
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"etcd not healthy after {timeout}s; log tail:\n{self.log_tail()}")
            time.sleep(0.1)


def children_cpu_secs():
    """User + system CPU of this script's reaped children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def check_perf(etcd, load):
    """`etcdctl check perf --load=LOAD`: its writes/s, slowest and stddev, and its CPU."""
    limit, clients = CHECK_PERF[load]
    args = ["etcdctl", f"--endpoints={etcd.endpoint}", "check", "perf", f"--load={load}"]
    cpu0, srv0, t0 = children_cpu_secs(), proc_cpu_secs(etcd.proc.pid), time.monotonic()
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=CHECK_PERF_SECS + 120,
                             env=ServerProcess.ctl_env)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"etcdctl check perf --load={load}: no answer after {CHECK_PERF_SECS + 120}s")
    wall = time.monotonic() - t0
    text = out.stdout + out.stderr
    m = re.search(r"Throughput (?:is|too low:) (\d+) writes/s", text)
    if not m:
        raise SystemExit(f"etcdctl check perf --load={load} printed no throughput (exit {out.returncode}):\n{text}")
    slowest = re.search(r"[Ss]lowest request took (?:too long: )?([\d.]+)s", text)
    stddev = re.search(r"Stddev (?:is|too high:) ([\d.]+)s", text)
    return {
        "generator": f"etcdctl check perf --load={load} (open loop {limit}/s)", "clients": clients,
        "ops_per_sec": float(m.group(1)), "passed": out.returncode == 0,
        "latency": (f"slowest {float(slowest.group(1)) * 1e3:.1f} ms" if slowest else "-")
                   + (f", stddev {float(stddev.group(1)) * 1e3:.1f} ms" if stddev else ""),
        # Its 60 s of load, plus start and the final delete of its keys.
        "bench_cpu_pct": 100 * (children_cpu_secs() - cpu0) / wall,
        "etcd_cpu_pct": 100 * (proc_cpu_secs(etcd.proc.pid) - srv0) / wall,
    }


def bench_args(bin_dir, etcd, clients, secs, rate=None, seed=1):
    args = [os.path.join(bin_dir, "cairn-bench"), "put", "--driver", "etcd", "--endpoints", etcd.endpoint,
            "--clients", str(clients), "--conns", str(min(clients, 1024)), "--duration", str(secs),
            "--key-size", str(KEY_BYTES), "--val-size", str(VALUE_BYTES), "--key-space", str(KEY_SPACE),
            "--seed", str(seed), "--json"]
    if rate:
        args += ["--rate", str(rate)]
    return args


def run_benches(etcd, arg_lists, secs):
    """Runs cairn-bench processes at once; their JSON reports and etcd's CPU % meanwhile."""
    srv0, t0 = proc_cpu_secs(etcd.proc.pid), time.monotonic()
    procs = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for a in arg_lists]
    reports = []
    try:
        for p, a in zip(procs, arg_lists):
            out, err = p.communicate(timeout=secs + 120)
            if p.returncode != 0:
                raise SystemExit(f"cairn-bench failed (exit {p.returncode}): {' '.join(a)}\n{err}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        raise SystemExit(f"cairn-bench: no answer after {secs + 120:.0f}s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = time.monotonic() - t0
    for r in reports:
        if r["errors"]:
            log(f"  warning: {r['errors']} errors: {r['error_kinds']}")
    return reports, 100 * (proc_cpu_secs(etcd.proc.pid) - srv0) / wall


def bench_row(generator, reports, etcd_cpu):
    return {
        "generator": generator, "clients": sum(r["clients"] for r in reports),
        "ops_per_sec": sum(r["ops_per_sec"] for r in reports),
        # The worse of the processes.
        "latency": f"{max(r['p50_us'] for r in reports)}/{max(r['p99_us'] for r in reports)} µs",
        "bench_cpu_pct": sum(r["client_cpu_pct"] for r in reports), "etcd_cpu_pct": etcd_cpu,
        "errors": sum(r["errors"] for r in reports), "raw": reports,
    }


def measure(etcd, load, a):
    limit, clients = CHECK_PERF[load]
    rows = []
    log(f"load {load}: etcdctl check perf ({CHECK_PERF_SECS} s, fixed by etcdctl)")
    rows.append(check_perf(etcd, load))
    steps = [
        (f"cairn-bench, open loop {limit}/s", [bench_args(a.bin_dir, etcd, clients, a.secs, rate=limit)]),
        ("cairn-bench, closed loop", [bench_args(a.bin_dir, etcd, clients, a.secs)]),
        (f"2 × cairn-bench ({clients // 2} + {clients - clients // 2} clients), closed loop",
         [bench_args(a.bin_dir, etcd, clients // 2, a.secs, seed=2),
          bench_args(a.bin_dir, etcd, clients - clients // 2, a.secs, seed=3)]),
    ]
    for name, arg_lists in steps:
        log(f"load {load}: {name} ({a.secs:g} s)")
        reports, etcd_cpu = run_benches(etcd, arg_lists, a.secs)
        rows.append(bench_row(name, reports, etcd_cpu))
    for r in rows:
        log(f"  {r['generator']}: {r['ops_per_sec']:.0f} ops/s, bench CPU {r['bench_cpu_pct']:.0f} %")
    return rows


def verdict(rows):
    """One line on whether one cairn-bench process limited the closed loop."""
    one, two = rows[2]["ops_per_sec"], rows[3]["ops_per_sec"]
    ratio = two / one if one else float("inf")
    if ratio > DRIVER_BOUND_RATIO:
        return f"two processes did {ratio:.2f}× one: the driver (one thread) limits at this client count"
    return f"two processes did {ratio:.2f}× one: the driver does not limit at this client count"


def report(fp, version, results, a):
    p = print
    p(f"Machine: {fp['cpu']}, {fp['cores']} cores, {fp['mem_mib']} MiB, Linux {fp['kernel']}, "
      f"etcd data on {fp['fs']} ({fp['device']}, {fp['device_model']}). {version}.\n")
    p(f"Single-member etcd; puts of {KEY_BYTES} B keys and {VALUE_BYTES} B values (etcdctl check perf's sizes); "
      f"cairn-bench steps of {a.secs:g} s with one connection per client, as etcdctl's; check perf runs "
      f"{CHECK_PERF_SECS} s. CPU in % of one core; cairn-bench runs on one thread.\n")
    p("| load | generator | clients | ops/s | p50/p99 | bench CPU % | etcd CPU % |")
    p("|---|---|---|---|---|---|---|")
    for load, rows in results.items():
        for r in rows:
            p(f"| {load} | {r['generator']} | {r['clients']} | {r['ops_per_sec']:.0f} | {r['latency']} | "
              f"{r['bench_cpu_pct']:.0f} | {r['etcd_cpu_pct']:.0f} |")
    p("")
    for load, rows in results.items():
        failed = "" if rows[0]["passed"] else " (etcdctl: FAIL)"
        p(f"- load {load}{failed}: {verdict(rows)}.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", default="s,m,l", help="check perf loads, comma-separated (s, m, l, xl)")
    ap.add_argument("--secs", type=float, help="seconds per cairn-bench step (default 10; 2 with --quick)")
    ap.add_argument("--quick", action="store_true", help="load s only, 2 s cairn-bench steps: checks the script works")
    ap.add_argument("--bin-dir", default=R, help="where cairn-bench is (default target/release)")
    ap.add_argument("--data-root", default=os.path.join(os.path.dirname(R), "bench-data"))
    ap.add_argument("--json-out", help="also write every figure here as JSON")
    a = ap.parse_args()
    loads = ["s"] if a.quick else a.loads.split(",")
    for load in loads:
        if load not in CHECK_PERF:
            raise SystemExit(f"--loads: unknown load {load!r} (s, m, l, xl)")
    if a.secs is None:
        a.secs = 2.0 if a.quick else 10.0
    require(a.bin_dir, ("cairn-bench",), ("etcd", "etcdctl"))
    root, _ = real_fs_dir(a.data_root, "driver-check-")
    exit_on_signals()
    etcd = Etcd(root)
    results = {}
    try:
        fp, version = fingerprint(root), etcd_version()
        etcd.start()
        log(f"etcd healthy on {etcd.endpoint} (pid {etcd.proc.pid})")
        for load in loads:
            results[load] = measure(etcd, load, a)
            etcd.compact()
    finally:
        etcd.kill9()
        shutil.rmtree(root, ignore_errors=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"machine": fp, "etcd_version": version, "secs": a.secs, "results": results}, f, indent=1)
    report(fp, version, results, a)


if __name__ == "__main__":
    sys.exit(main())
