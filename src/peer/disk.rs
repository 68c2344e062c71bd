//! The engine's [`Storage`] on real files: memory-mapped [`Content`]s
//! (one file or a tree), read by the hash pool and sent to sockets
//! without copying.

use crate::engine::{FileId, Storage};
use crate::meta::{Info, InfoError};
use crate::storage::content::Run;
use crate::storage::{Content, INFO_SUFFIX, StorageError, info_path};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, IoSlice, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Default)]
pub struct Disk {
    files: HashMap<FileId, Arc<Content>>,
    /// What `open_shared` found in a directory, until the engine asks.
    next: FileId,
}

impl Disk {
    fn add(&mut self, content: Content) -> FileId {
        self.next += 1;
        self.files.insert(self.next, Arc::new(content));
        self.next
    }

    /// The bytes of `file` at `offset..offset+len`, as slices to queue on
    /// a socket without copying (several when they span files).
    pub fn slices(&self, file: FileId, offset: u64, len: u32) -> Option<Vec<Run>> {
        self.files.get(&file)?.slices(offset, len)
    }

    /// The open share, for the hash pool.
    pub fn opened(&self, file: FileId) -> Option<Arc<Content>> {
        self.files.get(&file).cloned()
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "file no longer open")
}

impl Storage for Disk {
    fn open_shared(
        &mut self,
        path: &Path,
        piece_length: u32,
    ) -> Result<(FileId, u64), StorageError> {
        let content = Content::open_shared(path, piece_length)?;
        let len = content.length();
        Ok((self.add(content), len))
    }

    fn tree(&self, file: FileId) -> Option<&Info> {
        self.files.get(&file)?.draft().map(|info| &**info)
    }

    fn finish_tree(&mut self, file: FileId, hashes: &[u8]) -> Option<Result<Arc<Info>, InfoError>> {
        self.files.get(&file)?.draft()?;
        let content = self.files.remove(&file)?;
        Some(Content::hashed(content, hashes)?.map(|(info, content)| {
            self.files.insert(file, Arc::new(content));
            info
        }))
    }

    fn adopt(&mut self, file: FileId, info: &Arc<Info>) {
        // A tree's own dict once hashed is already in place.
        let content = self
            .files
            .get_mut(&file)
            .filter(|c| c.is_tree() && c.draft().is_none_or(|d| !Arc::ptr_eq(d, info)));
        if let Some(content) = content {
            *content = Arc::new(content.shared_as(info.clone()));
        }
    }

    fn open_part(
        &mut self,
        dir: &Path,
        info: &Arc<Info>,
        wanted: Option<&[bool]>,
    ) -> Result<(FileId, bool), StorageError> {
        let (content, resumed) = Content::open_part(dir, info, wanted)?;
        Ok((self.add(content), resumed))
    }

    fn write(&mut self, file: FileId, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.files.get(&file).ok_or_else(gone)?.write(offset, bufs)
    }

    fn finish(&mut self, file: FileId, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        match self.files.get(&file) {
            Some(content) => content.finish(dir, name),
            None => Err(StorageError::Io(dir.join(name), gone())),
        }
    }

    fn path(&self, file: FileId) -> PathBuf {
        self.files.get(&file).map(|s| s.path()).unwrap_or_default()
    }

    fn size_intact(&self, file: FileId) -> bool {
        self.files.get(&file).is_some_and(|c| c.size_intact())
    }

    fn close(&mut self, file: FileId, delete: bool) -> io::Result<()> {
        match self.files.remove(&file) {
            Some(content) if delete => content.delete(),
            _ => Ok(()),
        }
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn create_dir(&mut self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn read_small(&mut self, path: &Path, max: u64) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {max} bytes; it is not a torrent STA can use"),
            ));
        }
        Ok(bytes)
    }

    fn save_resume(&mut self, final_path: &Path, info: &[u8]) -> io::Result<()> {
        std::fs::write(info_path(final_path), info)
    }

    fn drop_resume(&mut self, final_path: &Path) {
        let _ = std::fs::remove_file(info_path(final_path));
    }

    fn resumable(&mut self, dir: &Path) -> Vec<(PathBuf, io::Result<Vec<u8>>)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_str().is_some_and(|s| s.ends_with(INFO_SUFFIX)))
            .collect();
        found.sort();
        found
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p);
                (p, bytes)
            })
            .collect()
    }
}
