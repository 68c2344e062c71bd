//! `sta-trackerd`: the STA tracker daemon.

use mio::net::{TcpListener, UdpSocket};
use sta::config::{ConfigError, OptAddr, Settings, init_logging, trackerd};
use sta::limits::MAX_TRACKER_FRAME;
use sta::reactor::{Limits, Listener, Reactor, bind};
use sta::rng::Rng;
use sta::tracker::guard::{BanList, Guard, GuardConfig};
use sta::tracker::http_api::ApiConfig;
use sta::tracker::{Config, Tracker};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const ABOUT: &str = "\
sta-trackerd: the STA tracker, a live catalog of shared files and of which
peer holds which pieces. It never carries file data, so it has no rate
limits: those are sta-peerd's (--max-upload-rate, --max-download-rate).

USAGE:
    sta-trackerd [OPTIONS]
";

const TRAILER: &str = "\
Prints `listening on ADDR` once ready (then `udp listening on ADDR` and
`http listening on ADDR` for the BitTorrent listeners that are on, and
`api listening on ADDR` with --http); exits 0 on SIGINT or SIGTERM; SIGHUP
reloads the config file (see README).
";

fn main() -> ExitCode {
    sta::config::daemon_main(&trackerd::SPEC, ABOUT, TRAILER, run)
}

fn run(args: pico_args::Arguments) -> Result<(), Box<dyn std::error::Error>> {
    let mut s = Settings::load(args, &trackerd::SPEC)?;
    init_logging(&s.get::<String>(&trackerd::LOG_LEVEL)?)?;
    let listen: SocketAddr = s.get(&trackerd::LISTEN)?;
    let idle_secs: u32 = s.get(&trackerd::IDLE_TIMEOUT)?;
    let max_peers = s.get(&trackerd::MAX_PEERS_PER_ANSWER)?;
    if max_peers > sta::limits::MAX_PEERS_PER_ANSWER {
        return Err(ConfigError(format!(
            "max-peers-per-answer is at most {}",
            sta::limits::MAX_PEERS_PER_ANSWER
        ))
        .into());
    }
    let config = Config {
        max_files_per_peer: s.get(&trackerd::MAX_FILES_PER_PEER)?,
        max_peers_per_answer: max_peers,
        max_files: s.get(&trackerd::MAX_FILES)?,
        idle_timeout_secs: idle_secs,
        announce_interval_secs: s.get(&trackerd::ANNOUNCE_INTERVAL)?,
        max_bt_peers: s.get(&trackerd::MAX_BT_PEERS)?,
    };
    if config.announce_interval_secs == 0 {
        return Err(ConfigError("announce-interval must be at least 1".into()).into());
    }
    // None: the default (the bound TCP address); Some(None): off.
    let udp_listen: Option<Option<SocketAddr>> =
        s.opt::<OptAddr>(&trackerd::UDP_LISTEN)?.map(|o| o.0);
    let http_listen: Option<SocketAddr> = s.get::<OptAddr>(&trackerd::HTTP_LISTEN)?.0;
    let api_listen: Option<SocketAddr> = s.get::<sta::http::Listen>(&trackerd::HTTP)?.0;
    let api_token =
        sta::config::load_api_token(s.opt(&trackerd::API_TOKEN_FILE)?, "STA_TRACKERD_API_TOKEN")?;
    let rate: u32 = s.get(&trackerd::IP_REQUEST_RATE)?;
    let guard_config = GuardConfig {
        max_sessions_per_ip: s.get(&trackerd::MAX_SESSIONS_PER_IP)?,
        requests_per_sec: rate,
        request_burst: s
            .opt(&trackerd::IP_REQUEST_BURST)?
            .unwrap_or(rate.saturating_mul(2)),
    };
    let bans = match s.opt::<PathBuf>(&trackerd::BAN_FILE)? {
        Some(path) => read_bans(&path)?,
        None => BanList::default(),
    };
    let tls = match sta::config::tls_files(&s)? {
        Some(files) => Some(files.load()?),
        None => None,
    };
    let limits = Limits {
        max_connections: s.get(&trackerd::MAX_CONNECTIONS)?,
        idle_timeout: Duration::from_secs(idle_secs.into()),
        // Thousands of sessions sending small requests: 16 KiB buffers
        // cost 15% of bench/tracker.sh's requests per second (cache).
        read_buffer: 4 * 1024,
        max_read_buffer: MAX_TRACKER_FRAME as usize + 4 + 64 * 1024,
        write_high_water: 4 * 1024 * 1024,
        tick: Duration::from_secs(1),
        // The tracker sends nothing later (Ctx::send_later).
        send_later: Duration::from_millis(100),
    };
    let listener =
        TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr()?;
    let mut reactor = Reactor::new(limits)?;
    // The listeners of STA sessions, which TLS (when on) covers.
    let mut sta_listeners = vec![reactor.listen(Listener::Tcp(listener))?];
    let mut extra = Vec::new();
    let udp_socket = match udp_listen {
        Some(Some(addr)) => {
            Some(UdpSocket::bind(addr).map_err(|e| format!("cannot listen on udp {addr}: {e}"))?)
        }
        Some(None) => None,
        // BitTorrent's UDP tracker has no TLS: a private swarm does not
        // open it unless told to.
        None if tls.is_some() => {
            log::info!("no BitTorrent UDP tracker: TLS is on (give --udp-listen to open one)");
            None
        }
        None => match UdpSocket::bind(bound) {
            Ok(socket) => Some(socket),
            Err(e) => {
                log::warn!("sta-trackerd: no BitTorrent UDP tracker: cannot bind udp {bound}: {e}");
                None
            }
        },
    };
    let udp_on = udp_socket.is_some();
    if let Some(socket) = udp_socket {
        extra.push(format!("udp listening on {}", socket.local_addr()?));
        reactor.listen(Listener::Udp(socket))?;
    }
    // The IPv6 twins: sessions, and BitTorrent UDP when it is on.
    let v6_setting: Option<Option<SocketAddr>> =
        s.opt::<OptAddr>(&trackerd::LISTEN_V6)?.map(|o| o.0);
    if let Some((addr, default)) = sta::config::v6_twin(v6_setting, bound) {
        match bind::tcp_listener(addr) {
            Ok(l) => {
                log::info!("sta-trackerd listening on {} (IPv6)", l.local_addr()?);
                sta_listeners.push(reactor.listen(Listener::Tcp(l))?);
                if udp_on {
                    match bind::udp_socket(addr) {
                        Ok(u) => {
                            log::info!("sta-trackerd udp listening on {} (IPv6)", u.local_addr()?);
                            reactor.listen(Listener::Udp(u))?;
                        }
                        Err(e) => log::warn!(
                            "no IPv6 BitTorrent UDP tracker: cannot bind udp {addr}: {e}"
                        ),
                    }
                }
            }
            Err(e) if default => log::warn!("no IPv6 listener: cannot bind {addr}: {e}"),
            Err(e) => return Err(format!("cannot listen on {addr}: {e}").into()),
        }
    }
    let mut http_listener = None;
    if let Some(addr) = http_listen {
        let l =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on http {addr}: {e}"))?;
        extra.push(format!("http listening on {}", l.local_addr()?));
        http_listener = Some(reactor.listen(Listener::Tcp(l))?);
    }
    let mut api = None;
    if let Some(addr) = api_listen {
        let l =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on --http {addr}: {e}"))?;
        extra.push(format!("api listening on {}", l.local_addr()?));
        api = Some(ApiConfig {
            listener: reactor.listen(Listener::Tcp(l))?,
            token: api_token,
            started: Instant::now(),
            listen: bound,
            loopback: addr.ip().is_loopback(),
        });
    }
    if let Some(config) = &tls {
        for &index in &sta_listeners {
            reactor.set_listener_tls(index, Some(config.server.clone()));
        }
        sta::tls::files::log_loaded(config, sta::tls::files::now_secs(), "");
    }
    let tls_on = tls.is_some();
    reactor.stop_on_signals()?;
    let mut tracker = Tracker::new(config, Rng::from_entropy());
    tracker.http_listener = http_listener;
    tracker.api = api;
    if !bans.is_empty() {
        log::info!("ban list: {} addresses or networks", bans.len());
    }
    tracker.guard = Guard::new(guard_config);
    tracker.guard.set_bans(bans);
    tracker.on_reload = Some(Box::new(move |ctx, guard| {
        reload(&mut s);
        reload_bans(&s, guard);
        let files = sta::config::tls_files(&s).map_err(|e| e.to_string());
        if let Some(config) = sta::tls::files::reload(files, tls_on) {
            for &index in &sta_listeners {
                ctx.set_listener_tls(index, Some(config.server.clone()));
            }
        }
    }));
    println!("listening on {bound}");
    for line in &extra {
        println!("{line}");
        log::info!("sta-trackerd {line}");
    }
    std::io::stdout().flush()?;
    log::info!(
        "sta-trackerd listening on {bound}{}",
        if tls_on { " (TLS only)" } else { "" }
    );
    reactor.run(&mut tracker)?;
    log::info!("sta-trackerd stopped");
    Ok(())
}

