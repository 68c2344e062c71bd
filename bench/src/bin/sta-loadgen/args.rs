//! The command line of `sta-loadgen`.

use crate::BoxError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
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
    --source-ips N        STA sessions connect from 127.0.0.1 .. 127.0.0.N in
                          turn (a source address has about 28,000 ephemeral
                          ports) [default: 1]
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

/// Sessions one generator plays: a fleet, with room above it.
pub const MAX_SESSIONS: usize = 200_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dist {
    Uniform,
    Zipf,
}

#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub getpeers: u32,
    pub have: u32,
    pub announce: u32,
}

#[derive(Debug, Clone)]
pub enum Target {
    Sta(SocketAddr),
    Udp(SocketAddr),
}

#[derive(Debug, Clone)]
pub struct Args {
    pub tcp: Option<SocketAddr>,
    pub spawn: Option<PathBuf>,
    pub server_cpu: Option<u32>,
    pub udp: Option<SocketAddr>,
    pub tracker_pid: Option<u32>,
    pub files: usize,
    pub max_peers: usize,
    pub dist: Dist,
    pub sessions: usize,
    pub source_ips: u8,
    pub min_pieces: u32,
    pub max_pieces: u32,
    pub seeders: u32,
    pub seed: u64,
    pub write_hashes: Option<PathBuf>,
    pub seconds: f64,
    pub window: usize,
    pub setup_window: usize,
    pub rate: Option<f64>,
    pub burst: usize,
    pub threads: usize,
    pub udp_sockets: usize,
    pub mix: Mix,
    pub filter: u32,
    pub want: u16,
    pub wait: WaitMode,
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
pub enum WaitMode {
    Nap(Duration),
    Spin,
    Block,
}

/// The options of the command line; `None` for `--help` (printed).
pub fn parse_args() -> Result<Option<Args>, BoxError> {
    parse_args_from(std::env::args_os().skip(1).collect())
}

pub fn parse_args_from(args: Vec<std::ffi::OsString>) -> Result<Option<Args>, BoxError> {
    let mut p = pico_args::Arguments::from_vec(args);
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
        source_ips: p.opt_value_from_str("--source-ips")?.unwrap_or(1),
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
    if a.sessions < a.max_peers || a.sessions > MAX_SESSIONS {
        return Err(
            format!("--sessions must be at least --max-peers and at most {MAX_SESSIONS}").into(),
        );
    }
    if a.source_ips == 0 || a.source_ips == 255 {
        return Err("--source-ips must be 1 to 254".into());
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

pub fn parse_mix(spec: &str) -> Result<Mix, BoxError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse() {
        let m = parse_mix("getpeers:80,announce:20").unwrap();
        assert_eq!((m.getpeers, m.have, m.announce), (80, 0, 20));
        for bad in ["", "getpeers", "getpeers:x", "frob:1", "have:0"] {
            assert!(parse_mix(bad).is_err(), "{bad}");
        }
    }
}
