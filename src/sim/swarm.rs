//! The simulated world: hosts running the real engine, the real tracker
//! core, the network between them, and one agenda of events. Everything
//! random comes from the seed, so a run is a pure function of its inputs.

use super::clock::Agenda;
use super::host::{Host, Outcome};
use super::net::{ConnId, HostId, LinkSpec, Msg, MsgId, Net, NetParams, Packet};
use super::store::{Body, FORGED, HONEST, SimStorage};
use crate::engine::{Action, Config, Engine, Job, JobDone, LinkId, Time};
use crate::limits::MAX_REQUEST_LEN;
use crate::rng::Rng;
use crate::tracker::{self, Tracker};
use crate::wire::tracker::Request;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host 0 is the tracker.
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
        }
    }
}

pub struct Sim<S: SimStorage> {
    pub world: World,
    pub agenda: Agenda<Ev>,
    pub net: Net,
    pub hosts: Vec<Host<S>>,
    tracker: Option<Tracker>,
    tracker_out: Vec<u8>,
    listeners: HashMap<SocketAddr, HostId>,
    rng: Rng,
    /// Piece-message frames of marker blocks, built once: only the header
    /// changes from block to block.
    honest: Vec<u8>,
    forged: Vec<u8>,
    frame: Vec<u8>,
    /// Every dial between peers: when, from, to.
    pub dials: Vec<(Time, HostId, HostId)>,
}

pub fn host_ip(h: HostId) -> Ipv4Addr {
    let n = h as u32 + 1;
    Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8)
}

