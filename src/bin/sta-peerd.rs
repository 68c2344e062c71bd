//! `sta-peerd`: the STA peer daemon.

use mio::net::{TcpListener, UnixListener};
use sta::config::{ConfigError, Settings, init_logging};
use sta::hashpool::HashPool;
use sta::limits::{DEFAULT_PIECE_LENGTH, MAX_PEER_FRAME};
use sta::meta::info::check_piece_length;
use sta::peer::{Config, Daemon};
use sta::reactor::{Limits, Listener, Reactor};
use sta::rng::Rng;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
sta-peerd: the STA peer daemon. Shares files and downloads them piece by
piece from many peers at once, verifying every piece; driven by `sta`.

USAGE:
    sta-peerd [OPTIONS]

OPTIONS (each also settable as STA_PEERD_<NAME> or in the config file):
    --tracker ADDR:PORT     the sta-trackerd to use [default: 127.0.0.1:6969]
    --listen ADDR:PORT      address for peer connections [default: 0.0.0.0:6881]
    --dir DIR               where downloads land [default: .]
    --control PATH          control socket for `sta` [default: DIR/sta-peerd.sock]
    --piece-size BYTES      piece size for files shared here, a power of two
                            from 16384 to 16777216 [default: 524288]
    --max-peers N           peers per file [default: 50]
    --upload-slots N        peers served at once per file [default: 4]
    --hash-threads N        SHA1 threads [default: number of cores]
    --log-level LEVEL       error, warn, info, debug or trace [default: info]
    --share FILE            share FILE at start (repeatable; not in env/config)
    --config FILE           `name = value` lines; flags and environment win
    -h, --help              print this help

Prints `listening on ADDR` and `control on PATH` once ready; exits 0 on
SIGINT, SIGTERM or `sta stop`.
";

const SETTINGS: &[&str] = &[
    "tracker",
    "listen",
    "dir",
    "control",
    "piece-size",
    "max-peers",
    "upload-slots",
    "hash-threads",
    "log-level",
];

fn main() -> ExitCode {
    sta::config::daemon_main("sta-peerd", HELP, run)
}

fn resolve(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError(format!("tracker {addr:?}: expected HOST:PORT")))
}

fn run(mut args: pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>> {
    let shares: Vec<PathBuf> = args.values_from_str("--share")?;
    let s = Settings::load(args, "STA_PEERD", SETTINGS)?;
    init_logging(&s.get::<String>("log-level", "info".into())?)?;
    let tracker = resolve(&s.get::<String>("tracker", "127.0.0.1:6969".into())?)?;
    let listen: SocketAddr = s.get("listen", SocketAddr::from(([0, 0, 0, 0], 6881)))?;
    let dir: PathBuf = s.get("dir", PathBuf::from("."))?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let control: PathBuf = s.get("control", dir.join(sta::control::SOCKET_NAME))?;
    let piece_length = check_piece_length(s.get("piece-size", i64::from(DEFAULT_PIECE_LENGTH))?)
        .map_err(|e| ConfigError(format!("--piece-size: {e}")))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hash_threads: usize = s.get("hash-threads", cores)?;

    let peer_listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = peer_listener.local_addr()?;
    let control_listener = bind_control(&control)?;
    let limits = Limits {
        max_connections: 4096,
        idle_timeout: Duration::from_secs(180),
        // Blocks come 16 KiB at a time and many at once: up to 256 KiB
        // per read.
        read_buffer: 256 * 1024,
        max_read_buffer: MAX_PEER_FRAME as usize + 4 + 1024 * 1024,
        write_high_water: 8 * 1024 * 1024,
        tick: Duration::from_millis(250),
    };
    let mut reactor = Reactor::new(limits)?;
    reactor.listen(Listener::Tcp(peer_listener))?;
    reactor.listen(Listener::Unix(control_listener))?;
    reactor.stop_on_signals()?;
    let config = Config {
        tracker,
        listen_port: bound.port(),
        listen: bound,
        dir,
        piece_length,
        max_peers: s.get("max-peers", 50)?,
        upload_slots: s.get("upload-slots", 4)?,
    };
    let pool = HashPool::new(hash_threads, reactor.waker())?;
    let mut daemon = Daemon::new(config, pool, Rng::from_entropy());
    let shared = absolute(&shares)?;
    daemon.start(reactor.ctx(), &shared)?;
    println!("listening on {bound}");
    println!("control on {}", control.display());
    std::io::stdout().flush()?;
    log::info!("sta-peerd listening on {bound}, tracker {tracker}");
    let result = reactor.run(&mut daemon);
    let _ = std::fs::remove_file(&control);
    result?;
    log::info!("sta-peerd stopped");
    Ok(())
}

fn absolute(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    paths
        .iter()
        .map(|p| std::fs::canonicalize(p).map_err(|e| format!("--share {}: {e}", p.display())))
        .collect()
}

/// Binds the control socket, replacing a stale one left by a crash but
/// never one a running daemon still answers on.
fn bind_control(path: &Path) -> Result<UnixListener, String> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "another sta-peerd is already running on {}; stop it with `sta stop` or use --control",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    // The socket lets its user share any file the daemon can read and
    // write where it can: only the owner may connect. Binding under a
    // restrictive umask leaves no moment where it is open to others.
    // SAFETY: umask only swaps the process's file mode mask.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    bound.map_err(|e| format!("cannot create control socket {}: {e}", path.display()))
}
