//! The DHT node, sans-IO: datagrams and the time come in, datagrams and
//! events go out. The shell (or the simulator) owns the UDP socket and the
//! clock, and calls:
//!
//! - [`Dht::handle_datagram`] for every datagram that arrives,
//! - [`Dht::handle_timeout`] once [`Dht::poll_timeout`] is reached,
//! - [`Dht::poll_transmit`] until `None` after either, sending each
//!   datagram to its address, and [`Dht::poll_event`] until `None`;
//! - [`Dht::bootstrap`], [`Dht::get_peers`] and [`Dht::announce`] to ask
//!   for something (their datagrams and events come out the same way).

use super::id::random_id_in_bucket;
use super::limiter::Limiter;
use super::lookup::{Kind, Lookup};
use super::saved;
use super::store::PeerStore;
use super::table::{Heard, Table};
use super::token::Tokens;
use crate::engine::Time;
use crate::limits::{DHT_K, DHT_MAX_LOOKUPS, DHT_MAX_TRANSACTIONS};
use crate::rng::Rng;
use crate::wire::krpc::{self, Body, Message, NodeId, Query, Response};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{SocketAddr, SocketAddrV4};
use std::time::Duration;

/// How long a query waits for its answer.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How often housekeeping runs: token rotation, expiry, bucket refresh,
/// pings of questionable nodes.
pub const TICK: Duration = Duration::from_secs(5);

pub struct Config {
    pub id: NodeId,
    /// Seed of the token secrets; from the OS in the daemon.
    pub secret: [u8; 20],
    pub rng_seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Peers of `info_hash` not reported before by this lookup.
    Peers {
        lookup: LookupId,
        info_hash: NodeId,
        peers: Vec<SocketAddrV4>,
    },
    /// A lookup ended; for an announce, `announced` announce_peer
    /// queries went out.
    Done {
        lookup: LookupId,
        target: NodeId,
        kind: Kind,
        queries: u32,
        peers: usize,
        announced: usize,
    },
}

/// Counters for logs, metrics and the simulator.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub queries_sent: u64,
    pub queries_answered: u64,
    pub rate_limited: u64,
    pub timeouts: u64,
    pub bad_datagrams: u64,
    pub errors_sent: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Lookup(LookupId),
    Ping,
    Announce,
}

#[derive(Debug)]
struct Txn {
    addr: SocketAddrV4,
    id: Option<NodeId>,
    deadline: Time,
    purpose: Purpose,
}

pub struct Dht {
    id: NodeId,
    table: Table,
    tokens: Tokens,
    store: PeerStore,
    limiter: Limiter,
    rng: Rng,
    txns: HashMap<u16, Txn>,
    /// (deadline, tid) in send order, so in deadline order; entries of
    /// answered queries are skipped when reached.
    deadlines: VecDeque<(Time, u16)>,
    next_tid: u16,
    lookups: HashMap<LookupId, Lookup>,
    next_lookup: u32,
    /// Addresses with a ping in flight, so each is pinged once at a time.
    pinging: HashSet<SocketAddrV4>,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<Event>,
    next_tick: Time,
    /// The bootstrap lookup in progress: when it ends, every bucket but
    /// the nearest is refreshed, so far buckets fill too.
    bootstrapping: Option<LookupId>,
    /// The addresses given to the last [`Dht::bootstrap`]: asked again
    /// while the table holds fewer than k nodes (the first datagrams may
    /// be lost, or the bootstrap node down for a while).
    bootstrap_addrs: Vec<SocketAddrV4>,
    /// Our address as the last answering node saw it (BEP 42 `ip`).
    external: Option<std::net::Ipv4Addr>,
    /// Info hashes we announce ourselves, with the port: a get_peers for
    /// one of them is answered with us too, once `external` is known (in
    /// a DHT of two nodes, each is the other's only storage).
    ours: HashMap<NodeId, (u16, bool)>,
    pub stats: Stats,
}

/// The IPv4 address of `a` (IPv4-mapped IPv6 included); BEP 5 is IPv4.
fn v4(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Some(a),
        SocketAddr::V6(a) => a
            .ip()
            .to_ipv4_mapped()
            .map(|ip| SocketAddrV4::new(ip, a.port())),
    }
}

