//! Files on disk. A shared file is opened read-only and memory-mapped; a
//! download goes to `NAME.part`, its space checked or reserved up front,
//! and becomes `NAME` only once every piece has verified.
//!
//! Mapped bytes go to the kernel (`write_vectored` of a piece straight
//! from the map), which answers with EFAULT rather than SIGBUS if another
//! process truncated the file, and to SHA1 on the hash pool, through
//! [`guarded::read`], which turns that SIGBUS into an error. Received
//! blocks are written with `pwritev`. A periodic size check stops serving a
//! file that changed under us.

pub mod guarded;

use crate::meta::info::{NameError, check_name};
use crate::reactor::SharedBytes;
use memmap2::Mmap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const PART_SUFFIX: &str = ".part";
/// Suffix of the metadata kept beside a `.part` so a download can resume.
pub const INFO_SUFFIX: &str = ".part.info";

#[derive(Debug)]
pub enum StorageError {
    BadName(String, NameError),
    /// A different file already sits where the download would land.
    Exists(PathBuf),
    NotAFile(PathBuf),
    Empty(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageError::BadName(name, e) => {
                write!(f, "'{name}' cannot be used as a file name: {e}")
            }
            StorageError::Exists(p) => write!(
                f,
                "{} already exists and is a different file; move it away or choose another --out directory",
                p.display()
            ),
            StorageError::NotAFile(p) => write!(f, "{} is not a regular file", p.display()),
            StorageError::Empty(p) => {
                write!(f, "{} is empty; there is nothing to share", p.display())
            }
            StorageError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for StorageError {}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |e| StorageError::Io(path.to_owned(), e)
}

/// A read-only mapping of a whole file, shareable with output queues and
/// the hash pool.
pub struct Mapped(Mmap);

impl Mapped {
    /// Runs `f` on the `len` mapped bytes at `offset`; `Err` if they are
    /// outside the file or vanished from it while `f` ran.
    pub fn read<R>(&self, offset: u64, len: u32, f: impl FnOnce(&[u8]) -> R) -> io::Result<R> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(len as usize)?))
            .filter(|r| r.end <= self.0.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range outside the file"))?;
        guarded::read(&self.0[range], f)
    }
}

impl SharedBytes for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One file's bytes on disk, shared or being downloaded.
pub struct Store {
    path: PathBuf,
    file: Arc<File>,
    map: Arc<Mapped>,
    length: u64,
}

