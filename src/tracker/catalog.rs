//! The live catalog: every file some connected peer holds, with its
//! metadata, and for each file the sessions holding it and their pieces.
//! A file leaves the catalog with its last holder.

use crate::bitfield::Bitfield;
use crate::meta::Info;
use crate::reactor::ConnId;
use crate::rng::Rng;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

pub use crate::wire::InfoHash;

/// What one session holds of one file, as announced.
#[derive(Debug, Clone)]
pub enum Holding {
    All,
    Some(Bitfield),
}

impl Holding {
    pub fn has(&self, piece: u32) -> bool {
        match self {
            Holding::All => true,
            Holding::Some(bits) => bits.get(piece),
        }
    }

    pub fn bits(&self) -> Option<&[u8]> {
        match self {
            Holding::All => None,
            Holding::Some(bits) => Some(bits.as_bytes()),
        }
    }
}

/// One session holding a file. Its bitfield is kept by the file (see
/// [`FileEntry::bits`]), so that answering get-peers reads one block of
/// memory per file instead of one allocation per holder.
#[derive(Debug, Clone, Copy)]
pub struct Holder {
    pub conn: ConnId,
    /// Pieces set in the holder's bitfield.
    count: u32,
    /// Announced with all pieces, or completed by `have`.
    seeder: bool,
    /// Accepts peer connections (Hello `listen_port` != 0): only such
    /// holders are given out by get-peers.
    reachable: bool,
    /// Its session came over IPv6: its address is of no use to an IPv4
    /// asker.
    ipv6: bool,
}

impl Holder {
    pub fn is_seeder(&self) -> bool {
        self.seeder
    }

    /// Pieces it holds.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Who asks for peers: never given itself, nor (over IPv4) IPv6 peers.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub conn: ConnId,
    pub v4_only: bool,
}

#[derive(Debug)]
pub struct FileEntry {
    pub info: Arc<Info>,
    pub holders: Vec<Holder>,
    /// The holders' bitfields, `stride` bytes each, in `holders` order.
    bits: Vec<u8>,
    stride: usize,
    /// `info.num_pieces()`, kept here to spare a pointer chase per lookup.
    pieces: u32,
    /// Position of each session in `holders`, for O(1) updates.
    positions: HashMap<ConnId, usize, ConnHash>,
    pub seeders: u32,
}

impl FileEntry {
    fn new(info: Arc<Info>) -> FileEntry {
        FileEntry {
            stride: info.num_pieces().div_ceil(8) as usize,
            pieces: info.num_pieces(),
            info,
            holders: Vec::new(),
            bits: Vec::new(),
            positions: HashMap::default(),
            seeders: 0,
        }
    }

    pub fn holder(&self, conn: ConnId) -> Option<&Holder> {
        self.positions.get(&conn).map(|&i| &self.holders[i])
    }

    /// The bitfield of holder `i`, or `None` for a seeder.
    pub fn bits(&self, i: usize) -> Option<&[u8]> {
        if self.holders[i].seeder {
            return None;
        }
        self.bits.get(i * self.stride..(i + 1) * self.stride)
    }

    /// Whether holder `i` has `piece`.
    pub fn has(&self, i: usize, piece: u32) -> bool {
        if self.holders[i].seeder {
            return true;
        }
        let byte = i * self.stride + (piece / 8) as usize;
        piece < self.pieces && self.bits[byte] & (0x80 >> (piece % 8)) != 0
    }

