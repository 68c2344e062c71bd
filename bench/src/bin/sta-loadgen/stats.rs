//! What the workers measure: latency histograms and counts, by request
//! kind.

use std::collections::BTreeMap;

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// Latency histogram in nanoseconds, log-linear: 64 buckets per power of
/// two, so any quantile is within 1.6 %.
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    pub total: u64,
    pub max: u64,
    sum: u128,
}

impl Hist {
    pub fn new() -> Hist {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            sum: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            return v as usize;
        }
        let e = 63 - v.leading_zeros();
        let m = (v >> (e - SUB_BITS)) as usize;
        (e - SUB_BITS + 1) as usize * SUB + (m - SUB)
    }

    fn upper(i: usize) -> u64 {
        if i < SUB {
            return i as u64;
        }
        let e = (i / SUB) as u32 - 1 + SUB_BITS;
        let m = (i % SUB + SUB) as u64;
        ((m + 1) << (e - SUB_BITS)) - 1
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
        self.total += o.total;
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::upper(i).min(self.max);
            }
        }
        self.max
    }

    pub fn mean(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            (self.sum / u128::from(self.total)) as u64
        }
    }
}

pub fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// What one worker saw.
pub struct Stats {
    pub setup: Hist,
    /// Latency of every request sent in the steady phase, by kind, even
    /// if answered after it ended (or never: a lost datagram counts with
    /// the time it was given up at).
    pub steady: Vec<Hist>,
    /// Steady requests answered before the phase ended: the throughput.
    pub done: u64,
    pub setup_done: u64,
    pub peers_returned: u64,
    pub peers_answers: u64,
    pub errors: BTreeMap<String, u64>,
    pub lost: u64,
    /// Open loop: requests the schedule asked for but a full window refused.
    pub unsent: u64,
    pub failure: Option<String>,
}

pub const KINDS: [&str; 4] = ["hello", "announce", "have", "getpeers"];
pub const K_HELLO: u8 = 0;
pub const K_ANNOUNCE: u8 = 1;
pub const K_HAVE: u8 = 2;
pub const K_GETPEERS: u8 = 3;

impl Stats {
    pub fn new() -> Stats {
        Stats {
            setup: Hist::new(),
            steady: (0..KINDS.len()).map(|_| Hist::new()).collect(),
            done: 0,
            setup_done: 0,
            peers_returned: 0,
            peers_answers: 0,
            errors: BTreeMap::new(),
            lost: 0,
            unsent: 0,
            failure: None,
        }
    }

    pub fn error(&mut self, what: String) {
        *self.errors.entry(what).or_default() += 1;
    }

    pub fn merge(&mut self, o: Stats) {
        self.setup.merge(&o.setup);
        for (a, b) in self.steady.iter_mut().zip(&o.steady) {
            a.merge(b);
        }
        self.done += o.done;
        self.setup_done += o.setup_done;
        self.peers_returned += o.peers_returned;
        self.peers_answers += o.peers_answers;
        for (k, v) in o.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.lost += o.lost;
        self.unsent += o.unsent;
        if self.failure.is_none() {
            self.failure = o.failure;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_the_bucket_error() {
        let mut h = Hist::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        for q in [0.5, 0.99, 0.999] {
            let exact = q * 100_000_000.0;
            let got = h.quantile(q) as f64;
            assert!(
                (got - exact).abs() / exact < 0.016,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.quantile(1.0), 100_000_000);
        assert_eq!(h.mean(), 50_000_500);
        let mut all = Hist::new();
        all.merge(&h);
        all.merge(&h);
        assert_eq!((all.total, all.max), (200_000, h.max));
        assert_eq!(Hist::new().quantile(0.5), 0);
    }

    #[test]
    fn every_value_has_a_bucket_that_holds_it() {
        for v in [0, 1, 63, 64, 65, 1 << 20, u64::MAX / 3, u64::MAX] {
            let i = Hist::index(v);
            assert!(i < BUCKETS, "{v}");
            assert!(Hist::upper(i) >= v, "{v}");
        }
    }
}
