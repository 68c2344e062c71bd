//! `sta-loadgen`: plays a population of peers against a tracker and prints
//! throughput, latency, server CPU and server memory.
//!
//! Two targets, one population (same `--seed`, same files, same holders):
//!
//! - an STA tracker over its TCP protocol (`--tcp ADDR`, or `--spawn PATH`
//!   to start `sta-trackerd` on a free loopback port): each simulated peer
//!   is one session that sends `Hello`, then `Announce` for every file it
//!   holds; the steady phase mixes `GetPeers`, `Have` and re-announces;
//! - a BitTorrent UDP tracker such as opentracker (`--udp ADDR`, BEP 15):
//!   each simulated peer has its own peer id and port; an announce there
//!   both registers the peer and returns up to 50 others.
//!
//! Requests are pipelined: each STA session (each UDP socket) keeps
//! `--window` requests outstanding (closed loop), or with `--rate R`
//! requests are sent on a fixed schedule (open loop) and latency counts
//! from the scheduled time, so a stalled server cannot hide its queue.

use mio::net::{TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use sta::limits::MAX_TRACKER_FRAME;
use sta::meta::Info;
use sta::rng::Rng;
use sta::wire::split_frame;
use sta::wire::tracker::{Pieces, Request, Response, req, resp};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const HELP: &str = "\
sta-loadgen: drive a tracker with a simulated population and print figures.

USAGE:
    sta-loadgen (--tcp ADDR | --spawn PATH | --udp ADDR) [OPTIONS]

TARGET:
    --tcp ADDR            an STA tracker (sta-trackerd) listening on ADDR
    --spawn PATH          start PATH (sta-trackerd) on 127.0.0.1:0 and use it
    --server-cpu N        with --spawn: pin the tracker to CPU N (taskset)
    --udp ADDR            a BEP 15 UDP tracker (opentracker) on ADDR
    --tracker-pid PID     server process to measure (RSS, CPU); implied by --spawn

POPULATION:
    --files N             files [default: 10000]
    --max-peers N         most peers per file [default: 100]
    --dist D              peers per file: uniform (1..=max) or zipf [default: uniform]
    --sessions N          simulated peers (TCP sessions) [default: 1000]
    --min-pieces N        [default: 64]
    --max-pieces N        [default: 512]
    --seeders PCT         share of (peer, file) entries that are seeders [default: 30]
    --seed N              population and request seed [default: 1]
    --write-hashes FILE   write the info hashes (hex, one a line) and exit

LOAD:
    --seconds S           steady phase duration [default: 10]
    --window N            outstanding requests per session / UDP socket, in
                          steady closed loop (and UDP setup) [default: 8]
    --setup-window N      STA setup: outstanding announces per session [default: 16]
    --rate R              open loop: R requests/s in all, instead of windows
    --burst K             open loop: requests come K at a time from one session
                          (or UDP socket), as a peer reporting several pieces
                          at once would send them [default: 1]
    --threads N           load generator threads [default: 1]
    --udp-sockets N       UDP sockets [default: 16]
    --mix SPEC            STA steady mix [default: getpeers:50,have:40,announce:10]
    --filter PCT          GetPeers with a piece filter [default: 30]
    --want N              peers wanted per GetPeers / UDP announce [default: 50]
    --wait MODE           when nothing is ready: nap (sleep --nap-us, then poll
                          again), spin, or block (in poll) [default: nap]
    --nap-us N            [default: 25]

Prints a report and one `RESULT key=value ...` line for scripts.
";

// ---------------------------------------------------------------- options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dist {
    Uniform,
    Zipf,
}

#[derive(Debug, Clone, Copy)]
struct Mix {
    getpeers: u32,
    have: u32,
    announce: u32,
}

#[derive(Debug, Clone)]
enum Target {
    Sta(SocketAddr),
    Udp(SocketAddr),
}

#[derive(Debug, Clone)]
struct Args {
    tcp: Option<SocketAddr>,
    spawn: Option<PathBuf>,
    server_cpu: Option<u32>,
    udp: Option<SocketAddr>,
    tracker_pid: Option<u32>,
    files: usize,
    max_peers: usize,
    dist: Dist,
    sessions: usize,
    min_pieces: u32,
    max_pieces: u32,
    seeders: u32,
    seed: u64,
    write_hashes: Option<PathBuf>,
    seconds: f64,
    window: usize,
    setup_window: usize,
    rate: Option<f64>,
    burst: usize,
    threads: usize,
    udp_sockets: usize,
    mix: Mix,
    filter: u32,
    want: u16,
    wait: WaitMode,
}

