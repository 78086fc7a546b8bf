#!/usr/bin/env python3
"""Backend file size and restart time: Cairn's page file beside etcd's bbolt.

Starts a single-node etcd 3.4 and a single-node cairnd side by side on
127.0.0.1 (fixed ports from --base-port, fresh data dirs under --data-root on
the real file system; default flags except the listen URLs, the data dir and
--quota-backend-bytes, which both get --quota so neither raises NOSPACE).
With one cairn-bench process per step, alternating servers at every step:

  1. load: every key of a key space of N once, in key order
     (`cairn-bench put --prefill --total 1 --key-space N`: N + 1 puts);
  2. overwrite: three more loads of N puts each, uniformly random keys of the
     same key space (`--total N`, one fixed --seed per pass, the same for both
     servers); `--order seq` makes them in-order passes like step 1;
  3. restart (before compaction): kill -9, respawn, time until
     `ctl endpoint health` succeeds (polled every 20 ms), --restarts runs;
  4. `ctl compaction --physical REV` at the current revision, then
     `ctl defrag` (timed);
  5. restart again (after defrag).

After every step it records the db file (etcd: member/snap/db, Cairn:
member/db: apparent and allocated bytes), the whole data dir, the servers'
own `endpoint status` (dbSize, dbSizeInUse, revision) and RSS. Prints a
markdown report on stdout, progress on stderr, raw JSON to --json-out.
Stops both servers (by pid) and removes the data dirs at exit (--keep keeps
them).

    cargo build --release --workspace --bins
    perf/scripts/db_size.py > db_size.md        # 1M keys; etcd's loads dominate
    perf/scripts/db_size.py --keys 100000       # a quick run
"""
import argparse, json, os, platform, re, shutil, statistics, time

import benchlib
from benchlib import DRIVER, ServerProcess, etcd_version, exit_on_signals, log, median_secs, port_busy, \
    proc_mem_mib, real_fs_dir, require, run

REPO, R = benchlib.REPO, benchlib.R
KEY_BYTES, VALUE_BYTES, CLIENTS = 32, 256, 64
POLL_SECS = 0.020
SEEDS = (1001, 1002, 1003)  # one per overwrite pass, the same for both servers
MIB = 1 << 20


def file_bytes(path):
    """(apparent, allocated) bytes of a file, (0, 0) if it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return 0, 0
    return st.st_size, st.st_blocks * 512


def tree_bytes(root):
    total = alloc = 0
    for d, _, files in os.walk(root):
        for f in files:
            a, b = file_bytes(os.path.join(d, f))
            total, alloc = total + a, alloc + b
    return total, alloc


class Server(ServerProcess):
    def __init__(self, kind, root, port, quota):
        super().__init__(os.path.join(root, f"{kind}.log"))
        self.kind, self.port, self.peer, self.quota = kind, port, port + 1, quota
        self.dir = os.path.join(root, kind)
        self.db = os.path.join(self.dir, "member", "snap", "db") if kind == "etcd" else \
            os.path.join(self.dir, "member", "db")
        self.ctl = shutil.which("etcdctl") if kind == "etcd" else os.path.join(R, "cairnctl")
        self.env = self.ctl_env

    def cmd(self):
        c, p = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer}"
        common = ["--data-dir", self.dir, "--listen-client-urls", c, "--advertise-client-urls", c,
                  "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                  "--quota-backend-bytes", str(self.quota)]
        if self.kind == "etcd":
            return ["etcd", "--name", "e", "--initial-cluster", f"e={p}", "--logger", "zap"] + common
        return [os.path.join(R, "cairnd"), "--name", "c", "--initial-cluster", f"c={p}"] + common

    def ctl_args(self, *args, command_timeout="10s", dial_timeout="2s"):
        return [self.ctl, f"--endpoints=127.0.0.1:{self.port}", f"--dial-timeout={dial_timeout}",
                f"--command-timeout={command_timeout}"] + list(args)

    def health_args(self):
        return self.ctl_args("endpoint", "health")

    def healthy(self):
        return super().healthy(self.port)

    def wait_healthy(self, secs):
        """Seconds from now until healthy (polling every 20 ms); exits if the server dies."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            if not self.alive():
                raise SystemExit(f"{self.kind} exited ({self.proc.returncode}) while starting; log tail:\n{self.log_tail()}")
            if self.healthy():
                return time.monotonic() - t0
            time.sleep(POLL_SECS)
        raise SystemExit(f"{self.kind} not healthy after {secs}s; log tail:\n{self.log_tail()}")

    def status(self):
        out = run(self.ctl_args("endpoint", "status", "-w", "json"), 60, f"{self.kind} endpoint status", self.env)
        st = json.loads(out)[0]["Status"]
        return {"revision": int(st["header"]["revision"]), "db_size": int(st["dbSize"]),
                "db_size_in_use": int(st.get("dbSizeInUse", 0)), "raft_index": int(st.get("raftIndex", 0))}

    def sizes(self, stage):
        db, db_alloc = file_bytes(self.db)
        d, d_alloc = tree_bytes(self.dir)
        wal, _ = tree_bytes(os.path.join(self.dir, "member", "wal"))
        r = {"server": self.kind, "stage": stage, "db_file_bytes": db, "db_file_alloc_bytes": db_alloc,
             "dir_bytes": d, "dir_alloc_bytes": d_alloc, "wal_bytes": wal,
             "rss_mib": proc_mem_mib(self.proc.pid, "VmRSS"), "peak_rss_mib": proc_mem_mib(self.proc.pid, "VmHWM")}
        r.update(self.status())
        log(f"{self.kind:5} {stage:12} db file {db / MIB:8.1f} MiB (alloc {db_alloc / MIB:.1f}), "
            f"dbSize {r['db_size'] / MIB:.1f} in use {r['db_size_in_use'] / MIB:.1f} MiB, dir {d / MIB:.1f} MiB, "
            f"rev {r['revision']}, RSS {r['rss_mib']:.0f} MiB (peak {r['peak_rss_mib']:.0f})")
        return r


