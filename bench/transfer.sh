#!/usr/bin/env bash
# File transfer: STA against libtorrent on the same file, in the same run
# (bench/src/bin/sta-bench/ drives both; bench/lt_peer.py is the
# libtorrent side). Builds in release mode, then runs `sta-bench transfer` with the
# arguments given, e.g.
#
#   bash bench/transfer.sh                          # 1 GiB, 3 rounds, 50 leechers
#   bash bench/transfer.sh --size 256M --rounds 1   # a quick look
#
# `target/release/sta-bench --help` lists every option. Needs
# python3-libtorrent for /usr/bin/python3 (or --python PATH).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
prev=""
for a in "$@"; do
    if [ "$prev" = --python ]; then PY=$a; fi
    prev=$a
done
if ! "$PY" -c 'import libtorrent' 2>/dev/null; then
    echo "bench/transfer.sh: $PY cannot import libtorrent (Debian: apt-get install -y python3-libtorrent)" >&2
    exit 1
fi

cargo build --release -p sta --bin sta-peerd --bin sta-trackerd -p sta-bench --bin sta-bench
exec target/release/sta-bench transfer "$@"
