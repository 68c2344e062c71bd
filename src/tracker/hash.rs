//! Hashers for the tracker's tables: fast folded multiplies, keyed where
//! peers choose the keys.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A fingerprint of a bencoded info dict: its length and both ends (the
/// name, sizes and first and last piece hashes). Keyed, so that peers cannot
/// aim a dict at another file's fingerprint (which would only cost a failed
/// comparison anyway).
pub fn fingerprint_of(keys: &KeyedHash, bytes: &[u8]) -> u64 {
    const ENDS: usize = 256;
    let mut h = keys.build_hasher();
    h.write_usize(bytes.len());
    h.write(&bytes[..bytes.len().min(ENDS)]);
    h.write(&bytes[bytes.len().saturating_sub(ENDS)..]);
    h.finish()
}

/// Folded multiply: a fast mixer of 64-bit words (the high and low halves
/// of the 128-bit product, xor-ed).
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// A hasher for keys that need no protection from chosen collisions, and
/// the mixing step of [`KeyedHash`]. SipHash, std's default, costs more
/// than the rest of a have or get-peers lookup.
#[derive(Debug, Clone, Copy)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = fold(self.0 ^ u64::from_le_bytes(word), MIX);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = fold(self.0 ^ n, MIX);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Hashes connection ids: the reactor's slab keys, not chosen by peers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnHash;

impl BuildHasher for ConnHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

/// Hashes info hashes with a secret key drawn per catalog: peers cannot
/// choose SHA1 outputs, and without the key cannot aim them at one bucket.
#[derive(Debug, Clone, Copy)]
pub struct KeyedHash(u64);

impl Default for KeyedHash {
    fn default() -> Self {
        KeyedHash(RandomState::new().hash_one(MIX))
    }
}

impl BuildHasher for KeyedHash {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}