/// What the generator does when no socket is ready.
///
/// Napping is the default: a generator blocked in poll must be woken by the
/// server's every answer, a cross-CPU wakeup that the kernel charges to the
/// server's send (tens of percent of its CPU on a VM); a spinning one burns
/// its core and, when running SCHED_FIFO, gets throttled by the kernel.
/// A nap delays reading an answer by at most its length, and batches the
/// requests an open loop makes due meanwhile (their latency still counts
/// from their scheduled time).
#[derive(Debug, Clone, Copy)]
enum WaitMode {
    Nap(Duration),
    Spin,
    Block,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn parse_args() -> Result<Option<Args>, BoxError> {
    let mut p = pico_args::Arguments::from_env();
    if p.contains(["-h", "--help"]) {
        print!("{HELP}");
        return Ok(None);
    }
    let dist = match p
        .opt_value_from_str::<_, String>("--dist")?
        .as_deref()
        .unwrap_or("uniform")
    {
        "uniform" => Dist::Uniform,
        "zipf" => Dist::Zipf,
        other => return Err(format!("--dist: unknown distribution '{other}'").into()),
    };
    let mix = parse_mix(
        p.opt_value_from_str::<_, String>("--mix")?
            .as_deref()
            .unwrap_or("getpeers:50,have:40,announce:10"),
    )?;
    let a = Args {
        tcp: p.opt_value_from_str("--tcp")?,
        spawn: p.opt_value_from_str("--spawn")?,
        server_cpu: p.opt_value_from_str("--server-cpu")?,
        udp: p.opt_value_from_str("--udp")?,
        tracker_pid: p.opt_value_from_str("--tracker-pid")?,
        files: p.opt_value_from_str("--files")?.unwrap_or(10_000),
        max_peers: p.opt_value_from_str("--max-peers")?.unwrap_or(100),
        dist,
        sessions: p.opt_value_from_str("--sessions")?.unwrap_or(1000),
        min_pieces: p.opt_value_from_str("--min-pieces")?.unwrap_or(64),
        max_pieces: p.opt_value_from_str("--max-pieces")?.unwrap_or(512),
        seeders: p.opt_value_from_str("--seeders")?.unwrap_or(30),
        seed: p.opt_value_from_str("--seed")?.unwrap_or(1),
        write_hashes: p.opt_value_from_str("--write-hashes")?,
        seconds: p.opt_value_from_str("--seconds")?.unwrap_or(10.0),
        window: p.opt_value_from_str("--window")?.unwrap_or(8),
        setup_window: p.opt_value_from_str("--setup-window")?.unwrap_or(16),
        rate: p.opt_value_from_str("--rate")?,
        burst: p.opt_value_from_str("--burst")?.unwrap_or(1),
        threads: p.opt_value_from_str("--threads")?.unwrap_or(1),
        udp_sockets: p.opt_value_from_str("--udp-sockets")?.unwrap_or(16),
        mix,
        filter: p.opt_value_from_str("--filter")?.unwrap_or(30),
        want: p.opt_value_from_str("--want")?.unwrap_or(50),
        wait: match p
            .opt_value_from_str::<_, String>("--wait")?
            .as_deref()
            .unwrap_or("nap")
        {
            "nap" => WaitMode::Nap(Duration::from_micros(
                p.opt_value_from_str("--nap-us")?.unwrap_or(25),
            )),
            "spin" => WaitMode::Spin,
            "block" => WaitMode::Block,
            other => return Err(format!("--wait: unknown mode '{other}'").into()),
        },
    };
    let rest = p.finish();
    if !rest.is_empty() {
        return Err(format!("unexpected arguments: {rest:?}").into());
    }
    if a.sessions < a.max_peers || a.sessions > 40_000 {
        return Err("--sessions must be at least --max-peers and at most 40000".into());
    }
    if a.min_pieces == 0 || a.min_pieces > a.max_pieces {
        return Err("need 0 < --min-pieces <= --max-pieces".into());
    }
    if a.threads == 0 || a.window == 0 || a.setup_window == 0 || a.window > 60_000 || a.burst == 0 {
        return Err("--threads, --window and --setup-window must be positive".into());
    }
    if a.udp_sockets < a.threads {
        return Err("--udp-sockets must be at least --threads".into());
    }
    Ok(Some(a))
}

fn parse_mix(spec: &str) -> Result<Mix, BoxError> {
    let mut mix = Mix {
        getpeers: 0,
        have: 0,
        announce: 0,
    };
    for part in spec.split(',') {
        let (name, weight) = part
            .split_once(':')
            .ok_or_else(|| format!("--mix: expected name:weight, got '{part}'"))?;
        let weight: u32 = weight.parse()?;
        match name {
            "getpeers" => mix.getpeers = weight,
            "have" => mix.have = weight,
            "announce" => mix.announce = weight,
            _ => return Err(format!("--mix: unknown request '{name}'").into()),
        }
    }
    if mix.getpeers + mix.have + mix.announce == 0 {
        return Err("--mix: all weights are zero".into());
    }
    Ok(mix)
}

// ------------------------------------------------------------- population

struct FileSpec {
    /// The bencoded info dict, as announced.
    info: Vec<u8>,
    hash: [u8; 20],
    pieces: u32,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    file: u32,
    seeder: bool,
}

struct Population {
    files: Vec<FileSpec>,
    /// What each simulated peer holds.
    sessions: Vec<Vec<Hold>>,
    entries: usize,
}

const PIECE_LENGTH: u32 = 256 * 1024;

fn fill_random(rng: &mut Rng, out: &mut [u8]) {
    for chunk in out.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
}

fn build_population(a: &Args) -> Population {
    let mut rng = Rng::new(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut files = Vec::with_capacity(a.files);
    for i in 0..a.files {
        let pieces = a.min_pieces + rng.below((a.max_pieces - a.min_pieces + 1) as usize) as u32;
        let mut hashes = vec![0u8; pieces as usize * 20];
        fill_random(&mut rng, &mut hashes);
        let length = u64::from(pieces - 1) * u64::from(PIECE_LENGTH)
            + 1
            + rng.below(PIECE_LENGTH as usize) as u64;
        let info = Info::new(&format!("loadgen-{i:05}.bin"), length, PIECE_LENGTH, hashes)
            .expect("a valid info dict");
        files.push(FileSpec {
            hash: info.info_hash,
            pieces: info.num_pieces(),
            info: info.bencoded,
        });
    }
    let mut sessions = vec![Vec::new(); a.sessions];
    let mut perm: Vec<u32> = (0..a.sessions as u32).collect();
    let mut entries = 0;
    for (f, _) in files.iter().enumerate() {
        let k = match a.dist {
            Dist::Uniform => 1 + rng.below(a.max_peers),
            // Popularity falls with rank: a few big swarms, a long tail.
            Dist::Zipf => ((a.max_peers as f64) / ((f + 1) as f64).powf(0.6)).round() as usize,
        }
        .clamp(1, a.max_peers);
        // A partial Fisher-Yates shuffle picks k distinct holders.
        for j in 0..k {
            let r = j + rng.below(a.sessions - j);
            perm.swap(j, r);
            sessions[perm[j] as usize].push(Hold {
                file: f as u32,
                seeder: rng.below(100) < a.seeders as usize,
            });
        }
        entries += k;
    }
    Population {
        files,
        sessions,
        entries,
    }
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = *b"-SL0001-000000000000";
    let digits = format!("{i:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

fn peer_port(i: usize) -> u16 {
    20_000 + i as u16
}

/// A partial bitfield for a file of `pieces` pieces: random bytes of some
/// density, spare bits zero, and the last piece missing so it is never
/// complete (a complete bitfield would make the peer a seeder).
fn random_partial(rng: &mut Rng, pieces: u32, bits: &mut Vec<u8>) {
    let n = pieces.div_ceil(8) as usize;
    bits.clear();
    let density = rng.below(3);
    for _ in 0..n {
        let (x, y) = (rng.next_u64() as u8, (rng.next_u64() >> 8) as u8);
        bits.push(match density {
            0 => x & y,
            1 => x,
            _ => x | y,
        });
    }
    let spare = n as u32 * 8 - pieces;
    bits[n - 1] &= 0xffu8 << spare;
    let last = pieces - 1;
    bits[(last / 8) as usize] &= !(0x80u8 >> (last % 8));
}

// ---------------------------------------------------------------- figures

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Latency histogram in nanoseconds, log-linear: 64 buckets per power of
/// two, so any quantile is within 1.6 %.
#[derive(Clone)]
struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Hist {
    fn new() -> Hist {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let m = (v >> (e - SUB_BITS)) as usize;
        (e - SUB_BITS + 1) as usize * SUB + (m - SUB)
    }

    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let e = (i / SUB) as u32 - 1 + SUB_BITS;
        let m = (i % SUB + SUB) as u64;
        ((m + 1) << (e - SUB_BITS)) - 1
    }

    fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// What one worker saw.
struct Stats {
    setup: Hist,
    /// Latency of every request sent in the steady phase, by kind, even
    /// if answered after it ended (or never: a lost datagram counts with
    /// the time it was given up at).
    steady: Vec<Hist>,
    /// Steady requests answered before the phase ended: the throughput.
    done: u64,
    setup_done: u64,
    peers_returned: u64,
    peers_answers: u64,
    errors: BTreeMap<String, u64>,
    lost: u64,
    /// Open loop: requests the schedule asked for but a full window refused.
    unsent: u64,
    failure: Option<String>,
}

const KINDS: [&str; 4] = ["hello", "announce", "have", "getpeers"];
const K_HELLO: u8 = 0;
const K_ANNOUNCE: u8 = 1;
const K_HAVE: u8 = 2;
const K_GETPEERS: u8 = 3;

impl Stats {
    fn new() -> Stats {
        Stats {
            setup: Hist::new(),
            steady: (0..KINDS.len()).map(|_| Hist::new()).collect(),
            done: 0,
            setup_done: 0,
            peers_returned: 0,
            peers_answers: 0,
            errors: BTreeMap::new(),
            lost: 0,
            unsent: 0,
            failure: None,
        }
    }

    fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    fn merge(&mut self, o: Stats) {
        self.setup.merge(&o.setup);
        for (a, b) in self.steady.iter_mut().zip(&o.steady) {
            a.merge(b);
        }
        self.done += o.done;
        self.setup_done += o.setup_done;
        self.peers_returned += o.peers_returned;
        self.peers_answers += o.peers_answers;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.lost += o.lost;
        self.unsent += o.unsent;
        if self.failure.is_none() {
            self.failure = o.failure;
        }
    }
}

// ------------------------------------------------------------------ /proc

fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of the whole process, in clock ticks.
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

fn stat_cpu(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// CPU ticks of each thread of the process, by thread id.
fn thread_ticks(pid: u32) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let tid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        Some((tid, stat_cpu(&format!("/proc/{pid}/task/{tid}/stat"))?))
    })
    .collect()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

// ------------------------------------------------------------------- time

#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Phases every worker passes through together with the main thread.
struct Ctx {
    args: Args,
    pop: Population,
    target: Target,
    clock: Clock,
    /// Workers plus the main thread: setup done, steady go, steady over.
    barrier: Barrier,
}

impl Ctx {
    /// How long poll may block: up to `d` in block mode, else not at all.
    fn wait(&self, d: Duration) -> Duration {
        match self.args.wait {
            WaitMode::Block => d,
            _ => Duration::ZERO,
        }
    }

    /// After a poll: nap if it found nothing and napping is the mode.
    fn idle(&self, had_events: bool) {
        if let WaitMode::Nap(d) = self.args.wait
            && !had_events
        {
            std::thread::sleep(d);
        }
    }
}

/// The steady phase's schedule, shared by both drivers.
struct Schedule {
    start: u64,
    deadline: u64,
    /// Open loop: nanoseconds between two requests of this worker.
    interval: Option<f64>,
    issued: u64,
}

impl Schedule {
    fn new(ctx: &Ctx, now: u64) -> Schedule {
        let a = &ctx.args;
        Schedule {
            start: now,
            deadline: now + (a.seconds * 1e9) as u64,
            interval: a.rate.map(|r| 1e9 * (a.threads * a.burst) as f64 / r),
            issued: 0,
        }
    }

    /// Open loop: the scheduled time of the next request, if it is due.
    fn due(&self, now: u64) -> Option<u64> {
        let at = self.start + (self.issued as f64 * self.interval?) as u64;
        (at <= now && at < self.deadline).then_some(at)
    }

    /// How long the loop may sleep in poll (in block mode).
    fn timeout(&self, now: u64) -> Duration {
        let mut until = self.deadline.saturating_sub(now);
        if let Some(iv) = self.interval {
            let next = self.start + (self.issued as f64 * iv) as u64;
            // Sleep only when the next send is far; spin otherwise, since
            // poll's timeout has millisecond granularity.
            let wait = next.saturating_sub(now);
            until = until.min(if wait > 2_000_000 {
                wait - 1_000_000
            } else {
                0
            });
        }
        Duration::from_nanos(until)
    }
}

/// Phase tag of an outstanding request.
const SETUP: u8 = 0;
const STEADY: u8 = 1;
const DRAIN: u8 = 2;

// -------------------------------------------------------------- STA (TCP)

struct Pending {
    t: u64,
    kind: u8,
    phase: u8,
}

struct StaSession {
    stream: TcpStream,
    index: usize,
    /// Positions in the holdings of those held partially.
    partial: Vec<u32>,
    out: Vec<u8>,
    out_pos: usize,
    input: Vec<u8>,
    in_len: usize,
    inflight: VecDeque<Pending>,
    writable: bool,
    /// Setup: holdings announced so far (the hello counts as one more).
    next_setup: usize,
}

impl StaSession {
    fn connect(addr: SocketAddr, index: usize, pop: &Population) -> io::Result<StaSession> {
        let std = std::net::TcpStream::connect(addr)?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let partial = pop.sessions[index]
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.seeder)
            .map(|(i, _)| i as u32)
            .collect();
        Ok(StaSession {
            stream: TcpStream::from_std(std),
            index,
            partial,
            out: Vec::with_capacity(64 * 1024),
            out_pos: 0,
            input: vec![0; 64 * 1024],
            in_len: 0,
            inflight: VecDeque::new(),
            writable: true,
            next_setup: 0,
        })
    }

    /// Writes queued requests until done or the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        while self.writable && self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        Ok(())
    }

    /// Reads and checks every complete response.
    fn read(&mut self, clock: Clock, deadline: u64, st: &mut Stats) -> io::Result<()> {
        loop {
            if self.in_len == self.input.len() {
                let grown = self.input.len() * 2;
                self.input.resize(grown, 0);
            }
            let spare = self.input.len() - self.in_len;
            let n = match self.stream.read(&mut self.input[self.in_len..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the tracker closed the session",
                    ));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.in_len += n;
            let now = clock.ns();
            let mut pos = 0;
            loop {
                let found = split_frame(&self.input[pos..self.in_len], MAX_TRACKER_FRAME)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let Some((body, used)) = found else { break };
                if !body.is_empty() {
                    let frame = &self.input[pos..pos + used];
                    let p = self.inflight.pop_front().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "response to no request")
                    })?;
                    check_response(frame, body, &p, now, deadline, st);
                }
                pos += used;
            }
            self.input.copy_within(pos..self.in_len, 0);
            self.in_len -= pos;
            if n < spare {
                // A short read drained the socket (TCP on Linux): the next
                // bytes will raise a new readiness event, so spare the
                // read that would only say WouldBlock.
                return Ok(());
            }
        }
    }
}

