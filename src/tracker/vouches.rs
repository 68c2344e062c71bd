//! BitTorrent peers that STA sessions vouch for: ones they dialed and are
//! connected to. A BitTorrent client announces to one tracker at a time
//! (BEP 12), so when several trackers serve a swarm, only one of them
//! knows it; the STA peers connected to it tell the others, and those
//! give it to STA peers asking for peers. Like everything a session
//! says, a vouch lives as long as the session (and until the session
//! vouches again for that file, or leaves it), so there is no clock and
//! no stale entry once the peer is gone: nobody is connected to it any
//! more. Vouched peers go only to STA sessions, never to BitTorrent
//! clients, so a session cannot make the tracker send BitTorrent clients
//! to an address of its choosing.

use super::catalog::ConnHash;
use crate::limits::MAX_VOUCHED_PER_FILE;
use crate::reactor::ConnId;
use crate::wire::tracker::{InfoHash, Vouched};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub struct Vouches {
    /// Each file's vouched peers, with the session that vouched.
    by_file: HashMap<InfoHash, Vec<(ConnId, Vouched)>>,
    /// The files each session vouched for.
    by_conn: HashMap<ConnId, Vec<InfoHash>, ConnHash>,
}

impl Vouches {
    /// `conn` now vouches for `peers` of `hash`, instead of what it
    /// vouched for before. Past `MAX_VOUCHED_PER_FILE` for the file, the
    /// rest is dropped.
    pub fn set(&mut self, conn: ConnId, hash: InfoHash, peers: &[Vouched]) {
        self.drop(conn, &hash);
        if peers.is_empty() {
            return;
        }
        let list = self.by_file.entry(hash).or_default();
        let room = MAX_VOUCHED_PER_FILE.saturating_sub(list.len());
        list.extend(peers.iter().take(room).map(|&p| (conn, p)));
        self.by_conn.entry(conn).or_default().push(hash);
    }

    /// What `conn` vouched for `hash` goes (it left the file).
    pub fn drop(&mut self, conn: ConnId, hash: &InfoHash) {
        let Some(files) = self.by_conn.get_mut(&conn) else {
            return;
        };
        let Some(at) = files.iter().position(|h| h == hash) else {
            return;
        };
        files.swap_remove(at);
        if files.is_empty() {
            self.by_conn.remove(&conn);
        }
        if let Some(list) = self.by_file.get_mut(hash) {
            list.retain(|(c, _)| *c != conn);
            if list.is_empty() {
                self.by_file.remove(hash);
            }
        }
    }

    /// Everything `conn` vouched for goes (its session ended).
    pub fn drop_conn(&mut self, conn: ConnId) {
        for hash in self.by_conn.remove(&conn).unwrap_or_default() {
            if let Some(list) = self.by_file.get_mut(&hash) {
                list.retain(|(c, _)| *c != conn);
                if list.is_empty() {
                    self.by_file.remove(&hash);
                }
            }
        }
    }

    /// The distinct peers vouched for `hash` by sessions other than
    /// `asker`, that `keep` accepts, into `out` (cleared first).
    pub fn candidates(
        &self,
        hash: &InfoHash,
        asker: ConnId,
        keep: impl Fn(&Vouched) -> bool,
        out: &mut Vec<Vouched>,
    ) {
        out.clear();
        let Some(list) = self.by_file.get(hash) else {
            return;
        };
        for (conn, p) in list {
            // Lists are short (a few BitTorrent peers per file): a linear
            // duplicate check costs less than a set.
            if *conn != asker && keep(p) && !out.iter().any(|o| o.addr == p.addr) {
                out.push(*p);
            }
        }
    }

    /// Vouched peers held, over all files (with repeats).
    pub fn len(&self) -> usize {
        self.by_file.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_file.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8, seeder: bool) -> Vouched {
        Vouched {
            peer_id: [last; 20],
            addr: format!("10.0.0.{last}:6881").parse().unwrap(),
            seeder,
        }
    }

    #[test]
    fn a_vouch_replaces_the_last_and_dies_with_its_session() {
        let mut v = Vouches::default();
        let (h, a, b) = ([1; 20], 1, 2);
        v.set(a, h, &[peer(1, true), peer(2, false)]);
        v.set(b, h, &[peer(2, false), peer(3, true)]);
        let mut out = Vec::new();
        v.candidates(&h, 9, |_| true, &mut out);
        let addrs: Vec<u8> = out.iter().map(|p| p.peer_id[0]).collect();
        assert_eq!(addrs, [1, 2, 3], "distinct addresses");
        v.candidates(&h, a, |_| true, &mut out);
        assert_eq!(out.len(), 2, "not given back its own");
        v.candidates(&h, 9, |p| p.seeder, &mut out);
        assert_eq!(out.len(), 2);
        v.set(a, h, &[]);
        v.candidates(&h, 9, |_| true, &mut out);
        assert_eq!(out.len(), 2);
        v.drop_conn(b);
        v.candidates(&h, 9, |_| true, &mut out);
        assert!(out.is_empty());
        assert!(v.is_empty() && v.by_conn.is_empty());
    }

    #[test]
    fn a_file_holds_at_most_its_limit() {
        let mut v = Vouches::default();
        let h = [1; 20];
        let many: Vec<Vouched> = (0..50).map(|i| peer(i, false)).collect();
        for c in 0..30 {
            v.set(c, h, &many);
        }
        assert_eq!(v.len(), MAX_VOUCHED_PER_FILE);
        v.drop(0, &h);
        assert_eq!(v.len(), MAX_VOUCHED_PER_FILE - 50);
    }
}
