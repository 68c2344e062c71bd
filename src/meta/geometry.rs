//! Where pieces and blocks lie in a file of `length` bytes cut into pieces
//! of `piece_length` (the last one may be short), and blocks of
//! [`BLOCK_SIZE`] within a piece.
//!
//! Piece indexes, block offsets and lengths arrive from peers, so every
//! method here is total: file offsets are computed in `u64`, where a `u32`
//! index times a `u32` length plus a `u32` offset cannot overflow, and
//! anything past the end of the file is an empty piece or block, or `None`,
//! never a panic or a wrapped value.

use crate::limits::BLOCK_SIZE;
use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    piece_length: u32,
    length: u64,
}

impl Geometry {
    /// A `piece_length` of 0 makes a file of no pieces (every piece is
    /// past the end), rather than a division by zero.
    pub fn new(piece_length: u32, length: u64) -> Geometry {
        Geometry {
            piece_length,
            length,
        }
    }

    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// Pieces of the file, uncapped (for validating a claimed length
    /// before it is known to fit the `u32` piece indexes).
    pub fn piece_count(&self) -> u64 {
        match self.piece_length {
            0 => 0,
            n => self.length.div_ceil(u64::from(n)),
        }
    }

    /// Pieces of the file. A file with more than `u32::MAX` pieces (which
    /// `MAX_PIECES` forbids) reports `u32::MAX`: the indexes a peer can
    /// name.
    pub fn num_pieces(&self) -> u32 {
        u32::try_from(self.piece_count()).unwrap_or(u32::MAX)
    }

    /// Where `piece` starts in the file (past the end for a piece that
    /// does not exist).
    pub fn piece_offset(&self, piece: u32) -> u64 {
        u64::from(piece) * u64::from(self.piece_length)
    }

    /// Bytes in `piece`: `piece_length`, less for the last piece, 0 for a
    /// piece past the end.
    pub fn piece_size(&self, piece: u32) -> u32 {
        let left = self.length.saturating_sub(self.piece_offset(piece));
        // At most piece_length, so it fits in u32.
        left.min(u64::from(self.piece_length)) as u32
    }

    /// The bytes of `piece` in the file (empty past the end).
    pub fn piece_range(&self, piece: u32) -> Range<u64> {
        let start = self.piece_offset(piece);
        start..start + u64::from(self.piece_size(piece))
    }

    /// Blocks of [`BLOCK_SIZE`] in `piece` (the last one may be short).
    pub fn blocks_in(&self, piece: u32) -> u32 {
        self.piece_size(piece).div_ceil(BLOCK_SIZE)
    }

    /// Bytes of block `block` of `piece`; 0 for a block past its end.
    pub fn block_len(&self, piece: u32, block: u32) -> u32 {
        let begin = u64::from(block) * u64::from(BLOCK_SIZE);
        let left = u64::from(self.piece_size(piece)).saturating_sub(begin);
        left.min(u64::from(BLOCK_SIZE)) as u32
    }

    /// The offset of block `block` in its piece, if that fits a `u32` (as
    /// it does for every block that exists).
    pub fn block_begin(block: u32) -> Option<u32> {
        block.checked_mul(BLOCK_SIZE)
    }

    /// The block that starts at `begin` in its piece, if `begin` is on a
    /// block boundary.
    pub fn block_at(begin: u32) -> Option<u32> {
        begin
            .is_multiple_of(BLOCK_SIZE)
            .then_some(begin / BLOCK_SIZE)
    }

    /// Where byte `begin` of `piece` is in the file, unchecked: a request
    /// must be checked with [`Geometry::span`] first.
    pub fn offset(&self, piece: u32, begin: u32) -> u64 {
        self.piece_offset(piece) + u64::from(begin)
    }

