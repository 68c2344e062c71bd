//! What one peer asked us for, and what of our answers has left the host.
//!
//! Requests wait here and become blocks for the shell only while little of
//! what we gave it for this link is still unsent (`SEND_AHEAD`). So a
//! `cancel` or our `choke` still finds most requests here and withdraws
//! them, and the bytes a seed counts as uploaded are those that left its
//! sockets, not those queued in them: a seed that leaves after sending one
//! copy of the file has really sent it.
//!
//! A seed also knows which requests are for a piece's first copy (the
//! peer that first asked for it, see [`super::reveal`]): a second copy
//! waits here while first copies wait anywhere, so every piece leaves once
//! before any leaves twice, however the sockets drain.
//!
//! Pure bookkeeping: the shell reports how many bytes of the link left
//! ([`Upload::left_until`]), the engine decides what to hand over next.

use crate::wire::peer::Block;
use std::collections::VecDeque;

/// Requests one peer may have waiting with us; more are refused (a
/// reject with the Fast extension, else dropped). The extension handshake
/// states it as `reqq`; STA keeps at most `pipeline::MAX_DEPTH` in flight.
pub const MAX_ASKED: usize = crate::wire::extension::REQQ;
/// Bytes handed to the shell for one link and not yet out of it that
/// stop us handing more: enough to keep the socket fed between two of the
/// shell's reports (the kernel holds at most `NOTSENT_LOWAT` unsent bytes
/// of it, in `sta-peerd`), small enough that a choke or cancel still finds
/// most requests here.
pub const SEND_AHEAD: u64 = 1024 * 1024;

#[derive(Debug, Default)]
pub struct Upload {
    /// Requests accepted, in order, not yet handed to the shell, each
    /// with whether it is for a first copy.
    asked: VecDeque<(Block, bool)>,
    /// Bytes handed to the shell on this link, every message counted.
    handed: u64,
    /// Blocks made but not yet handed (actions not yet taken), in order:
    /// payload length, and whether each is a first copy.
    making: VecDeque<(u32, bool)>,
    making_bytes: u64,
    /// Of `handed`, the bytes the shell said left.
    left: u64,
    /// Blocks handed that have not left: where each ends in `handed`, its
    /// payload length, and whether it is a first copy.
    out: VecDeque<(u64, u32, bool)>,
    /// First copies in `asked`, and in `asked`, `making` and `out`.
    asked_firsts: usize,
    firsts: usize,
}

/// Block payload bytes that left, per [`Upload::left_until`] report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    pub payload: u64,
    /// Of `payload`, first copies.
    pub firsts: u64,
}

