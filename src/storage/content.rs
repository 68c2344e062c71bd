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

use super::layout::Layout;
use super::{Mapped, StorageError, guarded, io_err, preallocate, pwritev_all};
use crate::aligned;
use crate::bitfield::Bitfield;
use crate::meta::Info;
use crate::meta::files::Overlap;
use crate::meta::info::{InfoError, TreeDict};
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

/// Files smaller than this are hashed from a `pread` copy, never mapped:
/// on the hash pool a map costs page faults and a munmap that two threads
/// contend for, more than the copy it saves (bench/dirs.sh, 10,000 files
/// of 107 KiB on average: hashing the tree took 0.667 s with 64 KiB here,
/// 0.536 s with 1 MiB).
const SMALL_FILE: u64 = 1024 * 1024;

/// Bytes of small files of a share kept whole in memory for sending, at
/// most, and how many such files. A small file is read in one `pread`
/// when a peer first asks for a block of it, and its descriptor closed at
/// once; the following blocks go out from that copy. Before, each block
/// cost a `pread` of its own into a zeroed buffer, and a seeder of the
/// 10,000-file tree of bench/dirs.sh spent a third of its CPU there.
const WHOLE_BYTES: usize = 8 << 20;
const WHOLE_FILES: usize = 256;

/// Received bytes of a tree kept in memory, at most, until the piece they
/// belong to is hashed (see [`Behind`]).
const BEHIND_BYTES: usize = 16 << 20;

/// The unit of the write-behind cache: a block, as requested.
const BLOCK: u64 = crate::limits::BLOCK_SIZE as u64;

/// Runs shorter than this are copied into the block's buffer rather than
/// queued as their own slice: a block over many tiny files stays one run.
const MIN_RUN: usize = 4096;

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
    /// Small files of a share read whole, with when last used.
    whole: HashMap<usize, (Arc<Whole>, u64)>,
    whole_bytes: usize,
}

pub struct Content {
    /// Its files ("slots"), in offset order.
    layout: Layout,
    length: u64,
    /// Files of a download left out (`--only`): their bytes go aside.
    unwanted: Option<Bitfield>,
    writable: bool,
    tree: bool,
    aside: Option<(PathBuf, Arc<File>)>,
    handles: Mutex<Handles>,
    /// A shared file was found with another length when it was opened
    /// again: the share no longer matches its metadata.
    changed: AtomicBool,
    /// Per slot of a download: its file exists with its length (empty for
    /// a share).
    sized: Vec<AtomicBool>,
    /// A one-file share's handle and map, kept outside the lock: every
    /// block sent or written goes through here, and needs neither the
    /// lock nor a list of segments.
    single: Option<(Arc<File>, Arc<Mapped>)>,
    /// A tree's download: blocks received and not yet on disk.
    behind: Option<Behind>,
}

/// Write-behind for the download of a tree. The reactor copies received
/// blocks here instead of writing them, one `pwritev` per file, itself;
/// the hash pool hashes a complete piece from these copies and only then
/// writes them to their files. So the reactor does a copy per block
/// rather than a write into each file (and the creation of the file), and
/// the hash pool reads nothing back. bench/dirs.sh: the reactor of the
/// fetching peer spent 56 % of its time in `pwritev` and 11 % creating
/// files; while it does, it neither reads its sockets nor asks for more.
///
/// Every block leaves the cache through [`Content::flush`], which writes
/// under `flushing`, and takes out only the copies it was given: a block
/// received again meanwhile stays, and is written later, never overwritten
/// on disk by its older copy.
struct Behind {
    blocks: Mutex<Blocks>,
    flushing: Mutex<()>,
}

