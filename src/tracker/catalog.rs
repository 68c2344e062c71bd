//! The live catalog: every file some connected peer holds, with its
//! metadata, and for each file the sessions holding it and their pieces.
//! A file leaves the catalog with its last holder.

use crate::bitfield::Bitfield;
use crate::meta::Info;
use crate::reactor::ConnId;
use crate::rng::Rng;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub type InfoHash = [u8; 20];

/// What one session holds of one file.
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

#[derive(Debug)]
pub struct Holder {
    pub conn: ConnId,
    pub holding: Holding,
}

#[derive(Debug)]
pub struct FileEntry {
    pub info: Arc<Info>,
    pub holders: Vec<Holder>,
    /// Position of each session in `holders`, for O(1) updates.
    positions: HashMap<ConnId, usize>,
    pub seeders: u32,
}

impl FileEntry {
    pub fn holder(&self, conn: ConnId) -> Option<&Holder> {
        self.positions.get(&conn).map(|&i| &self.holders[i])
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    files: HashMap<InfoHash, FileEntry>,
    /// (name, info hash), ordered: the listing order and the name index.
    names: BTreeSet<(String, InfoHash)>,
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

    /// Files in listing order (by name, then info hash).
    pub fn ordered(&self) -> impl Iterator<Item = &FileEntry> {
        self.names.iter().filter_map(|(_, h)| self.files.get(h))
    }

    /// Adds or replaces what `conn` holds of the file `info` describes.
    /// Returns true if the session did not hold the file before.
    pub fn announce(&mut self, conn: ConnId, info: Info, holding: Holding) -> bool {
        let hash = info.info_hash;
        let entry = self.files.entry(hash).or_insert_with(|| {
            self.names.insert((info.name.clone(), hash));
            FileEntry {
                info: Arc::new(info),
                holders: Vec::new(),
                positions: HashMap::new(),
                seeders: 0,
            }
        });
        let seeding = matches!(holding, Holding::All);
        match entry.positions.get(&conn) {
            Some(&i) => {
                let was_seeding = matches!(entry.holders[i].holding, Holding::All);
                entry.holders[i].holding = holding;
                entry.seeders = entry.seeders + u32::from(seeding) - u32::from(was_seeding);
                false
            }
            None => {
                entry.positions.insert(conn, entry.holders.len());
                entry.holders.push(Holder { conn, holding });
                entry.seeders += u32::from(seeding);
                true
            }
        }
    }

    /// Marks `piece` held by `conn`; a holder that completes becomes a seeder.
    pub fn have(&mut self, conn: ConnId, hash: &InfoHash, piece: u32) -> HaveOutcome {
        let Some(entry) = self.files.get_mut(hash) else {
            return HaveOutcome::UnknownFile;
        };
        if piece >= entry.info.num_pieces() {
            return HaveOutcome::OutOfRange;
        }
        let Some(&i) = entry.positions.get(&conn) else {
            return HaveOutcome::NotHolding;
        };
        let holder = &mut entry.holders[i];
        if let Holding::Some(bits) = &mut holder.holding {
            bits.set(piece);
            if bits.is_complete() {
                holder.holding = Holding::All;
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
        if let Some(moved) = entry.holders.get(i) {
            entry.positions.insert(moved.conn, i);
        }
        if matches!(gone.holding, Holding::All) {
            entry.seeders -= 1;
        }
        if entry.holders.is_empty() {
            let name = entry.info.name.clone();
            self.files.remove(hash);
            self.names.remove(&(name, *hash));
        }
        true
    }

    /// Up to `max` holders of the file (only those with `piece`, if given),
    /// other than `asking`, chosen uniformly at random (reservoir sampling)
    /// so that load spreads over the swarm. Indices go into `picked`.
    pub fn sample(
        &self,
        entry: &FileEntry,
        asking: ConnId,
        piece: Option<u32>,
        max: usize,
        rng: &mut Rng,
        picked: &mut Vec<usize>,
    ) {
        picked.clear();
        let mut seen = 0usize;
        for (i, h) in entry.holders.iter().enumerate() {
            if h.conn == asking || piece.is_some_and(|p| !h.holding.has(p)) {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        c.sample(entry, 0, Some(0), 50, &mut rng, &mut picked);
        // Conns 8, 16, ..., 96 hold piece 0; conn 0 is asking.
        assert_eq!(picked.len(), 12);
        assert!(picked.iter().all(|&i| entry.holders[i].conn % 8 == 0));
        let mut firsts = BTreeSet::new();
        for _ in 0..20 {
            c.sample(entry, 0, None, 10, &mut rng, &mut picked);
            assert_eq!(picked.len(), 10);
            firsts.insert(picked[0]);
        }
        assert!(firsts.len() > 5, "sampling should vary: {firsts:?}");
    }
}
