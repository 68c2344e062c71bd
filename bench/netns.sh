#!/usr/bin/env bash
# Emulated hosts for STA: network namespaces on a private bridge, each
# host's egress shaped with tbf, so a swarm runs as on N real machines with
# an upload link of a known rate (bench/README.md, tests/netns.rs).
#
#   bench/netns.sh up N [--rate 50mbit] [--rates R1,..,RN] [--down-rate R] [--prefix P]
#   bench/netns.sh down --prefix P
#   bench/netns.sh exec --prefix P HOST CMD...
#   bench/netns.sh run N [--rate R] [--rates R1,..,RN] [--down-rate R] -- CMD...
#   bench/netns.sh watch --prefix P PID [MAX_SECONDS]
#
# Layout, for a prefix P (default `sta-PID`, PID of this script):
#
#   P-br          a namespace holding only the bridge `br0` and one veth end
#                 per host (named after the host)
#   P-h0          the tracker's host, 10.77.0.10 and fd77::10, NOT shaped
#   P-h1..P-hN    the peers' hosts, 10.77.0.(10+i) and fd77::(10+i), egress of their `eth0`
#                 shaped to --rate (or host i to the i-th rate of --rates,
#                 for links of mixed speeds); with --down-rate, the bridge
#                 side's egress towards the host is shaped too (its
#                 download cap)
#
# Every link, address and route lives in these namespaces: the root
# namespace gets nothing (veths are created inside P-br and their other
# end moved straight into the host's namespace), so runs with different
# prefixes never clash and no traffic leaves 10.77.0.0/24 (and fd77::/64) on the bridge.
#
# Only egress rate is emulated. This kernel has no sch_netem, so there is
# no delay, jitter or loss: the path latency is that of a veth (tens of
# microseconds) plus tbf's queue (at most 50 ms).
#
# Mind the CPU: every shaped byte is copied and scheduled by this machine,
# so N x rate must stay well under what it can move (about 400 Mbit/s in
# all on the 2-core development VM) or the run measures the CPU, not the
# swarm.
#
# `up` undoes what it did if it fails or is interrupted. `run` brings the
# hosts up, runs CMD (outside the namespaces: it enters them with `exec`)
# with STA_NETNS_PREFIX and STA_NETNS_HOSTS set, and tears everything down
# when CMD ends, fails or on Ctrl-C. `down` stops the processes still
# inside P's namespaces (by pid, from `ip netns pids`: only this harness
# puts processes there) and deletes the namespaces. `watch` runs `down`
# once process PID has exited (or after MAX_SECONDS, default 3600): a
# program that brings hosts up with `up` starts it, in a session of its
# own, so that the hosts go even if the program is killed before it can
# run `down` itself (tests/common/netns.rs does).
set -euo pipefail

SUBNET=10.77.0
# Each host also has fd77::(BASE+i)/64 (a unique local IPv6 address,
# without duplicate address detection so it is usable at once).
SUBNET6=fd77:
# Host i is 10.77.0.(BASE+i): room for 200 hosts below .255.
BASE=10
MAX_HOSTS=200
# tbf queue limit, as latency: how long a packet may wait before tbf drops
# it. Big enough for TCP to fill the link, small enough to keep RTTs sane.
TBF_LATENCY=50ms
# Rough capacity of this machine for shaped traffic, in bit/s (see above).
CPU_BUDGET_BITS=400000000

die() {
    echo "netns.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

need_tools() {
    [ "$(id -u)" = 0 ] || die "needs root (network namespaces, veth, tc)"
    command -v ip >/dev/null || die "needs \`ip\` (iproute2)"
    command -v tc >/dev/null || die "needs \`tc\` (iproute2)"
}

check_prefix() {
    # Namespaces are deleted by name: keep names plain and short, so a
    # stray prefix can never match something else.
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,39}$ ]] || die "bad prefix '$1' (letters, digits, '-'; at most 40)"
}

# A tc rate (`50mbit`, `800kbit`, `1gbit`, `100000bit`; also `...bps` for
# bytes per second) in bit/s, for the burst and the CPU check.
rate_bits() {
    local r=$1 n unit
    [[ $r =~ ^([0-9]+)([a-zA-Z]*)$ ]] || die "bad rate '$r' (e.g. 50mbit)"
    n=$((10#${BASH_REMATCH[1]}))
    [ "$n" -gt 0 ] || die "rate '$r' must be above 0"
    unit=${BASH_REMATCH[2],,}
    case $unit in
    "" | bit) echo $((n)) ;;
    kbit) echo $((n * 1000)) ;;
    mbit) echo $((n * 1000000)) ;;
    gbit) echo $((n * 1000000000)) ;;
    bps) echo $((n * 8)) ;;
    kbps) echo $((n * 8000)) ;;
    mbps) echo $((n * 8000000)) ;;
    *) die "bad rate unit in '$r' (bit, kbit, mbit, gbit, bps, kbps, mbps)" ;;
    esac
}

