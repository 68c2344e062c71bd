#!/usr/bin/env python3
"""Accuracy of sta-peerd's rate limits (driven by bench/ratelimit.sh).

One seeder, one leecher, one file. Each case limits one side: the
seeder's --max-upload-rate, or the leecher's --max-download-rate, and
times the download. The achieved rate is measured in steady state: the
leecher's `downloaded` counter (sta status --json) sampled every 50 ms,
from the first sample past 10 % of the file to the first past 90 %, so
neither the start (tracker lookup, connect, the bucket's initial burst,
kernel buffers filling) nor the end counts. The whole transfer (size /
wall time of `sta get`) is printed too.

Loopback: every process on 127.0.0.1. Namespaces (--netns): the tracker,
the seeder and the leecher each in a host of bench/netns.sh, on links
shaped to --link (above the limit, so that the limiter, not the link,
sets the pace).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")


def parse_rate(s):
    s = s.strip().lower()
    for suffix in ("/s", "b"):
        if s.endswith(suffix):
            s = s[: -len(suffix)]
    units = [("ki", 1 << 10), ("mi", 1 << 20), ("gi", 1 << 30), ("k", 10**3), ("m", 10**6), ("g", 10**9)]
    for unit, mult in units:
        if s.endswith(unit):
            return int(float(s[: -len(unit)]) * mult)
    return int(s)


class Run:
    """The processes of one round, stopped (by pid) at the end."""

    def __init__(self, netns_prefix=None):
        self.procs = []
        self.prefix = netns_prefix
        self.dir = tempfile.mkdtemp(prefix="sta-ratelimit-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)

    def wrap(self, host, argv):
        if self.prefix is None:
            return argv
        return ["bash", os.path.join(ROOT, "bench", "netns.sh"), "exec", "--prefix", self.prefix, host] + argv

    def spawn(self, host, argv, name):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        p = subprocess.Popen(self.wrap(host, argv), stdout=subprocess.PIPE, stderr=log, text=True)
        self.procs.append(p)
        return p

    def wait_line(self, p, prefix, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise RuntimeError(f"no '{prefix}' line from {p.args}")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def sta(control, *args):
    out = subprocess.run([os.path.join(BIN, "sta"), "--control", control, *args],
                         check=True, capture_output=True, text=True)
    return out.stdout


def downloaded(control):
    status = json.loads(sta(control, "status", "--json"))
    return sum(f["downloaded"] for f in status["files"])


def round_once(args, side, limit, netns):
    run = Run(args.prefix if netns else None)
    try:
        host = {"tracker": "h0", "seeder": "h1", "leecher": "h2"}
        if netns:
            addr = {"tracker": "10.77.0.10", "seeder": "10.77.0.11", "leecher": "10.77.0.12"}
        else:
            addr = {k: "127.0.0.1" for k in host}
        tr = run.spawn(host["tracker"], [os.path.join(BIN, "sta-trackerd"), "--listen", addr["tracker"] + ":0",
                                          "--udp-listen", "off", "--log-level", "warn"], "tracker")
        tracker = run.wait_line(tr, "listening on ")
        data = os.path.join(run.dir, "seed")
        os.mkdir(data)
        path = os.path.join(data, "file.bin")
        with open(path, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(args.size // len(chunk)):
                f.write(chunk)
            f.write(chunk[: args.size % len(chunk)])
        controls = {}
        for who in ("seeder", "leecher"):
            d = os.path.join(run.dir, who)
            os.makedirs(d, exist_ok=True)
            argv = [os.path.join(BIN, "sta-peerd"), "--tracker", tracker, "--listen", addr[who] + ":0",
                    "--dir", d, "--log-level", "warn"]
            if who == "seeder":
                argv += ["--share", path]
                if side == "upload":
                    argv += ["--max-upload-rate", str(limit)]
            elif side == "download":
                argv += ["--max-download-rate", str(limit)]
            p = run.spawn(host[who], argv, who)
            run.wait_line(p, "listening on ")
            controls[who] = run.wait_line(p, "control on ")
        # The seeder hashed the file before it printed its address; wait
        # until the tracker lists it.
        deadline = time.time() + 60
        while "file.bin" not in sta(controls["leecher"], "list"):
            if time.time() > deadline:
                raise RuntimeError("the tracker never listed file.bin")
            time.sleep(0.05)
        t0 = time.time()
        get = subprocess.Popen([os.path.join(BIN, "sta"), "--control", controls["leecher"], "get", "file.bin"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = []
        while get.poll() is None:
            try:
                samples.append((time.time(), downloaded(controls["leecher"])))
            except (subprocess.CalledProcessError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        wall = time.time() - t0
        if get.returncode != 0:
            raise RuntimeError(f"sta get failed ({get.returncode}); logs in {run.dir}")
        lo = next((s for s in samples if s[1] >= args.size * 0.1), None)
        hi = next((s for s in samples if s[1] >= args.size * 0.9), None)
        if lo is None or hi is None or hi[0] <= lo[0]:
            raise RuntimeError("too few samples (a file too small for the limit?)")
        steady = (hi[1] - lo[1]) / (hi[0] - lo[0])
        return steady, args.size / wall
    finally:
        run.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="200M", help="file size [200M]")
    ap.add_argument("--limit", default="20M", help="the limit, bytes per second [20M]")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default="loopback,netns",
                    help="comma-separated: loopback, netns [both]")
    ap.add_argument("--prefix", help="(internal) the netns.sh prefix, when run under `netns.sh run`")
    args = ap.parse_args()
    args.size = parse_rate(args.size)
    limit = parse_rate(args.limit)
    where = [c for c in args.cases.split(",") if c]
    rows = []
    print(f"file {args.size} bytes, limit {limit} B/s, median of {args.rounds} rounds", flush=True)
    print(f"{'case':<22}{'limit B/s':>12}{'steady B/s':>14}{'error':>9}{'whole B/s':>14}{'error':>9}", flush=True)
    for place in where:
        if place == "netns" and args.prefix is None:
            print("netns: skipped (run through bench/ratelimit.sh, as root)", flush=True)
            continue
        for side in ("upload", "download"):
            got = [round_once(args, side, limit, place == "netns") for _ in range(args.rounds)]
            steady = statistics.median(g[0] for g in got)
            whole = statistics.median(g[1] for g in got)
            err = (steady - limit) / limit * 100
            werr = (whole - limit) / limit * 100
            each = " ".join(f"{g[0] / 1e6:.2f}" for g in got)
            name = f"{place} {side}"
            print(f"{name:<22}{limit:>12}{steady:>14.0f}{err:>+8.2f}%{whole:>14.0f}{werr:>+8.2f}%   (rounds, MB/s: {each})",
                  flush=True)
            rows.append((name, err))
    bad = [r for r in rows if abs(r[1]) > 5]
    if bad:
        print("beyond 5 %: " + ", ".join(r[0] for r in bad), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
