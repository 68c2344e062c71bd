//! The files of a torrent, laid end to end: pieces are cut from their
//! concatenation, in the order of the info dict's `files` list. A
//! single-file torrent is one entry with an empty path.
//!
//! A file's path is not copied out of the info dict: an entry keeps where
//! its bencoded `path` list lies in the dict's bytes, which the `Info`
//! keeps anyway ([`super::Info::path`] reads it). A tree of 100,000 files
//! then costs its dict and 32 bytes a file, where a `Vec<String>` per
//! path took about 180 (bench/dirs.sh, memory phase).

use std::fmt;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub length: u64,
    /// Where the file starts in the concatenation.
    pub offset: u64,
    /// Where its bencoded `path` list lies in the info dict (empty for a
    /// single file).
    pub(super) path: (u32, u32),
    /// A BEP 47 pad file: zeros that align the next file on a piece
    /// boundary, never written to disk.
    pub pad: bool,
}

impl FileEntry {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

/// A file's path under the torrent's name, read from the info dict's
/// bencoded `path` list (validated when the dict was parsed: each
/// component UTF-8 and obeying [`super::paths::check_path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilePath<'a> {
    /// The list, `l` to `e`; empty for a single file.
    list: &'a [u8],
}

impl<'a> FilePath<'a> {
    pub(super) fn new(list: &'a [u8]) -> FilePath<'a> {
        FilePath { list }
    }

    /// True for the one file of a single-file torrent.
    pub fn is_empty(&self) -> bool {
        self.list.len() <= 2
    }

    pub fn components(&self) -> Components<'a> {
        Components {
            rest: self.list.get(1..).unwrap_or_default(),
        }
    }
}

/// The components joined with `/` (no component holds one).
impl fmt::Display for FilePath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.components().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(c)?;
        }
        Ok(())
    }
}

/// The components of a [`FilePath`], each a bencoded string `LEN:BYTES`
/// up to the list's `e`.
pub struct Components<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Components<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let colon = self.rest.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&self.rest[..colon])
            .ok()?
            .parse()
            .ok()?;
        let end = colon.checked_add(1)?.checked_add(len)?;
        let bytes = self.rest.get(colon + 1..end)?;
        self.rest = &self.rest[end..];
        std::str::from_utf8(bytes).ok()
    }
}

/// The files of a tree in order, each its path under the root (its
/// components joined with `/`) and length: what [`super::Info::new_tree`]
/// describes. A [`Listing`], or the storage's own index of a shared tree,
/// so that a seeder does not keep a second list of 100,000 paths while
/// it hashes.
pub trait TreeFiles {
    fn count(&self) -> usize;
    /// File `i` of [`TreeFiles::count`].
    fn file(&self, i: usize) -> (&str, u64);
}

impl TreeFiles for Listing {
    fn count(&self) -> usize {
        self.len()
    }

    fn file(&self, i: usize) -> (&str, u64) {
        let length = self.files.get(i).map_or(0, |f| f.2);
        (self.path(i), length)
    }
}

/// The files of a tree found on disk, before it is hashed: each one's
/// path under the root (components joined with `/`) and length, the
/// paths end to end in one string. A tree of 100,000 files is listed in
/// about 3 MiB this way, where a `Vec<String>` per path took 11.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    names: String,
    /// Per file: where its path lies in `names`, and its length.
    files: Vec<(u32, u32, u64)>,
}

impl Listing {
    /// Adds a file; false (and nothing added) once the paths would pass
    /// 4 GiB, far beyond what `MAX_FILES` paths of `MAX_PATH_LEN` take.
    pub fn push(&mut self, path: &str, length: u64) -> bool {
        let (Ok(start), Ok(end)) = (
            u32::try_from(self.names.len()),
            u32::try_from(self.names.len() + path.len()),
        ) else {
            return false;
        };
        self.names.push_str(path);
        self.files.push((start, end, length));
        true
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The path of file `i` (joined with `/`); empty past the end.
    pub fn path(&self, i: usize) -> &str {
        let (start, end, _) = self.files.get(i).copied().unwrap_or_default();
        &self.names[start as usize..end as usize]
    }

    /// Each file's path (joined with `/`) and length, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, u64)> + '_ {
        self.files
            .iter()
            .map(|&(start, end, length)| (&self.names[start as usize..end as usize], length))
    }

