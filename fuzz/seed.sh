#!/usr/bin/env bash
# Writes seed inputs into fuzz/corpus/<target>/ from:
#   - the hex examples of spec/*.md: fenced blocks whose info string is
#     `hex KIND NAME`, mapped by KIND:
#       tracker-request*  -> tracker_request
#       tracker-response* -> tracker_response
#       peer*             -> peer_wire (a handshake is put in front of
#                            anything that is not itself a handshake)
#       ut-*              -> extension (the extended message's payload:
#                            the frame's length and id 20 cut off)
#     Valid frames of a protocol are also written back to back as one seed
#     (seed-all-spec-blocks), to drive the decode loops past one frame.
#       bencode*, info-dict* -> bencode
#       info-dict*           -> info_tree too, behind a 00 byte (the
#                               target's mode for raw info dicts)
#       bt-udp* (info string `bt-hex`, which tests/conformance.rs skips)
#                            -> bt_udp
#       krpc*                -> krpc (one DHT datagram each)
#       utp*                 -> utp (uTP headers, spec/bittorrent.md)
#     and text blocks `text bt-http NAME` (one HTTP request head, lines
#     ending in CRLF) -> bt_http; `text http-request NAME` blocks of
#     spec/http.md (a request to a daemon's --http listener: the head's
#     lines end in CRLF, a blank line, then the body's lines as written)
#     -> http_request.
#     Inside a block, whitespace is ignored and `#` starts a comment.
#   - tests/data/*.torrent and the info dicts of tests/data/info_hashes.json,
#     for bencode (the info dicts for info_tree too).
#   - a few inputs of info_tree's structured mode (first byte odd).
# Seeds are named seed-*; inputs the fuzzer found are left alone.
# Needs only bash, awk, sed and grep (no python, no xxd).
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=fuzz/corpus
targets=(tracker_request tracker_response peer_wire bencode bt_udp bt_http info_tree http_request krpc utp extension)
for t in "${targets[@]}"; do mkdir -p "$corpus/$t"; done

# A BEP 3 handshake with the Fast bit, all-zero hash and id.
handshake=13426974546f7272656e742070726f746f636f6c0000000000000004$(printf '0%.0s' {1..80})

declare -A count=() stream=()

# write TARGET NAME HEX: one seed file holding the bytes spelt by HEX.
write() {
    local path="$corpus/$1/seed-$2" hex=$3 esc
    esc=$(sed 's/../\\x&/g' <<<"$hex")
    printf '%b' "$esc" >"$path"
    count[$1]=$((${count[$1]:-0} + 1))
}

target_of() {
    case $1 in
    tracker-request*) echo tracker_request ;;
    tracker-response*) echo tracker_response ;;
    peer*) echo peer_wire ;;
    ut-*) echo extension ;;
    bencode* | info-dict*) echo bencode ;;
    bt-udp*) echo bt_udp ;;
    krpc*) echo krpc ;;
    utp*) echo utp ;;
    *) echo "" ;;
    esac
}

