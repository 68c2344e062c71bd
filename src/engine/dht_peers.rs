//! What the DHT needs of the engine, and what it brings: the files it may
//! announce or search for, and peers found for one.

use super::{Engine, Storage, Time};
use crate::wire::InfoHash;
use std::net::SocketAddr;

impl<S: Storage> Engine<S> {
    /// Peers of `info_hash` found outside the trackers (the DHT): dialed
    /// as a tracker's would be, if the file is still wanted.
    pub fn add_peers(&mut self, _now: Time, info_hash: &InfoHash, addrs: &[SocketAddr]) {
        self.dial_peers(info_hash, addrs);
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
