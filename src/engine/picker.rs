//! Which blocks to ask a peer for: finish pieces already started, then
//! start the rarest piece the peer has (random among equally rare), and in
//! end-game ask a second peer for blocks still outstanding elsewhere.
//! The picker is the one owner of "which block is requested from whom":
//! by block (who fetches it) and by peer (what it owes us).
//! Pure bookkeeping: no sockets, no files.

use super::action::LinkId;
use crate::bitfield::Bitfield;
use crate::meta::Geometry;
use crate::rng::{RandomMin, Rng};
use crate::wire::peer::Block;
use std::collections::BTreeMap;
use std::time::Duration;

/// End-game asks a second peer for blocks only once what is still
/// outstanding would arrive within about this long at the download's
/// rate. All pieces are started long before on a slow download fed by
/// many fast peers (10 Mbit/s with dozens of seeders keeps megabytes
/// requested), and asking twice then only doubles what queues at its
/// link: 7 % of a 10 Mbit/s peer's bytes came twice in a simulated swarm
/// of 300.
pub const ENDGAME_TIME: Duration = Duration::from_secs(1);
/// End-game may begin with this many blocks outstanding, whatever the
/// rate (which lags behind a download that just began).
pub const ENDGAME_MIN_BLOCKS: usize = 64;

/// A piece being downloaded: which blocks arrived (they are written to
/// the `.part` file as they come) and who is fetching what.
#[derive(Debug)]
pub struct Partial {
    /// Peers each block is requested from (empty: not requested).
    requested: Vec<Vec<LinkId>>,
    received: Vec<bool>,
    pub received_count: u32,
    /// Blocks neither received nor requested from anyone: a piece with
    /// none is skipped at once outside end-game.
    unrequested: u32,
    /// Peers that sent blocks of this piece: the suspects if it fails.
    pub contributors: Vec<LinkId>,
}

impl Partial {
    fn new(blocks: u32) -> Partial {
        let blocks = blocks as usize;
        Partial {
            requested: vec![Vec::new(); blocks],
            received: vec![false; blocks],
            received_count: 0,
            unrequested: blocks as u32,
            contributors: Vec::new(),
        }
    }

    fn blocks(&self) -> u32 {
        self.received.len() as u32
    }

    pub fn is_complete(&self) -> bool {
        self.received_count == self.blocks()
    }
}

/// What happened to a received block.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// Stored; the piece still misses blocks.
    Stored,
    /// Stored, and the piece is complete: verify it. The other peers that
    /// had this block requested (end-game) should get a cancel.
    PieceComplete { cancel: Vec<LinkId> },
    /// Stored; other peers that had it requested should get a cancel.
    StoredCancel { cancel: Vec<LinkId> },
    /// Not a block we want (unrequested, duplicate, wrong size): dropped.
    Unwanted,
}

/// One peer asking for blocks of one piece, up to `max` in all.
struct Ask<'g> {
    geometry: &'g Geometry,
    peer: LinkId,
    piece: u32,
    max: usize,
    /// Blocks already requested elsewhere may be asked again (once).
    endgame: bool,
}

impl<'g> Ask<'g> {
    fn new(geometry: &'g Geometry, peer: LinkId, piece: u32, max: usize, endgame: bool) -> Self {
        Ask {
            geometry,
            peer,
            piece,
            max,
            endgame,
        }
    }

    /// Marks the chosen blocks of `part` requested by the peer, and adds
    /// them to what it owes and to `out`.
    fn take(&self, part: &mut Partial, owed: &mut Vec<Block>, out: &mut Vec<Block>) {
        for b in 0..part.blocks() {
            if out.len() >= self.max {
                break;
            }
            let i = b as usize;
            let asked = &part.requested[i];
            let free = match self.endgame {
                true => !asked.contains(&self.peer) && asked.len() < 2,
                false => asked.is_empty(),
            };
            let Some(begin) = Geometry::block_begin(b) else {
                break;
            };
            if part.received[i] || !free {
                continue;
            }
            if asked.is_empty() {
                part.unrequested = part.unrequested.saturating_sub(1);
            }
            part.requested[i].push(self.peer);
            let block = Block {
                index: self.piece,
                begin,
                length: self.geometry.block_len(self.piece, b),
            };
            owed.push(block);
            out.push(block);
        }
    }
}