/// SIGHUP: the log level changes now; any other changed setting is named
/// as needing a restart. An invalid configuration changes nothing.
fn reload(s: &mut Settings) {
    let applied = s.reload(&trackerd::SPEC).and_then(|new| {
        let level: String = new.get(&trackerd::LOG_LEVEL)?;
        sta::config::set_log_level(&level)?;
        Ok(new)
    });
    match applied {
        Ok(new) => {
            for name in s.changed(&new) {
                match name {
                    "log-level" => log::info!(
                        "reload: log-level is now {}",
                        new.raw(name).unwrap_or("info")
                    ),
                    // Read again at every SIGHUP, changed or not.
                    "tls-cert" | "tls-key" | "tls-ca" | "ban-file" => {}
                    _ => {
                        log::warn!("reload: {name} changed, but takes effect only after a restart")
                    }
                }
            }
            *s = new;
        }
        Err(e) => log::warn!("reload: {e}; keeping the configuration in use"),
    }
}

fn read_bans(path: &Path) -> Result<BanList, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read ban file {}: {e}", path.display()))?;
    BanList::parse(&text).map_err(|e| format!("ban file {}: {e}", path.display()))
}

/// SIGHUP: the ban file is read again (its name may have changed); a file
/// that cannot be read or parsed keeps the list in use.
fn reload_bans(s: &Settings, guard: &mut Guard) {
    let path = match s.opt::<PathBuf>(&trackerd::BAN_FILE) {
        Ok(path) => path,
        Err(e) => return log::warn!("reload: {e}; keeping the ban list in use"),
    };
    let bans = match path {
        Some(path) => match read_bans(&path) {
            Ok(bans) => bans,
            Err(e) => return log::warn!("reload: {e}; keeping the ban list in use"),
        },
        None => BanList::default(),
    };
    if bans != *guard.bans() {
        log::info!("reload: ban list: {} addresses or networks", bans.len());
    }
    guard.set_bans(bans);
}
