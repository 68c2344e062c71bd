#!/usr/bin/env bash
# 1 GiB 1 -> 1 on loopback with the binaries in DIR (sta, sta-peerd,
# sta-trackerd): prints the wall time of `sta get` and the CPU seconds of
# the seeder (hashing the file to share it included) and of the leecher.
# For comparing two builds, alternated: `bash bench/oneone.sh target/release`.
# The source file is /dev/shm/sta-zc-src.bin, made once and kept.
set -euo pipefail
B=$1; W=$(mktemp -d /dev/shm/sta-zc-XXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"' EXIT
[ -f /dev/shm/sta-zc-src.bin ] || head -c 1073741824 /dev/urandom > /dev/shm/sta-zc-src.bin
mkdir -p $W/s $W/l
$B/sta-trackerd --listen 127.0.0.1:0 --udp-listen off --log-level warn > $W/t.out 2>/dev/null & pids+=($!)
sleep 0.2; T=$(sed -n 's/^listening on //p' $W/t.out)
$B/sta-peerd --tracker $T --listen 127.0.0.1:0 --dir $W/s --share /dev/shm/sta-zc-src.bin --log-level warn > $W/s.out 2>/dev/null & pids+=($!)
$B/sta-peerd --tracker $T --listen 127.0.0.1:0 --dir $W/l --log-level warn > $W/l.out 2>/dev/null & pids+=($!)
until grep -q "control on" $W/s.out $W/l.out 2>/dev/null && [ $(grep -c "control on" $W/s.out $W/l.out | grep -c ":1") = 2 ]; do sleep 0.1; done
until $B/sta --dir $W/l list 2>/dev/null | grep -q sta-zc-src.bin; do sleep 0.1; done
s=$(date +%s.%N); $B/sta --dir $W/l get sta-zc-src.bin > /dev/null 2>&1; e=$(date +%s.%N)
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
tk=$(getconf CLK_TCK)
echo "$(echo "$e - $s" | bc) s, seeder CPU $(echo "scale=2; $(cpu ${pids[1]})/$tk" | bc) s, leecher CPU $(echo "scale=2; $(cpu ${pids[2]})/$tk" | bc) s"