pub struct Picker {
    geometry: Geometry,
    /// Connected peers holding each piece.
    availability: Vec<u32>,
    partials: BTreeMap<u32, Partial>,
    /// The keys of `partials`, for the scan of every piece in `rarest_new`.
    in_progress: Bitfield,
    /// Pieces complete in memory and handed to the hash pool.
    verifying: Bitfield,
    /// The blocks requested from each peer and not yet received.
    by_peer: BTreeMap<LinkId, Vec<Block>>,
    /// Bumped whenever `verifying` changes, so callers may remember
    /// [`Picker::interesting`] until it does.
    epoch: u64,
    /// Blocks outstanding at most when end-game may begin.
    endgame_budget: usize,
}

impl Picker {
    pub fn new(geometry: Geometry) -> Picker {
        let pieces = geometry.num_pieces();
        Picker {
            geometry,
            availability: vec![0; pieces as usize],
            partials: BTreeMap::new(),
            in_progress: Bitfield::new(pieces),
            verifying: Bitfield::new(pieces),
            by_peer: BTreeMap::new(),
            epoch: 0,
            endgame_budget: ENDGAME_MIN_BLOCKS,
        }
    }

    /// The download's rate (bytes per second), which sizes end-game's
    /// start (see [`ENDGAME_TIME`]).
    pub fn set_download_rate(&mut self, rate: u64) {
        let blocks =
            rate as f64 * ENDGAME_TIME.as_secs_f64() / f64::from(crate::limits::BLOCK_SIZE);
        self.endgame_budget = (blocks as usize).max(ENDGAME_MIN_BLOCKS);
    }

    /// Changes whenever the answer of [`Picker::interesting`] may change
    /// for the same `have` and `theirs`.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Blocks requested from `peer` and not yet received.
    pub fn in_flight(&self, peer: LinkId) -> usize {
        self.by_peer.get(&peer).map_or(0, Vec::len)
    }

    fn pieces(&self) -> u32 {
        self.availability.len() as u32
    }

    /// A peer's pieces became known (bitfield, have-all): count them.
    pub fn add_peer_pieces(&mut self, theirs: &Bitfield) {
        for i in theirs.ones() {
            self.availability[i as usize] += 1;
        }
    }

    pub fn remove_peer_pieces(&mut self, theirs: &Bitfield) {
        for i in theirs.ones() {
            let a = &mut self.availability[i as usize];
            *a = a.saturating_sub(1);
        }
    }

    pub fn add_have(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// Connected peers holding `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0)
    }

    /// Pieces that no connected peer has and we still miss.
    pub fn unavailable(&self, have: &Bitfield) -> u32 {
        (0..self.pieces())
            .filter(|&p| !have.get(p) && self.availability[p as usize] == 0)
            .count() as u32
    }

    /// Whether `theirs` has a piece we still need.
    pub fn interesting(&self, have: &Bitfield, theirs: &Bitfield) -> bool {
        theirs.has_any_outside(have, &self.verifying)
    }

