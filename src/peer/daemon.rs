//! The reactor handler of `sta-peerd`: each connection carries the engine
//! link it belongs to; events go to the engine with the time since start,
//! and the engine's actions come back as sends (mapped slices for
//! blocks), dials, closes and hash-pool jobs.

use super::disk::Disk;
use super::http;
use crate::config::{Settings, peerd};
use crate::engine::{Action, Config, Engine, Job, LinkId, Time};
use crate::hashpool::{self, HashPool};
use crate::meta::Info;
use crate::ratelimit::Rate;
use crate::reactor::{ConnId, Ctx, Flow, Handler, OutQueue, SharedBytes, TlsPeer};
use crate::rng::Rng;
use log::{info, warn};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Listener numbers, in the order `sta-peerd` registers them.
pub const PEER_LISTENER: usize = 0;
pub const CONTROL_LISTENER: usize = 1;
/// The IPv6 twin of the peer listener, when there is one.
pub const PEER_LISTENER_V6: usize = 2;

/// What a reactor connection carries: an engine link, or one HTTP
/// request (answered by the shell from the engine's views).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Link(LinkId),
    Http(crate::http::Exchange),
}

pub struct Daemon {
    engine: Engine<Disk>,
    pool: HashPool,
    /// The reactor connection of each open link.
    conns: HashMap<LinkId, ConnId>,
    /// The engine's time zero.
    epoch: Instant,
    /// The `--http` listener's number, when there is one.
    http_listener: Option<usize>,
    /// The API token that write requests must carry, if any.
    api_token: Option<String>,
    /// The `--http` listener is on loopback.
    http_loopback: bool,
    /// HTTP requests waiting for the engine's answer: the engine link of
    /// the request, the HTTP connection to answer on, and whether it was a
    /// HEAD request.
    deferred: HashMap<LinkId, (ConnId, bool)>,
    /// The settings it started with, for a reload on SIGHUP.
    settings: Option<Settings>,
    /// TLS for the tracker sessions, when on.
    tls: Option<super::tls::DaemonTls>,
    /// A SIGHUP loaded a new TLS identity: the peer listeners take it.
    tls_reloaded: bool,
    /// TLS peer links accepted for one file (their SNI) whose handshake
    /// has not yet shown it is for that file.
    tls_bound: HashMap<LinkId, crate::wire::InfoHash>,
    /// The UDP socket(s) on the peer port: uTP refusals and the DHT.
    udp: super::udp::Udp,
    /// The DHT node, when on (`--dht`).
    dht: Option<super::dht::DhtShell>,
}

impl Daemon {
    pub fn new(config: Config, pool: HashPool, rng: Rng) -> Daemon {
        Daemon {
            engine: Engine::new(config, Disk::default(), rng, Time::ZERO),
            pool,
            conns: HashMap::new(),
            epoch: Instant::now(),
            http_listener: None,
            api_token: None,
            http_loopback: false,
            settings: None,
            deferred: HashMap::new(),
            tls: None,
            tls_reloaded: false,
            tls_bound: HashMap::new(),
            udp: super::udp::Udp::new(Instant::now()),
            dht: None,
        }
    }

    /// Runs a DHT node on the UDP socket of listener `listener`, joining
    /// through `bootstrap` and the table saved in the download directory.
    pub fn use_dht(
        &mut self,
        ctx: &mut Ctx<Conn>,
        listener: usize,
        port: u16,
        dir: &std::path::Path,
        bootstrap: &[SocketAddr],
    ) {
        let now = self.now();
        let path = dir.join(super::dht::TABLE_FILE);
        let mut shell = super::dht::DhtShell::new(listener, port, path, now);
        shell.bootstrap(now, bootstrap);
        // The UDP socket is the peer port's twin: same number.
        self.engine.set_dht_port(port);
        self.dht = Some(shell);
        self.dht_flush(ctx);
    }

    /// Sends the DHT's datagrams and hands the peers it found to the
    /// engine.
    fn dht_flush(&mut self, ctx: &mut Ctx<Conn>) {
        let now = self.now();
        let Some(dht) = self.dht.as_mut() else {
            return;
        };
        for (hash, addrs) in dht.flush(now, ctx) {
            let source = crate::engine::book::PeerSource::Dht;
            self.engine.add_peers(now, hash, &addrs, source);
        }
        self.perform(ctx);
    }

