//! The peer engine: every rule of `sta-peerd` (peer wire, piece picking,
//! choking, strikes, stalls, the tracker session, control requests) with
//! no sockets, no threads and no clock of its own, in the style of
//! quinn-proto. The caller feeds it events, each with `now`:
//!
//! - [`Engine::peer_accepted`], [`Engine::control_opened`]: a connection
//!   arrived; the engine names it with a [`LinkId`];
//! - [`Engine::link_opened`]: a connection it asked for with
//!   [`Action::Dial`] is up;
//! - [`Engine::link_input`]: bytes arrived; returns how many it used (the
//!   rest waits for more);
//! - [`Engine::link_closed`]: a connection is gone;
//! - [`Engine::job_done`]: a [`Job`] finished;
//! - [`Engine::handle_timeout`]: call at [`Engine::poll_timeout`] or later;
//!
//! and after each, drains [`Engine::poll_action`] and carries the actions
//! out. Files are reached through the [`Storage`] trait, whose calls are
//! quick; hashing and reserving space are jobs. `sta-peerd` runs it on
//! mio, memory-mapped files and the hash pool; the simulator on a virtual
//! network and clock.

pub mod action;
mod api;
pub mod book;
pub mod choker;
mod control;
mod dht_peers;
pub mod extended;
mod files;
mod inspect;
mod magnet;
mod metadata;
pub mod peer;
mod pending_writes;
mod pex;
pub mod picker;
pub mod pipeline;
pub(crate) mod pushed;
mod query;
pub mod refused;
pub mod reveal;
pub mod stats;
pub mod storage;
pub mod time;
pub mod torrent;
mod tracker;
pub mod upload;
mod vouch;
mod wire;

pub use action::{Action, FileId, Job, JobDone, LinkId};
pub use control::ApiReply;
pub use stats::Metrics;
pub use storage::{MemStorage, Storage};
pub use time::Time;

use crate::rng::Rng;
use crate::wire::peer::{InfoHash, PeerId};
use control::ControlState;
use peer::PeerConn;
use query::Query;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use torrent::Torrent;
use tracker::TrackerClient;

/// Settings of a peer engine.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `sta-trackerd`s, each with a session of its own; none: files
    /// are found through peers only (magnet `x.pe`, PEX).
    pub trackers: Vec<SocketAddr>,
    /// The port peers reach us on (announced to the tracker).
    pub listen_port: u16,
    pub listen: SocketAddr,
    pub dir: PathBuf,
    pub piece_length: u32,
    pub max_peers: usize,
    pub upload_slots: usize,
    /// Files shared here get `private` = 1 in their info dict (BEP 27).
    pub private_shares: bool,
}

/// How often the engine wants [`Engine::handle_timeout`].
pub const TICK: Duration = Duration::from_millis(250);
/// How often upload slots are dealt again (see `choker`).
pub const CHOKE_ROUND: Duration = Duration::from_secs(10);

/// A `share` whose pieces are being hashed.
struct Sharing {
    path: PathBuf,
    file: Option<FileId>,
    length: u64,
    /// A directory's file count (the storage lists them).
    tree: Option<usize>,
    hashes: Vec<u8>,
    left: u32,
    failed: Option<String>,
    control: Option<LinkId>,
}

/// What a connection we dialed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dial {
    Peer(InfoHash, SocketAddr),
    Tracker(tracker::TrackerId),
}

