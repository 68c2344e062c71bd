//! Files on disk. A share (a file, or a tree of them: see [`content`]) is
//! opened read-only and memory-mapped; a download goes to `NAME.part` (a
//! file, or a directory for a tree), its space checked or reserved up
//! front, and becomes `NAME` only once every piece has verified.
//!
//! Mapped bytes go to the kernel (`write_vectored` of a piece straight
//! from the map), which answers with EFAULT rather than SIGBUS if another
//! process truncated the file, and to SHA1 on the hash pool, through
//! [`guarded::read`], which turns that SIGBUS into an error. Received
//! blocks are written with `pwritev`. A periodic size check stops serving a
//! file that changed under us.

pub mod content;
pub mod guarded;
mod layout;

pub use content::Content;

use crate::meta::info::{NameError, check_name};
use crate::reactor::SharedBytes;
use memmap2::Mmap;
use std::fs::File;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};

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
    /// A symlink inside a shared tree: never followed.
    Symlink(PathBuf),
    /// A file of a shared tree whose path cannot go in a torrent.
    BadPath(PathBuf, String),
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
            StorageError::NotAFile(p) => {
                write!(f, "{} is not a regular file or directory", p.display())
            }
            StorageError::Symlink(p) => write!(
                f,
                "{} is a symlink; STA does not follow symlinks in a shared tree: remove it \
                 or replace it with a copy",
                p.display()
            ),
            StorageError::BadPath(p, why) => {
                write!(f, "{} cannot be shared: {why}", p.display())
            }
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

impl SharedBytes for Mapped {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Writes `bufs`, consecutive in `file` from `offset`, with as few
/// `pwritev` calls as the kernel allows.
pub fn pwritev_all(file: &File, mut bufs: &mut [IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bufs.is_empty() {
        let at = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let count = bufs.len().min(1024) as libc::c_int;
        // SAFETY: IoSlice is ABI-compatible with iovec, and `bufs` holds
        // `count` valid slices that outlive the call.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
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

/// Flushes a finished download: the file itself, or (a tree, whose files
/// may be many) the whole filesystem it is on, in one call.
fn sync_all_of(file: &File, tree: bool) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    if !tree {
        return file.sync_all();
    }
    // SAFETY: syncfs only reads the descriptor, which `file` owns.
    match unsafe { libc::syncfs(file.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Renames `from` to `to` (a file or a directory) unless `to` exists.
fn rename_no_replace(from: &Path, to: &Path) -> Result<(), StorageError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| StorageError::Io(p.to_owned(), io::ErrorKind::InvalidInput.into()))
    };
    let (cf, ct) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => Err(StorageError::Exists(to.to_owned())),
        // A filesystem without RENAME_NOREPLACE: check, then rename.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(StorageError::Exists(to.to_owned()));
            }
            std::fs::rename(from, to).map_err(io_err(from))
        }
        _ => Err(StorageError::Io(from.to_owned(), e)),
    }
}

