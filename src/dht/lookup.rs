//! An iterative lookup (Kademlia): ask the closest nodes known for the
//! target, learn closer ones from their answers, and go on until the
//! [`DHT_K`] closest nodes that have not failed have all answered.
//! At most [`ALPHA`] queries are in flight at once.
//!
//! The lookup only keeps state; the driver sends the queries it picks and
//! reports answers and timeouts back.

use super::id::distance;
use crate::limits::{DHT_K, DHT_LOOKUP_CANDIDATES};
use crate::wire::krpc::NodeId;
use std::collections::HashSet;
use std::net::SocketAddrV4;

/// Queries in flight per lookup (Kademlia's alpha).
pub const ALPHA: usize = 3;

/// What a lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nodes close to an id (bootstrap, bucket refresh).
    FindNode,
    /// Peers of an info hash.
    GetPeers,
    /// Peers of an info hash, then announce_peer to the closest nodes
    /// that gave a token, with `port` or (`implied_port`) the port our
    /// datagrams come from.
    Announce { port: u16, implied_port: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Fresh,
    Asked,
    Answered { token: Option<Vec<u8>> },
    Failed,
}

#[derive(Debug, Clone)]
struct Candidate {
    /// `None` for a bootstrap address whose id we do not know yet.
    id: Option<NodeId>,
    addr: SocketAddrV4,
    /// Distance to the target; unknown ids sort last.
    dist: NodeId,
    state: State,
}

#[derive(Debug)]
pub struct Lookup {
    pub target: NodeId,
    pub kind: Kind,
    /// Sorted by distance, at most [`DHT_LOOKUP_CANDIDATES`].
    candidates: Vec<Candidate>,
    in_flight: usize,
    /// Queries sent so far.
    pub queries: u32,
    /// Peers found so far (for get_peers), each reported once.
    seen_peers: HashSet<SocketAddrV4>,
}

impl Lookup {
    pub fn new(target: NodeId, kind: Kind) -> Lookup {
        Lookup {
            target,
            kind,
            candidates: Vec::new(),
            in_flight: 0,
            queries: 0,
            seen_peers: HashSet::new(),
        }
    }

    /// Adds a node to ask, unless it is known already or farther than the
    /// farthest of a full list.
    pub fn offer(&mut self, id: Option<NodeId>, addr: SocketAddrV4) {
        if self.candidates.iter().any(|c| c.addr == addr) {
            return;
        }
        if let Some(id) = id
            && self.candidates.iter().any(|c| c.id == Some(id))
        {
            return;
        }
        let dist = id.map_or([0xff; 20], |id| distance(&id, &self.target));
        let at = self.candidates.partition_point(|c| c.dist <= dist);
        if at >= DHT_LOOKUP_CANDIDATES {
            return;
        }
        self.candidates.insert(
            at,
            Candidate {
                id,
                addr,
                dist,
                state: State::Fresh,
            },
        );
        // Drop the farthest that is not awaited (an asked one must stay
        // until it answers or times out, to keep `in_flight` right).
        while self.candidates.len() > DHT_LOOKUP_CANDIDATES {
            match self
                .candidates
                .iter()
                .rposition(|c| c.state != State::Asked)
            {
                Some(i) => {
                    self.candidates.remove(i);
                }
                None => break,
            }
        }
    }

    /// The next node to ask, marked asked; `None` while [`ALPHA`] are in
    /// flight or no fresh node is among the [`DHT_K`] closest usable.
    pub fn next_query(&mut self) -> Option<(SocketAddrV4, Option<NodeId>)> {
        if self.in_flight >= ALPHA {
            return None;
        }
        let c = self
            .candidates
            .iter_mut()
            .filter(|c| c.state != State::Failed)
            .take(DHT_K)
            .find(|c| c.state == State::Fresh)?;
        c.state = State::Asked;
        self.in_flight += 1;
        self.queries += 1;
        Some((c.addr, c.id))
    }

    fn asked(&mut self, addr: SocketAddrV4) -> Option<usize> {
        let i = self
            .candidates
            .iter()
            .position(|c| c.addr == addr && c.state == State::Asked)?;
        self.in_flight -= 1;
        Some(i)
    }