pub struct Engine<S: Storage> {
    config: Config,
    peer_id: PeerId,
    storage: S,
    rng: Rng,
    torrents: BTreeMap<InfoHash, Torrent>,
    /// Boxed: a session leaves the map while its input is handled and
    /// goes back after, and a B-tree moves the values of a node on each
    /// remove and insert (whole sessions, 13 % of the simulator's CPU).
    peers: BTreeMap<LinkId, Box<PeerConn>>,
    controls: BTreeMap<LinkId, ControlState>,
    trackers: Vec<TrackerClient>,
    /// Control requests out at the trackers.
    queries: BTreeMap<query::QueryId, Query>,
    next_query: query::QueryId,
    /// The BitTorrent peers each file's trackers were last told we are
    /// connected to (see `vouch`).
    vouched: BTreeMap<InfoHash, Vec<crate::wire::tracker::Vouched>>,
    next_vouch: Time,
    /// Connections asked for and not yet up.
    dials: BTreeMap<LinkId, Dial>,
    /// Where peers listen, by peer id, as the tracker said.
    listens: HashMap<PeerId, SocketAddr>,
    /// Peers being dialed or connected to, so none is dialed twice.
    dialing: HashSet<(InfoHash, SocketAddr)>,
    sharing: BTreeMap<u64, Sharing>,
    /// Downloads waiting for their info dict from peers (BEP 9).
    magnets: BTreeMap<InfoHash, magnet::Magnet>,
    /// Peers of each file learned from `x.pe`, PEX or the DHT.
    books: BTreeMap<InfoHash, book::PeerBook>,
    /// The (file, address) pairs trackers' Dials named.
    pushed: pushed::Pushed,
    /// Control requests waiting for the first tracker session.
    parked: Vec<(LinkId, crate::control::ControlRequest)>,
    /// Job tags of downloads (verify, resume check, allocate).
    tags: HashMap<u64, InfoHash>,
    next_tag: u64,
    next_link: LinkId,
    last_choke_round: Time,
    last_keepalive: Time,
    next_tick: Time,
    actions: VecDeque<Action>,
    /// The rate limits in force (bytes per second up, down; 0: none).
    rates: (u64, u64),
    stats: stats::Stats,
    /// The swarm's CA when this daemon speaks TLS: put in the `ssl-cert`
    /// of what it shares, and required of the SSL torrents it joins.
    swarm_ca: Option<crate::tls::torrent::SwarmCa>,
    /// The DHT state of `dht_peers`: our DHT port, and peers' DHT nodes.
    dht: dht_peers::DhtWire,
}