/// Fails when the filesystem holding `dir` has less than `length` bytes
/// free (for a tree, whose files are reserved by creating them sparse).
fn check_free_space(dir: &Path, length: u64) -> io::Result<()> {
    let fs = fs_stats(&File::open(dir)?).ok_or_else(io::Error::last_os_error)?;
    let free = fs
        .f_bavail
        .saturating_mul(u64::try_from(fs.f_bsize).unwrap_or(0));
    match free >= length {
        true => Ok(()),
        false => Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("{length} bytes needed, {free} free"),
        )),
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
    use crate::meta::Info;
    use std::fs::OpenOptions;
    use std::sync::Arc;

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

    fn single(name: &str, length: u64) -> Arc<Info> {
        let pieces = crate::meta::Geometry::new(16384, length).piece_count() as usize;
        Arc::new(Info::new(name, length, 16384, vec![0; pieces * 20]).unwrap())
    }

    fn tree(name: &str, files: &[(&[&str], u64)]) -> Arc<Info> {
        let files: crate::meta::files::Listing =
            files.iter().map(|(p, l)| (p.join("/"), *l)).collect();
        let total: u64 = files.iter().map(|f| f.1).sum();
        let pieces = crate::meta::Geometry::new(16384, total).piece_count() as usize;
        Arc::new(Info::new_tree(name, &files, 16384, vec![0; pieces * 20]).unwrap())
    }

    #[test]
    fn vectored_writes_land_at_their_offset() {
        let dir = temp_dir("pwritev");
        let (store, resumed) = Content::open_part(&dir, &single("v.bin", 3000), None).unwrap();
        assert!(!resumed);
        let blocks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i + 1; 600]).collect();
        let mut bufs: Vec<IoSlice> = blocks.iter().map(|b| IoSlice::new(b)).collect();
        store.write(1000, &mut bufs).unwrap();
        let got = std::fs::read(store.path()).unwrap();
        let mut want = vec![0u8; 3000];
        for (i, b) in blocks.iter().enumerate() {
            want[1000 + i * 600..1600 + i * 600].copy_from_slice(b);
        }
        assert_eq!(got, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_splits_writes_reads_and_slices_at_file_boundaries() {
        let dir = temp_dir("tree");
        let info = tree(
            "t",
            &[
                (&["a"], 10),
                (&["d", "empty"], 0),
                (&["d", "b"], 5),
                (&["c"], 20),
            ],
        );
        let (store, resumed) = Content::open_part(&dir, &info, None).unwrap();
        assert!(!resumed);
        let bytes: Vec<u8> = (0..35u8).collect();
        let (x, y) = bytes.split_at(12);
        store
            .write(0, &mut [IoSlice::new(x), IoSlice::new(y)])
            .unwrap();
        let mut read = Vec::new();
        store.read(8, 20, |b| read.extend_from_slice(b)).unwrap();
        assert_eq!(read, &bytes[8..28]);
        let slices = store.slices(8, 20).unwrap();
        assert_eq!(slices.len(), 1, "small files are copied into one run");
        let joined: Vec<u8> = slices
            .iter()
            .flat_map(|(s, r)| s.bytes()[r.clone()].to_vec())
            .collect();
        assert_eq!(joined, &bytes[8..28]);
        assert!(store.slices(30, 10).is_none());
        let path = store.finish(&dir, "t").unwrap();
        assert_eq!(std::fs::read(path.join("a")).unwrap(), &bytes[..10]);
        assert_eq!(std::fs::read(path.join("d/b")).unwrap(), &bytes[10..15]);
        assert_eq!(std::fs::read(path.join("d/empty")).unwrap(), b"");
        assert_eq!(std::fs::read(path.join("c")).unwrap(), &bytes[15..]);
        assert!(!dir.join("t.part").exists());
        // Shared again, its dict lists the files in torrent order (a, c,
        // d/b, d/empty), and it is read through it, before and after its
        // hashes are in.
        let shared = Content::open_shared(&path, 16384).unwrap();
        let draft = shared.draft().unwrap().clone();
        let names: Vec<String> = draft
            .files()
            .iter()
            .map(|f| draft.path(&f).to_string())
            .collect();
        assert_eq!(names, ["a", "c", "d/b", "d/empty"]);
        assert_eq!(shared.length(), 35);
        drop(draft);
        let hashes = vec![7; 20];
        let (info, shared) = Content::hashed(Arc::new(shared), &hashes).unwrap().unwrap();
        assert_eq!(info.piece_hash(0), Some(&hashes[..]));
        assert!(shared.draft().is_some_and(|d| Arc::ptr_eq(d, &info)));
        let sorted = [&bytes[..10], &bytes[15..], &bytes[10..15]].concat();
        let mut read = Vec::new();
        shared.read(0, 35, |b| read.extend_from_slice(b)).unwrap();
        assert_eq!(read, sorted);
        let mut sent = Vec::new();
        for (s, r) in shared.slices(8, 27).unwrap() {
            sent.extend_from_slice(&s.bytes()[r]);
        }
        assert_eq!(sent, &sorted[8..]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn large_files_of_a_tree_are_sent_from_their_maps() {
        let dir = temp_dir("tree-large");
        let big = 2_000_000u64;
        let info = tree("t", &[(&["s1"], 10), (&["big"], big), (&["s2"], 10)]);
        let (store, _) = Content::open_part(&dir, &info, None).unwrap();
        let bytes: Vec<u8> = (0..big + 20).map(|i| (i % 251) as u8).collect();
        store.write(0, &mut [IoSlice::new(&bytes)]).unwrap();
        let runs = store.slices(5, 100_010).unwrap();
        assert_eq!(runs.len(), 2, "copied, then mapped");
        let joined: Vec<u8> = runs
            .iter()
            .flat_map(|(s, r)| s.bytes()[r.clone()].to_vec())
            .collect();
        assert_eq!(joined, &bytes[5..100_015]);
        let end = big + 20 - 100_000;
        let runs = store.slices(end, 100_000).unwrap();
        assert_eq!(runs.len(), 2, "mapped, then copied");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unselected_files_are_never_written() {
        let dir = temp_dir("aside");
        let info = tree("t", &[(&["a"], 10), (&["b"], 10)]);
        let (store, _) = Content::open_part(&dir, &info, Some(&[true, false])).unwrap();
        let bytes = [7u8; 20];
        store.write(0, &mut [IoSlice::new(&bytes)]).unwrap();
        let mut read = Vec::new();
        store.read(0, 20, |b| read.extend_from_slice(b)).unwrap();
        assert_eq!(read, bytes);
        let path = store.finish(&dir, "t").unwrap();
        assert_eq!(std::fs::read(path.join("a")).unwrap(), [7u8; 10]);
        assert!(!path.join("b").exists());
        store.delete().ok();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_is_walked_in_the_order_of_its_paths_components() {
        let dir = temp_dir("walk");
        let paths = [
            "a-b", "a/b", "a/c/d", "a.txt", "B", "é/x", "a/c-", "z", "a/c/e/f",
        ];
        for p in paths {
            let p = dir.join("t").join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, p.to_str().unwrap()).unwrap();
        }
        std::fs::create_dir_all(dir.join("t/empty/dir")).unwrap();
        let mut walked = Vec::new();
        content::walk_tree(&dir.join("t"), |at, components, length| {
            assert_eq!(std::fs::metadata(at).unwrap().len(), length);
            walked.push(components.join("/"));
            Ok(())
        })
        .unwrap();
        let mut sorted: crate::meta::files::Listing = paths.iter().map(|p| (p, 0)).collect();
        sorted.sort();
        let sorted: Vec<&str> = sorted.iter().map(|(p, _)| p).collect();
        assert_eq!(walked, sorted);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_tree_of_too_many_pieces_is_refused_before_its_dict_is_made() {
        let dir = temp_dir("too-many-pieces");
        std::fs::create_dir_all(dir.join("t")).unwrap();
        let sparse = File::create(dir.join("t/huge")).unwrap();
        sparse
            .set_len(u64::from(crate::limits::MAX_PIECES) * 16384 + 1)
            .unwrap();
        match Content::open_shared(&dir.join("t"), 16384) {
            Err(StorageError::BadPath(_, why)) => {
                assert!(why.contains("use a larger --piece-size"), "{why}")
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_in_a_shared_tree_are_refused_by_name() {
        let dir = temp_dir("symlink");
        std::fs::create_dir_all(dir.join("t/sub")).unwrap();
        std::fs::write(dir.join("t/sub/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("t/sub/link")).unwrap();
        match Content::open_shared(&dir.join("t"), 16384) {
            Err(StorageError::Symlink(p)) => assert!(p.ends_with("sub/link"), "{p:?}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
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
        let info = single("f.bin", 10);
        let (store, resumed) = Content::open_part(&dir, &info, None).unwrap();
        assert!(!resumed);
        store.write(0, &mut [IoSlice::new(b"0123456789")]).unwrap();
        let (_, resumed) = Content::open_part(&dir, &info, None).unwrap();
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
                final_path(&dir, bad),
                Err(StorageError::BadName(..))
            ));
        }
        let (store, _) = Content::open_part(&dir, &single("g", 100), None).unwrap();
        assert!(store.slices(90, 10).is_some());
        assert!(store.slices(95, 10).is_none());
        assert!(store.slices(u64::MAX, 10).is_none());
        assert!(store.size_intact());
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("g.part"))
            .unwrap()
            .set_len(50)
            .unwrap();
        assert!(!store.size_intact());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
