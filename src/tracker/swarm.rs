//! BitTorrent peers (announced over BEP 15 UDP or BEP 3 HTTP) by info
//! hash. They have no session: each lives until its deadline (twice the
//! announce interval after its last announce) or its `stopped` event. A
//! swarm needs no metadata, so a hash the STA catalog does not know can
//! still have one; the tracker core merges both kinds in peer lists.

use super::catalog::KeyedHash;
use crate::wire::tracker::{InfoHash, PeerId};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::time::Instant;

/// A peer's address as a hash key: one word to mix for IPv4 (the
/// derived `Hash` of `SocketAddr` feeds the hasher field by field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AddrKey(SocketAddr);

impl Hash for AddrKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        match self.0 {
            SocketAddr::V4(a) => {
                h.write_u64(u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()))
            }
            SocketAddr::V6(a) => {
                h.write_u128(a.ip().to_bits());
                h.write_u64(u64::from(a.port()) | 1 << 63);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct BtPeer {
    /// Where other peers reach it: the request's source IP and its port.
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    /// Announced with `left` = 0.
    pub seeder: bool,
    pub deadline: Instant,
}

#[derive(Debug)]
pub struct Swarm {
    pub peers: Vec<BtPeer>,
    /// Each peer's address packed in one word, in `peers` order: what an
    /// announce reply reads of 50 peers is 400 bytes, not 50 records.
    hot: Vec<u64>,
    positions: HashMap<AddrKey, u32, KeyedHash>,
    pub seeders: u32,
    /// `completed` events seen while the swarm existed.
    pub completed: u32,
}

impl Swarm {
    fn new(keys: KeyedHash) -> Swarm {
        Swarm {
            peers: Vec::new(),
            hot: Vec::new(),
            positions: HashMap::with_hasher(keys),
            seeders: 0,
            completed: 0,
        }
    }

    /// Up to `max` peer addresses into `out`, a run of the swarm from
    /// `start` (wrapping), leaving out `me` and, with `v4`, peers of the
    /// other family (`Some(true)`: IPv4 only, `Some(false)`: IPv6 only).
    pub fn run_from(
        &self,
        start: usize,
        me: &SocketAddr,
        v4: Option<bool>,
        max: usize,
        out: &mut Vec<SocketAddr>,
    ) {
        let me_packed = pack(me);
        let start = start.min(self.hot.len());
        for (from, part) in [(start, &self.hot[start..]), (0, &self.hot[..start])] {
            for (k, &word) in part.iter().enumerate() {
                if out.len() >= max {
                    return;
                }
                if word & V6 == 0 {
                    if word != me_packed && v4 != Some(false) {
                        out.push(unpack_v4(word));
                    }
                } else if v4 != Some(true) {
                    let addr = self.peers[from + k].addr;
                    if addr != *me {
                        out.push(addr);
                    }
                }
            }
        }
    }

    pub fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }

    fn remove_at(&mut self, i: usize) {
        let gone = self.peers.swap_remove(i);
        self.hot.swap_remove(i);
        self.positions.remove(&AddrKey(gone.addr));
        if let Some(moved) = self.peers.get(i) {
            self.positions.insert(AddrKey(moved.addr), i as u32);
        }
        self.seeders -= u32::from(gone.seeder);
    }
}

/// Marks a packed word that holds no IPv4 address (the record has it).
const V6: u64 = 1 << 63;

fn pack(addr: &SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()),
        SocketAddr::V6(_) => V6,
    }
}

fn unpack_v4(word: u64) -> SocketAddr {
    SocketAddr::from((
        std::net::Ipv4Addr::from_bits((word >> 16) as u32),
        word as u16,
    ))
}

/// What an announce did to the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Added,
    Updated,
    /// The tracker holds `max_peers` BitTorrent peers already.
    Full,
    /// The swarm is new and the tracker may hold no more files.
    NoRoom,
}

#[derive(Debug, Default)]
pub struct Swarms {
    swarms: HashMap<InfoHash, Swarm, KeyedHash>,
    total: usize,
    /// Key of every swarm's address index (peers choose their ports).
    keys: KeyedHash,
}

impl Swarms {
    pub fn get(&self, hash: &InfoHash) -> Option<&Swarm> {
        self.swarms.get(hash)
    }

    /// BitTorrent peers across all swarms.
    pub fn peers(&self) -> usize {
        self.total
    }

    pub fn len(&self) -> usize {
        self.swarms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.swarms.is_empty()
    }

