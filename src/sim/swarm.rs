//! The simulated world: hosts running the real engine, the real tracker
//! core, the network between them, and one agenda of events. Everything
//! random comes from the seed, so a run is a pure function of its inputs.

use super::clock::Agenda;
use super::host::{Host, Outcome};
use super::net::{ConnId, HostId, LinkSpec, MsgId, Net, NetParams};
use super::store::{FORGED, HONEST, SimStorage};
use crate::engine::{Config, Engine, JobDone, LinkId, Time};
use crate::limits::MAX_REQUEST_LEN;
use crate::rng::Rng;
use crate::tracker::{self, Tracker};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host 0 is the (first) tracker; a world with several has them at
/// hosts 0, 1, ... before any peer.
pub const TRACKER: HostId = 0;
pub const PEER_PORT: u16 = 6881;
pub const TRACKER_PORT: u16 = 7000;

pub enum Ev {
    UplinkFree(HostId),
    Arrive(ConnId, usize, MsgId),
    Deliver(ConnId, usize, MsgId),
    /// The head of a host's download queue is due.
    Downlink(HostId),
    Opened(ConnId),
    Closed(ConnId, usize),
    Timeout(HostId, u32),
    Job(HostId, u32, Box<JobDone>),
    /// A dial to nobody failed.
    Refused(HostId, u32, LinkId),
}

/// Settings of a world.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub net: NetParams,
    pub piece_length: u32,
    pub max_peers: usize,
    pub upload_slots: usize,
    /// Bytes per second a host's hash pool checks.
    pub hash_rate: u64,
    /// Count duplicate blocks per host (costs a set of blocks each).
    pub count_dups: bool,
    /// Engines are given no tracker (as `sta-peerd` with no `--tracker`):
    /// peers come from `get`'s `peer` words and PEX only.
    pub no_trackers: bool,
}

impl Default for World {
    fn default() -> Self {
        World {
            seed: 1,
            net: NetParams::default(),
            piece_length: crate::limits::DEFAULT_PIECE_LENGTH,
            max_peers: 50,
            upload_slots: 4,
            hash_rate: 1_000_000_000,
            count_dups: false,
            no_trackers: false,
        }
    }
}

pub struct Sim<S: SimStorage> {
    pub world: World,
    pub agenda: Agenda<Ev>,
    pub net: Net,
    pub hosts: Vec<Host<S>>,
    /// The tracker cores, by host (hosts `0..trackers.len()`), while
    /// they run.
    pub(super) trackers: Vec<Option<Tracker>>,
    pub(super) tracker_out: Vec<u8>,
    pub(super) listeners: HashMap<SocketAddr, HostId>,
    pub(super) rng: Rng,
    /// Piece-message frames of marker blocks, built once: only the header
    /// changes from block to block.
    pub(super) honest: Vec<u8>,
    pub(super) forged: Vec<u8>,
    pub(super) frame: Vec<u8>,
    /// Every dial between peers: when, from, to.
    pub dials: Vec<(Time, HostId, HostId)>,
}

pub fn host_ip(h: HostId) -> Ipv4Addr {
    let n = h as u32 + 1;
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

pub fn tracker_addr() -> SocketAddr {
    tracker_addr_of(TRACKER)
}

/// Where tracker host `h` listens.
pub fn tracker_addr_of(h: HostId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(host_ip(h)), TRACKER_PORT)
}