    /// Where the `len` bytes at `begin` of `piece` are in the file, if
    /// they are at least one byte and lie inside an existing piece: the
    /// check a block request or a received block must pass.
    pub fn span(&self, piece: u32, begin: u32, len: u32) -> Option<Range<u64>> {
        let size = self.piece_size(piece);
        let end = u64::from(begin) + u64::from(len);
        (len > 0 && end <= u64::from(size)).then(|| {
            let start = self.offset(piece, begin);
            start..start + u64::from(len)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PL: u32 = 4 * BLOCK_SIZE;

    #[test]
    fn pieces_of_an_uneven_file() {
        let g = Geometry::new(PL, 3 * u64::from(PL) - 100);
        assert_eq!((g.num_pieces(), g.piece_count()), (3, 3));
        assert_eq!(g.piece_offset(2), 2 * u64::from(PL));
        assert_eq!(g.piece_size(0), PL);
        assert_eq!(g.piece_size(2), PL - 100);
        assert_eq!(g.piece_size(3), 0);
        assert_eq!(g.piece_size(u32::MAX), 0);
        assert_eq!(g.piece_range(2), 2 * u64::from(PL)..g.length());
        assert!(g.piece_range(9).is_empty());
        let total: u64 = (0..g.num_pieces())
            .map(|p| u64::from(g.piece_size(p)))
            .sum();
        assert_eq!(total, g.length());
    }

    #[test]
    fn exact_multiple_and_tiny_files() {
        let g = Geometry::new(PL, 2 * u64::from(PL));
        assert_eq!((g.num_pieces(), g.piece_size(1)), (2, PL));
        let one = Geometry::new(PL, 1);
        assert_eq!(
            (one.num_pieces(), one.piece_size(0), one.blocks_in(0)),
            (1, 1, 1)
        );
        assert_eq!(one.block_len(0, 0), 1);
        let empty = Geometry::new(PL, 0);
        assert_eq!((empty.num_pieces(), empty.blocks_in(0)), (0, 0));
        let none = Geometry::new(0, 1000);
        assert_eq!((none.num_pieces(), none.piece_size(0)), (0, 0));
        assert_eq!(none.span(0, 0, 1), None);
    }

    #[test]
    fn blocks_of_the_last_piece() {
        let g = Geometry::new(PL, u64::from(PL) + BLOCK_SIZE as u64 + 7);
        assert_eq!(g.blocks_in(0), 4);
        assert_eq!(g.blocks_in(1), 2);
        assert_eq!(g.block_len(1, 0), BLOCK_SIZE);
        assert_eq!(g.block_len(1, 1), 7);
        assert_eq!(g.block_len(1, 2), 0);
        assert_eq!(g.block_len(1, u32::MAX), 0);
        assert_eq!(g.block_len(5, 0), 0);
        assert_eq!(Geometry::block_begin(3), Some(3 * BLOCK_SIZE));
        assert_eq!(Geometry::block_begin(u32::MAX), None);
        assert_eq!(Geometry::block_at(2 * BLOCK_SIZE), Some(2));
        assert_eq!(Geometry::block_at(BLOCK_SIZE + 1), None);
        assert_eq!(g.offset(1, 10), u64::from(PL) + 10);
    }

    #[test]
    fn spans_are_checked_without_overflow() {
        let g = Geometry::new(PL, 2 * u64::from(PL) - 1);
        let pl = u64::from(PL);
        assert_eq!(g.span(0, 0, PL), Some(0..pl));
        assert_eq!(g.span(1, 16, 16), Some(pl + 16..pl + 32));
        assert_eq!(g.span(1, 0, PL - 1), Some(pl..2 * pl - 1));
        assert_eq!(g.span(1, 0, PL), None, "past the end of the file");
        assert_eq!(g.span(0, 1, PL), None, "past the end of the piece");
        assert_eq!(g.span(0, 0, 0), None, "empty");
        assert_eq!(g.span(2, 0, 1), None, "no such piece");
        assert_eq!(g.span(0, u32::MAX, u32::MAX), None);
        assert_eq!(g.span(u32::MAX, u32::MAX, 1), None);
    }

    #[test]
    fn huge_files_use_u64_offsets() {
        let g = Geometry::new(1 << 24, u64::MAX);
        assert_eq!(g.num_pieces(), u32::MAX);
        assert_eq!(g.piece_count(), u64::MAX.div_ceil(1 << 24));
        assert_eq!(g.piece_offset(u32::MAX), u64::from(u32::MAX) << 24);
        assert_eq!(g.piece_size(u32::MAX), 1 << 24);
        let end = g.offset(u32::MAX, (1 << 24) - 1);
        assert_eq!(g.span(u32::MAX, (1 << 24) - 1, 1), Some(end..end + 1));
    }
}