    /// Adds or refreshes a peer; `completed` (the `completed` event) counts
    /// a download that finished, once per peer that was no seeder yet.
    /// `may_create`, given how many swarms there are, says whether a new
    /// swarm may be made; it is asked only for a hash with no swarm.
    pub fn upsert(
        &mut self,
        hash: InfoHash,
        peer: BtPeer,
        completed: bool,
        max_peers: usize,
        may_create: impl FnOnce(usize) -> bool,
    ) -> Upsert {
        let swarms = self.swarms.len();
        let swarm = match self.swarms.entry(hash) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if self.total >= max_peers => {
                return Upsert::Full;
            }
            std::collections::hash_map::Entry::Vacant(_) if !may_create(swarms) => {
                return Upsert::NoRoom;
            }
            std::collections::hash_map::Entry::Vacant(v) => v.insert(Swarm::new(self.keys)),
        };
        match swarm.positions.get(&AddrKey(peer.addr)) {
            Some(&i) => {
                let i = i as usize;
                let old = &mut swarm.peers[i];
                let done = completed && !old.seeder;
                swarm.completed = swarm.completed.saturating_add(u32::from(done));
                swarm.seeders = swarm.seeders + u32::from(peer.seeder) - u32::from(old.seeder);
                swarm.hot[i] = pack(&peer.addr);
                *old = peer;
                Upsert::Updated
            }
            None if self.total >= max_peers => {
                if swarm.peers.is_empty() {
                    self.swarms.remove(&hash);
                }
                Upsert::Full
            }
            None => {
                swarm.completed = swarm.completed.saturating_add(u32::from(completed));
                swarm
                    .positions
                    .insert(AddrKey(peer.addr), swarm.peers.len() as u32);
                swarm.seeders += u32::from(peer.seeder);
                swarm.hot.push(pack(&peer.addr));
                swarm.peers.push(peer);
                self.total += 1;
                Upsert::Added
            }
        }
    }

    /// Removes the peer at `addr` (event `stopped`); false if absent.
    pub fn remove(&mut self, hash: &InfoHash, addr: &SocketAddr) -> bool {
        let Some(swarm) = self.swarms.get_mut(hash) else {
            return false;
        };
        let Some(&i) = swarm.positions.get(&AddrKey(*addr)) else {
            return false;
        };
        let i = i as usize;
        swarm.remove_at(i);
        self.total -= 1;
        if swarm.peers.is_empty() {
            self.swarms.remove(hash);
        }
        true
    }

    /// Forgets every peer whose deadline has passed; returns how many.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let mut removed = 0;
        self.swarms.retain(|_, swarm| {
            let mut i = 0;
            while i < swarm.peers.len() {
                if swarm.peers[i].deadline <= now {
                    swarm.remove_at(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
            !swarm.peers.is_empty()
        });
        self.total -= removed;
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn peer(port: u16, seeder: bool, deadline: Instant) -> BtPeer {
        BtPeer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            peer_id: [port as u8; 20],
            seeder,
            deadline,
        }
    }

    #[test]
    fn peers_come_and_go() {
        let now = Instant::now();
        let later = now + Duration::from_secs(120);
        let mut s = Swarms::default();
        let h = [1; 20];
        let any = |_| true;
        assert_eq!(
            s.upsert(h, peer(1, true, later), false, 10, any),
            Upsert::Added
        );
        assert_eq!(
            s.upsert(h, peer(2, false, now), false, 10, any),
            Upsert::Added
        );
        assert_eq!(
            s.upsert(h, peer(2, true, now), true, 10, any),
            Upsert::Updated
        );
        assert_eq!(
            s.upsert(h, peer(2, true, now), true, 10, any),
            Upsert::Updated
        );
        let sw = s.get(&h).unwrap();
        assert_eq!((sw.seeders, sw.leechers(), sw.completed), (2, 0, 1));
        assert_eq!(
            s.upsert([2; 20], peer(3, false, now), false, 2, any),
            Upsert::Full
        );
        assert_eq!(
            s.upsert([2; 20], peer(3, false, now), false, 10, |n| n < 1),
            Upsert::NoRoom
        );
        assert!(s.get(&[2; 20]).is_none());
        assert_eq!(s.sweep(now), 1);
        assert_eq!(s.peers(), 1);
        assert!(s.remove(&h, &SocketAddr::from(([127, 0, 0, 1], 1))));
        assert!(s.is_empty());
        assert_eq!(s.peers(), 0);
    }

    #[test]
    fn runs_wrap_skip_the_asker_and_keep_to_a_family() {
        let now = Instant::now();
        let mut s = Swarms::default();
        let h = [3; 20];
        for port in 1..=4 {
            s.upsert(h, peer(port, false, now), false, 10, |_| true);
        }
        let v6 = BtPeer {
            addr: "[::1]:9".parse().unwrap(),
            peer_id: [9; 20],
            seeder: false,
            deadline: now,
        };
        s.upsert(h, v6, false, 10, |_| true);
        let sw = s.get(&h).unwrap();
        let me = SocketAddr::from(([127, 0, 0, 1], 2));
        let ports = |start, v4, max| {
            let mut out = Vec::new();
            sw.run_from(start, &me, v4, max, &mut out);
            out.iter().map(SocketAddr::port).collect::<Vec<_>>()
        };
        assert_eq!(ports(3, None, 10), vec![4, 9, 1, 3]);
        assert_eq!(ports(3, Some(true), 2), vec![4, 1]);
        assert_eq!(ports(0, Some(false), 10), vec![9]);
        assert_eq!(ports(99, None, 1), vec![1]);
    }
}
