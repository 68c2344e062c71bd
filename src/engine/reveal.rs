//! What a seed shows each peer. A seed that announced every piece would
//! let its leechers pick freely, and two of them often fetch the same piece
//! from it at once (neither knows what the other started). Instead a seed
//! tells each peer of a few pieces at a time (`have` messages after a
//! `have none`, as BEP 16 super-seeding does): pieces it never showed
//! anyone first, then those the fewest peers hold, and shows another as
//! soon as the peer starts fetching one or gets it elsewhere. So each
//! piece leaves the seed once before any leaves it twice, and the leechers
//! pass them among themselves.
//!
//! Pure bookkeeping: no sockets, no files. The owner of "which pieces did
//! we show whom".

use super::action::LinkId;
use super::time::Time;
use crate::bitfield::Bitfield;
use crate::meta::Geometry;
use crate::rng::{RandomMin, Rng};
use std::collections::BTreeMap;
use std::time::Duration;

/// Bytes a peer should be able to request from us before it hears of
/// another piece: the requests it keeps in flight, with room to spare, so
/// a fast peer never idles waiting for a `have`.
const AHEAD_BYTES: u64 = 2 * 1024 * 1024;
/// Pieces shown and not yet started, per peer, at least.
const MIN_AHEAD: usize = 2;
/// A piece shown once is shown again only to a peer that asked us for
/// nothing for this long: it has nothing else to fetch from us, so our
/// upload would go idle. Sooner, second copies go out while first copies
/// still wait in the sockets' queues; later, a seed faster than its
/// leechers idles while they lack pieces. Simulated, the seed's upload
/// with 4 leechers of 16 MiB at 50 Mbit/s (the CI test, which fails above
/// 1.3 x F), and the last finish with 5 leechers, the seed and 2 of them at
/// 100 Mbit/s, 3 at 20: at 0.6 s, 1.10-1.15 x F (1.12-1.28 on namespaces)
/// and 2.2-2.3 x F/u; at 1 s, 1.00-1.08 x F and 2.4-2.5 x F/u; at 3 s,
/// 1.000 x F and 2.8 x F/u. (Also waiting until every piece left us once
/// made the first F all distinct, but 1,000 peers then finished in 1.63 x
/// the bound instead of 1.41.)
const IDLE: Duration = Duration::from_secs(1);
/// A piece shown this long ago and never asked for is taken as got
/// elsewhere: some clients send no `have` to a peer that has the piece.
/// It makes room for another, and may be shown to others first.
const STALE: Duration = Duration::from_secs(30);
/// How long a seed's second copies wait for first copies that neither
/// start nor leave (a peer that stopped reading, say).
const FIRSTS_PATIENCE: Duration = Duration::from_millis(500);
/// How long they wait, stalled, while a piece never asked of us is shown
/// to a peer that has not asked for it yet: one whose requests are all
/// taken by second copies, turned away after `FIRSTS_PATIENCE` so that it
/// asks for the piece (see `wire::turn_seconds_away`). Second copies sent
/// meanwhile are copies a seed that leaves after one copy of the file
/// does not have to spare.
const UNASKED_PATIENCE: Duration = Duration::from_secs(5);
/// A peer that got pieces from us this long ago and passed none of them
/// on keeps them: their second copies are as needed as first copies.
const HOARD: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Reveal {
    /// For each piece, the peers it was shown to that have not got it
    /// elsewhere: the times it left (or will leave) this seed.
    shown: Vec<u32>,
    /// The sessions we reveal to, each with what it was shown.
    peers: BTreeMap<LinkId, Shown>,
    /// Who first asked us for each piece.
    first: Vec<Option<LinkId>>,
    /// Pieces some peer asked us for (the `Some`s of `first`).
    served: usize,
    /// For each piece, bytes of its first copy handed to the shell, and
    /// each piece's size: the pieces whose first copy is all handed.
    first_bytes: Vec<u32>,
    sizes: Geometry,
    whole_firsts: usize,
    /// When a first copy was last asked for or left us.
    firsts_moved: Time,
    ahead: usize,
}

/// What the seed knows of a peer when it tops up what it shows it.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// It told us it wants something we have.
    pub interested: bool,
    /// We let it ask (unchoked).
    pub unchoked: bool,
    /// No other peer of the file is interested in us.
    pub alone: bool,
}

