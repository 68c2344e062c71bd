#!/usr/bin/env bash
# BitTorrent clients with their default settings against an sta-peerd
# seeder, on emulated hosts (bench/netns.sh; Transmission refuses
# 127.0.0.0/8 peers): h0 sta-trackerd, h1 sta-peerd seeding a 4 MiB file,
# h2 the client, given the .torrent `sta torrent` wrote (the tracker's UDP
# announce URL). Per round, the seconds from adding the torrent to the
# first finished handshake and to the whole file, then the medians.
# Transmission 3.00 with uTP on connects only when the seeder dials it (on
# the tracker's Dial, spec/tracker.md): a BIN_DIR from before that
# measures "none" for it.
#
#   sudo bash bench/defaults.sh [BIN_DIR] [ROUNDS] [lt|tr|both]
#
# BIN_DIR holds sta, sta-peerd and sta-trackerd (default target/release);
# give another build's to compare (issue 15: main before the UDP socket).
# lt: libtorrent 2.0.8 (bench/lt_peer.py leech --client-defaults: uTP and
# encryption at libtorrent's defaults); tr: Transmission 3.00
# (transmission-daemon with its defaults but RPC on the host's loopback
# and no DHT/LPD/PEX), polled with transmission-remote every 0.1 s.
# Needs root, iproute2, python3-libtorrent, transmission-daemon and
# transmission-cli. Every wait is bounded (a round gives up after 40 s:
# "none"); every process is stopped by its pid; the hosts are removed at
# the end, also on error or Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath "${1:-target/release}")
ROUNDS=${2:-5}
WHICH=${3:-both}
LIMIT=40
P=sta-defaults-$$
W=$(mktemp -d /tmp/sta-defaults-XXXX)
pids=()
stop() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # Each is a child of this shell: the next round binds the same ports.
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}
trap 'stop; bash bench/netns.sh down --prefix $P >/dev/null 2>&1 || true; rm -rf "$W"' EXIT
bash bench/netns.sh up 2 --rate 200mbit --prefix $P >/dev/null
# For commands in the foreground only: a background process is started
# with `ip netns exec` itself, which execs it, so that its pid is the one
# `stop` kills.
ns() { ip netns exec "$P-h$1" "${@:2}"; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

# A fresh tracker and seeder in $W/$1; sets $torrent.
seeder() {
    local d=$W/$1
    mkdir -p "$d/seed"
    head -c 4194304 /dev/urandom >"$d/f.bin"
    ip netns exec "$P-h0" "$B/sta-trackerd" --listen 10.77.0.10:6969 >"$d/t.out" 2>&1 &
    pids+=($!)
    sleep 0.3
    ip netns exec "$P-h1" "$B/sta-peerd" --listen 10.77.0.11:6881 --tracker 10.77.0.10:6969 \
        --dir "$d/seed" --share "$d/f.bin" >"$d/p.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do
        "$B/sta" --dir "$d/seed" status 2>/dev/null | grep -q seed && break
        sleep 0.1
    done
    torrent=$d/f.torrent
    if ! "$B/sta" --dir "$d/seed" torrent f.bin -o "$torrent" >/dev/null; then
        echo "the seeder did not start:" >&2
        cat "$d/t.out" "$d/p.out" >&2
        exit 1
    fi
}

lt_round() {
    local d=$W/lt$1
    seeder "lt$1"
    mkdir -p "$d/lt"
    (sleep $LIMIT) 2>/dev/null | ip netns exec "$P-h2" /usr/bin/python3 bench/lt_peer.py leech --client-defaults \
        --torrent "$torrent" --save "$d/lt" --listen 10.77.0.12:6881 --timeout $LIMIT \
        >"$d/lt.out" 2>"$d/lt.err" &
    pids+=($!)
    for _ in $(seq $((LIMIT * 10))); do
        grep -q '^finished' "$d/lt.out" && break
        sleep 0.1
    done
    # `connected AFTER ...` is timed from the add, inside the script; the
    # finish from the add is `finished` minus the connected line's
    # monotonic clock plus AFTER.
    local c f
    c=$(awk '/^connected/ {print $2, $3, $5}' "$d/lt.out")
    f=$(awk '/^finished/ {print $3}' "$d/lt.out")
    local first=none done=none kind=-
    if [[ -n $c ]]; then
        read -r first mono kind <<<"$c"
        [[ -n $f ]] && done=$(echo "$f - $mono + $first" | bc)
    fi
    cmp -s "$W/lt$1/f.bin" "$d/lt/f.bin" && same=identical || same=DIFFERENT
    echo "lt round $1: first handshake ${first} s ($kind), complete ${done} s, $same"
    echo "$first $done" >>"$W/lt.results"
    stop
}

tr_round() {
    local d=$W/tr$1
    seeder "tr$1"
    mkdir -p "$d/tr/dl"
    cat >"$d/tr/settings.json" <<EOF
{ "rpc-bind-address": "127.0.0.1", "rpc-port": 9091, "rpc-authentication-required": false,
  "rpc-whitelist-enabled": false, "dht-enabled": false, "lpd-enabled": false,
  "pex-enabled": false, "port-forwarding-enabled": false, "download-dir": "$d/tr/dl",
  "incomplete-dir-enabled": false, "bind-address-ipv4": "10.77.0.12" }
EOF
    ip netns exec "$P-h2" transmission-daemon -f -g "$d/tr" >"$d/tr.out" 2>&1 &
    pids+=($!)
    local r=(ns 2 transmission-remote 127.0.0.1:9091)
    for _ in $(seq 100); do
        "${r[@]}" -l >/dev/null 2>&1 && break
        sleep 0.1
    done
    local t0 first=none done=none el
    t0=$(now)
    "${r[@]}" -a "$torrent" >/dev/null
    while :; do
        el=$(since "$t0")
        if [[ $first == none ]] && "${r[@]}" -t 1 -pi 2>/dev/null | grep -q 10.77.0.11; then first=$el; fi
        if "${r[@]}" -t 1 -i 2>/dev/null | grep -q 'Percent Done: 100%'; then done=$el; break; fi
        (($(echo "$el > $LIMIT" | bc))) && break
        sleep 0.1
    done
    cmp -s "$W/tr$1/f.bin" "$d/tr/dl/f.bin" && same=identical || same=DIFFERENT
    echo "tr round $1: first peer ${first} s, complete ${done} s, $same"
    echo "$first $done" >>"$W/tr.results"
    stop
}

median() {
    sort -g | awk '{a[NR] = $1} END {if (NR == 0 || a[1] == "none") print "none"; else print a[int((NR + 1) / 2)]}'
}

echo "$(date -u +%FT%TZ) $(uname -r), binaries $B, $ROUNDS rounds"
for client in lt tr; do
    [[ $WHICH == both || $WHICH == "$client" ]] || continue
    for i in $(seq "$ROUNDS"); do "${client}_round" "$i"; done
    # "none" sorts last with -g only if numbers come first: count it apart.
    f=$(awk '$1 != "none" {print $1}' "$W/$client.results" | median)
    c=$(awk '$2 != "none" {print $2}' "$W/$client.results" | median)
    n=$(grep -c none "$W/$client.results" || true)
    echo "$client: median first connection $f s, median completion $c s ($n of $ROUNDS rounds with a 'none')"
done
