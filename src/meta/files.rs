//! The files of a torrent, laid end to end: pieces are cut from their
//! concatenation, in the order of the info dict's `files` list. A
//! single-file torrent is one entry with an empty path.

use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Components under the torrent's name (empty for a single file).
    pub path: Vec<String>,
    pub length: u64,
    /// Where the file starts in the concatenation.
    pub offset: u64,
    /// A BEP 47 pad file: zeros that align the next file on a piece
    /// boundary, never written to disk.
    pub pad: bool,
}

impl FileEntry {
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }

    /// The path joined with `/`, for messages and listings.
    pub fn display(&self) -> String {
        self.path.join("/")
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
            path: vec![format!("f{offset}")],
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
}
