#!/usr/bin/env bash
# STA's tracker against opentracker, one server core each, same population,
# same load generator (bench/src/bin/sta-loadgen/): STA over its TCP protocol,
# opentracker over the BitTorrent UDP tracker protocol (BEP 15); then the
# same BEP 15 announce workload against STA, opentracker and, if installed,
# aquatic_udp (AQUATIC=path; bench/README.md says how to build it).
#
# Rounds alternate STA (TCP), STA (UDP), opentracker, aquatic_udp, STA, ...
# each against a freshly started server, and the medians are reported with
# their ratios.
# Then STA is driven in open loop at half its median peak rate, for its p99
# (and opentracker at half its own, for comparison).
#
# Environment (all optional):
#   ROUNDS=3 DURATION=10    rounds, seconds of steady load per run
#   SERVER_CPU=1 GEN_CPU=0  CPUs for the server and for the generator
#   PRIO=auto               rt (SCHED_FIFO 10 for server and generator: the
#                           only way to measure sub-ms latency on a busy
#                           machine), nice, or none; auto = rt when allowed
#   OT_PORT=16969           opentracker's TCP and UDP port on 127.0.0.1
#   STA_UDP_PORT=16970      STA's BEP 15 port on 127.0.0.1
#   AQ_PORT=16971           aquatic_udp's port on 127.0.0.1
#   AQUATIC=...             the aquatic_udp binary (default: on PATH, or
#                           $CARGO_TARGET_DIR/aquatic/bin/aquatic_udp); none: skipped
#   GEN_ARGS=...            extra sta-loadgen flags for every run
#   TRACKERD=...            the sta-trackerd to measure (default: this build)
#   OUT=target/bench        where outputs go
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
PRIO=${PRIO:-auto}
OT_PORT=${OT_PORT:-16969}
STA_UDP_PORT=${STA_UDP_PORT:-16970}
AQ_PORT=${AQ_PORT:-16971}
OUT=${OUT:-target/bench}
read -r -a EXTRA <<< "${GEN_ARGS:-}"

TARGET=${CARGO_TARGET_DIR:-target}
LOADGEN=$TARGET/release/sta-loadgen
TRACKERD=${TRACKERD:-$TARGET/release/sta-trackerd}
AQUATIC=${AQUATIC:-$(command -v aquatic_udp || echo "$TARGET/aquatic/bin/aquatic_udp")}
[ -x "$AQUATIC" ] || AQUATIC=""

log() { printf '%s\n' "$*" >&2; }

cargo build --release -p sta --bin sta-trackerd -p sta-bench --bin sta-loadgen
OT=$(command -v opentracker || true)
if [ -z "$OT" ]; then
    log "opentracker is not installed (Debian: apt-get install -y opentracker)"
    exit 1
fi

if [ "$PRIO" = auto ]; then
    if [ "$(id -u)" = 0 ] && chrt -f 10 true 2>/dev/null; then PRIO=rt; else PRIO=none; fi
fi
case $PRIO in
    rt) RUN=(chrt -f 10) ;;
    nice) RUN=(nice -n -10) ;;
    none) RUN=() ;;
    *) log "PRIO must be auto, rt, nice or none"; exit 1 ;;
esac

mkdir -p "$OUT/ot"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.txt
: > "$RESULTS"
SERVER_PID=""

# Stops the server this script started, by its pid.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT

# Waits until the pid runs the named program (after chrt and taskset exec it).
wait_exec() {
    for _ in $(seq 100); do
        [ "$(cat "/proc/$SERVER_PID/comm" 2>/dev/null)" = "$1" ] && return 0
        sleep 0.02
    done
    log "$1 did not start"
    exit 1
}