#[derive(Debug)]
struct Shown {
    /// Every piece shown to the peer.
    all: Bitfield,
    /// Shown and neither requested nor announced by the peer yet, with
    /// when.
    waiting: Vec<(u32, Time)>,
    /// When the peer last asked us for a block (None: not yet, so it has
    /// nothing else to fetch from us).
    asked: Option<Time>,
    /// When it first did.
    first_asked: Option<Time>,
    /// Pieces taken back as stale: shown again once the peer has nothing
    /// else to fetch from us, in case it never got them after all.
    stale: Vec<u32>,
    /// Haves from other peers for pieces this one got first from us: how
    /// well it passes on what we send it.
    spread: u64,
    /// Pieces it asked us for first whose first copy is not all handed
    /// yet: until it asks for the rest, they leave us only partly.
    partial_firsts: u32,
    /// We choked it since it last asked us for a block: it cannot ask
    /// for the rest of those pieces now, so second copies do not wait.
    choked: bool,
    /// Pieces we sent it a `have` for: what it knows we hold.
    told: Bitfield,
}

impl Shown {
    /// Shown pieces it has not asked for yet.
    fn waits(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Whether the peer holds up a first copy: shown a piece never asked
    /// of us (`never_asked`) that it has not asked for yet, or it asked
    /// for part of a piece's first copy and not the rest (and may ask).
    fn holds_up_firsts(&self, never_asked: bool) -> bool {
        (never_asked && self.waits()) || (self.partial_firsts > 0 && !self.choked)
    }
}

impl Reveal {
    pub fn new(geometry: &Geometry) -> Reveal {
        let piece = u64::from(geometry.piece_length()).max(1);
        let ahead = (AHEAD_BYTES.div_ceil(piece) as usize).max(MIN_AHEAD);
        Reveal {
            shown: vec![0; geometry.num_pieces() as usize],
            peers: BTreeMap::new(),
            first: vec![None; geometry.num_pieces() as usize],
            served: 0,
            first_bytes: vec![0; geometry.num_pieces() as usize],
            sizes: *geometry,
            whole_firsts: 0,
            firsts_moved: Time::ZERO,
            ahead,
        }
    }

    /// Whether `link` sees only what we show it (else it was told of
    /// every piece we have).
    pub fn covers(&self, link: LinkId) -> bool {
        self.peers.contains_key(&link)
    }

    /// A session starts in which we seed: it will see only what we show.
    pub fn join(&mut self, link: LinkId) {
        let shown = Shown {
            all: Bitfield::new(self.shown.len() as u32),
            waiting: Vec::new(),
            asked: None,
            first_asked: None,
            stale: Vec::new(),
            spread: 0,
            partial_firsts: 0,
            choked: false,
            told: Bitfield::new(self.shown.len() as u32),
        };
        self.peers.insert(link, shown);
    }

    /// The session ended: what it was shown and never started may go to
    /// another peer first, and a piece whose first copy it was getting
    /// and did not get whole has no first copy yet (else the next peer's
    /// requests for it count as second copies, and wait for it).
    pub fn leave(&mut self, link: LinkId) {
        let Some(s) = self.peers.remove(&link) else {
            return;
        };
        for (p, _) in s.waiting {
            unshow(&mut self.shown, p);
        }
        for p in s.all.ones() {
            let i = p as usize;
            if self.first[i] == Some(link) && self.first_bytes[i] < self.sizes.piece_size(p) {
                self.first[i] = None;
                self.first_bytes[i] = 0;
                self.served -= 1;
            }
        }
    }

    /// We choked the peer: the pieces shown to it that it did not start
    /// go to others first (else they wait for it, and second copies with
    /// them, until it is unchoked again or they go stale), and the first
    /// copies it got part of hold no second copy back until it asks again.
    pub fn choked(&mut self, link: LinkId) {
        if let Some(s) = self.peers.get_mut(&link) {
            s.choked = true;
            for (p, _) in s.waiting.drain(..) {
                unshow(&mut self.shown, p);
            }
        }
    }

    /// How many haves other peers sent for pieces `link` got first from
    /// us (the choker's measure of a peer worth seeding).
    pub fn spread(&self, link: LinkId) -> u64 {
        self.peers.get(&link).map_or(0, |s| s.spread)
    }

