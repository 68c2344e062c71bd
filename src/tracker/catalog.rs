//! The live catalog: every file some connected peer holds, with its
//! metadata, and for each file the sessions holding it and their pieces.
//! A file leaves the catalog with its last holder.
//!
//! Laid out to hold a fleet (millions of (session, file) entries) in
//! little memory: files and sessions are interned to `u32` indices; a
//! file keeps its holders in one vector (see `file_entry.rs`), and a
//! session keeps, sorted by file, where it sits in each file's vector
//! (8 bytes per entry). No hash map has a node per entry.

use super::hash::fingerprint_of;
use crate::meta::Info;
use crate::reactor::ConnId;
use crate::rng::Rng;
use slab::Slab;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

pub use super::file_entry::{FileEntry, Holder, Holding};
use super::file_entry::{IPV6, REACHABLE, SESSION_MASK};
pub use super::hash::{ConnHash, FoldHasher, KeyedHash};
pub use crate::wire::InfoHash;

/// Who asks for peers: never given itself, nor (over IPv4) IPv6 peers.
#[derive(Debug, Clone, Copy)]
pub struct Asker {
    pub conn: ConnId,
    pub v4_only: bool,
}

/// Where a session sits in one file's holders.
#[derive(Debug, Clone, Copy)]
struct Held {
    file: u32,
    pos: u32,
}

/// A session holding at least one file.
#[derive(Debug)]
struct Session {
    conn: ConnId,
    /// Sorted by `file`.
    held: Vec<Held>,
}

impl Session {
    fn find(&self, file: u32) -> Result<usize, usize> {
        self.held.binary_search_by_key(&file, |h| h.file)
    }
}

#[derive(Debug, Default)]
pub struct Catalog {
    files: Slab<FileEntry>,
    by_hash: HashMap<InfoHash, u32, KeyedHash>,
    sessions: Slab<Session>,
    by_conn: HashMap<ConnId, u32, ConnHash>,
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
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn get(&self, hash: &InfoHash) -> Option<&FileEntry> {
        self.by_hash
            .get(hash)
            .and_then(|&f| self.files.get(f as usize))
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
            .get(&fingerprint_of(self.by_hash.hasher(), bencoded))?;
        self.get(hash)
            .filter(|e| e.info.bencoded.as_slice() == bencoded)
    }

    /// Files in listing order (by name, then info hash).
    pub fn ordered(&self) -> impl Iterator<Item = &FileEntry> {
        self.names.iter().filter_map(|(_, h)| self.get(h))
    }

    /// The session of a holder.
    pub fn conn_of(&self, holder: &Holder) -> Option<ConnId> {
        self.sessions.get(holder.session() as usize).map(|s| s.conn)
    }

    /// What `conn` holds of the file `hash`, if anything.
    pub fn holder(&self, conn: ConnId, hash: &InfoHash) -> Option<&Holder> {
        let (file, pos) = self.position(conn, hash)?;
        self.files.get(file as usize)?.holders.get(pos)
    }

    /// How many files `conn` holds.
    pub fn files_of(&self, conn: ConnId) -> usize {
        self.by_conn
            .get(&conn)
            .and_then(|&s| self.sessions.get(s as usize))
            .map_or(0, |s| s.held.len())
    }

