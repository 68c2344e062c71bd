//! Peers announced to us for other nodes' info hashes: bounded in info
//! hashes ([`DHT_MAX_HASHES`]) and in peers per hash
//! ([`DHT_MAX_PEERS_PER_HASH`]); each entry expires [`PEER_TTL`] after
//! its last announce (peers re-announce every 15 to 30 minutes).

use crate::engine::Time;
use crate::limits::{DHT_MAX_HASHES, DHT_MAX_PEERS_PER_HASH, DHT_MAX_VALUES};
use crate::rng::Rng;
use crate::wire::krpc::NodeId;
use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::time::Duration;

/// How long an announce is kept.
pub const PEER_TTL: Duration = Duration::from_secs(30 * 60);

#[derive(Debug, Default)]
pub struct PeerStore {
    /// Per info hash: (peer, when it expires).
    swarms: HashMap<NodeId, Vec<(SocketAddrV4, Time)>>,
}

impl PeerStore {
    /// Stores or refreshes `peer` for `hash`. A new hash past the limit is
    /// refused (false); a full swarm drops its entry closest to expiry.
    pub fn announce(&mut self, now: Time, hash: NodeId, peer: SocketAddrV4) -> bool {
        let expires = now + PEER_TTL;
        if !self.swarms.contains_key(&hash) && self.swarms.len() >= DHT_MAX_HASHES {
            self.expire(now);
            if self.swarms.len() >= DHT_MAX_HASHES {
                return false;
            }
        }
        let swarm = self.swarms.entry(hash).or_default();
        if let Some(e) = swarm.iter_mut().find(|e| e.0 == peer) {
            e.1 = expires;
            return true;
        }
        if swarm.len() >= DHT_MAX_PEERS_PER_HASH
            && let Some(oldest) = (0..swarm.len()).min_by_key(|&i| swarm[i].1)
        {
            swarm.swap_remove(oldest);
        }
        swarm.push((peer, expires));
        true
    }

    /// Up to [`DHT_MAX_VALUES`] live peers of `hash`, from a random place
    /// in the list so that every peer of a large swarm gets handed out.
    pub fn peers(&self, now: Time, hash: &NodeId, rng: &mut Rng) -> Vec<SocketAddrV4> {
        let Some(swarm) = self.swarms.get(hash) else {
            return Vec::new();
        };
        let start = if swarm.is_empty() {
            0
        } else {
            rng.below(swarm.len())
        };
        swarm[start..]
            .iter()
            .chain(&swarm[..start])
            .filter(|e| e.1 > now)
            .take(DHT_MAX_VALUES)
            .map(|e| e.0)
            .collect()
    }

    /// Forgets expired peers and empty swarms.
    pub fn expire(&mut self, now: Time) {
        self.swarms.retain(|_, swarm| {
            swarm.retain(|e| e.1 > now);
            !swarm.is_empty()
        });
    }

    pub fn hashes(&self) -> usize {
        self.swarms.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_expiring() {
        let mut s = PeerStore::default();
        let mut rng = Rng::new(1);
        let peer = |i: u32| SocketAddrV4::new(i.into(), 1);
        for i in 0..DHT_MAX_PEERS_PER_HASH as u32 + 5 {
            assert!(s.announce(Time::ZERO, [1; 20], peer(i)));
        }
        let got = s.peers(Time::ZERO, &[1; 20], &mut rng);
        assert_eq!(got.len(), DHT_MAX_VALUES.min(DHT_MAX_PEERS_PER_HASH));
        for i in 0..DHT_MAX_HASHES as u32 - 1 {
            let mut h = [0u8; 20];
            h[..4].copy_from_slice(&i.to_be_bytes());
            h[19] = 2;
            assert!(s.announce(Time::ZERO, h, peer(1)));
        }
        assert!(!s.announce(Time::ZERO, [9; 20], peer(1)));
        let later = Time::ZERO + PEER_TTL;
        assert!(s.peers(later, &[1; 20], &mut rng).is_empty());
        assert!(s.announce(later, [9; 20], peer(1)));
        assert_eq!(s.hashes(), 1);
    }
}