    /// The peer asked for a block of `piece`: true when that made room for
    /// another piece to show it (so only then is a search worth it; this
    /// runs for every block served).
    pub fn requested(&mut self, link: LinkId, piece: u32, now: Time) -> bool {
        let mut first_asked = false;
        if let Some(first) = self.first.get_mut(piece as usize)
            && first.is_none()
        {
            *first = Some(link);
            self.served += 1;
            first_asked = true;
        }
        let Some(s) = self.peers.get_mut(&link) else {
            return false;
        };
        s.partial_firsts += u32::from(first_asked);
        s.choked = false;
        let before = s.waiting.len();
        s.waiting.retain(|&(p, _)| p != piece);
        s.all.set(piece);
        s.asked = Some(now);
        s.first_asked.get_or_insert(now);
        s.waiting.len() < before
    }

    /// `len` bytes of `piece`'s first copy go to the shell.
    pub fn first_handed(&mut self, piece: u32, len: u32) {
        let size = self.sizes.piece_size(piece);
        if let Some(b) = self.first_bytes.get_mut(piece as usize)
            && *b < size
        {
            *b = b.saturating_add(len);
            if *b >= size {
                self.whole_firsts += 1;
                if let Some(Some(first)) = self.first.get(piece as usize)
                    && let Some(s) = self.peers.get_mut(first)
                {
                    s.partial_firsts = s.partial_firsts.saturating_sub(1);
                }
            }
        }
    }

    /// A first copy was asked for, or (some of it) left us.
    pub fn firsts_moved(&mut self, now: Time) {
        self.firsts_moved = now;
    }

    /// Whether first copies made no progress for `FIRSTS_PATIENCE`.
    pub fn firsts_stalled(&self, now: Time) -> bool {
        now.since(self.firsts_moved) >= FIRSTS_PATIENCE
    }

    /// Whether second copies may stop waiting for first copies: those
    /// made no progress for `FIRSTS_PATIENCE`, or for `UNASKED_PATIENCE`
    /// while a peer holds one up (see [`Reveal::holds_up_firsts`]).
    /// Runs for every second copy a seed might send, so the scan of the
    /// peers is left for the stretch between the two patiences.
    pub fn seconds_released(&self, now: Time) -> bool {
        let idle = now.since(self.firsts_moved);
        if idle < FIRSTS_PATIENCE {
            return false;
        }
        idle >= UNASKED_PATIENCE
            || !self
                .peers
                .values()
                .any(|s| s.holds_up_firsts(self.some_never_asked()))
    }

    /// Whether some piece was never asked of us: its only copy is here.
    pub fn some_never_asked(&self) -> bool {
        self.served < self.first.len()
    }

    /// Whether `link` holds up a first copy: it was shown a piece never
    /// asked of us and has not asked for it yet, or it asked for part of
    /// a piece's first copy and not the rest. Either way its requests may
    /// all be taken by second copies that wait.
    pub fn holds_up_firsts(&self, link: LinkId) -> bool {
        self.peers
            .get(&link)
            .is_some_and(|s| s.holds_up_firsts(self.some_never_asked()))
    }

    /// Whether a first copy of every piece, all of it, went to the shell.
    pub fn all_handed_once(&self) -> bool {
        self.whole_firsts == self.first_bytes.len()
    }

    /// Whether a request of `link` for `piece` counts as the piece's
    /// first copy: `link` sees what we show and asked for it first, or the
    /// peer that did hoards what it gets (see [`HOARD`]).
    pub fn first_copy(&self, link: LinkId, piece: u32, now: Time) -> bool {
        let Some(&Some(first)) = self.first.get(piece as usize) else {
            return false;
        };
        self.peers.contains_key(&link) && (first == link || self.hoards(first, now))
    }

    fn hoards(&self, link: LinkId, now: Time) -> bool {
        self.peers
            .get(&link)
            .is_some_and(|s| s.spread == 0 && s.first_asked.is_some_and(|t| now.since(t) >= HOARD))
    }

    /// The peer holds `piece` (a `have`, or its bitfield): if we showed it
    /// and it never asked us, it did not come from here.
    pub fn announced(&mut self, link: LinkId, piece: u32) {
        if let Some(&Some(first)) = self.first.get(piece as usize)
            && first != link
            && let Some(f) = self.peers.get_mut(&first)
        {
            f.spread += 1;
        }
        let Some(s) = self.peers.get_mut(&link) else {
            return;
        };
        let before = s.waiting.len();
        s.waiting.retain(|&(p, _)| p != piece);
        s.all.set(piece);
        if s.waiting.len() < before {
            unshow(&mut self.shown, piece);
        }
    }

