//! The bytes of one share on disk, one file or a tree of them, seen as
//! their concatenation (what pieces are cut from). A range of it is split
//! into segments, each in one file; pad files (BEP 47) read as zeros and
//! are never written; files left out of a download (`--only`) keep the
//! bytes of the pieces they share with wanted files in a sparse side file
//! (`NAME.part.aside`), so nothing is ever written into an unselected
//! file.
//!
//! Files of a tree are opened when first touched and kept in a small LRU
//! of handles and maps ([`MAX_OPEN`]): a tree of 100,000 files costs its
//! metadata, not 100,000 descriptors. The LRU is behind a mutex because
//! the hash pool reads through it too; the lock is held only to find or
//! open a file, never while bytes are read or written.

use super::{Mapped, StorageError, guarded, io_err, preallocate, pwritev_all};
use crate::reactor::SharedBytes;
use crate::storage::{final_path, part_path};
use memmap2::Mmap;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Files of a tree kept open at once (each a descriptor and a map).
pub const MAX_OPEN: usize = 64;

/// Files smaller than this are read with `pread`, never mapped: a map
/// costs a page fault per page and a munmap, more than the copy it saves
/// (bench/dirs.sh, 10,000 files of 107 KiB on average: hashing the tree
/// took 0.667 s with 64 KiB here, 0.536 s with 1 MiB; the download rate
/// did not change).
const SMALL_FILE: u64 = 1024 * 1024;

/// Suffix of the side file of a partial (`--only`) download.
pub const ASIDE_SUFFIX: &str = ".part.aside";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    /// Its own file on disk.
    File,
    /// Zeros (a pad file).
    Pad,
    /// Not wanted: its bytes, if any, go to the side file.
    Aside,
}

#[derive(Debug)]
struct Slot {
    /// Under the root; empty for a single file (the root itself).
    rel: PathBuf,
    offset: u64,
    length: u64,
    backing: Backing,
}

struct Open {
    file: Arc<File>,
    map: Option<Arc<Mapped>>,
    used: u64,
}

struct Handles {
    /// The file, or the tree's directory, as it is named now.
    root: PathBuf,
    open: HashMap<usize, Open>,
    clock: u64,
}

pub struct Content {
    slots: Vec<Slot>,
    length: u64,
    writable: bool,
    tree: bool,
    aside: Option<(PathBuf, Arc<File>)>,
    handles: Mutex<Handles>,
    /// A shared file was found with another length when it was opened
    /// again: the share no longer matches its metadata.
    changed: AtomicBool,
    /// Per slot of a download: its file exists with its length.
    sized: Vec<AtomicBool>,
    /// A one-file share's handle and map, kept outside the lock: every
    /// block sent or written goes through here, and needs neither the
    /// lock nor a list of segments.
    single: Option<(Arc<File>, Arc<Mapped>)>,
}

/// A shared tree as found on disk: each file's path under the root and
/// its length, in the order the info dict lists them.
pub type Listing = Vec<(Vec<String>, u64)>;

/// A run of bytes to queue on a socket: what it lies in, and where.
pub type Run = (Arc<dyn SharedBytes>, Range<usize>);

/// Zeros for hashing pad files.
static ZEROS: [u8; crate::limits::MAX_REQUEST_LEN as usize] =
    [0; crate::limits::MAX_REQUEST_LEN as usize];

/// One piece of a range: which slot, and where in it.
struct Segment {
    slot: usize,
    /// Offset within the slot's file.
    at: u64,
    len: u64,
}

