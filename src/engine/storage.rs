//! The engine's view of the disk: a small trait the shell implements with
//! memory-mapped files, and [`MemStorage`], a whole disk in memory for the
//! engine's tests. Calls are quick (open, write a few blocks, rename);
//! anything slow (hashing, reserving space) is a [`super::Job`] instead.

use super::action::{FileId, Job, JobDone};
use crate::meta::{Info, InfoError};
use crate::storage::{StorageError, final_path, info_path, part_path};
use sha1::{Digest, Sha1};
use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub trait Storage {
    /// Opens an existing file or directory to share it, in pieces of
    /// `piece_length`; returns it and its length.
    fn open_shared(
        &mut self,
        path: &Path,
        piece_length: u32,
    ) -> Result<(FileId, u64), StorageError>;
    /// The info dict of a directory opened by `open_shared`, written while
    /// it was listed, its piece hashes zero until [`Storage::finish_tree`];
    /// `None` for a file.
    fn tree(&self, file: FileId) -> Option<&Info>;
    /// That dict with the piece hashes of the directory, made in place:
    /// a tree of 100,000 files would otherwise hold two (`None` for a
    /// file). Its files are found through it from then on.
    fn finish_tree(&mut self, file: FileId, hashes: &[u8]) -> Option<Result<Arc<Info>, InfoError>>;
    /// The metadata of a share is `info` (the dict of
    /// [`Storage::finish_tree`] with other keys): its files are found
    /// through it from now on.
    fn adopt(&mut self, _file: FileId, _info: &Arc<Info>) {}
    /// Opens `dir/NAME.part` (a file, or a directory for a tree) for the
    /// download of `info`, creating it if needed; `wanted` says which of
    /// `info.files()` to write (all when `None`). True when an earlier
    /// `.part` was found.
    fn open_part(
        &mut self,
        dir: &Path,
        info: &Arc<Info>,
        wanted: Option<&[bool]>,
    ) -> Result<(FileId, bool), StorageError>;
    /// Writes `bufs`, consecutive in the file, at `offset`.
    fn write(&mut self, file: FileId, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()>;
    /// Gives a complete download its final name, never replacing a file.
    fn finish(&mut self, file: FileId, dir: &Path, name: &str) -> Result<PathBuf, StorageError>;
    /// Where the file is now, for messages.
    fn path(&self, file: FileId) -> PathBuf;
    /// True while the file still has the length it had when opened.
    fn size_intact(&self, file: FileId) -> bool;
    /// Forgets the file; with `delete`, removes it from disk too.
    fn close(&mut self, file: FileId, delete: bool) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// Creates `dir` and its parents (as `mkdir -p`).
    fn create_dir(&mut self, dir: &Path) -> io::Result<()>;
    /// Reads a whole small file (a `.torrent`), refusing one over `max`.
    fn read_small(&mut self, path: &Path, max: u64) -> io::Result<Vec<u8>>;
    /// Keeps the metadata of the download of `final_path` beside it, so a
    /// restarted daemon resumes on its own.
    fn save_resume(&mut self, final_path: &Path, info: &[u8]) -> io::Result<()>;
    fn drop_resume(&mut self, final_path: &Path);
    /// The metadata of every download left unfinished in `dir`.
    fn resumable(&mut self, dir: &Path) -> Vec<(PathBuf, io::Result<Vec<u8>>)>;
}

/// Small files and directories of a disk in memory: what the [`Storage`]
/// calls for `.torrent` files, resume sidecars and output directories do
/// on it, for [`MemStorage`] and the simulator's stores.
#[derive(Debug, Default)]
pub struct MemFiles {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub dirs: Vec<PathBuf>,
}

impl MemFiles {
    pub fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.dirs.iter().any(|d| d == path)
    }

    pub fn create_dir(&mut self, dir: &Path) {
        if !self.dirs.iter().any(|d| d == dir) {
            self.dirs.push(dir.to_owned());
        }
    }

    pub fn read_small(&self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        let b = self.files.get(path).ok_or(io::ErrorKind::NotFound)?;
        match b.len() as u64 > max {
            true => Err(io::Error::new(io::ErrorKind::InvalidData, "too large")),
            false => Ok(b.clone()),
        }
    }

    pub fn save_resume(&mut self, final_path: &Path, info: &[u8]) {
        self.files.insert(info_path(final_path), info.to_vec());
    }

    pub fn drop_resume(&mut self, final_path: &Path) {
        self.files.remove(&info_path(final_path));
    }

    pub fn resumable(&self, dir: &Path) -> Vec<(PathBuf, io::Result<Vec<u8>>)> {
        let suffix = crate::storage::INFO_SUFFIX;
        self.files
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir) && p.to_string_lossy().ends_with(suffix))
            .map(|(p, b)| (p.clone(), Ok(b.clone())))
            .collect()
    }
}

