//! Peers of a torrent learned other than from its trackers: a magnet's
//! `x.pe`, PEX (BEP 11), the DHT. The tracker is asked again every few
//! seconds, so its peers need no memory; these come once, so each torrent
//! keeps them (at most `MAX_KNOWN_PEERS`) to dial, and to dial again a
//! while after a connection failed or ended.

use super::time::Time;
use crate::limits::MAX_KNOWN_PEERS;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// How long after a dial a known peer is dialed again (if not connected).
pub const REDIAL: Duration = Duration::from_secs(30);

/// Where a peer's address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSource {
    /// A magnet link's `x.pe`, given with `get`.
    Magnet,
    /// A connected peer's PEX message.
    Pex,
    /// A DHT lookup (BEP 5).
    Dht,
}

#[derive(Debug, Default)]
pub struct PeerBook {
    /// Each address, with when it may be dialed next.
    known: BTreeMap<SocketAddr, (PeerSource, Time)>,
}

impl PeerBook {
    /// Remembers `addr`; false if it was known already or the book is
    /// full (the peers already known are as good as a newcomer).
    pub fn add(&mut self, addr: SocketAddr, source: PeerSource) -> bool {
        if self.known.len() >= MAX_KNOWN_PEERS || self.known.contains_key(&addr) {
            return false;
        }
        self.known.insert(addr, (source, Time::ZERO));
        true
    }

    /// The peers whose turn to be dialed has come, marked as dialed now.
    pub fn due(&mut self, now: Time) -> Vec<SocketAddr> {
        let mut out = Vec::new();
        for (addr, (_, next)) in self.known.iter_mut() {
            if *next <= now {
                *next = now + REDIAL;
                out.push(*addr);
            }
        }
        out
    }

    /// True if no peer is known.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Forgets `addr` (it sent corrupt data, or is ourselves).
    pub fn forget(&mut self, addr: &SocketAddr) {
        self.known.remove(addr);
    }
}

impl<S: super::Storage> super::Engine<S> {
    /// Peers of `hash` learned from a source other than the trackers:
    /// remembered for the download (or the metadata fetch) of `hash`, and
    /// dialed while it has fewer than `max_peers`. The one entry point for
    /// every such source (`x.pe`, PEX, the DHT's get_peers); peers of a
    /// file this daemon neither fetches nor seeds are ignored, as are
    /// peers of a private file from anywhere but `x.pe` (BEP 27).
    pub fn add_peers(
        &mut self,
        now: Time,
        hash: crate::wire::peer::InfoHash,
        addrs: &[SocketAddr],
        source: PeerSource,
    ) {
        let private = match self.torrents.get(&hash) {
            Some(t) => !t.dht_pex_allowed(),
            None if self.is_magnet(&hash) => false,
            None => return,
        };
        if private && source != PeerSource::Magnet {
            return;
        }
        let book = self.books.entry(hash).or_default();
        let mut new = 0;
        for &a in addrs {
            if a.port() != 0 && a != self.config.listen {
                new += usize::from(book.add(a, source));
            }
        }
        if new > 0 {
            log::debug!(
                "{}: {new} new peer(s) from {source:?}",
                crate::meta::info::to_hex(&hash)
            );
            self.dial_known(now, &hash);
        }
    }

    /// Dials the known peers of `hash` whose turn has come.
    pub(super) fn dial_known(&mut self, now: Time, hash: &crate::wire::peer::InfoHash) {
        let wants = match self.torrents.get(hash) {
            Some(t) => t.fetching() && t.peers().len() < self.config.max_peers,
            None => self.is_magnet(hash),
        };
        if !wants {
            return;
        }
        let Some(due) = self.books.get_mut(hash).map(|b| b.due(now)) else {
            return;
        };
        if due.is_empty() {
            return;
        }
        match self.torrents.contains_key(hash) {
            true => self.dial_peers(hash, &due),
            false => self.dial_magnet(hash, &due),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dials_each_peer_then_waits_before_dialing_it_again() {
        let mut b = PeerBook::default();
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        assert!(b.add(a, PeerSource::Magnet));
        assert!(!b.add(a, PeerSource::Pex));
        let t0 = Time::ZERO + Duration::from_secs(1);
        assert_eq!(b.due(t0), vec![a]);
        assert!(b.due(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(b.due(t0 + REDIAL), vec![a]);
        for i in 0..MAX_KNOWN_PEERS as u32 + 10 {
            b.add(SocketAddr::from((i.to_be_bytes(), 2)), PeerSource::Pex);
        }
        assert_eq!(b.len(), MAX_KNOWN_PEERS);
    }
}
