//! `sta-peerd`: the STA peer daemon.

use mio::net::{TcpListener, UnixListener};
use sta::config::{ConfigError, OptAddr, Settings, init_logging, peerd};
use sta::hashpool::HashPool;
use sta::limits::{MAX_PEER_FRAME, MAX_TRACKER_FRAME};
use sta::meta::info::check_piece_length;
use sta::peer::{Config, Daemon};
use sta::ratelimit::Rate;
use sta::reactor::{Limits, Listener, Reactor, bind};
use sta::rng::Rng;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "\
sta-peerd: the STA peer daemon. Shares files and downloads them piece by
piece from many peers at once, verifying every piece; driven by `sta`.

USAGE:
    sta-peerd [OPTIONS]
";

const TRAILER: &str = "\
Prints `listening on ADDR` and `control on PATH` once ready (then `http
listening on ADDR` with --http); exits 0 on SIGINT, SIGTERM or `sta stop`;
SIGHUP reloads the config file (see README). Rate limits count every byte
of the peer connections (not the tracker session, not `sta`'s, not HTTP),
all of them together.
";

fn main() -> ExitCode {
    sta::config::daemon_main(&peerd::SPEC, ABOUT, TRAILER, run)
}

fn resolve(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError(format!("tracker {addr:?}: expected HOST:PORT")))
}

/// `--tracker`'s list: comma-separated, each resolved once, with the
/// text given (a TLS session checks the tracker's certificate against its
/// host name); duplicates dropped (two sessions with one tracker would
/// only double its load).
fn trackers(list: &str) -> Result<Vec<(SocketAddr, String)>, ConfigError> {
    let mut out: Vec<(SocketAddr, String)> = Vec::new();
    for given in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let a = resolve(given)?;
        if !out.iter().any(|(known, _)| *known == a) {
            out.push((a, given.to_owned()));
        }
    }
    Ok(out)
}

fn run(mut args: pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>> {
    let shares: Vec<PathBuf> = args.values_from_str(peerd::SHARE.flag)?;
    let s = Settings::load(args, &peerd::SPEC)?;
    init_logging(&s.get::<String>(&peerd::LOG_LEVEL)?)?;
    let given = trackers(&s.opt::<String>(&peerd::TRACKER)?.unwrap_or_default())?;
    let trackers: Vec<SocketAddr> = given.iter().map(|(a, _)| *a).collect();
    let tls = match sta::config::tls_files(&s)? {
        Some(files) => Some(files.load()?),
        None => None,
    };
    let listen: SocketAddr = s.get(&peerd::LISTEN)?;
    let dir: PathBuf = s.get(&peerd::DIR)?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let control: PathBuf = s
        .opt(&peerd::CONTROL)?
        .unwrap_or_else(|| dir.join(sta::control::SOCKET_NAME));
    let piece_length = check_piece_length(s.get(&peerd::PIECE_SIZE)?)
        .map_err(|e| ConfigError(format!("--piece-size: {e}")))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let hash_threads: usize = s.opt(&peerd::HASH_THREADS)?.unwrap_or(cores);
    let upload: Rate = s.get(&peerd::MAX_UPLOAD_RATE)?;
    let download: Rate = s.get(&peerd::MAX_DOWNLOAD_RATE)?;

    let http_listen: Option<SocketAddr> = s.get::<sta::http::Listen>(&peerd::HTTP)?.0;
    let api_token =
        sta::config::load_api_token(s.opt(&peerd::API_TOKEN_FILE)?, "STA_PEERD_API_TOKEN")?;
    let peer_listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = peer_listener.local_addr()?;
    let v6_setting: Option<Option<SocketAddr>> = s.opt::<OptAddr>(&peerd::LISTEN_V6)?.map(|o| o.0);
    let peer_listener_v6 = match sta::config::v6_twin(v6_setting, bound) {
        None => None,
        Some((addr, default)) => match bind::tcp_listener(addr) {
            Ok(l) => Some(l),
            Err(e) if default => {
                log::warn!("no IPv6 peer listener: cannot bind {addr}: {e}");
                None
            }
            Err(e) => return Err(format!("cannot listen on {addr}: {e}").into()),
        },
    };
    let control_listener = bind_control(&control)?;
    let limits = Limits {
        max_connections: 4096,
        idle_timeout: Duration::from_secs(180),
        // Blocks come 16 KiB at a time and many at once: up to 256 KiB
        // per read.
        read_buffer: 256 * 1024,
        // The tracker session's frames reach MAX_TRACKER_FRAME (the info
        // dict of a tree of 100,000 files is 3.5 MB; a 1 MiB cap dropped
        // the session on its Meta answer). Peer and control connections
        // never hold that much: their decoders refuse frames past
        // MAX_PEER_FRAME and MAX_CONTROL_LINE, and all input is consumed
        // frame by frame.
        max_read_buffer: (MAX_PEER_FRAME.max(MAX_TRACKER_FRAME)) as usize + 4 + 1024 * 1024,
        write_high_water: 8 * 1024 * 1024,
        tick: Duration::from_millis(250),
        // Haves to peers we are not trading with at the moment wait this
        // long for company: fifty peers on one machine otherwise send
        // (and wake each other for) one small packet per verified piece
        // each. Kept short: a have is how a swarm learns a piece can be
        // fetched here (and how a seed showing a few pieces at a time
        // learns its pieces spread), and at 1 GB/s 25 ms still groups
        // dozens of haves into one packet.
        send_later: Duration::from_millis(25),
    };
    let mut reactor = Reactor::new(limits)?;
    reactor.listen(Listener::Tcp(peer_listener))?;
    reactor.listen(Listener::Unix(control_listener))?;
    let mut v6_line = None;
    let v6_on = peer_listener_v6.is_some();
    let mut v6_bound = None;
    if let Some(l) = peer_listener_v6 {
        let local = l.local_addr()?;
        v6_bound = Some(local);
        v6_line = Some(format!("listening on {local} (IPv6)"));
        let index = reactor.listen(Listener::Tcp(l))?;
        debug_assert_eq!(index, sta::peer::PEER_LISTENER_V6);
    }
    let mut http_line = None;
    let mut http_index = None;
    if let Some(addr) = http_listen {
        let l =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on http {addr}: {e}"))?;
        http_line = Some(format!("http listening on {}", l.local_addr()?));
        http_index = Some((reactor.listen(Listener::Tcp(l))?, addr.ip().is_loopback()));
    }
    // With TLS the swarm is private: no BitTorrent client can join it,
    // and nothing is offered in the clear (as sta-trackerd's UDP tracker).
    let udp_index = match tls {
        None => listen_udp(&mut reactor, bound, v6_bound),
        Some(_) => None,
    };
    let dht_on: bool = s.get(&peerd::DHT)?;
    let dht_bootstrap = match s.opt::<String>(&peerd::DHT_BOOTSTRAP)? {
        Some(list) => bootstrap_nodes(&list)?,
        None => Vec::new(),
    };
    reactor.stop_on_signals()?;
    let tracker_list: Vec<String> = trackers.iter().map(SocketAddr::to_string).collect();
    let config = Config {
        trackers,
        listen_port: bound.port(),
        listen: bound,
        dir: dir.clone(),
        piece_length,
        max_peers: s.get(&peerd::MAX_PEERS)?,
        upload_slots: s.get(&peerd::UPLOAD_SLOTS)?,
        private_shares: s.get(&peerd::PRIVATE_SHARES)?,
    };
    let pool = HashPool::new(hash_threads, reactor.waker())?;
    let mut daemon = Daemon::new(config, pool, Rng::from_entropy());
    daemon.set_rates(reactor.ctx(), upload.0, download.0);
    if let Some((index, loopback)) = http_index {
        daemon.serve_http(index, api_token, loopback);
    }
    let tls_on = tls.is_some();
    if let Some(config) = tls {
        sta::tls::files::log_loaded(&config, sta::tls::files::now_secs(), "");
        let mut peer_listeners = vec![sta::peer::PEER_LISTENER];
        if v6_on {
            peer_listeners.push(sta::peer::PEER_LISTENER_V6);
        }
        for &index in &peer_listeners {
            reactor.set_listener_tls(index, Some(config.server.clone()));
        }
        let names: Vec<(SocketAddr, &str)> = given.iter().map(|(a, g)| (*a, g.as_str())).collect();
        let tls = sta::peer::tls::DaemonTls::new(config, &names, peer_listeners)?;
        daemon.use_tls(tls);
    }
    daemon.reload_with(s);
    match udp_index {
        Some(index) if dht_on => {
            daemon.use_dht(reactor.ctx(), index, bound.port(), &dir, &dht_bootstrap);
            log::info!(
                "sta-peerd dht on udp port {}, bootstrap nodes: {}",
                bound.port(),
                dht_bootstrap.len()
            );
        }
        _ if dht_on && tls_on => log::info!("sta-peerd dht off: TLS swarms are private"),
        _ if dht_on => log::warn!("sta-peerd dht off: no UDP socket on the peer port"),
        _ => {}
    }
    let shared = absolute(&shares)?;
    daemon.start(reactor.ctx(), &shared)?;
    println!("listening on {bound}");
    println!("control on {}", control.display());
    if let Some(line) = &http_line {
        println!("{line}");
        log::info!("sta-peerd {line}");
    }
    std::io::stdout().flush()?;
    match tracker_list.is_empty() {
        true => log::info!(
            "sta-peerd listening on {bound}, with no tracker: files are found only through peers (get by info hash or magnet with x.pe; BEP 9 metadata, PEX); `list` and `get NAME` need a tracker{}",
            if tls_on { " (TLS)" } else { "" }
        ),
        false => log::info!(
            "sta-peerd listening on {bound}, trackers {}{}",
            tracker_list.join(", "),
            if tls_on { " (TLS)" } else { "" }
        ),
    }
    if let Some(line) = v6_line {
        log::info!("sta-peerd {line}");
    }
    let result = reactor.run(&mut daemon);
    let _ = std::fs::remove_file(&control);
    result?;
    log::info!("sta-peerd stopped");
    Ok(())
}

/// Opens the UDP twins of the peer listeners, same addresses and ports:
/// BitTorrent clients try uTP there first (see `sta::peer::udp`), and the
/// DHT lives there. A port that is taken for UDP costs only a warning:
/// TCP peers work without it. Returns the listener number of the first
/// (the DHT's, which is IPv4 only).
fn listen_udp(
    reactor: &mut Reactor<Daemon>,
    v4: SocketAddr,
    v6: Option<SocketAddr>,
) -> Option<usize> {
    let mut first = None;
    for addr in std::iter::once(v4).chain(v6) {
        let opened = bind::udp_socket(addr).and_then(|socket| {
            let local = socket.local_addr()?;
            let index = reactor.listen(Listener::Udp(socket))?;
            Ok((local, index))
        });
        match opened {
            Ok((local, index)) => {
                first = first.or(Some(index));
                log::info!("sta-peerd udp listening on {local} (uTP refused, TCP used)")
            }
            Err(e) => log::warn!("no UDP socket on the peer port: cannot bind udp {addr}: {e}"),
        }
    }
    first
}

/// `--dht-bootstrap`'s list: comma-separated HOST:PORT, each resolved
/// once to an IPv4 address (BEP 5 is IPv4).
fn bootstrap_nodes(list: &str) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::new();
    for given in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let found = given
            .to_socket_addrs()
            .ok()
            .and_then(|mut all| all.find(SocketAddr::is_ipv4))
            .ok_or_else(|| {
                ConfigError(format!(
                    "--dht-bootstrap {given:?}: expected HOST:PORT (IPv4)"
                ))
            })?;
        out.push(found);
    }
    Ok(out)
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
