//! Read-only views of an engine's state for the simulator and tests:
//! what the control protocol does not report.

use super::Engine;
use super::storage::Storage;
use crate::wire::peer::PeerId;
use std::net::SocketAddr;

impl<S: Storage> Engine<S> {
    /// True when some file of this engine banned `addr`.
    pub fn is_banned(&self, addr: &SocketAddr) -> bool {
        self.torrents.values().any(|t| t.is_banned(addr))
    }

    /// Peer sessions past the handshake: the peer's address (as the
    /// engine names it) and its id.
    pub fn peer_sessions(&self) -> Vec<(SocketAddr, PeerId)> {
        self.peers
            .values()
            .filter(|p| p.handshaken)
            .filter_map(|p| Some((p.addr(), p.peer_id?)))
            .collect()
    }

    /// Block bytes served, over all files.
    pub fn uploaded(&self) -> u64 {
        self.torrents.values().map(|t| t.uploaded()).sum()
    }
}

impl<S: Storage> Engine<S> {
    /// The file a peer link being dialed is for (a TLS dial's SNI).
    pub fn dial_info_hash(&self, link: crate::engine::LinkId) -> Option<crate::wire::InfoHash> {
        match self.dials.get(&link)? {
            super::Dial::Peer(hash, _) => Some(*hash),
            super::Dial::Tracker(_) => None,
        }
    }

    /// The name of the file with this info hash, if this engine has it (a
    /// TLS peer's certificate must carry it, or `*`).
    pub fn file_name(&self, info_hash: &crate::wire::InfoHash) -> Option<&str> {
        self.torrents.get(info_hash).map(|t| t.info.name.as_str())
    }
}