# tbf's burst in bytes: at least 10 ms at the rate (less and tbf cannot
# reach the rate with the kernel's timer granularity) and at least 32 KiB
# (less than one GSO super-packet and TCP stalls).
tbf_burst() {
    local bits=$1 b
    b=$((bits / 8 / 100))
    [ "$b" -ge 32768 ] || b=32768
    echo "$b"
}

# Our namespaces for prefix $1, from `ip netns list` (exact names only).
our_namespaces() {
    local p=$1
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${p}-(br|h[0-9]+)\$" || true
}

teardown() {
    local p=$1 ns pids pid i
    local all
    all=$(our_namespaces "$p")
    [ -n "$all" ] || return 0
    # Processes left inside: SIGTERM by pid, up to 5 s, then SIGKILL. A
    # namespace with a process in it would outlive `ip netns del`.
    pids=""
    for ns in $all; do
        pids+=" $(ip netns pids "$ns" 2>/dev/null || true)"
    done
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        local alive=""
        for pid in $pids; do
            if kill -0 "$pid" 2>/dev/null; then alive+=" $pid"; fi
        done
        pids=$alive
        [ -n "$pids" ] || break
        sleep 0.1
    done
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    # Deleting a namespace destroys its links; a veth goes with either end.
    for ns in $all; do
        ip netns del "$ns" 2>/dev/null || echo "netns.sh: could not delete $ns" >&2
    done
}

# Parses N and the shaping flags of `up` and `run` into N RATE RATES
# DOWN_RATE PREFIX; the rest (after `--`) into REST.
parse_up() {
    N=""
    RATE=50mbit
    RATES=""
    DOWN_RATE=""
    REST=()
    while [ $# -gt 0 ]; do
        case $1 in
        --rate) RATE=${2:?--rate needs a value}; shift 2 ;;
        --rates) RATES=${2:?--rates needs a value}; shift 2 ;;
        --down-rate) DOWN_RATE=${2:?--down-rate needs a value}; shift 2 ;;
        --prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
        --) shift; REST=("$@"); break ;;
        -*) die "unknown option $1" ;;
        *)
            [ -z "$N" ] || die "unexpected argument $1"
            N=$1
            shift
            ;;
        esac
    done
    [[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le $MAX_HOSTS ] ||
        die "N must be 1..$MAX_HOSTS (peer hosts; the tracker's host comes on top)"
    if [ -n "$RATES" ]; then
        local count
        count=$(tr ',' '\n' <<<"$RATES" | wc -l)
        [ "$count" -eq "$N" ] || die "--rates lists $count rates for $N hosts"
    fi
}

# Host i's upload rate (1..N): the i-th of --rates if given, else --rate.
host_rate() {
    local i=$1 rates=$2 rate=$3
    if [ -n "$rates" ]; then
        cut -d, -f"$i" <<<"$rates"
    else
        echo "$rate"
    fi
}