    /// Chooses up to `max` blocks to request from `peer`, which holds
    /// `theirs`, and marks them requested by it.
    pub fn pick(
        &mut self,
        peer: LinkId,
        theirs: &Bitfield,
        have: &Bitfield,
        max: usize,
        rng: &mut Rng,
    ) -> Vec<Block> {
        let mut out = Vec::new();
        let owed = self.by_peer.entry(peer).or_default();
        // 1. Blocks nobody has been asked for, in pieces already started.
        for (&p, part) in self.partials.iter_mut() {
            if out.len() >= max {
                break;
            }
            if part.unrequested > 0 && theirs.get(p) {
                let ask = Ask::new(&self.geometry, peer, p, max, false);
                ask.take(part, owed, &mut out);
            }
        }
        // 2. New pieces, rarest first.
        while out.len() < max {
            let Some(p) = self.rarest_new(theirs, have, rng) else {
                break;
            };
            let part = self
                .partials
                .entry(p)
                .or_insert_with(|| Partial::new(self.geometry.blocks_in(p)));
            self.in_progress.set(p);
            let owed = self.by_peer.entry(peer).or_default();
            Ask::new(&self.geometry, peer, p, max, false).take(part, owed, &mut out);
        }
        // 3. End-game: every missing piece is started and every missing
        //    block requested somewhere; ask this peer too for blocks it is
        //    not already fetching. Not before: a peer that holds only
        //    pieces others are fetching waits rather than duplicate them.
        let idle = self.by_peer.get(&peer).is_none_or(Vec::is_empty);
        if out.is_empty() && idle && self.endgame(have) {
            let owed = self.by_peer.entry(peer).or_default();
            for (&p, part) in self.partials.iter_mut() {
                if out.len() < max && theirs.get(p) {
                    Ask::new(&self.geometry, peer, p, max, true).take(part, owed, &mut out);
                }
            }
        }
        if self.by_peer.get(&peer).is_some_and(Vec::is_empty) {
            self.by_peer.remove(&peer);
        }
        out
    }

    /// No missing piece is left to start, and what is outstanding is
    /// about to arrive anyway.
    fn endgame(&self, have: &Bitfield) -> bool {
        let busy = have.count() + self.verifying.count() + self.in_progress.count();
        busy >= self.pieces()
            && self.by_peer.values().map(Vec::len).sum::<usize>() <= self.endgame_budget
    }

    fn rarest_new(&self, theirs: &Bitfield, have: &Bitfield, rng: &mut Rng) -> Option<u32> {
        // Random among equally rare pieces.
        let mut best = RandomMin::new();
        for p in 0..self.pieces() {
            if !theirs.get(p) || have.get(p) || self.verifying.get(p) || self.in_progress.get(p) {
                continue;
            }
            best.offer(self.availability[p as usize], p, rng);
        }
        best.take()
    }

    /// Records a block of `len` bytes received from `peer`. Anything but
    /// [`Received::Unwanted`] means the caller must store its bytes: the
    /// block was requested from that peer and has not arrived before, so a
    /// late or duplicate copy never overwrites data already accepted.
    pub fn receive(&mut self, peer: LinkId, piece: u32, begin: u32, len: usize) -> Received {
        let block = Block {
            index: piece,
            begin,
            length: len as u32,
        };
        if !self.forget_request(peer, &block) {
            return Received::Unwanted; // after a cancel or a choke: harmless
        }
        let Some(part) = self.partials.get_mut(&piece) else {
            return Received::Unwanted;
        };
        let Some(b) = Geometry::block_at(begin) else {
            return Received::Unwanted;
        };
        let expected = self.geometry.block_len(piece, b) as usize;
        let b = b as usize;
        if b >= part.received.len() || part.received[b] {
            return Received::Unwanted;
        }
        if len != expected || !part.requested[b].contains(&peer) {
            return Received::Unwanted;
        }
        part.received[b] = true;
        part.received_count += 1;
        if !part.contributors.contains(&peer) {
            part.contributors.push(peer);
        }
        let cancel: Vec<LinkId> = std::mem::take(&mut part.requested[b])
            .into_iter()
            .filter(|&c| c != peer)
            .collect();
        let complete = part.is_complete();
        for &c in &cancel {
            self.forget_request(c, &block);
        }
        if complete {
            Received::PieceComplete { cancel }
        } else if cancel.is_empty() {
            Received::Stored
        } else {
            Received::StoredCancel { cancel }
        }
    }

    /// Takes a complete piece out for verification.
    pub fn take_complete(&mut self, piece: u32) -> Option<Partial> {
        if !self.partials.get(&piece)?.is_complete() {
            return None;
        }
        self.verifying.set(piece);
        self.epoch += 1;
        self.in_progress.clear(piece);
        self.partials.remove(&piece)
    }

    /// Verification finished (either way): the piece may be picked again
    /// if it failed.
    pub fn verified(&mut self, piece: u32) {
        self.verifying.clear(piece);
        self.epoch += 1;
    }