def load(server, keys, ordered, seed):
    """One pass of cairn-bench puts; returns its JSON plus wall-clock figures."""
    args = [os.path.join(R, "cairn-bench"), "put", "--endpoints", f"127.0.0.1:{server.port}",
            "--driver", DRIVER[server.kind], "--clients", str(CLIENTS),
            "--key-space", str(keys), "--key-size", str(KEY_BYTES), "--val-size", str(VALUE_BYTES),
            "--request-timeout", "30", "--seed", str(seed), "--json"]
    args += ["--prefill", "--total", "1"] if ordered else ["--total", str(keys)]
    puts = keys + 1 if ordered else keys
    t0 = time.monotonic()
    out = run(args, max(1800, keys / 200), f"{server.kind} load", None)
    wall = time.monotonic() - t0
    r = json.loads(out.strip().splitlines()[-1])
    if r["errors"]:
        log(f"WARNING: {server.kind} load had {r['errors']} errors: {r['error_kinds']}")
    r.update({"server": server.kind, "ordered": ordered, "puts": puts, "wall_secs": wall, "puts_per_sec": puts / wall})
    log(f"{server.kind:5} load {'in order' if ordered else 'random  '} {puts} puts in {wall:.1f}s "
        f"({puts / wall:.0f}/s), errors {r['errors']}")
    return r


CAIRN_START = re.compile(r"(loaded the page file|replayed the WAL after the page file).*")


def restart(server, stage, timeout):
    """kill -9, respawn, time until healthy. Returns one record."""
    server.kill9()
    t0 = time.monotonic()
    offset = server.spawn()
    secs = server.wait_healthy(timeout)
    total = time.monotonic() - t0
    r = {"server": server.kind, "stage": stage, "secs": total, "wait_secs": secs}
    if server.kind == "cairn":
        with open(server.log_path, errors="replace") as f:
            f.seek(offset)
            r["log"] = [m.group(0) for m in CAIRN_START.finditer(f.read())]
    log(f"{server.kind:5} restart {stage}: healthy after {total * 1e3:.0f} ms" +
        ("".join(f"\n        {l}" for l in r.get("log", []))))
    return r


def probe_cost(server, n=5):
    """Median seconds one `ctl endpoint health` takes against the running server."""
    return median_secs(n, lambda _: server.healthy(), f"{server.kind}: endpoint health failed on a running server")


CAIRN_DEFRAG = re.compile(r"defragmented the page file before_bytes=(\d+) after_bytes=(\d+) elapsed_ms=(\d+)")