    /// Chooses pieces to show `link` until it has enough waiting: those
    /// shown to the fewest peers, then held by the fewest (`holders`),
    /// at random among equals. Returns the pieces to announce to it.
    ///
    /// Rationing pays only while peers can pass pieces among themselves,
    /// so a peer is shown everything it lacks at once when it is `alone`
    /// and every piece already left us once (a seed serving leechers one
    /// after another), or when it could ask (`unchoked`, or not
    /// `interested`) for [`IDLE`] and wanted none of what it was shown
    /// (a `get --only` of part of a tree, which picks its own pieces).
    /// An unchoked peer that is interested yet left its shown pieces alone
    /// gets them counted as not waiting, and is shown others.
    pub fn top_up(
        &mut self,
        link: LinkId,
        theirs: &Bitfield,
        holders: impl Fn(u32) -> u32,
        peer: Peer,
        now: Time,
        rng: &mut Rng,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        let everything_left = self.served == self.first.len();
        let Some(s) = self.peers.get_mut(&link) else {
            return out;
        };
        let could_ask = peer.unchoked || !peer.interested;
        let declined = could_ask
            && s.asked.is_none_or(|t| now.since(t) >= IDLE)
            && !s.waiting.is_empty()
            && s.waiting.iter().all(|&(_, at)| now.since(at) >= IDLE);
        if declined {
            for (p, _) in s.waiting.drain(..) {
                unshow(&mut self.shown, p);
            }
        }
        if (peer.alone && everything_left) || (declined && !peer.interested) {
            for p in 0..self.shown.len() as u32 {
                if !s.all.get(p) && !theirs.get(p) {
                    s.all.set(p);
                    out.push(p);
                    s.told.set(p);
                }
            }
            return out;
        }
        let (shown, stale) = (&mut self.shown, &mut s.stale);
        s.waiting.retain(|&(p, at)| {
            let old = now.since(at) >= STALE;
            if old {
                unshow(shown, p);
                stale.push(p);
            }
            !old
        });
        let idle = s.waiting.is_empty() && s.asked.is_none_or(|t| now.since(t) >= IDLE);
        while s.waiting.len() < self.ahead {
            let mut best = RandomMin::new();
            for p in 0..self.shown.len() as u32 {
                if s.all.get(p) || theirs.get(p) {
                    continue;
                }
                // Equals, the piece after one shown to it: its blocks
                // then follow on in the files (see `follows`).
                let key = (self.shown[p as usize], holders(p), !follows(&s.all, p));
                if key.0 == 0 || idle {
                    best.offer(key, p, rng);
                }
            }
            let Some(p) = best.take() else {
                // Shown everything it lacks; pieces taken back as stale
                // come again once nothing else is left for it.
                if idle && out.is_empty() && !s.stale.is_empty() {
                    for p in s.stale.drain(..) {
                        s.all.clear(p);
                    }
                    continue;
                }
                break;
            };
            s.all.set(p);
            s.waiting.push((p, now));
            self.shown[p as usize] += 1;
            out.push(p);
        }
        if !out.is_empty() {
            self.never_last_alone(link, theirs, now, &mut out);
        }
        out
    }

