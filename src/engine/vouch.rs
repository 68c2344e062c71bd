//! Vouching for BitTorrent peers (spec/tracker.md, Vouch and "Several
//! trackers"): a BitTorrent client announces to one tracker at a time, so
//! the BitTorrent peers of a file we dialed and are connected to are told
//! to every tracker, which gives them to the STA peers that ask. Checked
//! once a second, sent when the set changed, and again on every new
//! tracker session.

use super::Engine;
use super::storage::Storage;
use super::time::Time;
use super::tracker::{Pending, TrackerId};
use crate::limits::MAX_VOUCHED_PER_REQUEST;
use crate::wire::peer::InfoHash;
use crate::wire::tracker::{Request, Vouched};
use std::time::Duration;

/// How often the connected BitTorrent peers are looked at.
pub const VOUCH_CHECK: Duration = Duration::from_secs(1);

/// STA's own peers announce themselves; only others need vouching for.
fn is_sta(peer_id: &[u8; 20]) -> bool {
    peer_id.starts_with(b"-ST")
}

impl<S: Storage> Engine<S> {
    /// The BitTorrent peers of `hash` we are connected to and know the
    /// listen address of (we dialed them, or the tracker told us), by
    /// address.
    fn vouchable(&self, hash: &InfoHash) -> Vec<Vouched> {
        let Some(t) = self.torrents.get(hash) else {
            return Vec::new();
        };
        let mut out: Vec<Vouched> = t
            .peers()
            .iter()
            .filter_map(|link| self.peers.get(link))
            .filter_map(|p| {
                let peer_id = p.peer_id.filter(|id| p.handshaken && !is_sta(id))?;
                Some(Vouched {
                    peer_id,
                    addr: p.dialed.or(p.listen)?,
                    seeder: p.is_seed(),
                })
            })
            .collect();
        out.sort_by_key(|v| v.addr);
        out.truncate(MAX_VOUCHED_PER_REQUEST);
        out
    }

    /// Tells every live tracker of the BitTorrent peers whose set changed.
    pub(super) fn vouch_tick(&mut self, now: Time) {
        if now < self.next_vouch {
            return;
        }
        self.next_vouch = now + VOUCH_CHECK;
        let torrents = &self.torrents;
        self.vouched.retain(|h, _| torrents.contains_key(h));
        let hashes: Vec<InfoHash> = self.torrents.keys().copied().collect();
        for hash in hashes {
            let now_vouched = self.vouchable(&hash);
            let before = self.vouched.get(&hash).map_or(&[][..], Vec::as_slice);
            if now_vouched == before {
                continue;
            }
            let req = Request::Vouch {
                info_hash: hash,
                peers: now_vouched.clone(),
            };
            self.tracker_broadcast(now, &req);
            match now_vouched.is_empty() {
                true => self.vouched.remove(&hash),
                false => self.vouched.insert(hash, now_vouched),
            };
        }
    }

    /// A new session with tracker `i` hears what we vouch for (after the
    /// announces, as a vouch is only for a file announced).
    pub(super) fn vouch_to(&mut self, now: Time, i: TrackerId) {
        let all: Vec<(InfoHash, Vec<Vouched>)> =
            self.vouched.iter().map(|(h, v)| (*h, v.clone())).collect();
        for (info_hash, peers) in all {
            let req = Request::Vouch { info_hash, peers };
            self.tracker_send(now, i, &req, Pending::Update);
        }
    }
}
