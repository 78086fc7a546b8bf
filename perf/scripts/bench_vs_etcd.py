#!/usr/bin/env python3
"""Cairn beside etcd on this machine, in one run, with one load generator.

Starts a single-node etcd (Debian's etcd-server) and a single-node cairnd on
free 127.0.0.1 ports with data dirs on the real filesystem, profiles the
device's fsync latency with cairn-fsync, then runs the same cairn-bench
workloads against both, alternating servers for each step. For every run it
records throughput and latency (from cairn-bench --json), the server's CPU
time per 1000 operations (from /proc/PID/stat) and its RSS, and for Cairn the
WAL requests per fsync. Every run also saves its full histogram
(cairn-bench --hist-out) under --hist-dir, and each step of --plot-steps
gets a `cairn-bench compare --plot` SVG (etcd beside Cairn: latency by
percentile, requests per second over time) in --plot-dir. Prints a markdown
report; raw JSON lines go to --raw. Stops both servers (by pid) at the end.

    perf/scripts/setup-etcd-driver.sh --no-build   # etcd, etcdctl
    cargo build --release --workspace --bins
    perf/scripts/bench_vs_etcd.py --secs 5 > report.md
"""
import argparse, json, os, shutil, subprocess, sys, tempfile

from benchlib import DRIVER, R, cairn_bench, etcd_version, fingerprint, free_port, require, wait_port