shopt -s nullglob
skipped=0
for md in spec/*.md; do
    # One line per block: "KIND NAME HEX" (HEX may be empty or invalid).
    while read -r kind name hex; do
        target=$(target_of "$kind")
        if [[ -z $target ]]; then
            skipped=$((skipped + 1))
            continue
        fi
        if [[ -z ${hex:-} || ! $hex =~ ^([0-9a-fA-F]{2})+$ ]]; then
            echo "seed.sh: $md: block '$kind $name' is not even-length hex, skipped" >&2
            continue
        fi
        name=${name//[^A-Za-z0-9._-]/_}
        seed=${md##*/}-$name
        if [[ $target == extension ]]; then
            hex=${hex:10}
        elif [[ $target == peer_wire && $kind == *error* ]]; then
            # Refused handshake or refused message: seed both readings.
            write "$target" "$seed-bare" "$hex"
            hex=$handshake$hex
        elif [[ $target == peer_wire && $kind != *handshake* ]]; then
            stream[$target]=${stream[$target]:-$handshake}$hex
            hex=$handshake$hex
        elif [[ $kind != *error* && $target != bencode && $target != krpc ]]; then
            stream[$target]=${stream[$target]:-}$hex
        fi
        write "$target" "$seed" "$hex"
        if [[ $kind == info-dict* ]]; then write info_tree "$seed" "00$hex"; fi
    done < <(awk '
        function flush() { print kind, name, hex; inblock = 0 }
        # A fence of 4+ backticks quotes an example of the syntax: skip it.
        !inblock && /^[ \t]*````/ { outer = !outer; next }
        outer { next }
        !inblock && /^[ \t]*(```|~~~)[ \t]*(bt-)?hex[ \t]/ {
            sub(/^[ \t]*(```+|~~~+)[ \t]*/, "")
            kind = $2; name = ($3 == "" ? NR : $3); hex = ""; inblock = 1; next
        }
        inblock && /^[ \t]*(```|~~~)/ { flush(); next }
        inblock { sub(/#.*/, ""); gsub(/[ \t\r]/, ""); hex = hex $0 }
        END { if (inblock) flush() }
    ' "$md")
done

# HTTP request heads of spec/bittorrent.md: `text bt-http NAME` blocks,
# each line sent with CRLF, then the blank line that ends the head.
while read -r name; do
    awk -v want="$name" '
        /^```text bt-http / { inblock = ($3 == want); next }
        inblock && /^```/ { inblock = 0; next }
        inblock { printf "%s\r\n", $0 }
        END { printf "\r\n" }
    ' spec/bittorrent.md >"$corpus/bt_http/seed-$name"
    count[bt_http]=$((${count[bt_http]:-0} + 1))
done < <(sed -n 's/^```text bt-http \([A-Za-z0-9._-]*\).*/\1/p' spec/bittorrent.md 2>/dev/null)

# Requests of spec/http.md: `text http-request NAME` blocks; the lines up
# to the first empty one are the head (CRLF), the rest the body, as is.
while read -r name; do
    awk -v want="$name" '
        /^```text http-request / { inblock = ($3 == want); inbody = 0; next }
        inblock && /^```/ { if (!inbody) printf "\r\n"; inblock = 0; next }
        inblock && inbody { printf "%s", $0; next }
        inblock && $0 == "" { inbody = 1; printf "\r\n"; next }
        inblock { printf "%s\r\n", $0 }
    ' spec/http.md >"$corpus/http_request/seed-$name"
    count[http_request]=$((${count[http_request]:-0} + 1))
done < <(sed -n 's/^```text http-request \([A-Za-z0-9._-]*\).*/\1/p' spec/http.md 2>/dev/null)

# Every block of a protocol back to back, to drive the decode loops.
for t in tracker_request tracker_response peer_wire; do
    if [[ -n ${stream[$t]:-} ]]; then write "$t" all-spec-blocks "${stream[$t]}"; fi
done

# Real peer-wire sessions ("# sent ..." / "# recv ..." then a frame in hex):
# each direction, handshake first, is one stream.
for f in tests/data/*session*.txt; do
    for dir in sent recv; do
        hex=$(awk -v dir="$dir" '
            /^#/ { keep = ($2 == dir); next }
            keep { gsub(/[ \t\r]/, ""); printf "%s", $0 }
        ' "$f")
        if [[ -n $hex ]]; then
            base=${f##*/}
            write peer_wire "${base%.txt}-$dir" "$hex"
        fi
    done
done

for f in tests/data/*.torrent; do
    rm -f "$corpus/bencode/seed-${f##*/}"
    cat "$f" >"$corpus/bencode/seed-${f##*/}"
    count[bencode]=$((${count[bencode]:-0} + 1))
done
if [[ -f tests/data/info_hashes.json ]]; then
    n=0
    while read -r hex; do
        n=$((n + 1))
        write bencode "info-dict-$n" "$hex"
        write info_tree "info-dict-$n" "00$hex"
    done < <(grep -o '"info_dict_bencoded_hex": *"[0-9a-fA-F]*"' tests/data/info_hashes.json |
        sed 's/.*"\([0-9a-fA-F]*\)"$/\1/')
fi

# info_tree's structured mode (first byte odd): a count byte, then per
# file a flags byte (length kind, attr, depth), a u16le length and its
# components (a byte each: an index into the target's list of pieces).
write info_tree structured-two-dirs 010143030000014305000100
write info_tree structured-pad 0102230500002bfb3f1123050001
write info_tree structured-deep 0100e3010004$(printf '00%.0s' {1..64})

for t in "${targets[@]}"; do
    echo "seed.sh: $t: ${count[$t]:-0} seeds"
done
if ((skipped)); then echo "seed.sh: $skipped hex blocks of other kinds ignored"; fi