/// Spreads a user's seed over all 64 bits: `Rng::new` sets the low bit,
/// so seeds 2k and 2k + 1 would otherwise give the same run.
pub fn mix_seed(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn marker_frame(fill: u8) -> Vec<u8> {
    vec![fill; 13 + MAX_REQUEST_LEN as usize]
}

impl<S: SimStorage> Sim<S> {
    /// A world with a tracker at `tracker_addr()` on `tracker_link`.
    pub fn new(world: World, tracker_link: LinkSpec) -> Sim<S> {
        Sim::with_trackers(world, tracker_link, 1)
    }

    /// A world with `n` trackers (at least one), hosts `0..n`, each on
    /// `tracker_link`; every engine is given all of them.
    pub fn with_trackers(world: World, tracker_link: LinkSpec, n: usize) -> Sim<S> {
        let mut rng = Rng::new(mix_seed(world.seed));
        let mut net = Net::new(world.net.clone(), Rng::new(rng.next_u64()));
        let mut listeners = HashMap::new();
        let mut hosts = Vec::new();
        let mut trackers = Vec::new();
        for _ in 0..n.max(1) {
            let h = net.add_host(tracker_link.clone());
            listeners.insert(tracker_addr_of(h), h);
            hosts.push(Host::new(h, tracker_addr_of(h), tracker_link.clone()));
            let rng = Rng::new(rng.next_u64());
            trackers.push(Some(Tracker::new(tracker::Config::default(), rng)));
        }
        Sim {
            world,
            agenda: Agenda::default(),
            net,
            hosts,
            trackers,
            tracker_out: Vec::new(),
            listeners,
            rng,
            honest: marker_frame(HONEST),
            forged: marker_frame(FORGED),
            frame: Vec::new(),
            dials: Vec::new(),
        }
    }

    pub fn now(&self) -> Time {
        self.agenda.now()
    }

    /// A peer host, not yet started.
    pub fn add_host(&mut self, spec: LinkSpec) -> HostId {
        let id = self.net.add_host(spec.clone());
        let listen = SocketAddr::new(IpAddr::V4(host_ip(id)), PEER_PORT);
        let mut host = Host::new(id, listen, spec);
        if self.world.count_dups {
            host.seen = Some(Default::default());
        }
        self.hosts.push(host);
        id
    }

    pub fn dir(h: HostId) -> PathBuf {
        PathBuf::from(format!("/h{h}"))
    }

    /// Puts a file on `h`'s disk (content from `seed`) and returns its path.
    pub fn create_file(&mut self, h: HostId, name: &str, length: u64, seed: u64) -> PathBuf {
        let path = Self::dir(h).join(name);
        if let Some(s) = self.hosts.get_mut(h).and_then(Host::storage_mut) {
            s.create(&path, length, seed);
        }
        path
    }

    /// Starts (or restarts) `h`'s engine on its disk, sharing `shares`.
    pub fn start(&mut self, h: HostId, shares: &[PathBuf]) -> Result<(), String> {
        let now = self.now();
        let host = self.hosts.get(h).ok_or("no such host")?;
        let config = Config {
            trackers: match self.world.no_trackers {
                true => Vec::new(),
                false => (0..self.trackers.len()).map(tracker_addr_of).collect(),
            },
            listen_port: PEER_PORT,
            listen: host.listen,
            dir: Self::dir(h),
            piece_length: self.world.piece_length,
            max_peers: self.world.max_peers,
            upload_slots: match host.free_rider {
                true => 0,
                false => self.world.upload_slots,
            },
            private_shares: false,
        };
        let rng = Rng::new(self.rng.next_u64());
        let host = self.hosts.get_mut(h).ok_or("no such host")?;
        if host.engine.is_some() {
            return Err("already running".into());
        }
        let storage = host.parked.take().unwrap_or_default();
        host.engine = Some(Engine::new(config, storage, rng, now));
        host.outcome = Outcome::Running;
        host.timer = None;
        self.listeners.insert(host.listen, h);
        let started = host
            .engine
            .as_mut()
            .map_or(Ok(()), |e| e.start(now, shares));
        self.perform(h);
        started
    }

    /// Opens a control session on `h` and sends it `line`.
    pub fn control(&mut self, h: HostId, line: &str) {
        let now = self.now();
        let Some(host) = self.hosts.get_mut(h) else {
            return;
        };
        let Some(engine) = host.engine.as_mut() else {
            return;
        };
        let link = engine.control_opened(now);
        host.controls.insert(link);
        let line = format!("{line}\n");
        engine.link_input(now, link, line.as_bytes());
        self.perform(h);
    }

    /// Asks `h` to download `name` into its directory.
    pub fn get(&mut self, h: HostId, name: &str) {
        if let Some(host) = self.hosts.get_mut(h) {
            host.outcome = Outcome::Running;
            host.asked = Some(self.agenda.now());
        }
        self.control(h, &format!("get {name}"));
    }

    /// `h` vanishes: its engine stops, its peers see resets. Its disk is
    /// kept for [`Sim::start`].
    pub fn kill(&mut self, h: HostId) {
        self.net.kill(&mut self.agenda, h);
        if self.is_tracker(h) {
            self.trackers[h] = None;
            self.listeners.remove(&tracker_addr_of(h));
            return;
        }
        let Some(host) = self.hosts.get_mut(h) else {
            return;
        };
        if let Some(mut e) = host.engine.take() {
            host.parked = Some(std::mem::take(e.storage_mut()));
        }
        host.epoch += 1;
        host.links.clear();
        host.controls.clear();
        self.listeners.remove(&host.listen);
    }

    /// The (first) tracker core, while it runs.
    pub fn tracker(&self) -> Option<&Tracker> {
        self.tracker_at(TRACKER)
    }

    /// Tracker host `h`'s core, while it runs.
    pub fn tracker_at(&self, h: HostId) -> Option<&Tracker> {
        self.trackers.get(h).and_then(Option::as_ref)
    }

    /// True when host `h` is a tracker.
    pub fn is_tracker(&self, h: HostId) -> bool {
        h < self.trackers.len()
    }

    /// A new (first) tracker process: the core's state starts empty.
    pub fn start_tracker(&mut self) {
        self.start_tracker_at(TRACKER);
    }

    /// A new process for tracker host `h`, starting empty.
    pub fn start_tracker_at(&mut self, h: HostId) {
        if !self.is_tracker(h) {
            return;
        }
        let rng = Rng::new(self.rng.next_u64());
        self.trackers[h] = Some(Tracker::new(tracker::Config::default(), rng));
        self.listeners.insert(tracker_addr_of(h), h);
    }

    /// Runs every event due up to `until`; the clock ends at `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(ev) = self.agenda.pop_until(until) {
            self.handle(ev);
        }
        self.agenda.advance_to(until);
    }

    /// Runs until every host in `hosts` has an outcome or `limit` passes;
    /// true when all of them did.
    pub fn run_until_settled(&mut self, hosts: &[HostId], limit: Time) -> bool {
        let step = Duration::from_millis(100);
        loop {
            let settled = hosts.iter().all(|&h| {
                self.hosts
                    .get(h)
                    .is_none_or(|x| x.outcome != Outcome::Running)
            });
            if settled {
                return true;
            }
            if self.now() >= limit {
                return false;
            }
            let next = (self.now() + step).min(limit);
            self.run_until(next);
        }
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now();
        match ev {
            Ev::UplinkFree(h) => {
                if let Some((c, side, left)) = self.net.uplink_free(&mut self.agenda, h) {
                    self.sent(c, side, left);
                }
            }
            Ev::Arrive(c, to, id) => self.net.arrive(&mut self.agenda, c, to, id),
            Ev::Deliver(c, to, id) => {
                if let Some(msg) = self.net.take(id) {
                    self.deliver(c, to, msg);
                }
            }
            Ev::Downlink(h) => {
                if let Some((c, to, id)) = self.net.downlink(&mut self.agenda, h)
                    && let Some(msg) = self.net.take(id)
                {
                    self.deliver(c, to, msg);
                }
            }
            Ev::Opened(c) => self.opened(c),
            Ev::Closed(c, side) => self.closed(c, side),
            Ev::Timeout(h, epoch) => {
                if let Some(host) = self.hosts.get_mut(h)
                    && host.epoch == epoch
                    && let Some(e) = host.engine.as_mut()
                {
                    host.timer = None;
                    e.handle_timeout(now);
                    self.perform(h);
                }
            }
            Ev::Job(h, epoch, done) => {
                if let Some(host) = self.hosts.get_mut(h)
                    && host.epoch == epoch
                    && let Some(e) = host.engine.as_mut()
                {
                    e.job_done(now, *done);
                    self.perform(h);
                }
            }
            Ev::Refused(h, epoch, link) => {
                if let Some(host) = self.hosts.get_mut(h)
                    && host.epoch == epoch
                    && let Some(e) = host.engine.as_mut()
                {
                    e.link_closed(now, link);
                    self.perform(h);
                }
            }
        }
    }

    /// The path of `name` in `h`'s directory.
    pub fn path(h: HostId, name: &str) -> PathBuf {
        Self::dir(h).join(Path::new(name))
    }
}
