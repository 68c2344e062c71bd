//! The simulator's clock and agenda: events ordered by (time, sequence
//! number), so that two events due at the same microsecond always run in
//! the order they were scheduled, whatever the queue's internals do.
//!
//! The queue is a radix heap rather than a binary heap: a simulation only
//! schedules at or after the time of the event it handles, so the queue
//! is monotone. An event is filed in the bucket of the highest bit in
//! which its time differs from the last time taken; only the lowest
//! bucket is ever taken apart, its events moving to lower buckets. A push
//! is an append and each event moves a few times on its way down, where
//! a binary heap of tens of thousands of events sifted through cold
//! memory on every pop (it was the simulator's largest own cost). Events
//! due at the same time are run in sequence order, so the order is
//! exactly the (time, sequence) order of a sorted list.

use crate::engine::Time;
use std::collections::VecDeque;

struct Entry<E> {
    at: u64,
    seq: u64,
    event: E,
}

/// Bucket `i` (1..=64) holds the events whose time differs from the last
/// time taken first in bit `i - 1`; those due at that time wait in `due`.
const BUCKETS: usize = 65;

/// Pending events and the current virtual time.
pub struct Agenda<E> {
    buckets: Vec<Vec<Entry<E>>>,
    /// Events due at `last`, in sequence order.
    due: VecDeque<Entry<E>>,
    /// The time every pending event is filed against: no pending event is
    /// due before it.
    last: u64,
    /// Bit `i - 1` set when bucket `i` holds events: finding the lowest
    /// one is then one instruction, not a walk over buckets.
    occupied: u64,
    len: usize,
    seq: u64,
    now: Time,
    /// Events taken so far, for the events-per-second figure.
    pub handled: u64,
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            due: VecDeque::new(),
            last: 0,
            occupied: 0,
            len: 0,
            seq: 0,
            now: Time::ZERO,
            handled: 0,
        }
    }
}

impl<E> Agenda<E> {
    pub fn now(&self) -> Time {
        self.now
    }

    /// Schedules `event` at `at`; an event in the past runs now (time never
    /// goes backwards).
    pub fn at(&mut self, at: Time, event: E) {
        self.seq += 1;
        let e = Entry {
            at: at.max(self.now).as_micros(),
            seq: self.seq,
            event,
        };
        self.len += 1;
        // Not before `last`, as the clock is not; at `last` it is the
        // newest of the events due then.
        match e.at == self.last {
            true => self.due.push_back(e),
            false => self.file(e),
        }
    }

    fn file(&mut self, e: Entry<E>) {
        let b = (64 - (e.at ^ self.last).leading_zeros()) as usize;
        if let Some(v) = self.buckets.get_mut(b) {
            v.push(e);
            self.occupied |= 1 << (b - 1);
        }
    }

    /// Brings the events due first into `due` and returns the first. Only
    /// when they are to be taken: `last` moves up to their time.
    fn settle(&mut self) -> Option<&Entry<E>> {
        if self.due.is_empty() && self.occupied != 0 {
            let i = self.occupied.trailing_zeros() as usize + 1;
            self.occupied &= !(1 << (i - 1));
            let mut moving = std::mem::take(self.buckets.get_mut(i)?);
            self.last = moving.iter().map(|e| e.at).min()?;
            // Every event of bucket `i` lands lower down; the others keep
            // their place, as they differ from the new `last` first in
            // the same bit as from the old one.
            for e in moving.drain(..) {
                match e.at == self.last {
                    true => self.due.push_back(e),
                    false => self.file(e),
                }
            }
            // Keep the allocation for the bucket's next events.
            if let Some(v) = self.buckets.get_mut(i) {
                *v = moving;
            }
            // A bucket mixes events pushed directly with events moved
            // down from above: ties run in the order they were scheduled.
            self.due.make_contiguous().sort_unstable_by_key(|e| e.seq);
        }
        self.due.front()
    }

    /// When the next event is due. Looking does not take the lowest
    /// bucket apart: that would file events against a time ahead of the
    /// clock, and the caller may still schedule before it.
    pub fn next_time(&self) -> Option<Time> {
        let at = match self.due.front() {
            Some(e) => e.at,
            None => {
                let i = self.occupied.trailing_zeros() as usize + 1;
                self.buckets.get(i)?.iter().map(|e| e.at).min()?
            }
        };
        Some(Time::from_micros(at))
    }

    /// Takes the next event due at or before `until`, advancing the clock.
    pub fn pop_until(&mut self, until: Time) -> Option<E> {
        if self.due.is_empty() && self.next_time()? > until {
            return None;
        }
        if self.settle()?.at > until.as_micros() {
            return None;
        }
        let e = self.due.pop_front()?;
        self.len -= 1;
        self.now = Time::from_micros(e.at);
        self.handled += 1;
        Some(e.event)
    }

    /// Moves the clock to `t` when nothing is due before it.
    pub fn advance_to(&mut self, t: Time) {
        if self.next_time().is_none_or(|n| n >= t) {
            self.now = self.now.max(t);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_run_in_schedule_order() {
        let mut a = Agenda::default();
        a.at(Time::from_micros(5), "b");
        a.at(Time::from_micros(1), "a");
        a.at(Time::from_micros(5), "c");
        a.at(Time::from_micros(5), "d");
        let mut got = Vec::new();
        while let Some(e) = a.pop_until(Time::from_micros(10)) {
            got.push(e);
        }
        assert_eq!(got, ["a", "b", "c", "d"]);
        assert_eq!(a.now(), Time::from_micros(5));
    }

    #[test]
    fn stops_at_the_horizon() {
        let mut a = Agenda::default();
        a.at(Time::from_micros(20), 1);
        assert_eq!(a.pop_until(Time::from_micros(10)), None);
        a.advance_to(Time::from_micros(10));
        assert_eq!(a.now(), Time::from_micros(10));
        a.at(Time::ZERO, 2); // in the past: runs now, not before
        assert_eq!(a.pop_until(Time::from_micros(10)), Some(2));
        assert_eq!(a.now(), Time::from_micros(10));
    }

    #[test]
    fn takes_events_in_time_then_schedule_order() {
        // Pseudo-random times, scheduled while events are taken, against
        // a sorted list of (time, sequence).
        let mut a = Agenda::default();
        let mut want = Vec::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut seq = 0u64;
        let mut got = Vec::new();
        for round in 0..2000u64 {
            for _ in 0..(round % 5) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at =
                    a.now().as_micros() + [0, 1, 7, 300, 70_000][(x % 5) as usize] + (x >> 40) % 3;
                seq += 1;
                a.at(Time::from_micros(at), seq);
                want.push((at, seq));
            }
            if let Some(s) = a.pop_until(Time::from_micros(u64::MAX)) {
                got.push((a.now().as_micros(), s));
            }
        }
        while let Some(s) = a.pop_until(Time::from_micros(u64::MAX)) {
            got.push((a.now().as_micros(), s));
        }
        assert!(a.is_empty());
        want.sort();
        assert_eq!(got, want);
    }
}
