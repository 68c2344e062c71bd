//! Where each file of a share lies in the concatenation, and what it is
//! called: for a tree, read from its info dict, which the daemon keeps
//! anyway (a shared tree's dict is written while it is listed, before it
//! is hashed); one file is the concatenation. So a tree of 100,000 files
//! costs its storage a bit per file beyond the metadata, not a second
//! index of paths and offsets (bench/dirs.sh, memory).

use crate::meta::files::{Overlap, overlapping};
use crate::meta::{FileEntry, Info};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) enum Layout {
    /// One file of this many bytes.
    Single(u64),
    Info(Arc<Info>),
}

impl Layout {
    pub(super) fn count(&self) -> usize {
        match self {
            Layout::Single(_) => 1,
            Layout::Info(info) => info.files().len(),
        }
    }

    pub(super) fn total(&self) -> u64 {
        match self {
            Layout::Single(length) => *length,
            Layout::Info(info) => info.length,
        }
    }

    /// File `i` (below [`Layout::count`]): where it starts, its length,
    /// and whether it is a pad file.
    pub(super) fn file(&self, i: usize) -> (u64, u64, bool) {
        match self {
            Layout::Single(length) => (0, *length, false),
            Layout::Info(info) => info
                .files()
                .get(i)
                .map_or((info.length, 0, false), |f: FileEntry| {
                    (f.offset, f.length, f.pad)
                }),
        }
    }

    /// The files holding any byte of `range` (see [`overlapping`]).
    pub(super) fn overlapping(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = Overlap> + '_ {
        let (offsets, total) = match self {
            Layout::Single(length) => (&[0][..], *length),
            Layout::Info(info) => (info.files().offsets(), info.length),
        };
        overlapping(offsets, total, range)
    }

    /// File `i`'s path under `root` (`root` itself for a single file).
    pub(super) fn path(&self, root: &Path, i: usize) -> PathBuf {
        let mut path = root.to_owned();
        if let Layout::Info(info) = self
            && let Some(f) = info.files().get(i)
        {
            path.extend(info.path(&f).components());
        }
        path
    }
}
