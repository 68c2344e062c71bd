#!/usr/bin/env bash
# Accuracy of sta-peerd's rate limits: one seeder, one leecher, one file;
# the seeder's --max-upload-rate, then the leecher's --max-download-rate,
# on loopback and between network namespaces (bench/netns.sh, needs root).
# Prints, per case, the limit, the achieved rate (steady state, 10 % to
# 90 % of the file) and its error, and the whole transfer's rate, medians
# of 3 rounds (bench/ratelimit.py says how it measures).
#
#   bash bench/ratelimit.sh                              # 200M file, 20M limit, both places
#   bash bench/ratelimit.sh --cases loopback --rounds 1  # a quick look
#   bash bench/ratelimit.sh --size 400M --limit 40M
#
# The namespace hosts' links are shaped to LINK (default 200mbit, 25 MB/s:
# above a 20M limit, so that the limiter, not the link, sets the pace).
# Exits 1 if a case is off by more than 5 %.
set -euo pipefail
cd "$(dirname "$0")/.."
LINK=${LINK:-200mbit}

cases=loopback,netns
args=()
while [ $# -gt 0 ]; do
    case $1 in
        --cases) cases=${2:?--cases needs a value}; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$1"); shift ;;
    esac
done

cargo build --release -p sta --bin sta-peerd --bin sta-trackerd --bin sta >&2

rc=0
if [[ ,$cases, == *,loopback,* ]]; then
    python3 bench/ratelimit.py --cases loopback "${args[@]}" || rc=$?
fi
if [[ ,$cases, == *,netns,* ]]; then
    if [ "$(id -u)" != 0 ]; then
        echo "netns: skipped (needs root)"
    else
        bash bench/netns.sh run 2 --rate "$LINK" -- \
            bash -c 'exec python3 bench/ratelimit.py --cases netns --prefix "$STA_NETNS_PREFIX" "$@"' _ "${args[@]}" || rc=$?
    fi
fi
exit $rc
