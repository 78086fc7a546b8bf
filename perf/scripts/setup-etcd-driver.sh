#!/usr/bin/env bash
# Installs what `cairn-bench --driver etcd` needs on a fresh Debian machine:
#   - protobuf-compiler: `protoc`, run by the build script of the
#     `etcd-client` crate (it generates etcd's gRPC code at build time);
#   - etcd-server, etcd-client: an etcd (3.4 on Debian 12) to compare with,
#     and etcdctl (`etcdctl check perf`).
# Then builds cairn-bench with the driver. Run as root (or with sudo).
#
#   perf/scripts/setup-etcd-driver.sh            # install + build
#   perf/scripts/setup-etcd-driver.sh --no-build # install only
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need=()
command -v protoc >/dev/null || need+=(protobuf-compiler)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ "${#need[@]}" -gt 0 ]; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
protoc --version

if [ "${1:-}" != "--no-build" ]; then
    cd "$(dirname "$0")/../.."
    cargo build --release -p cairn-perf --features etcd
    echo "built target/release/cairn-bench with --driver etcd"
fi
