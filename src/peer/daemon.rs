//! The peer daemon: one reactor handler owning every file (torrent), every
//! peer-wire session, the link to the tracker and the control sessions.
//! The protocol work is split by link: `wire_link` (peers), `tracker_link`
//! and `control_link`; this file holds the shared state and the loop's
//! callbacks.

use super::session::PeerConn;
use super::torrent::Torrent;
use super::tracker_link::TrackerLink;
use crate::hashpool::{Done, HashPool};
use crate::reactor::{ConnId, Ctx, Flow, Handler, OutQueue};
use crate::rng::Rng;
use crate::wire::peer::{InfoHash, PeerId};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Settings of a peer daemon.
#[derive(Debug, Clone)]
pub struct Config {
    pub tracker: SocketAddr,
    /// The port peers reach us on (announced to the tracker).
    pub listen_port: u16,
    pub listen: SocketAddr,
    pub dir: PathBuf,
    pub piece_length: u32,
    pub max_peers: usize,
    pub upload_slots: usize,
}

/// A connection of the daemon, by what is on the other end. The state of
/// each lives in the daemon (so timers can reach it), keyed by `ConnId`.
pub enum Session {
    /// A peer-wire session; for one we dialed, the file and the address.
    Peer(Option<(InfoHash, SocketAddr)>),
    Tracker,
    Control,
}

/// Listener numbers, in the order `sta-peerd` registers them.
pub const PEER_LISTENER: usize = 0;
pub const CONTROL_LISTENER: usize = 1;

/// A `share` whose pieces are being hashed.
pub struct Sharing {
    pub path: PathBuf,
    pub store: Option<crate::storage::Store>,
    pub hashes: Vec<u8>,
    pub left: u32,
    pub failed: Option<String>,
    pub control: Option<ConnId>,
}

pub struct Daemon {
    pub config: Config,
    pub peer_id: PeerId,
    pub torrents: HashMap<InfoHash, Torrent>,
    pub pool: HashPool,
    pub tracker: TrackerLink,
    pub sharing: HashMap<u64, Sharing>,
    pub next_tag: u64,
    /// Hash-job tags of downloads (verify, resume check) to their file.
    pub tags: HashMap<u64, InfoHash>,
    pub rng: Rng,
    pub last_choke_round: Instant,
    pub last_keepalive: Instant,
    pub peers: HashMap<ConnId, PeerConn>,
    /// Dials under way, so a peer is not dialed twice for one file.
    pub dialing: HashSet<(InfoHash, SocketAddr)>,
    /// Control sessions, with the download each follows.
    pub controls: HashMap<ConnId, super::control_link::ControlState>,
    /// Control requests waiting for the first tracker connection.
    pub parked: Vec<(ConnId, crate::control::ControlRequest)>,
}

/// How often unchoked slots rotate among interested peers.
pub const CHOKE_ROUND: Duration = Duration::from_secs(10);

impl Daemon {
    pub fn new(config: Config, pool: HashPool, rng: Rng) -> Daemon {
        let mut rng = rng;
        let mut peer_id = *b"-ST0100-000000000000";
        for b in &mut peer_id[8..] {
            *b = b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.below(36)];
        }
        let tracker = TrackerLink::new(config.tracker);
        Daemon {
            config,
            peer_id,
            torrents: HashMap::new(),
            pool,
            tracker,
            sharing: HashMap::new(),
            next_tag: 1,
            tags: HashMap::new(),
            rng,
            last_choke_round: Instant::now(),
            last_keepalive: Instant::now(),
            peers: HashMap::new(),
            dialing: HashSet::new(),
            controls: HashMap::new(),
            parked: Vec::new(),
        }
    }

    pub fn new_tag(&mut self) -> u64 {
        self.next_tag += 1;
        self.next_tag
    }

    /// Starts sharing files given on the command line.
    pub fn share_at_start(&mut self, paths: &[PathBuf]) -> Result<(), String> {
        for p in paths {
            self.start_share(p.clone(), None).map_err(|(_, msg)| msg)?;
        }
        Ok(())
    }
}

impl Handler for Daemon {
    type Session = Session;

    fn open(
        &mut self,
        _ctx: &mut Ctx<Session>,
        id: ConnId,
        listener: usize,
        peer: Option<SocketAddr>,
        _out: &mut OutQueue,
    ) -> Option<Session> {
        match listener {
            PEER_LISTENER => {
                self.peer_accepted(id, peer?);
                Some(Session::Peer(None))
            }
            CONTROL_LISTENER => {
                self.control_opened(id);
                Some(Session::Control)
            }
            _ => None,
        }
    }

    fn dialed(
        &mut self,
        _ctx: &mut Ctx<Session>,
        id: ConnId,
        session: &mut Session,
        out: &mut OutQueue,
    ) {
        match session {
            Session::Tracker => self.tracker_dialed(id, out),
            Session::Peer(target) => self.peer_dialed(id, *target, out),
            Session::Control => {}
        }
    }

    fn data(
        &mut self,
        ctx: &mut Ctx<Session>,
        id: ConnId,
        session: &mut Session,
        input: &[u8],
        out: &mut OutQueue,
    ) -> Flow {
        match session {
            Session::Peer(_) => self.peer_data(ctx, id, input, out),
            Session::Tracker => self.tracker_data(ctx, input),
            Session::Control => self.control_data(ctx, id, input, out),
        }
    }

    fn idle(&mut self, id: ConnId, _session: &mut Session, _out: &mut OutQueue) -> bool {
        // A CLI following a download sends nothing while it waits.
        !self.control_waiting(id)
    }

    fn close(&mut self, ctx: &mut Ctx<Session>, id: ConnId, session: Session) {
        match session {
            Session::Peer(target) => self.peer_closed(id, target),
            Session::Tracker => self.tracker_closed(ctx),
            Session::Control => self.control_closed(id),
        }
    }

    fn tick(&mut self, ctx: &mut Ctx<Session>, now: Instant) {
        self.tracker_tick(ctx, now);
        self.peers_tick(ctx, now);
        self.control_tick(ctx, now);
    }

    fn wake(&mut self, ctx: &mut Ctx<Session>) {
        while let Some(done) = self.pool.try_recv() {
            match done {
                Done::Allocated { tag, result } => self.allocated(ctx, tag, result),
                Done::Hashed {
                    tag,
                    pieces,
                    hashes,
                } => self.hashed(ctx, tag, pieces, hashes),
                Done::Verified { tag, piece, result } => self.verified(ctx, tag, piece, result),
            }
        }
    }
}
