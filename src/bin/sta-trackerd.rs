//! `sta-trackerd`: the STA tracker daemon.

use mio::net::TcpListener;
use sta::config::{ConfigError, Settings, init_logging};
use sta::limits::MAX_TRACKER_FRAME;
use sta::reactor::{Limits, Listener, Reactor};
use sta::rng::Rng;
use sta::tracker::{Config, Tracker};
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
sta-trackerd: the STA tracker, a live catalog of shared files and of which
peer holds which pieces. It never carries file data.

USAGE:
    sta-trackerd [OPTIONS]

OPTIONS (each also settable as STA_TRACKERD_<NAME> or in the config file):
    --listen ADDR:PORT        address to listen on [default: 0.0.0.0:6969]
    --log-level LEVEL         error, warn, info, debug or trace [default: info]
    --max-connections N       concurrent sessions [default: 10000]
    --idle-timeout SECS       close sessions silent this long [default: 120]
    --max-files-per-peer N    files one session may hold [default: 10000]
    --max-peers-per-answer N  peers in one get-peers answer [default: 200]
    --max-files N             files in the catalog [default: 1000000]
    --config FILE             `name = value` lines; flags and environment win
    -h, --help                print this help

Prints `listening on ADDR` once ready; exits 0 on SIGINT or SIGTERM.
";

const SETTINGS: &[&str] = &[
    "listen",
    "log-level",
    "max-connections",
    "idle-timeout",
    "max-files-per-peer",
    "max-peers-per-answer",
    "max-files",
];

fn main() -> ExitCode {
    sta::config::daemon_main("sta-trackerd", HELP, run)
}

fn run(args: pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>> {
    let s = Settings::load(args, "STA_TRACKERD", SETTINGS)?;
    init_logging(&s.get::<String>("log-level", "info".into())?)?;
    let listen: SocketAddr = s.get("listen", SocketAddr::from(([0, 0, 0, 0], 6969)))?;
    let idle_secs: u32 = s.get("idle-timeout", 120)?;
    let max_peers = s.get("max-peers-per-answer", sta::limits::MAX_PEERS_PER_ANSWER)?;
    if max_peers > sta::limits::MAX_PEERS_PER_ANSWER {
        return Err(ConfigError(format!(
            "max-peers-per-answer is at most {}",
            sta::limits::MAX_PEERS_PER_ANSWER
        ))
        .into());
    }
    let config = Config {
        max_files_per_peer: s.get("max-files-per-peer", 10_000)?,
        max_peers_per_answer: max_peers,
        max_files: s.get("max-files", 1_000_000)?,
        idle_timeout_secs: idle_secs,
    };
    let limits = Limits {
        max_connections: s.get("max-connections", 10_000)?,
        idle_timeout: Duration::from_secs(idle_secs.into()),
        max_read_buffer: MAX_TRACKER_FRAME as usize + 4 + 64 * 1024,
        write_high_water: 4 * 1024 * 1024,
        tick: Duration::from_secs(1),
    };
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    let mut reactor = Reactor::new(limits)?;
    reactor.listen(Listener::Tcp(listener))?;
    reactor.stop_on_signals()?;
    let mut tracker = Tracker::new(config, Rng::from_entropy());
    println!("listening on {bound}");
    std::io::stdout().flush()?;
    log::info!("sta-trackerd listening on {bound}");
    reactor.run(&mut tracker)?;
    log::info!("sta-trackerd stopped");
    Ok(())
}