impl Content {
    /// A file or a directory, to share: read-only, every file wanted.
    pub fn open_shared(path: &Path) -> Result<(Content, Option<Listing>), StorageError> {
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        if meta.is_dir() {
            let listing = list_tree(path)?;
            let files: Vec<(PathBuf, u64, Backing)> = listing
                .iter()
                .map(|(p, len)| (p.iter().collect(), *len, Backing::File))
                .collect();
            let content = Content::new(path, files, false, true, None);
            if content.length == 0 {
                return Err(StorageError::Empty(path.to_owned()));
            }
            return Ok((content, Some(listing)));
        }
        let file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile(path.to_owned()));
        }
        if meta.len() == 0 {
            return Err(StorageError::Empty(path.to_owned()));
        }
        let single = vec![(PathBuf::new(), meta.len(), Backing::File)];
        let content = Content::new(path, single, false, false, None).with_single(file)?;
        Ok((content, None))
    }

    /// Opens the download of `info` in `dir`: `NAME.part` for one file,
    /// the directory `NAME.part/` for a tree (its files created as they
    /// are first touched, or by [`Content::allocate`]). `wanted` says, per
    /// entry of `info.files()`, which files to write (all when `None`).
    /// True when an earlier download was found (resume).
    pub fn open_part(
        dir: &Path,
        info: &crate::meta::Info,
        wanted: Option<&[bool]>,
    ) -> Result<(Content, bool), StorageError> {
        let final_path = final_path(dir, &info.name)?;
        let part = part_path(&final_path);
        if !info.is_multi() {
            let file = open_rw(&part)?;
            let existing = file.metadata().map_err(io_err(&part))?.len();
            let resumed = existing == info.length;
            if !resumed {
                file.set_len(0).map_err(io_err(&part))?;
                file.set_len(info.length).map_err(io_err(&part))?;
            }
            let single = vec![(PathBuf::new(), info.length, Backing::File)];
            let content = Content::new(&part, single, true, false, None).with_single(file)?;
            return Ok((content, resumed));
        }
        let resumed = part.is_dir();
        std::fs::create_dir_all(&part).map_err(io_err(&part))?;
        let files: Vec<(PathBuf, u64, Backing)> = info
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let backing = match (f.pad, wanted.is_none_or(|w| w.get(i) == Some(&true))) {
                    (true, _) => Backing::Pad,
                    (false, true) => Backing::File,
                    (false, false) => Backing::Aside,
                };
                (f.path.iter().collect(), f.length, backing)
            })
            .collect();
        let aside = match files.iter().any(|f| f.2 == Backing::Aside) {
            true => {
                let mut p = final_path.as_os_str().to_owned();
                p.push(ASIDE_SUFFIX);
                let p = PathBuf::from(p);
                let file = open_rw(&p)?;
                if file.metadata().map_err(io_err(&p))?.len() != info.length {
                    file.set_len(info.length).map_err(io_err(&p))?;
                }
                Some((p, Arc::new(file)))
            }
            false => None,
        };
        Ok((Content::new(&part, files, true, true, aside), resumed))
    }

    fn new(
        root: &Path,
        files: Vec<(PathBuf, u64, Backing)>,
        writable: bool,
        tree: bool,
        aside: Option<(PathBuf, Arc<File>)>,
    ) -> Content {
        let mut offset = 0;
        let n = files.len();
        let slots = files
            .into_iter()
            .map(|(rel, length, backing)| {
                let s = Slot {
                    rel,
                    offset,
                    length,
                    backing,
                };
                offset += length;
                s
            })
            .collect();
        Content {
            slots,
            length: offset,
            writable,
            tree,
            aside,
            handles: Mutex::new(Handles {
                root: root.to_owned(),
                open: HashMap::new(),
                clock: 0,
            }),
            changed: AtomicBool::new(false),
            sized: (0..n).map(|_| AtomicBool::new(false)).collect(),
            single: None,
        }
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn is_tree(&self) -> bool {
        self.tree
    }

    /// Where the share is now (the file, or the tree's directory).
    pub fn path(&self) -> PathBuf {
        self.lock().root.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Handles> {
        // A thread that panicked while holding the lock left the map of
        // open files consistent (every change is one insert or remove).
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The one file of a single-file share, open and mapped for good.
    fn with_single(mut self, file: File) -> Result<Content, StorageError> {
        let map = map_file(&file).map_err(io_err(&self.path()))?;
        self.single = Some((Arc::new(file), map));
        Ok(self)
    }

    /// The segments of `offset..offset+len`; `None` past the end.
    fn segments(&self, offset: u64, len: u64) -> Option<Vec<Segment>> {
        let end = offset.checked_add(len)?;
        if end > self.length {
            return None;
        }
        let first = self
            .slots
            .partition_point(|s| s.offset + s.length <= offset);
        let mut out = Vec::new();
        for (i, s) in self.slots.iter().enumerate().skip(first) {
            if s.offset >= end {
                break;
            }
            let start = s.offset.max(offset);
            let stop = (s.offset + s.length).min(end);
            if start < stop {
                out.push(Segment {
                    slot: i,
                    at: start - s.offset,
                    len: stop - start,
                });
            }
        }
        Some(out)
    }

    /// The open handle of `slot`, and its map when `map` is asked and the
    /// file is not small, opening (for a download: creating) it if needed.
    fn handle(&self, slot: usize, map: bool) -> io::Result<(Arc<File>, Option<Arc<Mapped>>)> {
        if let Some((file, map)) = &self.single {
            return Ok((file.clone(), Some(map.clone())));
        }
        let s = &self.slots[slot];
        let want_map = map && s.length >= SMALL_FILE;
        // Files are opened, mapped and closed outside the lock: the hash
        // pool and the reactor share it, and neither should wait on the
        // other's system calls.
        let path = {
            let mut h = self.lock();
            h.clock += 1;
            let now = h.clock;
            if let Some(o) = h.open.get_mut(&slot) {
                o.used = now;
                if !want_map || o.map.is_some() {
                    return Ok((o.file.clone(), o.map.clone()));
                }
                let file = o.file.clone();
                drop(h);
                let map = map_file(&file)?;
                if let Some(o) = self.lock().open.get_mut(&slot) {
                    o.map.get_or_insert_with(|| map.clone());
                }
                return Ok((file, Some(map)));
            }
            self.slot_path(&h.root, slot)
        };
        let file = match self.writable {
            true => {
                let sized = &self.sized[slot];
                let f = open_creating(&path, s.length, sized.load(Ordering::Relaxed))?;
                sized.store(true, Ordering::Relaxed);
                f
            }
            false => {
                // A file swapped for a symlink since it was shared is not
                // followed (the link could point anywhere).
                let f = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)?;
                if f.metadata()?.len() != s.length {
                    self.changed.store(true, Ordering::Relaxed);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} changed size since it was shared", path.display()),
                    ));
                }
                f
            }
        };
        let map = match want_map {
            true => Some(map_file(&file)?),
            false => None,
        };
        let file = Arc::new(file);
        let evicted = {
            let mut h = self.lock();
            h.clock += 1;
            let now = h.clock;
            if let Some(o) = h.open.get(&slot) {
                // Opened meanwhile by another thread: use that one.
                return Ok((o.file.clone(), o.map.clone().or(map)));
            }
            let oldest = (h.open.len() >= MAX_OPEN)
                .then(|| h.open.iter().min_by_key(|(_, o)| o.used).map(|(k, _)| *k))
                .flatten();
            let evicted = oldest.and_then(|k| h.open.remove(&k));
            h.open.insert(
                slot,
                Open {
                    file: file.clone(),
                    map: map.clone(),
                    used: now,
                },
            );
            evicted
        };
        drop(evicted);
        Ok((file, map))
    }

    fn slot_path(&self, root: &Path, slot: usize) -> PathBuf {
        let rel = &self.slots[slot].rel;
        match rel.as_os_str().is_empty() {
            true => root.to_owned(),
            false => root.join(rel),
        }
    }

    /// Runs `f` on each run of the `len` bytes at `offset`, in order (for
    /// hashing). A file shrinking meanwhile is an error, not a crash.
    pub fn read(&self, offset: u64, len: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        if let Some((_, map)) = &self.single {
            return map.read_range(offset, len, &mut f);
        }
        let segs = self.segments(offset, len).ok_or_else(outside)?;
        for seg in segs {
            let slot = &self.slots[seg.slot];
            match slot.backing {
                Backing::Pad => {
                    let mut left = seg.len as usize;
                    while left > 0 {
                        let n = left.min(ZEROS.len());
                        f(&ZEROS[..n]);
                        left -= n;
                    }
                }
                Backing::Aside => {
                    let file = self.aside_file()?;
                    let mut buf = vec![0u8; seg.len as usize];
                    std::os::unix::fs::FileExt::read_exact_at(
                        &**file,
                        &mut buf,
                        slot.offset + seg.at,
                    )?;
                    f(&buf);
                }
                Backing::File => match self.handle(seg.slot, true)? {
                    (_, Some(map)) => map.read_range(seg.at, seg.len, &mut f)?,
                    (file, None) => {
                        let mut buf = vec![0u8; seg.len as usize];
                        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, seg.at)?;
                        f(&buf);
                    }
                },
            }
        }
        Ok(())
    }

    fn aside_file(&self) -> io::Result<&Arc<File>> {
        self.aside
            .as_ref()
            .map(|(_, f)| f)
            .ok_or_else(|| io::Error::other("no side file for unselected files"))
    }

    /// The bytes at `offset..offset+len`, as mapped slices to queue on a
    /// socket without copying (a copy for bytes kept aside). `None` if the
    /// range is outside the share or a file cannot be read.
    pub fn slices(&self, offset: u64, len: u32) -> Option<Vec<Run>> {
        if let Some((_, map)) = &self.single {
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(len as usize)?;
            if end as u64 > self.length || end > map.0.len() {
                return None;
            }
            let run: Run = (map.clone(), start..end);
            return Some(vec![run]);
        }
        let segs = self.segments(offset, u64::from(len))?;
        let mut out: Vec<Run> = Vec::with_capacity(segs.len());
        // Bytes of small files, pads and aside, copied: consecutive ones
        // share one buffer (a block over hundreds of tiny files is one run).
        let mut copied: Vec<u8> = Vec::new();
        for seg in segs {
            let slot = &self.slots[seg.slot];
            let n = seg.len as usize;
            let mapped = match slot.backing {
                Backing::Pad => {
                    copied.resize(copied.len() + n, 0);
                    None
                }
                Backing::Aside => {
                    let at = copied.len();
                    copied.resize(at + n, 0);
                    let file = self.aside_file().ok()?;
                    std::os::unix::fs::FileExt::read_exact_at(
                        &**file,
                        &mut copied[at..],
                        slot.offset + seg.at,
                    )
                    .ok()?;
                    None
                }
                Backing::File => match self.handle(seg.slot, true).ok()? {
                    (_, Some(map)) => {
                        let start = usize::try_from(seg.at).ok()?;
                        if start + n > map.0.len() {
                            return None;
                        }
                        Some((map as Arc<dyn SharedBytes>, start..start + n))
                    }
                    (file, None) => {
                        let at = copied.len();
                        copied.resize(at + n, 0);
                        std::os::unix::fs::FileExt::read_exact_at(
                            &*file,
                            &mut copied[at..],
                            seg.at,
                        )
                        .ok()?;
                        None
                    }
                },
            };
            if let Some(run) = mapped {
                if !copied.is_empty() {
                    let buf = std::mem::take(&mut copied);
                    let n = buf.len();
                    out.push((Arc::new(Owned(buf)), 0..n));
                }
                out.push(run);
            }
        }
        if !copied.is_empty() {
            let n = copied.len();
            out.push((Arc::new(Owned(copied)), 0..n));
        }
        Some(out)
    }

    /// Writes received blocks, consecutive from `offset`, each run to the
    /// file that holds it.
    pub fn write(&self, offset: u64, bufs: &mut [IoSlice<'_>]) -> io::Result<()> {
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        if let Some((file, _)) = &self.single {
            if offset
                .checked_add(total)
                .is_none_or(|end| end > self.length)
            {
                return Err(outside());
            }
            return pwritev_all(file, bufs, offset);
        }
        let bufs: &[IoSlice<'_>] = bufs;
        let segs = self.segments(offset, total).ok_or_else(outside)?;
        let mut cursor = Cursor {
            bufs,
            index: 0,
            at: 0,
        };
        for seg in segs {
            let slot = &self.slots[seg.slot];
            let mut run = cursor.take(seg.len as usize);
            match slot.backing {
                Backing::Pad => {}
                Backing::Aside => pwritev_all(self.aside_file()?, &mut run, slot.offset + seg.at)?,
                Backing::File => {
                    let (file, _) = self.handle(seg.slot, false)?;
                    pwritev_all(&file, &mut run, seg.at)?;
                }
            }
        }
        Ok(())
    }

    /// True while the files opened so far still have their lengths (a
    /// file of a tree is checked again each time it is opened).
    pub fn size_intact(&self) -> bool {
        if self.changed.load(Ordering::Relaxed) {
            return false;
        }
        if let Some((file, _)) = &self.single {
            return file.metadata().is_ok_and(|m| m.len() == self.length);
        }
        let h = self.lock();
        h.open.iter().all(|(&i, o)| {
            o.file
                .metadata()
                .is_ok_and(|m| m.len() == self.slots[i].length)
        })
    }

    /// Makes sure the download's space is there (runs on the hash pool):
    /// every wanted file of a tree is created at its length.
    pub fn allocate(&self) -> io::Result<()> {
        if !self.tree {
            let (file, _) = self.handle(0, false)?;
            return preallocate(&file, self.length);
        }
        let wanted: u64 = self
            .slots
            .iter()
            .filter(|s| s.backing == Backing::File)
            .map(|s| s.length)
            .sum();
        let root = self.path();
        super::check_free_space(&root, wanted)?;
        for (i, s) in self.slots.iter().enumerate() {
            if s.backing != Backing::File {
                continue;
            }
            open_creating(&self.slot_path(&root, i), s.length, false)?;
            self.sized[i].store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Publishes a complete download: flushed, then `NAME.part` (a file
    /// or a directory) renamed to `NAME`, never replacing anything there.
    pub fn finish(&self, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        let target = final_path(dir, name)?;
        let from = self.path();
        if self.tree {
            // Every other wanted file was written to; empty ones must
            // exist too (a resumed download skips `allocate`).
            for (i, s) in self.slots.iter().enumerate() {
                if s.backing == Backing::File && s.length == 0 {
                    self.handle(i, false).map_err(io_err(&from))?;
                }
            }
        }
        let sync = File::open(&from).map_err(io_err(&from))?;
        super::sync_all_of(&sync, self.tree).map_err(io_err(&from))?;
        super::rename_no_replace(&from, &target)?;
        self.lock().root = target.clone();
        Ok(target)
    }

    /// Removes the share's files from disk (a `.part` file or tree, and
    /// its side file; or a shared file or tree). Of a tree, only the
    /// files it lists go, then the directories they leave empty: anything
    /// else put there since stays.
    pub fn delete(&self) -> io::Result<()> {
        let root = self.path();
        if let Some((p, _)) = &self.aside {
            let _ = std::fs::remove_file(p);
        }
        if !self.tree {
            return std::fs::remove_file(root);
        }
        let mut dirs = std::collections::BTreeSet::new();
        for (i, s) in self.slots.iter().enumerate() {
            if s.backing != Backing::File {
                continue;
            }
            let path = self.slot_path(&root, i);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let mut dir = path.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(&root)) {
                dirs.insert(d.to_owned());
                dir = d.parent();
            }
        }
        // Deepest first; a directory still holding something stays.
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        Ok(())
    }
}

/// A copy of bytes, shareable with output queues.
struct Owned(Vec<u8>);

impl SharedBytes for Owned {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Walks `bufs` byte by byte count, handing out the slices of each run.
struct Cursor<'a, 'b> {
    bufs: &'a [IoSlice<'b>],
    index: usize,
    at: usize,
}

impl<'a> Cursor<'a, '_> {
    fn take(&mut self, mut n: usize) -> Vec<IoSlice<'a>> {
        let mut out = Vec::new();
        while n > 0 && self.index < self.bufs.len() {
            let buf: &'a [u8] = &self.bufs[self.index];
            let k = (buf.len() - self.at).min(n);
            out.push(IoSlice::new(&buf[self.at..self.at + k]));
            n -= k;
            self.at += k;
            if self.at == buf.len() {
                self.index += 1;
                self.at = 0;
            }
        }
        out
    }
}

fn outside() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "range outside the share")
}

