#!/usr/bin/env bash
# Swarm on emulated hosts: STA against libtorrent, alternated, on network
# namespaces made by bench/netns.sh (bench/src/bin/sta-bench/swarm*.rs
# drives both; bench/lt_peer.py is the libtorrent side). Builds in release
# mode, then runs `sta-bench swarm` with the arguments given, e.g.
#
#   bash bench/swarm.sh                          # scenarios a-d, 3 runs each
#   bash bench/swarm.sh --scenarios a --runs 1   # a quick look
#   bash bench/swarm.sh --kill-trackers          # 3 trackers, each killed in turn
#
# `target/release/sta-bench swarm --help` lists every option. Needs root,
# iproute2 (ip netns, tc with tbf) and python3-libtorrent for
# /usr/bin/python3 (or --python PATH; not for --kill-trackers).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
KILL=""
prev=""
for a in "$@"; do
    if [ "$prev" = --python ]; then PY=$a; fi
    if [ "$a" = --kill-trackers ]; then KILL=1; fi
    prev=$a
done
if [ "$(id -u)" != 0 ]; then
    echo "bench/swarm.sh: needs root (network namespaces, veth pairs, tc)" >&2
    exit 1
fi
for tool in ip tc; do
    command -v "$tool" >/dev/null || {
        echo "bench/swarm.sh: needs \`$tool\` (iproute2)" >&2
        exit 1
    }
done
if [ -z "$KILL" ] && ! "$PY" -c 'import libtorrent' 2>/dev/null; then
    echo "bench/swarm.sh: $PY cannot import libtorrent (Debian: apt-get install -y python3-libtorrent)" >&2
    exit 1
fi

cargo build --release -p sta --bin sta-peerd --bin sta-trackerd -p sta-bench --bin sta-bench
exec "${CARGO_TARGET_DIR:-target}/release/sta-bench" swarm "$@"