/// A disk in memory: files by path, for the engine's tests.
#[derive(Debug, Default)]
pub struct MemStorage {
    /// Every file on the "disk", by path, and the directories.
    pub fs: MemFiles,
    open: BTreeMap<FileId, (PathBuf, u64)>,
    next_file: FileId,
    /// Writes fail with "no space" while set (a full disk).
    pub full: bool,
}

impl MemStorage {
    fn add(&mut self, path: PathBuf, length: u64) -> FileId {
        self.next_file += 1;
        self.open.insert(self.next_file, (path, length));
        self.next_file
    }

    fn bytes(&self, file: FileId) -> Option<&Vec<u8>> {
        self.fs.files.get(&self.open.get(&file)?.0)
    }

    /// Carries out a job the way the hash pool does, at once.
    pub fn run(&self, job: &Job) -> JobDone {
        let missing = || io::Error::new(io::ErrorKind::NotFound, "no such file");
        let slice = |file: FileId, at: u64, len: u64| -> io::Result<Vec<u8>> {
            let b = self.bytes(file).ok_or_else(missing)?;
            b.get(at as usize..(at + len) as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"))
        };
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
                let g = crate::meta::Geometry::new(*piece_length, *length);
                let hashes = pieces.clone().try_fold(Vec::new(), |mut out, p| {
                    let bytes = slice(*file, g.piece_offset(p), u64::from(g.piece_size(p)))?;
                    out.extend_from_slice(&Sha1::digest(bytes));
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
            } => JobDone::Verified {
                tag: *tag,
                piece: *piece,
                result: slice(*file, *offset, u64::from(*length))
                    .map(|b| Sha1::digest(b).as_slice() == expected),
            },
        }
    }
}

impl Storage for MemStorage {
    fn open_shared(&mut self, path: &Path, _: u32) -> Result<(FileId, u64), StorageError> {
        let len = self
            .fs
            .files
            .get(path)
            .ok_or_else(|| StorageError::Io(path.to_owned(), io::ErrorKind::NotFound.into()))?
            .len() as u64;
        if len == 0 {
            return Err(StorageError::Empty(path.to_owned()));
        }
        Ok((self.add(path.to_owned(), len), len))
    }

    fn tree(&self, _file: FileId) -> Option<&Info> {
        None
    }

    fn finish_tree(&mut self, _: FileId, _: &[u8]) -> Option<Result<Arc<Info>, InfoError>> {
        None
    }

    /// A tree is kept as one concatenated file here: the engine sees only
    /// offsets.
    fn open_part(
        &mut self,
        dir: &Path,
        info: &Arc<Info>,
        _wanted: Option<&[bool]>,
    ) -> Result<(FileId, bool), StorageError> {
        let length = info.length;
        let path = part_path(&final_path(dir, &info.name)?);
        let resumed = self
            .fs
            .files
            .get(&path)
            .is_some_and(|b| b.len() as u64 == length);
        if !resumed {
            self.fs.files.insert(path.clone(), vec![0; length as usize]);
        }
        Ok((self.add(path, length), resumed))
    }

    fn write(&mut self, file: FileId, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        if self.full {
            return Err(io::ErrorKind::StorageFull.into());
        }
        let path = &self.open.get(&file).ok_or(io::ErrorKind::NotFound)?.0;
        let bytes = self.fs.files.get_mut(path).ok_or(io::ErrorKind::NotFound)?;
        let mut at = offset as usize;
        for b in bufs.iter() {
            let dst = bytes
                .get_mut(at..at + b.len())
                .ok_or(io::ErrorKind::InvalidInput)?;
            dst.copy_from_slice(b);
            at += b.len();
        }
        Ok(())
    }

    fn finish(&mut self, file: FileId, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        let target = final_path(dir, name)?;
        if self.fs.files.contains_key(&target) {
            return Err(StorageError::Exists(target));
        }
        let Some((path, _)) = self.open.get_mut(&file) else {
            return Err(StorageError::Io(target, io::ErrorKind::NotFound.into()));
        };
        if let Some(bytes) = self.fs.files.remove(path) {
            self.fs.files.insert(target.clone(), bytes);
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
        self.bytes(file).map(|b| b.len() as u64) == len
    }

    fn close(&mut self, file: FileId, delete: bool) -> io::Result<()> {
        if let Some((path, _)) = self.open.remove(&file)
            && delete
        {
            self.fs.files.remove(&path);
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }

    fn create_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.fs.create_dir(dir);
        Ok(())
    }

    fn read_small(&mut self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        self.fs.read_small(path, max)
    }

    fn save_resume(&mut self, final_path: &Path, info: &[u8]) -> io::Result<()> {
        self.fs.save_resume(final_path, info);
        Ok(())
    }

    fn drop_resume(&mut self, final_path: &Path) {
        self.fs.drop_resume(final_path);
    }

    fn resumable(&mut self, dir: &Path) -> Vec<(PathBuf, io::Result<Vec<u8>>)> {
        self.fs.resumable(dir)
    }
}
