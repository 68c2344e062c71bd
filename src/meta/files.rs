//! The files of a torrent, laid end to end: pieces are cut from their
//! concatenation, in the order of the info dict's `files` list. A
//! single-file torrent is one entry with an empty path.
//!
//! A file's path is not copied out of the info dict: the table keeps
//! where its bencoded `path` list starts in the dict's bytes, which the
//! `Info` keeps anyway ([`super::Info::path`] reads it), and a file's
//! length is where the next one starts. A tree of 100,000 files then
//! costs its dict and 12 bytes and a bit a file, where a `Vec<String>`
//! per path took about 180 and a 32-byte entry each 32 (bench/dirs.sh,
//! memory phase).

use crate::bitfield::Bitfield;
use std::fmt;
use std::ops::Range;

/// One file of a [`Files`] table, as read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileEntry {
    pub length: u64,
    /// Where the file starts in the concatenation.
    pub offset: u64,
    /// Where its bencoded `path` list starts in the info dict (0 for a
    /// single file, which has none).
    pub(super) path: u32,
    /// A BEP 47 pad file: zeros that align the next file on a piece
    /// boundary, never written to disk.
    pub pad: bool,
}

impl FileEntry {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

/// The files of a torrent in offset order, pad files included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// Where each file starts in the concatenation.
    offsets: Vec<u64>,
    /// Where each file's bencoded `path` list starts in the dict.
    paths: Vec<u32>,
    pads: Bitfield,
    /// Where the last file ends: the concatenation's length.
    length: u64,
}

impl Files {
    /// An empty table with room for `count` files (at most `u32::MAX`).
    pub(super) fn with_capacity(count: usize) -> Files {
        Files {
            offsets: Vec::with_capacity(count),
            paths: Vec::with_capacity(count),
            pads: Bitfield::new(u32::try_from(count).unwrap_or(u32::MAX)),
            length: 0,
        }
    }

    /// Appends a file of `length` bytes after the others; false (and
    /// nothing added) past the room made or past `u64::MAX` bytes.
    pub(super) fn push(&mut self, length: u64, path: u32, pad: bool) -> bool {
        let index = self.offsets.len() as u32;
        let Some(end) = self.length.checked_add(length) else {
            return false;
        };
        if index >= self.pads.len() {
            return false;
        }
        if pad {
            self.pads.set(index);
        }
        self.offsets.push(self.length);
        self.paths.push(path);
        self.length = end;
        true
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The concatenation's length: where the last file ends.
    pub fn total(&self) -> u64 {
        self.length
    }

    /// File `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<FileEntry> {
        (i < self.len()).then(|| self.entry(i))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = FileEntry> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// File `i`, which exists.
    fn entry(&self, i: usize) -> FileEntry {
        let offset = self.offsets[i];
        let end = self.offsets.get(i + 1).copied().unwrap_or(self.length);
        FileEntry {
            length: end - offset,
            offset,
            path: self.paths[i],
            pad: self.pads.get(i as u32),
        }
    }

    /// Where each file starts in the concatenation.
    pub fn offsets(&self) -> &[u64] {
        &self.offsets
    }

    /// The files (by index) holding any byte of `range`, with where each
    /// starts and the part of `range` it holds (see [`overlapping`]).
    pub fn overlapping(&self, range: Range<u64>) -> impl Iterator<Item = Overlap> + '_ {
        overlapping(&self.offsets, self.length, range)
    }
}

/// A file holding part of a range: its index, where it starts in the
/// concatenation, and the part of the range in it.
pub type Overlap = (usize, u64, Range<u64>);

/// Of files starting at `offsets` (in order) and ending at `total`, those
/// holding any byte of `range`; empty files and files outside are
/// skipped. What a read or write of a share splits into.
pub fn overlapping(
    offsets: &[u64],
    total: u64,
    range: Range<u64>,
) -> impl Iterator<Item = Overlap> + '_ {
    // The first file ending after range.start: the last one to start at
    // or before it.
    let first = offsets
        .partition_point(|&o| o <= range.start)
        .saturating_sub(1);
    offsets[first..]
        .iter()
        .enumerate()
        .map(move |(k, &start)| {
            let end = offsets.get(first + k + 1).copied().unwrap_or(total);
            (first + k, start, start.max(range.start)..end.min(range.end))
        })
        .take_while(move |(_, start, _)| *start < range.end)
        .filter(|(_, _, part)| part.start < part.end)
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

    /// The list that starts at `start` of `dict` (validated bencode, a
    /// list of strings there); empty if it is not one.
    pub(super) fn at(dict: &'a [u8], start: usize) -> FilePath<'a> {
        let list = list_end(dict, start).and_then(|end| dict.get(start..end));
        FilePath::new(list.unwrap_or_default())
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

/// Where the list of strings at `start` of `bytes` ends (past its `e`).
fn list_end(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'l') {
        return None;
    }
    let mut at = start + 1;
    while *bytes.get(at)? != b'e' {
        let colon = at + bytes.get(at..)?.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&bytes[at..colon]).ok()?.parse().ok()?;
        at = colon.checked_add(1)?.checked_add(len)?;
    }
    Some(at + 1)
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
/// describes (a shared tree is walked straight into its dict instead,
/// through [`super::info::TreeDict`]).
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

/// The files of a tree, each one's path under the root (components joined
/// with `/`) and length, the paths end to end in one string: how tests and
/// tools give [`super::Info::new_tree`] a tree.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn table(lengths: &[u64]) -> Files {
        let mut files = Files::with_capacity(lengths.len());
        for (i, &n) in lengths.iter().enumerate() {
            assert!(files.push(n, i as u32, n == 0));
        }
        files
    }

    #[test]
    fn ranges_split_at_file_boundaries() {
        // 0..10, an empty file at 10, 10..15, 15..30
        let files = table(&[10, 0, 5, 15]);
        let got: Vec<_> = files.overlapping(8..17).collect();
        assert_eq!(got, vec![(0, 0, 8..10), (2, 10, 10..15), (3, 15, 15..17)]);
        let got: Vec<_> = files.overlapping(10..15).collect();
        assert_eq!(got, vec![(2, 10, 10..15)]);
        assert_eq!(files.overlapping(0..30).count(), 3);
        assert_eq!(files.overlapping(30..40).count(), 0);
        assert_eq!(files.overlapping(5..5).count(), 0);
    }

    #[test]
    fn a_table_reads_lengths_from_the_next_offset() {
        let files = table(&[10, 0, 5]);
        let got: Vec<_> = files
            .iter()
            .map(|f| (f.offset, f.length, f.path, f.pad))
            .collect();
        assert_eq!(
            got,
            [(0, 10, 0, false), (10, 0, 1, true), (10, 5, 2, false)]
        );
        assert_eq!((files.len(), files.total(), files.get(3)), (3, 15, None));
        let mut full = table(&[1]);
        assert!(
            !full.push(1, 0, false),
            "no room was made for a second file"
        );
        let mut huge = table(&[u64::MAX]);
        huge.pads = Bitfield::new(2);
        assert!(!huge.push(1, 0, false), "past u64::MAX bytes");
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
        // Found by where it starts, in the middle of a dict.
        let dict = b"d4:pathl2:ab1:cee";
        assert_eq!(FilePath::at(dict, 7).to_string(), "ab/c");
        assert!(FilePath::at(dict, 8).is_empty());
        assert!(FilePath::at(&dict[..12], 7).is_empty(), "cut");
        assert!(FilePath::at(huge.as_bytes(), 0).is_empty());
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