    /// Drops `block` from what `peer` owes us; false if it did not.
    fn forget_request(&mut self, peer: LinkId, block: &Block) -> bool {
        let Some(owed) = self.by_peer.get_mut(&peer) else {
            return false;
        };
        let Some(i) = owed.iter().position(|b| b == block) else {
            return false;
        };
        owed.swap_remove(i);
        if owed.is_empty() {
            self.by_peer.remove(&peer);
        }
        true
    }

    /// Every request to `peer` will go unanswered (it choked us or left):
    /// its blocks become free for others.
    pub fn release_all(&mut self, peer: LinkId) {
        for block in self.by_peer.remove(&peer).unwrap_or_default() {
            self.release_block(peer, &block);
        }
    }

    /// A request to `peer` will not be answered (a reject): the block
    /// becomes free for others. False when we never asked `peer` for it.
    pub fn release(&mut self, peer: LinkId, block: &Block) -> bool {
        let asked = self.forget_request(peer, block);
        if asked {
            self.release_block(peer, block);
        }
        asked
    }

    fn release_block(&mut self, peer: LinkId, block: &Block) {
        if let Some(part) = self.partials.get_mut(&block.index)
            && let Some(b) = Geometry::block_at(block.begin)
            && let Some(asked) = part.requested.get_mut(b as usize)
            && asked.contains(&peer)
        {
            asked.retain(|&c| c != peer);
            if asked.is_empty() && !part.received[b as usize] {
                part.unrequested += 1;
            }
        }
    }

    /// Forgets every piece in progress, as after a failed write: blocks
    /// counted as received may not be on disk, so each piece is fetched
    /// again whole.
    pub fn drop_partials(&mut self) {
        self.partials.clear();
        self.by_peer.clear();
        self.in_progress = Bitfield::new(self.pieces());
    }

