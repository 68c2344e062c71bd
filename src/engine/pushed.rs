//! Dials a tracker pushes (spec/tracker.md, "Dial"): a BitTorrent client
//! just announced a file we hold, and we dial it unless it dials us
//! first. This is how a client that never completes a connection to us
//! (Transmission 3.00 with uTP on, spec/bittorrent.md "uTP") still gets
//! one: it accepts incoming TCP. Each (file, address) is dialed at most
//! once per `DIAL_PUSH_INTERVAL_SECS`, within `max_peers`.

use super::Engine;
use super::storage::Storage;
use super::time::Time;
use super::torrent::State;
use crate::limits::{DIAL_PUSH_DELAY_MS, DIAL_PUSH_INTERVAL_SECS, MAX_PUSHED_DIALS};
use crate::wire::peer::InfoHash;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

/// How long a pushed address is not dialed again (a client that
/// re-announces `started`, or several trackers naming it, costs one dial).
pub const DIAL_PUSH_INTERVAL: Duration = Duration::from_secs(DIAL_PUSH_INTERVAL_SECS);

/// How long a pushed client has to dial us first. It got our address in
/// the announce that made the tracker push it, so it usually is dialing
/// us already, and a dial back at once makes two connections between the
/// pair. libtorrent 2.0.8 then closes both when it allows several
/// connections per IP: one by the peer-id rule (it keeps the one dialed
/// by the greater id, ours), the other because our extension handshake
/// names a listen address it already has a connection to (its own dial).
/// Neither side dialed again within 30 s (tests/dirs.rs, 5 runs of 131).
pub const DIAL_PUSH_DELAY: Duration = Duration::from_millis(DIAL_PUSH_DELAY_MS);

/// The addresses Dials named: when each was last taken, and those
/// waiting out [`DIAL_PUSH_DELAY`].
#[derive(Debug, Default)]
pub struct Pushed {
    named: HashMap<(InfoHash, SocketAddr), Time>,
    due: VecDeque<(Time, InfoHash, SocketAddr)>,
}

impl Pushed {
    /// A Dial named `addr` for `hash`: true if it is taken, to be dialed
    /// after [`DIAL_PUSH_DELAY`] (not named within the interval, and
    /// within the bounds).
    fn name(&mut self, now: Time, hash: InfoHash, addr: SocketAddr) -> bool {
        let recent = self
            .named
            .get(&(hash, addr))
            .is_some_and(|&at| now.since(at) < DIAL_PUSH_INTERVAL);
        if recent || self.due.len() >= MAX_PUSHED_DIALS {
            return false;
        }
        if self.named.len() >= MAX_PUSHED_DIALS {
            self.named.clear(); // a bound, not a cache worth keeping whole
        }
        self.named.insert((hash, addr), now);
        self.due.push_back((now + DIAL_PUSH_DELAY, hash, addr));
        true
    }

    /// The addresses whose wait is over, oldest first.
    fn take_due(&mut self, now: Time) -> Vec<(InfoHash, SocketAddr)> {
        let mut out = Vec::new();
        while let Some(&(at, hash, addr)) = self.due.front() {
            if at > now {
                break;
            }
            self.due.pop_front();
            out.push((hash, addr));
        }
        out
    }
}

impl<S: Storage> Engine<S> {
    /// A tracker's Dial: `addr` is dialed for `hash` after
    /// [`DIAL_PUSH_DELAY`] if we still seed or fetch that file then, it
    /// is not private (its BitTorrent announces are refused, so a Dial
    /// for it is not the tracker's), `addr` has not connected to us
    /// meanwhile, and it was not named by a Dial within
    /// [`DIAL_PUSH_INTERVAL`].
    pub(super) fn tracker_dial(&mut self, now: Time, hash: InfoHash, addr: SocketAddr) {
        if !self.trades_with_pushed(&hash, addr) {
            return;
        }
        if self.pushed.name(now, hash, addr) {
            log::debug!(
                "{}: the tracker says {addr} just announced; dialing it in {DIAL_PUSH_DELAY:?} unless it dials us",
                crate::meta::info::to_hex(&hash)
            );
        }
    }

    /// Dials the pushed addresses whose wait is over (each tick).
    pub(super) fn pushed_tick(&mut self, now: Time) {
        for (hash, addr) in self.pushed.take_due(now) {
            if self.trades_with_pushed(&hash, addr) {
                // Skips an address already connected (a client that
                // dialed us tells its listen port in its extension
                // handshake) or being dialed.
                self.dial_within_max(&hash, &[addr]);
            }
        }
    }

    fn trades_with_pushed(&self, hash: &InfoHash, addr: SocketAddr) -> bool {
        let Some(t) = self.torrents.get(hash) else {
            return false;
        };
        let trades = t.state() == State::Seeding || t.fetching();
        trades && t.dht_pex_allowed() && addr.port() != 0 && addr != self.config.listen
    }
}