    /// The file index and holder position of `conn` in the file `hash`.
    fn position(&self, conn: ConnId, hash: &InfoHash) -> Option<(u32, usize)> {
        let file = *self.by_hash.get(hash)?;
        let s = self.sessions.get(*self.by_conn.get(&conn)? as usize)?;
        let k = s.find(file).ok()?;
        Some((file, s.held[k].pos as usize))
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
    /// False too (and nothing changes) past 2^30 sessions at once.
    pub fn hold(
        &mut self,
        conn: ConnId,
        hash: InfoHash,
        holding: Holding,
        (reachable, ipv6): (bool, bool),
        info: impl FnOnce() -> Arc<Info>,
    ) -> bool {
        let session = match self.by_conn.get(&conn) {
            Some(&s) => s,
            None if self.sessions.vacant_key() >= SESSION_MASK as usize => return false,
            None => {
                let s = self.sessions.insert(Session {
                    conn,
                    held: Vec::new(),
                }) as u32;
                self.by_conn.insert(conn, s);
                s
            }
        };
        let keys = *self.by_hash.hasher();
        let file = match self.by_hash.entry(hash) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(v) => {
                let info = info();
                self.names.insert((info.name.clone(), hash));
                self.fingerprints
                    .entry(fingerprint_of(&keys, &info.bencoded))
                    .or_insert(hash);
                *v.insert(self.files.insert(FileEntry::new(info)) as u32)
            }
        };
        let entry = &mut self.files[file as usize];
        let s = &mut self.sessions[session as usize];
        match s.find(file) {
            Ok(k) => {
                entry.set_holding(s.held[k].pos as usize, &holding);
                false
            }
            Err(k) => {
                let tag =
                    session | if reachable { REACHABLE } else { 0 } | if ipv6 { IPV6 } else { 0 };
                let pos = entry.push(tag, &holding) as u32;
                s.held.insert(k, Held { file, pos });
                true
            }
        }
    }

    /// Marks `piece` held by `conn`; a holder that completes becomes a seeder.
    pub fn have(&mut self, conn: ConnId, hash: &InfoHash, piece: u32) -> HaveOutcome {
        let Some(&file) = self.by_hash.get(hash) else {
            return HaveOutcome::UnknownFile;
        };
        let Some(entry) = self.files.get(file as usize) else {
            return HaveOutcome::UnknownFile;
        };
        if piece >= entry.info.num_pieces() {
            return HaveOutcome::OutOfRange;
        }
        let Some((_, pos)) = self.position(conn, hash) else {
            return HaveOutcome::NotHolding;
        };
        self.files[file as usize].set_piece(pos, piece);
        HaveOutcome::Updated
    }

    /// Removes `conn` from the file; the file goes when nobody holds it.
    /// Returns false if the session did not hold it.
    pub fn leave(&mut self, conn: ConnId, hash: &InfoHash) -> bool {
        let Some(&file) = self.by_hash.get(hash) else {
            return false;
        };
        let Some(&session) = self.by_conn.get(&conn) else {
            return false;
        };
        let Some(s) = self.sessions.get_mut(session as usize) else {
            return false;
        };
        let Ok(k) = s.find(file) else {
            return false;
        };
        let pos = s.held.remove(k).pos;
        if s.held.is_empty() {
            self.sessions.remove(session as usize);
            self.by_conn.remove(&conn);
        }
        self.drop_holder(file, pos as usize);
        true
    }

    /// Removes every holding of `conn` (its session closed).
    pub fn leave_all(&mut self, conn: ConnId) {
        let Some(session) = self.by_conn.remove(&conn) else {
            return;
        };
        let Some(s) = self.sessions.try_remove(session as usize) else {
            return;
        };
        for h in s.held {
            self.drop_holder(h.file, h.pos as usize);
        }
    }

