//! The simulated population: files with real info dicts, and who holds
//! which (as seeder or with some pieces), the same for a given `--seed`.

use crate::BoxError;
use crate::args::{Args, Dist};
use sta::meta::Info;
use sta::rng::Rng;
use sta::wire::{InfoHash, PeerId};
use sta_kit::random::fill_from;

/// A file of the population.
pub struct FileSpec {
    /// The bencoded info dict, as announced.
    pub info: Vec<u8>,
    pub hash: InfoHash,
    pub pieces: u32,
}

/// A file a simulated peer holds.
#[derive(Debug, Clone, Copy)]
pub struct Hold {
    pub file: u32,
    pub seeder: bool,
}

pub struct Population {
    pub files: Vec<FileSpec>,
    /// What each simulated peer holds.
    pub sessions: Vec<Vec<Hold>>,
    pub entries: usize,
}

pub const PIECE_LENGTH: u32 = 256 * 1024;

pub fn build_population(a: &Args) -> Result<Population, BoxError> {
    let mut rng = Rng::new(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut files = Vec::with_capacity(a.files);
    for i in 0..a.files {
        let pieces = a.min_pieces + rng.below((a.max_pieces - a.min_pieces + 1) as usize) as u32;
        let mut hashes = vec![0u8; pieces as usize * 20];
        fill_from(&mut hashes, || rng.next_u64());
        let length = u64::from(pieces - 1) * u64::from(PIECE_LENGTH)
            + 1
            + rng.below(PIECE_LENGTH as usize) as u64;
        let info = Info::new(&format!("loadgen-{i:05}.bin"), length, PIECE_LENGTH, hashes)
            .map_err(|e| format!("file {i} of {pieces} pieces: {e}"))?;
        files.push(FileSpec {
            hash: info.info_hash,
            pieces: info.num_pieces(),
            info: info.bencoded,
        });
    }
    let mut sessions = vec![Vec::new(); a.sessions];
    let mut perm: Vec<u32> = (0..a.sessions as u32).collect();
    let mut entries = 0;
    for (f, _) in files.iter().enumerate() {
        let k = match a.dist {
            Dist::Uniform => 1 + rng.below(a.max_peers),
            // Popularity falls with rank: a few big swarms, a long tail.
            Dist::Zipf => ((a.max_peers as f64) / ((f + 1) as f64).powf(0.6)).round() as usize,
        }
        .clamp(1, a.max_peers);
        // A partial Fisher-Yates shuffle picks k distinct holders.
        for j in 0..k {
            let r = j + rng.below(a.sessions - j);
            perm.swap(j, r);
            sessions[perm[j] as usize].push(Hold {
                file: f as u32,
                seeder: rng.below(100) < a.seeders as usize,
            });
        }
        entries += k;
    }
    Ok(Population {
        files,
        sessions,
        entries,
    })
}

pub fn peer_id(i: usize) -> PeerId {
    let mut id = *b"-SL0001-000000000000";
    let digits = format!("{i:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

/// A listen port per peer, distinct for the first 45,000 peers (and never 0).
pub fn peer_port(i: usize) -> u16 {
    20_000 + (i % 45_000) as u16
}

/// A partial bitfield for a file of `pieces` pieces: random bytes of some
/// density, spare bits zero, and the last piece missing so it is never
/// complete (a complete bitfield would make the peer a seeder).
pub fn random_partial(rng: &mut Rng, pieces: u32, bits: &mut Vec<u8>) {
    let n = pieces.div_ceil(8) as usize;
    bits.clear();
    let density = rng.below(3);
    for _ in 0..n {
        let (x, y) = (rng.next_u64() as u8, (rng.next_u64() >> 8) as u8);
        bits.push(match density {
            0 => x & y,
            1 => x,
            _ => x | y,
        });
    }
    let spare = n as u32 * 8 - pieces;
    bits[n - 1] &= 0xffu8 << spare;
    let last = pieces - 1;
    bits[(last / 8) as usize] &= !(0x80u8 >> (last % 8));
}

#[cfg(test)]
mod tests {
    use super::*;
    use sta::bitfield::Bitfield;

    #[test]
    fn partial_bitfields_are_valid_and_never_complete() {
        let mut rng = Rng::new(9);
        let mut bits = Vec::new();
        for pieces in [1, 7, 8, 9, 64, 513] {
            for _ in 0..50 {
                random_partial(&mut rng, pieces, &mut bits);
                let b = Bitfield::from_bytes(&bits, pieces).expect("spare bits are zero");
                assert!(!b.get(pieces - 1), "the last piece is missing");
            }
        }
    }

    #[test]
    fn peer_ids_are_distinct_20_bytes() {
        assert_ne!(peer_id(1), peer_id(2));
        assert!(peer_id(123).starts_with(b"-SL0001-"));
    }
}
