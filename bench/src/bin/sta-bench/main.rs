//! `sta-bench transfer`: STA against libtorrent on the same work, in the
//! same run, on one machine; `sta-bench swarm`: STA and libtorrent swarms
//! on emulated hosts (`swarm.rs`). Every file is under /dev/shm, every byte goes
//! through 127.0.0.1, every process is a child stopped by its pid at the
//! end (also on error or Ctrl-C), and every wait is bounded.
//!
//! Phases (see `bench/README.md` for the table format):
//! - share: hash the file and make it available (`share` over the control
//!   socket of a fresh `sta-peerd`; `create_torrent` + `set_piece_hashes`
//!   in `bench/lt_peer.py`);
//! - transfer: 1 seeder -> 1 leecher and 3 seeders -> 1 leecher, STA and
//!   libtorrent alternating, timed from the leecher's spawn until every
//!   piece is verified, with CPU from /proc;
//! - scale: one STA seeder, many STA leechers at once, against 1 -> 1.

mod args;
mod children;
mod harness;
mod hosts;
mod libtorrent;
mod phases;
mod scale;
mod sta_peers;
mod swarm;
mod swarm_kill;
mod swarm_lt;
mod swarm_sta;
mod swarm_table;
mod tables;

use harness::Bench;
use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const PIECE_SIZE: u32 = 512 * 1024;
const FILE_NAME: &str = "bench.bin";
const SCALE_NAME: &str = "scale.bin";
/// A daemon may take this long to say it is ready (the machine is busy).
const STARTUP: Duration = Duration::from_secs(60);
/// No progress at all for this long: something is stuck, not slow.
const STALL: Duration = Duration::from_secs(180);
/// SIGTERM, then this long before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const GIB: f64 = (1u64 << 30) as f64;
/// Room kept free in the work directory and in memory.
const MARGIN: u64 = 512 << 20;

fn main() -> ExitCode {
    let (opts, swarm) = match args::parse_args() {
        Ok(args::Command::Transfer(o)) => (o, None),
        Ok(args::Command::Swarm(o, s)) => (o, Some(s)),
        Ok(args::Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sta-bench: {e}; see `sta-bench --help`");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("sta-bench: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut bench = Bench::new(opts, stop);
    let outcome = match &swarm {
        Some(s) => bench.swarm(s),
        None => bench.run(),
    };
    let cleaned = bench.cleanup();
    if let Err(e) = &cleaned {
        eprintln!("sta-bench: {e}");
    }
    match outcome {
        Err(Failure::Interrupted) => {
            eprintln!("sta-bench: interrupted");
            ExitCode::from(130)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("sta-bench: FAILED: {m}");
            ExitCode::FAILURE
        }
        Ok(()) if !bench.problems.is_empty() => {
            for p in &bench.problems {
                eprintln!("sta-bench: FAILED: {p}");
            }
            ExitCode::FAILURE
        }
        Ok(()) if cleaned.is_err() => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

/// Why a run stops short.
enum Failure {
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// Something is broken; the message says what.
    Failed(String),
}

type Step<T> = Result<T, Failure>;

fn failed(m: impl Into<String>) -> Failure {
    Failure::Failed(m.into())
}

/// Prints a line on stdout at once (progress of a long run); a closed
/// stdout must not stop the cleanup.
fn say(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
