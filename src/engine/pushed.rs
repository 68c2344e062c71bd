//! Dials a tracker pushes (spec/tracker.md, "Dial"): a BitTorrent client
//! just announced a file we hold, and we dial it at once. This is how a
//! client that never completes a connection to us (Transmission 3.00 with
//! uTP on, spec/bittorrent.md "uTP") still gets one: it accepts incoming
//! TCP. Each (file, address) is dialed at most once per
//! `DIAL_PUSH_INTERVAL_SECS`, within `max_peers`.

use super::Engine;
use super::storage::Storage;
use super::time::Time;
use super::torrent::State;
use crate::limits::{DIAL_PUSH_INTERVAL_SECS, MAX_PUSHED_DIALS};
use crate::wire::peer::InfoHash;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a pushed address is not dialed again (a client that
/// re-announces `started`, or several trackers naming it, costs one dial).
pub const DIAL_PUSH_INTERVAL: Duration = Duration::from_secs(DIAL_PUSH_INTERVAL_SECS);

impl<S: Storage> Engine<S> {
    /// A tracker's Dial: dials `addr` for `hash` if we seed or fetch that
    /// file, it is not private (its BitTorrent announces are refused, so
    /// a Dial for it is not the tracker's), and `addr` was not dialed on
    /// a Dial within [`DIAL_PUSH_INTERVAL`].
    pub(super) fn tracker_dial(&mut self, now: Time, hash: InfoHash, addr: SocketAddr) {
        let Some(t) = self.torrents.get(&hash) else {
            return;
        };
        let trades = t.state() == State::Seeding || t.fetching();
        if !trades || !t.dht_pex_allowed() || addr.port() == 0 || addr == self.config.listen {
            return;
        }
        let recent = self
            .pushed
            .get(&(hash, addr))
            .is_some_and(|&at| now.since(at) < DIAL_PUSH_INTERVAL);
        if recent {
            return;
        }
        if self.pushed.len() >= MAX_PUSHED_DIALS {
            self.pushed.clear(); // a bound, not a cache worth keeping whole
        }
        self.pushed.insert((hash, addr), now);
        log::debug!(
            "{}: the tracker says {addr} just announced; dialing it",
            crate::meta::info::to_hex(&hash)
        );
        self.dial_within_max(&hash, &[addr]);
    }
}
