#!/usr/bin/env bash
# The cost of a private swarm (issue 17): a 1 -> 1 download of one file
# over 127.0.0.1, plain and TLS (tracker session and peer link) in the
# same run, round by round, with the seeder's and the leecher's CPU
# seconds per GiB.
#
#   bash bench/tls.sh [BIN_DIR] [ROUNDS] [SIZE_MIB]
#
# BIN_DIR holds sta-trackerd, sta-peerd and sta [default: target/release].
# Files live in /dev/shm; every process is stopped by its pid; each get
# is bounded by a 300 s timeout.
set -euo pipefail

bin=${1:-target/release}
rounds=${2:-2}
size_mib=${3:-1024}
bin=$(cd "$bin" && pwd)
work=$(mktemp -d /dev/shm/sta-tls-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
"$bin/sta" ca init ca >/dev/null
"$bin/sta" ca issue --name 127.0.0.1 ca >/dev/null
"$bin/sta" ca issue --name seed --name '*' ca >/dev/null
"$bin/sta" ca issue --name leech --name '*' ca >/dev/null
head -c $((size_mib << 20)) /dev/urandom >file.bin
hz=$(getconf CLK_TCK)

# User and system clock ticks of process $1.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

tls_flags() { echo "--tls-cert ca/$1.crt --tls-key ca/$1.key --tls-ca ca/ca.crt"; }

run() { # LABEL yes|no
    local t_flags="" s_flags="" l_flags=""
    if [[ $2 == yes ]]; then
        t_flags=$(tls_flags 127.0.0.1) s_flags=$(tls_flags seed) l_flags=$(tls_flags leech)
    fi
    rm -rf s l && mkdir s l
    # shellcheck disable=SC2086
    "$bin/sta-trackerd" --listen 127.0.0.1:0 --udp-listen off $t_flags >t.out 2>t.err &
    local t=$!
    pids=("$t")
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's/^listening on //p' t.out)
        [[ -n $addr ]] && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    "$bin/sta-peerd" --listen 127.0.0.1:0 --tracker "$addr" --dir s --share file.bin $s_flags >s.out 2>s.err &
    local s=$!
    # shellcheck disable=SC2086
    "$bin/sta-peerd" --listen 127.0.0.1:0 --tracker "$addr" --dir l $l_flags >l.out 2>l.err &
    local l=$!
    pids=("$t" "$s" "$l")
    for _ in $(seq 1500); do
        "$bin/sta" --dir s status 2>/dev/null | grep -q seeding && break
        sleep 0.2
    done
    local c0 c1 d0 d1 t0 t1
    c0=$(cpu "$s") d0=$(cpu "$l")
    t0=$(date +%s.%N)
    timeout 300 "$bin/sta" --dir l get file.bin >/dev/null 2>&1
    t1=$(date +%s.%N)
    c1=$(cpu "$s") d1=$(cpu "$l")
    cmp -s file.bin l/file.bin || echo "$1: the copy differs" >&2
    awk -v l="$1" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v d0="$d0" -v d1="$d1" \
        -v hz="$hz" -v mib="$size_mib" 'BEGIN {
            s = t1 - t0; g = 1024 / mib / hz
            printf "%-6s %6.2f s  %7.1f MiB/s  seeder CPU %5.2f s/GiB  leecher CPU %5.2f s/GiB\n",
                l, s, mib / s, (c1 - c0) * g, (d1 - d0) * g }'
    kill "$l" "$s" "$t"
    wait "$l" "$s" "$t" 2>/dev/null || true
    pids=()
}

for _ in $(seq "$rounds"); do
    run plain no
    run tls yes
done
