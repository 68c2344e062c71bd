//! The simulator's clock and agenda: events ordered by (time, sequence
//! number), so that two events due at the same microsecond always run in
//! the order they were scheduled, whatever the heap's internals do.

use crate::engine::Time;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

struct Entry<E> {
    at: Time,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Entry<E> {}

impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Entry<E> {
    // Reversed: BinaryHeap is a max-heap and the earliest event comes first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Pending events and the current virtual time.
pub struct Agenda<E> {
    heap: BinaryHeap<Entry<E>>,
    seq: u64,
    now: Time,
    /// Events taken so far, for the events-per-second figure.
    pub handled: u64,
}

impl<E> Default for Agenda<E> {
    fn default() -> Self {
        Agenda {
            heap: BinaryHeap::new(),
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
        let at = at.max(self.now);
        self.heap.push(Entry {
            at,
            seq: self.seq,
            event,
        });
    }

    /// When the next event is due.
    pub fn next_time(&self) -> Option<Time> {
        self.heap.peek().map(|e| e.at)
    }

    /// Takes the next event due at or before `until`, advancing the clock.
    pub fn pop_until(&mut self, until: Time) -> Option<E> {
        if self.heap.peek()?.at > until {
            return None;
        }
        let e = self.heap.pop()?;
        self.now = e.at;
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
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
}
