//! The engine's [`Storage`] on real files: memory-mapped [`Store`]s, read
//! by the hash pool and sent to sockets without copying.

use crate::engine::{FileId, Storage};
use crate::reactor::SharedBytes;
use crate::storage::{INFO_SUFFIX, Mapped, StorageError, Store, info_path};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, IoSlice, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Default)]
pub struct Disk {
    files: HashMap<FileId, Store>,
    next: FileId,
}

impl Disk {
    fn add(&mut self, store: Store) -> FileId {
        self.next += 1;
        self.files.insert(self.next, store);
        self.next
    }

    /// The mapped bytes of `file` at `offset..offset+len`, to queue on a
    /// socket without copying.
    pub fn slice(
        &self,
        file: FileId,
        offset: u64,
        len: u32,
    ) -> Option<(Arc<dyn SharedBytes>, Range<usize>)> {
        self.files.get(&file)?.slice(offset, len)
    }

    /// The handle and the mapping of `file`, for the hash pool.
    pub fn opened(&self, file: FileId) -> Option<(Arc<File>, Arc<Mapped>)> {
        self.files.get(&file).map(|s| (s.file(), s.mapped()))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "file no longer open")
}

impl Storage for Disk {
    fn open_shared(&mut self, path: &Path) -> Result<(FileId, u64), StorageError> {
        let store = Store::open_shared(path)?;
        let len = store.length();
        Ok((self.add(store), len))
    }

    fn open_part(
        &mut self,
        dir: &Path,
        name: &str,
        length: u64,
    ) -> Result<(FileId, bool), StorageError> {
        let (store, resumed) = Store::open_part(dir, name, length)?;
        Ok((self.add(store), resumed))
    }

    fn write(&mut self, file: FileId, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        self.files
            .get(&file)
            .ok_or_else(gone)?
            .write_vectored_at(bufs, offset)
    }

    fn finish(&mut self, file: FileId, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        match self.files.get_mut(&file) {
            Some(store) => store.finish(dir, name),
            None => Err(StorageError::Io(dir.join(name), gone())),
        }
    }

    fn path(&self, file: FileId) -> PathBuf {
        self.files
            .get(&file)
            .map(|s| s.path().to_owned())
            .unwrap_or_default()
    }

    fn size_intact(&self, file: FileId) -> bool {
        self.files.get(&file).is_some_and(Store::size_intact)
    }

    fn close(&mut self, file: FileId, delete: bool) -> io::Result<()> {
        match self.files.remove(&file) {
            Some(store) if delete => std::fs::remove_file(store.path()),
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
