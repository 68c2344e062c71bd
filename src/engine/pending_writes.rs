//! Blocks received in one input buffer, waiting to be written. Blocks that
//! follow each other in a file (a peer answering requests in order) go to
//! disk with one `pwritev` rather than one `pwrite` each, and pieces they
//! complete are verified only once their bytes are written. Pure
//! bookkeeping: the slices point into the connection's input buffer.

use crate::wire::peer::InfoHash;
use std::io::IoSlice;

/// Slices per `pwritev`, well under the kernel's IOV_MAX (1024).
const MAX_SLICES: usize = 64;

/// Consecutive bytes of one file.
pub struct Run<'a> {
    pub file: InfoHash,
    pub offset: u64,
    pub bufs: Vec<IoSlice<'a>>,
    len: u64,
}

#[derive(Default)]
pub struct PendingWrites<'a> {
    pub runs: Vec<Run<'a>>,
    /// Pieces completed by these blocks: (file, piece).
    pub verify: Vec<(InfoHash, u32)>,
}

impl<'a> PendingWrites<'a> {
    /// Queues `bytes` for `file` at `offset`, after the previous block if
    /// it ends where this one starts.
    pub fn block(&mut self, file: InfoHash, offset: u64, bytes: &'a [u8]) {
        if let Some(run) = self.runs.last_mut()
            && run.file == file
            && run.offset + run.len == offset
            && run.bufs.len() < MAX_SLICES
        {
            run.bufs.push(IoSlice::new(bytes));
            run.len += bytes.len() as u64;
            return;
        }
        self.runs.push(Run {
            file,
            offset,
            bufs: vec![IoSlice::new(bytes)],
            len: bytes.len() as u64,
        });
    }

    /// `piece` of `file` is complete once the queued blocks are written.
    pub fn piece_complete(&mut self, file: InfoHash, piece: u32) {
        self.verify.push((file, piece));
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.verify.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_blocks_share_a_run() {
        let (a, b) = ([1u8; 20], [2u8; 20]);
        let data = [0u8; 30];
        let mut w = PendingWrites::default();
        w.block(a, 0, &data[..10]);
        w.block(a, 10, &data[..10]);
        w.block(a, 40, &data[..10]); // a gap: a new run
        w.block(b, 50, &data[..10]); // another file: a new run
        let runs: Vec<(InfoHash, u64, usize)> = w
            .runs
            .iter()
            .map(|r| (r.file, r.offset, r.bufs.len()))
            .collect();
        assert_eq!(runs, vec![(a, 0, 2), (a, 40, 1), (b, 50, 1)]);
    }

    #[test]
    fn a_run_holds_at_most_max_slices() {
        let data = [0u8; 4];
        let mut w = PendingWrites::default();
        for i in 0..(MAX_SLICES as u64 + 1) {
            w.block([0; 20], i * 4, &data);
        }
        assert_eq!(w.runs.len(), 2);
        assert_eq!(w.runs[1].offset, MAX_SLICES as u64 * 4);
    }
}