    /// `addr` answered with id `id`, closer `nodes`, maybe a token and
    /// peers; returns the peers not reported before.
    pub fn answered(
        &mut self,
        addr: SocketAddrV4,
        id: NodeId,
        nodes: &[(NodeId, SocketAddrV4)],
        token: Option<&[u8]>,
        values: &[SocketAddrV4],
    ) -> Vec<SocketAddrV4> {
        if let Some(i) = self.asked(addr) {
            let mut c = self.candidates.remove(i);
            c.state = State::Answered {
                token: token.map(<[u8]>::to_vec),
            };
            // The id it answers with is the one that counts, whatever the
            // node that named it said.
            c.dist = distance(&id, &self.target);
            c.id = Some(id);
            let at = self.candidates.partition_point(|x| x.dist <= c.dist);
            self.candidates.insert(at, c);
        }
        for (nid, naddr) in nodes {
            self.offer(Some(*nid), *naddr);
        }
        values
            .iter()
            .filter(|v| self.seen_peers.insert(**v))
            .copied()
            .collect()
    }

    /// Peers we hold ourselves: reported once, like any answer's.
    pub fn answered_by_us(&mut self, values: &[SocketAddrV4]) -> Vec<SocketAddrV4> {
        values
            .iter()
            .filter(|v| self.seen_peers.insert(**v))
            .copied()
            .collect()
    }

    /// A query to `addr` timed out or was refused.
    pub fn failed(&mut self, addr: SocketAddrV4) {
        if let Some(i) = self.asked(addr) {
            self.candidates[i].state = State::Failed;
        }
    }

    /// Nothing in flight and nothing left worth asking.
    pub fn is_done(&self) -> bool {
        self.in_flight == 0
            && !self
                .candidates
                .iter()
                .filter(|c| c.state != State::Failed)
                .take(DHT_K)
                .any(|c| c.state == State::Fresh)
    }

    /// The [`DHT_K`] closest nodes that answered with a token: where to
    /// announce.
    pub fn announce_targets(&self) -> Vec<(SocketAddrV4, Vec<u8>)> {
        self.candidates
            .iter()
            .filter_map(|c| match &c.state {
                State::Answered { token: Some(t) } => Some((c.addr, t.clone())),
                _ => None,
            })
            .take(DHT_K)
            .collect()
    }

    pub fn peers_found(&self) -> usize {
        self.seen_peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u8) -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, i].into(), 6881)
    }

    #[test]
    fn converges_on_the_closest_and_stops() {
        let target = [0u8; 20];
        let mut l = Lookup::new(target, Kind::GetPeers);
        l.offer(None, addr(1));
        assert_eq!(l.next_query(), Some((addr(1), None)));
        assert_eq!(l.next_query(), None);
        assert!(!l.is_done());
        // It answers with 10 nodes, ids 1..=10 (1 closest).
        let nodes: Vec<(NodeId, SocketAddrV4)> = (1..=10u8)
            .map(|i| {
                let mut id = [0u8; 20];
                id[19] = i;
                (id, addr(10 + i))
            })
            .collect();
        let peers = l.answered(addr(1), [0xf0; 20], &nodes, Some(b"t"), &[addr(99)]);
        assert_eq!(peers, [addr(99)]);
        let asked: Vec<_> = std::iter::from_fn(|| l.next_query().map(|q| q.0)).collect();
        assert_eq!(asked, [addr(11), addr(12), addr(13)]);
        l.failed(addr(11));
        for a in [addr(12), addr(13)] {
            let again = l.answered(a, [0; 20], &[], Some(b"k"), &[addr(99)]);
            assert!(again.is_empty());
        }
        // The 8 closest usable are ids 2..=9: 4..=9 are still to ask.
        let mut n = 0;
        while let Some((a, _)) = l.next_query() {
            n += 1;
            l.answered(a, [0; 20], &[], None, &[]);
        }
        assert_eq!(n, 6);
        assert!(l.is_done());
        // Two close ones and the first (far) node gave tokens.
        assert_eq!(l.announce_targets().len(), 3);
        assert_eq!(l.queries, 10);
    }
}
