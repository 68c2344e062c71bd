//! Pseudo-random bytes, fast enough for files of gigabytes: STA moves and
//! hashes them, so they only need to be incompressible and, with a seed,
//! reproducible. Not for anything secret.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes generated per write.
const CHUNK: usize = 4 << 20;

/// xorshift64*: 8 bytes per step.
#[derive(Debug, Clone)]
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Prng {
        // Spread small seeds over the state; zero is the one state
        // xorshift never leaves.
        Prng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// Seeded from the clock and the process id: different every run.
    pub fn from_entropy() -> Prng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Prng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        fill_from(buf, || self.next_u64());
    }
}

/// Fills `buf` with the little-endian bytes of successive `next()` words,
/// the last one cut short; no word is drawn beyond what `buf` takes, so a
/// generator shared with other draws stays reproducible.
pub fn fill_from(buf: &mut [u8], mut next: impl FnMut() -> u64) {
    for chunk in buf.chunks_mut(8) {
        chunk.copy_from_slice(&next().to_le_bytes()[..chunk.len()]);
    }
}

/// `length` bytes from `seed`.
pub fn random_bytes(length: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; length];
    Prng::new(seed).fill(&mut v);
    v
}

/// Why [`write_random`] stopped short.
#[derive(Debug)]
pub enum WriteError {
    /// `stop` said so, between two chunks.
    Stopped,
    /// Writing to `outs[index]` failed.
    Io { index: usize, error: io::Error },
}

/// Writes the same `size` bytes from `rng` to each of `outs`, in chunks,
/// asking `stop` before each (a Ctrl-C flag: gigabytes take a while).
pub fn write_random<W: Write>(
    outs: &mut [W],
    size: u64,
    rng: &mut Prng,
    stop: impl Fn() -> bool,
) -> Result<(), WriteError> {
    let mut buf = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        if stop() {
            return Err(WriteError::Stopped);
        }
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        rng.fill(&mut buf[..n]);
        for (index, out) in outs.iter_mut().enumerate() {
            out.write_all(&buf[..n])
                .map_err(|error| WriteError::Io { index, error })?;
        }
        left -= n as u64;
    }
    Ok(())
}

/// Creates (or truncates) `path` with `length` bytes from `seed`.
pub fn write_random_file(path: &Path, length: u64, seed: u64) -> io::Result<()> {
    let mut file = [File::create(path)?];
    write_random(&mut file, length, &mut Prng::new(seed), || false).map_err(|e| match e {
        WriteError::Io { error, .. } => error,
        WriteError::Stopped => io::Error::from(io::ErrorKind::Interrupted),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_odd_lengths_filled() {
        assert_eq!(random_bytes(1000, 3), random_bytes(1000, 3));
        assert_ne!(random_bytes(64, 3), random_bytes(64, 4));
        let b = random_bytes(21, 7);
        assert!(b[16..].iter().any(|&x| x != 0));
        // A prefix is the same bytes: lengths do not change the stream.
        assert_eq!(random_bytes(13, 9)[..], random_bytes(64, 9)[..13]);
    }

    #[test]
    fn fill_from_draws_only_what_it_needs() {
        let mut n = 0u64;
        let mut buf = [0u8; 16];
        fill_from(&mut buf, || {
            n += 1;
            n
        });
        assert_eq!(n, 2);
        assert_eq!(buf[8], 2);
    }

    #[test]
    fn copies_are_identical_and_stop_is_heeded() {
        let mut outs = [Vec::new(), Vec::new()];
        write_random(&mut outs, (CHUNK + 5) as u64, &mut Prng::new(1), || false).unwrap();
        assert_eq!(outs[0].len(), CHUNK + 5);
        assert_eq!(outs[0], outs[1]);
        let stopped = write_random(&mut outs, 1, &mut Prng::new(1), || true);
        assert!(matches!(stopped, Err(WriteError::Stopped)));
    }
}