start_sta() {
    "${RUN[@]}" taskset -c "$SERVER_CPU" "$TRACKERD" --listen 127.0.0.1:0 --log-level warn \
        --udp-listen "127.0.0.1:$STA_UDP_PORT" \
        > "$OUT/sta.out" 2> "$OUT/sta.err" &
    SERVER_PID=$!
    wait_exec sta-trackerd
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

# The Debian build of opentracker only tracks whitelisted info hashes:
# whitelist the population's (a lookup per announce, a negligible cost).
# opentracker chroots into -d when run as root, so the path is inside it.
"$LOADGEN" --write-hashes "$OUT/ot/whitelist.txt" "${EXTRA[@]}" 2> /dev/null
OT_ARGS=(-i 127.0.0.1 -p "$OT_PORT" -P "$OT_PORT" -d "$OUT/ot")
if "$OT" -h 2>&1 | grep -q -- '-w '; then
    if [ "$(id -u)" = 0 ]; then OT_ARGS+=(-w /whitelist.txt); else OT_ARGS+=(-w "$OUT/ot/whitelist.txt"); fi
fi

start_ot() {
    if [ -n "$(ss -Hlun "sport = :$OT_PORT")" ]; then
        log "UDP port $OT_PORT is busy: set OT_PORT"
        exit 1
    fi
    "${RUN[@]}" taskset -c "$SERVER_CPU" "$OT" "${OT_ARGS[@]}" > "$OUT/ot.out" 2>&1 &
    SERVER_PID=$!
    wait_exec opentracker
    for _ in $(seq 200); do
        [ -n "$(ss -Hlun "sport = :$OT_PORT")" ] && break
        sleep 0.02
    done
    sleep 0.5 # the whitelist is loaded by a thread of its own
}

# aquatic_udp: one socket worker (one core, as the others), up to 50 peers
# per answer (as opentracker and STA give), no access list.
cat > "$OUT/aquatic.toml" <<EOF
socket_workers = 1
log_level = "error"
[network]
address = "127.0.0.1:$AQ_PORT"
[protocol]
max_response_peers = 50
EOF

start_aquatic() {
    "${RUN[@]}" taskset -c "$SERVER_CPU" "$AQUATIC" -c "$OUT/aquatic.toml" > "$OUT/aquatic.out" 2>&1 &
    SERVER_PID=$!
    wait_exec aquatic_udp
    for _ in $(seq 200); do
        [ -n "$(ss -Hlun "sport = :$AQ_PORT")" ] && return 0
        sleep 0.02
    done
    log "aquatic_udp did not bind its port"
    cat "$OUT/aquatic.out" >&2
    exit 1
}

# run NAME LOADGEN-ARGS...: one generator run, its RESULT line kept.
run() {
    local name=$1
    shift
    log "== $name"
    "${RUN[@]}" taskset -c "$GEN_CPU" "$LOADGEN" --seconds "$DURATION" "${EXTRA[@]}" "$@" \
        2>&1 | tee "$OUT/$name.txt"
    sed -n "s/^RESULT /run=$name /p" "$OUT/$name.txt" >> "$RESULTS"
}

for r in $(seq "$ROUNDS"); do
    start_sta
    run "sta-$r" --tcp "$STA_ADDR" --tracker-pid "$SERVER_PID"
    stop_server
    start_sta
    run "udpsta-$r" --udp "127.0.0.1:$STA_UDP_PORT" --tracker-pid "$SERVER_PID"
    stop_server
    start_ot
    run "opentracker-$r" --udp "127.0.0.1:$OT_PORT" --tracker-pid "$SERVER_PID"
    stop_server
    if [ -n "$AQUATIC" ]; then
        start_aquatic
        run "aquatic-$r" --udp "127.0.0.1:$AQ_PORT" --tracker-pid "$SERVER_PID"
        stop_server
    fi
done

# field RUNS KEY: the values of KEY in the RESULT lines of the runs whose
# name matches the regex RUNS.
field() {
    grep "^run=$1 " "$RESULTS" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
median() {
    field "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

STA_PEAK=$(median 'sta-[0-9]*' rps)
OT_PEAK=$(median 'opentracker-[0-9]*' rps)

# Burst 1: every request alone on its session, the hardest shape for a
# TCP server (one read and one write per request). Burst 8: requests come
# eight at a time from a session, the shape of the closed-loop peak.
for burst in 1 8; do
    start_sta
    run "sta-half-b$burst" --tcp "$STA_ADDR" --tracker-pid "$SERVER_PID" \
        --rate $((STA_PEAK / 2)) --burst "$burst"
    stop_server
done
start_ot
run opentracker-half --udp "127.0.0.1:$OT_PORT" --tracker-pid "$SERVER_PID" --rate $((OT_PEAK / 2))
stop_server

{
    echo
    echo "STA (TCP, realistic mix) vs opentracker (UDP announces): medians of $ROUNDS rounds,"
    echo "$DURATION s each, server on CPU $SERVER_CPU, generator on CPU $GEN_CPU, priority $PRIO"
    echo
    printf '%-34s %14s %14s %8s\n' "" STA opentracker STA/OT
    row() {
        local label=$1 key=$2 scale=$3 s o
        s=$(median 'sta-[0-9]*' "$key")
        o=$(median 'opentracker-[0-9]*' "$key")
        awk -v l="$label" -v s="$s" -v o="$o" -v k="$scale" 'BEGIN {
            r = (o + 0 != 0) ? sprintf("%.2f", s / o) : "-"
            printf "%-34s %14.*f %14.*f %8s\n", l, k, s, k, o, r }'
    }
    row "requests/s" rps 0
    row "server CPU seconds" cpu_s 2
    row "requests per server CPU-second" req_per_cpu_s 0
    row "p50 latency (us)" p50_us 0
    row "p99 latency (us)" p99_us 0
    row "p99.9 latency (us)" p999_us 0
    row "setup: announces/s" setup_rps 0
    row "setup: server CPU seconds" setup_cpu_s 2
    row "peak RSS (kB)" hwm_kb 0
    row "bytes per (peer, file) entry" bytes_per_entry 0
    row "server threads" threads 0
    row "generator CPU seconds" gen_cpu_s 2
    echo
    echo "The same BEP 15 announce workload (8 in flight per socket, 16 sockets): medians of $ROUNDS rounds"
    echo
    printf '%-34s %14s %14s %14s %8s\n' "" STA-UDP opentracker aquatic_udp STA/OT
    row3() {
        local label=$1 key=$2 scale=$3 s o a
        s=$(median 'udpsta-[0-9]*' "$key")
        o=$(median 'opentracker-[0-9]*' "$key")
        a=$(median 'aquatic-[0-9]*' "$key" || true)
        awk -v l="$label" -v s="$s" -v o="$o" -v a="$a" -v k="$scale" 'BEGIN {
            r = (o + 0 != 0) ? sprintf("%.2f", s / o) : "-"
            av = (a == "") ? "-" : sprintf("%.*f", k, a)
            printf "%-34s %14.*f %14.*f %14s %8s\n", l, k, s, k, o, av, r }'
    }
    row3 "requests/s" rps 0
    row3 "server CPU seconds" cpu_s 2
    row3 "requests per server CPU-second" req_per_cpu_s 0
    row3 "p50 latency (us)" p50_us 0
    row3 "p99 latency (us)" p99_us 0
    row3 "peak RSS (kB)" hwm_kb 0
    row3 "bytes per (peer, file) entry" bytes_per_entry 0
    row3 "server threads" threads 0
    echo "  per round, requests per server CPU-second:"
    for r in $(seq "$ROUNDS"); do
        printf '    round %s: STA-UDP %s, opentracker %s, aquatic_udp %s\n' "$r" \
            "$(field "udpsta-$r" req_per_cpu_s)" "$(field "opentracker-$r" req_per_cpu_s)" \
            "$(field "aquatic-$r" req_per_cpu_s || true)"
    done
    echo
    echo "Open loop at half the median peak (latency from each request's scheduled time):"
    for n in sta-half-b1 sta-half-b8 opentracker-half; do
        awk -v n="$n" '{
            for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            printf "  %-17s %7s req/s in bursts of %s: %7s done/s, p50 %7s us, p99 %9s us, p99.9 %9s us, server CPU %s s\n",
                n, v["rate"], v["burst"], v["rps"], v["p50_us"], v["p99_us"], v["p999_us"], v["cpu_s"] }' \
            <(grep "^run=$n " "$RESULTS")
    done
} | tee "$OUT/summary.txt"
