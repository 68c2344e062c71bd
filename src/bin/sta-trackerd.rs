//! `sta-trackerd`: the STA tracker daemon.

use mio::net::{TcpListener, UdpSocket};
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
    --udp-listen ADDR:PORT    serve BitTorrent clients over UDP (BEP 15), or
                              `off` [default: the address and port of the
                              bound --listen socket; a failed bind of that
                              default only logs a warning]
    --http-listen ADDR:PORT   also serve BitTorrent clients over HTTP (BEP 3,
                              BEP 23 compact peers) [default: off]
    --announce-interval SECS  BitTorrent re-announce interval; a BitTorrent
                              peer is forgotten after twice this [default: 60]
    --max-bt-peers N          BitTorrent peers across all files
                              [default: 1000000]
    --config FILE             `name = value` lines; flags and environment win
    -h, --help                print this help

Prints `listening on ADDR` once ready (then `udp listening on ADDR` and
`http listening on ADDR` for the BitTorrent listeners that are on); exits 0 on SIGINT or SIGTERM.
";

const SETTINGS: &[&str] = &[
    "listen",
    "log-level",
    "max-connections",
    "idle-timeout",
    "max-files-per-peer",
    "max-peers-per-answer",
    "max-files",
    "udp-listen",
    "http-listen",
    "announce-interval",
    "max-bt-peers",
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
        announce_interval_secs: s.get("announce-interval", 60)?,
        max_bt_peers: s.get("max-bt-peers", 1_000_000)?,
    };
    if config.announce_interval_secs == 0 {
        return Err(ConfigError("announce-interval must be at least 1".into()).into());
    }
    // None: the default (the bound TCP address); Some(None): off.
    let udp_listen: Option<Option<SocketAddr>> = s.get::<Given>("udp-listen", Given(None))?.0;
    let http_listen: Option<SocketAddr> = s.get::<Opt>("http-listen", Opt(None))?.0;
    let limits = Limits {
        max_connections: s.get("max-connections", 10_000)?,
        idle_timeout: Duration::from_secs(idle_secs.into()),
        // Thousands of sessions sending small requests: 16 KiB buffers
        // cost 15% of bench/tracker.sh's requests per second (cache).
        read_buffer: 4 * 1024,
        max_read_buffer: MAX_TRACKER_FRAME as usize + 4 + 64 * 1024,
        write_high_water: 4 * 1024 * 1024,
        tick: Duration::from_secs(1),
    };
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    let mut reactor = Reactor::new(limits)?;
    reactor.listen(Listener::Tcp(listener))?;
    let mut extra = Vec::new();
    let udp_socket = match udp_listen {
        Some(Some(addr)) => {
            Some(UdpSocket::bind(addr).map_err(|e| format!("cannot listen on udp {addr}: {e}"))?)
        }
        Some(None) => None,
        None => match UdpSocket::bind(bound) {
            Ok(socket) => Some(socket),
            Err(e) => {
                log::warn!("sta-trackerd: no BitTorrent UDP tracker: cannot bind udp {bound}: {e}");
                None
            }
        },
    };
    if let Some(socket) = udp_socket {
        extra.push(format!("udp listening on {}", socket.local_addr()?));
        reactor.listen(Listener::Udp(socket))?;
    }
    let mut http_listener = None;
    if let Some(addr) = http_listen {
        let l =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on http {addr}: {e}"))?;
        extra.push(format!("http listening on {}", l.local_addr()?));
        http_listener = Some(reactor.listen(Listener::Tcp(l))?);
    }
    reactor.stop_on_signals()?;
    let mut tracker = Tracker::new(config, Rng::from_entropy());
    tracker.http_listener = http_listener;
    println!("listening on {bound}");
    for line in &extra {
        println!("{line}");
        log::info!("sta-trackerd {line}");
    }
    std::io::stdout().flush()?;
    log::info!("sta-trackerd listening on {bound}");
    reactor.run(&mut tracker)?;
    log::info!("sta-trackerd stopped");
    Ok(())
}

/// A setting that may be absent (`None`), given as `off` (`Some(None)`) or
/// given as an address.
struct Given(Option<Option<SocketAddr>>);

impl std::str::FromStr for Given {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Given, Self::Err> {
        s.parse::<Opt>().map(|o| Given(Some(o.0)))
    }
}

/// An address setting that may be absent (`off` or empty = absent).
struct Opt(Option<SocketAddr>);

impl std::str::FromStr for Opt {
    type Err = std::net::AddrParseError;
    fn from_str(s: &str) -> Result<Opt, Self::Err> {
        match s {
            "" | "off" => Ok(Opt(None)),
            _ => s.parse().map(|a| Opt(Some(a))),
        }
    }
}