    /// Serves HTTP on listener number `listener`; write requests of the
    /// API must carry `token`.
    /// `loopback`: the listener is on a loopback address, where Host
    /// names are refused (see [`crate::http::Exchange::on_loopback`]).
    pub fn serve_http(&mut self, listener: usize, token: Option<String>, loopback: bool) {
        self.http_listener = Some(listener);
        self.api_token = token;
        self.http_loopback = loopback;
    }

    /// Answers the HTTP request at the start of `input`, once whole, or
    /// registers it as waiting for the engine (`/api/v1/catalog`).
    fn http(
        &mut self,
        ctx: &mut Ctx<Conn>,
        id: ConnId,
        exchange: &mut crate::http::Exchange,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let now = self.now();
        let gauges = http::ShellGauges {
            hash_queue: self.pool.queued(),
        };
        let (engine, token) = (&mut self.engine, self.api_token.as_deref());
        let mut waiting = None;
        let step = exchange.input(input, |req| {
            match http::respond(engine, now, req, token, gauges) {
                http::Answer::Now(response) => Some(response),
                http::Answer::Later(link) => {
                    waiting = Some((link, req.method == crate::http::Method::Head));
                    None
                }
            }
        });
        if let Some((link, head_only)) = waiting {
            self.deferred.insert(link, (id, head_only));
        }
        if let Some(reply) = &step.reply {
            out.push(reply);
        }
        self.perform(ctx);
        Flow {
            used: step.used,
            close: step.close,
        }
    }

    /// Dials the tracker over TLS from now on (call before `start`).
    pub fn use_tls(&mut self, tls: super::tls::DaemonTls) {
        self.engine.set_swarm_ca(tls.swarm_ca());
        self.tls = Some(tls);
    }

    /// Keeps the settings the daemon was started with: SIGHUP reads them
    /// again and applies what can change while running.
    pub fn reload_with(&mut self, settings: Settings) {
        self.settings = Some(settings);
    }

    /// Re-reads the configuration: log level, upload slots, peers per file
    /// and the piece size of new shares change now; anything else changed
    /// is named as needing a restart, and nothing changes if the new
    /// configuration is invalid.
    fn reload_settings(&mut self) -> Result<(), String> {
        let Some(old) = &self.settings else {
            return Ok(());
        };
        let new = old.reload(&peerd::SPEC).map_err(|e| e.to_string())?;
        let changed = old.changed(&new);
        let level: String = new.get(&peerd::LOG_LEVEL).map_err(|e| e.to_string())?;
        let slots: usize = new.get(&peerd::UPLOAD_SLOTS).map_err(|e| e.to_string())?;
        let peers: usize = new.get(&peerd::MAX_PEERS).map_err(|e| e.to_string())?;
        let piece = crate::meta::info::check_piece_length(
            new.get(&peerd::PIECE_SIZE).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("piece-size: {e}"))?;
        let upload: Rate = new
            .get(&peerd::MAX_UPLOAD_RATE)
            .map_err(|e| e.to_string())?;
        let download: Rate = new
            .get(&peerd::MAX_DOWNLOAD_RATE)
            .map_err(|e| e.to_string())?;
        crate::config::set_log_level(&level).map_err(|e| e.to_string())?;
        let files = crate::config::tls_files(&new).map_err(|e| e.to_string());
        if let Some(config) = crate::tls::files::reload(files, self.tls.is_some())
            && let Some(tls) = self.tls.as_mut()
        {
            tls.replace(config);
            self.engine.set_swarm_ca(tls.swarm_ca());
            self.tls_reloaded = true;
        }
        self.engine.retune(slots, peers, piece);
        // A rate the file changed replaces the one in force (set by
        // `sta limits`, maybe); one it did not change stays as it is.
        let (mut up, mut down) = self.engine.rates();
        if changed.contains(&peerd::MAX_UPLOAD_RATE.name()) {
            up = upload.0;
        }
        if changed.contains(&peerd::MAX_DOWNLOAD_RATE.name()) {
            down = download.0;
        }
        if (up, down) != self.engine.rates() {
            self.engine.set_rates(up, down);
        }
        for name in changed {
            if TLS_SETTINGS.contains(&name) {
                continue; // read again at every SIGHUP, changed or not
            }
            match RELOADABLE.contains(&name) {
                true => info!(
                    "reload: {name} is now {}",
                    new.raw(name).unwrap_or("its default")
                ),
                false => warn!("reload: {name} changed, but takes effect only after a restart"),
            }
        }
        self.settings = Some(new);
        Ok(())
    }

