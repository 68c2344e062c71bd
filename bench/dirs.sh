#!/usr/bin/env bash
# Directory shares: a tree of many files against one file of the same size.
#
#   bash bench/dirs.sh                     # 10,000 files = 1 GiB, 3 runs of each
#   bash bench/dirs.sh --files 2000 --size 256M --runs 1   # a quick look
#
# Three figures (bench/README.md says how each is measured):
#   1. hashing: `sta share TREE` against `sta share FILE` (a fresh sta-peerd
#      each time, timed until `sta share` returns: hashing is done then),
#      and libtorrent's create_torrent + set_piece_hashes on the same two
#      (v1 only, the same piece size; `lt_peer.py make`); target tree <= 1.5 x
#      file for STA;
#   2. download 1 -> 1 on loopback, the tree against the file (one seeding
#      sta-peerd, one fresh fetching sta-peerd per run, peers from the
#      tracker); target tree >= 70 % of the file's rate;
#   3. `sta get TREE --only PATH` of one 1 MiB file: the bytes the fetching
#      peer downloaded (its `sta status --json`) and the seeder uploaded,
#      from a fresh STA seeder (20 s at most, ONLY_WAIT) and from a
#      libtorrent seeder of the same info dict; target < 3 MiB.
#
# Everything lives in one fresh directory under /dev/shm (--dir) and goes
# through 127.0.0.1; every process is started here, stopped by its pid
# (SIGTERM, SIGKILL after 10 s) at the end, also on error or Ctrl-C, and
# told to die with this script (setpriv --pdeathsig). Every wait is bounded.
# Exit status: 0 figures printed, 1 something broken (a copy differs, a
# process died, a wait ran out), 2 wrong usage, 130 interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

RUNS=3
FILES=10000
SIZE=1G
BASE=/dev/shm
PY=/usr/bin/python3
PIECE=524288
ONLY_SIZE=1048576
BUILD=1
PHASES=hash,download,only
MEM_FILES=100000
MEM_SIZE=200M

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<EOF
options:
  --runs N          timed runs of each measurement (medians) [$RUNS]
  --files N         files in the tree [$FILES]
  --size SIZE       bytes of the tree and of the single file (K, M, G) [$SIZE]
  --dir DIR         where the work directory goes [$BASE]
  --python PATH     python with libtorrent 2.0 [$PY]
  --no-build        use target/release as it is (CARGO_TARGET_DIR is honoured)
  --phases LIST     which of hash,download,only,memory to run [$PHASES]
  --mem-files N     files in the tree of the memory phase [$MEM_FILES]
  --mem-size SIZE   bytes of that tree [$MEM_SIZE]
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --files) FILES=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --dir) BASE=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --phases) PHASES=$2; shift 2 ;;
        --mem-files) MEM_FILES=$2; shift 2 ;;
        --mem-size) MEM_SIZE=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bench/dirs.sh: unknown argument '$1'; see --help" >&2; exit 2 ;;
    esac
done

bytes_of() {
    local s=$1 n m=1
    case $s in
        *[kK]) m=1024; n=${s%?} ;;
        *[mM]) m=$((1 << 20)); n=${s%?} ;;
        *[gG]) m=$((1 << 30)); n=${s%?} ;;
        *) n=$s ;;
    esac
    case $n in ''|*[!0-9]*) echo "bench/dirs.sh: bad size '$s'" >&2; exit 2 ;; esac
    echo $((n * m))
}
BYTES=$(bytes_of "$SIZE")
MEM_BYTES=$(bytes_of "$MEM_SIZE")
has() { case ",$PHASES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
for ph in ${PHASES//,/ }; do
    case $ph in hash|download|only|memory) ;; *) echo "bench/dirs.sh: unknown phase '$ph'" >&2; exit 2 ;; esac
done
for v in RUNS FILES MEM_FILES; do
    case ${!v} in ''|0|*[!0-9]*) echo "bench/dirs.sh: --${v,,} wants a positive number" >&2; exit 2 ;; esac
done
if [ "$BYTES" -lt $((FILES * 2 + ONLY_SIZE)) ]; then
    echo "bench/dirs.sh: --size is too small for --files $FILES and a 1 MiB file" >&2
    exit 2
fi
if ! "$PY" -c 'import libtorrent' 2>/dev/null; then
    echo "bench/dirs.sh: $PY cannot import libtorrent (Debian: apt-get install -y python3-libtorrent)" >&2
    exit 1
fi

TARGET=${CARGO_TARGET_DIR:-$REPO/target}
if [ "$BUILD" = 1 ]; then
    cargo build --release -p sta --bin sta --bin sta-peerd --bin sta-trackerd
fi
STA=$TARGET/release/sta
PEERD=$TARGET/release/sta-peerd
TRACKERD=$TARGET/release/sta-trackerd
for b in "$STA" "$PEERD" "$TRACKERD"; do
    [ -x "$b" ] || { echo "bench/dirs.sh: $b is missing; run cargo build --release" >&2; exit 1; }
done

# ------------------------------------------------------------ processes

PIDS=()
PROBLEMS=()
WORK=""
STOPPING=0

