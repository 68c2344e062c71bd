//! BEP 11 peer exchange (`ut_pex`), within the limits libtorrent 2.0.8
//! keeps: each peer that offers it is told, at most once every
//! `PEX_INTERVAL`, which peers of the torrent joined (`added`, at most
//! `MAX_PEX_PEERS`, each with its flags) and left (`dropped`) since it was
//! last told; the first message, `PEX_FIRST` after its handshake, lists
//! the peers then connected. Only peers whose listen address we know are
//! passed on (we dialed them, or their handshake gave `p`), as libtorrent
//! does. Peers a PEX message adds go to the torrent's `book` and are
//! dialed like a tracker's. A peer sending more often than
//! `PEX_MIN_HEARD` is not read (libtorrent disconnects it). Private
//! torrents (BEP 27) neither send nor read PEX.

use super::book::PeerSource;
use super::peer::PeerConn;
use super::storage::Storage;
use super::time::Time;
use super::{Engine, LinkId};
use crate::limits::MAX_PEX_PEERS;
use crate::wire::pex::{FLAG_REACHABLE, FLAG_SEED, Pex};
use log::debug;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Time between two PEX messages to one peer (BEP 11: at most one a
/// minute).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// Delay of the first PEX message after a peer's extension handshake,
/// so that the peers dialed at the same time are in it.
pub const PEX_FIRST: Duration = Duration::from_secs(5);
/// PEX messages from one peer closer than this are ignored.
pub const PEX_MIN_HEARD: Duration = Duration::from_secs(45);

impl<S: Storage> Engine<S> {
    /// A peer's PEX message: its added peers are ours to dial.
    pub(super) fn on_pex(&mut self, now: Time, conn: &mut PeerConn, body: &[u8]) {
        let Some(hash) = conn.info_hash else {
            return;
        };
        let Some(t) = self.torrents.get(&hash) else {
            return; // a magnet offers no ut_pex, so none should come
        };
        if !t.dht_pex_allowed() {
            return;
        }
        if conn
            .ext
            .pex_heard
            .is_some_and(|h| now.since(h) < PEX_MIN_HEARD)
        {
            debug!("peer {}: PEX too often; ignored", conn.addr());
            return;
        }
        conn.ext.pex_heard = Some(now);
        let pex = match Pex::decode(body) {
            Ok(p) => p,
            Err(e) => return debug!("peer {}: {e}; ignored", conn.addr()),
        };
        let added: Vec<SocketAddr> = pex.added.iter().map(|(a, _)| *a).collect();
        self.add_peers(now, hash, &added, PeerSource::Pex);
    }

    /// Sends each peer that is due its PEX message.
    pub(super) fn pex_tick(&mut self, now: Time) {
        let mut sends = Vec::new();
        for t in self.torrents.values().filter(|t| t.dht_pex_allowed()) {
            let mut listening: BTreeMap<SocketAddr, u8> = BTreeMap::new();
            for link in t.peers() {
                let Some(p) = self.peers.get(link).filter(|p| p.handshaken) else {
                    continue;
                };
                if let Some(addr) = p.dialed.or(p.listen) {
                    let reachable = if p.dialed.is_some() {
                        FLAG_REACHABLE
                    } else {
                        0
                    };
                    let seed = if p.is_seed() { FLAG_SEED } else { 0 };
                    listening.insert(addr, reachable | seed);
                }
            }
            for &link in t.peers() {
                let due = self.peers.get(&link).is_some_and(|p| {
                    p.ext.ut_pex.is_some() && p.ext.pex_next.is_some_and(|n| n <= now)
                });
                if due {
                    sends.push((link, listening.clone()));
                }
            }
        }
        for (link, listening) in sends {
            self.pex_send(now, link, listening);
        }
    }

    /// Tells `link` what changed in `listening` since it was last told,
    /// if it reads PEX and it is time to.
    fn pex_send(&mut self, now: Time, link: LinkId, mut listening: BTreeMap<SocketAddr, u8>) {
        let Some(conn) = self.peers.get_mut(&link) else {
            return;
        };
        let (Some(id), Some(next)) = (conn.ext.ut_pex, conn.ext.pex_next) else {
            return;
        };
        if now < next {
            return;
        }
        conn.ext.pex_next = Some(now + PEX_INTERVAL);
        listening.remove(&conn.addr());
        let told = &mut conn.ext.pex_told;
        let added: Vec<(SocketAddr, u8)> = listening
            .iter()
            .filter(|(a, _)| !told.contains(a))
            .take(MAX_PEX_PEERS)
            .map(|(a, f)| (*a, *f))
            .collect();
        let dropped: Vec<SocketAddr> = told
            .iter()
            .filter(|a| !listening.contains_key(a))
            .take(MAX_PEX_PEERS)
            .copied()
            .collect();
        if added.is_empty() && dropped.is_empty() {
            return;
        }
        for a in &dropped {
            told.remove(a);
        }
        told.extend(added.iter().map(|(a, _)| *a));
        let pex = Pex { added, dropped };
        self.send(link, |b| pex.encode(id, b));
    }
}
