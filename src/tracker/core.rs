//! The tracker's protocol engine: a request in, exactly one response out,
//! written into the session's output buffer. No sockets and no clock, so
//! every rule here is unit-testable.

use super::catalog::{Asker, Catalog, ConnHash, HaveOutcome, Holding};
use super::swarm::{BtPeer, Swarms, Upsert};
use super::vouches::Vouches;
use crate::bitfield::Bitfield;
use crate::limits::{
    MAX_DIALS_PER_ANNOUNCE, MAX_LIST_PAGE, MAX_PEERS_PER_ANSWER, MAX_VOUCHED_PER_REQUEST,
    TRACKER_PROTOCOL_VERSION,
};
use crate::meta::Info;
use crate::meta::info::to_hex;
use crate::reactor::ConnId;
use crate::rng::Rng;
use crate::wire::bt_udp::{Event, ScrapeStats};
use crate::wire::tracker::{
    ErrorCode, InfoHash, ListEntry, Lookup, PeerId, Pieces, Request, Response, Vouched,
    encode_peers,
};
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Limits a tracker operator may set.
#[derive(Debug, Clone)]
pub struct Config {
    /// Files one session may hold at once.
    pub max_files_per_peer: usize,
    /// Most peers in one get-peers answer (a request may ask fewer).
    pub max_peers_per_answer: u16,
    /// Most distinct files in the catalog.
    pub max_files: usize,
    /// Announced to peers in the welcome; the reactor enforces it.
    pub idle_timeout_secs: u32,
    /// How often BitTorrent clients are asked to announce; a BitTorrent
    /// peer is forgotten after twice this.
    pub announce_interval_secs: u32,
    /// Most BitTorrent peers across all swarms.
    pub max_bt_peers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_files_per_peer: 10_000,
            max_peers_per_answer: MAX_PEERS_PER_ANSWER,
            max_files: 1_000_000,
            idle_timeout_secs: 120,
            announce_interval_secs: 60,
            max_bt_peers: 1_000_000,
        }
    }
}

/// A session known to the tracker.
#[derive(Debug)]
struct Peer {
    remote: IpAddr,
    /// Set by hello: the peer's id and the address it accepts peers on.
    identity: Option<(PeerId, SocketAddr)>,
    /// The session came in over TLS with a certificate of the swarm's CA:
    /// it may see private files.
    authenticated: bool,
    /// The session sent AcceptDials: it reads Dial messages (an older
    /// `sta-peerd` would take one for a broken stream).
    accepts_dials: bool,
}

/// What the reactor should do with the session after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    Close,
}

/// What SIGHUP runs (see [`Tracker::on_reload`]).
/// It gets the guard so that it can replace the ban list.
pub type OnReload =
    Box<dyn FnMut(&mut crate::reactor::Ctx<super::service::Proto>, &mut super::guard::Guard)>;

pub struct Tracker {
    config: Config,
    catalog: Catalog,
    peers: HashMap<ConnId, Peer, ConnHash>,
    rng: Rng,
    picked: Vec<usize>,
    /// Scratch for get-peers: identity and holder index of each answer.
    found: Vec<(PeerId, SocketAddr, usize)>,
    /// BitTorrent peers (UDP and HTTP announces), by info hash.
    swarms: Swarms,
    /// BitTorrent peers that STA sessions are connected to.
    vouches: Vouches,
    /// Scratch for get-peers: the vouched peers eligible.
    vouched: Vec<Vouched>,
    /// Key of the BEP 15 connection ids.
    cid_key: RandomState,
    /// Start of the connection-id time windows (the first datagram).
    epoch: Option<Instant>,
    /// The reactor listener whose connections speak HTTP, if any.
    pub http_listener: Option<usize>,
    /// What SIGHUP runs: the shell's re-reading of its configuration (the
    /// core reads no files), which may change listeners (TLS) through the
    /// reactor's context.
    pub on_reload: Option<OnReload>,
    /// Source address of each open HTTP connection.
    pub(super) http_peers: HashMap<ConnId, IpAddr, ConnHash>,
    /// Scratch for BitTorrent announce replies.
    pub(super) bt_peers: Vec<SocketAddr>,
    /// Dials the last BitTorrent announce asked for, until the shell
    /// writes them.
    pub(super) bt_dials: Vec<DialPush>,
    /// When the shell next sweeps expired BitTorrent peers.
    pub(super) next_sweep: Option<Instant>,
    /// Requests, errors and latencies, for `/metrics`.
    pub stats: super::stats::Stats,
    /// The `--http` monitoring listener and its settings, if on.
    pub api: Option<super::http_api::ApiConfig>,
    /// Per-address bans and limits, applied by the shell.
    pub guard: super::guard::Guard,
    /// Files of the catalog whose info dict is private (BEP 27): shown
    /// only to authenticated sessions.
    private: HashSet<InfoHash>,
}