    /// libtorrent (2.0.8) drops a peer whose `have` makes it look like a
    /// seed while it wants nothing from it ("uninteresting upload-only
    /// peer"): it checks before it takes the new piece into its interest.
    /// That `have` is the last piece it lacks that we never told it of, and
    /// it goes alone to a peer that got all the others. So that piece is
    /// never left alone: when a batch would leave just one such piece, and
    /// the peer holds none we did not tell it of (else it never sees us as
    /// a seed), the batch takes it too, shown to another peer or not.
    fn never_last_alone(&mut self, link: LinkId, theirs: &Bitfield, now: Time, out: &mut Vec<u32>) {
        let Some(s) = self.peers.get_mut(&link) else {
            return;
        };
        for &p in out.iter() {
            s.told.set(p);
        }
        let mut last = None;
        for p in 0..self.shown.len() as u32 {
            if s.told.get(p) {
                continue;
            }
            if theirs.get(p) || last.is_some() {
                return;
            }
            last = Some(p);
        }
        if let Some(p) = last {
            s.told.set(p);
            s.all.set(p);
            s.waiting.push((p, now));
            self.shown[p as usize] += 1;
            out.push(p);
        }
    }
}

/// Whether piece `p` comes right after one of `pieces`. Among pieces
/// otherwise equal, a peer is shown runs of consecutive pieces rather
/// than pieces anywhere (so it fetches them so, whichever of the few
/// shown it picks): a small file across two pieces is then read and
/// written once, not once per piece at times apart (a seeder of 10,000
/// files read 2,021 of them twice, bench/dirs.sh), and a disk writes in
/// order. What it costs a swarm is within the simulator's spread between
/// seeds (1,000 leechers, seeds 1-4: 1.254-1.299 x bound against
/// 1.241-1.268; only for a peer alone: 1.301 and 1.277 for seeds 1 and
/// 2). The picker keeps random ties: runs there made leechers that hold
/// alike pieces pick alike ones (simulated (b) 1.366 -> 1.436).
pub fn follows(pieces: &Bitfield, p: u32) -> bool {
    p > 0 && pieces.get(p - 1)
}

/// A piece shown to a peer did not leave us for it after all.
fn unshow(shown: &mut [u32], piece: u32) {
    if let Some(n) = shown.get_mut(piece as usize) {
        *n = n.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::BLOCK_SIZE;

    /// An interested peer among others: unchoked, or not.
    const OPEN: Peer = Peer {
        interested: true,
        unchoked: true,
        alone: false,
    };
    const BUSY: Peer = Peer {
        interested: true,
        unchoked: false,
        alone: false,
    };

    fn reveal(pieces: u32) -> Reveal {
        // Pieces of 1 MiB: two shown ahead.
        let len = 64 * BLOCK_SIZE;
        Reveal::new(&Geometry::new(len, u64::from(pieces) * u64::from(len)))
    }

    /// `pieces` to show, and one more that the peers hold and we never
    /// tell them of: they never see us as a seed, so the last piece each
    /// lacks may go alone (see `Reveal::never_last_alone`).
    fn reveal_held(pieces: u32) -> (Reveal, Bitfield) {
        let mut held = Bitfield::new(pieces + 1);
        held.set(pieces);
        (reveal(pieces + 1), held)
    }

    #[test]
    fn the_last_piece_a_peer_lacks_never_goes_alone() {
        let mut r = reveal(3);
        let mut rng = Rng::new(2);
        r.join(1);
        let mut shown = r.top_up(1, &Bitfield::new(3), |_| 0, BUSY, Time::ZERO, &mut rng);
        shown.sort();
        assert_eq!(shown, [0, 1, 2], "two ahead, and the last with them");
        // Five pieces: two, then the last three together.
        let mut r = reveal(5);
        r.join(1);
        let none = Bitfield::new(5);
        let first = r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        assert_eq!(first.len(), 2);
        r.requested(1, first[0], Time::ZERO);
        r.requested(1, first[1], Time::ZERO);
        assert_eq!(
            r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng).len(),
            3
        );
        // A peer that holds a piece we never told it of gets two.
        let (mut r, held) = reveal_held(3);
        r.join(1);
        assert_eq!(
            r.top_up(1, &held, |_| 0, BUSY, Time::ZERO, &mut rng).len(),
            2
        );
    }

    #[test]
    fn each_piece_is_shown_once_before_any_twice() {
        let mut r = reveal(6);
        let none = Bitfield::new(6);
        let mut rng = Rng::new(7);
        let mut seen = Vec::new();
        for link in 1..=3 {
            r.join(link);
            let shown = r.top_up(link, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
            for &p in &shown {
                r.requested(link, p, Time::ZERO);
            }
            seen.extend(shown);
        }
        seen.sort();
        assert_eq!(seen, vec![0, 1, 2, 3, 4, 5], "three peers, two each");
        // A fourth peer gets pieces shown once, the one held by fewest.
        r.join(4);
        let holders = |p: u32| if p == 3 { 0 } else { 2 };
        let shown = r.top_up(4, &none, holders, BUSY, Time::ZERO, &mut rng);
        assert_eq!(shown[0], 3);
    }

    #[test]
    fn a_peer_is_shown_runs_of_consecutive_pieces() {
        let (mut r, held) = reveal_held(40);
        let mut rng = Rng::new(5);
        r.join(1);
        let mut shown = Vec::new();
        for _ in 0..10 {
            let more = r.top_up(1, &held, |_| 0, BUSY, Time::ZERO, &mut rng);
            for &p in &more {
                r.requested(1, p, Time::ZERO);
            }
            shown.extend(more);
        }
        assert_eq!(shown.len(), 20);
        // After a first piece at random, each follows the one before,
        // but for a run that reached the last piece.
        let jumps = shown.windows(2).filter(|w| w[1] != w[0] + 1).count();
        assert!(jumps <= 1, "{shown:?}");
        // A piece shown to nobody still comes before one after ours.
        r.join(2);
        let first = r.top_up(2, &held, |_| 0, BUSY, Time::ZERO, &mut rng);
        assert!(first.iter().all(|p| !shown.contains(p)), "{first:?}");
    }

    #[test]
    fn a_started_piece_makes_room_for_another() {
        let mut r = reveal(8);
        let none = Bitfield::new(8);
        let mut rng = Rng::new(1);
        r.join(1);
        let first = r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        assert_eq!(first.len(), 2);
        assert!(
            r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng)
                .is_empty(),
            "enough ahead"
        );
        r.requested(1, first[0], Time::ZERO);
        let next = r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        assert_eq!(next.len(), 1);
        assert!(!first.contains(&next[0]), "never shown twice to one peer");
    }

    #[test]
    fn pieces_got_elsewhere_or_left_behind_go_to_others_first() {
        let (mut r, none) = reveal_held(3);
        let mut rng = Rng::new(3);
        r.join(1);
        let a = r.top_up(1, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        // Peer 1 got a[0] from someone else: it never left us.
        r.announced(1, a[0]);
        r.join(2);
        let b = r.top_up(2, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        assert!(b.contains(&a[0]) && !b.contains(&a[1]));
        // Peer 2 leaves before asking: its pieces are unshown again.
        r.leave(2);
        r.join(3);
        let mut c = r.top_up(3, &none, |_| 0, BUSY, Time::ZERO, &mut rng);
        c.sort();
        let mut expect = b.clone();
        expect.sort();
        assert_eq!(c, expect);
    }

    #[test]
    fn a_peer_holding_everything_is_shown_nothing() {
        let mut r = reveal(3);
        r.join(1);
        assert!(
            r.top_up(
                1,
                &Bitfield::full(3),
                |_| 0,
                BUSY,
                Time::ZERO,
                &mut Rng::new(1)
            )
            .is_empty()
        );
        assert!(r.covers(1) && !r.covers(2));
    }

    fn at(ms: u64) -> Time {
        Time::from_micros(ms * 1000)
    }

    #[test]
    fn a_second_copy_goes_only_to_a_peer_that_asks_for_nothing_else() {
        let (mut r, none) = reveal_held(2);
        let mut rng = Rng::new(5);
        r.join(1);
        assert_eq!(r.top_up(1, &none, |_| 0, BUSY, at(0), &mut rng).len(), 2);
        r.join(2);
        r.requested(2, 0, at(0)); // unasked: it heard of piece 0 elsewhere
        assert!(
            r.top_up(2, &none, |_| 0, BUSY, at(700), &mut rng)
                .is_empty(),
            "both pieces went out once, and peer 2 asked 0.7 s ago: busy"
        );
        assert_eq!(r.top_up(2, &none, |_| 0, BUSY, at(1100), &mut rng), [1]);
    }

    #[test]
    fn a_piece_never_asked_for_is_taken_back_after_a_while() {
        let (mut r, none) = reveal_held(3);
        let mut rng = Rng::new(9);
        r.join(1);
        let first = r.top_up(1, &none, |_| 0, BUSY, at(0), &mut rng);
        r.requested(1, first[0], at(100));
        let third = r.top_up(1, &none, |_| 0, BUSY, at(100), &mut rng);
        assert_eq!(third.len(), 1);
        // Thirty seconds on, first[1] and third[0] were never asked for by
        // peer 1: peer 2, which asks for third[0] by itself, is shown
        // first[1] as a piece that never left us.
        r.join(2);
        r.requested(2, third[0], at(30_500)); // busy: no second copies
        r.requested(1, first[0], at(30_500)); // busy too: nothing back yet
        r.top_up(1, &none, |_| 0, BUSY, at(30_500), &mut rng);
        let shown = r.top_up(2, &none, |_| 0, BUSY, at(30_500), &mut rng);
        assert_eq!(shown, [first[1]]);
    }

    #[test]
    fn pieces_an_unchoked_peer_leaves_alone_make_room_for_others() {
        // A `get --only` peer wants none of the two pieces it was shown.
        let mut r = reveal(6);
        let none = Bitfield::new(6);
        let mut rng = Rng::new(4);
        r.join(1);
        let first = r.top_up(1, &none, |_| 0, OPEN, at(0), &mut rng);
        assert_eq!(first.len(), 2);
        assert!(
            r.top_up(1, &none, |_| 0, BUSY, at(1500), &mut rng)
                .is_empty(),
            "choked and interested: it could not ask, so they still wait"
        );
        let next = r.top_up(1, &none, |_| 0, OPEN, at(1500), &mut rng);
        assert_eq!(next.len(), 2, "unchoked, it asked for neither in 1 s");
        assert!(next.iter().all(|p| !first.contains(p)), "never shown twice");
        // The declined pieces count as never sent: others get them first.
        r.join(2);
        let other = r.top_up(2, &none, |_| 0, OPEN, at(1500), &mut rng);
        assert!(
            other.iter().all(|p| !next.contains(p)),
            "{other:?} vs {next:?}"
        );
    }

    #[test]
    fn a_peer_alone_after_every_piece_left_once_is_shown_everything() {
        let mut r = reveal(6);
        let none = Bitfield::new(6);
        let mut rng = Rng::new(2);
        let alone = Peer {
            alone: true,
            ..OPEN
        };
        r.join(1);
        assert_eq!(
            r.top_up(1, &none, |_| 0, alone, at(0), &mut rng).len(),
            2,
            "the first leecher is rationed: no piece left us yet"
        );
        for p in 0..6 {
            r.requested(1, p, at(0));
        }
        r.join(2);
        let mut all = r.top_up(2, &none, |_| 1, alone, at(10), &mut rng);
        all.sort();
        assert_eq!(all, [0, 1, 2, 3, 4, 5], "the next one, alone, sees all");
    }

    #[test]
    fn a_peer_that_wants_none_of_what_it_was_shown_is_shown_everything() {
        let mut r = reveal(6);
        let none = Bitfield::new(6);
        let mut rng = Rng::new(8);
        let uninterested = Peer {
            interested: false,
            ..BUSY
        };
        r.join(1);
        let first = r.top_up(1, &none, |_| 0, uninterested, at(0), &mut rng);
        assert_eq!(first.len(), 2);
        let rest = r.top_up(1, &none, |_| 0, uninterested, at(1100), &mut rng);
        assert_eq!(rest.len(), 4, "the other four, at once: it picks its own");
    }

    #[test]
    fn a_peer_that_passes_pieces_on_is_credited() {
        let mut r = reveal(4);
        let none = Bitfield::new(4);
        let mut rng = Rng::new(1);
        r.join(1);
        r.join(2);
        let shown = r.top_up(1, &none, |_| 0, BUSY, at(0), &mut rng);
        r.requested(1, shown[0], at(0));
        r.announced(2, shown[0]); // 2 got it, from 1 or its relays
        r.announced(1, shown[0]); // 1's own have is no spread
        assert_eq!((r.spread(1), r.spread(2)), (1, 0));
    }

    #[test]
    fn a_piece_taken_back_is_shown_again_once_the_peer_has_nothing_else() {
        // The only leecher, choked for a while: it must still get every piece.
        let mut r = reveal(2);
        let none = Bitfield::new(2);
        let mut rng = Rng::new(2);
        r.join(1);
        assert_eq!(r.top_up(1, &none, |_| 0, BUSY, at(0), &mut rng).len(), 2);
        r.requested(1, 0, at(31_000));
        // Piece 1 went stale at 30 s; peer 1 is busy with piece 0.
        assert!(
            r.top_up(1, &none, |_| 0, BUSY, at(31_000), &mut rng)
                .is_empty()
        );
        assert_eq!(r.top_up(1, &none, |_| 0, BUSY, at(32_500), &mut rng), [1]);
    }

    #[test]
    fn a_second_copy_counts_as_first_once_the_first_getter_hoards() {
        let mut r = reveal(4);
        r.join(1);
        r.join(2);
        let t0 = Time::ZERO;
        r.requested(1, 0, t0);
        assert!(r.first_copy(1, 0, t0));
        assert!(!r.first_copy(2, 0, t0));
        // Peer 1 passed nothing on for HOARD: its pieces are needed again.
        assert!(r.first_copy(2, 0, t0 + HOARD));
        // Once another peer announces a piece it got from 1, 1 spreads.
        r.join(3);
        r.announced(3, 0);
        assert!(!r.first_copy(2, 0, t0 + HOARD));
    }

    #[test]
    fn every_piece_counts_as_sent_once_when_all_its_first_copy_was_handed() {
        let mut r = reveal(2);
        let piece = 64 * BLOCK_SIZE;
        r.first_handed(0, piece);
        r.first_handed(1, piece - 1);
        assert!(!r.all_handed_once());
        r.first_handed(1, 1);
        assert!(r.all_handed_once());
    }

    #[test]
    fn a_first_copy_cut_short_by_its_peer_leaving_is_first_again() {
        let mut r = reveal(2);
        let t0 = at(0);
        let piece = 64 * BLOCK_SIZE;
        r.join(1);
        r.join(2);
        r.requested(1, 0, t0);
        r.requested(1, 1, t0);
        r.first_handed(0, piece);
        r.first_handed(1, piece / 2);
        r.leave(1);
        // Piece 0 left whole: another copy is a second one. Piece 1 did
        // not: the next asker gets its first copy, from the start.
        assert!(!r.first_copy(2, 0, t0));
        r.requested(2, 1, t0);
        assert!(r.first_copy(2, 1, t0));
        r.first_handed(1, piece / 2);
        assert!(!r.all_handed_once());
        r.first_handed(1, piece / 2);
        assert!(r.all_handed_once());
    }

    #[test]
    fn a_peer_that_asked_for_part_of_a_first_copy_holds_it_up_until_all_of_it_is_handed() {
        let mut r = reveal(2);
        let piece = 64 * BLOCK_SIZE;
        let t0 = at(0);
        r.join(1);
        r.join(2);
        r.requested(1, 0, t0);
        r.first_handed(0, piece / 2);
        assert!(r.holds_up_firsts(1), "half of piece 0 left us");
        assert!(!r.holds_up_firsts(2));
        // Choked, it cannot ask for the rest until it is unchoked (its
        // next request says so).
        r.choked(1);
        assert!(!r.holds_up_firsts(1));
        r.requested(1, 0, t0);
        assert!(r.holds_up_firsts(1));
        // Peer 2 asking for piece 0 now gets a second copy: 1 still owes.
        r.requested(2, 0, t0);
        assert!(!r.holds_up_firsts(2));
        r.first_handed(0, piece / 2);
        assert!(!r.holds_up_firsts(1), "all of piece 0 left us");
        // A peer that leaves holds up nothing, and its part is forgotten.
        r.requested(2, 1, t0);
        r.first_handed(1, BLOCK_SIZE);
        assert!(r.holds_up_firsts(2));
        r.leave(2);
        assert!(!r.holds_up_firsts(2) && r.some_never_asked());
    }

    #[test]
    fn second_copies_wait_longer_while_a_piece_never_asked_is_shown_to_a_peer_yet_to_ask() {
        let mut r = reveal(3);
        let none = Bitfield::new(3);
        let mut rng = Rng::new(3);
        let t0 = at(0);
        r.join(1);
        r.join(2);
        r.requested(1, 0, t0);
        r.requested(1, 1, t0);
        let piece = 64 * BLOCK_SIZE;
        r.first_handed(0, piece);
        r.first_handed(1, piece);
        r.firsts_moved(t0);
        let half = t0 + FIRSTS_PATIENCE;
        // Piece 2, never asked for, is shown to no one: the usual patience.
        assert!(r.some_never_asked());
        assert!(r.firsts_stalled(half) && r.seconds_released(half));
        // Shown to peer 2, which has not asked for it: they wait longer.
        let shown = r.top_up(2, &none, |_| 1, BUSY, t0, &mut rng);
        assert!(shown.contains(&2));
        assert!(r.holds_up_firsts(2));
        assert!(r.firsts_stalled(half) && !r.seconds_released(half));
        assert!(r.seconds_released(t0 + UNASKED_PATIENCE));
        // Once asked, no piece is left that only we have; while its first
        // copy has not all left us, its asker still holds it up.
        r.requested(2, 2, t0);
        assert!(!r.some_never_asked());
        assert!(!r.seconds_released(half));
        r.first_handed(2, piece);
        assert!(r.seconds_released(half));
    }
}