    /// Pieces in progress with no block received or requested are
    /// dropped: nothing of them is on disk, and rarest-first may choose
    /// another piece when a peer asks again.
    pub fn forget_idle_partials(&mut self) {
        let in_progress = &mut self.in_progress;
        self.partials.retain(|&piece, p| {
            let keep = p.received_count > 0 || p.requested.iter().any(|r| !r.is_empty());
            if !keep {
                in_progress.clear(piece);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::BLOCK_SIZE;

    const PL: u32 = 4 * BLOCK_SIZE;

    fn picker(pieces: u32) -> Picker {
        Picker::new(Geometry::new(PL, u64::from(pieces) * u64::from(PL) - 100))
    }

    #[test]
    fn rarest_piece_first_and_blocks_cover_it() {
        let mut p = picker(4);
        let all = Bitfield::full(4);
        // Three peers; piece 2 is held by only two of them.
        let mut most = Bitfield::full(4);
        most.clear(2);
        p.add_peer_pieces(&all);
        p.add_peer_pieces(&all);
        p.add_peer_pieces(&most);
        let have = Bitfield::new(4);
        let blocks = p.pick(1, &all, &have, 4, &mut Rng::new(1));
        assert_eq!(blocks.len(), 4);
        assert!(blocks.iter().all(|b| b.index == 2));
        // The last piece is short: its last block is too.
        let blocks = p.pick(1, &all, &have, 100, &mut Rng::new(1));
        let last: Vec<_> = blocks.iter().filter(|b| b.index == 3).collect();
        assert_eq!(last.len(), 4);
        assert_eq!(last[3].length, BLOCK_SIZE - 100);
    }

    #[test]
    fn endgame_waits_until_what_is_outstanding_is_about_to_arrive() {
        // 20 pieces of 4 blocks: 80 outstanding at one peer, more than
        // the floor of 64, so a second peer is not asked for them yet.
        let mut p = picker(20);
        let all = Bitfield::full(20);
        let have = Bitfield::new(20);
        assert_eq!(p.pick(1, &all, &have, 100, &mut Rng::new(1)).len(), 80);
        p.set_download_rate(0);
        assert!(p.pick(2, &all, &have, 100, &mut Rng::new(1)).is_empty());
        // 16 blocks arrive: 64 left, and end-game begins.
        let full = BLOCK_SIZE as usize;
        for piece in 0..4 {
            for b in 0..4 {
                p.receive(1, piece, b * BLOCK_SIZE, full);
            }
        }
        assert_eq!(p.pick(2, &all, &have, 100, &mut Rng::new(1)).len(), 64);
        // A download fast enough to bring in 80 blocks within
        // ENDGAME_TIME enters end-game with all 80 outstanding.
        let mut p = picker(20);
        assert_eq!(p.pick(1, &all, &have, 100, &mut Rng::new(1)).len(), 80);
        p.set_download_rate(u64::from(BLOCK_SIZE) * 80);
        assert_eq!(p.pick(2, &all, &have, 100, &mut Rng::new(1)).len(), 80);
    }

    #[test]
    fn endgame_doubles_requests_and_completion_cancels() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let have = Bitfield::new(1);
        let first = p.pick(1, &all, &have, 10, &mut Rng::new(1));
        assert_eq!(first.len(), 4);
        let second = p.pick(2, &all, &have, 10, &mut Rng::new(1));
        assert_eq!(second.len(), 4, "end-game asks a second peer");
        assert!(p.pick(2, &all, &have, 10, &mut Rng::new(1)).is_empty());
        let full = BLOCK_SIZE as usize;
        assert_eq!(
            p.receive(1, 0, 0, full),
            Received::StoredCancel { cancel: vec![2] }
        );
        assert_eq!(p.receive(2, 0, 0, full), Received::Unwanted);
        assert_eq!(p.receive(2, 0, BLOCK_SIZE, 5), Received::Unwanted);
        for b in 1..3 {
            p.receive(2, 0, b * BLOCK_SIZE, full);
        }
        assert_eq!(
            p.receive(1, 0, 3 * BLOCK_SIZE, full - 100),
            Received::PieceComplete { cancel: vec![2] }
        );
        let part = p.take_complete(0).unwrap();
        assert_eq!(part.contributors, vec![1, 2]);
        assert!(
            !p.interesting(&have, &all),
            "a piece being verified is not wanted twice"
        );
        p.verified(0);
        assert!(p.interesting(&have, &all));
    }

    #[test]
    fn a_forgotten_idle_piece_can_be_started_again() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let have = Bitfield::new(1);
        let blocks = p.pick(1, &all, &have, 4, &mut Rng::new(1));
        for b in &blocks {
            p.release(1, b);
        }
        p.forget_idle_partials();
        assert_eq!(p.pick(2, &all, &have, 4, &mut Rng::new(1)), blocks);
    }

    #[test]
    fn released_blocks_go_to_another_peer() {
        let mut p = picker(1);
        let all = Bitfield::full(1);
        let have = Bitfield::new(1);
        let blocks = p.pick(1, &all, &have, 2, &mut Rng::new(1));
        for b in &blocks {
            p.release(1, b);
        }
        let again = p.pick(2, &all, &have, 2, &mut Rng::new(1));
        assert_eq!(again, blocks);
    }

    #[test]
    fn the_picker_knows_what_each_peer_owes() {
        let mut p = picker(2);
        let all = Bitfield::full(2);
        let have = Bitfield::new(2);
        let a = p.pick(1, &all, &have, 3, &mut Rng::new(1));
        assert_eq!(p.in_flight(1), 3);
        let got = |b: &Block| (b.index, b.begin, b.length as usize);
        let (i, at, len) = got(&a[0]);
        assert_eq!(p.receive(1, i, at, len), Received::Stored);
        assert_eq!(p.in_flight(1), 2);
        let (i, at, len) = got(&a[1]);
        assert_eq!(
            p.receive(3, i, at, len),
            Received::Unwanted,
            "not asked of 3"
        );
        p.release_all(1);
        assert_eq!(p.in_flight(1), 0);
        assert_eq!(p.pick(2, &all, &have, 2, &mut Rng::new(1)), a[1..3]);
    }
}
