//! Disks of simulated hosts. Two kinds behind one trait: real bytes
//! ([`MemStorage`], real SHA1) for small scenarios that check every byte,
//! and [`RefStorage`], which keeps per block only whether it was written
//! and by an honest sender, so a thousand hosts with 64 MiB each fit in a
//! few megabytes. A piece message of a `RefStorage` host carries a marker
//! payload: all 0x00 for an honest block, all 0xFF for a forged one.

use crate::engine::storage::MemFiles;
use crate::engine::{FileId, Job, JobDone, MemStorage, Storage};
use crate::limits::BLOCK_SIZE;
use crate::rng::Rng;
use crate::storage::{StorageError, final_path, part_path};
use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};

/// The payload of a piece message.
#[derive(Debug)]
pub enum Body {
    /// `len` bytes all equal to this marker.
    Fill(u8),
    Bytes(Vec<u8>),
}

/// The marker of honest blocks; anything else is forged.
pub const HONEST: u8 = 0x00;
pub const FORGED: u8 = 0xFF;

/// What the simulator needs of a disk besides the engine's calls.
pub trait SimStorage: Storage + Default {
    /// Answers a job at once, as the hash pool would (later, in virtual
    /// time: the simulator delays the answer).
    fn run(&mut self, job: &Job) -> JobDone;
    /// The payload of a block of `file`; `forge` for a liar's.
    fn block(&self, file: FileId, offset: u64, len: u32, forge: bool) -> Option<Body>;
    /// Puts a file of `length` bytes at `path`, its content drawn from
    /// `seed` (hosts given the same seed hold the same file).
    fn create(&mut self, path: &Path, length: u64, seed: u64);
    /// A full disk refuses writes and space reservations while set.
    fn set_full(&mut self, full: bool);
}

impl SimStorage for MemStorage {
    fn run(&mut self, job: &Job) -> JobDone {
        MemStorage::run(self, job)
    }

    fn block(&self, file: FileId, offset: u64, len: u32, forge: bool) -> Option<Body> {
        let bytes = self.fs.files.get(&self.path(file))?;
        let at = usize::try_from(offset).ok()?;
        let mut b = bytes.get(at..at.checked_add(len as usize)?)?.to_vec();
        if forge {
            b.iter_mut().for_each(|x| *x ^= 0xFF);
        }
        Some(Body::Bytes(b))
    }

    fn create(&mut self, path: &Path, length: u64, seed: u64) {
        let mut rng = Rng::new(seed);
        let mut bytes = Vec::with_capacity(length as usize);
        while (bytes.len() as u64) < length {
            let word = rng.next_u64().to_le_bytes();
            let n = word.len().min((length - bytes.len() as u64) as usize);
            bytes.extend_from_slice(&word[..n]);
        }
        self.fs.files.insert(path.to_owned(), bytes);
    }

    fn set_full(&mut self, full: bool) {
        self.full = full;
    }
}

/// State of one 16 KiB block of a [`RefStorage`] file.
const UNWRITTEN: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

#[derive(Debug, Clone)]
struct RefFile {
    length: u64,
    blocks: Vec<u8>,
}

/// A disk that remembers, per 16 KiB block, whether it holds the right
/// bytes, not the bytes. Its "SHA1" of a piece is a fixed function of the
/// piece's place in the file when every block is good, and
/// something else otherwise, so the engine's hash checks behave as with
/// real data.
#[derive(Debug, Default)]
pub struct RefStorage {
    files: BTreeMap<PathBuf, RefFile>,
    /// Small files (`.part.info` metadata) and directories.
    small: MemFiles,
    open: BTreeMap<FileId, (PathBuf, u64)>,
    next_file: FileId,
    full: bool,
}