def compact_defrag(server, sizes):
    """Compaction at the current revision, sizes, defrag. Returns one record."""
    rev = server.status()["revision"]
    t0 = time.monotonic()
    run(server.ctl_args("compaction", "--physical", str(rev), command_timeout="3600s"), 3700,
        f"{server.kind} compaction", server.env)
    compact = time.monotonic() - t0
    log(f"{server.kind:5} compaction --physical {rev}: {compact:.1f}s")
    sizes.append(server.sizes("compacted"))
    with open(server.log_path) as f:
        offset = f.seek(0, os.SEEK_END)
    t0 = time.monotonic()
    run(server.ctl_args("defrag", command_timeout="3600s"), 3700, f"{server.kind} defrag", server.env)
    defrag = time.monotonic() - t0
    r = {"server": server.kind, "revision": rev, "compaction_secs": compact, "defrag_secs": defrag}
    if server.kind == "cairn":
        with open(server.log_path, errors="replace") as f:
            f.seek(offset)
            m = CAIRN_DEFRAG.search(f.read())
        if m:  # the file as the copy found it, and the copy's own time
            r.update(file_before_defrag_bytes=int(m.group(1)), copy_ms=int(m.group(3)))
    log(f"{server.kind:5} defrag {defrag:.1f}s" + (f" (log: file before {r['file_before_defrag_bytes'] / MIB:.0f} MiB, "
                                                   f"copy {r['copy_ms']} ms)" if "copy_ms" in r else ""))
    return r


def main():
    global R
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1_000_000, help="key space N (default 1,000,000)")
    ap.add_argument("--order", choices=("random", "seq"), default="random",
                    help="key order of the three overwrite passes (the first load is always in order)")
    ap.add_argument("--restarts", type=int, default=3, help="kill -9 restarts per server and stage")
    ap.add_argument("--base-port", type=int, default=24200, help="etcd uses this and +1, cairnd +2 and +3")
    ap.add_argument("--quota", type=int, default=8 << 30, help="--quota-backend-bytes for both servers")
    ap.add_argument("--start-timeout", type=float, default=600, help="seconds a (re)start may take")
    ap.add_argument("--data-root", default=os.path.join(REPO, "target", "bench-data"))
    ap.add_argument("--json-out", default=os.path.join(REPO, "target", "bench-data", "db_size.json"))
    ap.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    ap.add_argument("--bin-dir", default=R, help="where cairnd, cairnctl and cairn-bench are (default target/release)")
    a = ap.parse_args()
    R = os.path.abspath(a.bin_dir)
    if a.keys < 1 or a.restarts < 1:
        raise SystemExit("--keys and --restarts must be at least 1")
    require(R, ("cairnd", "cairn-bench", "cairnctl"), ("etcd", "etcdctl"))
    busy = [p for p in range(a.base_port, a.base_port + 4) if port_busy(p)]
    if busy:
        raise SystemExit(f"ports in use: {busy}; pick another --base-port")
    root, fs = real_fs_dir(a.data_root, "db-size-")
    servers = [Server("etcd", root, a.base_port, a.quota), Server("cairn", root, a.base_port + 2, a.quota)]
    exit_on_signals()
    res = {"keys": a.keys, "order": a.order, "key_bytes": KEY_BYTES, "value_bytes": VALUE_BYTES,
           "clients": CLIENTS, "quota_backend_bytes": a.quota, "kernel": platform.release(), "fs": fs,
           "cores": os.cpu_count(), "bin_dir": R,
           "etcd_version": etcd_version(),
           "sizes": [], "loads": [], "restarts": [], "compaction": [], "probe_secs": {}}
    try:
        for s in servers:
            s.spawn()
            s.wait_healthy(a.start_timeout)
        for s in servers:
            res["probe_secs"][s.kind] = probe_cost(s)
        for s in servers:
            res["loads"].append(dict(load(s, a.keys, True, 1000), pass_=0))
        for s in servers:
            res["sizes"].append(s.sizes("loaded"))
        for i, seed in enumerate(SEEDS, 1):
            for s in servers:
                res["loads"].append(dict(load(s, a.keys, a.order == "seq", seed), pass_=i))
        for s in servers:
            res["sizes"].append(s.sizes("overwritten"))
        for _ in range(a.restarts):
            for s in servers:
                res["restarts"].append(restart(s, "before compaction", a.start_timeout))
        for s in servers:
            res["sizes"].append(s.sizes("restarted"))
        for s in servers:
            res["compaction"].append(compact_defrag(s, res["sizes"]))
            res["sizes"].append(s.sizes("defragmented"))
        for _ in range(a.restarts):
            for s in servers:
                res["restarts"].append(restart(s, "after defrag", a.start_timeout))
        for s in servers:
            res["sizes"].append(s.sizes("restarted after defrag"))
    finally:
        for s in servers:
            s.kill9()
        res["log_findings"] = {s.kind: benchlib.log_findings(s.log_path) for s in servers}
        for kind, lines in res["log_findings"].items():
            if lines:
                log(f"{kind} log: {len(lines)} warning/error lines, e.g.:\n  " + "\n  ".join(lines[:5]))
        os.makedirs(os.path.dirname(a.json_out) or ".", exist_ok=True)
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)
        if a.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(res)


