#!/usr/bin/python3
"""libtorrent side of the transfer and swarm benchmarks (driven by `sta-bench`).

    lt_peer.py make  --file PATH --piece-size N --out TORRENT [--announce URL] [--hybrid]
    lt_peer.py files --torrent TORRENT
    lt_peer.py seed  --torrent TORRENT --save DIR [--listen IP:PORT] [--upload-limit B/S]
    lt_peer.py leech --torrent TORRENT --save DIR --peer 127.0.0.1:PORT [...]
    lt_peer.py leech --torrent TORRENT --save DIR --reannounce SECS
    lt_peer.py leech --torrent TORRENT --save DIR --listen IP:PORT --wait-go
    lt_peer.py leech --magnet URI --save DIR --peer 127.0.0.1:PORT [...]

Without --peer, the peers come from the trackers of the .torrent (its
announce URL, e.g. sta-trackerd's udp://HOST:PORT/announce). With
--reannounce SECS, `seed` and `leech` announce again every SECS seconds
(ignoring the tracker's minimum interval), so they learn of peers that
joined since.

`make` hashes the file into a v1-only .torrent (the info dict STA builds for
the same file, name and piece size, so the same info hash) and prints
`hashed SECONDS INFOHASH VERSION`, SECONDS timed inside this script
(create_torrent + set_piece_hashes + generate + write). --announce puts a
tracker URL in it (e.g. udp://10.77.0.10:6969/announce, sta-trackerd).
PATH may be a directory: the .torrent is then a multi-file one named after
it (libtorrent's add_files). With --hybrid it is a hybrid v1+v2 .torrent
(libtorrent's default), whose files are aligned on pieces by BEP 47 pad
files; VERSION is then followed by the v2 info hash.

`files` prints what libtorrent reads in a .torrent: `name NAME`, `v1 HASH`
(or `v1 none`), `v2 HASH` (or `v2 none`), then one line per file,
`file OFFSET SIZE KIND PATH`, KIND being `pad` (a BEP 47 pad file) or
`data`, PATH relative to the torrent's name with `/` between components.

--listen IP:PORT (seed and leech) listens there instead of 127.0.0.1:0,
for one peer per emulated host (bench/netns.sh); it also leaves
`allow_multiple_connections_per_ip` and `ssrf_mitigation` at libtorrent's
defaults, which only the loopback runs need changed.

`seed` checks the file against the torrent (libtorrent hashes it: the seeder
is "already hashed" once this ends), prints `listening on ADDR`, then
`seeding` once every piece is checked, and serves until its stdin closes.
If the torrent has a tracker, it then announces and prints `announced
PEERS` once the tracker answered (so that leechers started after that line
are told of it). The line `status` on stdin prints `uploaded BYTES` at once
(answered by the thread that reads stdin, so the answer does not wait for
the alert loop).

`leech --magnet URI` (instead of --torrent) starts from a magnet link:
libtorrent fetches the info dict from its peers (BEP 9), prints
`metadata INFOHASH BYTES` once it has it, then downloads as usual.

`leech` connects straight to each --peer (and to the tracker's peers),
prints `progress BYTES PIECES` (bytes done, pieces verified) once a
second, and `finished SECONDS MONOTONIC` (SECONDS since the script
started; MONOTONIC is CLOCK_MONOTONIC, the clock of the harness's Instant,
so it can time the finish without the delay of reading the line) once
every piece is downloaded and verified (torrent_finished_alert or
is_seeding) and every block is in the file; it then prints `flushed`
(kept for harnesses that wait for it) and keeps seeding until stdin
closes. libtorrent 2.0 hashes a piece from its store buffer while the
blocks' write jobs may still be queued: at torrent_finished_alert up to a
few blocks (measured: 5 of 65,536 for 1 GiB) were not yet in the file, and
a process stopped then leaves holes. So `finished` waits for flush_cache's
cache_flushed_alert (a fence behind every queued job of the torrent).
With --wait-go it prints `listening on ADDR` and adds the torrent only
when the line `go` comes on stdin, so a harness can start many leechers
and then tell them all to download at once.

`hash-tree --dir DIR --piece-size N --out TORRENT [--announce URL]` makes a v1-only
.torrent of the tree DIR (bench/dirs.sh) like `make`, but lists its files
in STA's order (sorted by path, component by component; symlinks and
empty directories skipped) instead of the order of libtorrent's add_files,
so that its info hash can be compared with STA's; it prints `hashed
SECONDS INFOHASH VERSION` as `make` does (the walk is in Python here).

--ssl-cert CERT --ssl-key KEY (seed and leech) make it a member of an
STA TLS swarm, for SSL torrents (their info dict's `ssl-cert` is the
swarm's CA): the session listens on an SSL port only (a
`listen_interfaces` entry ending in `s`), which is what `listening on`
prints and what libtorrent announces for an SSL torrent, and the torrent
gets CERT and KEY (PEM, from `sta ca issue`) with
torrent_handle.set_ssl_certificate. Everything else is as without TLS:
still TCP only (uTP off; libtorrent's SSL peers run over TCP here) and
no BitTorrent encryption (pe_disabled): TLS is the encryption.

--dht-bootstrap IP:PORT (seed and leech) turns libtorrent's DHT on, with
that node as its only bootstrap node and dht_restrict_routing_ips /
dht_restrict_search_ips off (a private /24 of emulated hosts); with
--reannounce the torrent is also announced to the DHT every SECS.

SIGTERM ends the process as stdin closing does: the session is destroyed
normally, which completes its disk jobs (Python's default would kill it
with its disk thread's work undone).

`leech` also prints `connected AFTER MONOTONIC ADDR tcp|utp` once, when
its first peer has finished the handshake, AFTER seconds after the torrent
was added (its --peer given, its trackers first asked). With --client-defaults, it
keeps libtorrent's defaults for uTP (on, tried before TCP) and encryption
(enabled), as a user's client has them (tests/defaults_netns.rs).

Every session: TCP only (uTP off), no encryption, no DHT, LSD, UPnP or
NAT-PMP; on 127.0.0.1, several connections per IP allowed and no SSRF
mitigation; libtorrent defaults otherwise. Every wait is bounded by --timeout; stdin closing (the harness
is gone) ends the process at once.
"""