#[derive(Default)]
struct Blocks {
    /// By block index (offset / BLOCK): the block's bytes, whole.
    map: HashMap<u64, Arc<[u8]>>,
    bytes: usize,
}

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
    /// A file or a directory, to share: read-only, every file wanted. A
    /// directory's info dict is written while it is listed, with pieces
    /// of `piece_length` (their hashes zero until it is hashed: see
    /// [`Content::hashed`]), and its files are found through it: the dict
    /// is all that is kept of them.
    pub fn open_shared(path: &Path, piece_length: u32) -> Result<Content, StorageError> {
        let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
        if meta.is_dir() {
            let info = tree_dict(path, piece_length)?;
            return Ok(Content::new(
                path,
                Layout::Info(Arc::new(info)),
                None,
                false,
                true,
                None,
            ));
        }
        let file = File::open(path).map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        if !meta.is_file() {
            return Err(StorageError::NotAFile(path.to_owned()));
        }
        if meta.len() == 0 {
            return Err(StorageError::Empty(path.to_owned()));
        }
        let single = Layout::Single(meta.len());
        let content = Content::new(path, single, None, false, false, None);
        content.with_single(file)
    }

    /// A shared tree's dict, with its piece hashes zero until hashed.
    pub fn draft(&self) -> Option<&Arc<Info>> {
        match (&self.layout, self.tree && !self.writable) {
            (Layout::Info(info), true) => Some(info),
            _ => None,
        }
    }

    /// The dict of a shared tree, taken from its share: without a copy
    /// when nothing else holds it (a hash job still might, a moment).
    pub fn into_draft(self) -> Option<Info> {
        let draft = self.draft()?.clone();
        drop(self);
        Some(Arc::try_unwrap(draft).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// A shared tree once hashed: its dict given `hashes` (in place, when
    /// nothing else holds the share), and the share found through it.
    /// `None` for a file or a download.
    pub fn hashed(
        this: Arc<Content>,
        hashes: &[u8],
    ) -> Option<Result<(Arc<Info>, Content), InfoError>> {
        this.draft()?;
        let root = this.path();
        let changed = this.changed.load(Ordering::Relaxed);
        let draft = match Arc::try_unwrap(this) {
            Ok(content) => content.into_draft()?,
            Err(shared) => {
                log::debug!(
                    "{}: its share is still held; its dict is copied",
                    root.display()
                );
                Info::clone(shared.draft()?)
            }
        };
        Some(draft.with_hashes(hashes).map(|info| {
            let info = Arc::new(info);
            let content = Content::new(&root, Layout::Info(info.clone()), None, false, true, None);
            content.changed.store(changed, Ordering::Relaxed);
            (info, content)
        }))
    }

    /// The share of a tree as described by `info`, which must list the
    /// same files as its dict did (its own dict once hashed, maybe with
    /// other keys).
    pub fn shared_as(&self, info: Arc<Info>) -> Content {
        let content = Content::new(&self.path(), Layout::Info(info), None, false, true, None);
        content
            .changed
            .store(self.changed.load(Ordering::Relaxed), Ordering::Relaxed);
        content
    }

    /// Opens the download of `info` in `dir`: `NAME.part` for one file,
    /// the directory `NAME.part/` for a tree (its files created as they
    /// are first touched, or by [`Content::allocate`]). `wanted` says, per
    /// entry of `info.files()`, which files to write (all when `None`).
    /// True when an earlier download was found (resume).
    pub fn open_part(
        dir: &Path,
        info: &Arc<Info>,
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
            let single = Layout::Single(info.length);
            let content = Content::new(&part, single, None, true, false, None);
            let content = content.with_single(file)?;
            return Ok((content, resumed));
        }
        let resumed = part.is_dir();
        std::fs::create_dir_all(&part).map_err(io_err(&part))?;
        let files = info.files();
        let unwanted = wanted.map(|w| {
            let mut unwanted = Bitfield::new(files.len() as u32);
            for f in 0..files.len() {
                if w.get(f) != Some(&true) {
                    unwanted.set(f as u32);
                }
            }
            unwanted
        });
        let any_aside = unwanted.as_ref().is_some_and(|u| {
            u.ones()
                .any(|f| files.get(f as usize).is_some_and(|f| !f.pad))
        });
        let aside = match any_aside {
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
        let layout = Layout::Info(info.clone());
        let content = Content::new(&part, layout, unwanted, true, true, aside);
        Ok((content, resumed))
    }

    fn new(
        root: &Path,
        layout: Layout,
        unwanted: Option<Bitfield>,
        writable: bool,
        tree: bool,
        aside: Option<(PathBuf, Arc<File>)>,
    ) -> Content {
        let sized = match writable {
            true => (0..layout.count())
                .map(|_| AtomicBool::new(false))
                .collect(),
            false => Vec::new(),
        };
        Content {
            length: layout.total(),
            layout,
            unwanted,
            writable,
            tree,
            aside,
            handles: Mutex::new(Handles {
                root: root.to_owned(),
                open: HashMap::new(),
                clock: 0,
                whole: HashMap::new(),
                whole_bytes: 0,
            }),
            changed: AtomicBool::new(false),
            sized,
            single: None,
            behind: (writable && tree).then(|| Behind {
                blocks: Mutex::new(Blocks::default()),
                flushing: Mutex::new(()),
            }),
        }
    }

    fn slots(&self) -> impl Iterator<Item = (u64, u64, Backing)> + '_ {
        (0..self.layout.count()).map(|i| self.slot(i))
    }

    /// Slot `i`'s offset, length and backing.
    fn slot(&self, i: usize) -> (u64, u64, Backing) {
        let (offset, length, pad) = self.layout.file(i);
        let backing = match (pad, &self.unwanted) {
            (true, _) => Backing::Pad,
            (false, Some(u)) if u.get(i as u32) => Backing::Aside,
            (false, _) => Backing::File,
        };
        (offset, length, backing)
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
        let parts = self.layout.overlapping(offset..end);
        let segment = |(slot, start, part): Overlap| Segment {
            slot,
            at: part.start - start,
            len: part.end - part.start,
        };
        Some(parts.map(segment).collect())
    }

    /// The open handle of `slot`, and its map when the file is at least
    /// `map_from` long (`u64::MAX`: no map), opening (for a download:
    /// creating) it if needed.
    fn handle(&self, slot: usize, map_from: u64) -> io::Result<(Arc<File>, Option<Arc<Mapped>>)> {
        if let Some((file, map)) = &self.single {
            return Ok((file.clone(), Some(map.clone())));
        }
        let (_, length, _) = self.slot(slot);
        let want_map = length >= map_from && length > 0;
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
                let map = map_len(&file, length)?;
                if let Some(o) = self.lock().open.get_mut(&slot) {
                    o.map.get_or_insert_with(|| map.clone());
                }
                return Ok((file, Some(map)));
            }
            self.layout.path(&h.root, slot)
        };
        let file = match self.writable {
            true => {
                let sized = &self.sized[slot];
                let f = open_creating(&path, length, sized.load(Ordering::Relaxed))?;
                sized.store(true, Ordering::Relaxed);
                f
            }
            false => {
                let f = open_shared_file(&path)?;
                if f.metadata()?.len() != length {
                    self.changed.store(true, Ordering::Relaxed);
                    return Err(changed(&path));
                }
                f
            }
        };
        let map = match want_map {
            // The length is known: memmap2 would look it up again.
            true => Some(map_len(&file, length)?),
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

    /// The whole of small file `slot` of a share, read once and kept in
    /// memory within [`WHOLE_BYTES`].
    fn whole(&self, slot: usize) -> io::Result<Arc<Whole>> {
        let path = {
            let mut h = self.lock();
            h.clock += 1;
            let now = h.clock;
            if let Some((bytes, used)) = h.whole.get_mut(&slot) {
                *used = now;
                return Ok(bytes.clone());
            }
            self.layout.path(&h.root, slot)
        };
        let (_, length, _) = self.slot(slot);
        let file = open_shared_file(&path)?;
        let len = file.metadata()?.len();
        if len != length {
            self.changed.store(true, Ordering::Relaxed);
            return Err(changed(&path));
        }
        let bytes = Arc::new(read_whole(&file, len as usize)?);
        drop(file);
        let mut h = self.lock();
        h.clock += 1;
        let now = h.clock;
        if let Some((old, _)) = h.whole.insert(slot, (bytes.clone(), now)) {
            h.whole_bytes -= old.bytes().len();
        }
        h.whole_bytes += bytes.bytes().len();
        while h.whole_bytes > WHOLE_BYTES || h.whole.len() > WHOLE_FILES {
            let Some(oldest) = h
                .whole
                .iter()
                .filter(|(k, _)| **k != slot)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((old, _)) = h.whole.remove(&oldest) {
                h.whole_bytes -= old.bytes().len();
            }
        }
        Ok(bytes)
    }

    /// Runs `f` on each run of the `len` bytes at `offset`, in order (for
    /// hashing). A file shrinking meanwhile is an error, not a crash.
    pub fn read(&self, offset: u64, len: u64, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        if let Some((_, map)) = &self.single {
            return map.read_range(offset, len, &mut f);
        }
        let segs = self.segments(offset, len).ok_or_else(outside)?;
        if let Some(behind) = &self.behind {
            let copies = self.cached(behind, offset, len);
            // Pads read as zeros whatever a peer sent for them, so a range
            // holding one is read from disk.
            let whole = !copies.is_empty()
                && copies.len() as u64 == self.blocks_of(offset, len).count() as u64
                && segs.iter().all(|s| self.slot(s.slot).2 != Backing::Pad);
            if whole {
                for (k, bytes) in &copies {
                    let start = (offset.max(k * BLOCK) - k * BLOCK) as usize;
                    let end =
                        ((offset + len).min(k * BLOCK + bytes.len() as u64) - k * BLOCK) as usize;
                    f(bytes.get(start..end).ok_or_else(outside)?);
                }
                return self.flush(behind, copies);
            }
            self.flush(behind, copies)?;
        }
        for seg in segs {
            let (slot_offset, _, backing) = self.slot(seg.slot);
            match backing {
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
                        slot_offset + seg.at,
                    )?;
                    f(&buf);
                }
                Backing::File => match self.handle(seg.slot, SMALL_FILE)? {
                    (_, Some(map)) => map.read_range(seg.at, seg.len, &mut f)?,
                    (file, None) => with_buffer(seg.len as usize, |buf| {
                        std::os::unix::fs::FileExt::read_exact_at(&*file, buf, seg.at)?;
                        f(buf);
                        Ok(())
                    })?,
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
        if let Some(behind) = &self.behind {
            // Only verified pieces are sent, and hashing wrote them; a
            // block received again since is written before it is read.
            let copies = self.cached(behind, offset, len.into());
            self.flush(behind, copies).ok()?;
        }
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
            let n = seg.len as usize;
            let (slot_offset, slot_length, backing) = self.slot(seg.slot);
            let mapped = match backing {
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
                        slot_offset + seg.at,
                    )
                    .ok()?;
                    None
                }
                Backing::File if !self.writable && slot_length < SMALL_FILE => {
                    let bytes = self.whole(seg.slot).ok()?;
                    let start = usize::try_from(seg.at).ok()?;
                    let range = start..start.checked_add(n)?;
                    let part = bytes.bytes().get(range.clone())?;
                    match n < MIN_RUN {
                        true => {
                            copied.extend_from_slice(part);
                            None
                        }
                        false => Some((bytes as Arc<dyn SharedBytes>, range)),
                    }
                }
                Backing::File => match self.handle(seg.slot, SMALL_FILE).ok()? {
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
        if let Some(behind) = &self.behind {
            if offset
                .checked_add(total)
                .is_none_or(|end| end > self.length)
            {
                return Err(outside());
            }
            if self.keep(behind, offset, total, bufs) {
                return Ok(());
            }
            // Not kept (not whole blocks, or the cache is full): older
            // copies of these blocks go first, then these bytes over them.
            let _flushing = behind.flushing.lock().unwrap_or_else(|e| e.into_inner());
            let old: Vec<(u64, Arc<[u8]>)> = {
                let mut b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
                let mut old = Vec::new();
                for k in self.blocks_of(offset, total) {
                    if let Some(bytes) = b.map.remove(&k) {
                        b.bytes -= bytes.len();
                        old.push((k, bytes));
                    }
                }
                old
            };
            self.write_blocks(&old)?;
            return self.write_direct(offset, bufs);
        }
        self.write_direct(offset, bufs)
    }

    /// The indices of the blocks that `offset..offset+len` touches.
    fn blocks_of(&self, offset: u64, len: u64) -> std::ops::Range<u64> {
        match len {
            0 => 0..0,
            _ => offset / BLOCK..(offset + len - 1) / BLOCK + 1,
        }
    }

    /// Copies `bufs` into the write-behind cache if they are whole blocks
    /// (the last one of the share may be short) and there is room.
    fn keep(&self, behind: &Behind, offset: u64, total: u64, bufs: &[IoSlice<'_>]) -> bool {
        let end = offset + total;
        if total == 0
            || !offset.is_multiple_of(BLOCK)
            || (!end.is_multiple_of(BLOCK) && end != self.length)
        {
            return false;
        }
        let mut b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if b.bytes + total as usize > BEHIND_BYTES {
            return false;
        }
        let mut cursor = Cursor {
            bufs,
            index: 0,
            at: 0,
        };
        for k in self.blocks_of(offset, total) {
            let n = (end.min((k + 1) * BLOCK) - k * BLOCK) as usize;
            let mut block = Vec::with_capacity(n);
            for part in cursor.take(n) {
                block.extend_from_slice(&part);
            }
            b.bytes += n;
            if let Some(old) = b.map.insert(k, block.into()) {
                b.bytes -= old.len();
            }
        }
        true
    }

    /// The cached copies of the blocks `offset..offset+len` touches, in
    /// order (those there are).
    fn cached(&self, behind: &Behind, offset: u64, len: u64) -> Vec<(u64, Arc<[u8]>)> {
        let b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if b.map.is_empty() {
            return Vec::new();
        }
        self.blocks_of(offset, len)
            .filter_map(|k| b.map.get(&k).map(|bytes| (k, bytes.clone())))
            .collect()
    }

    /// Writes `copies` to their files and takes them out of the cache,
    /// but only those still there: one replaced meanwhile by a newer copy
    /// stays for a later flush.
    fn flush(&self, behind: &Behind, copies: Vec<(u64, Arc<[u8]>)>) -> io::Result<()> {
        if copies.is_empty() {
            return Ok(());
        }
        let _flushing = behind.flushing.lock().unwrap_or_else(|e| e.into_inner());
        let current: Vec<(u64, Arc<[u8]>)> = {
            let b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
            copies
                .into_iter()
                .filter(|(k, bytes)| b.map.get(k).is_some_and(|c| Arc::ptr_eq(c, bytes)))
                .collect()
        };
        self.write_blocks(&current)?;
        let mut b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
        for (k, bytes) in current {
            if b.map.get(&k).is_some_and(|c| Arc::ptr_eq(c, &bytes)) {
                b.map.remove(&k);
                b.bytes -= bytes.len();
            }
        }
        Ok(())
    }

    /// Every cached block to disk (before publishing).
    fn flush_all(&self) -> io::Result<()> {
        let Some(behind) = &self.behind else {
            return Ok(());
        };
        let mut all: Vec<(u64, Arc<[u8]>)> = {
            let b = behind.blocks.lock().unwrap_or_else(|e| e.into_inner());
            b.map.iter().map(|(k, v)| (*k, v.clone())).collect()
        };
        all.sort_by_key(|(k, _)| *k);
        self.flush(behind, all)
    }

    /// Writes blocks (sorted by index), consecutive ones in one call.
    fn write_blocks(&self, blocks: &[(u64, Arc<[u8]>)]) -> io::Result<()> {
        let mut i = 0;
        while i < blocks.len() {
            let mut j = i + 1;
            while j < blocks.len()
                && blocks[j].0 == blocks[j - 1].0 + 1
                && blocks[j - 1].1.len() as u64 == BLOCK
            {
                j += 1;
            }
            let bufs: Vec<IoSlice<'_>> =
                blocks[i..j].iter().map(|(_, b)| IoSlice::new(b)).collect();
            self.write_direct(blocks[i].0 * BLOCK, &bufs)?;
            i = j;
        }
        Ok(())
    }

    /// Writes `bufs` at `offset` of the concatenation, each run to the
    /// file that holds it.
    fn write_direct(&self, offset: u64, bufs: &[IoSlice<'_>]) -> io::Result<()> {
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let segs = self.segments(offset, total).ok_or_else(outside)?;
        let mut cursor = Cursor {
            bufs,
            index: 0,
            at: 0,
        };
        for seg in segs {
            let (slot_offset, _, backing) = self.slot(seg.slot);
            let mut run = cursor.take(seg.len as usize);
            match backing {
                Backing::Pad => {}
                Backing::Aside => pwritev_all(self.aside_file()?, &mut run, slot_offset + seg.at)?,
                Backing::File => {
                    let (file, _) = self.handle(seg.slot, u64::MAX)?;
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
        h.open
            .iter()
            .all(|(&i, o)| o.file.metadata().is_ok_and(|m| m.len() == self.slot(i).1))
    }

    /// Makes sure the download's space is there (runs on the hash pool).
    /// The files of a tree are created when first written, not here:
    /// creating them sparse reserves nothing, and creating 10,000 files
    /// up front competed with the download for the CPU and made the
    /// reactor open each one again anyway.
    pub fn allocate(&self) -> io::Result<()> {
        if !self.tree {
            let (file, _) = self.handle(0, u64::MAX)?;
            return preallocate(&file, self.length);
        }
        let wanted: u64 = self
            .slots()
            .filter(|&(_, _, backing)| backing == Backing::File)
            .map(|(_, length, _)| length)
            .sum();
        super::check_free_space(&self.path(), wanted)
    }

    /// Publishes a complete download: flushed, then `NAME.part` (a file
    /// or a directory) renamed to `NAME`, never replacing anything there.
    pub fn finish(&self, dir: &Path, name: &str) -> Result<PathBuf, StorageError> {
        let target = final_path(dir, name)?;
        let from = self.path();
        self.flush_all().map_err(io_err(&from))?;
        if self.tree {
            // Every other wanted file was written to; empty ones must
            // exist too (a resumed download skips `allocate`).
            for (i, (_, length, backing)) in self.slots().enumerate() {
                if backing == Backing::File && length == 0 {
                    self.handle(i, u64::MAX).map_err(io_err(&from))?;
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
        for (i, (_, _, backing)) in self.slots().enumerate() {
            if backing != Backing::File {
                continue;
            }
            let path = self.layout.path(&root, i);
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

/// A small file's bytes, read whole into aligned memory (see
/// [`crate::aligned`]).
struct Whole {
    buf: Vec<u8>,
    start: usize,
}

impl SharedBytes for Whole {
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
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
    let open = |new: bool| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(!new)
            .create_new(new)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
    };
    // A fresh download creates every file: trying O_EXCL first tells a
    // new file (no length to look up) from one of an earlier run.
    let created = match open(!sized) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            open(!sized)
        }
        other => other,
    };
    let (f, new) = match created {
        Ok(f) => (f, !sized),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => (open(false)?, false),
        Err(e) => return Err(e),
    };
    let short = match (sized, new) {
        (true, _) => false,
        (false, true) => length > 0,
        (false, false) => f.metadata()?.len() != length,
    };
    if short {
        f.set_len(length)?;
    }
    Ok(f)
}

/// Runs `f` on a buffer of `len` bytes, this thread's own, reused: a
/// fresh one per read costs an allocation and a memset of every byte
/// read. It starts aligned (see [`crate::aligned`]): hashing the
/// 10,000-file tree of bench/dirs.sh took 0.84-1.0 s, depending on where
/// the allocator had put it, against 0.63-0.72 s aligned.
fn with_buffer<R>(len: usize, f: impl FnOnce(&mut [u8]) -> io::Result<R>) -> io::Result<R> {
    /// Kept between reads up to this size (a piece of 4 MiB, say).
    const KEEP: usize = 4 << 20;
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|cell| {
        // A reentrant call (none is made today) gets a buffer of its own.
        let mut own = Vec::new();
        let mut guard = cell.try_borrow_mut();
        let buf = match guard.as_deref_mut() {
            Ok(b) => b,
            Err(_) => &mut own,
        };
        if buf.len() < len + aligned::ALIGN {
            buf.resize(len + aligned::ALIGN, 0);
        }
        let out = f(aligned::slice_mut(buf, len));
        if buf.len() > KEEP {
            *buf = Vec::new();
        }
        out
    })
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

/// A file of a share, read-only. One swapped for a symlink since it was
/// shared is not followed (the link could point anywhere).
fn open_shared_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn changed(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} changed size since it was shared", path.display()),
    )
}

/// The `len` bytes of `file`, read without zeroing a buffer first, into
/// aligned memory.
fn read_whole(file: &File, len: usize) -> io::Result<Whole> {
    use std::os::fd::AsRawFd;
    let mut buf: Vec<u8> = Vec::with_capacity(len + aligned::ALIGN);
    let start = aligned::gap(buf.as_ptr());
    buf.resize(start, 0);
    let end = start + len;
    while buf.len() < end {
        let at = buf.len();
        let offset = libc::off_t::try_from(at - start).map_err(|_| outside())?;
        // SAFETY: the destination is the vector's spare capacity, `end -
        // at` bytes from its end of initialised bytes (its capacity is at
        // least `end`); pread writes at most that many, and only those it
        // reports are counted as initialised.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(at).cast::<libc::c_void>(),
                end - at,
                offset,
            )
        };
        match n {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            // SAFETY: pread initialised these `n` bytes (n <= end - at).
            n => unsafe { buf.set_len(at + n as usize) },
        }
    }
    Ok(Whole { buf, start })
}

fn map_len(file: &File, len: u64) -> io::Result<Arc<Mapped>> {
    let len = usize::try_from(len).map_err(|_| outside())?;
    // SAFETY: as for `map_file`.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }?;
    Ok(Arc::new(Mapped(map)))
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

/// The info dict of the tree at `root`, written as it is walked; its
/// piece hashes zero.
fn tree_dict(root: &Path, piece_length: u32) -> Result<Info, StorageError> {
    let name = root.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        StorageError::BadPath(root.to_owned(), "the name is not valid UTF-8".into())
    })?;
    // Walked twice: first to size the dict, then to write it.
    let (mut entries, mut total) = (0usize, 0u64);
    walk_tree(root, |_, components, length| {
        entries = entries.saturating_add(TreeDict::entry_len(components, length));
        total = total.saturating_add(length);
        Ok(())
    })?;
    let mut dict = TreeDict::with_room(entries, name, piece_length, total);
    walk_tree(root, |at, components, length| {
        dict.push(components, length).map_err(|e| match e {
            InfoError::TooManyFiles(_) => too_many_files(root),
            e => StorageError::BadPath(at.to_owned(), e.to_string()),
        })
    })?;
    dict.finish(name, piece_length).map_err(|e| match e {
        InfoError::NoFiles | InfoError::BadLength(0) => StorageError::Empty(root.to_owned()),
        InfoError::TooManyPieces(n) => StorageError::BadPath(
            root.to_owned(),
            format!("it needs {n} pieces; use a larger --piece-size"),
        ),
        e => StorageError::BadPath(root.to_owned(), e.to_string()),
    })
}

/// Calls `file` with each file under `root` (its path on disk, its path
/// under the root as components, its length) in torrent order: each
/// directory's entries sorted by name in byte order, a directory's files
/// right where its name sorts, which is the order of comparing paths
/// component by component. Every path is checked as a torrent path;
/// symlinks and special files are refused by name; empty directories are
/// skipped (BitTorrent cannot carry them). Only the entries of the
/// directories being walked are held, never a list of the whole tree.
pub fn walk_tree(
    root: &Path,
    mut file: impl FnMut(&Path, &[&str], u64) -> Result<(), StorageError>,
) -> Result<(), StorageError> {
    // Per directory being walked, its entries still to visit, the next
    // one last; and the names leading to the deepest one.
    let mut levels = vec![read_sorted(root, &[])?];
    let mut names: Vec<String> = Vec::new();
    let mut dir = root.to_owned();
    while let Some(level) = levels.last_mut() {
        let Some(entry) = level.pop() else {
            levels.pop();
            if names.pop().is_some() {
                dir.pop();
            }
            continue;
        };
        match entry.length {
            None => {
                dir.push(&entry.name);
                names.push(entry.name);
                levels.push(read_sorted(&dir, &names)?);
            }
            Some(length) => {
                let mut components: Vec<&str> = names.iter().map(String::as_str).collect();
                components.push(&entry.name);
                file(&dir.join(&entry.name), &components, length)?;
            }
        }
    }
    Ok(())
}

/// An entry of a directory being walked: a file and its length, or a
/// directory (`None`).
struct Entry {
    name: String,
    length: Option<u64>,
}

/// The entries of `dir` (at `under` below the root), checked, sorted by
/// name in reverse order.
fn read_sorted(dir: &Path, under: &[String]) -> Result<Vec<Entry>, StorageError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io_err(&path))?;
        let name = entry.file_name().into_string().map_err(|_| {
            StorageError::BadPath(path.clone(), "the name is not valid UTF-8".into())
        })?;
        if kind.is_symlink() {
            return Err(StorageError::Symlink(path));
        }
        let mut components: Vec<&str> = under.iter().map(String::as_str).collect();
        components.push(&name);
        crate::meta::paths::check_path(&components)
            .map_err(|e| StorageError::BadPath(path.clone(), e.to_string()))?;
        let length = if kind.is_dir() {
            None
        } else if kind.is_file() {
            Some(entry.metadata().map_err(io_err(&path))?.len())
        } else {
            return Err(StorageError::NotAFile(path));
        };
        out.push(Entry { name, length });
    }
    out.sort_unstable_by(|a, b| b.name.cmp(&a.name));
    Ok(out)
}

fn too_many_files(at: &Path) -> StorageError {
    StorageError::BadPath(
        at.to_owned(),
        format!("more files than the limit of {}", crate::limits::MAX_FILES),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_received_again_is_never_overwritten_by_its_older_copy() {
        let dir = std::env::temp_dir().join(format!("sta-behind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let files = vec![("a", 20_000), ("b", 20_000)];
        let pieces = crate::meta::Geometry::new(16384, 40_000).piece_count() as usize;
        let info = crate::meta::Info::new_tree(
            "t",
            &files.into_iter().collect::<crate::meta::files::Listing>(),
            16384,
            vec![0; pieces * 20],
        )
        .unwrap();
        let (c, _) = Content::open_part(&dir, &Arc::new(info), None).unwrap();
        let behind = c.behind.as_ref().unwrap();
        let read = |c: &Content| {
            let mut got = Vec::new();
            c.read(BLOCK, BLOCK, |b| got.extend_from_slice(b)).unwrap();
            got
        };
        c.write(BLOCK, &mut [IoSlice::new(&[1; 16384])]).unwrap();
        let old = c.cached(behind, BLOCK, BLOCK);
        c.write(BLOCK, &mut [IoSlice::new(&[2; 16384])]).unwrap();
        // A flush of the first copy, late: it must neither reach the disk
        // nor take the second copy out.
        c.flush(behind, old).unwrap();
        assert!(read(&c).iter().all(|&x| x == 2));
        // Bytes that are not whole blocks go straight to disk, after the
        // cached copy of their block.
        c.write(BLOCK, &mut [IoSlice::new(&[4; 16384])]).unwrap();
        c.write(BLOCK + 100, &mut [IoSlice::new(&[3; 10])]).unwrap();
        let got = read(&c);
        assert!(got[..100].iter().chain(&got[110..]).all(|&x| x == 4));
        assert_eq!(got[100..110], [3; 10]);
        c.write(0, &mut [IoSlice::new(&[5; 16384])]).unwrap();
        let path = c.finish(&dir, "t").unwrap();
        let a = std::fs::read(path.join("a")).unwrap();
        assert_eq!(a.len(), 20_000);
        assert!(a[..16384].iter().all(|&x| x == 5), "flushed when published");
        assert_eq!(a[16484..16494], [3; 10]);
        assert_eq!(std::fs::read(path.join("b")).unwrap().len(), 20_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
