#!/usr/bin/env python3
"""Leases and watches: Cairn beside etcd 3.4 on this machine, in one run, one load generator.

Starts a single-node etcd (Debian's etcd-server) and a single-node cairnd on
free 127.0.0.1 ports (the same as bench_vs_etcd.py), then for each server in
turn, --rounds times (alternating servers every step):

  1. put baseline: `cairn-bench put`, --storm-clients clients, --secs seconds,
     32 B keys, 256 B values;
  2. lease storm: `cairn-bench lease-storm`: the prefill grants --leases
     leases of --storm-ttl seconds, each with one key, then the same puts as
     step 1 run on other keys for --secs seconds while all those leases
     expire (the prefill takes a second or two, so they expire over about
     that long); the put latencies are compared with step 1's;
  3. keep-alive: `cairn-bench lease-keepalive`: the prefill grants --leases
     leases of 600 s, then --ka-clients clients renew uniformly chosen ones
     for --secs seconds. etcd-client renews each lease over a stream of its
     own: the prefill opens them (not measured), so etcd holds --leases
     open streams;
  4. the same with as many leases as clients (few streams, each reused);
  5. watch: `cairn-bench watch`: --watchers watches, one key each over
     --watch-keys keys (watcher j on key j mod keys, on 8 connections of
     their own; etcd: one gRPC watch stream per connection carrying its
     share, as clientv3 multiplexes them), while --storm-clients clients put
     256 B values starting with a send timestamp to those keys for --secs seconds: events/s and the
     put->event latency of every event (and the puts/s that caused them);
  6. the same with one watcher per key.

`--only lease` or `--only watch` runs half the steps.

Records throughput, p50/p99/p999/max latency and the server's CPU per 1000
operations; prints a markdown report on stdout, progress on stderr, raw JSON
lines to --raw. Stops both servers (by pid) at the end.

    perf/scripts/setup-etcd-driver.sh --no-build   # etcd, etcdctl
    cargo build --release --workspace --bins
    perf/scripts/lease_watch_vs_etcd.py > lease_watch.md
"""
import argparse, json, os, shutil, statistics, tempfile

from bench_vs_etcd import Server, bench as run
from benchlib import R, etcd_version, fingerprint, log, require


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=15)
    ap.add_argument("--leases", type=int, default=10000)
    ap.add_argument("--storm-ttl", type=int, default=5)
    ap.add_argument("--storm-clients", type=int, default=16)
    ap.add_argument("--ka-clients", type=int, default=64)
    ap.add_argument("--watchers", type=int, default=10000)
    ap.add_argument("--watch-keys", type=int, default=1000)
    ap.add_argument("--only", choices=("lease", "watch"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data-root", default="target/bench-data")
    ap.add_argument("--raw", default="target/bench-data/lease_watch.jsonl")
    a = ap.parse_args()
    require(R, ("cairnd", "cairn-bench"))
    os.makedirs(a.data_root, exist_ok=True)
    root = tempfile.mkdtemp(prefix="lease-", dir=a.data_root)
    raw = open(a.raw, "w")
    fp = fingerprint(root)
    etcd, cairn = Server("etcd", root), Server("cairn", root)
    ver = etcd_version()
    rows = []
    plan = [("put", "put", a.storm_clients, ["--key-space", "100000"]),
            ("lease-storm", "lease-storm", a.storm_clients,
             ["--key-space", str(a.leases), "--lease-ttl", str(a.storm_ttl)]),
            (f"keep-alive, {a.leases} leases", "lease-keepalive", a.ka_clients,
             ["--key-space", str(a.leases), "--lease-ttl", "600"]),
            (f"keep-alive, {a.ka_clients} leases", "lease-keepalive", a.ka_clients,
             ["--key-space", str(a.ka_clients), "--lease-ttl", "600"])]
    watch = [(f"watch, {a.watchers} watchers on {a.watch_keys} keys", "watch", a.storm_clients,
              ["--watchers", str(a.watchers), "--key-space", str(a.watch_keys)]),
             (f"watch, {a.watch_keys} watchers on {a.watch_keys} keys", "watch", a.storm_clients,
              ["--watchers", str(a.watch_keys), "--key-space", str(a.watch_keys)])]
    plan = {"lease": plan, "watch": watch}.get(a.only, plan + watch)
    try:
        for rnd in range(a.rounds):
            for label, workload, clients, extra in plan:
                for s in (etcd, cairn):
                    r = run(s, workload, clients, a.secs, extra)
                    r["round"], r["label"] = rnd, label
                    raw.write(json.dumps(r) + "\n")
                    raw.flush()
                    rows.append(r)
                    log(f"{s.kind:5} {label:24} c={clients:<3} {r['ops_per_sec']:>9.0f}/s p50 {r['p50_us']}us "
                        f"p99 {r['p99_us']}us p999 {r['p999_us']}us max {r['max_us']}us "
                        f"cpu {r['server_cpu_ms_per_1000']:.0f}ms/1000 err {r['errors']}")
    finally:
        etcd.stop()
        cairn.stop()
        shutil.rmtree(root, ignore_errors=True)
    report(fp, ver, rows, a, [p[0] for p in plan])


def med(rows, server, label, field):
    xs = [r[field] for r in rows if r["server"] == server and r["label"] == label and field in r]
    return statistics.median(xs) if xs else float("nan")


def report(fp, ver, rows, a, labels):
    print(f"Machine: {fp['cpu']}, {fp['cores']} cores, {fp['mem_mib']} MiB, kernel {fp['kernel']}, "
          f"{fp['fs']} on {fp['device']} ({fp['device_model']}); {ver}.\n")
    print(f"{a.leases} leases; storm TTL {a.storm_ttl} s, {a.storm_clients} put clients; keep-alive "
          f"{a.ka_clients} clients; {a.secs:.0f} s per step; medians of {a.rounds} rounds.\n")
    print("| step | server | ops/s (watch: events/s) | p50 µs | p99 µs | p99.9 µs | max µs | "
          "server CPU ms/1000 ops | watch: puts/s | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for workload in labels:
        for s in ("etcd", "cairn"):
            puts = med(rows, s, workload, "puts_per_sec")
            print(f"| {workload} | {s} | {med(rows, s, workload, 'ops_per_sec'):.0f} | "
                  f"{med(rows, s, workload, 'p50_us'):.0f} | {med(rows, s, workload, 'p99_us'):.0f} | "
                  f"{med(rows, s, workload, 'p999_us'):.0f} | {med(rows, s, workload, 'max_us'):.0f} | "
                  f"{med(rows, s, workload, 'server_cpu_ms_per_1000'):.1f} | "
                  f"{'' if puts != puts else f'{puts:.0f}'} | {med(rows, s, workload, 'errors'):.0f} |")
    print()
    for workload in labels:
        if workload == "put":
            continue
        c, e = med(rows, "cairn", workload, "ops_per_sec"), med(rows, "etcd", workload, "ops_per_sec")
        print(f"- {workload}: Cairn {c / e:.1f}× etcd's throughput.")
    if "lease-storm" in labels:
        for s in ("etcd", "cairn"):
            base, storm = med(rows, s, "put", "p99_us"), med(rows, s, "lease-storm", "p99_us")
            print(f"- {s}: put p99 during the storm {storm / base:.2f}× its baseline.")

if __name__ == "__main__":
    main()
