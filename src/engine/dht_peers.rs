//! What the DHT needs of the engine, and what it brings: the files it may
//! announce or search for, peers found for one, and BEP 5's peer-wire
//! part: the DHT bit of the handshake and the PORT message, both ways.

use super::{Engine, Storage, Time};
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
}

impl<S: Storage> Engine<S> {
    /// Peers of `info_hash` found outside the trackers (the DHT): dialed
    /// as a tracker's would be, if the file is still wanted.
    pub fn add_peers(&mut self, _now: Time, info_hash: &InfoHash, addrs: &[SocketAddr]) {
        self.dial_peers(info_hash, addrs);
    }

    /// Our DHT node listens on UDP `port`: handshakes say so (reserved
    /// bit 0x01 of byte 7) and peers that say so too get a PORT message.
    pub fn set_dht_port(&mut self, port: u16) {
        self.dht.port = Some(port);
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

    /// Every file the DHT may announce (none private, BEP 27), each with
    /// whether it is still being fetched.
    pub fn dht_files(&self) -> Vec<(InfoHash, bool)> {
        self.torrents
            .iter()
            .filter(|(_, t)| t.dht_pex_allowed())
            .map(|(h, t)| (*h, t.fetching()))
            .collect()
    }
}