    /// Puts the files in the order of their components (`a/b` before
    /// `a-b`, as comparing lists of names does), the stable order of a
    /// shared tree, and their paths end to end in that order too.
    pub fn sort(&mut self) {
        let names = &self.names;
        let path = |&(start, end, _): &(u32, u32, u64)| &names[start as usize..end as usize];
        self.files
            .sort_unstable_by(|a, b| path(a).split('/').cmp(path(b).split('/')));
        let mut sorted = String::with_capacity(self.names.len());
        for f in &mut self.files {
            let start = sorted.len() as u32;
            sorted.push_str(&self.names[f.0 as usize..f.1 as usize]);
            *f = (start, sorted.len() as u32, f.2);
        }
        self.names = sorted;
    }

    /// The paths end to end, and per file where its path ends and its
    /// length. Each path starts where the one before ends once sorted.
    pub fn into_parts(self) -> (String, impl Iterator<Item = (u32, u64)>) {
        (
            self.names,
            self.files.into_iter().map(|(_, end, n)| (end, n)),
        )
    }

    pub fn shrink_to_fit(&mut self) {
        self.names.shrink_to_fit();
        self.files.shrink_to_fit();
    }
}

/// Tests and tools list trees as (joined path, length) pairs.
impl<P: AsRef<str>> FromIterator<(P, u64)> for Listing {
    fn from_iter<I: IntoIterator<Item = (P, u64)>>(iter: I) -> Listing {
        let mut listing = Listing::default();
        for (path, length) in iter {
            listing.push(path.as_ref(), length);
        }
        listing
    }
}

/// The files (by index) holding any byte of `range`, with the part of
/// `range` each holds; empty files and files outside are skipped.
/// `files` must be in offset order, as [`super::Info::files`] are.
pub fn overlapping(
    files: &[FileEntry],
    range: Range<u64>,
) -> impl Iterator<Item = (usize, Range<u64>)> + '_ {
    // The first file ending after range.start.
    let first = files.partition_point(|f| f.offset + f.length <= range.start);
    files[first..]
        .iter()
        .enumerate()
        .take_while(move |(_, f)| f.offset < range.end)
        .map(move |(i, f)| {
            let start = f.offset.max(range.start);
            let end = (f.offset + f.length).min(range.end);
            (first + i, start..end)
        })
        .filter(|(_, r)| r.start < r.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, length: u64) -> FileEntry {
        FileEntry {
            path: (0, 0),
            length,
            offset,
            pad: false,
        }
    }

    #[test]
    fn ranges_split_at_file_boundaries() {
        // 0..10, an empty file at 10, 10..15, 15..30
        let files = [entry(0, 10), entry(10, 0), entry(10, 5), entry(15, 15)];
        let got: Vec<_> = overlapping(&files, 8..17).collect();
        assert_eq!(got, vec![(0, 8..10), (2, 10..15), (3, 15..17)]);
        let got: Vec<_> = overlapping(&files, 10..15).collect();
        assert_eq!(got, vec![(2, 10..15)]);
        assert_eq!(overlapping(&files, 30..40).count(), 0);
        assert_eq!(overlapping(&files, 5..5).count(), 0);
    }

    #[test]
    fn a_path_is_read_from_its_bencoded_list() {
        let path = FilePath::new(b"l3:abc0:10:0123456789e");
        let got: Vec<&str> = path.components().collect();
        assert_eq!(got, ["abc", "", "0123456789"]);
        assert_eq!(path.to_string(), "abc//0123456789");
        assert!(!path.is_empty());
        let single = FilePath::new(b"");
        assert!(single.is_empty());
        assert_eq!(single.components().count(), 0);
        assert_eq!(FilePath::new(b"le").components().count(), 0);
        // A cut list ends the components rather than reading past it.
        assert_eq!(FilePath::new(b"l9:abce").components().count(), 0);
        let huge = format!("l{}:ae", usize::MAX);
        assert_eq!(FilePath::new(huge.as_bytes()).components().count(), 0);
    }

    #[test]
    fn a_listing_sorts_by_components() {
        let mut listing: Listing = [("a-b", 1), ("a/b", 2), ("a", 3), ("b/a/c", 4)]
            .into_iter()
            .collect();
        listing.sort();
        let got: Vec<(&str, u64)> = listing.iter().collect();
        assert_eq!(got, [("a", 3), ("a/b", 2), ("a-b", 1), ("b/a/c", 4)]);
    }
}