/// A BitTorrent announce, from UDP or HTTP.
#[derive(Debug, Clone)]
pub struct BtAnnounce {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The request's source IP with the announced port.
    pub addr: SocketAddr,
    pub left: u64,
    pub event: Event,
    /// Peers wanted (`None`: the default, 50).
    pub numwant: Option<u32>,
    /// Only peers of the announcer's address family (UDP, whose compact
    /// format has one entry size per reply).
    pub same_family: bool,
}

/// The counts of an announce reply; the peers go to the caller's vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtReply {
    pub interval: u32,
    pub seeders: u32,
    pub leechers: u32,
}

/// A Dial message for the shell to write on an STA session: `addr`, a
/// BitTorrent client that just announced `info_hash`, may be dialed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialPush {
    pub conn: ConnId,
    pub info_hash: InfoHash,
    pub addr: SocketAddr,
}

impl DialPush {
    /// The frame to queue on `conn`.
    pub fn frame(&self) -> Vec<u8> {
        let mut out = Vec::new();
        Response::Dial {
            info_hash: self.info_hash,
            addr: self.addr,
        }
        .encode(&mut out);
        out
    }
}

/// The `failure reason` of a BitTorrent announce for a private file.
pub const PRIVATE_BT_MESSAGE: &str = "private torrent: this tracker serves it only to STA sessions with a certificate of the swarm's CA";

/// Peers in a BitTorrent announce reply when the client names no number.
pub const BT_DEFAULT_NUMWANT: u32 = 50;
/// Length of a BEP 15 connection-id window; an id is accepted during its
/// window and the next (60 to 120 s; BEP 15 asks for at least 60).
pub const CONNECTION_ID_WINDOW: Duration = Duration::from_secs(60);

type Outcome = Result<(), (ErrorCode, String)>;

fn fail<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, (ErrorCode, String)> {
    Err((code, message.into()))
}