    fn now(&self) -> Time {
        Time::from_duration(self.epoch.elapsed())
    }

    /// Shares `paths`, resumes unfinished downloads and dials the tracker.
    pub fn start(&mut self, ctx: &mut Ctx<Conn>, paths: &[PathBuf]) -> Result<(), String> {
        let now = self.now();
        let started = self.engine.start(now, paths);
        self.perform(ctx);
        started
    }

    /// Sets the rate limits of peer connections (bytes per second up and
    /// down, 0 for none); `sta limits` changes them later.
    pub fn set_rates(&mut self, ctx: &mut Ctx<Conn>, upload: u64, download: u64) {
        self.engine.set_rates(upload, download);
        self.perform(ctx);
    }

    /// Carries out everything the engine asked for.
    fn perform(&mut self, ctx: &mut Ctx<Conn>) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Send { link, bytes } => {
                    if let Some(&id) = self.conns.get(&link) {
                        ctx.send(id, bytes);
                    } else if let Some(&(id, head_only)) = self.deferred.get(&link) {
                        ctx.send(id, http::deferred_reply(&bytes).encode(head_only));
                    }
                }
                Action::SendLater { link, bytes } => {
                    if let Some(&id) = self.conns.get(&link) {
                        ctx.send_later(id, bytes);
                    }
                }
                Action::SendInfo {
                    link,
                    head,
                    info,
                    tail,
                } => {
                    if let Some(&id) = self.conns.get(&link) {
                        let len = info.bencoded.len();
                        ctx.send(id, head);
                        ctx.send_shared(id, &[], Arc::new(Dict(info)), 0..len);
                        ctx.send(id, tail);
                    }
                }
                Action::SendBlock {
                    link,
                    header,
                    file,
                    offset,
                    len,
                } => self.send_block(ctx, link, header, file, offset, len),
                Action::Dial { link, addr } => self.dial(ctx, link, addr),
                Action::Close { link } => {
                    if let Some((id, _)) = self.deferred.remove(&link) {
                        ctx.close(id);
                    }
                    if let Some(&id) = self.conns.get(&link) {
                        ctx.close(id);
                    }
                }
                Action::Job(job) => self.submit(job),
                Action::SetRates { upload, download } => ctx.set_rates(upload, download),
                Action::Stop => ctx.stop(),
            }
        }
    }

    fn dial(&mut self, ctx: &mut Ctx<Conn>, link: LinkId, addr: SocketAddr) {
        let Some(tls) = &self.tls else {
            return ctx.dial(addr, Conn::Link(link));
        };
        if !self.engine.is_peer_link(link) {
            return ctx.dial_tls(addr, Conn::Link(link), tls.dial(addr));
        }
        let peer = self.engine.dial_info_hash(link).and_then(|hash| {
            let name = self.engine.file_name(&hash)?;
            Some(tls.dial_peer(&hash, name))
        });
        match peer {
            Some(Ok(dial)) => ctx.dial_tls(addr, Conn::Link(link), dial),
            // Never in the clear: the dial fails instead.
            Some(Err(e)) => {
                warn!("cannot dial peer {addr} over TLS: {e}");
                let now = self.now();
                self.engine.link_closed(now, link);
            }
            // A magnet's download before its info dict: a peer's
            // certificate must name the file, whose name is not known yet.
            None => {
                warn!(
                    "cannot dial peer {addr} over TLS: the file's name is not known yet (a magnet link?), and a TLS peer's certificate must carry it; get the file by its .torrent or from the tracker"
                );
                let now = self.now();
                self.engine.link_closed(now, link);
            }
        }
    }

    fn send_block(
        &self,
        ctx: &mut Ctx<Conn>,
        link: LinkId,
        header: [u8; 13],
        file: u64,
        offset: u64,
        len: u32,
    ) {
        let Some(&id) = self.conns.get(&link) else {
            return;
        };
        match self.engine.storage().slices(file, offset, len) {
            // A block that spans files goes out as one run per file.
            Some(runs) => {
                let mut head: &[u8] = &header;
                for (shared, range) in runs {
                    ctx.send_shared(id, head, shared, range);
                    head = &[];
                }
            }
            // The file shrank under us: the size check stops sharing it
            // soon; meanwhile this peer gets nothing it could misread.
            None => ctx.close(id),
        }
    }

    fn submit(&mut self, job: Job) {
        match self.engine.storage().opened(job.file()) {
            Some(content) => self.pool.submit(hashpool::Job { job, content }),
            None => warn!("a job for a file no longer open was dropped"),
        }
    }
}