impl Dht {
    pub fn new(config: Config, now: Time) -> Dht {
        Dht {
            id: config.id,
            table: Table::new(config.id, now),
            tokens: Tokens::new(config.secret, now),
            store: PeerStore::default(),
            limiter: Limiter::default(),
            rng: Rng::new(config.rng_seed),
            txns: HashMap::new(),
            deadlines: VecDeque::new(),
            next_tid: 0,
            lookups: HashMap::new(),
            next_lookup: 0,
            pinging: HashSet::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            next_tick: now + TICK,
            bootstrapping: None,
            bootstrap_addrs: Vec::new(),
            external: None,
            ours: HashMap::new(),
            stats: Stats::default(),
        }
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Nodes in the routing table.
    pub fn nodes(&self) -> usize {
        self.table.len()
    }

    /// Info hashes other nodes announced to us.
    pub fn stored_hashes(&self) -> usize {
        self.store.hashes()
    }

    /// Stops announcing `info_hash` as ours (the file is gone).
    pub fn forget(&mut self, info_hash: &NodeId) {
        self.ours.remove(info_hash);
    }

    /// Our IPv4 address as other nodes see it, once one said.
    pub fn external_ip(&self) -> Option<std::net::Ipv4Addr> {
        self.external
    }

    pub fn lookups(&self) -> usize {
        self.lookups.len()
    }

    /// The routing table as bytes, to save (see `saved`).
    pub fn table_bytes(&self) -> Vec<u8> {
        saved::encode(&self.table)
    }

    /// Puts saved nodes in the table, as not yet confirmed: the next
    /// [`Dht::bootstrap`] asks them first.
    pub fn seed_nodes(&mut self, now: Time, nodes: &[(NodeId, SocketAddrV4)]) {
        for (id, addr) in nodes {
            self.table.heard(now, *id, *addr, Heard::Queried);
        }
    }

    /// Looks up our own id through `addrs` (and the table), which fills
    /// the table with our neighbours.
    pub fn bootstrap(&mut self, now: Time, addrs: &[SocketAddr]) -> Option<LookupId> {
        self.bootstrap_addrs = addrs.iter().filter_map(|a| v4(*a)).collect();
        self.bootstrap_again(now)
    }

    fn bootstrap_again(&mut self, now: Time) -> Option<LookupId> {
        let extra = std::mem::take(&mut self.bootstrap_addrs);
        let lid = self.start(now, self.id, Kind::FindNode, &extra);
        self.bootstrap_addrs = extra;
        // A lookup with nobody to ask is over already.
        if lid.is_some_and(|l| self.lookups.contains_key(&l)) {
            self.bootstrapping = lid;
        }
        lid
    }

    /// Pings a node whose id we do not know (a peer's PORT message): if it
    /// answers, it joins the table.
    pub fn ping_addr(&mut self, now: Time, addr: SocketAddr) {
        if let Some(addr) = v4(addr)
            && !self.pinging.contains(&addr)
        {
            let q = Query::Ping { id: self.id };
            if self.query(now, addr, None, q, Purpose::Ping) {
                self.pinging.insert(addr);
            }
        }
    }

    /// Looks for peers of `info_hash`; found ones come as [`Event::Peers`].
    pub fn get_peers(&mut self, now: Time, info_hash: NodeId) -> Option<LookupId> {
        self.start(now, info_hash, Kind::GetPeers, &[])
    }

    /// As [`Dht::get_peers`], then announces us at `port` (or, with
    /// `implied_port`, at the port our datagrams come from) to the
    /// closest nodes.
    pub fn announce(
        &mut self,
        now: Time,
        info_hash: NodeId,
        port: u16,
        implied_port: bool,
    ) -> Option<LookupId> {
        if self.ours.len() < crate::limits::DHT_MAX_HASHES || self.ours.contains_key(&info_hash) {
            self.ours.insert(info_hash, (port, implied_port));
        }
        let kind = Kind::Announce { port, implied_port };
        self.start(now, info_hash, kind, &[])
    }

    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Dht::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Time {
        match self.deadlines.front() {
            Some(&(t, _)) => t.min(self.next_tick),
            None => self.next_tick,
        }
    }

    pub fn handle_timeout(&mut self, now: Time) {
        while let Some(&(deadline, tid)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.txns.get(&tid).is_some_and(|t| t.deadline == deadline)
                && let Some(txn) = self.txns.remove(&tid)
            {
                self.stats.timeouts += 1;
                self.unanswered(now, txn);
            }
        }
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            self.housekeeping(now);
        }
    }

    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, bytes: &[u8]) {
        let Some(from) = v4(from) else {
            return;
        };
        match Message::decode(bytes) {
            Ok(msg) => match msg.body {
                Body::Query(q) => self.answer(now, from, msg.tid, &q),
                Body::Response(r) => {
                    if let Some(ip) = msg.ip {
                        self.external = Some(*ip.ip());
                    }
                    self.on_response(now, from, msg.tid, &r)
                }
                Body::Error { .. } => self.on_error(now, from, msg.tid),
            },
            Err(e) => {
                self.stats.bad_datagrams += 1;
                if let (Some(code), Some(tid)) = (e.reply_code(), e.tid)
                    && self.limiter.allow(now, *from.ip())
                {
                    let message = e.kind.to_string();
                    self.stats.errors_sent += 1;
                    self.send_error(from, tid, code, message.as_bytes());
                }
            }
        }
    }

    fn send(&mut self, to: SocketAddrV4, msg: &Message<'_>) {
        self.out.push_back((SocketAddr::V4(to), msg.to_vec()));
    }

    fn send_error(&mut self, to: SocketAddrV4, tid: &[u8], code: i64, message: &[u8]) {
        let body = Body::Error { code, message };
        self.send(
            to,
            &Message {
                tid,
                body,
                ip: None,
            },
        );
    }

    fn answer(&mut self, now: Time, from: SocketAddrV4, tid: &[u8], q: &Query<'_>) {
        if !self.limiter.allow(now, *from.ip()) {
            self.stats.rate_limited += 1;
            return;
        }
        self.stats.queries_answered += 1;
        if let Some(old) = self.table.heard(now, *q.id(), from, Heard::Queried) {
            self.ping(now, old);
        }
        let token;
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        match q {
            Query::Ping { .. } => {}
            Query::FindNode { target, .. } => r.nodes = self.table.closest(target, DHT_K),
            Query::GetPeers { info_hash, .. } => {
                token = self.tokens.issue(*from.ip());
                r.token = Some(&token);
                r.nodes = self.table.closest(info_hash, DHT_K);
                r.values = self.store.peers(now, info_hash, &mut self.rng);
                if let (Some(&(port, _)), Some(ip)) = (self.ours.get(info_hash), self.external)
                    && r.values.len() < crate::limits::DHT_MAX_VALUES
                {
                    r.values.push(SocketAddrV4::new(ip, port));
                }
            }
            Query::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
                ..
            } => {
                if !self.tokens.accepts(*from.ip(), token) {
                    self.stats.errors_sent += 1;
                    let code = krpc::ERROR_PROTOCOL;
                    return self.send_error(from, tid, code, b"bad token");
                }
                let port = if *implied_port { from.port() } else { *port };
                let peer = SocketAddrV4::new(*from.ip(), port);
                self.store.announce(now, *info_hash, peer);
            }
        }
        let msg = Message {
            tid,
            body: Body::Response(r),
            ip: Some(from),
        };
        self.send(from, &msg);
    }

    /// The transaction `tid` answered by `from`, if it is ours.
    fn take_txn(&mut self, from: SocketAddrV4, tid: &[u8]) -> Option<Txn> {
        let tid = u16::from_be_bytes(tid.try_into().ok()?);
        if self.txns.get(&tid)?.addr != from {
            return None;
        }
        self.txns.remove(&tid)
    }

    fn on_response(&mut self, now: Time, from: SocketAddrV4, tid: &[u8], r: &Response<'_>) {
        let Some(txn) = self.take_txn(from, tid) else {
            self.stats.bad_datagrams += 1;
            return;
        };
        if let Some(old) = self.table.heard(now, r.id, from, Heard::Answered) {
            self.ping(now, old);
        }
        match txn.purpose {
            Purpose::Ping => {
                self.pinging.remove(&from);
            }
            Purpose::Announce => {}
            Purpose::Lookup(lid) => {
                let Some(l) = self.lookups.get_mut(&lid) else {
                    return;
                };
                let values: Vec<SocketAddrV4> =
                    r.values.iter().filter(|v| v.port() != 0).copied().collect();
                let new = l.answered(from, r.id, &r.nodes, r.token, &values);
                if !new.is_empty() && l.kind != Kind::FindNode {
                    self.events.push_back(Event::Peers {
                        lookup: lid,
                        info_hash: l.target,
                        peers: new,
                    });
                }
                self.step(now, lid);
            }
        }
    }

    /// An error answer: the node is alive, the query failed.
    fn on_error(&mut self, now: Time, from: SocketAddrV4, tid: &[u8]) {
        if let Some(mut txn) = self.take_txn(from, tid) {
            txn.id = None;
            self.unanswered(now, txn);
        }
    }

    fn unanswered(&mut self, now: Time, txn: Txn) {
        if let Some(id) = txn.id {
            self.table.failed(&id);
        }
        match txn.purpose {
            Purpose::Ping => {
                self.pinging.remove(&txn.addr);
            }
            Purpose::Announce => {}
            Purpose::Lookup(lid) => {
                if let Some(l) = self.lookups.get_mut(&lid) {
                    l.failed(txn.addr);
                    self.step(now, lid);
                }
            }
        }
    }

    /// Sends a query; false if too many are in flight.
    fn query(
        &mut self,
        now: Time,
        to: SocketAddrV4,
        id: Option<NodeId>,
        q: Query<'_>,
        purpose: Purpose,
    ) -> bool {
        if self.txns.len() >= DHT_MAX_TRANSACTIONS {
            return false;
        }
        let mut tid = self.next_tid;
        while self.txns.contains_key(&tid) {
            tid = tid.wrapping_add(1);
        }
        self.next_tid = tid.wrapping_add(1);
        let raw = tid.to_be_bytes();
        let msg = Message {
            tid: &raw,
            body: Body::Query(q),
            ip: None,
        };
        self.send(to, &msg);
        let deadline = now + QUERY_TIMEOUT;
        let txn = Txn {
            addr: to,
            id,
            deadline,
            purpose,
        };
        self.txns.insert(tid, txn);
        self.deadlines.push_back((deadline, tid));
        self.stats.queries_sent += 1;
        true
    }

    fn ping(&mut self, now: Time, (id, addr): (NodeId, SocketAddrV4)) {
        if self.pinging.contains(&addr) {
            return;
        }
        let q = Query::Ping { id: self.id };
        if self.query(now, addr, Some(id), q, Purpose::Ping) {
            self.pinging.insert(addr);
        }
    }

    fn start(
        &mut self,
        now: Time,
        target: NodeId,
        kind: Kind,
        extra: &[SocketAddrV4],
    ) -> Option<LookupId> {
        if self.lookups.len() >= DHT_MAX_LOOKUPS {
            return None;
        }
        let mut l = Lookup::new(target, kind);
        for (id, addr) in self.table.closest(&target, DHT_K) {
            l.offer(Some(id), addr);
        }
        for addr in extra {
            l.offer(None, *addr);
        }
        let lid = LookupId(self.next_lookup);
        self.next_lookup = self.next_lookup.wrapping_add(1);
        // Peers announced to us count too: our lookups never ask us (in a
        // DHT of two nodes the other announces to us and nowhere else).
        if kind != Kind::FindNode {
            let known = self.store.peers(now, &target, &mut self.rng);
            let new = l.answered_by_us(&known);
            if !new.is_empty() {
                self.events.push_back(Event::Peers {
                    lookup: lid,
                    info_hash: target,
                    peers: new,
                });
            }
        }
        self.lookups.insert(lid, l);
        self.step(now, lid);
        Some(lid)
    }

    /// Sends what lookup `lid` may send now; finishes it when done.
    fn step(&mut self, now: Time, lid: LookupId) {
        let own = self.id;
        loop {
            let Some(l) = self.lookups.get_mut(&lid) else {
                return;
            };
            let Some((addr, id)) = l.next_query() else {
                break;
            };
            let q = match l.kind {
                Kind::FindNode => Query::FindNode {
                    id: own,
                    target: l.target,
                },
                _ => Query::GetPeers {
                    id: own,
                    info_hash: l.target,
                },
            };
            if !self.query(now, addr, id, q, Purpose::Lookup(lid))
                && let Some(l) = self.lookups.get_mut(&lid)
            {
                l.failed(addr);
            }
        }
        if self.lookups.get(&lid).is_some_and(Lookup::is_done) {
            self.finish(now, lid);
        }
    }

    fn finish(&mut self, now: Time, lid: LookupId) {
        let Some(l) = self.lookups.remove(&lid) else {
            return;
        };
        let mut announced = 0;
        if let Kind::Announce { port, implied_port } = l.kind {
            for (addr, token) in l.announce_targets() {
                let q = Query::AnnouncePeer {
                    id: self.id,
                    info_hash: l.target,
                    port,
                    implied_port,
                    token: &token,
                };
                if self.query(now, addr, None, q, Purpose::Announce) {
                    announced += 1;
                }
            }
        }
        if self.bootstrapping == Some(lid) {
            self.bootstrapping = None;
            self.refresh_far_buckets(now);
        }
        self.events.push_back(Event::Done {
            lookup: lid,
            target: l.target,
            kind: l.kind,
            queries: l.queries,
            peers: l.peers_found(),
            announced,
        });
    }

    /// A find_node of a random id in each bucket but the last (the
    /// bootstrap lookup just filled that one).
    fn refresh_far_buckets(&mut self, now: Time) {
        for prefix in 0..self.table.bucket_count().saturating_sub(1) {
            let target = random_id_in_bucket(&self.id, prefix, &mut self.rng);
            self.start(now, target, Kind::FindNode, &[]);
        }
    }

    fn housekeeping(&mut self, now: Time) {
        self.tokens.rotate(now);
        self.store.expire(now);
        self.limiter.forget_idle(now);
        if self.table.len() < DHT_K && self.bootstrapping.is_none() {
            self.bootstrap_again(now);
        }
        if self.table.is_empty() {
            return;
        }
        for prefix in self.table.stale_buckets(now) {
            let target = random_id_in_bucket(&self.id, prefix, &mut self.rng);
            self.start(now, target, Kind::FindNode, &[]);
        }
        for node in self.table.questionable(now) {
            self.ping(now, node);
        }
    }
}

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