import argparse
import collections
import faulthandler
import os
import select
import signal
import sys
import threading
import time

STARTED = time.monotonic()
# A crash inside libtorrent (SIGSEGV, SIGBUS) prints the Python stack of
# every thread on stderr, which the harness shows, instead of nothing.
faulthandler.enable()

import libtorrent as lt  # noqa: E402  (the import is part of the timed start)


def say(*words):
    print(*words, flush=True)


def fail(message):
    print(f"lt_peer.py: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def watch_stdin(lines, answer=None):
    """Reads stdin on a thread; `closed` is set at EOF or on SIGTERM. A
    line that `answer(line)` handles (returns True for) is not queued."""
    closed = threading.Event()
    signal.signal(signal.SIGTERM, lambda _sig, _frame: closed.set())

    def run():
        try:
            for line in sys.stdin:
                line = line.strip()
                if answer is None or not answer(line):
                    lines.append(line)
        finally:
            closed.set()

    threading.Thread(target=run, daemon=True).start()
    return closed


def session(listen=None, ssl=False, client_defaults=False, dht=None):
    cat = lt.alert.category_t
    interfaces = listen or "127.0.0.1:0"
    if ssl:
        # SSL port only: an STA TLS swarm has no plain peer port.
        interfaces = ",".join(i + "s" for i in interfaces.split(","))
    settings = {
        "listen_interfaces": interfaces,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_tcp": True,
        "enable_incoming_tcp": True,
        "out_enc_policy": int(lt.enc_policy.pe_disabled),
        "in_enc_policy": int(lt.enc_policy.pe_disabled),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # storage_notification: cache_flushed_alert (see flush()).
        "alert_mask": int(
            cat.status_notification
            | cat.error_notification
            | cat.tracker_notification
            | cat.storage_notification
            # Peers connecting and leaving, with libtorrent's reason: kept
            # for the stall report (see PeerLog).
            | cat.connect_notification
            | cat.peer_notification
        ),
    }
    if client_defaults:
        # uTP and BitTorrent encryption as a user's libtorrent has them
        # (uTP tried first, encryption enabled both ways).
        for key in (
            "enable_outgoing_utp",
            "enable_incoming_utp",
            "out_enc_policy",
            "in_enc_policy",
        ):
            del settings[key]
    if dht:
        # --dht-bootstrap: a DHT node joining through that node only. On a
        # private /24 (bench/netns.sh) libtorrent's defaults would keep one
        # node per /24 in its table and refuse lookups' answers from the
        # same range.
        settings["enable_dht"] = True
        settings["dht_bootstrap_nodes"] = dht
        settings["dht_restrict_routing_ips"] = False
        settings["dht_restrict_search_ips"] = False
    if listen is None:
        # All peers share 127.0.0.1 there, and trackers on 127.0.0.1
        # (sta-trackerd in the tests) are fine.
        settings["allow_multiple_connections_per_ip"] = True
        settings["ssrf_mitigation"] = False
    ses = lt.session(settings)
    # See wait_alerts(): libtorrent writes a byte here when the first alert
    # after a pop_alerts() is posted.
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    ses.set_alert_fd(w)
    ALERT_FDS[id(ses)] = (r, w)
    return ses


# Each session's alert pipe (read end, write end), see session().
ALERT_FDS = {}


def wait_alerts(ses, ms):
    """Waits up to `ms` milliseconds for an alert to pop.

    Not ses.wait_for_alert(): it returns a pointer to the first queued
    alert, which libtorrent's network thread may move (its queue grows as
    alerts are posted) before the binding reads the alert's type, and the
    process dies of a segmentation fault (tests/dirs.rs, 2026-12-03, 2 runs
    of about 130). The alert fd carries no pointer."""
    r, _ = ALERT_FDS[id(ses)]
    if select.select([r], [], [], ms / 1000)[0]:
        try:
            while os.read(r, 4096):
                pass
        except BlockingIOError:
            pass


def listen_host(listen):
    return listen.rsplit(":", 1)[0] if listen else "127.0.0.1"


def add(ses, torrent, save, args=None):
    info = lt.torrent_info(torrent)
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = save
    return with_ssl(ses.add_torrent(params), args)


# RFC 7919's ffdhe2048. libtorrent 2.0.8's set_ssl_certificate fails
# ("use DH file: asio.ssl error") without a Diffie-Hellman parameter file,
# though TLS 1.3 with STA negotiates ECDHE and never uses it.
FFDHE2048 = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def with_ssl(handle, args):
    """Gives an SSL torrent our certificate (--ssl-cert, --ssl-key)."""
    if args is None or not args.ssl_cert:
        return handle
    if not handle.torrent_file().ssl_cert():
        fail("--ssl-cert given, but the torrent has no 'ssl-cert': not an SSL torrent")
    dh = os.path.join(args.save, ".lt_peer-ffdhe2048.pem")
    with open(dh, "w") as f:
        f.write(FFDHE2048)
    handle.set_ssl_certificate(args.ssl_cert, args.ssl_key, dh)
    return handle


def wait_listening(ses, deadline, ssl=False):
    while time.monotonic() < deadline:
        port = 0 if ssl else ses.listen_port()
        if port:
            return port
        wait_alerts(ses, 50)
        for a in ses.pop_alerts():
            # The binding has no ssl_listen_port(); listen_port() is the
            # plain port, 0 with an SSL listener only.
            if (
                ssl
                and isinstance(a, lt.listen_succeeded_alert)
                and a.socket_type == lt.socket_type_t.tcp_ssl
            ):
                return a.port
    fail("the session did not start listening")


class Reannouncer:
    """Forces an announce to every tracker (and, with `dht`, to the DHT)
    every `every` seconds (0: never)."""

    def __init__(self, handle, every, dht=False):
        self.handle = handle
        self.every = every
        self.dht = dht
        self.next = time.monotonic() + every

    def tick(self):
        if self.every and time.monotonic() >= self.next:
            self.handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
            if self.dht:
                self.handle.force_dht_announce()
            self.next = time.monotonic() + self.every


# peer_info::utp_socket (bit 17 of peer_info.flags in libtorrent 2.0),
# which the Python binding does not export.
UTP_SOCKET = 1 << 17


class Connected:
    """Prints `connected AFTER MONOTONIC ADDR tcp|utp` once, when the
    first peer has finished its handshake: AFTER seconds since the torrent
    was added (and its --peer given), MONOTONIC as for `finished`."""

    def __init__(self, handle):
        self.handle, self.done, self.added = handle, False, time.monotonic()

    def tick(self):
        if self.done:
            return
        pending = lt.peer_info.connecting | lt.peer_info.handshake
        for p in self.handle.get_peer_info():
            if p.flags & pending:
                continue
            now = time.monotonic()
            kind = "utp" if p.flags & UTP_SOCKET else "tcp"
            say(f"connected {now - self.added:.6f} {now:.6f} {p.ip[0]}:{p.ip[1]} {kind}")
            self.done = True
            return


class PeerLog:
    """The last peer connections and disconnections, with libtorrent's
    reasons: a stall with no peer left says why each one went."""

    KINDS = ("peer_connect_alert", "peer_disconnected_alert", "peer_error_alert")

    def __init__(self):
        self.lines = collections.deque(maxlen=40)

    def note(self, alerts):
        for a in alerts:
            if type(a).__name__ in self.KINDS:
                self.lines.append(f"{time.monotonic() - STARTED:.3f} {a.message()}")


def report_stall(handle, peer_log=None):
    """On stderr: each peer as libtorrent sees it, for a download that
    stopped moving (the harness shows stderr when a wait fails)."""
    st = handle.status()
    lines = [f"stalled at {st.total_wanted_done} bytes, {st.num_pieces} pieces, state {st.state}"]
    for p in handle.get_peer_info():
        f = p.flags
        flags = "".join(
            c
            for c, bit in (
                ("i", lt.peer_info.interesting),
                ("c", lt.peer_info.choked),
                ("I", lt.peer_info.remote_interested),
                ("C", lt.peer_info.remote_choked),
                ("s", lt.peer_info.seed),
                ("e", lt.peer_info.endgame_mode),
                ("n", lt.peer_info.snubbed),
            )
            if f & bit
        )
        held = sum(1 for b in p.pieces if b)
        lines.append(
            f"  peer {p.ip[0]}:{p.ip[1]} {p.client!r} flags={flags} holds={held} "
            f"queue={p.download_queue_length} down={p.total_download} up={p.total_upload} "
            f"last_request={p.last_request} last_active={p.last_active}"
        )
    if peer_log is not None and peer_log.lines:
        lines.append("  peer events:")
        lines.extend(f"    {line}" for line in peer_log.lines)
    print("\n".join(lines), file=sys.stderr, flush=True)


def check_errors(alerts):
    for a in alerts:
        if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
            fail(f"libtorrent error: {a.message()}")


def flush(ses, handle, deadline, closed):
    """Waits until every block written so far is in the file (see the
    module comment); False if stdin closed first."""
    handle.flush_cache()
    while True:
        if closed.is_set():
            return False
        if time.monotonic() > deadline:
            fail("the downloaded blocks were not flushed to the file in time")
        wait_alerts(ses, 20)
        alerts = ses.pop_alerts()
        check_errors(alerts)
        flushed = any(isinstance(a, lt.cache_flushed_alert) for a in alerts)
        # An alert is valid only until the next pop_alerts(): hold none
        # across it (libtorrent PR 8295).
        del alerts
        if flushed:
            return True


def make(args):
    started = time.monotonic()
    fs = lt.file_storage()
    lt.add_files(fs, args.file)
    flags = 0 if args.hybrid else lt.create_torrent.v1_only
    ct = lt.create_torrent(fs, args.piece_size, flags=flags)
    if args.announce:
        ct.add_tracker(args.announce)
    lt.set_piece_hashes(ct, os.path.dirname(os.path.abspath(args.file)))
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    secs = time.monotonic() - started
    ti = lt.torrent_info(args.out)
    if args.hybrid:
        say(f"hashed {secs:.6f} {ti.info_hashes().v1} {lt.__version__} {ti.info_hashes().v2}")
    else:
        say(f"hashed {secs:.6f} {ti.info_hash()} {lt.__version__}")


def files(args):
    ti = lt.torrent_info(args.torrent)
    hashes = ti.info_hashes()
    say(f"name {ti.name()}")
    say(f"v1 {hashes.v1 if hashes.has_v1() else 'none'}")
    say(f"v2 {hashes.v2 if hashes.has_v2() else 'none'}")
    fs = ti.files()
    prefix = ti.name() + os.sep
    for i in range(fs.num_files()):
        kind = "pad" if fs.file_flags(i) & lt.file_storage.flag_pad_file else "data"
        path = fs.file_path(i)
        if path.startswith(prefix):
            path = path[len(prefix):]
        path = path.replace(os.sep, "/")
        say(f"file {fs.file_offset(i)} {fs.file_size(i)} {kind} {path}")


def wait_announced(ses, handle, deadline, closed):
    """Announces now and waits for the tracker's answer: the peers it gave."""
    handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    while time.monotonic() < deadline and not closed.is_set():
        wait_alerts(ses, 50)
        for a in ses.pop_alerts():
            if isinstance(a, lt.tracker_reply_alert):
                return a.num_peers
            if isinstance(a, lt.tracker_error_alert):
                fail(f"tracker error: {a.message()}")
            check_errors([a])
    fail("the tracker did not answer the seeder's announce in time")


def seed(args):
    lines = []
    handle = None

    def answer(line):
        # Answered here, not in the alert loop: no added delay.
        if line == "status" and handle is not None:
            say(f"uploaded {handle.status().total_payload_upload}")
            return True
        return False

    closed = watch_stdin(lines, answer)
    deadline = time.monotonic() + args.timeout
    ssl = bool(args.ssl_cert)
    ses = session(args.listen, ssl, dht=args.dht_bootstrap)
    handle = add(ses, args.torrent, args.save, args)
    if args.upload_limit:
        # On the torrent, not the session: the session's limit spares
        # peers on the local network (loopback included).
        handle.set_upload_limit(args.upload_limit)
    again = Reannouncer(handle, args.reannounce, bool(args.dht_bootstrap))
    say(f"listening on {listen_host(args.listen)}:{wait_listening(ses, deadline, ssl)}")
    while not handle.status().is_seeding:
        if time.monotonic() > deadline:
            fail("the seeder did not finish checking its file in time")
        if closed.is_set():
            return
        wait_alerts(ses, 50)
        check_errors(ses.pop_alerts())
    say("seeding")
    if handle.trackers():
        say(f"announced {wait_announced(ses, handle, deadline, closed)}")
    else:
        handle.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    while not closed.is_set():
        again.tick()
        lines.clear()
        wait_alerts(ses, 100)
        check_errors(ses.pop_alerts())


def wait_go(ses, go, closed, deadline):
    """Until the line `go` (True), or stdin closed or the deadline (False)."""
    while time.monotonic() < deadline and not closed.is_set():
        if go.wait(0.5):
            return True
        ses.pop_alerts()
    return False


def leech(args):
    lines = []
    go = threading.Event()

    def answer(line):
        if line == "go":
            go.set()
            return True
        return False

    closed = watch_stdin(lines, answer)
    deadline = STARTED + args.timeout
    ssl = bool(args.ssl_cert)
    ses = session(args.listen, ssl, args.client_defaults, args.dht_bootstrap)
    if args.magnet:
        params = lt.parse_magnet_uri(args.magnet)
        params.save_path = args.save
        handle = ses.add_torrent(params)
    elif args.wait_go:
        info = lt.torrent_info(args.torrent)
        say(f"listening on {listen_host(args.listen)}:{wait_listening(ses, deadline, ssl)}")
        if not wait_go(ses, go, closed, deadline):
            return
        params = lt.add_torrent_params()
        params.ti = info
        params.save_path = args.save
        handle = with_ssl(ses.add_torrent(params), args)
    else:
        handle = add(ses, args.torrent, args.save, args)
    connected = Connected(handle)
    peer_log = PeerLog()
    for peer in args.peer:
        host, port = peer.rsplit(":", 1)
        handle.connect_peer((host, int(port)))
    again = Reannouncer(handle, args.reannounce, bool(args.dht_bootstrap))
    finished = False
    next_report = time.monotonic() + 1
    # A download that stops moving for STALL s gets its peers described on
    # stderr, every STALL s while it stays stuck.
    last_done, moved_at, stall = -1, time.monotonic(), 5.0
    told_metadata = False
    while not finished:
        if args.magnet and not told_metadata and handle.status().has_metadata:
            ti = handle.torrent_file()
            say(f"metadata {ti.info_hash()} {ti.metadata_size()}")
            told_metadata = True
        now = time.monotonic()
        if now >= next_report:
            st = handle.status()
            say(f"progress {st.total_wanted_done} {st.num_pieces}")
            next_report = now + 1
            if st.total_wanted_done != last_done:
                last_done, moved_at = st.total_wanted_done, now
            elif now - moved_at >= stall:
                report_stall(handle, peer_log)
                moved_at = now
        if now > deadline:
            st = handle.status()
            fail(f"download not finished in {args.timeout} s ({st.num_pieces} pieces)")
        if closed.is_set():
            return
        again.tick()
        connected.tick()
        wait_alerts(ses, 20)
        alerts = ses.pop_alerts()
        check_errors(alerts)
        peer_log.note(alerts)
        finished = any(isinstance(a, lt.torrent_finished_alert) for a in alerts)
        del alerts  # see flush()
        finished = finished or handle.status().is_seeding
    if not flush(ses, handle, deadline, closed):
        return
    now = time.monotonic()
    say(f"finished {now - STARTED:.6f} {now:.6f}")
    say("flushed")
    # Now a seeder: keep serving (and announcing) until stdin closes.
    end = time.monotonic() + args.timeout
    while not closed.is_set() and time.monotonic() < end:
        again.tick()
        wait_alerts(ses, 100)
        ses.pop_alerts()


def hash_tree(args):
    started = time.monotonic()
    root = os.path.abspath(args.dir)
    name = os.path.basename(root)
    files = []
    for top, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        for n in names:
            path = os.path.join(top, n)
            if os.path.isfile(path) and not os.path.islink(path):
                rel = os.path.relpath(path, root).split(os.sep)
                files.append(([c.encode() for c in rel], os.path.getsize(path)))
    files.sort()
    fs = lt.file_storage()
    for parts, size in files:
        fs.add_file("/".join([name] + [c.decode() for c in parts]), size)
    ct = lt.create_torrent(fs, args.piece_size, flags=lt.create_torrent.v1_only)
    if args.announce:
        ct.add_tracker(args.announce)
    lt.set_piece_hashes(ct, os.path.dirname(root))
    data = lt.bencode(ct.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    secs = time.monotonic() - started
    ih = lt.torrent_info(args.out).info_hash()
    say(f"hashed {secs:.6f} {ih} {lt.__version__}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("make")
    m.add_argument("--file", required=True)
    m.add_argument("--piece-size", type=int, default=524288)
    m.add_argument("--out", required=True)
    m.add_argument("--announce", default="")
    m.add_argument("--hybrid", action="store_true")
    f = sub.add_parser("files")
    f.add_argument("--torrent", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--torrent", required=True)
    s.add_argument("--save", required=True)
    s.add_argument("--timeout", type=float, default=600)
    s.add_argument("--reannounce", type=float, default=0)
    s.add_argument("--listen", default=None)
    s.add_argument("--upload-limit", type=int, default=0, help="bytes per second")
    lch = sub.add_parser("leech")
    source = lch.add_mutually_exclusive_group(required=True)
    source.add_argument("--torrent")
    source.add_argument("--magnet", help="a magnet link: the info dict comes from the peers")
    lch.add_argument("--save", required=True)
    lch.add_argument("--peer", action="append", default=[])
    lch.add_argument("--timeout", type=float, default=600)
    lch.add_argument("--reannounce", type=float, default=0)
    lch.add_argument("--listen", default=None)
    lch.add_argument("--wait-go", action="store_true")
    lch.add_argument(
        "--client-defaults",
        action="store_true",
        help="keep libtorrent's uTP and encryption defaults (uTP first, encryption enabled)",
    )
    for sub_parser in (s, lch):
        sub_parser.add_argument(
            "--dht-bootstrap", default="", help="IP:PORT: run a DHT node joining through it"
        )
        sub_parser.add_argument("--ssl-cert", default="", help="PEM certificate, for SSL torrents")
        sub_parser.add_argument("--ssl-key", default="", help="its PEM key")
    ht = sub.add_parser("hash-tree")
    ht.add_argument("--dir", required=True)
    ht.add_argument("--piece-size", type=int, default=524288)
    ht.add_argument("--out", required=True)
    ht.add_argument("--announce", default="")
    args = p.parse_args()
    if getattr(args, "ssl_cert", "") and not args.ssl_key:
        fail("--ssl-cert needs --ssl-key")
    if args.mode == "hash-tree":
        return hash_tree(args)
    {"make": make, "files": files, "seed": seed, "leech": leech}[args.mode](args)


if __name__ == "__main__":
    main()