    /// Takes the holder at `pos` out of `file`, mends the position of the
    /// holder moved into its place, and drops the file if it was the last.
    fn drop_holder(&mut self, file: u32, pos: usize) {
        let Some(entry) = self.files.get_mut(file as usize) else {
            return;
        };
        if let Some(moved) = entry.swap_remove(pos)
            && let Some(s) = self.sessions.get_mut(moved as usize)
            && let Ok(k) = s.find(file)
        {
            s.held[k].pos = pos as u32;
        }
        if !entry.holders.is_empty() {
            return;
        }
        let info = self.files.remove(file as usize).info;
        let hash = info.info_hash;
        self.by_hash.remove(&hash);
        self.names.remove(&(info.name.clone(), hash));
        let fingerprint = fingerprint_of(self.by_hash.hasher(), &info.bencoded);
        if self.fingerprints.get(&fingerprint) == Some(&hash) {
            self.fingerprints.remove(&fingerprint);
        }
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
        // An asker that holds nothing is no holder: no index matches.
        let me = self.by_conn.get(&asker.conn).copied().unwrap_or(u32::MAX);
        let mut seen = 0usize;
        for (i, h) in entry.holders.iter().enumerate() {
            if h.session() == me
                || !h.reachable()
                || (asker.v4_only && h.ipv6())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitfield::Bitfield;

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
        assert_eq!(c.holder(2, &h).and_then(|x| c.conn_of(x)), Some(2));
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
        assert!(picked.iter().all(|&i| {
            c.conn_of(&entry.holders[i])
                .is_some_and(|conn| conn % 8 == 0)
        }));
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
            match c.conn_of(holder).unwrap() {
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
        assert!(c.holder(1, &h).unwrap().is_seeder());
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

    #[test]
    fn positions_and_slots_stay_right_through_random_churn() {
        let files: Vec<Info> = (0..5).map(|i| info(&format!("f{i}"), 9 + i)).collect();
        let mut c = Catalog::default();
        // (conn, file) -> pieces held, None for a seeder.
        let mut model: HashMap<(usize, usize), Option<Bitfield>> = HashMap::new();
        let mut rng = Rng::new(11);
        for step in 0..4000 {
            let (conn, f) = (rng.below(20), rng.below(files.len()));
            let n = files[f].num_pieces();
            let hash = files[f].info_hash;
            match rng.below(10) {
                0..=3 => {
                    let holding = if rng.below(3) == 0 {
                        Holding::All
                    } else {
                        let mut b = Bitfield::new(n);
                        b.set(rng.below(n as usize) as u32);
                        Holding::Some(b)
                    };
                    let new = c.announce(conn, files[f].clone(), holding.clone());
                    let old = model.insert(
                        (conn, f),
                        match holding {
                            Holding::All => None,
                            Holding::Some(b) => Some(b),
                        },
                    );
                    assert_eq!(new, old.is_none(), "step {step}");
                }
                4..=6 => {
                    let p = rng.below(n as usize) as u32;
                    let held = model.get_mut(&(conn, f));
                    let outcome = c.have(conn, &hash, p);
                    match held {
                        Some(slot) => {
                            assert_eq!(outcome, HaveOutcome::Updated);
                            if let Some(b) = slot {
                                b.set(p);
                                if b.is_complete() {
                                    *slot = None;
                                }
                            }
                        }
                        None => assert_ne!(outcome, HaveOutcome::Updated),
                    }
                }
                7..=8 => {
                    assert_eq!(c.leave(conn, &hash), model.remove(&(conn, f)).is_some());
                }
                _ => {
                    c.leave_all(conn);
                    model.retain(|&(k, _), _| k != conn);
                }
            }
            for (f, file) in files.iter().enumerate() {
                let holders = model.keys().filter(|k| k.1 == f).count();
                let seeders = model
                    .iter()
                    .filter(|(k, v)| k.1 == f && v.is_none())
                    .count();
                match c.get(&file.info_hash) {
                    None => assert_eq!(holders, 0, "step {step}"),
                    Some(e) => {
                        assert_eq!((e.holders.len(), e.seeders as usize), (holders, seeders));
                        for (i, h) in e.holders.iter().enumerate() {
                            let conn = c.conn_of(h).unwrap();
                            let want = &model[&(conn, f)];
                            assert_eq!(e.bits(i), want.as_ref().map(Bitfield::as_bytes));
                            assert_eq!(
                                h.count(),
                                want.as_ref().map_or(file.num_pieces(), Bitfield::count)
                            );
                        }
                    }
                }
            }
            for conn in 0..20 {
                let held = model.keys().filter(|k| k.0 == conn).count();
                assert_eq!(c.files_of(conn), held, "step {step}");
            }
        }
    }
}