# stop PID...: SIGTERM, then SIGKILL for those still there after 10 s.
stop() {
    local p left i
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for ((i = 0; i < 100; i++)); do
        left=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ $left = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do
        if kill -0 "$p" 2>/dev/null; then
            echo "  pid $p ignored SIGTERM; killed it"
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
    local keep=()
    for p in "${PIDS[@]}"; do
        case " $* " in *" $p "*) ;; *) keep+=("$p") ;; esac
    done
    PIDS=("${keep[@]}")
}

cleanup() {
    local rc=$?
    [ $STOPPING = 1 ] && return
    STOPPING=1
    trap - EXIT INT TERM HUP
    if [ ${#PIDS[@]} -gt 0 ]; then
        echo "stopping ${#PIDS[@]} processes..."
        stop "${PIDS[@]}"
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf -- "$WORK"; fi
    exit $rc
}
trap cleanup EXIT
trap 'echo "bench/dirs.sh: interrupted" >&2; exit 130' INT TERM HUP

die() {
    echo "bench/dirs.sh: FAILED: $*" >&2
    exit 1
}

# Tail of a log, indented, for a failure message.
tail_of() { [ -f "$1" ] && tail -n 15 "$1" | sed 's/^/    /'; true; }

# spawn NAME CMD...: runs CMD in the background (stdout NAME.out, stderr
# NAME.log in the work dir; stdin $SPAWN_IN, else /dev/null), told to
# die with this shell; sets SPAWNED.
spawn() {
    local name=$1
    shift
    setpriv --pdeathsig TERM -- "$@" >"$WORK/$name.out" 2>"$WORK/$name.log" <"${SPAWN_IN:-/dev/null}" &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# wait_line NAME PID PREFIX SECONDS: the rest of the first stdout line of
# NAME that starts with PREFIX; fails if PID exits or time runs out.
wait_line() {
    local name=$1 pid=$2 prefix=$3 end=$((SECONDS + $4)) line
    while :; do
        line=$(grep -m1 "^$prefix" "$WORK/$name.out" 2>/dev/null || true)
        if [ -n "$line" ]; then
            echo "${line#"$prefix"}"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || die "$name (pid $pid) exited before printing '$prefix'
$(tail_of "$WORK/$name.log")"
        [ $SECONDS -lt $end ] || die "$name (pid $pid) printed no '$prefix' in $4 s
$(tail_of "$WORK/$name.log")"
        sleep 0.02
    done
}

TRACKER=""
SERIAL=0
# start_peerd NAME: a fresh sta-peerd (its own --dir); sets PEER_PID,
# PEER_DIR, PEER_SOCK once it printed its control socket.
start_peerd() {
    SERIAL=$((SERIAL + 1))
    local name="$1-$SERIAL"
    PEER_DIR=$WORK/$name
    mkdir "$PEER_DIR"
    spawn "$name" "$PEERD" --tracker "$TRACKER" --listen 127.0.0.1:0 \
        --log-level warn --piece-size "$PIECE" --dir "$PEER_DIR"
    PEER_PID=$SPAWNED
    PEER_SOCK=$(wait_line "$name" "$PEER_PID" "control on " 60)
    PEER_NAME=$name
}

# sta_to SOCK SECONDS ARGS...: `sta --control SOCK ARGS`, bounded.
sta_to() {
    local sock=$1 secs=$2
    shift 2
    timeout --kill-after=5 "$secs" "$STA" --control "$sock" "$@"
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s / 1e6 }'; }
TICKS=$(getconf CLK_TCK)
# cpu_of PID: CPU seconds (user + system) the live process PID has used.
cpu_of() { awk -v t="$TICKS" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# json_field FILE.json INFOHASH KEY: the sum of KEY over the status entries
# of INFOHASH (`sta status --json`).
json_field() {
    "$PY" - "$1" "$2" "$3" <<'EOF'
import json, sys
v = json.load(open(sys.argv[1]))
print(sum(int(f.get(sys.argv[3], 0)) for f in v.get("files", []) if f.get("info_hash") == sys.argv[2]))
EOF
}

# ------------------------------------------------------------ the work

echo "bench/dirs.sh: directory shares, a tree against one file"
echo "date:    $(date)"
echo "kernel:  $(uname -r)"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "work:    $FILES files = $BYTES bytes (tree) vs 1 file of $BYTES bytes, pieces of $PIECE, $RUNS run(s) each"

need=$((BYTES * 3 + (1 << 30)))
free=$(($(df --output=avail -B1 "$BASE" | tail -n1)))
[ "$free" -ge "$need" ] || die "$BASE has $free bytes free; this needs $need (the tree, the file and a copy)"
WORK=$(mktemp -d "$BASE/sta-dirs.XXXXXX")
echo "dir:     $WORK"
SRC=$WORK/src
mkdir "$SRC"
TREE=$SRC/tree
SINGLE=$SRC/single.bin

ONLY=""
if has hash || has download || has only; then
t0=$(now)
ONLY=$("$PY" - "$TREE" "$SINGLE" "$FILES" "$BYTES" "$ONLY_SIZE" <<'EOF'
# The tree: FILES files, BYTES in all, sizes drawn uniformly in
# [1, 2 x mean] then scaled to the total, one of them exactly ONLY bytes;
# nested 1 to 3 directories deep (20 top directories, 5 under each, some
# with a third level). Random content; a fixed seed for the layout.
import os, random, sys
tree, single, files, total, only = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
r = random.Random(20261201)
rest = total - only
n = files - 1
raw = [r.randint(1, 2 * rest // n) for _ in range(n)]
scale = rest / sum(raw)
sizes = [max(1, int(x * scale)) for x in raw]
sizes[-1] += rest - sum(sizes)
assert sizes[-1] > 0 and sum(sizes) == rest
pick = n // 2 + 7
sizes.insert(pick, only)
# AES-CTR of zeros from openssl is about twice as fast as os.urandom here.
chunk = 8 << 20
try:
    import shutil, subprocess
    if not shutil.which("openssl"):
        raise OSError("no openssl")
    stream = subprocess.Popen(
        ["openssl", "enc", "-aes-128-ctr", "-nosalt", "-pbkdf2", "-pass",
         f"pass:{os.getpid()}-{os.urandom(8).hex()}", "-in", "/dev/zero"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    def rand(k):
        b = stream.read(k)
        if len(b) != k:
            sys.exit("openssl stopped writing")
        return b
except OSError:
    rand = os.urandom
def write(path, size):
    with open(path, "wb") as f:
        while size:
            k = min(size, chunk)
            f.write(rand(k))
            size -= k
only_path = None
for i, size in enumerate(sizes):
    top, sub = i % 20, (i // 20) % 5
    parts = [f"d{top:02}", f"s{sub}"]
    if (i // 100) % 3 == 0:
        parts.append(f"t{(i // 300) % 4}")
    d = os.path.join(tree, *parts)
    os.makedirs(d, exist_ok=True)
    name = "one-mib.bin" if i == pick else f"f{i:05}.dat"
    write(os.path.join(d, name), size)
    if i == pick:
        only_path = "/".join(parts + [name])
write(single, total)
print(only_path)
EOF
)
echo "generated the tree ($FILES files, $(find "$TREE" -type d | wc -l) directories) and the file in $(elapsed "$t0" "$(now)") s; --only target: $ONLY"
fi

spawn tracker "$TRACKERD" --listen 127.0.0.1:0 --log-level warn
TRACKER_PID=$SPAWNED
TRACKER=$(wait_line tracker "$TRACKER_PID" "listening on " 60)
echo "tracker: pid $TRACKER_PID on $TRACKER"

# ---------------------------------------------------------- 1. hashing

# sta_hash PATH: seconds of `sta share PATH` on a fresh sta-peerd; sets HASH.
sta_hash() {
    start_peerd sharer
    local t out
    t=$(now)
    out=$(sta_to "$PEER_SOCK" 300 share "$1" 2>>"$WORK/$PEER_NAME.log") ||
        die "sta share $1 failed
$(tail_of "$WORK/$PEER_NAME.log")"
    STA_SECS=$(elapsed "$t" "$(now)")
    HASH=${out##*info hash }
    stop "$PEER_PID"
    rm -rf -- "$PEER_DIR"
}

# lt_hash PATH: seconds of create_torrent + set_piece_hashes (timed inside
# lt_peer.py make); sets LT_HASH.
lt_hash() {
    local out
    rm -f "$WORK/lt.torrent"
    out=$(timeout --kill-after=5 300 "$PY" "$REPO/bench/lt_peer.py" make --file "$1" \
        --piece-size "$PIECE" --out "$WORK/lt.torrent" 2>"$WORK/lt-make.log") ||
        die "lt_peer.py make $1 failed
$(tail_of "$WORK/lt-make.log")"
    # hashed SECONDS INFOHASH VERSION
    read -r _ LT_SECS LT_HASH LT_VERSION <<<"$out"
}

echo
sta_tree=() sta_single=() lt_tree=() lt_single=()
if has hash; then
echo "== 1. hashing: sta share TREE / FILE, libtorrent create_torrent on each (1 warm-up, then $RUNS runs, alternated) =="
for ((r = 0; r <= RUNS; r++)); do
    sta_hash "$TREE"; a=$STA_SECS; TREE_HASH=$HASH
    sta_hash "$SINGLE"; b=$STA_SECS; SINGLE_HASH=$HASH
    lt_hash "$TREE"; c=$LT_SECS; LT_TREE_HASH=$LT_HASH
    lt_hash "$SINGLE"; d=$LT_SECS; LT_SINGLE_HASH=$LT_HASH
    label="run $r"
    [ $r = 0 ] && label="warm-up"
    echo "  $label: STA tree $a s, file $b s; libtorrent $LT_VERSION tree $c s, file $d s"
    if [ $r -gt 0 ]; then
        sta_tree+=("$a") sta_single+=("$b") lt_tree+=("$c") lt_single+=("$d")
    fi
done
elif has download || has only; then
    echo "== 1. hashing: not measured (--phases); sta share TREE / FILE once for their info hashes =="
    sta_hash "$TREE"; TREE_HASH=$HASH
    sta_hash "$SINGLE"; SINGLE_HASH=$HASH
fi
same() { [ "$1" = "$2" ] && echo "the same" || echo "differ: STA $1, libtorrent $2"; }
if has hash; then
echo "  info hashes, tree: $(same "$TREE_HASH" "$LT_TREE_HASH") (libtorrent's add_files order)"
fi
if has hash || has only; then
# (With the tracker's URL: part 3 seeds the tree from libtorrent too.)
out=$(timeout --kill-after=5 300 "$PY" "$REPO/bench/lt_peer.py" hash-tree --dir "$TREE" \
    --piece-size "$PIECE" --out "$WORK/lt-sorted.torrent" \
    --announce "udp://$TRACKER/announce" 2>"$WORK/lt-make.log") ||
    die "lt_peer.py hash-tree failed
$(tail_of "$WORK/lt-make.log")"
read -r _ _ LT_SORTED_HASH _ <<<"$out"
echo "  info hashes, tree: $(same "$TREE_HASH" "$LT_SORTED_HASH") (the files in sorted order, lt_peer.py hash-tree, untimed)"
[ "$TREE_HASH" = "$LT_SORTED_HASH" ] ||
    PROBLEMS+=("STA's info hash of the tree differs from libtorrent's for the same files in sorted order")
fi
if has hash; then
[ "$SINGLE_HASH" = "$LT_SINGLE_HASH" ] ||
    PROBLEMS+=("STA's info hash of the file differs from libtorrent's")
echo "  info hashes, file: $(same "$SINGLE_HASH" "$LT_SINGLE_HASH")"
fi

# ------------------------------------------------------- 2. download 1 -> 1

# seed PATH INFOHASH: a fresh sta-peerd shares PATH and the tracker lists
# it as a seeder of INFOHASH; sets SEED_PID, SEED_SOCK. A fresh seeder per
# download: on this engine a seeder that already served one leecher sends
# the next one only a few pieces a second ("waiting for peers that have
# the missing pieces"), so reusing one would measure that instead.
seed() {
    start_peerd seeder
    SEED_PID=$PEER_PID SEED_SOCK=$PEER_SOCK SEED_NAME=$PEER_NAME SEED_DIR=$PEER_DIR
    sta_to "$SEED_SOCK" 300 share "$1" >/dev/null 2>>"$WORK/$SEED_NAME.log" ||
        die "the seeder's sta share $1 failed
$(tail_of "$WORK/$SEED_NAME.log")"
    local end=$((SECONDS + 60)) listed
    while :; do
        sta_to "$SEED_SOCK" 30 list --json >"$WORK/list.json" 2>/dev/null || true
        listed=$("$PY" - "$WORK/list.json" "$2" <<'PYEOF'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except ValueError:
    v = []
print(int(any(e.get("info_hash") == sys.argv[2] and e.get("seeders", 0) >= 1 for e in v)))
PYEOF
)
        [ "$listed" = 1 ] && break
        [ $SECONDS -lt $end ] || die "the tracker does not list the seeder of $1 after 60 s"
        kill -0 "$SEED_PID" 2>/dev/null || die "the seeder (pid $SEED_PID) exited
$(tail_of "$WORK/$SEED_NAME.log")"
        sleep 0.05
    done
}

unseed() {
    stop "$SEED_PID"
    rm -rf -- "$SEED_DIR"
}

# fetch TARGET SOURCE [GET ARGS...]: a fresh sta-peerd gets TARGET (an
# info hash or a .torrent); sets GET_SECS (from `sta get` until it
# returned, the peer ready before), GOT (the path it printed), and leaves
# the leecher running (PEER_*). `sta get` has FETCH_WAIT seconds (300);
# with FETCH_MAY_FAIL=1 running out of them returns 1 instead of failing.
fetch() {
    local hash=$1 source=$2 t out rc=0
    shift 2
    start_peerd leech
    mkdir "$PEER_DIR/out"
    t=$(now)
    out=$(sta_to "$PEER_SOCK" "${FETCH_WAIT:-300}" get "$hash" --out "$PEER_DIR/out" "$@" 2>>"$WORK/$PEER_NAME.log") || rc=$?
    GET_SECS=$(elapsed "$t" "$(now)")
    if [ $rc != 0 ]; then
        [ $rc = 124 ] && [ "${FETCH_MAY_FAIL:-0}" = 1 ] && return 1
        die "sta get $hash $* failed (exit $rc)
$(tail_of "$WORK/$PEER_NAME.log")"
    fi
    GOT=$(printf '%s\n' "$out" | tail -n1)
    [ -e "$GOT" ] || die "sta get printed '$GOT', which does not exist"
}

# download INFOHASH SOURCE: seconds of one whole download, checked; sets
# SEED_CPU and LEECH_CPU, the CPU seconds the seeder spent during it and
# the fetching peer's in all.
download() {
    local c0
    c0=$(cpu_of "$SEED_PID")
    fetch "$1" "$2"
    SEED_CPU=$(awk -v a="$c0" -v b="$(cpu_of "$SEED_PID")" 'BEGIN { printf "%.2f", b - a }')
    LEECH_CPU=$(cpu_of "$PEER_PID")
    stop "$PEER_PID"
    if [ -d "$2" ]; then
        diff -r -q "$2" "$GOT" >"$WORK/diff.txt" 2>&1 ||
            die "the downloaded tree differs from the source: $(head -n 5 "$WORK/diff.txt")"
    else
        cmp -s "$2" "$GOT" || die "the downloaded file $GOT differs from $2"
    fi
    rm -rf -- "$PEER_DIR"
}

dl_tree=() dl_single=()
if has download; then
echo
echo "== 2. download 1 -> 1: the tree, then the file, each from a fresh seeding sta-peerd (1 warm-up each, then $RUNS runs, alternated) =="
for ((r = 0; r <= RUNS; r++)); do
    seed "$TREE" "$TREE_HASH"
    download "$TREE_HASH" "$TREE"; a=$GET_SECS; cpu_a="$SEED_CPU / $LEECH_CPU"
    unseed
    seed "$SINGLE" "$SINGLE_HASH"
    download "$SINGLE_HASH" "$SINGLE"; b=$GET_SECS; cpu_b="$SEED_CPU / $LEECH_CPU"
    unseed
    label="run $r"
    [ $r = 0 ] && label="warm-up"
    echo "  $label: tree $a s ($(mbps "$BYTES" "$a") MB/s), file $b s ($(mbps "$BYTES" "$b") MB/s); copies identical; CPU s seeder / fetcher: tree $cpu_a, file $cpu_b"
    if [ $r -gt 0 ]; then
        dl_tree+=("$a") dl_single+=("$b")
    fi
done
fi

# ------------------------------------------------------------ 3. --only

only_down=() only_up=() lto_down=() lto_up=()
ONLY_RUNS=$RUNS ONLY_STALLED=""
if has only; then
echo
echo "== 3. sta get TREE --only $ONLY ($ONLY_SIZE bytes), $RUNS run(s) from an STA seeder, $RUNS from a libtorrent seeder =="
fi
if ! has only; then
    ONLY_RUNS=0
elif ! "$STA" get --help 2>&1 | grep -q -- --only; then
    echo "  not run: this sta get has no --only"
    PROBLEMS+=("--only not measured: this sta get has no --only")
    ONLY_RUNS=0
fi

# only_check: the --only file came whole; prints how many other files hold
# bytes.
only_check() {
    local got_file
    if [ -d "$GOT" ]; then got_file=$GOT/$ONLY; else got_file=$GOT; fi
    cmp -s "$TREE/$ONLY" "$got_file" || die "the --only file $got_file differs from (or lacks) $TREE/$ONLY"
    local others
    others=$(cd "$PEER_DIR/out" && find . -type f ! -path "*/$ONLY" -size +0 | sed 's|^\./||')
    if [ -z "$others" ]; then echo "none"; else echo "$(echo "$others" | wc -l) ($(echo "$others" | head -n 3 | tr '\n' ' ' | sed 's/ $//'))"; fi
}

# 3a. From a fresh STA seeder, `sta get INFOHASH --only`, ONLY_WAIT s at most.
ONLY_WAIT=${ONLY_WAIT:-20}
for ((r = 1; r <= ONLY_RUNS; r++)); do
    seed "$TREE" "$TREE_HASH"
    sta_to "$SEED_SOCK" 30 status --json >"$WORK/seed0.json"
    up0=$(json_field "$WORK/seed0.json" "$TREE_HASH" uploaded)
    ok=1
    FETCH_WAIT=$ONLY_WAIT FETCH_MAY_FAIL=1 fetch "$TREE_HASH" "$TREE" --only "$ONLY" || ok=0
    sta_to "$PEER_SOCK" 30 status --json >"$WORK/leech.json"
    down=$(json_field "$WORK/leech.json" "$TREE_HASH" downloaded)
    # The seeder's counter may lag the leecher's last verified piece a little.
    sleep 0.2
    sta_to "$SEED_SOCK" 30 status --json >"$WORK/seed1.json"
    up=$(($(json_field "$WORK/seed1.json" "$TREE_HASH" uploaded) - up0))
    stop "$PEER_PID"
    if [ $ok = 0 ]; then
        ONLY_STALLED="not done after $ONLY_WAIT s: $down bytes downloaded, $up uploaded"
        echo "  STA seeder, run $r: sta get --only $ONLY_STALLED; no more runs from an STA seeder"
        PROBLEMS+=("sta get --only from an STA seeder: $ONLY_STALLED")
        rm -rf -- "$PEER_DIR"
        unseed
        break
    fi
    others=$(only_check)
    echo "  STA seeder, run $r: $GET_SECS s; leecher downloaded $down bytes, seeder uploaded $up bytes; the file identical; other non-empty files in the output: $others"
    only_down+=("$down") only_up+=("$up")
    rm -rf -- "$PEER_DIR"
    unseed
done

# 3b. From one libtorrent seeder of the same info dict (the sorted
# .torrent, announced to sta-trackerd over UDP): `sta get TORRENT --only`.
# STA's own counters for the leecher; libtorrent's total_payload_upload
# (its increase) for the seeder.
if [ "$ONLY_RUNS" -gt 0 ]; then
    mkfifo "$WORK/lt-seed.in"
    exec 7<>"$WORK/lt-seed.in"
    SPAWN_IN=$WORK/lt-seed.in spawn lt-seed "$PY" "$REPO/bench/lt_peer.py" seed \
        --torrent "$WORK/lt-sorted.torrent" --save "$SRC" --timeout 600
    LT_SEED_PID=$SPAWNED
    wait_line lt-seed "$LT_SEED_PID" "announced" 120 >/dev/null
    lt_uploaded() {
        local before after end=$((SECONDS + 10))
        before=$(grep -c '^uploaded ' "$WORK/lt-seed.out" || true)
        echo status >&7
        while :; do
            after=$(grep -c '^uploaded ' "$WORK/lt-seed.out" || true)
            [ "$after" -gt "$before" ] && break
            [ $SECONDS -lt $end ] || die "lt_peer.py seed did not answer status in 10 s"
            sleep 0.02
        done
        grep '^uploaded ' "$WORK/lt-seed.out" | tail -n1 | cut -d' ' -f2
    }
    echo "  libtorrent seeder pid $LT_SEED_PID seeding the tree, announced to the tracker"
    for ((r = 1; r <= ONLY_RUNS; r++)); do
        up0=$(lt_uploaded)
        fetch "$WORK/lt-sorted.torrent" "$TREE" --only "$ONLY"
        sta_to "$PEER_SOCK" 30 status --json >"$WORK/leech.json"
        down=$(json_field "$WORK/leech.json" "$TREE_HASH" downloaded)
        sleep 0.2
        up=$(($(lt_uploaded) - up0))
        stop "$PEER_PID"
        others=$(only_check)
        echo "  libtorrent seeder, run $r: $GET_SECS s; leecher downloaded $down bytes, seeder uploaded $up bytes; the file identical; other non-empty files in the output: $others"
        lto_down+=("$down") lto_up+=("$up")
        rm -rf -- "$PEER_DIR"
    done
    stop "$LT_SEED_PID"
    exec 7>&-
fi

# ------------------------------------------------------------ 4. memory

# proc_kb PID FIELD: FIELD (VmHWM, RssAnon, ...) of /proc/PID/status, kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

MEM_DONE=0
if has memory; then
# Twice, with half the files then all (the same bytes in all): what a
# file adds is the difference, apart from what does not depend on the
# file count (the write-behind cache of a download, buffers).
for MEM_N in $((MEM_FILES / 2)) $MEM_FILES; do
    echo
    echo "== 4. memory: a tree of $MEM_N files ($MEM_BYTES bytes), one seeder, one fetching sta-peerd =="
    MANY=$SRC/many
    t0=$(now)
    MEM_META=$("$PY" - "$MANY" "$MEM_N" "$MEM_BYTES" <<'EOF'
# MEM_FILES small files, BYTES in all, 100 directories of up to 1,000
# (d000/f00000.dat, ...). Prints the bytes of the bencoded `files` list:
# the metadata the daemons cannot do without.
import os, random, sys
root, files, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(20261202)
sizes = [total // files] * files
sizes[-1] += total - sum(sizes)
meta = 2
for i, size in enumerate(sizes):
    d = f"d{i // 1000:03}"
    os.makedirs(os.path.join(root, d), exist_ok=True)
    name = f"f{i:05}.dat"
    with open(os.path.join(root, d, name), "wb") as f:
        f.write(r.randbytes(size))
    entry = f"d6:lengthi{size}e4:pathl{len(d)}:{d}{len(name)}:{name}ee"
    meta += len(entry)
print(meta)
EOF
)
    echo "  generated in $(elapsed "$t0" "$(now)") s; the bencoded files list is $MEM_META bytes ($((MEM_META / MEM_FILES)) per file)"
    start_peerd seeder
    SEED_PID=$PEER_PID SEED_SOCK=$PEER_SOCK SEED_NAME=$PEER_NAME SEED_DIR=$PEER_DIR
    idle_seed=$(proc_kb "$SEED_PID" VmHWM)
    out=$(sta_to "$SEED_SOCK" 300 share "$MANY" 2>>"$WORK/$SEED_NAME.log") ||
        die "sta share $MANY failed
$(tail_of "$WORK/$SEED_NAME.log")"
    MANY_HASH=${out##*info hash }
    shared_seed=$(proc_kb "$SEED_PID" VmHWM)
    end=$((SECONDS + 60))
    until sta_to "$SEED_SOCK" 30 list --json 2>/dev/null | grep -q "$MANY_HASH"; do
        [ $SECONDS -lt $end ] || die "the tracker does not list $MANY after 60 s"
        sleep 0.05
    done
    start_peerd leech
    LEECH_PID=$PEER_PID
    mkdir "$PEER_DIR/out"
    idle_leech=$(proc_kb "$LEECH_PID" VmHWM)
    # Descriptors and RssAnon of both, sampled every 50 ms while the
    # download runs (300 s at most).
    rm -f "$WORK/mem-sample.txt"
    touch "$WORK/mem-sample.txt.run"
    cat >"$WORK/sampler.py" <<'EOF'
import os, sys, time
pids, out = sys.argv[1:3], sys.argv[3]
peak = {p: [0, 0] for p in pids}
end = time.time() + 300
while time.time() < end and os.path.exists(out + ".run"):
    for p in pids:
        try:
            fds = len(os.listdir(f"/proc/{p}/fd"))
            anon = next(int(l.split()[1]) for l in open(f"/proc/{p}/status") if l.startswith("RssAnon:"))
        except (OSError, StopIteration, ValueError):
            continue
        peak[p][0] = max(peak[p][0], fds)
        peak[p][1] = max(peak[p][1], anon)
    time.sleep(0.05)
with open(out, "w") as f:
    for p in pids:
        f.write(f"{p} {peak[p][0]} {peak[p][1]}\n")
EOF
    spawn mem-sampler "$PY" "$WORK/sampler.py" "$SEED_PID" "$LEECH_PID" "$WORK/mem-sample.txt"
    SAMPLER=$SPAWNED
    t=$(now)
    got=$(sta_to "$PEER_SOCK" 300 get "$MANY_HASH" --out "$PEER_DIR/out" 2>>"$WORK/$PEER_NAME.log") ||
        die "sta get of the $MEM_N-file tree failed
$(tail_of "$WORK/$PEER_NAME.log")"
    mem_secs=$(elapsed "$t" "$(now)")
    rm -f "$WORK/mem-sample.txt.run"
    end=$((SECONDS + 10))
    while [ ! -s "$WORK/mem-sample.txt" ] && [ $SECONDS -lt $end ]; do sleep 0.05; done
    stop "$SAMPLER"
    seed_hwm=$(proc_kb "$SEED_PID" VmHWM) leech_hwm=$(proc_kb "$LEECH_PID" VmHWM)
    # Once the download is over, its write-behind cache is empty again.
    seed_rss=$(proc_kb "$SEED_PID" RssAnon) leech_rss=$(proc_kb "$LEECH_PID" RssAnon)
    read -r _ seed_fds seed_anon < <(grep "^$SEED_PID " "$WORK/mem-sample.txt" || echo "- ? ?")
    read -r _ leech_fds leech_anon < <(grep "^$LEECH_PID " "$WORK/mem-sample.txt" || echo "- ? ?")
    got=$(printf '%s\n' "$got" | tail -n1)
    diff -r -q "$MANY" "$got" >"$WORK/diff.txt" 2>&1 ||
        die "the downloaded $MEM_N-file tree differs: $(head -n 5 "$WORK/diff.txt")"
    stop "$LEECH_PID" "$SEED_PID"
    rm -rf -- "$PEER_DIR" "$SEED_DIR" "$MANY"
    per() { awk -v a="$1" -v b="$2" -v n="$MEM_N" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'; }
    echo "  seeder: VmHWM $idle_seed kB idle, $shared_seed kB once shared, $seed_hwm kB after serving; peak RssAnon $seed_anon kB; peak descriptors $seed_fds"
    echo "  leecher: VmHWM $idle_leech kB idle, $leech_hwm kB after the download ($mem_secs s), RssAnon then $leech_rss kB; peak RssAnon $leech_anon kB; peak descriptors $leech_fds; copy identical"
    half_seed=${last_seed:-0} half_leech=${last_leech:-0} half_lrss=${last_lrss:-0}
    last_seed=$seed_hwm last_leech=$leech_hwm last_lrss=$leech_rss
done
    MEM_DONE=1
fi

# ------------------------------------------------------------ the table

ht=1 hs=1 lt_t=1 lt_s=1 dt=1 ds=1
if has hash; then
    ht=$(median "${sta_tree[@]}") hs=$(median "${sta_single[@]}")
    lt_t=$(median "${lt_tree[@]}") lt_s=$(median "${lt_single[@]}")
fi
if has download; then dt=$(median "${dl_tree[@]}") ds=$(median "${dl_single[@]}"); fi
od="" ou="" lod="" lou=""
if [ ${#only_down[@]} -gt 0 ]; then od=$(median "${only_down[@]}") ou=$(median "${only_up[@]}"); fi
if [ ${#lto_down[@]} -gt 0 ]; then lod=$(median "${lto_down[@]}") lou=$(median "${lto_up[@]}"); fi
rt=$(mbps "$BYTES" "$dt") rs=$(mbps "$BYTES" "$ds")
s3() { awk -v v="$1" 'BEGIN { printf "%.3f", v }'; }
mib() { awk -v n="$1" 'BEGIN { printf "%.2f MiB", n / 1048576 }'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == "<=") ? v <= t : (op == ">=") ? v >= t : v < t; print ok ? "met" : "NOT met" }'; }

echo
echo "==== results: medians of $RUNS run(s); load average now $(cut -d' ' -f1-3 /proc/loadavg) ===="
printf '%-58s %14s %s\n' FIGURE VALUE TARGET
if has hash; then
printf '%-58s %14s\n' "hash: sta share TREE ($FILES files), s" "$(s3 "$ht")"
printf '%-58s %14s\n' "hash: sta share FILE (1 file), s" "$(s3 "$hs")"
printf '%-58s %14s %s\n' "hash: STA tree / file" "$(ratio "$ht" "$hs") x" "<= 1.5 x: $(verdict "$(ratio "$ht" "$hs")" "<=" 1.5)"
printf '%-58s %14s\n' "hash: libtorrent $LT_VERSION create_torrent TREE, s" "$(s3 "$lt_t")"
printf '%-58s %14s\n' "hash: libtorrent $LT_VERSION create_torrent FILE, s" "$(s3 "$lt_s")"
printf '%-58s %14s\n' "hash: libtorrent tree / file" "$(ratio "$lt_t" "$lt_s") x"
printf '%-58s %14s\n' "hash: STA / libtorrent, tree" "$(ratio "$ht" "$lt_t") x"
printf '%-58s %14s\n' "hash: STA / libtorrent, file" "$(ratio "$hs" "$lt_s") x"
fi
if has download; then
printf '%-58s %14s\n' "download 1 -> 1: TREE, MB/s ($(s3 "$dt") s)" "$rt"
printf '%-58s %14s\n' "download 1 -> 1: FILE, MB/s ($(s3 "$ds") s)" "$rs"
pct=$(awk -v a="$rt" -v b="$rs" 'BEGIN { printf "%.1f", 100 * a / b }')
printf '%-58s %14s %s\n' "download: tree rate / file rate" "$pct %" ">= 70 %: $(verdict "$pct" ">=" 70)"
fi
if [ -n "$od" ]; then
    printf '%-58s %14s %s\n' "--only 1 MiB, STA seeder: leecher downloaded" "$(mib "$od")" "< 3 MiB: $(verdict "$od" "<" $((3 << 20)))"
    printf '%-58s %14s\n' "--only 1 MiB, STA seeder: seeder uploaded" "$(mib "$ou")"
elif [ -n "$ONLY_STALLED" ]; then
    printf '%-58s %14s %s\n' "--only 1 MiB, STA seeder: leecher downloaded" "stalled" "< 3 MiB: NOT met ($ONLY_STALLED)"
elif has only; then
    printf '%-58s %14s %s\n' "--only 1 MiB, STA seeder: leecher downloaded" "not run" "< 3 MiB"
fi
if [ -n "$lod" ]; then
    printf '%-58s %14s %s\n' "--only 1 MiB, libtorrent seeder: leecher downloaded" "$(mib "$lod")" "< 3 MiB: $(verdict "$lod" "<" $((3 << 20)))"
    printf '%-58s %14s\n' "--only 1 MiB, libtorrent seeder: seeder uploaded" "$(mib "$lou")"
fi
if [ "$MEM_DONE" = 1 ]; then
    printf '%-58s %14s\n' "memory: seeder of $MEM_FILES files, peak RSS (VmHWM)" "$((seed_hwm / 1024)) MiB"
    printf '%-58s %14s\n' "memory: seeder, (peak - idle) per file" "$(per "$seed_hwm" "$idle_seed") B"
    printf '%-58s %14s\n' "memory: leecher of $MEM_FILES files, peak RSS (VmHWM)" "$((leech_hwm / 1024)) MiB"
    printf '%-58s %14s\n' "memory: leecher, (peak - idle) per file" "$(per "$leech_hwm" "$idle_leech") B"
    slope() { awk -v a="$1" -v b="$2" -v n="$((MEM_FILES - MEM_FILES / 2))" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }'; }
    printf '%-58s %14s\n' "memory: seeder, added per file ($((MEM_FILES / 2)) -> $MEM_FILES files)" "$(slope "$last_seed" "$half_seed") B"
    printf '%-58s %14s\n' "memory: leecher, added per file ($((MEM_FILES / 2)) -> $MEM_FILES files)" "$(slope "$last_leech" "$half_leech") B"
    printf '%-58s %14s\n' "memory: leecher after the download, RssAnon added per file" "$(slope "$last_lrss" "$half_lrss") B"
    printf '%-58s %14s\n' "memory: bencoded files list per file (the metadata)" "$((MEM_META / MEM_FILES)) B"
    printf '%-58s %14s\n' "descriptors: peak, seeder / leecher" "$seed_fds / $leech_fds"
fi
echo "runs: hash STA tree ${sta_tree[*]}; file ${sta_single[*]}; lt tree ${lt_tree[*]}; file ${lt_single[*]}"
echo "runs: download tree ${dl_tree[*]}; file ${dl_single[*]}; --only (STA seeder) downloaded ${only_down[*]}, uploaded ${only_up[*]}; (libtorrent seeder) downloaded ${lto_down[*]}, uploaded ${lto_up[*]}"
if [ ${#PROBLEMS[@]} -gt 0 ]; then
    for p in "${PROBLEMS[@]}"; do echo "bench/dirs.sh: FAILED: $p" >&2; done
    exit 1
fi