/// The canonical hash of the piece at `offset`, standing in for SHA1 of
/// its bytes. Every `RefStorage` file has the same content, so where the
/// piece is and how long says it all (files differ by name, hence by
/// info hash).
pub fn fake_hash(offset: u64, len: u64) -> [u8; 20] {
    let mut rng = Rng::new(offset.rotate_left(23) ^ len ^ 0x5354_4153_494d);
    let mut h = [0u8; 20];
    for chunk in h.chunks_mut(8) {
        let w = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
    h
}

fn block_range(offset: u64, len: u64) -> std::ops::Range<usize> {
    let b = u64::from(BLOCK_SIZE);
    (offset / b) as usize..(offset + len).div_ceil(b) as usize
}

impl RefStorage {
    fn file(&self, file: FileId) -> Option<&RefFile> {
        self.files.get(&self.open.get(&file)?.0)
    }

    /// True when every block of `offset..offset + len` is good.
    fn good(&self, file: FileId, offset: u64, len: u64) -> io::Result<bool> {
        let f = self.file(file).ok_or(io::ErrorKind::NotFound)?;
        let blocks = f
            .blocks
            .get(block_range(offset, len))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        Ok(blocks.iter().all(|&b| b == GOOD))
    }

    fn add(&mut self, path: PathBuf, length: u64) -> FileId {
        self.next_file += 1;
        self.open.insert(self.next_file, (path, length));
        self.next_file
    }

    /// Blocks of the file at `path` that are good, for checks.
    pub fn good_blocks(&self, path: &Path) -> Option<usize> {
        let f = self.files.get(path)?;
        Some(f.blocks.iter().filter(|&&b| b == GOOD).count())
    }
}

impl SimStorage for RefStorage {
    fn run(&mut self, job: &Job) -> JobDone {
        match job {
            Job::Allocate { tag, .. } => JobDone::Allocated {
                tag: *tag,
                result: match self.full {
                    true => Err(io::ErrorKind::StorageFull.into()),
                    false => Ok(()),
                },
            },
            Job::Hash {
                tag,
                file,
                length,
                piece_length,
                pieces,
            } => {
                let hashes = pieces.clone().try_fold(Vec::new(), |mut out, p| {
                    let at = u64::from(p) * u64::from(*piece_length);
                    let len = length.saturating_sub(at).min(u64::from(*piece_length));
                    let mut h = fake_hash(at, len);
                    if !self.good(*file, at, len)? {
                        h[0] ^= 1;
                    }
                    out.extend_from_slice(&h);
                    Ok(out)
                });
                JobDone::Hashed {
                    tag: *tag,
                    pieces: pieces.clone(),
                    hashes,
                }
            }
            Job::Verify {
                tag,
                piece,
                expected,
                file,
                offset,
                length,
                ..
            } => {
                let canonical = fake_hash(*offset, u64::from(*length));
                JobDone::Verified {
                    tag: *tag,
                    piece: *piece,
                    result: self
                        .good(*file, *offset, u64::from(*length))
                        .map(|g| g && canonical == *expected),
                }
            }
        }
    }

    fn block(&self, file: FileId, offset: u64, len: u32, forge: bool) -> Option<Body> {
        let f = self.file(file)?;
        let blocks = f.blocks.get(block_range(offset, u64::from(len)))?;
        let good = blocks.iter().all(|&b| b == GOOD);
        Some(Body::Fill(if good && !forge { HONEST } else { FORGED }))
    }

    fn create(&mut self, path: &Path, length: u64, _seed: u64) {
        let n = length.div_ceil(u64::from(BLOCK_SIZE)) as usize;
        let f = RefFile {
            length,
            blocks: vec![GOOD; n],
        };
        self.files.insert(path.to_owned(), f);
    }

    fn set_full(&mut self, full: bool) {
        self.full = full;
    }
}

impl Storage for RefStorage {
    fn open_shared(&mut self, path: &Path, _: u32) -> Result<(FileId, u64), StorageError> {
        let len = self
            .files
            .get(path)
            .ok_or_else(|| StorageError::Io(path.to_owned(), io::ErrorKind::NotFound.into()))?
            .length;
        if len == 0 {
            return Err(StorageError::Empty(path.to_owned()));
        }
        Ok((self.add(path.to_owned(), len), len))
    }

    fn tree(&self, _file: FileId) -> Option<&crate::meta::Info> {
        None
    }

    fn finish_tree(
        &mut self,
        _: FileId,
        _: &[u8],
    ) -> Option<Result<std::sync::Arc<crate::meta::Info>, crate::meta::InfoError>> {
        None
    }

    fn open_part(
        &mut self,
        dir: &Path,
        info: &std::sync::Arc<crate::meta::Info>,
        _wanted: Option<&[bool]>,
    ) -> Result<(FileId, bool), StorageError> {
        let length = info.length;
        let path = part_path(&final_path(dir, &info.name)?);
        let resumed = self.files.get(&path).is_some_and(|f| f.length == length);
        if !resumed {
            let n = length.div_ceil(u64::from(BLOCK_SIZE)) as usize;
            let f = RefFile {
                length,
                blocks: vec![UNWRITTEN; n],
            };
            self.files.insert(path.clone(), f);
        }
        Ok((self.add(path, length), resumed))
    }

    fn write(&mut self, file: FileId, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        if self.full {
            return Err(io::ErrorKind::StorageFull.into());
        }
        let path = &self.open.get(&file).ok_or(io::ErrorKind::NotFound)?.0;
        let f = self.files.get_mut(path).ok_or(io::ErrorKind::NotFound)?;
        let mut at = offset;
        for b in bufs.iter() {
            let mark = match b.first() {
                Some(&HONEST) => GOOD,
                _ => BAD,
            };
            let range = block_range(at, b.len() as u64);
            let dst = f.blocks.get_mut(range).ok_or(io::ErrorKind::InvalidInput)?;
            dst.fill(mark);
            at += b.len() as u64;
        }
        Ok(())
    }

    fn finish(&mut self, file: FileId, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        let target = final_path(dir, name)?;
        if self.files.contains_key(&target) {
            return Err(StorageError::Exists(target));
        }
        let Some((path, _)) = self.open.get_mut(&file) else {
            return Err(StorageError::Io(target, io::ErrorKind::NotFound.into()));
        };
        if let Some(f) = self.files.remove(path) {
            self.files.insert(target.clone(), f);
        }
        *path = target.clone();
        Ok(target)
    }

    fn path(&self, file: FileId) -> PathBuf {
        self.open
            .get(&file)
            .map(|(p, _)| p.clone())
            .unwrap_or_default()
    }

    fn size_intact(&self, file: FileId) -> bool {
        let len = self.open.get(&file).map(|(_, l)| *l);
        self.file(file).map(|f| f.length) == len
    }

    fn close(&mut self, file: FileId, delete: bool) -> io::Result<()> {
        if let Some((path, _)) = self.open.remove(&file)
            && delete
        {
            self.files.remove(&path);
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.small.exists(path)
    }

    fn create_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.small.create_dir(dir);
        Ok(())
    }

    fn read_small(&mut self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        self.small.read_small(path, max)
    }

    fn save_resume(&mut self, final_path: &Path, info: &[u8]) -> io::Result<()> {
        self.small.save_resume(final_path, info);
        Ok(())
    }

    fn drop_resume(&mut self, final_path: &Path) {
        self.small.drop_resume(final_path);
    }

    fn resumable(&mut self, dir: &Path) -> Vec<(PathBuf, io::Result<Vec<u8>>)> {
        self.small.resumable(dir)
    }
}
