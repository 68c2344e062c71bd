//! A small, fast pseudo-random generator (xorshift64*) for choices that
//! only need to spread load, such as which peers to return or which of
//! equally rare pieces to fetch. Not for anything secret.

use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // Zero is the one state xorshift never leaves.
        Rng(seed | 1)
    }

    /// Seeded from the clock and the process id.
    pub fn from_entropy() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n` > 0), without modulo bias worth caring about
    /// for load spreading.
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// The item of least key among those offered, at random among equal keys
/// (reservoir sampling: each of n equals is kept with probability 1/n),
/// without collecting them.
pub struct RandomMin<K, T> {
    best: Option<(K, T)>,
    ties: usize,
}

impl<K: Ord, T> RandomMin<K, T> {
    pub fn new() -> Self {
        RandomMin {
            best: None,
            ties: 0,
        }
    }

    pub fn offer(&mut self, key: K, item: T, rng: &mut Rng) {
        match &self.best {
            Some((k, _)) if key > *k => {}
            Some((k, _)) if key == *k => {
                self.ties += 1;
                if rng.below(self.ties) == 0 {
                    self.best = Some((key, item));
                }
            }
            _ => {
                self.best = Some((key, item));
                self.ties = 1;
            }
        }
    }

    pub fn take(self) -> Option<T> {
        self.best.map(|(_, item)| item)
    }
}

impl<K: Ord, T> Default for RandomMin<K, T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_min_keeps_the_least_and_picks_equals_evenly() {
        let mut rng = Rng::new(3);
        let mut counts = [0u32; 3];
        for _ in 0..3000 {
            let mut m = RandomMin::new();
            for (key, item) in [(2, 9), (1, 0), (1, 1), (5, 7), (1, 2)] {
                m.offer(key, item, &mut rng);
            }
            counts[m.take().unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(RandomMin::<u32, u32>::new().take(), None);
    }
}