    /// Stores what holder `i` announced.
    fn set_holding(&mut self, i: usize, holding: &Holding) {
        let slot = &mut self.bits[i * self.stride..(i + 1) * self.stride];
        let holder = &mut self.holders[i];
        match holding {
            Holding::All => {
                holder.count = self.pieces;
                holder.seeder = true;
            }
            Holding::Some(bits) => {
                // Bitfields reaching the catalog were checked against the
                // piece count; a mismatch here is cut or padded, never a panic.
                let src = bits.as_bytes();
                let n = src.len().min(slot.len());
                slot[..n].copy_from_slice(&src[..n]);
                slot[n..].fill(0);
                holder.count = bits.count();
                holder.seeder = false;
            }
        }
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    files: HashMap<InfoHash, FileEntry, KeyedHash>,
    /// (name, info hash), ordered: the listing order and the name index.
    names: BTreeSet<(String, InfoHash)>,
    /// Fingerprint of each file's bencoded info dict (see
    /// [`Catalog::by_bencoded`]); the first file to claim one keeps it.
    fingerprints: HashMap<u64, InfoHash, ConnHash>,
}

/// Result of marking a piece held.
#[derive(Debug, PartialEq, Eq)]
pub enum HaveOutcome {
    Updated,
    NotHolding,
    OutOfRange,
    UnknownFile,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn get(&self, hash: &InfoHash) -> Option<&FileEntry> {
        self.files.get(hash)
    }

    /// Info hashes of the files named exactly `name`.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a InfoHash> + 'a {
        let start = (name.to_owned(), [0u8; 20]);
        self.names
            .range(start..)
            .take_while(move |(n, _)| n == name)
            .map(|(_, h)| h)
    }

    /// The file whose bencoded info dict is exactly `bencoded`, found
    /// without hashing it with SHA1: by a fingerprint of its length and
    /// ends, then a comparison of every byte.
    pub fn by_bencoded(&self, bencoded: &[u8]) -> Option<&FileEntry> {
        let hash = self
            .fingerprints
            .get(&fingerprint(self.files.hasher(), bencoded))?;
        self.files
            .get(hash)
            .filter(|e| e.info.bencoded.as_slice() == bencoded)
    }

    /// Files in listing order (by name, then info hash).
    pub fn ordered(&self) -> impl Iterator<Item = &FileEntry> {
        self.names.iter().filter_map(|(_, h)| self.files.get(h))
    }

    /// Adds or replaces what `conn` holds of the file `info` describes.
    /// Returns true if the session did not hold the file before.
    pub fn announce(&mut self, conn: ConnId, info: Info, holding: Holding) -> bool {
        let hash = info.info_hash;
        self.hold(conn, hash, holding, (true, false), || Arc::new(info))
    }

