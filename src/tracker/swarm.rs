//! BitTorrent peers (announced over BEP 15 UDP or BEP 3 HTTP) by info
//! hash. They have no session: each lives until its deadline (twice the
//! announce interval after its last announce) or its `stopped` event. A
//! swarm needs no metadata, so a hash the STA catalog does not know can
//! still have one; the tracker core merges both kinds in peer lists.

use super::catalog::KeyedHash;
use crate::wire::tracker::{InfoHash, PeerId};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BtPeer {
    /// Where other peers reach it: the request's source IP and its port.
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    /// Announced with `left` = 0.
    pub seeder: bool,
    pub deadline: Instant,
}

#[derive(Debug, Default)]
pub struct Swarm {
    pub peers: Vec<BtPeer>,
    positions: HashMap<SocketAddr, usize>,
    pub seeders: u32,
    /// `completed` events seen while the swarm existed.
    pub completed: u32,
}

impl Swarm {
    pub fn leechers(&self) -> u32 {
        self.peers.len() as u32 - self.seeders
    }

    fn remove_at(&mut self, i: usize) {
        let gone = self.peers.swap_remove(i);
        self.positions.remove(&gone.addr);
        if let Some(moved) = self.peers.get(i) {
            self.positions.insert(moved.addr, i);
        }
        self.seeders -= u32::from(gone.seeder);
    }
}

/// What an announce did to the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Added,
    Updated,
    /// The tracker holds `max_peers` BitTorrent peers already.
    Full,
}

#[derive(Debug, Default)]
pub struct Swarms {
    swarms: HashMap<InfoHash, Swarm, KeyedHash>,
    total: usize,
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

    /// Adds or refreshes a peer; `completed` counts a download that finished.
    pub fn upsert(
        &mut self,
        hash: InfoHash,
        peer: BtPeer,
        completed: bool,
        max_peers: usize,
    ) -> Upsert {
        if !self.swarms.contains_key(&hash) && self.total >= max_peers {
            return Upsert::Full;
        }
        let swarm = self.swarms.entry(hash).or_default();
        swarm.completed = swarm.completed.saturating_add(u32::from(completed));
        match swarm.positions.get(&peer.addr) {
            Some(&i) => {
                let old = &mut swarm.peers[i];
                swarm.seeders = swarm.seeders + u32::from(peer.seeder) - u32::from(old.seeder);
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
                swarm.positions.insert(peer.addr, swarm.peers.len());
                swarm.seeders += u32::from(peer.seeder);
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
        let Some(&i) = swarm.positions.get(addr) else {
            return false;
        };
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
        assert_eq!(s.upsert(h, peer(1, true, later), false, 10), Upsert::Added);
        assert_eq!(s.upsert(h, peer(2, false, now), false, 10), Upsert::Added);
        assert_eq!(s.upsert(h, peer(2, true, now), true, 10), Upsert::Updated);
        let sw = s.get(&h).unwrap();
        assert_eq!((sw.seeders, sw.leechers(), sw.completed), (2, 0, 1));
        assert_eq!(
            s.upsert([2; 20], peer(3, false, now), false, 2),
            Upsert::Full
        );
        assert!(s.get(&[2; 20]).is_none());
        assert_eq!(s.sweep(now), 1);
        assert_eq!(s.peers(), 1);
        assert!(s.remove(&h, &SocketAddr::from(([127, 0, 0, 1], 1))));
        assert!(s.is_empty());
        assert_eq!(s.peers(), 0);
    }
}