up() {
    local p=$1 n=$2 rate=$3 down=$4 rates=$5
    local bits dbits dburst i ns addr total=0
    # Every rate is checked before anything is made.
    local -a rate_of burst_of
    for ((i = 1; i <= n; i++)); do
        rate_of[i]=$(host_rate "$i" "$rates" "$rate")
        bits=$(rate_bits "${rate_of[i]}")
        burst_of[i]=$(tbf_burst "$bits")
        total=$((total + bits))
    done
    if [ -n "$down" ]; then
        dbits=$(rate_bits "$down")
        dburst=$(tbf_burst "$dbits")
    fi
    if [ $total -gt $CPU_BUDGET_BITS ]; then
        echo "netns.sh: warning: $((total / 1000000)) Mbit/s in all exceeds about 400 Mbit/s: on 2 cores the run measures the CPU" >&2
    fi
    [ -z "$(our_namespaces "$p")" ] || die "namespaces with prefix $p exist already (netns.sh down --prefix $p)"

    # From here on, any failure or signal removes what was made.
    UP_PREFIX=$p
    trap 'teardown "$UP_PREFIX"; exit 130' INT TERM
    trap 'rc=$?; if [ $rc -ne 0 ]; then teardown "$UP_PREFIX"; fi' EXIT

    ip netns add "$p-br"
    ip -n "$p-br" link set lo up
    ip -n "$p-br" link add br0 type bridge
    ip -n "$p-br" link set br0 up
    for ((i = 0; i <= n; i++)); do
        ns=$p-h$i
        addr=$SUBNET.$((BASE + i))
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip -n "$p-br" link add "h$i" type veth peer name eth0 netns "$ns"
        ip -n "$p-br" link set "h$i" master br0
        ip -n "$p-br" link set "h$i" up
        ip -n "$ns" addr add "$addr/24" dev eth0
        ip -n "$ns" addr add "$SUBNET6:$((BASE + i))/64" dev eth0 nodad
        ip -n "$ns" link set eth0 up
        if [ "$i" -gt 0 ]; then
            tc -n "$ns" qdisc add dev eth0 root tbf rate "${rate_of[i]}" burst "${burst_of[i]}" latency $TBF_LATENCY
            if [ -n "$down" ]; then
                tc -n "$p-br" qdisc add dev "h$i" root tbf rate "$down" burst "$dburst" latency $TBF_LATENCY
            fi
        fi
    done
    trap - INT TERM EXIT
    echo "prefix $p"
    echo "$p-h0 $SUBNET.$BASE tracker (not shaped)"
    for ((i = 1; i <= n; i++)); do
        echo "$p-h$i $SUBNET.$((BASE + i)) up ${rate_of[i]}${down:+ down $down}"
    done
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
PREFIX=${STA_NETNS_PREFIX:-}

case $cmd in
up)
    need_tools
    parse_up "$@"
    [ ${#REST[@]} -eq 0 ] || die "up takes no command"
    PREFIX=${PREFIX:-sta-$$}
    check_prefix "$PREFIX"
    up "$PREFIX" "$N" "$RATE" "$DOWN_RATE" "$RATES"
    ;;
down)
    need_tools
    while [ $# -gt 0 ]; do
        case $1 in
        --prefix) PREFIX=${2:?--prefix needs a value}; shift 2 ;;
        *) die "unknown argument $1" ;;
        esac
    done
    [ -n "$PREFIX" ] || die "down needs --prefix P (or STA_NETNS_PREFIX)"
    check_prefix "$PREFIX"
    teardown "$PREFIX"
    ;;
exec)
    if [ "${1:-}" = --prefix ]; then
        PREFIX=${2:?--prefix needs a value}
        shift 2
    fi
    [ -n "$PREFIX" ] || die "exec needs --prefix P (or STA_NETNS_PREFIX)"
    check_prefix "$PREFIX"
    host=${1:?exec needs HOST (h0..hN, or its number)}
    shift
    [ $# -gt 0 ] || die "exec needs a command"
    [[ $host =~ ^h?([0-9]+)$ ]] || die "bad host '$host' (h0..hN)"
    # `ip netns exec` execs CMD in place: the pid the caller sees is CMD's.
    exec ip netns exec "$PREFIX-h${BASH_REMATCH[1]}" "$@"
    ;;
run)
    need_tools
    parse_up "$@"
    [ ${#REST[@]} -gt 0 ] || die "run needs -- CMD..."
    PREFIX=${PREFIX:-sta-$$}
    check_prefix "$PREFIX"
    up "$PREFIX" "$N" "$RATE" "$DOWN_RATE" "$RATES" >&2
    child=""
    # On Ctrl-C or exit: stop CMD (our child, by pid), then the namespaces.
    stop_all() {
        if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
            kill -TERM "$child" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "$child" 2>/dev/null || break
                sleep 0.1
            done
            kill -KILL "$child" 2>/dev/null || true
        fi
        teardown "$PREFIX"
    }
    trap 'stop_all; exit 130' INT TERM
    trap 'stop_all' EXIT
    export STA_NETNS_PREFIX=$PREFIX STA_NETNS_HOSTS=$N
    "${REST[@]}" &
    child=$!
    rc=0
    wait "$child" || rc=$?
    exit $rc
    ;;
watch)
    need_tools
    if [ "${1:-}" = --prefix ]; then
        PREFIX=${2:?--prefix needs a value}
        shift 2
    fi
    [ -n "$PREFIX" ] || die "watch needs --prefix P (or STA_NETNS_PREFIX)"
    check_prefix "$PREFIX"
    pid=${1:?watch needs the PID to watch}
    max=${2:-3600}
    [[ $pid =~ ^[0-9]+$ && $max =~ ^[0-9]+$ ]] || die "watch: PID and MAX_SECONDS are numbers"
    # Polls 5 times a second, for at most MAX_SECONDS.
    for ((i = 0; i < max * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    teardown "$PREFIX"
    ;;
-h | --help | help) usage ;;
*) die "unknown command $cmd (up, down, exec, run, watch)" ;;
esac
