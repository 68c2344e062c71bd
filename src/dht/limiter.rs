//! A per-source-IP limit on queries answered: a token bucket per address
//! ([`DHT_QUERIES_PER_SEC`], burst [`DHT_QUERY_BURST`]), in a table of at
//! most [`DHT_MAX_RATE_TRACKED`] addresses. Queries over the limit are
//! dropped unanswered (as libtorrent does), so a flood costs us a decode,
//! not a reply. A new address when the table is full is refused until
//! quiet addresses are forgotten.

use crate::engine::Time;
use crate::limits::{DHT_MAX_RATE_TRACKED, DHT_QUERIES_PER_SEC, DHT_QUERY_BURST};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Credit of one query, in micro-queries (credit is kept in these so a
/// rate of a few per second earns something every microsecond).
const QUERY: u64 = 1_000_000;

#[derive(Debug, Default)]
pub struct Limiter {
    /// Per address: (credit in micro-queries, when it was last updated).
    buckets: HashMap<Ipv4Addr, (u64, Time)>,
}

impl Limiter {
    /// Spends one query of `ip`'s credit; false if it has none.
    pub fn allow(&mut self, now: Time, ip: Ipv4Addr) -> bool {
        let full = DHT_QUERY_BURST * QUERY;
        if !self.buckets.contains_key(&ip) && self.buckets.len() >= DHT_MAX_RATE_TRACKED {
            self.forget_idle(now);
            if self.buckets.len() >= DHT_MAX_RATE_TRACKED {
                return false;
            }
        }
        let (credit, last) = self.buckets.entry(ip).or_insert((full, now));
        let earned = now.since(*last).as_micros() as u64 * DHT_QUERIES_PER_SEC;
        *credit = credit.saturating_add(earned).min(full);
        *last = now;
        if *credit < QUERY {
            return false;
        }
        *credit -= QUERY;
        true
    }

    /// Drops addresses whose bucket has refilled: they are as if new.
    pub fn forget_idle(&mut self, now: Time) {
        let full = DHT_QUERY_BURST * QUERY;
        self.buckets.retain(|_, (credit, last)| {
            let earned = now.since(*last).as_micros() as u64 * DHT_QUERIES_PER_SEC;
            credit.saturating_add(earned) < full
        });
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let mut l = Limiter::default();
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let t = Time::ZERO;
        for _ in 0..DHT_QUERY_BURST {
            assert!(l.allow(t, ip));
        }
        assert!(!l.allow(t, ip));
        assert!(l.allow(t, Ipv4Addr::new(10, 0, 0, 2)));
        let later = t + Duration::from_secs(1);
        for _ in 0..DHT_QUERIES_PER_SEC {
            assert!(l.allow(later, ip));
        }
        assert!(!l.allow(later, ip));
        l.forget_idle(later + Duration::from_secs(60));
        assert_eq!(l.tracked(), 0);
    }
}
