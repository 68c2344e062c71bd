//! One direction of the rate limits (bytes written, or bytes read) of the
//! connections a handler calls rate limited: a token bucket shared by all
//! of them, and the queue of those waiting for its credit.
//!
//! A limited connection never reads or writes on its own readiness: it
//! joins the queue, and once per loop iteration the queue is served in
//! turn, each connection getting an equal share of the credit there is
//! (one that does not use it leaves the rest to the next), going back to
//! the end while it has more to move. The loop sleeps until the bucket
//! holds a [`quantum`] again, so a throttled daemon wakes up about 200
//! times a second, not once per byte, and never spins.

use super::ConnId;
use crate::ratelimit::{Bucket, default_burst, quantum};
use std::collections::VecDeque;
use std::time::Instant;

/// The smallest turn worth giving: one block and its header.
const MIN_SHARE: u64 = 16 * 1024 + 13;

#[derive(Default)]
pub(super) struct Throttle {
    /// `None`: no limit.
    bucket: Option<Bucket>,
    /// Connections waiting for their turn, each once.
    pub(super) queue: VecDeque<ConnId>,
}

impl Throttle {
    /// `rate` bytes per second from `now` on; 0 lifts the limit (waiting
    /// connections then go on at their next turn, unthrottled).
    pub(super) fn set_rate(&mut self, now: Instant, rate: u64) {
        match (rate, self.bucket.as_mut()) {
            (0, _) => self.bucket = None,
            (rate, Some(b)) => b.set_rate(now, rate, default_burst(rate)),
            (rate, None) => self.bucket = Some(Bucket::with_rate(rate, now)),
        }
    }

    pub(super) fn is_limited(&self) -> bool {
        self.bucket.is_some()
    }

    /// No connection waits.
    pub(super) fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// When the queue should next be served: `None` when it is empty.
    pub(super) fn due(&mut self, now: Instant) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        match self.bucket.as_mut() {
            Some(b) => Some(now + b.next_ready(now, quantum(b.rate()))),
            // The limit was lifted: let the waiting go at once.
            None => Some(now),
        }
    }

    /// What the next in turn may move, with `waiting` connections (it
    /// included) left to serve this round; `None` when the bucket holds
    /// less than a quantum (or there is no limit).
    pub(super) fn share(&mut self, now: Instant, waiting: usize) -> Option<usize> {
        let b = self.bucket.as_mut()?;
        let available = b.available(now);
        if available < quantum(b.rate()) {
            return None;
        }
        let share = (available / waiting.max(1) as u64)
            .max(MIN_SHARE)
            .min(available);
        Some(usize::try_from(share).unwrap_or(usize::MAX))
    }

    /// `n` bytes were moved.
    pub(super) fn spend(&mut self, n: usize) {
        if let Some(b) = self.bucket.as_mut() {
            b.spend(n as u64);
        }
    }

    /// A closed connection leaves the queue.
    pub(super) fn forget(&mut self, id: ConnId) {
        self.queue.retain(|&q| q != id);
    }
}