/// Checks one response against its request and records its latency.
fn check_response(frame: &[u8], body: &[u8], p: &Pending, now: u64, deadline: u64, st: &mut Stats) {
    let expected = match p.kind {
        K_HELLO => resp::WELCOME,
        K_ANNOUNCE => resp::ANNOUNCED,
        K_HAVE => resp::ACK,
        _ => resp::PEERS,
    };
    let id = body[0];
    if id != expected {
        let what = match Response::decode(frame) {
            Ok(Some((Response::Error { code, message }, _))) => {
                format!("{} -> error {code}: {message}", KINDS[p.kind as usize])
            }
            _ => format!(
                "{} -> unexpected response 0x{id:02x}",
                KINDS[p.kind as usize]
            ),
        };
        st.error(what);
        return;
    }
    if id == resp::PEERS && body.len() >= 23 {
        st.peers_returned += u64::from(u16::from_be_bytes([body[21], body[22]]));
        st.peers_answers += 1;
    }
    let latency = now.saturating_sub(p.t);
    match p.phase {
        SETUP => {
            st.setup.record(latency);
            st.setup_done += 1;
        }
        STEADY => {
            st.steady[p.kind as usize].record(latency);
            st.done += u64::from(now <= deadline);
        }
        _ => {}
    }
}

