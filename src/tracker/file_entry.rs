//! One file of the catalog and its holders, laid out for a fleet: a holder
//! is 12 bytes in one vector per file, and only holders with part of the
//! file keep a bitfield (in one block of memory per file). A seeder's
//! pieces need no bits. Sessions and their positions in these vectors are
//! the catalog's (see `catalog.rs`).

use crate::bitfield::Bitfield;
use crate::meta::Info;
use std::sync::Arc;

/// What one session holds of one file, as announced.
#[derive(Debug, Clone)]
pub enum Holding {
    All,
    Some(Bitfield),
}

impl Holding {
    pub fn has(&self, piece: u32) -> bool {
        match self {
            Holding::All => true,
            Holding::Some(bits) => bits.get(piece),
        }
    }

    pub fn bits(&self) -> Option<&[u8]> {
        match self {
            Holding::All => None,
            Holding::Some(bits) => Some(bits.as_bytes()),
        }
    }
}

/// The session accepts peer connections (Hello `listen_port` != 0): only
/// such holders are given out by get-peers.
pub(super) const REACHABLE: u32 = 1 << 31;
/// The session came over IPv6: its address is of no use to an IPv4 asker.
pub(super) const IPV6: u32 = 1 << 30;
/// Session indices live below the two flags.
pub(super) const SESSION_MASK: u32 = IPV6 - 1;
/// The `slot` of a seeder: it has no bitfield.
const NO_SLOT: u32 = u32::MAX;

/// One session holding a file. The session's flags ride in the top bits
/// of its index so that sampling a swarm reads nothing else per holder.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    tag: u32,
    /// Its bitfield's slot in [`FileEntry`]'s `bits`, or `NO_SLOT`.
    slot: u32,
    /// Pieces it holds.
    count: u32,
}

impl Holder {
    pub fn is_seeder(&self) -> bool {
        self.slot == NO_SLOT
    }

    /// Pieces it holds.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn reachable(&self) -> bool {
        self.tag & REACHABLE != 0
    }

    pub fn ipv6(&self) -> bool {
        self.tag & IPV6 != 0
    }

    /// Index of the session in the catalog's session table.
    pub(super) fn session(&self) -> u32 {
        self.tag & SESSION_MASK
    }
}

#[derive(Debug)]
pub struct FileEntry {
    pub info: Arc<Info>,
    pub holders: Vec<Holder>,
    /// Bitfields of the holders with part of the file, `stride` bytes per
    /// slot; freed slots are reused.
    bits: Vec<u8>,
    free: Vec<u32>,
    stride: usize,
    /// `info.num_pieces()`, kept here to spare a pointer chase per lookup.
    pieces: u32,
    /// Holders without a slot (so, always, those holding every piece).
    pub seeders: u32,
}

impl FileEntry {
    pub(super) fn new(info: Arc<Info>) -> FileEntry {
        FileEntry {
            stride: info.num_pieces().div_ceil(8) as usize,
            pieces: info.num_pieces(),
            info,
            holders: Vec::new(),
            bits: Vec::new(),
            free: Vec::new(),
            seeders: 0,
        }
    }

    /// The bitfield of holder `i`, or `None` for a seeder.
    pub fn bits(&self, i: usize) -> Option<&[u8]> {
        let slot = self.holders.get(i)?.slot;
        if slot == NO_SLOT {
            return None;
        }
        let at = slot as usize * self.stride;
        self.bits.get(at..at + self.stride)
    }

    /// Whether holder `i` has `piece`.
    pub fn has(&self, i: usize, piece: u32) -> bool {
        let Some(h) = self.holders.get(i) else {
            return false;
        };
        if h.slot == NO_SLOT {
            return true;
        }
        let byte = h.slot as usize * self.stride + (piece / 8) as usize;
        piece < self.pieces
            && self
                .bits
                .get(byte)
                .is_some_and(|b| b & (0x80 >> (piece % 8)) != 0)
    }

    /// Appends a holder for session `tag` (index and flags); returns its
    /// position.
    pub(super) fn push(&mut self, tag: u32, holding: &Holding) -> usize {
        self.holders.push(Holder {
            tag,
            slot: NO_SLOT,
            count: 0,
        });
        // Counted as a seeder while it has no slot, as `set_holding` expects.
        self.seeders += 1;
        let i = self.holders.len() - 1;
        self.set_holding(i, holding);
        i
    }

    /// Stores what holder `i` announced.
    pub(super) fn set_holding(&mut self, i: usize, holding: &Holding) {
        let was_seeder = self.holders[i].is_seeder();
        match holding {
            Holding::All => {
                self.release(i);
                self.holders[i].count = self.pieces;
            }
            Holding::Some(bits) => {
                let slot = self.take_slot(i);
                let at = slot as usize * self.stride;
                let dst = &mut self.bits[at..at + self.stride];
                // Bitfields reaching the catalog were checked against the
                // piece count; a mismatch here is cut or padded, never a panic.
                let src = bits.as_bytes();
                let n = src.len().min(dst.len());
                dst[..n].copy_from_slice(&src[..n]);
                dst[n..].fill(0);
                self.holders[i].count = bits.count();
            }
        }
        let seeding = self.holders[i].is_seeder();
        self.seeders = self.seeders + u32::from(seeding) - u32::from(was_seeder);
    }

    /// Marks `piece` (< pieces) held by holder `i`; a holder that
    /// completes becomes a seeder and gives its bitfield back.
    pub(super) fn set_piece(&mut self, i: usize, piece: u32) {
        let h = self.holders[i];
        if h.slot == NO_SLOT {
            return;
        }
        let byte = &mut self.bits[h.slot as usize * self.stride + (piece / 8) as usize];
        let mask = 0x80 >> (piece % 8);
        if *byte & mask == 0 {
            *byte |= mask;
            self.holders[i].count += 1;
        }
        if self.holders[i].count == self.pieces {
            self.release(i);
            self.seeders += 1;
        }
    }

    /// Removes holder `i` by moving the last one into its place; returns
    /// the session index of the holder that moved to `i`, if one did.
    pub(super) fn swap_remove(&mut self, i: usize) -> Option<u32> {
        if self.holders[i].is_seeder() {
            self.seeders -= 1;
        }
        self.release(i);
        self.holders.swap_remove(i);
        // Holders come and go; a swarm that shrank gives memory back.
        let (len, cap) = (self.holders.len(), self.holders.capacity());
        if cap > 16 && len < cap / 4 {
            self.holders.shrink_to(len * 2);
        }
        self.holders.get(i).map(Holder::session)
    }

    /// Gives holder `i`'s bitfield slot back, if it has one.
    fn release(&mut self, i: usize) {
        let slot = std::mem::replace(&mut self.holders[i].slot, NO_SLOT);
        if slot == NO_SLOT {
            return;
        }
        self.free.push(slot);
        if self.free.len() * self.stride == self.bits.len() {
            // Nobody holds part of the file: drop every slot.
            self.bits = Vec::new();
            self.free = Vec::new();
        }
    }

    /// Holder `i`'s slot, taken if it has none.
    fn take_slot(&mut self, i: usize) -> u32 {
        if self.holders[i].slot != NO_SLOT {
            return self.holders[i].slot;
        }
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = (self.bits.len() / self.stride.max(1)) as u32;
                self.bits.resize(self.bits.len() + self.stride, 0);
                slot
            }
        };
        self.holders[i].slot = slot;
        slot
    }
}