const TLS_SETTINGS: [&str; 3] = ["tls-cert", "tls-key", "tls-ca"];

/// The settings a SIGHUP applies to a running sta-peerd.
const RELOADABLE: [&str; 6] = [
    "log-level",
    "upload-slots",
    "max-peers",
    "piece-size",
    "max-upload-rate",
    "max-download-rate",
];

/// A torrent's info dict, queued on a tracker's socket as the torrent
/// keeps it.
struct Dict(Arc<Info>);

impl SharedBytes for Dict {
    fn bytes(&self) -> &[u8] {
        &self.0.bencoded
    }
}

impl Handler for Daemon {
    type Session = Conn;

    fn reload(&mut self, ctx: &mut Ctx<Conn>) {
        if let Err(e) = self.reload_settings() {
            warn!("reload: {e}; keeping the configuration in use");
        }
        if std::mem::take(&mut self.tls_reloaded)
            && let Some(tls) = &self.tls
        {
            for &index in &tls.peer_listeners {
                ctx.set_listener_tls(index, Some(tls.server()));
            }
        }
        self.perform(ctx);
    }

    fn open(
        &mut self,
        ctx: &mut Ctx<Conn>,
        id: ConnId,
        listener: usize,
        peer: Option<SocketAddr>,
        _out: &mut OutQueue,
    ) -> Option<Conn> {
        let now = self.now();
        let link = match listener {
            // First: without an IPv6 listener, it has the number the
            // IPv6 one would have.
            l if Some(l) == self.http_listener => {
                return Some(Conn::Http(crate::http::Exchange::on_loopback(
                    self.http_loopback,
                )));
            }
            PEER_LISTENER | PEER_LISTENER_V6 => self.engine.peer_accepted(now, peer?),
            CONTROL_LISTENER => self.engine.control_opened(now),
            _ => return None,
        };
        self.conns.insert(link, id);
        self.perform(ctx);
        Some(Conn::Link(link))
    }

    /// A TLS peer link may trade only the file its SNI names, and only
    /// with a certificate for that file's name or `*`.
    fn tls_established(&mut self, _id: ConnId, conn: &mut Conn, peer: &TlsPeer) -> bool {
        let Conn::Link(link) = conn else {
            return true;
        };
        if !self.engine.is_peer_link(*link) {
            return true;
        }
        let Some(sni) = peer.sni.as_deref() else {
            warn!("TLS peer link refused: it named no file (SNI = the info hash in hex)");
            return false;
        };
        let hash = crate::tls::torrent::info_hash_of(sni);
        let name = hash.and_then(|h| self.engine.file_name(&h));
        match (hash, name) {
            (_, None) | (None, _) => {
                warn!("TLS peer link refused: its SNI {sni:?} names no file shared here");
                false
            }
            (_, Some(name)) if !crate::tls::torrent::may_join(&peer.names, name) => {
                warn!(
                    "TLS peer link for {name:?} refused: its certificate is for {:?}, not for {name:?} or `*` (issue it with --name '*' or --name {name:?})",
                    peer.names
                );
                false
            }
            (Some(hash), Some(_)) => {
                self.tls_bound.insert(*link, hash);
                true
            }
        }
    }

    fn dialed(&mut self, ctx: &mut Ctx<Conn>, id: ConnId, conn: &mut Conn, _out: &mut OutQueue) {
        let Conn::Link(link) = conn else {
            return;
        };
        self.conns.insert(*link, id);
        let now = self.now();
        self.engine.link_opened(now, *link);
        self.perform(ctx);
    }