/// Appends an announce frame, byte for byte what `Request::Announce`
/// encodes, without copying the info dict into an owned request first.
fn encode_announce(out: &mut Vec<u8>, info: &[u8], bits: Option<&[u8]>) {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, req::ANNOUNCE]);
    out.extend_from_slice(&(info.len() as u32).to_be_bytes());
    out.extend_from_slice(info);
    match bits {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
    }
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Request generator of one worker.
struct StaGen<'a> {
    ctx: &'a Ctx,
    rng: Rng,
    bits: Vec<u8>,
}

impl StaGen<'_> {
    fn announce(&mut self, s: &mut StaSession, hold: Hold, t: u64, phase: u8) {
        let f = &self.ctx.pop.files[hold.file as usize];
        if hold.seeder {
            encode_announce(&mut s.out, &f.info, None);
        } else {
            random_partial(&mut self.rng, f.pieces, &mut self.bits);
            encode_announce(&mut s.out, &f.info, Some(&self.bits));
        }
        s.inflight.push_back(Pending {
            t,
            kind: K_ANNOUNCE,
            phase,
        });
    }

    /// Setup: hello, then one announce per holding, within the window.
    fn setup_fill(&mut self, s: &mut StaSession, now: u64) {
        let holds = &self.ctx.pop.sessions[s.index];
        while s.inflight.len() < self.ctx.args.setup_window && s.next_setup <= holds.len() {
            if s.next_setup == 0 {
                Request::Hello {
                    version: sta::limits::TRACKER_PROTOCOL_VERSION,
                    peer_id: peer_id(s.index),
                    listen_port: peer_port(s.index),
                }
                .encode(&mut s.out);
                s.inflight.push_back(Pending {
                    t: now,
                    kind: K_HELLO,
                    phase: SETUP,
                });
            } else {
                self.announce(s, holds[s.next_setup - 1], now, SETUP);
            }
            s.next_setup += 1;
        }
    }

    /// Steady: one request of the mix.
    fn steady_one(&mut self, s: &mut StaSession, t: u64) {
        let a = &self.ctx.args;
        let pop = &self.ctx.pop;
        let holds = &pop.sessions[s.index];
        let total = a.mix.getpeers + a.mix.have + a.mix.announce;
        let r = self.rng.below(total as usize) as u32;
        let partial = |rng: &mut Rng| holds[s.partial[rng.below(s.partial.len())] as usize];
        if r < a.mix.getpeers || holds.is_empty() {
            // A downloader asks for the peers of a file it is fetching, or
            // of a file it is about to fetch.
            let file = if !s.partial.is_empty() && self.rng.below(2) == 0 {
                partial(&mut self.rng).file as usize
            } else {
                self.rng.below(pop.files.len())
            };
            let f = &pop.files[file];
            let piece = (self.rng.below(100) < a.filter as usize)
                .then(|| self.rng.below(f.pieces as usize) as u32);
            Request::GetPeers {
                info_hash: f.hash,
                max: a.want,
                piece,
            }
            .encode(&mut s.out);
            s.inflight.push_back(Pending {
                t,
                kind: K_GETPEERS,
                phase: STEADY,
            });
        } else if r < a.mix.getpeers + a.mix.have && !s.partial.is_empty() {
            let hold = partial(&mut self.rng);
            let f = &pop.files[hold.file as usize];
            Request::Have {
                info_hash: f.hash,
                piece: self.rng.below(f.pieces as usize) as u32,
            }
            .encode(&mut s.out);
            s.inflight.push_back(Pending {
                t,
                kind: K_HAVE,
                phase: STEADY,
            });
        } else {
            let hold = holds[self.rng.below(holds.len())];
            self.announce(s, hold, t, STEADY);
        }
    }
}

fn sta_worker(ctx: &Ctx, worker: usize, addr: SocketAddr) -> Stats {
    let mut st = Stats::new();
    let mut sessions = Vec::new();
    let mut poll = None;
    let mut generator = StaGen {
        ctx,
        rng: Rng::new(ctx.args.seed ^ (worker as u64 + 1) << 40),
        bits: Vec::new(),
    };
    if let Err(e) = sta_setup(
        ctx,
        worker,
        addr,
        &mut sessions,
        &mut poll,
        &mut generator,
        &mut st,
    ) {
        st.failure = Some(format!("setup: {e}"));
    }
    ctx.barrier.wait(); // setup over
    ctx.barrier.wait(); // steady phase starts
    let mut sched = Schedule::new(ctx, ctx.clock.ns());
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
        && let Err(e) = sta_steady(
            ctx,
            poll,
            &mut sessions,
            &mut generator,
            &mut sched,
            &mut st,
        )
    {
        st.failure = Some(format!("steady: {e}"));
    }
    ctx.barrier.wait(); // steady phase over
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
    {
        // Collect the stragglers so the tracker sees orderly sessions;
        // after this many seconds, anything missing counts as lost.
        let give_up = ctx.clock.ns() + 5_000_000_000;
        let _ = run_sta_loop(
            ctx,
            poll,
            &mut sessions,
            &mut st,
            None,
            sched.deadline,
            |s| s.inflight.is_empty() || ctx.clock.ns() > give_up,
        );
        let now = ctx.clock.ns();
        for p in sessions.iter().flat_map(|s| &s.inflight) {
            st.lost += 1;
            if p.phase == STEADY {
                st.steady[p.kind as usize].record(now.saturating_sub(p.t));
            }
        }
    }
    st
}