    /// [`Catalog::announce`] for the file `hash`, whose metadata `info`
    /// is asked for only if the catalog does not know the file yet.
    /// `reach`: the session accepts peer connections, and came over IPv6.
    pub fn hold(
        &mut self,
        conn: ConnId,
        hash: InfoHash,
        holding: Holding,
        (reachable, ipv6): (bool, bool),
        info: impl FnOnce() -> Arc<Info>,
    ) -> bool {
        let keys = *self.files.hasher();
        let entry = match self.files.entry(hash) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(v) => {
                let info = info();
                self.names.insert((info.name.clone(), hash));
                self.fingerprints
                    .entry(fingerprint(&keys, &info.bencoded))
                    .or_insert(hash);
                v.insert(FileEntry::new(info))
            }
        };
        match entry.positions.get(&conn) {
            Some(&i) => {
                let was_seeding = entry.holders[i].seeder;
                entry.set_holding(i, &holding);
                let seeding = entry.holders[i].seeder;
                entry.seeders = entry.seeders + u32::from(seeding) - u32::from(was_seeding);
                false
            }
            None => {
                let i = entry.holders.len();
                entry.positions.insert(conn, i);
                entry.holders.push(Holder {
                    conn,
                    count: 0,
                    seeder: false,
                    reachable,
                    ipv6,
                });
                entry.bits.resize(entry.bits.len() + entry.stride, 0);
                entry.set_holding(i, &holding);
                entry.seeders += u32::from(entry.holders[i].seeder);
                true
            }
        }
    }

    /// Marks `piece` held by `conn`; a holder that completes becomes a seeder.
    pub fn have(&mut self, conn: ConnId, hash: &InfoHash, piece: u32) -> HaveOutcome {
        let Some(entry) = self.files.get_mut(hash) else {
            return HaveOutcome::UnknownFile;
        };
        let pieces = entry.pieces;
        if piece >= pieces {
            return HaveOutcome::OutOfRange;
        }
        let Some(&i) = entry.positions.get(&conn) else {
            return HaveOutcome::NotHolding;
        };
        let holder = &mut entry.holders[i];
        if !holder.seeder {
            let byte = &mut entry.bits[i * entry.stride + (piece / 8) as usize];
            let mask = 0x80 >> (piece % 8);
            if *byte & mask == 0 {
                *byte |= mask;
                holder.count += 1;
            }
            if holder.count == pieces {
                holder.seeder = true;
                entry.seeders += 1;
            }
        }
        HaveOutcome::Updated
    }

    /// Removes `conn` from the file; the file goes when nobody holds it.
    /// Returns false if the session did not hold it.
    pub fn leave(&mut self, conn: ConnId, hash: &InfoHash) -> bool {
        let Some(entry) = self.files.get_mut(hash) else {
            return false;
        };
        let Some(i) = entry.positions.remove(&conn) else {
            return false;
        };
        let gone = entry.holders.swap_remove(i);
        let last = entry.holders.len();
        let stride = entry.stride;
        if i < last {
            // The last holder moved to `i`: its bitfield follows.
            entry
                .bits
                .copy_within(last * stride..(last + 1) * stride, i * stride);
            entry.positions.insert(entry.holders[i].conn, i);
        }
        entry.bits.truncate(last * stride);
        if gone.seeder {
            entry.seeders -= 1;
        }
        if entry.holders.is_empty() {
            let info = Arc::clone(&entry.info);
            self.files.remove(hash);
            self.names.remove(&(info.name.clone(), *hash));
            let fingerprint = fingerprint(self.files.hasher(), &info.bencoded);
            if self.fingerprints.get(&fingerprint) == Some(hash) {
                self.fingerprints.remove(&fingerprint);
            }
        }
        true
    }

    /// Up to `max` reachable holders of the file (only those with `piece`,
    /// if given), other than `asking`, chosen uniformly at random
    /// (reservoir sampling) so that load spreads over the swarm. Indices
    /// go into `picked`.
    /// Returns how many holders were eligible (to continue the reservoir).
    pub fn sample(
        &self,
        entry: &FileEntry,
        asker: Asker,
        piece: Option<u32>,
        max: usize,
        rng: &mut Rng,
        picked: &mut Vec<usize>,
    ) -> usize {
        picked.clear();
        let mut seen = 0usize;
        for (i, h) in entry.holders.iter().enumerate() {
            if h.conn == asker.conn
                || !h.reachable
                || (asker.v4_only && h.ipv6)
                || piece.is_some_and(|p| !entry.has(i, p))
            {
                continue;
            }
            seen += 1;
            if picked.len() < max {
                picked.push(i);
            } else {
                let j = rng.below(seen);
                if j < max {
                    picked[j] = i;
                }
            }
        }
        // Reservoir sampling keeps early holders in early slots; shuffle so
        // that clients trying peers in order also spread their load.
        for k in (1..picked.len()).rev() {
            picked.swap(k, rng.below(k + 1));
        }
        seen
    }
}