impl Tracker {
    pub fn new(config: Config, rng: Rng) -> Tracker {
        Tracker {
            config,
            catalog: Catalog::default(),
            peers: HashMap::default(),
            rng,
            picked: Vec::new(),
            found: Vec::new(),
            swarms: Swarms::default(),
            vouches: Vouches::default(),
            vouched: Vec::new(),
            cid_key: RandomState::new(),
            epoch: None,
            http_listener: None,
            on_reload: None,
            http_peers: HashMap::default(),
            bt_peers: Vec::new(),
            bt_dials: Vec::new(),
            next_sweep: None,
            stats: Default::default(),
            api: None,
            guard: Default::default(),
            private: HashSet::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn swarms(&self) -> &Swarms {
        &self.swarms
    }

    /// The BEP 15 connection id for `from` in the window of `now`: a keyed
    /// hash, so that nothing is stored per client.
    pub fn connection_id(&mut self, from: SocketAddr, now: Instant) -> u64 {
        let window = self.window(now);
        self.cid_key.hash_one((from, window))
    }

    /// Whether `id` was given to `from` in this window or the one before.
    pub fn connection_id_valid(&mut self, id: u64, from: SocketAddr, now: Instant) -> bool {
        let window = self.window(now);
        id == self.cid_key.hash_one((from, window))
            || (window > 0 && id == self.cid_key.hash_one((from, window - 1)))
    }

    fn window(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_secs() / CONNECTION_ID_WINDOW.as_secs()
    }

    /// Forgets BitTorrent peers past their deadline.
    pub fn sweep(&mut self, now: Instant) -> usize {
        self.swarms.sweep(now)
    }

    /// Seeders, completed downloads and leechers of a file, both kinds of
    /// peer together.
    pub fn scrape(&self, hash: &InfoHash) -> ScrapeStats {
        // BitTorrent clients have no STA certificate: a private file is
        // not theirs to count.
        if self.private.contains(hash) {
            return ScrapeStats::default();
        }
        counts(self.catalog.get(hash), self.swarms.get(hash))
    }

    /// A BitTorrent announce: joins, refreshes or leaves the swarm, and
    /// puts a random sample of the other peers (BitTorrent and STA) into
    /// `peers`. An error is a message for a `failure reason`. A client
    /// new to the swarm (or saying `started`) puts into `dials` the Dials
    /// for the STA sessions that have something to trade with it (see
    /// [`Tracker::dials_for`]).
    pub fn bt_announce(
        &mut self,
        a: &BtAnnounce,
        now: Instant,
        peers: &mut Vec<SocketAddr>,
        dials: &mut Vec<DialPush>,
    ) -> Result<BtReply, String> {
        peers.clear();
        dials.clear();
        if self.private.contains(&a.info_hash) {
            return Err(PRIVATE_BT_MESSAGE.into());
        }
        let interval = self.config.announce_interval_secs;
        if a.addr.port() == 0 && a.event != Event::Stopped {
            return Err("port 0 is not a port peers can connect to".into());
        }
        if a.event == Event::Stopped {
            self.swarms.remove(&a.info_hash, &a.addr);
        } else {
            let peer = BtPeer {
                addr: a.addr,
                peer_id: a.peer_id,
                seeder: a.left == 0,
                deadline: now + Duration::from_secs(2 * u64::from(interval)),
            };
            let catalog = &self.catalog;
            let max_files = self.config.max_files;
            // A swarm of a file the catalog knows adds no file.
            let may_create = |swarms: usize| {
                catalog.get(&a.info_hash).is_some() || swarms + catalog.len() < max_files
            };
            let completed = a.event == Event::Completed;
            match self.swarms.upsert(
                a.info_hash,
                peer,
                completed,
                self.config.max_bt_peers,
                may_create,
            ) {
                Upsert::Added => self.dials_for(a, dials),
                Upsert::Updated if a.event == Event::Started => self.dials_for(a, dials),
                Upsert::Updated => {}
                Upsert::NoRoom => {
                    return Err(format!("the tracker is full ({max_files} files)"));
                }
                Upsert::Full => {
                    return Err(format!(
                        "the tracker is full ({} BitTorrent peers)",
                        self.config.max_bt_peers
                    ));
                }
            }
            let want = a.numwant.unwrap_or(BT_DEFAULT_NUMWANT);
            let want = want.min(u32::from(self.config.max_peers_per_answer)) as usize;
            let s = self.sample_for_bt(a, want, peers);
            return Ok(BtReply {
                interval,
                seeders: s.seeders,
                leechers: s.leechers,
            });
        }
        let s = self.scrape(&a.info_hash);
        Ok(BtReply {
            interval,
            seeders: s.seeders,
            leechers: s.leechers,
        })
    }

    /// The Dials a BitTorrent client's arrival deserves: to every STA
    /// session that accepts them, holds the file and has something to
    /// trade with the client (pieces, if the client is a leecher; missing
    /// pieces, if it is a seeder), but not the client's own address; at
    /// most [`MAX_DIALS_PER_ANNOUNCE`]. Such a session dials the client,
    /// which matters for the clients that never dial STA successfully
    /// (Transmission 3.00 with uTP on, spec/bittorrent.md). Private files
    /// never get here: their BitTorrent announces are refused.
    fn dials_for(&self, a: &BtAnnounce, dials: &mut Vec<DialPush>) {
        let Some(entry) = self.catalog.get(&a.info_hash) else {
            return;
        };
        let client_seeds = a.left == 0;
        for h in &entry.holders {
            if dials.len() >= MAX_DIALS_PER_ANNOUNCE {
                break;
            }
            let trades = match client_seeds {
                true => !h.is_seeder(),
                false => h.count() > 0,
            };
            if !trades {
                continue;
            }
            let Some(conn) = self.catalog.conn_of(h) else {
                continue;
            };
            let Some(p) = self.peers.get(&conn) else {
                continue;
            };
            let itself = p.identity.is_some_and(|(_, addr)| addr == a.addr);
            if p.accepts_dials && !itself {
                dials.push(DialPush {
                    conn,
                    info_hash: a.info_hash,
                    addr: a.addr,
                });
            }
        }
    }

    /// Reservoir sampling over the file's BitTorrent peers (but `a`) and
    /// its STA holders that accept connections; returns the file's counts
    /// (found with the same lookups).
    fn sample_for_bt(
        &mut self,
        a: &BtAnnounce,
        max: usize,
        out: &mut Vec<SocketAddr>,
    ) -> ScrapeStats {
        let entry = self.catalog.get(&a.info_hash);
        let swarm = self.swarms.get(&a.info_hash);
        let stats = counts(entry, swarm);
        if max == 0 {
            return stats;
        }
        let family = |addr: &SocketAddr| !a.same_family || addr.is_ipv4() == a.addr.is_ipv4();
        let sta_holders = entry.is_some_and(|e| !e.holders.is_empty());
        if !sta_holders && let Some(sw) = swarm {
            // BitTorrent peers only (the common case of a public swarm): a
            // run of the swarm from a random start, wrapping, costs the
            // answer's length rather than the swarm's and a random number
            // per peer.
            let n = sw.peers.len();
            let start = if n > max + 1 { self.rng.below(n) } else { 0 };
            let v4 = a.same_family.then(|| a.addr.is_ipv4());
            sw.run_from(start, &a.addr, v4, max, out);
            return stats;
        }
        let mut seen = 0usize;
        let mut offer = |addr: SocketAddr, rng: &mut Rng| {
            seen += 1;
            if out.len() < max {
                out.push(addr);
            } else {
                let j = rng.below(seen);
                if j < max {
                    out[j] = addr;
                }
            }
        };
        if let Some(sw) = swarm {
            for p in &sw.peers {
                if p.addr != a.addr && family(&p.addr) {
                    offer(p.addr, &mut self.rng);
                }
            }
        }
        if let Some(e) = entry {
            for h in &e.holders {
                let Some((_, addr)) = self
                    .catalog
                    .conn_of(h)
                    .and_then(|conn| self.peers.get(&conn))
                    .and_then(|p| p.identity.as_ref())
                else {
                    continue;
                };
                if addr.port() != 0 && family(addr) {
                    offer(*addr, &mut self.rng);
                }
            }
        }
        for k in (1..out.len()).rev() {
            out.swap(k, self.rng.below(k + 1));
        }
        stats
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn sessions(&self) -> usize {
        self.peers.len()
    }

    /// The peer id and listen address session `conn` gave in its hello.
    pub fn identity(&self, conn: ConnId) -> Option<(PeerId, SocketAddr)> {
        self.peers.get(&conn).and_then(|p| p.identity)
    }

    /// The source address of session `conn`.
    pub fn remote(&self, conn: ConnId) -> Option<IpAddr> {
        self.peers.get(&conn).map(|p| p.remote)
    }

    /// The sessions whose source address `pick` chooses.
    pub fn sessions_from(&self, mut pick: impl FnMut(IpAddr) -> bool) -> Vec<ConnId> {
        self.peers
            .iter()
            .filter(|(_, p)| pick(p.remote))
            .map(|(c, _)| *c)
            .collect()
    }

    /// A session opened from `remote`.
    pub fn connect(&mut self, conn: ConnId, remote: IpAddr) {
        self.peers.insert(
            conn,
            Peer {
                remote,
                identity: None,
                authenticated: false,
                accepts_dials: false,
            },
        );
    }

    /// Session `conn` proved a certificate of the swarm's CA (its TLS
    /// handshake is done): private files are visible to it.
    pub fn authenticate(&mut self, conn: ConnId) {
        if let Some(p) = self.peers.get_mut(&conn) {
            p.authenticated = true;
        }
    }

    /// Whether `hash` is a private file, of which `conn` may know nothing.
    fn hidden(&self, conn: ConnId, hash: &InfoHash) -> bool {
        !self.private.is_empty()
            && self.private.contains(hash)
            && !self.peers.get(&conn).is_some_and(|p| p.authenticated)
    }

    /// Whether `hash` names a private file of the catalog.
    pub fn is_private(&self, hash: &InfoHash) -> bool {
        self.private.contains(hash)
    }

    /// Private files that left the catalog are forgotten.
    fn forget_private(&mut self) {
        if !self.private.is_empty() {
            let catalog = &self.catalog;
            self.private.retain(|h| catalog.get(h).is_some());
        }
    }

    /// The session is gone: everything it held leaves the catalog.
    pub fn disconnect(&mut self, conn: ConnId) {
        if self.peers.remove(&conn).is_some() {
            self.catalog.leave_all(conn);
            self.forget_private();
        }
        self.vouches.drop_conn(conn);
    }

    /// Answers one request, appending the response to `out`.
    pub fn handle(&mut self, conn: ConnId, req: Request, out: &mut Vec<u8>) -> Next {
        self.stats.sta_request(Some(&req));
        if matches!(req, Request::KeepAlive) {
            return Next::Continue;
        }
        let result = self.dispatch(conn, req, out);
        match result {
            Ok(()) => Next::Continue,
            Err((code, message)) => {
                self.stats.error("sta", code.0);
                Response::Error { code, message }.encode(out);
                if code == ErrorCode::UNSUPPORTED_VERSION {
                    Next::Close
                } else {
                    Next::Continue
                }
            }
        }
    }

    fn dispatch(&mut self, conn: ConnId, req: Request, out: &mut Vec<u8>) -> Outcome {
        let Some(peer) = self.peers.get_mut(&conn) else {
            return fail(ErrorCode::HELLO_REQUIRED, "session unknown to the tracker");
        };
        if let Request::Hello {
            version,
            peer_id,
            listen_port,
        } = req
        {
            if version != TRACKER_PROTOCOL_VERSION {
                return fail(
                    ErrorCode::UNSUPPORTED_VERSION,
                    format!(
                        "protocol version {version} is not supported; this tracker speaks {TRACKER_PROTOCOL_VERSION}"
                    ),
                );
            }
            if peer.identity.is_some() {
                return fail(
                    ErrorCode::INVALID_PARAMETERS,
                    "hello was already sent on this session",
                );
            }
            peer.identity = Some((peer_id, SocketAddr::new(peer.remote, listen_port)));
            Response::Welcome {
                version: TRACKER_PROTOCOL_VERSION,
                idle_timeout_secs: self.config.idle_timeout_secs,
            }
            .encode(out);
            return Ok(());
        }
        if peer.identity.is_none() {
            return fail(
                ErrorCode::HELLO_REQUIRED,
                "send hello before any other request",
            );
        }
        match req {
            Request::KeepAlive | Request::Hello { .. } => Ok(()),
            Request::Announce { info, pieces } => self.announce(conn, &info, pieces, out),
            Request::Have { info_hash, piece } => self.have(conn, &info_hash, piece, out),
            Request::List {
                offset,
                limit,
                filter,
            } => self.list(conn, offset, limit, &filter, out),
            Request::GetMeta(lookup) => self.get_meta(conn, &lookup, out),
            Request::GetPeers {
                info_hash,
                max,
                piece,
            } => self.get_peers(conn, &info_hash, max, piece, out),
            Request::Leave { info_hash } => self.leave(conn, &info_hash, out),
            Request::Vouch { info_hash, peers } => self.vouch(conn, info_hash, &peers, out),
            Request::AcceptDials => {
                if let Some(p) = self.peers.get_mut(&conn) {
                    p.accepts_dials = true;
                }
                Response::Ack.encode(out);
                Ok(())
            }
        }
    }

    fn announce(
        &mut self,
        conn: ConnId,
        bencoded: &[u8],
        pieces: Pieces,
        out: &mut Vec<u8>,
    ) -> Outcome {
        // A file the catalog knows with these very bytes parses to the
        // same metadata and info hash: reuse them rather than hash, parse
        // and copy the dict again (announcing a known file is the common
        // case). Anything else takes the full path.
        let known_info = self
            .catalog
            .by_bencoded(bencoded)
            .map(|e| Arc::clone(&e.info));
        let known = known_info.is_some();
        let info = match known_info {
            Some(info) => info,
            None => match Info::from_bencoded(bencoded) {
                Ok(info) => Arc::new(info),
                Err(e) => return fail(ErrorCode::INVALID_METADATA, e.to_string()),
            },
        };
        let holding = match pieces {
            Pieces::All => Holding::All,
            Pieces::Bitfield(bytes) => match Bitfield::from_bytes(&bytes, info.num_pieces()) {
                Ok(bits) if bits.is_complete() => Holding::All,
                Ok(bits) => Holding::Some(bits),
                Err(e) => return fail(ErrorCode::INVALID_PARAMETERS, e.to_string()),
            },
        };
        let hash = info.info_hash;
        // A file of the catalog that is private is in `private` already:
        // only a new one has its dict read for the flag.
        let private = match known {
            true => self.private.contains(&hash),
            false => info.private(),
        };
        if private && !self.peers.get(&conn).is_some_and(|p| p.authenticated) {
            return fail(
                ErrorCode::PRIVATE_FILE,
                format!(
                    "{} is a private file (BEP 27): announce it over a TLS session with a certificate of the swarm's CA",
                    to_hex(&hash)
                ),
            );
        }
        // A BitTorrent-only swarm counts against `max_files` too, as in
        // `bt_announce`.
        let new_file = self.catalog.get(&hash).is_none() && self.swarms.get(&hash).is_none();
        let peer = self
            .peers
            .get(&conn)
            .ok_or((ErrorCode::HELLO_REQUIRED, String::new()))?;
        let holds = self.catalog.holder(conn, &hash).is_some();
        if !holds && self.catalog.files_of(conn) >= self.config.max_files_per_peer {
            return fail(
                ErrorCode::LIMIT_REACHED,
                format!(
                    "a session may hold at most {} files",
                    self.config.max_files_per_peer
                ),
            );
        }
        if new_file && self.catalog.len() + self.swarms.len() >= self.config.max_files {
            return fail(
                ErrorCode::LIMIT_REACHED,
                format!("the catalog is full ({} files)", self.config.max_files),
            );
        }
        let reachable = peer.identity.is_some_and(|(_, addr)| addr.port() != 0);
        let ipv6 = peer.identity.is_some_and(|(_, addr)| is_v6(&addr));
        self.catalog
            .hold(conn, hash, holding, (reachable, ipv6), || info);
        if private {
            self.private.insert(hash);
        }
        Response::Announced { info_hash: hash }.encode(out);
        Ok(())
    }

    fn have(&mut self, conn: ConnId, hash: &InfoHash, piece: u32, out: &mut Vec<u8>) -> Outcome {
        match self.catalog.have(conn, hash, piece) {
            HaveOutcome::Updated => {
                Response::Ack.encode(out);
                Ok(())
            }
            HaveOutcome::UnknownFile => not_found(hash),
            HaveOutcome::OutOfRange => self.out_of_range(hash, piece),
            HaveOutcome::NotHolding => fail(
                ErrorCode::INVALID_PARAMETERS,
                format!("announce {} before sending have for it", to_hex(hash)),
            ),
        }
    }

    fn out_of_range(&self, hash: &InfoHash, piece: u32) -> Outcome {
        let n = self.catalog.get(hash).map_or(0, |e| e.info.num_pieces());
        fail(
            ErrorCode::PIECE_OUT_OF_RANGE,
            format!(
                "piece {piece} is out of range: {} has {n} pieces",
                to_hex(hash)
            ),
        )
    }

    fn list(
        &mut self,
        conn: ConnId,
        offset: u32,
        limit: u16,
        filter: &str,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if limit > MAX_LIST_PAGE {
            return fail(
                ErrorCode::INVALID_PARAMETERS,
                format!("a page holds at most {MAX_LIST_PAGE} entries, {limit} asked"),
            );
        }
        let needle = filter.to_lowercase();
        let mut total = 0u32;
        let mut entries = Vec::new();
        for entry in self.catalog.ordered() {
            if !needle.is_empty() && !entry.info.name.to_lowercase().contains(&needle) {
                continue;
            }
            if self.hidden(conn, &entry.info.info_hash) {
                continue;
            }
            if total >= offset && entries.len() < usize::from(limit) {
                entries.push(ListEntry {
                    info_hash: entry.info.info_hash,
                    length: entry.info.length,
                    piece_length: entry.info.piece_length,
                    peers: entry.holders.len() as u32,
                    seeders: entry.seeders,
                    files: entry.info.file_count() as u32,
                    name: entry.info.name.clone(),
                });
            }
            total += 1;
        }
        Response::ListPage { total, entries }.encode(out);
        Ok(())
    }

    fn get_meta(&self, conn: ConnId, lookup: &Lookup, out: &mut Vec<u8>) -> Outcome {
        let hash = match lookup {
            Lookup::Hash(hash) => *hash,
            Lookup::Name(name) => {
                let hashes: Vec<&InfoHash> = self
                    .catalog
                    .by_name(name)
                    .filter(|h| !self.hidden(conn, h))
                    .collect();
                match hashes.as_slice() {
                    [] => {
                        return fail(ErrorCode::FILE_NOT_FOUND, format!("no file named '{name}'"));
                    }
                    [one] => **one,
                    many => {
                        let list: Vec<String> = many.iter().map(|h| to_hex(*h)).collect();
                        return fail(
                            ErrorCode::AMBIGUOUS_NAME,
                            format!(
                                "'{name}' names {} files: {}; ask by info hash",
                                many.len(),
                                list.join(", ")
                            ),
                        );
                    }
                }
            }
        };
        let Some(entry) = self
            .catalog
            .get(&hash)
            .filter(|_| !self.hidden(conn, &hash))
        else {
            return not_found(&hash);
        };
        Response::Meta {
            info: entry.info.bencoded.clone(),
        }
        .encode(out);
        Ok(())
    }

    fn get_peers(
        &mut self,
        conn: ConnId,
        hash: &InfoHash,
        max: u16,
        piece: Option<u32>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        if self.hidden(conn, hash) {
            return not_found(hash);
        }
        // An IPv4 session cannot reach IPv6 peers; an IPv6 one gets both
        // families (a dual-stack host reaches either).
        let v4_only = self
            .peers
            .get(&conn)
            .and_then(|p| p.identity)
            .is_some_and(|(_, addr)| !is_v6(&addr));
        self.vouched_for(conn, hash, piece, v4_only);
        let Some(entry) = self.catalog.get(hash) else {
            return not_found(hash);
        };
        if let Some(p) = piece
            && p >= entry.info.num_pieces()
        {
            return self.out_of_range(hash, p);
        }
        let max = usize::from(max.min(self.config.max_peers_per_answer));
        let mut picked = std::mem::take(&mut self.picked);
        let mut seen = self.catalog.sample(
            entry,
            Asker { conn, v4_only },
            piece,
            max,
            &mut self.rng,
            &mut picked,
        );
        // BitTorrent peers of the file continue the same reservoir, as
        // indices past the STA holders. Their pieces are unknown: a seeder
        // has them all, a leecher is given as holding none (and never
        // matches a piece filter).
        // Vouched-for ones (see `vouches`) continue it past those.
        let n = entry.holders.len();
        let swarm = self.swarms.get(hash);
        let bt = swarm.map_or(0, |sw| sw.peers.len());
        let vouched = &self.vouched;
        if swarm.is_some() || !vouched.is_empty() {
            let bt_peers = swarm.map_or(&[][..], |sw| &sw.peers[..]);
            let extra = bt_peers
                .iter()
                .map(|p| (p.seeder, p.addr))
                .chain(vouched.iter().map(|p| (p.seeder, p.addr)));
            for (j, (seeder, addr)) in extra.enumerate() {
                if (piece.is_some() && !seeder) || (v4_only && is_v6(&addr)) {
                    continue;
                }
                seen += 1;
                if picked.len() < max {
                    picked.push(n + j);
                } else {
                    let k = self.rng.below(seen);
                    if k < max {
                        picked[k] = n + j;
                    }
                }
            }
            for k in (1..picked.len()).rev() {
                picked.swap(k, self.rng.below(k + 1));
            }
        }
        let peers = &self.peers;
        let catalog = &self.catalog;
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        found.extend(picked.iter().filter_map(|&i| {
            if i >= n + bt {
                let p = vouched.get(i - n - bt)?;
                return Some((p.peer_id, p.addr, i));
            }
            if i >= n {
                let p = &swarm?.peers[i - n];
                return Some((p.peer_id, p.addr, i));
            }
            // Sessions with port 0 (they accept no connections) were not
            // sampled: they are not eligible.
            let conn = catalog.conn_of(&entry.holders[i])?;
            let (peer_id, addr) = peers.get(&conn)?.identity?;
            Some((peer_id, addr, i))
        }));
        // Room for the whole answer at once: peer id, address (up to 19
        // bytes), pieces tag, and a bitfield with its length.
        let stride = entry.info.num_pieces().div_ceil(8) as usize;
        let per_peer = 20 + 19 + 1 + 4 + stride;
        out.reserve(4 + 1 + 20 + 2 + found.len() * per_peer);
        let none = if swarm.is_some() || !vouched.is_empty() {
            vec![0u8; stride]
        } else {
            Vec::new()
        };
        let answer = found.iter().map(|(peer_id, addr, i)| {
            let bits = match swarm {
                _ if *i >= n + bt => {
                    let seeder = vouched.get(*i - n - bt).is_some_and(|p| p.seeder);
                    (!seeder).then_some(none.as_slice())
                }
                Some(sw) if *i >= n => (!sw.peers[*i - n].seeder).then_some(none.as_slice()),
                _ => entry.bits(*i),
            };
            (peer_id, *addr, bits)
        });
        encode_peers(out, hash, answer);
        self.found = found;
        self.picked = picked;
        Ok(())
    }

    fn leave(&mut self, conn: ConnId, hash: &InfoHash, out: &mut Vec<u8>) -> Outcome {
        if !self.catalog.leave(conn, hash) {
            return not_found(hash);
        }
        self.forget_private();
        self.vouches.drop(conn, hash);
        Response::Ack.encode(out);
        Ok(())
    }
}

/// Seeders, completed downloads and leechers of a file, both kinds of
/// peer together.
fn counts(
    entry: Option<&super::catalog::FileEntry>,
    swarm: Option<&super::swarm::Swarm>,
) -> ScrapeStats {
    let mut s = ScrapeStats::default();
    if let Some(e) = entry {
        s.seeders += e.seeders;
        s.leechers += e.holders.len() as u32 - e.seeders;
    }
    if let Some(sw) = swarm {
        s.seeders += sw.seeders;
        s.leechers += sw.leechers();
        s.completed = sw.completed;
    }
    s
}

impl Tracker {
    /// A session vouches for the BitTorrent peers of a file it is
    /// connected to: only of a file it announced, at most
    /// `MAX_VOUCHED_PER_REQUEST`, never with port 0.
    fn vouch(
        &mut self,
        conn: ConnId,
        hash: InfoHash,
        peers: &[Vouched],
        out: &mut Vec<u8>,
    ) -> Outcome {
        if peers.len() > MAX_VOUCHED_PER_REQUEST {
            return fail(
                ErrorCode::INVALID_PARAMETERS,
                format!(
                    "a vouch names at most {MAX_VOUCHED_PER_REQUEST} peers, {} given",
                    peers.len()
                ),
            );
        }
        if peers.iter().any(|p| p.addr.port() == 0) {
            return fail(ErrorCode::INVALID_PARAMETERS, "port 0 is not a listen port");
        }
        if self.catalog.holder(conn, &hash).is_none() {
            return fail(
                ErrorCode::FILE_NOT_FOUND,
                format!(
                    "this session has not announced {}: vouch only for peers of a file you announced",
                    to_hex(&hash)
                ),
            );
        }
        self.vouches.set(conn, hash, peers);
        Response::Ack.encode(out);
        Ok(())
    }

    /// Vouched-for BitTorrent peers of `hash` that `conn` may be given:
    /// not its own, not already among the file's BitTorrent peers, of a
    /// family it reaches, and seeders only when a piece is asked for.
    fn vouched_for(&mut self, conn: ConnId, hash: &InfoHash, piece: Option<u32>, v4_only: bool) {
        let swarm = self.swarms.get(hash);
        let mut out = std::mem::take(&mut self.vouched);
        self.vouches.candidates(
            hash,
            conn,
            |p| {
                (piece.is_none() || p.seeder)
                    && !(v4_only && is_v6(&p.addr))
                    && swarm.is_none_or(|sw| !sw.peers.iter().any(|b| b.addr == p.addr))
            },
            &mut out,
        );
        self.vouched = out;
    }
}

fn not_found(hash: &InfoHash) -> Outcome {
    fail(
        ErrorCode::FILE_NOT_FOUND,
        format!("no file with info hash {}", to_hex(hash)),
    )
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "core_query_tests.rs"]
mod query_tests;

#[cfg(test)]
#[path = "core_bt_tests.rs"]
mod bt_tests;

#[cfg(test)]
#[path = "core_private_tests.rs"]
mod private_tests;

/// An IPv6 address that is not an IPv4 one written as IPv6 (`::ffff:a.b.c.d`,
/// what a dual-stack socket reports for IPv4 clients).
fn is_v6(addr: &SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(_) => false,
        std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().is_none(),
    }
}
