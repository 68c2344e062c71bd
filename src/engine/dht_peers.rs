//! What the DHT needs of the engine: the files it may announce or search
//! for, and BEP 5's peer-wire part: the DHT bit of the handshake and the
//! PORT message, both ways. Peers it finds come in through
//! `Engine::add_peers` (`book`) as `PeerSource::Dht`.

use super::{Engine, Storage};
use crate::wire::InfoHash;
use crate::wire::peer::{Handshake, port_message};
use std::net::SocketAddr;

/// Peers' DHT nodes (from PORT messages) kept until the shell takes them.
const MAX_PORTS_HEARD: usize = 64;

#[derive(Debug, Default)]
pub(super) struct DhtWire {
    /// Our DHT node's UDP port, when it runs.
    port: Option<u16>,
    /// DHT nodes peers told us of.
    heard: Vec<SocketAddr>,
    /// Nodes in our DHT node's routing table, as the shell last said.
    nodes: usize,
}

impl<S: Storage> Engine<S> {
    /// Our DHT node listens on UDP `port`: handshakes say so (reserved
    /// bit 0x01 of byte 7) and peers that say so too get a PORT message.
    pub fn set_dht_port(&mut self, port: u16) {
        self.dht.port = Some(port);
    }

    /// How many nodes our DHT node knows (the shell says so each tick).
    pub fn set_dht_nodes(&mut self, nodes: usize) {
        self.dht.nodes = nodes;
    }

    /// Whether a DHT node runs and knows another node, so a magnet's
    /// peers may come from it (with an empty table, nobody can answer).
    pub(super) fn dht_on(&self) -> bool {
        self.dht.port.is_some() && self.dht.nodes > 0
    }

    /// DHT nodes that peers named in PORT messages since the last call.
    pub fn take_dht_nodes(&mut self) -> Vec<SocketAddr> {
        std::mem::take(&mut self.dht.heard)
    }

    /// Our handshake for `hash`, with the DHT bit when the node runs.
    pub(super) fn handshake(&self, hash: InfoHash) -> Handshake {
        let hs = Handshake::new(hash, self.peer_id);
        match self.dht.port {
            Some(_) => hs.with_dht(),
            None => hs,
        }
    }

    /// The PORT message for a peer whose handshake was `theirs`.
    pub(super) fn port_for(&self, theirs: &Handshake) -> Option<[u8; 7]> {
        let port = self.dht.port?;
        theirs.supports_dht().then(|| port_message(port))
    }

    /// A PORT message from the peer at `addr`: its DHT node is at its IP
    /// and that port (a bad length or port 0 is ignored).
    pub(super) fn heard_port(&mut self, addr: SocketAddr, payload: &[u8]) {
        let Ok(p) = <[u8; 2]>::try_from(payload) else {
            return;
        };
        let port = u16::from_be_bytes(p);
        if port != 0 && self.dht.heard.len() < MAX_PORTS_HEARD && self.dht.port.is_some() {
            self.dht.heard.push(SocketAddr::new(addr.ip(), port));
        }
    }

    /// Every file the DHT may announce or search (none private, BEP 27),
    /// each with whether it is still being fetched; a magnet link waiting
    /// for its info dict counts as fetched.
    pub fn dht_files(&self) -> Vec<(InfoHash, bool)> {
        let files = self
            .torrents
            .iter()
            .filter(|(_, t)| t.dht_pex_allowed())
            .map(|(h, t)| (*h, t.fetching()));
        let magnets = self.magnets.keys().map(|h| (*h, true));
        files.chain(magnets).collect()
    }
}
