//! Where each file of a share lies in the concatenation, and what it is
//! called: read from the share's info dict, which the daemon keeps anyway,
//! or, for one file and for a tree still being hashed (its dict does not
//! exist yet), listed from the disk. So a tree of 100,000 files costs its
//! storage a bit per file beyond the metadata, not a second index of
//! paths and offsets (24 bytes and a path each; bench/dirs.sh, memory).

use crate::meta::files::{Overlap, overlapping};
use crate::meta::{FileEntry, Info};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(super) enum Layout {
    Listed(Listed),
    Info(Arc<Info>),
}

/// Files found on disk, in order: where each path ends in `names` (the
/// paths under the root end to end, components joined with `/`), where
/// each file starts.
pub(super) struct Listed {
    offsets: Vec<u64>,
    name_ends: Vec<u32>,
    names: String,
    length: u64,
}

impl Listed {
    /// `files`: per file, where its path ends in `names`, and its length.
    pub(super) fn new(mut names: String, files: impl IntoIterator<Item = (u32, u64)>) -> Listed {
        let files = files.into_iter();
        let (mut offsets, mut name_ends) = (Vec::new(), Vec::new());
        offsets.reserve_exact(files.size_hint().0);
        name_ends.reserve_exact(files.size_hint().0);
        let mut length = 0u64;
        for (end, len) in files {
            offsets.push(length);
            name_ends.push(end);
            length = length.saturating_add(len);
        }
        names.shrink_to_fit();
        Listed {
            offsets,
            name_ends,
            names,
            length,
        }
    }

    fn name(&self, i: usize) -> &str {
        let start = match i {
            0 => 0,
            _ => self.name_ends.get(i - 1).map_or(0, |&e| e as usize),
        };
        let end = self.name_ends.get(i).map_or(start, |&e| e as usize);
        self.names.get(start..end).unwrap_or_default()
    }

    fn length(&self, i: usize) -> u64 {
        let end = self.offsets.get(i + 1).copied().unwrap_or(self.length);
        end - self.offsets[i]
    }
}

impl Layout {
    pub(super) fn count(&self) -> usize {
        match self {
            Layout::Listed(l) => l.offsets.len(),
            Layout::Info(info) => info.files().len(),
        }
    }

    pub(super) fn total(&self) -> u64 {
        match self {
            Layout::Listed(l) => l.length,
            Layout::Info(info) => info.length,
        }
    }

    /// File `i` (below [`Layout::count`]): where it starts, its length,
    /// and whether it is a pad file.
    pub(super) fn file(&self, i: usize) -> (u64, u64, bool) {
        match self {
            Layout::Listed(l) => (l.offsets[i], l.length(i), false),
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
            Layout::Listed(l) => (&l.offsets[..], l.length),
            Layout::Info(info) => (info.files().offsets(), info.length),
        };
        overlapping(offsets, total, range)
    }

    /// File `i`'s path under `root` (`root` itself for a single file).
    pub(super) fn path(&self, root: &Path, i: usize) -> PathBuf {
        let mut path = root.to_owned();
        match self {
            Layout::Listed(l) if !l.name(i).is_empty() => path.push(l.name(i)),
            Layout::Listed(_) => {}
            Layout::Info(info) => {
                if let Some(f) = info.files().get(i) {
                    path.extend(info.path(&f).components());
                }
            }
        }
        path
    }
}