fn sta_setup(
    ctx: &Ctx,
    worker: usize,
    addr: SocketAddr,
    sessions: &mut Vec<StaSession>,
    poll_slot: &mut Option<Poll>,
    generator: &mut StaGen<'_>,
    st: &mut Stats,
) -> io::Result<()> {
    let poll = poll_slot.insert(Poll::new()?);
    for index in (worker..ctx.args.sessions).step_by(ctx.args.threads) {
        let mut s = StaSession::connect(addr, index, &ctx.pop)?;
        poll.registry().register(
            &mut s.stream,
            Token(sessions.len()),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        sessions.push(s);
    }
    let now = ctx.clock.ns();
    for s in sessions.iter_mut() {
        generator.setup_fill(s, now);
        s.flush()?;
    }
    let holds = &ctx.pop.sessions;
    run_sta_loop(ctx, poll, sessions, st, Some(generator), u64::MAX, |s| {
        s.inflight.is_empty() && s.next_setup > holds[s.index].len()
    })
}

/// Polls until `done` holds for every session. With `setup`, refills
/// setup windows as responses arrive; without, only drains.
fn run_sta_loop(
    ctx: &Ctx,
    poll: &mut Poll,
    sessions: &mut [StaSession],
    st: &mut Stats,
    mut setup: Option<&mut StaGen<'_>>,
    deadline: u64,
    done: impl Fn(&StaSession) -> bool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut pending = sessions.iter().filter(|s| !done(s)).count();
    while pending > 0 {
        poll.poll(&mut events, Some(ctx.wait(Duration::from_millis(100))))?;
        ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let s = &mut sessions[ev.token().0];
            let was_done = done(s);
            if ev.is_writable() {
                s.writable = true;
            }
            if ev.is_readable() {
                s.read(ctx.clock, deadline, st)?;
            }
            if let Some(generator) = setup.as_deref_mut() {
                generator.setup_fill(s, ctx.clock.ns());
            }
            s.flush()?;
            if !was_done && done(s) {
                pending -= 1;
            }
        }
        if setup.is_none() {
            // Draining: re-evaluate (the give-up clock may have passed).
            pending = sessions.iter().filter(|s| !done(s)).count();
        }
    }
    Ok(())
}

fn sta_steady(
    ctx: &Ctx,
    poll: &mut Poll,
    sessions: &mut [StaSession],
    generator: &mut StaGen<'_>,
    sched: &mut Schedule,
    st: &mut Stats,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let window = ctx.args.window;
    // Open loop: no window, but a cap so an overloaded server cannot make
    // the generator hoard requests without bound.
    let cap = 100_000;
    let open = sched.interval.is_some();
    let burst = ctx.args.burst;
    if !open {
        let now = ctx.clock.ns();
        for s in sessions.iter_mut() {
            while s.inflight.len() < window {
                generator.steady_one(s, now);
            }
            s.flush()?;
        }
    }
    let mut next = 0usize;
    loop {
        let now = ctx.clock.ns();
        if now >= sched.deadline {
            return Ok(());
        }
        poll.poll(&mut events, Some(ctx.wait(sched.timeout(now))))?;
        ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let s = &mut sessions[ev.token().0];
            if ev.is_writable() {
                s.writable = true;
            }
            if ev.is_readable() {
                s.read(ctx.clock, sched.deadline, st)?;
            }
            if !open {
                let now = ctx.clock.ns();
                while s.inflight.len() < window && now < sched.deadline {
                    generator.steady_one(s, now);
                }
            }
            s.flush()?;
        }
        if open {
            let now = ctx.clock.ns();
            let mut touched = false;
            while let Some(at) = sched.due(now) {
                sched.issued += 1;
                let n = sessions.len();
                let s = &mut sessions[next];
                next = (next + 1) % n;
                if s.inflight.len() >= cap {
                    st.unsent += burst as u64;
                    continue;
                }
                for _ in 0..burst {
                    generator.steady_one(s, at);
                }
                touched = true;
            }
            if touched {
                for s in sessions.iter_mut().filter(|s| !s.out.is_empty()) {
                    s.flush()?;
                }
            }
        }
    }
}

// ------------------------------------------------------------ UDP (BEP 15)

const PROTOCOL_ID: u64 = 0x0417_2710_1980;
const CONNECT_TID: u32 = u32::MAX;
const UDP_TIMEOUT: u64 = 250_000_000;

#[derive(Clone, Copy)]
struct Slot {
    t: u64,
    epoch: u16,
    busy: bool,
    phase: u8,
    /// Setup: the (session, holding) to retry if the datagram is lost.
    work: (u32, u32),
}

struct UdpSock {
    sock: UdpSocket,
    conn_id: Option<u64>,
    connect_sent: u64,
    slots: Vec<Slot>,
    free: Vec<u16>,
}

impl UdpSock {
    fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

struct UdpWorker<'a> {
    ctx: &'a Ctx,
    socks: Vec<UdpSock>,
    /// This worker's simulated peers (global session indices).
    peers: Vec<usize>,
    /// Setup work: (session, holding) pairs still to announce.
    todo: Vec<(u32, u32)>,
    rng: Rng,
    packet: [u8; 98],
}

