//! A DHT on the simulator: many real [`Dht`] nodes on a virtual clock,
//! datagrams delivered in memory after a random latency (and maybe lost),
//! every random choice from one seed.
//!
//! The scenario: node 0 starts alone; the others join one by one, each
//! bootstrapping from node 0 only. Once the network settled, each of
//! `hashes` random info hashes is announced by one random node (half with
//! `implied_port`), then looked up from another random node. A lookup
//! succeeds when the announcer's address is among the peers it returns.

use super::clock::Agenda;
use crate::dht::id::random_id;
use crate::dht::{Config, Dht, Event, Kind, LookupId};
use crate::engine::Time;
use crate::rng::Rng;
use crate::wire::krpc::NodeId;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

/// The DHT port of every simulated node.
pub const NODE_PORT: u16 = 6881;
/// The port announced explicitly (the other half use implied_port).
pub const ANNOUNCED_PORT: u16 = 51413;

#[derive(Debug, Clone)]
pub struct DhtScenario {
    pub nodes: usize,
    pub hashes: usize,
    pub seed: u64,
    /// One-way latency of a datagram, drawn uniformly from this range.
    pub latency: (Duration, Duration),
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Between two nodes joining.
    pub join_every: Duration,
    /// Quiet time after the last join, and after the last announce.
    pub settle: Duration,
    /// Between two announces, and between two lookups.
    pub start_every: Duration,
}