/// The request queue is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Upload {
    /// Queues a request, unless one just like it waits already; `first`:
    /// it is for a piece's first copy.
    pub fn ask(&mut self, block: Block, first: bool) -> Result<(), Full> {
        if self.asked.iter().any(|(b, _)| *b == block) {
            return Ok(());
        }
        if self.asked.len() >= MAX_ASKED {
            return Err(Full);
        }
        self.asked.push_back((block, first));
        self.asked_firsts += usize::from(first);
        self.firsts += usize::from(first);
        Ok(())
    }

    /// Whether another request would be refused.
    pub fn is_full(&self) -> bool {
        self.asked.len() >= MAX_ASKED
    }

    /// Withdraws a request not yet handed over; false if it was not here.
    pub fn cancel(&mut self, block: &Block) -> bool {
        let Some(at) = self.asked.iter().position(|(b, _)| b == block) else {
            return false;
        };
        if let Some((_, first)) = self.asked.remove(at) {
            self.asked_firsts -= usize::from(first);
            self.firsts -= usize::from(first);
        }
        true
    }

    /// Every request still waiting, withdrawn (a choke, or the file's end).
    pub fn withdraw_all(&mut self) -> Vec<Block> {
        self.firsts -= self.asked_firsts;
        self.asked_firsts = 0;
        self.asked.drain(..).map(|(b, _)| b).collect()
    }

    /// The requests for second copies still waiting, withdrawn (first
    /// copies stay, in order).
    pub fn withdraw_seconds(&mut self) -> Vec<Block> {
        let mut seconds = Vec::new();
        self.asked.retain(|&(b, first)| {
            if !first {
                seconds.push(b);
            }
            first
        });
        seconds
    }

    /// The next request to answer, if the shell has room for it: the
    /// oldest first copy, else the oldest unless `seconds_wait()`.
    pub fn next(&mut self, seconds_wait: impl FnOnce() -> bool) -> Option<(Block, bool)> {
        if self.unsent() >= SEND_AHEAD {
            return None;
        }
        let at = match self.asked.front()? {
            (_, true) => 0,
            _ if self.asked_firsts > 0 => self.asked.iter().position(|&(_, first)| first)?,
            _ if seconds_wait() => return None,
            _ => 0,
        };
        let (block, first) = self.asked.remove(at)?;
        self.asked_firsts -= usize::from(first);
        self.making.push_back((block.length, first));
        self.making_bytes += 13 + u64::from(block.length);
        Some((block, first))
    }

    /// Takes back the last block [`Upload::next`] made, which will not be
    /// handed over after all.
    pub fn unmake(&mut self) {
        if let Some((len, first)) = self.making.pop_back() {
            self.making_bytes -= 13 + u64::from(len);
            self.firsts -= usize::from(first);
        }
    }

    /// First copies that wait here or have not left yet.
    pub fn firsts(&self) -> usize {
        self.firsts
    }

    /// Bytes handed over, or about to be, that have not left.
    pub fn unsent(&self) -> u64 {
        self.handed + self.making_bytes - self.left
    }

    /// The shell took `len` bytes for the link (any message).
    pub fn took(&mut self, len: u64) {
        self.handed += len;
    }

    /// The shell took the oldest block made by [`Upload::next`]: a
    /// 13-byte header and its bytes.
    pub fn took_block(&mut self) {
        let Some((len, first)) = self.making.pop_front() else {
            return;
        };
        let wire = 13 + u64::from(len);
        self.making_bytes -= wire;
        self.handed += wire;
        self.out.push_back((self.handed, len, first));
    }

    /// The shell says the first `left` bytes it took for the link are out
    /// of the host. Returns the block payload bytes that left since the
    /// last report: what counts as uploaded.
    pub fn left_until(&mut self, left: u64) -> Left {
        // Reports may lag what we handed over since; never go back.
        self.left = left.clamp(self.left, self.handed);
        let mut out = Left::default();
        while let Some(&(end, len, first)) = self.out.front() {
            if end > self.left {
                break;
            }
            out.payload += u64::from(len);
            if first {
                out.firsts += u64::from(len);
                self.firsts -= 1;
            }
            self.out.pop_front();
        }
        out
    }

    /// Requests waiting.
    pub fn waiting(&self) -> usize {
        self.asked.len()
    }

    /// Whether requests for second copies wait.
    pub fn seconds_waiting(&self) -> bool {
        self.asked.len() > self.asked_firsts
    }

    /// Nothing waits here and everything handed over has left.
    #[cfg(test)]
    pub fn idle(&self) -> bool {
        self.asked.is_empty() && self.unsent() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(index: u32) -> Block {
        Block {
            index,
            begin: 0,
            length: 16384,
        }
    }

    #[test]
    fn requests_wait_until_the_shell_has_room() {
        let mut up = Upload::default();
        for i in 0..100 {
            up.ask(block(i), true).unwrap();
        }
        let mut made = 0;
        while let Some((b, first)) = up.next(|| false) {
            let _ = (b, first);
            up.took_block();
            made += 1;
        }
        // 1 MiB of 16 KiB blocks with their headers.
        assert_eq!(made, 64);
        assert_eq!(up.waiting(), 36);
        // Half of it left: room for about half again.
        let half = up.unsent() / 2;
        assert_eq!(up.left_until(half).payload, 32 * 16384);
        let mut more = 0;
        while let Some((b, first)) = up.next(|| false) {
            let _ = (b, first);
            up.took_block();
            more += 1;
        }
        assert_eq!(more, 32);
    }

    #[test]
    fn a_block_counts_once_all_of_it_left() {
        let mut up = Upload::default();
        up.took(100); // a bitfield, say
        up.ask(block(0), true).unwrap();
        let (b, first) = up.next(|| false).unwrap();
        let _ = (b, first);
        up.took_block();
        assert_eq!(up.left_until(100 + 13 + 16383).payload, 0);
        assert_eq!(up.firsts(), 1);
        let left = up.left_until(100 + 13 + 16384);
        assert_eq!((left.payload, left.firsts), (16384, 16384));
        assert_eq!(up.firsts(), 0);
        // A stale report changes nothing.
        assert_eq!(up.left_until(50), Left::default());
        assert!(up.idle());
    }

    #[test]
    fn cancel_and_choke_withdraw_what_waits() {
        let mut up = Upload::default();
        for i in 0..3 {
            up.ask(block(i), true).unwrap();
        }
        up.ask(block(1), true).unwrap(); // a duplicate is not queued twice
        assert!(up.cancel(&block(1)));
        assert!(!up.cancel(&block(1)));
        assert_eq!(up.withdraw_all(), vec![block(0), block(2)]);
        assert!(up.idle());
        assert_eq!(up.firsts(), 0);
    }

    #[test]
    fn a_block_taken_back_is_not_counted() {
        let mut up = Upload::default();
        up.ask(block(0), true).unwrap();
        up.ask(block(1), true).unwrap();
        assert!(up.next(|| false).is_some());
        up.unmake();
        assert_eq!((up.unsent(), up.firsts()), (0, 1));
        assert!(up.next(|| false).is_some());
        up.took_block();
        assert_eq!(up.left_until(13 + 16384).payload, 16384);
        assert!(up.idle());
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut up = Upload::default();
        for i in 0..MAX_ASKED as u32 {
            up.ask(block(i), true).unwrap();
        }
        assert_eq!(up.ask(block(u32::MAX), true), Err(Full));
    }

    #[test]
    fn first_copies_go_first_and_second_copies_wait_while_asked_to() {
        let mut up = Upload::default();
        up.ask(block(0), false).unwrap();
        up.ask(block(1), true).unwrap();
        up.ask(block(2), false).unwrap();
        // Ahead of an older second copy, whatever the others wait for.
        assert_eq!(up.next(|| false), Some((block(1), true)));
        assert_eq!(up.next(|| true), None);
        assert_eq!(up.next(|| false), Some((block(0), false)));
        assert_eq!(up.next(|| false), Some((block(2), false)));
    }

    #[test]
    fn second_copies_are_withdrawn_and_first_copies_stay_in_order() {
        let mut up = Upload::default();
        for (i, first) in [(1, false), (2, true), (3, false), (4, true)] {
            up.ask(block(i), first).unwrap();
        }
        assert!(up.seconds_waiting());
        assert_eq!(up.withdraw_seconds(), [block(1), block(3)]);
        assert!(!up.seconds_waiting());
        assert_eq!(up.firsts(), 2);
        assert_eq!(up.next(|| true), Some((block(2), true)));
        assert_eq!(up.next(|| true), Some((block(4), true)));
        assert_eq!(up.next(|| false), None);
    }
}
