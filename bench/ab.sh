#!/usr/bin/env bash
# A/B of two STA builds on the same machine in the same run: 1 -> 1 and
# 3 -> 1 downloads of one file over 127.0.0.1, alternating the builds
# round by round, medians printed side by side. For checking that a change
# keeps STA's speed (the figures of sta-bench are against libtorrent).
#
#   bash bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [SIZE_MIB]
#
# Each BIN_DIR holds sta-trackerd, sta-peerd and sta (e.g. target/release
# of two checkouts). Files live in /dev/shm; every process is stopped by
# its pid, also on Ctrl-C.
set -euo pipefail

old=${1:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [SIZE_MIB]}
new=${2:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS] [SIZE_MIB]}
rounds=${3:-3}
size_mib=${4:-1024}
for d in "$old" "$new"; do
    for b in sta-trackerd sta-peerd sta; do
        [[ -x $d/$b ]] || { echo "ab.sh: $d/$b is missing (cargo build --release there)" >&2; exit 2; }
    done
done

work=$(mktemp -d /dev/shm/sta-ab-XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

head -c $((size_mib << 20)) /dev/urandom >"$work/ab.bin"
ticks=$(getconf CLK_TCK)

# CPU seconds (user + system) of a live pid.
cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }

# Waits for a line matching $2 in file $1 (at most 60 s).
wait_line() {
    for _ in $(seq 600); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "ab.sh: timed out waiting for '$2' in $1" >&2
    return 1
}

# start_peerd BIN DIR [--share FILE]: sets $peer_pid.
start_peerd() {
    local bin=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    "$bin/sta-peerd" --tracker "127.0.0.1:$tport" --listen 127.0.0.1:0 --dir "$dir" \
        --log-level warn "$@" >"$dir/out" 2>"$dir/err" &
    peer_pid=$!
    pids+=("$peer_pid")
    wait_line "$dir/out" "^control on"
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# one BIN SEEDERS ROUND: prints "seconds leecher_cpu_per_gib seeders_cpu_per_gib".
one() {
    local bin=$1 n=$2 r=$3 dir="$work/run-$r-$n-$(basename "$(dirname "$bin")")"
    mkdir -p "$dir"
    "$bin/sta-trackerd" --listen 127.0.0.1:0 --log-level warn >"$dir/t.out" 2>"$dir/t.err" &
    local tpid=$!
    pids+=("$tpid")
    wait_line "$dir/t.out" "listening on"
    tport=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$dir/t.out" | head -1)
    local seeds=()
    for i in $(seq "$n"); do
        start_peerd "$bin" "$dir/s$i" --share "$work/ab.bin"
        seeds+=("$peer_pid")
    done
    for i in $(seq "$n"); do
        "$bin/sta" --dir "$dir/s$i" status | grep -q seeding || {
            for _ in $(seq 300); do
                "$bin/sta" --dir "$dir/s$i" status | grep -q seeding && break
                sleep 0.1
            done
        }
    done
    sleep 1 # let every seeder's announce reach the tracker
    local seed_cpu0=0
    for p in "${seeds[@]}"; do seed_cpu0=$(echo "$seed_cpu0 + $(cpu_of "$p")" | bc -l); done
    local t0
    t0=$(date +%s.%N)
    start_peerd "$bin" "$dir/l"
    local lpid=$peer_pid
    "$bin/sta" --dir "$dir/l" get ab.bin >/dev/null 2>&1
    local t1
    t1=$(date +%s.%N)
    local lcpu seed_cpu=0
    lcpu=$(cpu_of "$lpid")
    for p in "${seeds[@]}"; do seed_cpu=$(echo "$seed_cpu + $(cpu_of "$p")" | bc -l); done
    cmp -s "$work/ab.bin" "$dir/l/ab.bin" || { echo "ab.sh: download differs" >&2; exit 1; }
    local gib
    gib=$(echo "$size_mib / 1024" | bc -l)
    printf '%.3f %.3f %.3f\n' "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$lcpu / $gib" | bc -l)" "$(echo "($seed_cpu - $seed_cpu0) / $gib" | bc -l)"
    stop_pid "$lpid"
    for p in "${seeds[@]}"; do stop_pid "$p"; done
    stop_pid "$tpid"
    rm -rf "$dir"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

echo "A/B: OLD=$old NEW=$new, $rounds round(s), ${size_mib} MiB, /dev/shm, 127.0.0.1"
for n in 1 3; do
    declare -A res=()
    for r in $(seq "$rounds"); do
        for side in old new; do
            bin=${!side}
            line=$(one "$bin" "$n" "$r")
            res[$side]+="$line"$'\n'
            read -r s l c <<<"$line"
            printf '  %d->1 round %d %-3s %6.3f s  %7.1f MB/s  leecher %.2f s/GiB  seeders %.2f s/GiB\n' \
                "$n" "$r" "$side" "$s" "$(echo "$size_mib * 1.048576 / $s" | bc -l)" "$l" "$c"
        done
    done
    for side in old new; do
        s=$(printf '%s' "${res[$side]}" | awk '{print $1}' | median)
        l=$(printf '%s' "${res[$side]}" | awk '{print $2}' | median)
        c=$(printf '%s' "${res[$side]}" | awk '{print $3}' | median)
        printf '%d->1 median %-3s %6.3f s  %7.1f MB/s  leecher %.2f s/GiB  seeders %.2f s/GiB\n' \
            "$n" "$side" "$s" "$(echo "$size_mib * 1.048576 / $s" | bc -l)" "$l" "$c"
    done
    unset res
done