impl Default for DhtScenario {
    fn default() -> Self {
        DhtScenario {
            nodes: 1000,
            hashes: 1000,
            seed: 1,
            latency: (Duration::from_millis(10), Duration::from_millis(50)),
            loss: 0.0,
            join_every: Duration::from_millis(20),
            settle: Duration::from_secs(30),
            start_every: Duration::from_millis(10),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct DhtReport {
    pub lookups: usize,
    /// Lookups that returned the announcer.
    pub found: usize,
    /// Announces that reached at least one node.
    pub announced: usize,
    /// Queries each finished lookup sent.
    pub queries: Vec<u32>,
    /// From each successful lookup's start to the announcer's address.
    pub time_to_find: Vec<Duration>,
    /// From each lookup's start to its end.
    pub duration: Vec<Duration>,
    /// Routing-table sizes at the end.
    pub table_sizes: Vec<usize>,
    pub datagrams: u64,
    pub lost: u64,
    pub events: u64,
    pub simulated: Duration,
}

enum Ev {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Timer(usize),
    Join(usize),
    Announce(usize),
    Lookup(usize),
}

fn addr_of(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::V4(SocketAddrV4::new(ip, NODE_PORT))
}

fn index_of(a: SocketAddr) -> Option<usize> {
    match a {
        SocketAddr::V4(a) if a.port() == NODE_PORT => {
            let o = a.ip().octets();
            Some((usize::from(o[1]) << 16) | (usize::from(o[2]) << 8) | usize::from(o[3]))
        }
        _ => None,
    }
}

/// What each info hash's test is.
struct Case {
    hash: NodeId,
    announcer: usize,
    /// Where the lookup should find the announcer.
    expect: SocketAddrV4,
    looker: usize,
    started: Time,
    found: bool,
}

struct World {
    sc: DhtScenario,
    nodes: Vec<Option<Dht>>,
    /// When each node's timer event is set for (`None`: none pending).
    timer: Vec<Option<Time>>,
    agenda: Agenda<Ev>,
    rng: Rng,
    cases: Vec<Case>,
    /// (looker, lookup) -> case, for get_peers lookups.
    watching: HashMap<(usize, LookupId), usize>,
    report: DhtReport,
}

pub fn run(sc: &DhtScenario) -> DhtReport {
    let mut rng = Rng::new(sc.seed);
    let n = sc.nodes.max(2);
    let cases = (0..sc.hashes)
        .map(|h| {
            let announcer = rng.below(n);
            let looker = (announcer + 1 + rng.below(n - 1)) % n;
            let ip = match addr_of(announcer) {
                SocketAddr::V4(a) => *a.ip(),
                SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            };
            let port = if h % 2 == 0 {
                NODE_PORT
            } else {
                ANNOUNCED_PORT
            };
            Case {
                hash: random_id(&mut rng),
                announcer,
                expect: SocketAddrV4::new(ip, port),
                looker,
                started: Time::ZERO,
                found: false,
            }
        })
        .collect();
    let mut w = World {
        sc: sc.clone(),
        nodes: (0..n).map(|_| None).collect(),
        timer: vec![None; n],
        agenda: Agenda::default(),
        rng,
        cases,
        watching: HashMap::new(),
        report: DhtReport::default(),
    };
    let mut t = Time::ZERO;
    for i in 0..n {
        w.agenda.at(t, Ev::Join(i));
        t += sc.join_every;
    }
    t += sc.settle;
    for h in 0..sc.hashes {
        w.agenda.at(t, Ev::Announce(h));
        t += sc.start_every;
    }
    t += sc.settle;
    for h in 0..sc.hashes {
        w.agenda.at(t, Ev::Lookup(h));
        t += sc.start_every;
    }
    let end = t + sc.settle;
    while let Some(ev) = w.agenda.pop_until(end) {
        w.handle(ev);
    }
    w.finish(end)
}

impl World {
    fn handle(&mut self, ev: Ev) {
        let now = self.agenda.now();
        match ev {
            Ev::Deliver { to, from, bytes } => {
                if let Some(d) = self.nodes[to].as_mut() {
                    d.handle_datagram(now, addr_of(from), &bytes);
                    self.after(to);
                }
            }
            Ev::Timer(i) => {
                self.timer[i] = None;
                if let Some(d) = self.nodes[i].as_mut()
                    && d.poll_timeout() <= now
                {
                    d.handle_timeout(now);
                }
                self.after(i);
            }
            Ev::Join(i) => {
                let mut rng = Rng::new(self.rng.next_u64());
                let config = Config {
                    id: random_id(&mut rng),
                    secret: random_id(&mut rng),
                    rng_seed: rng.next_u64(),
                };
                let mut d = Dht::new(config, now);
                if i > 0 {
                    d.bootstrap(now, &[addr_of(0)]);
                }
                self.nodes[i] = Some(d);
                self.after(i);
            }
            Ev::Announce(h) => {
                let (a, hash, implied) = {
                    let c = &self.cases[h];
                    (c.announcer, c.hash, c.expect.port() == NODE_PORT)
                };
                if let Some(d) = self.nodes[a].as_mut() {
                    d.announce(now, hash, ANNOUNCED_PORT, implied);
                    self.after(a);
                }
            }
            Ev::Lookup(h) => {
                let (l, hash) = (self.cases[h].looker, self.cases[h].hash);
                self.cases[h].started = now;
                self.report.lookups += 1;
                if let Some(d) = self.nodes[l].as_mut()
                    && let Some(lid) = d.get_peers(now, hash)
                {
                    self.watching.insert((l, lid), h);
                    self.after(l);
                }
            }
        }
    }

    /// Sends what node `i` has to send, takes its events, sets its timer.
    fn after(&mut self, i: usize) {
        let now = self.agenda.now();
        let Some(d) = self.nodes[i].as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(t) = d.poll_transmit() {
            out.push(t);
        }
        let mut events = Vec::new();
        while let Some(e) = d.poll_event() {
            events.push(e);
        }
        let due = d.poll_timeout();
        for (to, bytes) in out {
            self.report.datagrams += 1;
            let Some(j) = index_of(to).filter(|&j| j < self.nodes.len()) else {
                continue;
            };
            if self.sc.loss > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < self.sc.loss {
                self.report.lost += 1;
                continue;
            }
            let (lo, hi) = self.sc.latency;
            let spread = hi.saturating_sub(lo).as_micros() as u64;
            let extra = if spread == 0 {
                0
            } else {
                self.rng.next_u64() % spread
            };
            let at = now + lo + Duration::from_micros(extra);
            self.agenda.at(
                at,
                Ev::Deliver {
                    to: j,
                    from: i,
                    bytes,
                },
            );
        }
        for e in events {
            self.event(i, e);
        }
        if self.timer[i].is_none_or(|t| due < t) {
            self.timer[i] = Some(due);
            self.agenda.at(due, Ev::Timer(i));
        }
    }

    fn event(&mut self, i: usize, e: Event) {
        let now = self.agenda.now();
        match e {
            Event::Peers { lookup, peers, .. } => {
                if let Some(&h) = self.watching.get(&(i, lookup)) {
                    let c = &mut self.cases[h];
                    if !c.found && peers.contains(&c.expect) {
                        c.found = true;
                        self.report.found += 1;
                        self.report.time_to_find.push(now.since(c.started));
                    }
                }
            }
            Event::Done {
                lookup,
                kind,
                queries,
                announced,
                ..
            } => match kind {
                Kind::Announce { .. } if announced > 0 => self.report.announced += 1,
                Kind::GetPeers => {
                    if let Some(h) = self.watching.remove(&(i, lookup)) {
                        self.report.queries.push(queries);
                        let started = self.cases[h].started;
                        self.report.duration.push(now.since(started));
                    }
                }
                _ => {}
            },
        }
    }

    fn finish(mut self, end: Time) -> DhtReport {
        self.report.events = self.agenda.handled;
        self.report.simulated = end.since(Time::ZERO);
        self.report.table_sizes = self.nodes.iter().flatten().map(Dht::nodes).collect();
        self.report
    }
}

/// The value at fraction `q` (0..=1) of `v` once sorted.
fn quantile<T: Ord + Copy + Default>(v: &[T], q: f64) -> T {
    let mut s = v.to_vec();
    s.sort_unstable();
    match s.len() {
        0 => T::default(),
        n => s[((n - 1) as f64 * q).round() as usize],
    }
}

impl DhtReport {
    pub fn success_rate(&self) -> f64 {
        self.found as f64 / self.lookups.max(1) as f64
    }

    pub fn median_queries(&self) -> u32 {
        quantile(&self.queries, 0.5)
    }

    pub fn render(&self, sc: &DhtScenario) -> String {
        let ms = |d: Duration| d.as_millis();
        format!(
            "dht: {} nodes, {} hashes, latency {}-{} ms, loss {}, seed {}\n\
             announces reaching a node: {}/{}\n\
             lookups finding the announcer: {}/{} ({:.1}%)\n\
             queries per lookup: median {}, p90 {}, max {}\n\
             time to the announcer: median {} ms, p90 {} ms\n\
             lookup duration: median {} ms, p90 {} ms\n\
             routing table: median {} nodes, min {}\n\
             datagrams: {} ({} lost), simulated {:.1} s\n",
            sc.nodes,
            sc.hashes,
            ms(sc.latency.0),
            ms(sc.latency.1),
            sc.loss,
            sc.seed,
            self.announced,
            sc.hashes,
            self.found,
            self.lookups,
            100.0 * self.success_rate(),
            self.median_queries(),
            quantile(&self.queries, 0.9),
            quantile(&self.queries, 1.0),
            ms(quantile(&self.time_to_find, 0.5)),
            ms(quantile(&self.time_to_find, 0.9)),
            ms(quantile(&self.duration, 0.5)),
            ms(quantile(&self.duration, 0.9)),
            quantile(&self.table_sizes, 0.5),
            quantile(&self.table_sizes, 0.0),
            self.datagrams,
            self.lost,
            self.simulated.as_secs_f64(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_nodes_find_every_announcer() {
        let sc = DhtScenario {
            nodes: 100,
            hashes: 50,
            settle: Duration::from_secs(10),
            ..DhtScenario::default()
        };
        let r = run(&sc);
        assert_eq!(r.found, 50, "{}", r.render(&sc));
    }
}