impl Store {
    /// Opens an existing file to share it.
    pub fn open_shared(path: &Path) -> Result<Store, StorageError> {
        let file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile(path.to_owned()));
        }
        if meta.len() == 0 {
            return Err(StorageError::Empty(path.to_owned()));
        }
        Store::map(path, file, meta.len())
    }

    /// Opens `dir/NAME.part` for a download of `length` bytes, creating it
    /// (sparse: [`preallocate`] it off the event loop) if needed. Returns
    /// the store and whether a previous `.part` of the right size was
    /// found (resume).
    pub fn open_part(dir: &Path, name: &str, length: u64) -> Result<(Store, bool), StorageError> {
        let final_path = final_path(dir, name)?;
        let path = part_path(&final_path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let existing = file.metadata().map_err(io_err(&path))?.len();
        let resumed = existing == length;
        if !resumed {
            file.set_len(0).map_err(io_err(&path))?;
            file.set_len(length).map_err(io_err(&path))?;
        }
        Ok((Store::map(&path, file, length)?, resumed))
    }

    fn map(path: &Path, file: File, length: u64) -> Result<Store, StorageError> {
        // SAFETY: our code reads the mapping only through `guarded::read`,
        // which survives the file shrinking (see the module comment).
        let map = unsafe { Mmap::map(&file) }.map_err(io_err(path))?;
        Ok(Store {
            path: path.to_owned(),
            file: Arc::new(file),
            map: Arc::new(Mapped(map)),
            length,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    /// The mapped bytes, for hashing on the hash pool.
    pub fn mapped(&self) -> Arc<Mapped> {
        self.map.clone()
    }

    /// The file handle, for `fallocate` on the hash pool.
    pub fn file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The mapped bytes at `offset..offset+len`, to queue on a socket
    /// without copying. `None` if the range is outside the file.
    pub fn slice(&self, offset: u64, len: u32) -> Option<(Arc<dyn SharedBytes>, Range<usize>)> {
        let end = offset.checked_add(u64::from(len))?;
        if end > self.length || end > self.map.0.len() as u64 {
            return None;
        }
        let shared: Arc<dyn SharedBytes> = self.map.clone();
        Some((shared, offset as usize..end as usize))
    }

    /// True while the file on disk still has the length we mapped.
    pub fn size_intact(&self) -> bool {
        self.file.metadata().is_ok_and(|m| m.len() == self.length)
    }

    /// Writes received blocks, consecutive in the file from `offset`, to a
    /// `.part` file with as few `pwritev` calls as the kernel allows.
    pub fn write_vectored_at(
        &self,
        mut bufs: &mut [IoSlice<'_>],
        mut offset: u64,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        while !bufs.is_empty() {
            let at = libc::off_t::try_from(offset)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let count = bufs.len().min(1024) as libc::c_int;
            // SAFETY: IoSlice is ABI-compatible with iovec, and `bufs`
            // holds `count` valid slices that outlive the call.
            let n = unsafe {
                libc::pwritev(
                    self.file.as_raw_fd(),
                    bufs.as_ptr().cast::<libc::iovec>(),
                    count,
                    at,
                )
            };
            match n {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n if n < 0 => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n => {
                    offset += n as u64;
                    IoSlice::advance_slices(&mut bufs, n as usize);
                }
            }
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset` (for serving when no map).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    /// Publishes a completed download: flushes it, then gives `NAME.part`
    /// its final name without ever replacing an existing file.
    pub fn finish(&mut self, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        let target = final_path(dir, name)?;
        self.file.sync_all().map_err(io_err(&self.path))?;
        // A hard link fails if the target exists, where rename would
        // silently replace it.
        match std::fs::hard_link(&self.path, &target) {
            Ok(()) => {
                std::fs::remove_file(&self.path).map_err(io_err(&self.path))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StorageError::Exists(target));
            }
            Err(_) => {
                if target.exists() {
                    return Err(StorageError::Exists(target));
                }
                std::fs::rename(&self.path, &target).map_err(io_err(&self.path))?;
            }
        }
        self.path = target.clone();
        Ok(target)
    }
}

/// Makes sure `length` bytes for `file` are there before the download
/// starts, so that a full disk fails now rather than mid-download. On disk
/// filesystems this reserves them (`fallocate`: a few extents, no data
/// written); filesystems that cannot keep a sparse file. On tmpfs,
/// reserving means allocating every page of memory up front, the same
/// work writing them does later, and it competes with the download for the
/// CPU (1 GiB 1->1 on /dev/shm: 0.80-0.83 s without, 0.875-0.91 s with):
/// there, only the free space is checked. Runs on the hash pool.
pub fn preallocate(file: &File, length: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if let Some(fs) = fs_stats(file).filter(is_tmpfs) {
        let free = fs
            .f_bavail
            .saturating_mul(u64::try_from(fs.f_bsize).unwrap_or(0));
        return match free >= length {
            true => Ok(()),
            false => Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("{length} bytes needed, {free} free"),
            )),
        };
    }
    let len =
        libc::off_t::try_from(length).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: fallocate only reads its integer arguments; the descriptor
    // is owned by `file` and open for writing.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => file.set_len(length),
        _ => Err(err),
    }
}

/// The filesystem `file` lives on, as `fstatfs` describes it.
fn fs_stats(file: &File) -> Option<libc::statfs> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed statfs is a valid out-buffer for fstatfs.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs writes only into `fs`; the descriptor is `file`'s.
    (unsafe { libc::fstatfs(file.as_raw_fd(), &mut fs) } == 0).then_some(fs)
}

// The field's and the constant's integer types differ between
// architectures, hence the casts.
#[allow(clippy::unnecessary_cast)]
fn is_tmpfs(fs: &libc::statfs) -> bool {
    fs.f_type as i64 == libc::TMPFS_MAGIC as i64
}

/// `dir/name`, once `name` is known to be a plain file name.
pub fn final_path(dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
    check_name(name).map_err(|e| StorageError::BadName(name.to_owned(), e))?;
    Ok(dir.join(name))
}

pub fn part_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, PART_SUFFIX)
}

/// Where the metadata of the download of `final_path` is kept.
pub fn info_path(final_path: &Path) -> PathBuf {
    with_suffix(final_path, INFO_SUFFIX)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sta-storage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// `path` opened for reading and writing, created empty.
    pub(super) fn open_rw(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn vectored_writes_land_at_their_offset() {
        let dir = temp_dir("pwritev");
        let (store, resumed) = Store::open_part(&dir, "v.bin", 3000).unwrap();
        assert!(!resumed);
        let blocks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 600]).collect();
        let mut bufs: Vec<IoSlice> = blocks.iter().map(|b| IoSlice::new(b)).collect();
        store.write_vectored_at(&mut bufs, 1000).unwrap();
        let got = std::fs::read(store.path()).unwrap();
        let mut want = vec![0u8; 3000];
        for (i, b) in blocks.iter().enumerate() {
            want[1000 + i * 600..1600 + i * 600].copy_from_slice(b);
        }
        assert_eq!(got, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn space_is_checked_on_tmpfs_and_reserved_elsewhere() {
        let shm = Path::new("/dev/shm");
        assert!(
            shm.is_dir() && fs_stats(&File::open(shm).unwrap()).is_some_and(|fs| is_tmpfs(&fs)),
            "/dev/shm must be a tmpfs for this test (it is on Linux by default)"
        );
        let tmp = temp_dir("prealloc");
        let shm_dir = shm.join(format!("sta-storage-prealloc-{}", std::process::id()));
        std::fs::create_dir_all(&shm_dir).unwrap();
        for dir in [&shm_dir, &tmp] {
            let file = open_rw(&dir.join("f.part"));
            file.set_len(1 << 20).unwrap();
            preallocate(&file, 1 << 20).unwrap();
            let err = preallocate(&file, 1 << 60).unwrap_err();
            assert!(
                matches!(
                    err.kind(),
                    io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge
                ),
                "{}: {err:?}",
                dir.display()
            );
        }
        // On tmpfs nothing was allocated: the file is still sparse.
        let part = std::fs::metadata(shm_dir.join("f.part")).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::blocks(&part), 0);
        std::fs::remove_dir_all(&shm_dir).unwrap();
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn part_file_is_published_without_overwriting() {
        let dir = temp_dir("publish");
        let (mut store, resumed) = Store::open_part(&dir, "f.bin", 10).unwrap();
        assert!(!resumed);
        store.file().write_all_at(b"0123456789", 0).unwrap();
        let (_, resumed) = Store::open_part(&dir, "f.bin", 10).unwrap();
        assert!(resumed);
        std::fs::write(dir.join("f.bin"), b"other").unwrap();
        assert!(matches!(
            store.finish(&dir, "f.bin"),
            Err(StorageError::Exists(_))
        ));
        std::fs::remove_file(dir.join("f.bin")).unwrap();
        let path = store.finish(&dir, "f.bin").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789");
        assert!(!dir.join("f.bin.part").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forbidden_names_and_ranges_are_refused() {
        let dir = temp_dir("names");
        for bad in ["../x", "a/b", "..", ""] {
            assert!(matches!(
                Store::open_part(&dir, bad, 1),
                Err(StorageError::BadName(..))
            ));
        }
        let (store, _) = Store::open_part(&dir, "g", 100).unwrap();
        assert!(store.slice(90, 10).is_some());
        assert!(store.slice(95, 10).is_none());
        assert!(store.slice(u64::MAX, 10).is_none());
        assert!(store.size_intact());
        store.file().set_len(50).unwrap();
        assert!(!store.size_intact());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