/// A fingerprint of a bencoded info dict: its length and both ends (the
/// name, sizes and first and last piece hashes). Keyed, so that peers cannot
/// aim a dict at another file's fingerprint (which would only cost a failed
/// comparison anyway).
fn fingerprint(keys: &KeyedHash, bytes: &[u8]) -> u64 {
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

#[cfg(test)]
mod tests {
    use super::*;

    const ASKER: Asker = Asker {
        conn: 0,
        v4_only: false,
    };

    fn info(name: &str, pieces: u32) -> Info {
        let piece_length = 16 * 1024;
        let length = u64::from(pieces) * u64::from(piece_length);
        let hashes = (0..pieces * 20).map(|i| i as u8).collect();
        Info::new(name, length, piece_length, hashes).unwrap()
    }

    #[test]
    fn file_lives_while_held_and_seeders_are_counted() {
        let mut c = Catalog::default();
        let f = info("a.bin", 2);
        let h = f.info_hash;
        assert!(c.announce(1, f.clone(), Holding::All));
        assert!(c.announce(2, f, Holding::Some(Bitfield::new(2))));
        assert_eq!(c.get(&h).unwrap().seeders, 1);
        assert_eq!(c.have(2, &h, 0), HaveOutcome::Updated);
        assert_eq!(c.have(2, &h, 2), HaveOutcome::OutOfRange);
        assert_eq!(c.have(3, &h, 1), HaveOutcome::NotHolding);
        assert_eq!(c.have(2, &h, 1), HaveOutcome::Updated);
        assert_eq!(c.get(&h).unwrap().seeders, 2);
        assert!(c.leave(1, &h));
        assert!(!c.leave(1, &h));
        assert_eq!(c.get(&h).unwrap().holder(2).map(|x| x.conn), Some(2));
        assert!(c.leave(2, &h));
        assert!(c.get(&h).is_none());
        assert_eq!(c.by_name("a.bin").count(), 0);
    }

    #[test]
    fn sample_excludes_asker_filters_piece_and_varies() {
        let mut c = Catalog::default();
        let f = info("b.bin", 8);
        let h = f.info_hash;
        for conn in 0..100 {
            let mut bits = Bitfield::new(8);
            bits.set((conn % 8) as u32);
            c.announce(conn, f.clone(), Holding::Some(bits));
        }
        let entry = c.get(&h).unwrap();
        let mut rng = Rng::new(7);
        let mut picked = Vec::new();
        c.sample(entry, ASKER, Some(0), 50, &mut rng, &mut picked);
        // Conns 8, 16, ..., 96 hold piece 0; conn 0 is asking.
        assert_eq!(picked.len(), 12);
        assert!(picked.iter().all(|&i| entry.holders[i].conn % 8 == 0));
        let mut firsts = BTreeSet::new();
        for _ in 0..20 {
            c.sample(entry, ASKER, None, 10, &mut rng, &mut picked);
            assert_eq!(picked.len(), 10);
            firsts.insert(picked[0]);
        }
        assert!(firsts.len() > 5, "sampling should vary: {firsts:?}");
    }

    #[test]
    fn bitfields_follow_their_holders_when_others_leave() {
        let mut c = Catalog::default();
        let f = info("c.bin", 10);
        let h = f.info_hash;
        for conn in 0..4 {
            let mut bits = Bitfield::new(10);
            bits.set(conn as u32);
            c.announce(conn, f.clone(), Holding::Some(bits));
        }
        c.announce(9, f.clone(), Holding::All);
        assert!(c.leave(0, &h));
        assert!(c.leave(2, &h));
        let e = c.get(&h).unwrap();
        for (i, holder) in e.holders.iter().enumerate() {
            match holder.conn {
                9 => assert_eq!(e.bits(i), None),
                conn => {
                    let mut want = Bitfield::new(10);
                    want.set(conn as u32);
                    assert_eq!(e.bits(i), Some(want.as_bytes()), "conn {conn}");
                    assert!(e.has(i, conn as u32) && !e.has(i, 9) && !e.has(i, 10));
                }
            }
        }
        // Re-announcing replaces the bitfield; have completes it.
        assert!(!c.announce(1, f.clone(), Holding::Some(Bitfield::full(10))));
        assert_eq!(c.get(&h).unwrap().seeders, 1);
        assert_eq!(c.have(1, &h, 3), HaveOutcome::Updated);
        assert_eq!(c.get(&h).unwrap().seeders, 2);
        assert!(c.get(&h).unwrap().holder(1).unwrap().is_seeder());
    }

    #[test]
    fn known_dicts_are_found_by_their_bytes_only() {
        let mut c = Catalog::default();
        let f = info("d.bin", 3);
        assert!(c.by_bencoded(&f.bencoded).is_none());
        c.announce(1, f.clone(), Holding::All);
        let found = c.by_bencoded(&f.bencoded).map(|e| e.info.info_hash);
        assert_eq!(found, Some(f.info_hash));
        let mut other = f.bencoded.clone();
        let middle = other.len() / 2;
        other[middle] ^= 1;
        assert!(c.by_bencoded(&other).is_none());
        assert!(c.by_bencoded(&f.bencoded[1..]).is_none());
        c.leave(1, &f.info_hash);
        assert!(c.by_bencoded(&f.bencoded).is_none());
        assert!(c.fingerprints.is_empty());
    }
}
