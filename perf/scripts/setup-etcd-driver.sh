#!/usr/bin/env bash
# Installs etcd 3.4 to compare Cairn with, on a fresh Debian machine:
# etcd-server (`etcd`) and etcd-client (`etcdctl`, whose `check perf` is an
# independent load generator). The package's service is not started: the
# tests and benchmarks start their own etcd on free 127.0.0.1 ports.
# `cairn-bench --driver etcd` needs nothing more (the etcd-client crate's
# protoc comes vendored, see perf/Cargo.toml). tools/setup runs this
# (best effort) before the test suite. Run as root (or with sudo).
#
#   perf/scripts/setup-etcd-driver.sh            # install + build cairn-bench
#   perf/scripts/setup-etcd-driver.sh --no-build # install only
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ "${#need[@]}" -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    # Keep the package from starting a system etcd on 127.0.0.1:2379
    # (policy-rc.d exit 101: "action forbidden"), unless a policy exists.
    policy=/usr/sbin/policy-rc.d
    made_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod +x "$policy"
        made_policy=1
    fi
    status=0
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null || status=$?
    if [ -n "$made_policy" ]; then $SUDO rm -f "$policy"; fi
    [ "$status" -eq 0 ] || exit "$status"
fi

if [ "${1:-}" != "--no-build" ]; then
    cd "$(dirname "$0")/../.."
    cargo build --release -p cairn-perf
    echo "built target/release/cairn-bench (with --driver etcd)"
fi