    fn data(
        &mut self,
        ctx: &mut Ctx<Conn>,
        id: ConnId,
        conn: &mut Conn,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        let link = match conn {
            Conn::Link(link) => link,
            Conn::Http(exchange) => return self.http(ctx, id, exchange, input, out),
        };
        if self.tls.is_none()
            && !self.engine.is_peer_link(*link)
            && crate::tls::looks_like_tls(input)
        {
            warn!("the tracker speaks TLS: give this sta-peerd --tls-cert, --tls-key and --tls-ca");
        }
        if let Some(hash) = self.tls_bound.get(link) {
            match super::tls::handshake_is_for(input, hash) {
                None => {
                    return Flow {
                        used: 0,
                        close: false,
                    };
                }
                Some(false) => {
                    warn!(
                        "TLS peer link refused: admitted for {} (its SNI), its handshake is for another file",
                        crate::tls::torrent::sni_of(hash)
                    );
                    return Flow {
                        used: 0,
                        close: true,
                    };
                }
                Some(true) => {
                    self.tls_bound.remove(link);
                }
            }
        }
        let now = self.now();
        let used = self.engine.link_input(now, *link, input);
        self.perform(ctx);
        Flow { used, close: false }
    }

    /// Peer connections only: not `sta`'s, not the tracker session, not
    /// HTTP.
    fn rate_limited(&self, conn: &Conn) -> bool {
        match conn {
            Conn::Link(link) => self.engine.is_peer_link(*link),
            Conn::Http(_) => false,
        }
    }

    /// Peer connections: the engine hands blocks as their sockets drain.
    fn reports_sent(&self, conn: &Conn) -> bool {
        self.rate_limited(conn)
    }

    fn sent(&mut self, ctx: &mut Ctx<Conn>, _id: ConnId, conn: &mut Conn, left: u64) {
        if let Conn::Link(link) = conn {
            let now = self.now();
            self.engine.link_sent(now, *link, left);
            self.perform(ctx);
        }
    }

    fn idle(&mut self, _id: ConnId, conn: &mut Conn, _out: &mut OutQueue) -> bool {
        match conn {
            Conn::Link(link) => self.engine.may_close_idle(*link),
            Conn::Http(_) => true,
        }
    }

    fn close(&mut self, ctx: &mut Ctx<Conn>, id: ConnId, conn: Conn) {
        let now = self.now();
        match conn {
            Conn::Link(link) => {
                self.conns.remove(&link);
                self.tls_bound.remove(&link);
                self.engine.link_closed(now, link);
            }
            // The client left before its answer: the engine forgets the
            // request.
            Conn::Http(_) => {
                let gone: Vec<LinkId> = self
                    .deferred
                    .iter()
                    .filter(|&(_, &(c, _))| c == id)
                    .map(|(&l, _)| l)
                    .collect();
                for link in gone {
                    self.deferred.remove(&link);
                    self.engine.link_closed(now, link);
                }
            }
        }
        self.perform(ctx);
    }

    fn tick(&mut self, ctx: &mut Ctx<Conn>, _now: Instant) {
        let now = self.now();
        self.engine.handle_timeout(now);
        self.perform(ctx);
        if let Some(dht) = self.dht.as_mut() {
            for node in self.engine.take_dht_nodes() {
                dht.ping(now, node);
            }
            dht.tick(now, &self.engine.dht_files());
            self.engine.set_dht_nodes(dht.nodes());
            self.dht_flush(ctx);
        }
    }

    fn datagram(
        &mut self,
        ctx: &mut Ctx<Conn>,
        _listener: usize,
        from: SocketAddr,
        bytes: &[u8],
        reply: &mut Vec<u8>,
    ) {
        let krpc = super::udp::Datagram::classify(bytes) == super::udp::Datagram::Krpc;
        let now = self.now();
        match self.dht.as_mut() {
            Some(dht) if krpc => {
                dht.datagram(now, from, bytes);
                self.dht_flush(ctx);
            }
            _ => self.udp.datagram(Instant::now(), from, bytes, reply),
        }
    }

    fn wake(&mut self, ctx: &mut Ctx<Conn>) {
        while let Some(done) = self.pool.try_recv() {
            let now = self.now();
            self.engine.job_done(now, done);
        }
        self.perform(ctx);
    }
}