impl<S: Storage> Engine<S> {
    pub fn new(config: Config, storage: S, mut rng: Rng, now: Time) -> Engine<S> {
        let mut peer_id = *b"-ST0100-000000000000";
        for b in &mut peer_id[8..] {
            *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.below(36)];
        }
        let trackers = config
            .trackers
            .iter()
            .map(|&addr| TrackerClient::new(addr, now))
            .collect();
        Engine {
            config,
            peer_id,
            storage,
            rng,
            torrents: BTreeMap::new(),
            peers: BTreeMap::new(),
            controls: BTreeMap::new(),
            trackers,
            queries: BTreeMap::new(),
            next_query: 0,
            vouched: BTreeMap::new(),
            next_vouch: now,
            dials: BTreeMap::new(),
            dialing: HashSet::new(),
            listens: HashMap::new(),
            sharing: BTreeMap::new(),
            magnets: BTreeMap::new(),
            books: BTreeMap::new(),
            pushed: pushed::Pushed::default(),
            parked: Vec::new(),
            tags: HashMap::new(),
            next_tag: 0,
            next_link: 0,
            last_choke_round: now,
            last_keepalive: now,
            next_tick: now + TICK,
            actions: VecDeque::new(),
            rates: (0, 0),
            stats: stats::Stats::default(),
            swarm_ca: None,
            dht: dht_peers::DhtWire::default(),
        }
    }

    /// Makes this a member of the TLS swarm of `ca` (or of none): files
    /// shared from now on are SSL torrents of it, and only its SSL
    /// torrents may be downloaded.
    pub fn set_swarm_ca(&mut self, ca: Option<crate::tls::torrent::SwarmCa>) {
        self.swarm_ca = ca;
    }

    /// Why `info` cannot be traded here, if it cannot: an SSL torrent
    /// needs TLS peer links with a certificate of its CA. A torrent
    /// without `ssl-cert` is still fetched by a TLS daemon (over TLS, as
    /// every peer link of it is): STA's own TLS swarms predate the key.
    fn ssl_refusal(&self, info: &crate::meta::Info) -> Option<String> {
        let name = &info.name;
        match (info.ssl_cert(), &self.swarm_ca) {
            (None, _) => None,
            (Some(pem), Some(ca)) if ca.admits(pem) => None,
            (Some(_), Some(_)) => Some(format!(
                "{name} is an SSL torrent of another swarm: its 'ssl-cert' is not this sta-peerd's CA (--tls-ca), so no peer of it would accept our certificate"
            )),
            (Some(_), None) => Some(format!(
                "{name} is an SSL torrent (its info dict has 'ssl-cert'): only a sta-peerd with --tls-cert, --tls-key and --tls-ca of that CA can join it"
            )),
        }
    }

    /// Settings a reloaded configuration may change while running: upload
    /// slots per file (for every file now), peers per file and the piece
    /// size of files shared from now on.
    pub fn retune(&mut self, upload_slots: usize, max_peers: usize, piece_length: u32) {
        self.config.upload_slots = upload_slots;
        self.config.max_peers = max_peers;
        self.config.piece_length = piece_length;
        for t in self.torrents.values_mut() {
            t.choker.set_slots(upload_slots);
        }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    pub fn peer_id(&self) -> &PeerId {
        &self.peer_id
    }

    /// Sets the rate limits (bytes per second to and from peers, 0 for
    /// none), as at start or by a `limits` request: the caller is asked to
    /// enforce them with [`Action::SetRates`].
    pub fn set_rates(&mut self, upload: u64, download: u64) {
        self.rates = (upload, download);
        self.actions
            .push_back(Action::SetRates { upload, download });
    }

    /// The rate limits in force: (upload, download).
    pub fn rates(&self) -> (u64, u64) {
        self.rates
    }

    /// Whether `link` is (or is being dialed as) a peer connection: what
    /// the rate limits apply to, not the tracker or control sessions.
    pub fn is_peer_link(&self, link: LinkId) -> bool {
        self.peers.contains_key(&link) || matches!(self.dials.get(&link), Some(Dial::Peer(..)))
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front()?;
        self.handing(&action);
        Some(action)
    }

    /// Counts what the shell is about to take for a peer link, so that
    /// its reports of what left ([`Engine::link_sent`]) say which blocks
    /// did.
    fn handing(&mut self, action: &Action) {
        let (link, len) = match action {
            Action::SendBlock { link, .. } => {
                if let Some(p) = self.peers.get_mut(link) {
                    p.upload.took_block();
                }
                return;
            }
            Action::Send { link, bytes } | Action::SendLater { link, bytes } => (link, bytes.len()),
            Action::SendInfo {
                link,
                head,
                info,
                tail,
            } => (link, head.len() + info.bencoded.len() + tail.len()),
            _ => return,
        };
        if let Some(p) = self.peers.get_mut(link) {
            p.upload.took(len as u64);
        }
    }

    /// The first `left` bytes the shell took for peer link `link` (every
    /// message) have left the host: the blocks among them count as
    /// uploaded, and the link gets more of what its peer asked for.
    pub fn link_sent(&mut self, now: Time, link: LinkId, left: u64) {
        let Some(mut conn) = self.peers.remove(&link) else {
            return;
        };
        let out = conn.upload.left_until(left);
        conn.uploaded += out.payload;
        if let Some(t) = conn.info_hash.and_then(|h| self.torrents.get_mut(&h)) {
            t.served(out.payload);
            if out.firsts > 0 {
                t.reveal.firsts_moved(now);
            }
            wire::answer_requests(now, link, &mut conn, t, &self.peers, &mut self.actions);
        }
        self.peers.insert(link, conn);
    }

    /// When [`Engine::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Time {
        self.next_tick
    }

    /// Starts the engine: shares `paths`, resumes the downloads left in
    /// the directory, dials the tracker.
    pub fn start(&mut self, now: Time, paths: &[PathBuf]) -> Result<(), String> {
        for p in paths {
            self.start_share(p.clone(), None).map_err(|(_, msg)| msg)?;
        }
        self.resume_downloads(now);
        self.tracker_tick(now, true);
        Ok(())
    }

    /// An incoming peer connection from `remote`.
    pub fn peer_accepted(&mut self, now: Time, remote: SocketAddr) -> LinkId {
        let link = self.new_link();
        self.peers
            .insert(link, Box::new(PeerConn::new(remote, None, now)));
        link
    }

    /// An incoming control connection.
    pub fn control_opened(&mut self, _now: Time) -> LinkId {
        let link = self.new_link();
        self.controls.insert(link, ControlState::default());
        link
    }

    /// A connection asked for with [`Action::Dial`] is up.
    pub fn link_opened(&mut self, now: Time, link: LinkId) {
        match self.dials.remove(&link) {
            Some(Dial::Tracker(i)) => self.tracker_opened(now, i, link),
            Some(Dial::Peer(hash, addr)) => self.peer_opened(now, link, hash, addr),
            None => {}
        }
    }

    /// Bytes arrived on `link`; returns how many were used.
    pub fn link_input(&mut self, now: Time, link: LinkId, input: &[u8]) -> usize {
        if self.peers.contains_key(&link) {
            self.peer_input(now, link, input)
        } else if let Some(i) = self.tracker_of(link) {
            self.tracker_input(now, i, input)
        } else if self.controls.contains_key(&link) {
            self.control_input(now, link, input)
        } else {
            input.len()
        }
    }

    /// `link` is gone (closed by either side, or its dial failed).
    pub fn link_closed(&mut self, now: Time, link: LinkId) {
        match self.dials.remove(&link) {
            Some(Dial::Tracker(i)) => return self.tracker_lost(now, i),
            Some(Dial::Peer(hash, addr)) => {
                self.dialing.remove(&(hash, addr));
                return;
            }
            None => {}
        }
        if self.peers.contains_key(&link) {
            self.peer_gone(link);
        } else if let Some(i) = self.tracker_of(link) {
            self.tracker_lost(now, i);
        } else if self.controls.contains_key(&link) {
            self.control_gone(link);
        }
    }

    /// May the caller close `link` for being silent long? Not a control
    /// session waiting for its answer, nor the tracker (the engine sends
    /// it keep-alives; it answers only requests).
    pub fn may_close_idle(&self, link: LinkId) -> bool {
        !(self.tracker_of(link).is_some() || self.control_waiting(link))
    }

    pub fn job_done(&mut self, now: Time, done: JobDone) {
        match done {
            JobDone::Allocated { tag, result } => self.allocated(tag, result),
            JobDone::Hashed {
                tag,
                pieces,
                hashes,
            } => self.hashed(now, tag, pieces, hashes),
            JobDone::Verified { tag, piece, result } => self.verified(now, tag, piece, result),
        }
    }

    /// Timers: stalls, request top-ups, choke rounds, keep-alives, the
    /// tracker session, peer discovery, progress reports.
    pub fn handle_timeout(&mut self, now: Time) {
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK;
        self.tracker_tick(now, false);
        self.pushed_tick(now);
        self.vouch_tick(now);
        self.peers_tick(now);
        self.control_tick(now);
        self.sample_meters(now);
    }

    fn new_link(&mut self) -> LinkId {
        self.next_link += 1;
        self.next_link
    }

    fn new_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    fn dial(&mut self, addr: SocketAddr, why: Dial) -> LinkId {
        let link = self.new_link();
        self.dials.insert(link, why);
        self.actions.push_back(Action::Dial { link, addr });
        link
    }

    /// Queues bytes on `link`, after what is already queued for it.
    fn send(&mut self, link: LinkId, fill: impl FnOnce(&mut Vec<u8>)) {
        queue_send(&mut self.actions, link, fill);
    }

    fn close(&mut self, link: LinkId) {
        self.actions.push_back(Action::Close { link });
    }

    fn job(&mut self, job: Job) {
        self.actions.push_back(Action::Job(job));
    }
}

/// Appends to the bytes queued for `link` when they are the last action
/// (many small messages to one peer become one send), else queues more.
fn queue_send(actions: &mut VecDeque<Action>, link: LinkId, fill: impl FnOnce(&mut Vec<u8>)) {
    if let Some(Action::Send { link: l, bytes }) = actions.back_mut()
        && *l == link
    {
        return fill(bytes);
    }
    let mut bytes = Vec::new();
    fill(&mut bytes);
    if !bytes.is_empty() {
        actions.push_back(Action::Send { link, bytes });
    }
}

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod metadata_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod trackers_tests;
