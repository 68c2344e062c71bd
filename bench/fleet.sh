#!/usr/bin/env bash
# One sta-trackerd holding a fleet: SESSIONS concurrent TCP sessions and
# about ENTRIES (peer, file) entries, with its memory reported.
#
# Two runs against fresh trackers, same files (same --seed):
#   meta:  every session connects and says hello, each file gets one
#          holder: the tracker holds the sessions and the metadata;
#   fleet: the same sessions and files, each file held by 1..MAX_PEERS
#          sessions (about ENTRIES entries in all).
# Bytes per entry, metadata excluded = (RSS after fleet setup - RSS after
# meta setup) / (fleet entries - meta entries): sessions and info dicts
# weigh the same in both runs. Each run then plays STEADY seconds of the
# usual mix, one request in flight per session, to show the fleet served.
#
# Environment (all optional):
#   SESSIONS=50000 FILES=20200 MAX_PEERS=99  (about 1,000,000 entries)
#   MIN_PIECES=16 MAX_PIECES=64              (smaller info dicts: setup
#                                             sends one per entry)
#   SOURCE_IPS=4    sessions come from 127.0.0.1 .. 127.0.0.N
#   STEADY=5 SERVER_CPU=1 GEN_CPU=0 OUT=target/bench/fleet
#   PRIO=auto       rt (SCHED_FIFO 10 for tracker and generator, so that
#                   other work on a shared machine does not set the pace),
#                   nice, or none; auto = rt when allowed
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-50000}
FILES=${FILES:-20200}
MAX_PEERS=${MAX_PEERS:-99}
MIN_PIECES=${MIN_PIECES:-16}
MAX_PIECES=${MAX_PIECES:-64}
SOURCE_IPS=${SOURCE_IPS:-4}
STEADY=${STEADY:-5}
SERVER_CPU=${SERVER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
OUT=${OUT:-target/bench/fleet}
TARGET=${CARGO_TARGET_DIR:-target}
LOADGEN=$TARGET/release/sta-loadgen
TRACKERD=${TRACKERD:-$TARGET/release/sta-trackerd}

log() { printf '%s\n' "$*" >&2; }

PRIO=${PRIO:-auto}
if [ "$PRIO" = auto ]; then
    if [ "$(id -u)" = 0 ] && chrt -f 10 true 2>/dev/null; then PRIO=rt; else PRIO=none; fi
fi
case $PRIO in
    rt) RUN=(chrt -f 10) ;;
    nice) RUN=(nice -n -10) ;;
    none) RUN=() ;;
    *) log "PRIO must be auto, rt, nice or none"; exit 1 ;;
esac

cargo build --release -p sta --bin sta-trackerd -p sta-bench --bin sta-loadgen

# Each session is a descriptor on both sides (the generator's and the
# tracker's), plus some to spare.
FDS=$((SESSIONS + 1000))
if [ "$(ulimit -n)" -lt "$FDS" ]; then
    ulimit -n "$FDS" 2>/dev/null || {
        # Raising the hard limit takes CAP_SYS_RESOURCE (root in a
        # container may lack it).
        log "cannot raise the descriptor limit to $FDS (ulimit -Hn is $(ulimit -Hn)): lower SESSIONS"
        exit 1
    }
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.txt
: > "$RESULTS"
SERVER_PID=""

# Stops the tracker this script started, by its pid.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT

start_sta() {
    "${RUN[@]}" taskset -c "$SERVER_CPU" "$TRACKERD" --listen 127.0.0.1:0 --udp-listen off --log-level warn \
        --max-connections $((SESSIONS + 100)) --idle-timeout 900 \
        > "$OUT/sta.out" 2> "$OUT/sta.err" &
    SERVER_PID=$!
    STA_ADDR=""
    for _ in $(seq 200); do
        STA_ADDR=$(sed -n 's/^listening on //p' "$OUT/sta.out")
        [ -n "$STA_ADDR" ] && return 0
        sleep 0.02
    done
    log "sta-trackerd did not print its address"
    cat "$OUT/sta.err" >&2
    exit 1
}

# run NAME MAX-PEERS
run() {
    local name=$1 peers=$2
    start_sta
    log "== $name: $SESSIONS sessions, $FILES files, 1..$peers holders each"
    "${RUN[@]}" taskset -c "$GEN_CPU" "$LOADGEN" --tcp "$STA_ADDR" --tracker-pid "$SERVER_PID" \
        --sessions "$SESSIONS" --source-ips "$SOURCE_IPS" --files "$FILES" \
        --max-peers "$peers" --min-pieces "$MIN_PIECES" --max-pieces "$MAX_PIECES" \
        --seconds "$STEADY" --window 1 --setup-window 4 \
        2>&1 | tee "$OUT/$name.txt"
    sed -n "s/^RESULT /run=$name /p" "$OUT/$name.txt" >> "$RESULTS"
    stop_server
}

run meta 1
run fleet "$MAX_PEERS"

field() { grep "^run=$1 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
{
    echo
    echo "sta-trackerd holding a fleet ($(date -u +%F), $(nproc) CPUs, $(uname -r), priority $PRIO)"
    awk -v s="$SESSIONS" \
        -v me="$(field meta entries)" -v fe="$(field fleet entries)" \
        -v mr="$(field meta rss_after_kb)" -v fr="$(field fleet rss_after_kb)" \
        -v b="$(field fleet rss_before_kb)" -v hwm="$(field fleet hwm_kb)" \
        -v srps="$(field fleet setup_rps)" -v rps="$(field fleet rps)" \
        -v p99="$(field fleet p99_us)" -v err="$(field fleet errors)" \
        -v bits="$(field fleet bitfield_per_entry)" 'BEGIN {
        printf "  sessions held:                      %d (each said hello, announced, and was served)\n", s
        printf "  (peer, file) entries:               %d\n", fe
        printf "  RSS: empty %.1f MiB, sessions + metadata %.1f MiB, fleet %.1f MiB (peak %.1f MiB)\n", b / 1024, mr / 1024, fr / 1024, hwm / 1024
        printf "  bytes per entry, metadata excluded: %.1f  = (%d - %d) kB / (%d - %d) entries\n", (fr - mr) * 1024 / (fe - me), fr, mr, fe, me
        printf "    of which announced bitfields (partial holders only), on average: %.1f; the rest: %.1f\n", bits, (fr - mr) * 1024 / (fe - me) - bits
        printf "  setup %.0f announces/s; steady %.0f req/s, p99 %.0f us, errors %d\n", srps, rps, p99, err
    }'
} | tee "$OUT/summary.txt"