pub fn tracker_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(host_ip(TRACKER)), TRACKER_PORT)
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
        let mut rng = Rng::new(mix_seed(world.seed));
        let mut net = Net::new(world.net.clone(), Rng::new(rng.next_u64()));
        net.add_host(tracker_link.clone());
        let tracker = Tracker::new(tracker::Config::default(), Rng::new(rng.next_u64()));
        let mut listeners = HashMap::new();
        listeners.insert(tracker_addr(), TRACKER);
        Sim {
            world,
            agenda: Agenda::default(),
            net,
            hosts: vec![Host::new(TRACKER, tracker_addr(), tracker_link)],
            tracker: Some(tracker),
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
        let config = Config {
            tracker: tracker_addr(),
            listen_port: PEER_PORT,
            listen: self.hosts.get(h).ok_or("no such host")?.listen,
            dir: Self::dir(h),
            piece_length: self.world.piece_length,
            max_peers: self.world.max_peers,
            upload_slots: self.world.upload_slots,
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
        if h == TRACKER {
            self.tracker = None;
            self.listeners.remove(&tracker_addr());
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

    /// The tracker core, while it runs.
    pub fn tracker(&self) -> Option<&Tracker> {
        self.tracker.as_ref()
    }

    /// A new tracker process: the core's state starts empty.
    pub fn start_tracker(&mut self) {
        let rng = Rng::new(self.rng.next_u64());
        self.tracker = Some(Tracker::new(tracker::Config::default(), rng));
        self.listeners.insert(tracker_addr(), TRACKER);
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
            Ev::UplinkFree(h) => self.net.uplink_free(&mut self.agenda, h),
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
}

impl<S: SimStorage> Sim<S> {
    /// Carries out what `h`'s engine asked for, then keeps its timer set.
    fn perform(&mut self, h: HostId) {
        let now = self.now();
        loop {
            let Some(host) = self.hosts.get_mut(h) else {
                return;
            };
            let Some(engine) = host.engine.as_mut() else {
                return;
            };
            let Some(action) = engine.poll_action() else {
                let t = engine.poll_timeout();
                if host.timer.is_none_or(|x| x > t) {
                    host.timer = Some(t);
                    self.agenda.at(t, Ev::Timeout(h, host.epoch));
                }
                return;
            };
            match action {
                Action::Send { link, bytes } => {
                    if host.controls.contains(&link) {
                        host.control_output(now, &bytes);
                    } else if let Some(&(c, side)) = host.links.get(&link) {
                        self.net
                            .send(&mut self.agenda, c, side, Packet::Data(bytes));
                    }
                }
                Action::SendBlock {
                    link,
                    header,
                    file,
                    offset,
                    len,
                } => {
                    let Some(&(c, side)) = host.links.get(&link) else {
                        continue;
                    };
                    match engine.storage().block(file, offset, len, host.liar) {
                        Some(body) => {
                            let p = Packet::Block { header, len, body };
                            self.net.send(&mut self.agenda, c, side, p);
                        }
                        None => self.net.send(&mut self.agenda, c, side, Packet::Fin),
                    }
                }
                Action::Dial { link, addr } => {
                    let epoch = host.epoch;
                    match self.listeners.get(&addr) {
                        Some(&to) => {
                            if to != TRACKER {
                                self.dials.push((now, h, to));
                            }
                            let c = self.net.dial(&mut self.agenda, h, link, to);
                            host.links.insert(link, (c, 0));
                        }
                        None => {
                            // Nobody listens there: a reset after a round
                            // trip to the host's own edge.
                            let rtt = self.net.rtt(h, h);
                            self.agenda.at(now + rtt, Ev::Refused(h, epoch, link));
                        }
                    }
                }
                Action::Close { link } => {
                    if host.controls.remove(&link) {
                        engine.link_closed(now, link);
                    } else if let Some(&(c, side)) = host.links.get(&link) {
                        self.close(c, side);
                    }
                }
                Action::Job(job) => {
                    let done = engine.storage_mut().run(&job);
                    let bytes = match &job {
                        Job::Allocate { .. } => 0,
                        Job::Hash {
                            length,
                            piece_length,
                            pieces,
                            ..
                        } => (u64::from(pieces.end - pieces.start) * u64::from(*piece_length))
                            .min(*length),
                        Job::Verify { length, .. } => u64::from(*length),
                    };
                    let rate = self.world.hash_rate.max(1);
                    let took = Duration::from_micros(bytes.saturating_mul(1_000_000) / rate);
                    host.hash_free = host.hash_free.max(now) + took;
                    self.agenda
                        .at(host.hash_free, Ev::Job(h, host.epoch, Box::new(done)));
                }
                Action::Stop => {}
            }
        }
    }

    /// Side `side` of `c` closes: a FIN after what is queued; before the
    /// connection is up, it is simply abandoned.
    fn close(&mut self, c: ConnId, side: usize) {
        let Some(conn) = self.net.conns.get_mut(c) else {
            return;
        };
        if conn.open {
            self.net.send(&mut self.agenda, c, side, Packet::Fin);
        } else {
            conn.ends[side].attached = false;
            self.agenda.at(self.agenda.now(), Ev::Closed(c, side));
        }
    }

    fn opened(&mut self, c: ConnId) {
        let now = self.now();
        let Some(conn) = self.net.conns.get(c) else {
            return;
        };
        let (dialer, link, to) = (conn.ends[0].host, conn.ends[0].link, conn.ends[1].host);
        if !conn.ends[0].attached || conn.ends[1].fin {
            return; // abandoned while connecting, or the other side died
        }
        let remote = SocketAddr::new(IpAddr::V4(host_ip(dialer)), 32768 + (c % 28000) as u16);
        let accepted = match (to, self.tracker.as_mut()) {
            (TRACKER, Some(t)) => {
                t.connect(c, remote.ip());
                Some(0)
            }
            (TRACKER, None) => None,
            _ => self
                .hosts
                .get_mut(to)
                .and_then(|x| x.engine.as_mut().map(|e| (e, &mut x.links)))
                .map(|(e, links)| {
                    let l = e.peer_accepted(now, remote);
                    links.insert(l, (c, 1));
                    l
                }),
        };
        let Some(accepted_link) = accepted else {
            if let Some(conn) = self.net.conns.get_mut(c) {
                conn.ends[0].attached = false;
            }
            self.closed(c, 0);
            return;
        };
        if let Some(conn) = self.net.conns.get_mut(c) {
            conn.open = true;
            conn.ends[1].link = accepted_link;
            conn.ends[1].attached = true;
        }
        if to != TRACKER {
            self.perform(to);
        }
        if let Some(e) = self.hosts.get_mut(dialer).and_then(|x| x.engine.as_mut()) {
            e.link_opened(now, link);
        }
        self.perform(dialer);
    }

    /// Side `side` of `c` learns the connection is gone.
    fn closed(&mut self, c: ConnId, side: usize) {
        let now = self.now();
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[side]) else {
            return;
        };
        end.attached = false;
        let (h, link) = (end.host, end.link);
        if h == TRACKER {
            if let Some(t) = self.tracker.as_mut() {
                t.disconnect(c);
            }
            self.net.prune(h);
            return;
        }
        let Some(host) = self.hosts.get_mut(h) else {
            return;
        };
        if host.links.get(&link) != Some(&(c, side)) {
            return; // already told, or an earlier engine's link
        }
        host.links.remove(&link);
        if let Some(e) = host.engine.as_mut() {
            e.link_closed(now, link);
        }
        self.net.prune(h);
        self.perform(h);
    }

    fn deliver(&mut self, c: ConnId, to: usize, msg: Msg) {
        let now = self.now();
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        if !end.attached {
            return;
        }
        let (h, link) = (end.host, end.link);
        if let Packet::Fin = msg.packet {
            return self.closed(c, to);
        }
        if h == TRACKER {
            return self.tracker_input(c, to, msg);
        }
        let frame: &[u8] = match &msg.packet {
            Packet::Data(b) => b,
            Packet::Block { header, len, body } => {
                if let Some(host) = self.hosts.get_mut(h) {
                    host.block_received(header, *len);
                }
                let n = 13 + *len as usize;
                match body {
                    Body::Fill(m) if n <= self.honest.len() => {
                        let buf = if *m == HONEST {
                            &mut self.honest
                        } else {
                            &mut self.forged
                        };
                        buf[..13].copy_from_slice(header);
                        &buf[..n]
                    }
                    Body::Fill(m) => {
                        self.frame.clear();
                        self.frame.extend_from_slice(header);
                        self.frame.resize(n, *m);
                        &self.frame
                    }
                    Body::Bytes(b) => {
                        self.frame.clear();
                        self.frame.extend_from_slice(header);
                        self.frame.extend_from_slice(b);
                        &self.frame
                    }
                }
            }
            Packet::Fin => return,
        };
        let Some(engine) = self.hosts.get_mut(h).and_then(|x| x.engine.as_mut()) else {
            return;
        };
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        if end.inbuf.is_empty() {
            let used = engine.link_input(now, link, frame);
            if let Some(rest) = frame.get(used..) {
                end.inbuf.extend_from_slice(rest);
            }
        } else {
            end.inbuf.extend_from_slice(frame);
            let used = engine.link_input(now, link, &end.inbuf);
            end.inbuf.drain(..used.min(end.inbuf.len()));
        }
        self.perform(h);
    }

    /// Requests reach the tracker core as `sta-trackerd`'s service feeds
    /// them; its answers go back on the same connection.
    fn tracker_input(&mut self, c: ConnId, to: usize, msg: Msg) {
        let Packet::Data(bytes) = msg.packet else {
            return;
        };
        let Some(t) = self.tracker.as_mut() else {
            return;
        };
        let Some(end) = self.net.conns.get_mut(c).map(|x| &mut x.ends[to]) else {
            return;
        };
        end.inbuf.extend_from_slice(&bytes);
        let mut used = 0;
        let mut close = false;
        self.tracker_out.clear();
        while !close {
            match Request::decode(&end.inbuf[used..]) {
                Ok(None) => break,
                Ok(Some((req, n))) => {
                    used += n;
                    close = t.handle(c, req, &mut self.tracker_out) == tracker::core::Next::Close;
                }
                Err(e) => {
                    e.to_response().encode(&mut self.tracker_out);
                    match e.used {
                        Some(n) => used += n,
                        None => close = true,
                    }
                }
            }
        }
        end.inbuf.drain(..used.min(end.inbuf.len()));
        if !self.tracker_out.is_empty() {
            let out = std::mem::take(&mut self.tracker_out);
            self.net.send(&mut self.agenda, c, to, Packet::Data(out));
        }
        if close {
            self.close(c, to);
        }
    }

    /// The path of `name` in `h`'s directory.
    pub fn path(h: HostId, name: &str) -> PathBuf {
        Self::dir(h).join(Path::new(name))
    }
}