impl UdpWorker<'_> {
    fn send_connect(&mut self, k: usize) -> io::Result<()> {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&PROTOCOL_ID.to_be_bytes());
        p[12..].copy_from_slice(&CONNECT_TID.to_be_bytes());
        self.socks[k].connect_sent = self.ctx.clock.ns();
        match self.socks[k].sock.send(&p) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Sends one announce for `work` from socket `k`; false if no slot.
    fn announce(
        &mut self,
        k: usize,
        work: (u32, u32),
        t: u64,
        phase: u8,
        st: &mut Stats,
    ) -> io::Result<bool> {
        let Some(conn_id) = self.socks[k].conn_id else {
            return Ok(false);
        };
        let Some(slot) = self.socks[k].free.pop() else {
            return Ok(false);
        };
        let (session, h) = (work.0 as usize, work.1 as usize);
        let hold = self.ctx.pop.sessions[session][h];
        let f = &self.ctx.pop.files[hold.file as usize];
        let s = &mut self.socks[k].slots[slot as usize];
        s.epoch = s.epoch.wrapping_add(1);
        s.busy = true;
        s.t = t;
        s.phase = phase;
        s.work = work;
        let tid = u32::from(s.epoch) << 16 | u32::from(slot);
        let p = &mut self.packet;
        p[0..8].copy_from_slice(&conn_id.to_be_bytes());
        p[8..12].copy_from_slice(&1u32.to_be_bytes());
        p[12..16].copy_from_slice(&tid.to_be_bytes());
        p[16..36].copy_from_slice(&f.hash);
        p[36..56].copy_from_slice(&peer_id(session));
        let left = if hold.seeder {
            0
        } else {
            u64::from(f.pieces) * u64::from(PIECE_LENGTH) / 2
        };
        p[56..64].copy_from_slice(&0u64.to_be_bytes());
        p[64..72].copy_from_slice(&left.to_be_bytes());
        p[72..80].copy_from_slice(&0u64.to_be_bytes());
        let event: u32 = if phase == SETUP { 2 } else { 0 };
        p[80..84].copy_from_slice(&event.to_be_bytes());
        p[84..88].copy_from_slice(&0u32.to_be_bytes());
        p[88..92].copy_from_slice(&(session as u32).to_be_bytes());
        p[92..96].copy_from_slice(&u32::from(self.ctx.args.want).to_be_bytes());
        p[96..98].copy_from_slice(&peer_port(session).to_be_bytes());
        match self.socks[k].sock.send(&self.packet) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.socks[k].slots[slot as usize].busy = false;
                self.socks[k].free.push(slot);
                if phase == SETUP {
                    self.todo.push(work);
                }
                st.unsent += 1;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn random_work(&mut self) -> (u32, u32) {
        loop {
            let session = self.peers[self.rng.below(self.peers.len())];
            let n = self.ctx.pop.sessions[session].len();
            if n > 0 {
                return (session as u32, self.rng.below(n) as u32);
            }
        }
    }

    /// Fills socket `k`'s window: setup work, or steady closed-loop work.
    fn fill(&mut self, k: usize, phase: u8, deadline: u64, st: &mut Stats) -> io::Result<()> {
        // One window for both phases: the server's socket buffer holds
        // only so many datagrams (about 200 with Linux's default
        // rmem_default of 208 KiB), and what overflows it is lost.
        let window = self.ctx.args.window;
        while self.socks[k].in_flight() < window {
            let now = self.ctx.clock.ns();
            let work = if phase == SETUP {
                match self.todo.pop() {
                    Some(w) => w,
                    None => return Ok(()),
                }
            } else {
                if now >= deadline {
                    return Ok(());
                }
                self.random_work()
            };
            if !self.announce(k, work, now, phase, st)? {
                if phase == SETUP {
                    self.todo.push(work);
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads every datagram waiting on socket `k`.
    fn read(&mut self, k: usize, deadline: u64, st: &mut Stats) -> io::Result<()> {
        let mut buf = [0u8; 2048];
        loop {
            let n = match self.socks[k].sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ICMP port unreachable shows up here: the server is gone.
                Err(e) => return Err(e),
            };
            let now = self.ctx.clock.ns();
            if n < 8 {
                st.error("short datagram".into());
                continue;
            }
            let action = u32::from_be_bytes(buf[0..4].try_into().unwrap());
            let tid = u32::from_be_bytes(buf[4..8].try_into().unwrap());
            let sock = &mut self.socks[k];
            if tid == CONNECT_TID {
                if action == 0 && n >= 16 {
                    sock.conn_id = Some(u64::from_be_bytes(buf[8..16].try_into().unwrap()));
                }
                continue;
            }
            let slot = (tid & 0xffff) as usize;
            let Some(s) = sock.slots.get_mut(slot) else {
                continue;
            };
            if !s.busy || u32::from(s.epoch) != tid >> 16 {
                continue; // a reply that came after its timeout
            }
            s.busy = false;
            let s = *s;
            sock.free.push(slot as u16);
            if action == 3 {
                let msg = String::from_utf8_lossy(&buf[8..n]);
                let msg = msg.trim_end_matches('\0').to_string();
                if msg.contains("Connection ID") {
                    sock.conn_id = None;
                }
                if s.phase == SETUP {
                    self.todo.push(s.work);
                }
                st.error(format!("announce -> error: {msg}"));
                continue;
            }
            if action != 1 || n < 20 {
                st.error(format!(
                    "announce -> reply of {n} bytes, action {action} (info hash not whitelisted?)"
                ));
                continue;
            }
            st.peers_returned += ((n - 20) / 6) as u64;
            st.peers_answers += 1;
            let latency = now.saturating_sub(s.t);
            match s.phase {
                SETUP => {
                    st.setup.record(latency);
                    st.setup_done += 1;
                }
                STEADY => {
                    st.steady[K_ANNOUNCE as usize].record(latency);
                    st.done += u64::from(now <= deadline);
                }
                _ => {}
            }
        }
    }

    /// Times out lost datagrams (setup work is retried) and reconnects
    /// sockets whose connection id is missing.
    fn housekeeping(&mut self, st: &mut Stats) -> io::Result<()> {
        let now = self.ctx.clock.ns();
        for k in 0..self.socks.len() {
            let sock = &mut self.socks[k];
            for i in 0..sock.slots.len() {
                let s = &mut sock.slots[i];
                if s.busy && now.saturating_sub(s.t) > UDP_TIMEOUT {
                    s.busy = false;
                    sock.free.push(i as u16);
                    st.lost += 1;
                    match s.phase {
                        SETUP => self.todo.push(s.work),
                        _ => st.steady[K_ANNOUNCE as usize].record(now - s.t),
                    }
                }
            }
            if self.socks[k].conn_id.is_none()
                && now.saturating_sub(self.socks[k].connect_sent) > 200_000_000
            {
                self.send_connect(k)?;
            }
        }
        Ok(())
    }

    fn busy(&self) -> bool {
        self.socks
            .iter()
            .any(|s| s.in_flight() > 0 || s.conn_id.is_none())
    }
}

fn udp_worker(ctx: &Ctx, worker: usize, addr: SocketAddr) -> Stats {
    let mut st = Stats::new();
    let a = &ctx.args;
    let peers: Vec<usize> = (worker..a.sessions).step_by(a.threads).collect();
    let mut todo = Vec::new();
    for &p in peers.iter().rev() {
        for h in (0..ctx.pop.sessions[p].len()).rev() {
            todo.push((p as u32, h as u32));
        }
    }
    let mut w = UdpWorker {
        ctx,
        socks: Vec::new(),
        peers,
        todo,
        rng: Rng::new(a.seed ^ (worker as u64 + 1) << 40),
        packet: [0; 98],
    };
    let mut poll = Poll::new().ok();
    let nsocks = (worker..a.udp_sockets).step_by(a.threads).count();
    let slots = if a.rate.is_some() {
        a.window.max(4096)
    } else {
        a.window
    };
    let mut sched = None;
    let result = (|| -> io::Result<()> {
        let poll = poll.as_mut().ok_or_else(|| io::Error::other("no poll"))?;
        for k in 0..nsocks {
            let mut sock = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
            sock.connect(addr)?;
            poll.registry()
                .register(&mut sock, Token(k), Interest::READABLE)?;
            w.socks.push(UdpSock {
                sock,
                conn_id: None,
                connect_sent: 0,
                slots: vec![
                    Slot {
                        t: 0,
                        epoch: 0,
                        busy: false,
                        phase: SETUP,
                        work: (0, 0),
                    };
                    slots
                ],
                free: (0..slots as u16).rev().collect(),
            });
            w.send_connect(k)?;
        }
        udp_loop(&mut w, poll, SETUP, u64::MAX, &mut st, |w| {
            w.todo.is_empty() && !w.busy()
        })
    })();
    if let Err(e) = result {
        st.failure = Some(format!("setup: {e}"));
    }
    ctx.barrier.wait(); // setup over
    ctx.barrier.wait(); // steady phase starts
    let s = sched.insert(Schedule::new(ctx, ctx.clock.ns()));
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
        && let Err(e) = udp_steady(&mut w, poll, s, &mut st)
    {
        st.failure = Some(format!("steady: {e}"));
    }
    ctx.barrier.wait(); // steady phase over
    if st.failure.is_none()
        && let Some(poll) = poll.as_mut()
    {
        let give_up = ctx.clock.ns() + 2 * UDP_TIMEOUT;
        let deadline = s.deadline;
        let _ = udp_loop(&mut w, poll, DRAIN, deadline, &mut st, |w| {
            !w.busy() || w.ctx.clock.ns() > give_up
        });
    }
    st
}

fn udp_loop(
    w: &mut UdpWorker<'_>,
    poll: &mut Poll,
    phase: u8,
    deadline: u64,
    st: &mut Stats,
    done: impl Fn(&UdpWorker<'_>) -> bool,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let mut last_housekeeping = 0;
    while !done(w) {
        if phase == SETUP {
            for k in 0..w.socks.len() {
                w.fill(k, SETUP, deadline, st)?;
            }
        }
        poll.poll(&mut events, Some(w.ctx.wait(Duration::from_millis(20))))?;
        w.ctx.idle(!events.is_empty());
        for ev in events.iter() {
            w.read(ev.token().0, deadline, st)?;
        }
        let now = w.ctx.clock.ns();
        if now - last_housekeeping > 20_000_000 {
            w.housekeeping(st)?;
            last_housekeeping = now;
        }
    }
    Ok(())
}

fn udp_steady(
    w: &mut UdpWorker<'_>,
    poll: &mut Poll,
    sched: &mut Schedule,
    st: &mut Stats,
) -> io::Result<()> {
    let mut events = Events::with_capacity(1024);
    let open = sched.interval.is_some();
    let mut next = 0usize;
    let mut last_housekeeping = sched.start;
    if !open {
        for k in 0..w.socks.len() {
            w.fill(k, STEADY, sched.deadline, st)?;
        }
    }
    loop {
        let now = w.ctx.clock.ns();
        if now >= sched.deadline {
            return Ok(());
        }
        let wait = sched.timeout(now).min(Duration::from_millis(20));
        poll.poll(&mut events, Some(w.ctx.wait(wait)))?;
        w.ctx.idle(!events.is_empty());
        for ev in events.iter() {
            let k = ev.token().0;
            w.read(k, sched.deadline, st)?;
            if !open {
                w.fill(k, STEADY, sched.deadline, st)?;
            }
        }
        let now = w.ctx.clock.ns();
        if open {
            while let Some(at) = sched.due(now) {
                sched.issued += 1;
                let k = next;
                next = (next + 1) % w.socks.len();
                for _ in 0..w.ctx.args.burst {
                    let work = w.random_work();
                    if !w.announce(k, work, at, STEADY, st)? {
                        st.unsent += 1;
                    }
                }
            }
        }
        if now - last_housekeeping > 20_000_000 {
            w.housekeeping(st)?;
            if !open {
                for k in 0..w.socks.len() {
                    w.fill(k, STEADY, sched.deadline, st)?;
                }
            }
            last_housekeeping = now;
        }
    }
}

// ------------------------------------------------------------------- main

/// A tracker this process started: stopped by pid when dropped.
struct Spawned {
    child: Child,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let _ = self.child.wait();
    }
}

fn spawn_tracker(path: &PathBuf, cpu: Option<u32>) -> Result<(Spawned, SocketAddr), BoxError> {
    let mut cmd = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(path);
            c
        }
        None => Command::new(path),
    };
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let spawned = Spawned { child };
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from the tracker: {line:?}"))?
        .parse()?;
    Ok((spawned, addr))
}

/// Checks that the hand-made announce frame is what the codec encodes.
fn self_check(pop: &Population) {
    let f = &pop.files[0];
    let mut rng = Rng::new(3);
    let mut bits = Vec::new();
    random_partial(&mut rng, f.pieces, &mut bits);
    for pieces in [Pieces::All, Pieces::Bitfield(bits.clone())] {
        let mut ours = Vec::new();
        let b = match &pieces {
            Pieces::All => None,
            Pieces::Bitfield(b) => Some(b.as_slice()),
        };
        encode_announce(&mut ours, &f.info, b);
        let mut codec = Vec::new();
        Request::Announce {
            info: f.info.clone(),
            pieces,
        }
        .encode(&mut codec);
        assert_eq!(ours, codec, "hand-encoded announce differs from the codec");
        assert!(matches!(Request::decode(&ours), Ok(Some(_))));
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sta-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    let t = Instant::now();
    let pop = build_population(&args);
    let meta_bytes: usize = pop.files.iter().map(|f| f.info.len()).sum();
    eprintln!(
        "population: {} files, {} peers, {} (peer, file) entries, {:.1} MB of info dicts, built in {:.2} s",
        pop.files.len(),
        pop.sessions.len(),
        pop.entries,
        meta_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.write_hashes {
        let mut text = String::with_capacity(pop.files.len() * 41);
        for f in &pop.files {
            text.push_str(&sta::meta::info::to_hex(&f.hash));
            text.push('\n');
        }
        std::fs::write(path, text)?;
        return Ok(());
    }
    self_check(&pop);
    let mut spawned = None;
    let mut pid = args.tracker_pid;
    let target = match (&args.tcp, &args.spawn, &args.udp) {
        (Some(addr), None, None) => Target::Sta(*addr),
        (None, Some(path), None) => {
            let (child, addr) = spawn_tracker(path, args.server_cpu)?;
            eprintln!("spawned tracker: pid {} on {addr}", child.child.id());
            pid = Some(child.child.id());
            spawned = Some(child);
            Target::Sta(addr)
        }
        (None, None, Some(addr)) => Target::Udp(*addr),
        _ => return Err("give exactly one of --tcp, --spawn and --udp".into()),
    };
    let threads = args.threads;
    let ctx = Arc::new(Ctx {
        args,
        pop,
        target,
        clock: Clock(Instant::now()),
        barrier: Barrier::new(threads + 1),
    });
    let report = measure(&ctx, pid, meta_bytes);
    drop(spawned);
    report
}

fn measure(ctx: &Arc<Ctx>, pid: Option<u32>, meta_bytes: usize) -> Result<(), BoxError> {
    let a = &ctx.args;
    let hz = clock_ticks_per_second();
    let rss = |key| pid.and_then(|p| proc_status(p, key));
    let cpu = || pid.and_then(proc_cpu_ticks);
    let rss_before = rss("VmRSS");
    let cpu_before_setup = cpu();
    let setup_start = Instant::now();
    let workers: Vec<_> = (0..a.threads)
        .map(|w| {
            let ctx = Arc::clone(ctx);
            std::thread::spawn(move || match ctx.target {
                Target::Sta(addr) => sta_worker(&ctx, w, addr),
                Target::Udp(addr) => udp_worker(&ctx, w, addr),
            })
        })
        .collect();
    ctx.barrier.wait(); // setup over
    let setup_secs = setup_start.elapsed().as_secs_f64();
    let rss_after = rss("VmRSS");
    let cpu0 = cpu();
    let own0 = proc_cpu_ticks(std::process::id());
    let threads0 = pid.map(thread_ticks).unwrap_or_default();
    ctx.barrier.wait(); // steady phase starts
    let steady_start = Instant::now();
    ctx.barrier.wait(); // steady phase over
    let steady_secs = steady_start.elapsed().as_secs_f64();
    let cpu1 = cpu();
    let own1 = proc_cpu_ticks(std::process::id());
    let threads1 = pid.map(thread_ticks).unwrap_or_default();
    let mut st = Stats::new();
    for w in workers {
        st.merge(w.join().map_err(|_| "a worker panicked")?);
    }
    let hwm = rss("VmHWM");
    let server_threads = pid.and_then(|p| proc_status(p, "Threads"));
    if let Some(f) = &st.failure {
        return Err(format!("a worker failed: {f}").into());
    }

    let mut all = Hist::new();
    for h in &st.steady {
        all.merge(h);
    }
    let done = st.done;
    let rps = done as f64 / a.seconds;
    let cpu_s = match (cpu0, cpu1) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    let setup_cpu_s = match (cpu_before_setup, cpu0) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    // Share of the steady phase's server CPU used by its busiest thread.
    let busiest = threads1
        .iter()
        .map(|&(tid, t1)| {
            let t0 = threads0.iter().find(|x| x.0 == tid).map_or(0, |x| x.1);
            t1 - t0
        })
        .max();
    let own_cpu_s = match (own0, own1) {
        (Some(x), Some(y)) => Some((y - x) as f64 / hz),
        _ => None,
    };
    let per_cpu_s = cpu_s.filter(|&c| c > 0.0).map(|c| done as f64 / c);
    let bytes_per_entry = match (rss_before, rss_after) {
        (Some(b), Some(a)) => Some((a.saturating_sub(b) * 1024) as f64 / ctx.pop.entries as f64),
        _ => None,
    };
    let mode = match ctx.target {
        Target::Sta(_) => "sta",
        Target::Udp(_) => "udp",
    };
    let load = match a.rate {
        Some(r) => format!("open loop at {r:.0} req/s in bursts of {}", a.burst),
        None => format!(
            "closed loop, window {} per {}",
            a.window,
            if mode == "sta" { "session" } else { "socket" }
        ),
    };
    let fmt_opt = |v: Option<f64>, prec: usize| v.map_or("n/a".into(), |v| format!("{v:.prec$}"));

    println!(
        "== {mode}: {load}, {} s, {} generator thread(s)",
        a.seconds, a.threads
    );
    println!(
        "setup: {} announces in {:.2} s = {:.0}/s (server CPU {} s), p50 {:.0} us, p99 {:.0} us",
        st.setup_done,
        setup_secs,
        st.setup_done as f64 / setup_secs,
        fmt_opt(setup_cpu_s, 2),
        us(st.setup.quantile(0.5)),
        us(st.setup.quantile(0.99)),
    );
    println!(
        "steady: {done} requests in {:.2} s = {rps:.0} req/s; server CPU {} s; {} req per server CPU-second; generator CPU {} s",
        steady_secs,
        fmt_opt(cpu_s, 2),
        fmt_opt(per_cpu_s, 0),
        fmt_opt(own_cpu_s, 2),
    );
    println!(
        "latency: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us, mean {:.1} us",
        us(all.quantile(0.5)),
        us(all.quantile(0.99)),
        us(all.quantile(0.999)),
        us(all.max),
        us(all.mean())
    );
    for (k, h) in st.steady.iter().enumerate() {
        if h.total > 0 {
            println!(
                "  {:<9} {:>9} ({:>4.1} %)  p50 {:>8.1} us  p99 {:>8.1} us  p99.9 {:>8.1} us",
                KINDS[k],
                h.total,
                100.0 * h.total as f64 / all.total.max(1) as f64,
                us(h.quantile(0.5)),
                us(h.quantile(0.99)),
                us(h.quantile(0.999)),
            );
        }
    }
    if st.peers_answers > 0 {
        println!(
            "peers per answer: {:.1}",
            st.peers_returned as f64 / st.peers_answers as f64
        );
    }
    let kb = |v: Option<u64>| v.map_or("n/a".into(), |v| format!("{:.1} MB", v as f64 / 1024.0));
    println!(
        "server: pid {}, {} thread(s), busiest thread {} of steady CPU; RSS before {}, after setup {}, peak {}",
        pid.map_or("n/a".into(), |p| p.to_string()),
        server_threads.map_or("n/a".into(), |t| t.to_string()),
        match (busiest, cpu0, cpu1) {
            (Some(b), Some(x), Some(y)) if y > x =>
                format!("{:.0} %", 100.0 * b as f64 / (y - x) as f64),
            _ => "n/a".into(),
        },
        kb(rss_before),
        kb(rss_after),
        kb(hwm),
    );
    println!(
        "memory: {} bytes per (peer, file) entry over {} entries ({:.0} bytes of info dict per entry announced)",
        fmt_opt(bytes_per_entry, 0),
        ctx.pop.entries,
        meta_bytes as f64 / ctx.pop.entries as f64,
    );
    if st.lost > 0 || st.unsent > 0 {
        println!("lost (timed out): {}, unsent: {}", st.lost, st.unsent);
    }
    for (what, n) in &st.errors {
        println!("ERROR x{n}: {what}");
    }
    let errors: u64 = st.errors.values().sum();
    println!(
        "RESULT mode={mode} rate={} burst={} seconds={} setup_s={setup_secs:.3} setup_rps={:.0} setup_cpu_s={} rps={rps:.0} cpu_s={} req_per_cpu_s={} gen_cpu_s={} p50_us={:.1} p99_us={:.1} p999_us={:.1} rss_before_kb={} rss_after_kb={} hwm_kb={} bytes_per_entry={} entries={} threads={} errors={errors} lost={} unsent={}",
        a.rate.map_or("closed".into(), |r| format!("{r:.0}")),
        a.burst,
        a.seconds,
        st.setup_done as f64 / setup_secs,
        fmt_opt(setup_cpu_s, 2),
        fmt_opt(cpu_s, 2),
        fmt_opt(per_cpu_s, 0),
        fmt_opt(own_cpu_s, 2),
        us(all.quantile(0.5)),
        us(all.quantile(0.99)),
        us(all.quantile(0.999)),
        rss_before.map_or("na".into(), |v| v.to_string()),
        rss_after.map_or("na".into(), |v| v.to_string()),
        hwm.map_or("na".into(), |v| v.to_string()),
        fmt_opt(bytes_per_entry, 0),
        ctx.pop.entries,
        server_threads.map_or("na".into(), |t| t.to_string()),
        st.lost,
        st.unsent,
    );
    Ok(())
}