/// A file of a download opened for writing, created with its length
/// (and its directories) if missing; `sized`: it was already given its
/// length (no need to look).
fn open_creating(path: &Path, length: u64, sized: bool) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    let f = match open() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            open()?
        }
        other => other?,
    };
    if !sized && f.metadata()?.len() != length {
        f.set_len(length)?;
    }
    Ok(f)
}

fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err(path))
}

fn map_file(file: &File) -> io::Result<Arc<Mapped>> {
    // SAFETY: our code reads the mapping only through `guarded::read`,
    // which survives the file shrinking (see the module comment of
    // `storage`).
    let map = unsafe { Mmap::map(file) }?;
    Ok(Arc::new(Mapped(map)))
}

impl Mapped {
    /// Runs `f` on `len` mapped bytes at `offset`, guarded (SIGBUS-safe).
    fn read_range(&self, offset: u64, len: u64, f: &mut impl FnMut(&[u8])) -> io::Result<()> {
        let range = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(s, n)| Some(s..s.checked_add(n)?))
            .filter(|r| r.end <= self.0.len())
            .ok_or_else(outside)?;
        guarded::read(&self.0[range], |b| f(b))
    }
}

/// The files under `root`, sorted by path (component by component, in
/// byte order), each path checked as a torrent path; symlinks and special
/// files refused by name; empty directories skipped (BitTorrent cannot
/// carry them).
pub fn list_tree(root: &Path) -> Result<Listing, StorageError> {
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(root.to_owned(), Vec::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(io_err(&dir))?;
        for entry in entries {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io_err(&path))?;
            let name = entry.file_name().into_string().map_err(|_| {
                StorageError::BadPath(path.clone(), "the name is not valid UTF-8".into())
            })?;
            let mut components = prefix.clone();
            components.push(name);
            if kind.is_symlink() {
                return Err(StorageError::Symlink(path));
            }
            crate::meta::paths::check_path(&components)
                .map_err(|e| StorageError::BadPath(path.clone(), e.to_string()))?;
            if kind.is_dir() {
                stack.push((path, components));
            } else if kind.is_file() {
                let len = entry.metadata().map_err(io_err(&path))?.len();
                out.push((components, len));
            } else {
                return Err(StorageError::NotAFile(path));
            }
        }
    }
    out.sort();
    if out.len() > crate::limits::MAX_FILES as usize {
        return Err(StorageError::BadPath(
            root.to_owned(),
            format!(
                "{} files exceed the limit of {}",
                out.len(),
                crate::limits::MAX_FILES
            ),
        ));
    }
    Ok(out)
}