class Server:
    def __init__(self, kind, root):
        self.kind = kind
        self.port, self.peer = free_port(), free_port()
        self.dir = tempfile.mkdtemp(prefix=f"{kind}-", dir=root)
        c, p = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer}"
        if kind == "etcd":
            cmd = ["etcd", "--name", "e", "--data-dir", self.dir, "--listen-client-urls", c,
                   "--advertise-client-urls", c, "--listen-peer-urls", p,
                   "--initial-advertise-peer-urls", p, "--initial-cluster", f"e={p}",
                   "--log-level", "error", "--logger", "zap"]
        else:
            cmd = [os.path.join(R, "cairnd"), "--name", "c", "--data-dir", self.dir, "--listen-client-urls", c,
                   "--advertise-client-urls", c, "--listen-peer-urls", p,
                   "--initial-advertise-peer-urls", p, "--initial-cluster", f"c={p}", "--log-level", "warn"]
        self.log = open(os.path.join(root, f"{kind}.log"), "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)
        wait_port(self.port)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def step_name(workload, clients, extra):
    cons = extra[extra.index("--consistency") + 1] if "--consistency" in extra else ""
    return f"{workload}{'-' + cons if cons else ''}-{clients}"


def bench(server, workload, clients, secs, extra, hist_dir):
    hist = os.path.join(hist_dir, f"{server.kind}-{step_name(workload, clients, extra)}.json")
    r = cairn_bench([workload, "--endpoints", f"127.0.0.1:{server.port}", "--driver", DRIVER[server.kind],
                     "--clients", str(clients), "--duration", str(secs), "--key-size", "32",
                     "--val-size", "256", "--json", "--hist-out", hist, "--data-dir", server.dir] + extra,
                    [server.proc.pid])
    r["server"] = server.kind
    r["hist"] = hist
    return r


def plot(step, rows, plot_dir):
    """etcd's and Cairn's saved runs of `step`, compared and plotted."""
    files = [r["hist"] for r in rows if r["step"] == step]
    out = os.path.join(plot_dir, f"single-{step}.svg")
    subprocess.run([os.path.join(R, "cairn-bench"), "compare", "--plot", out] + files,
                   check=True, capture_output=True, text=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=5)
    ap.add_argument("--clients", default="1,16,64,256")
    ap.add_argument("--hist-dir", default="target/bench-data/hist")
    ap.add_argument("--plot-dir", default="perf/results")
    ap.add_argument("--plot-steps", default="put-1,put-64,put-256,range-l-64,range-s-64,txn-put-64")
    ap.add_argument("--data-root", default="target/bench-data")
    ap.add_argument("--raw", default="target/bench-data/raw.jsonl")
    a = ap.parse_args()
    require(R, ("cairnd", "cairn-bench", "cairn-fsync"))
    os.makedirs(a.data_root, exist_ok=True)
    root = tempfile.mkdtemp(prefix="run-", dir=a.data_root)
    raw = open(a.raw, "w")
    fp = fingerprint(root)
    os.makedirs(a.hist_dir, exist_ok=True)
    os.makedirs(a.plot_dir, exist_ok=True)
    out = subprocess.run([os.path.join(R, "cairn-fsync"), "--dir", root, "--duration", "10", "--json"],
                         capture_output=True, text=True, check=True)
    fsync = json.loads(out.stdout)
    etcd, cairn = Server("etcd", root), Server("cairn", root)
    ver = etcd_version()
    rows = []
    try:
        plan = [("put", c, []) for c in map(int, a.clients.split(","))]
        plan += [("range", c, ["--consistency", cons, "--key-space", "10000", "--prefill"])
                 for cons in ("l", "s") for c in (1, 64, 256)]
        plan += [("txn-put", c, ["--key-space", "10000", "--prefill"]) for c in (1, 64)]
        for workload, c, extra in plan:
            if workload == "put":
                extra = ["--key-space", "100000"]
            for s in (etcd, cairn):
                r = bench(s, workload, c, a.secs, extra, a.hist_dir)
                r["step"] = step_name(workload, c, extra)
                raw.write(json.dumps(r) + "\n")
                raw.flush()
                rows.append(r)
                print(f"{s.kind:5} {workload:7} {r.get('consistency','')} c={c:<3} "
                      f"{r['ops_per_sec']:>9.0f}/s p50 {r['p50_us']}us p99 {r['p99_us']}us "
                      f"cpu {r['server_cpu_ms_per_1000']:.0f}ms/1000 err {r['errors']}", file=sys.stderr)
    finally:
        etcd.stop()
        cairn.stop()
        shutil.rmtree(root, ignore_errors=True)
    plots = [plot(step, rows, a.plot_dir) for step in a.plot_steps.split(",")
             if any(r["step"] == step for r in rows)]
    report(fp, fsync, ver, rows, a.secs)
    print("\nPlots (etcd beside Cairn, `cairn-bench compare --plot`): " +
          ", ".join(f"[{os.path.basename(p)}]({p})" for p in plots))


def report(fp, fsync, etcd_version, rows, secs):
    p = print
    p(f"Machine: {fp['cpu']}, {fp['cores']} cores, {fp['mem_mib']} MiB, Linux {fp['kernel']}, "
      f"data dir on {fp['fs']} ({fp['device']}, {fp['device_model']}). {etcd_version}.\n")
    p("Device fsync profile (`cairn-fsync --dir DATA_ROOT --duration 10`; write + fdatasync latency, µs; "
      "qdN: N writes in flight, then one fdatasync):\n")
    p("| case | p50 | p90 | p99 | p99.9 | max | fdatasync p99 | ops/s | MB/s |")
    p("|---|---|---|---|---|---|---|---|---|")
    for f in fsync["cases"]:
        p(f"| {f['case']} | {f['p50_us']} | {f['p90_us']} | {f['p99_us']} | {f['p999_us']} | {f['max_us']} | "
          f"{f['fdatasync']['p99_us']} | {f['ops_per_sec']:.0f} | {f['mb_per_sec']:.1f} |")
    p(f"\nVerdict: {fsync['verdict']['text']}")
    p(f"\nEach run: {secs:.0f} s, 32 B keys, 256 B values, one cairn-bench process (native driver for Cairn, "
      "etcd-client over gRPC for etcd); CPU = server user+sys per 1000 ops; bench CPU = the load generator's own.\n")
    p("| workload | clients | etcd ops/s | Cairn ops/s | ratio | etcd p50/p99 µs | Cairn p50/p99 µs | "
      "etcd CPU ms/1000 | Cairn CPU ms/1000 | etcd RSS MiB | Cairn RSS MiB | Cairn req/fsync | bench CPU % (etcd/Cairn) |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    by = {}
    for r in rows:
        key = (r["workload"] + ("" if r["workload"] != "range" else f" ({r['consistency']})"), r["clients"])
        by.setdefault(key, {})[r["server"]] = r
    for (w, c), d in by.items():
        e, k = d["etcd"], d["cairn"]
        rpf = k.get("requests_per_fsync")
        p(f"| {w} | {c} | {e['ops_per_sec']:.0f} | {k['ops_per_sec']:.0f} | {k['ops_per_sec']/max(e['ops_per_sec'],1):.1f}× | "
          f"{e['p50_us']}/{e['p99_us']} | {k['p50_us']}/{k['p99_us']} | {e['server_cpu_ms_per_1000']:.0f} | "
          f"{k['server_cpu_ms_per_1000']:.1f} | {e['server_rss_mib']:.0f} | {k['server_rss_mib']:.0f} | "
          f"{'' if rpf is None else f'{rpf:.1f}'} | {e['client_cpu_pct']:.0f}/{k['client_cpu_pct']:.0f} |")


if __name__ == "__main__":
    main()
