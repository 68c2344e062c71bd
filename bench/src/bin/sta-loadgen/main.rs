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

mod args;
mod connect_from;
mod population;
mod report;
mod schedule;
mod sta_load;
mod sta_session;
mod stats;
mod udp_load;
mod udp_session;

use args::{Target, parse_args};
use population::{Population, build_population, random_partial};
use report::measure;
use schedule::{Clock, Ctx};
use sta::rng::Rng;
use sta::wire::tracker::{Pieces, Request};
use sta_kit::process::{Guard, Lines, Next};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a spawned tracker may take to print its address.
const STARTUP: Duration = Duration::from_secs(30);

/// Starts the tracker at `path` on 127.0.0.1 port 0 (pinned to `cpu`
/// with taskset, which execs it: the pid is the tracker's); it is
/// stopped by its pid when the guard drops.
fn spawn_tracker(path: &Path, cpu: Option<u32>) -> Result<(Guard, SocketAddr), BoxError> {
    let mut cmd = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(path);
            c
        }
        None => Command::new(path),
    };
    cmd.args(["--listen", "127.0.0.1:0", "--log-level", "warn"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut tracker = Guard::spawn("sta-trackerd", &mut cmd)
        .map_err(|e| format!("cannot start {}: {e}", path.display()))?;
    let stdout = tracker.child_mut().stdout.take().ok_or("no stdout")?;
    // Read on a thread that keeps draining it, so the tracker never
    // blocks on (or fails writing to) its stdout.
    let lines = Lines::spawn(stdout)?;
    let line = match lines.next_by(Instant::now() + STARTUP) {
        Next::Line(line) => line,
        other => return Err(format!("the tracker printed no address ({other:?})").into()),
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected first line from the tracker: {line:?}"))?
        .parse()?;
    Ok((tracker, addr))
}

/// Checks that the hand-made announce frame is what the codec encodes.
fn self_check(pop: &Population) -> Result<(), BoxError> {
    let f = pop.files.first().ok_or("no files")?;
    let mut rng = Rng::new(3);
    let mut bits = Vec::new();
    random_partial(&mut rng, f.pieces, &mut bits);
    for pieces in [Pieces::All, Pieces::Bitfield(bits.clone())] {
        let mut ours = Vec::new();
        let b = match &pieces {
            Pieces::All => None,
            Pieces::Bitfield(b) => Some(b.as_slice()),
        };
        sta_session::encode_announce(&mut ours, &f.info, b);
        let mut codec = Vec::new();
        Request::Announce {
            info: f.info.clone(),
            pieces,
        }
        .encode(&mut codec);
        if ours != codec || !matches!(Request::decode(&ours), Ok(Some(_))) {
            return Err("internal: the hand-encoded announce differs from the codec's".into());
        }
    }
    Ok(())
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
    let pop = build_population(&args)?;
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
    self_check(&pop)?;
    let mut spawned = None;
    let mut pid = args.tracker_pid;
    let target = match (&args.tcp, &args.spawn, &args.udp) {
        (Some(addr), None, None) => Target::Sta(*addr),
        (None, Some(path), None) => {
            let (tracker, addr) = spawn_tracker(path, args.server_cpu)?;
            eprintln!("spawned tracker: pid {} on {addr}", tracker.pid());
            pid = Some(tracker.pid());
            spawned = Some(tracker);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_population_builds_and_encodes_as_the_codec() {
        let words = "--files 20 --sessions 50 --max-peers 10 --min-pieces 1 --max-pieces 9";
        let args = args::parse_args_from(words.split(' ').map(Into::into).collect())
            .unwrap()
            .unwrap();
        let pop = build_population(&args).unwrap();
        assert_eq!((pop.files.len(), pop.sessions.len()), (20, 50));
        let held: usize = pop.sessions.iter().map(Vec::len).sum();
        assert_eq!(held, pop.entries);
        assert!(pop.files.iter().all(|f| (1..=9).contains(&f.pieces)));
        self_check(&pop).unwrap();
        let again = build_population(&args).unwrap();
        assert!(
            pop.files
                .iter()
                .zip(&again.files)
                .all(|(a, b)| a.hash == b.hash)
        );
    }

    #[test]
    fn impossible_populations_are_refused() {
        let words = "--files 1 --sessions 10 --max-peers 10 --min-pieces 9 --max-pieces 3";
        let args = args::parse_args_from(words.split(' ').map(Into::into).collect());
        assert!(args.is_err());
        let too_big =
            "--files 1 --sessions 10 --max-peers 10 --min-pieces 262145 --max-pieces 262145";
        let args = args::parse_args_from(too_big.split(' ').map(Into::into).collect());
        assert!(build_population(&args.unwrap().unwrap()).is_err());
    }
}