def report(res):
    p = print
    by = {(r["server"], r["stage"]): r for r in res["sizes"]}
    comp = {r["server"]: r for r in res["compaction"]}
    n = res["keys"]
    p(f"{n} keys of {res['key_bytes']} B, values of {res['value_bytes']} B, {res['clients']} clients; "
      f"first load in key order, overwrites in {res['order']} key order; {res['etcd_version']}; "
      f"data dirs on {res['fs']}; {res['cores']} cores, Linux {res['kernel']}.\n")
    p("| stage | revision | etcd db file MiB | etcd dbSize / in use MiB | Cairn db file MiB | "
      "Cairn dbSize / in use MiB | Cairn/etcd (file) | data dir MiB etcd / Cairn |")
    p("|---|---|---|---|---|---|---|---|")
    stages = (("loaded", f"load {n} keys"), ("overwritten", "+ 3 overwrites of N"),
              ("compacted", "compaction --physical"), ("defragmented", "defrag"))
    for st, label in stages:
        e, c = by.get(("etcd", st)), by.get(("cairn", st))
        if not (e and c):
            continue
        c_file, c_status, note = c["db_file_bytes"], f"{c['db_size'] / MIB:.0f} / {c['db_size_in_use'] / MIB:.0f}", ""
        if st == "compacted":
            # Cairn answers the compaction before its page file has dropped
            # the records; the defrag queues behind that commit, and its log
            # line says how large the file was by then.
            c_file = comp.get("cairn", {}).get("file_before_defrag_bytes", c_file)
            c_status, note = "-", "¹"
        p(f"| {label} | {c['revision']} | {e['db_file_bytes'] / MIB:.0f} | "
          f"{e['db_size'] / MIB:.0f} / {e['db_size_in_use'] / MIB:.0f} | {c_file / MIB:.0f}{note} | {c_status} | "
          f"{c_file / max(e['db_file_bytes'], 1):.2f} | {e['dir_bytes'] / MIB:.0f} / {c['dir_bytes'] / MIB:.0f} |")
    if "file_before_defrag_bytes" in comp.get("cairn", {}):
        p("\n¹ Cairn: the page file when the defrag copy began (cairnd's log), after the compaction's drops "
          "were committed.")
    p("")

    def loads(kind, passes):
        return [r for r in res["loads"] if r["server"] == kind and r["pass_"] in passes]

    def rate(kind, passes):
        return " / ".join(f"{r['puts_per_sec'] / 1e3:.1f}k" for r in loads(kind, passes))

    def fmt_restart(kind, stage):
        t = [r["secs"] for r in res["restarts"] if r["server"] == kind and r["stage"] == stage]
        if not t:
            return "-"
        return f"**{statistics.median(t) * 1e3:.0f} ms** ({', '.join(f'{x * 1e3:.0f}' for x in t)})"

    p("| step | etcd | Cairn |")
    p("|---|---|---|")
    p(f"| load N keys in order, puts/s | {rate('etcd', (0,))} | {rate('cairn', (0,))} |")
    p(f"| 3 overwrites of N, puts/s per pass | {rate('etcd', (1, 2, 3))} | {rate('cairn', (1, 2, 3))} |")
    if len(comp) == 2:
        e, c = comp["etcd"], comp["cairn"]
        p(f"| `compaction --physical {c['revision']}`, s | {e['compaction_secs']:.1f} | {c['compaction_secs']:.1f} |")
        copy = f" (copy {c['copy_ms'] / 1e3:.1f})" if "copy_ms" in c else ""
        p(f"| `defrag`, s | {e['defrag_secs']:.1f} | {c['defrag_secs']:.1f}{copy} |")
    for stage in ("before compaction", "after defrag"):
        p(f"| restart after kill -9, {stage}: median (runs) | {fmt_restart('etcd', stage)} | "
          f"{fmt_restart('cairn', stage)} |")
    p(f"| one `endpoint health` probe on a running server | {res['probe_secs']['etcd'] * 1e3:.0f} ms | "
      f"{res['probe_secs']['cairn'] * 1e3:.0f} ms |")
    for st, label in (("overwritten", "RSS after the overwrites"), ("restarted", "RSS after a restart with history"),
                      ("defragmented", "RSS after defrag (peak since the restart)"),
                      ("restarted after defrag", "RSS after a restart, defragmented")):
        e, c = by.get(("etcd", st)), by.get(("cairn", st))
        if e and c:
            peak = st == "defragmented"
            p(f"| {label}, MiB | {e['rss_mib']:.0f}" + (f" ({e['peak_rss_mib']:.0f})" if peak else "") +
              f" | {c['rss_mib']:.0f}" + (f" ({c['peak_rss_mib']:.0f})" if peak else "") + " |")


if __name__ == "__main__":
    main()
