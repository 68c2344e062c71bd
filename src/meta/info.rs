//! The BEP 3 info dict: `name`, `piece length`, `pieces`, and either
//! `length` (one file) or `files` (a tree: each file's `length` and
//! `path`, BEP 47 pad files marked by `attr` `p`). Its SHA1 is the info
//! hash, STA's file id everywhere.
//!
//! `Info` keeps the exact bencoded bytes it was read from, so keys we do not
//! use (`private`, `md5sum`, ...) still count in the hash, as they do for
//! every BitTorrent client.

use super::bencode::{self, BencodeError, Value};
use super::files::{FileEntry, FilePath, Files, TreeFiles};
use super::geometry::Geometry;
use super::paths::{PathError, check_path, check_tree};
use crate::limits::{MAX_FILES, MAX_NAME_LEN, MAX_PIECE_LENGTH, MAX_PIECES, MIN_PIECE_LENGTH};
use sha1::{Digest, Sha1};
use std::ops::Range;

pub use crate::wire::InfoHash;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    /// Bytes of the whole torrent (every file, pad files included).
    pub length: u64,
    pub piece_length: u32,
    /// Where in `bencoded` the concatenated 20-byte piece hashes are (kept
    /// once, not copied: a tracker holds many of these).
    pieces: Range<usize>,
    /// The bencoded dict exactly as hashed.
    pub bencoded: Vec<u8>,
    pub info_hash: InfoHash,
    /// The files in offset order; one with an empty path for a single
    /// file.
    files: Files,
    /// True for a `files` dict (a directory), even of one file.
    multi: bool,
    /// `private` = 1 (BEP 27), read once: finding a key of the dict
    /// means skipping its `files` list, and the engine asks every tick.
    private: bool,
    /// Where in `bencoded` the `ssl-cert` PEM is, found once likewise.
    ssl_cert: Option<Range<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoError {
    Bencode(BencodeError),
    NotADict,
    /// A required key is absent or has the wrong type.
    Missing(&'static str),
    /// Both `length` and `files`: neither one file nor a tree.
    LengthAndFiles,
    /// A `files` list with no file in it.
    NoFiles,
    TooManyFiles(usize),
    /// A dict of more than 4 GiB (its files' paths are found by 32-bit
    /// offsets).
    TooLarge(usize),
    /// Entry `index` of `files` is malformed.
    BadFile {
        index: usize,
        error: FileError,
    },
    /// The paths of `files` break a rule.
    BadPath(PathError),
    BadName(NameError),
    /// `length` is zero, negative, or beyond what `MAX_PIECES` allows.
    BadLength(i64),
    PieceLengthNotPowerOfTwo(i64),
    PieceLengthOutOfRange(i64),
    /// `pieces` is not a multiple of 20 bytes.
    PiecesNotMultipleOf20(usize),
    /// `pieces` holds a different number of hashes than `length` needs.
    PieceCountMismatch {
        expected: u64,
        found: usize,
    },
    TooManyPieces(u64),
    /// `ssl-cert` is longer than `MAX_SSL_CERT` bytes.
    SslCertTooLarge(usize),
}

impl std::fmt::Display for InfoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InfoError::Bencode(e) => write!(f, "info dict: {e}"),
            InfoError::NotADict => write!(f, "info is not a bencoded dict"),
            InfoError::Missing(key) => write!(f, "info dict lacks a valid '{key}'"),
            InfoError::LengthAndFiles => {
                write!(f, "info dict has both 'length' and 'files'")
            }
            InfoError::NoFiles => write!(f, "info dict has an empty 'files' list"),
            InfoError::TooLarge(n) => write!(f, "an info dict of {n} bytes is too large"),
            InfoError::TooManyFiles(n) => {
                write!(f, "{n} files exceed the limit of {MAX_FILES}")
            }
            InfoError::BadFile { index, error } => write!(f, "file {index} of 'files': {error}"),
            InfoError::BadPath(e) => write!(f, "file path: {e}"),
            InfoError::BadName(e) => write!(f, "file name: {e}"),
            InfoError::BadLength(n) => write!(f, "file length {n} is not allowed"),
            InfoError::PieceLengthNotPowerOfTwo(n) => {
                write!(f, "piece length {n} is not a power of two")
            }
            InfoError::PieceLengthOutOfRange(n) => write!(
                f,
                "piece length {n} is outside {MIN_PIECE_LENGTH}..={MAX_PIECE_LENGTH}"
            ),
            InfoError::PiecesNotMultipleOf20(n) => {
                write!(f, "'pieces' is {n} bytes, not a multiple of 20")
            }
            InfoError::PieceCountMismatch { expected, found } => {
                write!(f, "expected {expected} piece hashes, found {found}")
            }
            InfoError::TooManyPieces(n) => {
                write!(f, "{n} pieces exceed the limit of {MAX_PIECES}")
            }
            InfoError::SslCertTooLarge(n) => write!(
                f,
                "'ssl-cert' is {n} bytes, longer than {}",
                crate::limits::MAX_SSL_CERT
            ),
        }
    }
}

impl std::error::Error for InfoError {}

/// What is wrong with one entry of a `files` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    NotADict,
    Missing(&'static str),
    BadLength(i64),
    NotUtf8,
    /// BEP 47 `attr` `l`: STA never creates symlinks from metadata.
    Symlink,
    Path(PathError),
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileError::NotADict => write!(f, "not a dict"),
            FileError::Missing(key) => write!(f, "lacks a valid '{key}'"),
            FileError::BadLength(n) => write!(f, "length {n} is not allowed"),
            FileError::NotUtf8 => write!(f, "a path component is not valid UTF-8"),
            FileError::Symlink => write!(f, "a symlink (attr 'l'); STA does not create symlinks"),
            FileError::Path(e) => write!(f, "{e}"),
        }
    }
}

impl From<BencodeError> for InfoError {
    fn from(e: BencodeError) -> Self {
        InfoError::Bencode(e)
    }
}

impl Info {
    /// Builds the info dict for a file from its piece hashes.
    pub fn new(
        name: &str,
        length: u64,
        piece_length: u32,
        pieces: Vec<u8>,
    ) -> Result<Info, InfoError> {
        check_name(name).map_err(InfoError::BadName)?;
        let dict = Value::Dict(vec![
            (b"length", Value::Int(length_as_i64(length)?)),
            (b"name", Value::Bytes(name.as_bytes())),
            (b"piece length", Value::Int(piece_length.into())),
            (b"pieces", Value::Bytes(&pieces)),
        ]);
        Info::from_bencoded(&dict.to_bytes())
    }

    /// Builds the info dict of a tree named `name` from its files (paths
    /// under `name`, in the order given) and piece hashes. No pad files:
    /// pieces span file boundaries.
    pub fn new_tree(
        name: &str,
        files: &dyn TreeFiles,
        piece_length: u32,
        pieces: Vec<u8>,
    ) -> Result<Info, InfoError> {
        let mut dict = TreeDict::default();
        let mut components = Vec::new();
        for index in 0..files.count() {
            let (path, length) = files.file(index);
            components.clear();
            components.extend(path.split('/'));
            dict.push(&components, length)?;
        }
        dict.finish(name, piece_length)?.with_hashes(&pieces)
    }

    /// This dict with `hashes` as its pieces (as many bytes as it has),
    /// written over the old ones in place: a tree's dict, made while its
    /// files were listed, gets its hashes without a second copy.
    pub fn with_hashes(mut self, hashes: &[u8]) -> Result<Info, InfoError> {
        check_pieces(self.piece_length, self.length, hashes)?;
        self.bencoded[self.pieces.clone()].copy_from_slice(hashes);
        self.info_hash = Sha1::digest(&self.bencoded).into();
        Ok(self)
    }

    /// Parses and validates a bencoded info dict.
    pub fn from_bencoded(bytes: &[u8]) -> Result<Info, InfoError> {
        Info::from_owned(bytes.to_vec())
    }

    /// [`Info::from_bencoded`] of bytes already owned, which it keeps
    /// rather than copies (a tree's dict can take MiBs).
    pub fn from_vec(bytes: Vec<u8>) -> Result<Info, InfoError> {
        Info::from_owned(bytes)
    }

    /// Validates an already decoded info dict; `bencoded` must be its bytes.
    pub fn from_value(dict: &Value<'_>, bencoded: Vec<u8>) -> Result<Info, InfoError> {
        let info = Info::from_owned(bencoded)?;
        // Strict bencode re-encodes to the bytes it was read from, so this
        // compares without decoding a second tree.
        if dict.to_bytes() != info.bencoded {
            return Err(InfoError::NotADict);
        }
        Ok(info)
    }

    /// Parses `bencoded` and keeps it; the piece hashes are read in place.
    /// The bytes are checked whole first, then read one top-level value
    /// and one entry of `files` at a time: a decoded tree of 100,000 files
    /// took about 220 bytes a file, four times the dict itself.
    fn from_owned(bencoded: Vec<u8>) -> Result<Info, InfoError> {
        bencode::validate(&bencoded)?;
        let Some(top) = bencode::dict_at(&bencoded, 0, 0)? else {
            return Err(InfoError::NotADict);
        };
        let raw = |key: &[u8]| top.iter().find(|(k, _)| *k == key).map(|(_, r)| r.clone());
        let value = |key: &[u8]| -> Result<Option<Value<'_>>, InfoError> {
            match raw(key) {
                Some(r) => Ok(Some(bencode::decode_at(&bencoded, r.start, 1)?.0)),
                None => Ok(None),
            }
        };
        let name_value = value(b"name")?;
        let name_bytes = name_value
            .as_ref()
            .and_then(Value::as_bytes)
            .ok_or(InfoError::Missing("name"))?;
        let name =
            std::str::from_utf8(name_bytes).map_err(|_| InfoError::BadName(NameError::NotUtf8))?;
        check_name(name).map_err(InfoError::BadName)?;
        let (files, multi) = match (raw(b"length"), raw(b"files")) {
            (Some(_), Some(_)) => return Err(InfoError::LengthAndFiles),
            (_, Some(list)) => (parse_files(&bencoded, list)?, true),
            (_, None) => {
                let length = value(b"length")?
                    .as_ref()
                    .and_then(Value::as_int)
                    .ok_or(InfoError::Missing("length"))?;
                if length <= 0 {
                    return Err(InfoError::BadLength(length));
                }
                let mut file = Files::with_capacity(1);
                push_file(&mut file, length as u64, 0, false)?;
                (file, false)
            }
        };
        let length = files.total();
        if length == 0 {
            return Err(InfoError::BadLength(0));
        }
        let length = length_as_i64(length)?;
        let piece_length = value(b"piece length")?
            .as_ref()
            .and_then(Value::as_int)
            .ok_or(InfoError::Missing("piece length"))?;
        let pieces_value = value(b"pieces")?;
        let pieces = pieces_value
            .as_ref()
            .and_then(Value::as_bytes)
            .ok_or(InfoError::Missing("pieces"))?;
        let piece_length = check_piece_length(piece_length)?;
        check_pieces(piece_length, length as u64, pieces)?;
        check_ssl_cert(value(SSL_CERT)?.as_ref())?;
        let start = pieces.as_ptr() as usize - bencoded.as_ptr() as usize;
        let pieces = start..start + pieces.len();
        let name = name.to_owned();
        let private = raw(PRIVATE).is_some_and(|r| &bencoded[r] == b"i1e");
        let ssl_cert = raw(SSL_CERT).and_then(|r| string_bytes(&bencoded, r));
        drop(top);
        Ok(Info {
            name,
            length: length as u64,
            piece_length,
            pieces,
            info_hash: Sha1::digest(&bencoded).into(),
            bencoded,
            files,
            multi,
            private,
            ssl_cert,
        })
    }

    /// The files in offset order (one, with an empty path, for a single
    /// file), pad files included.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The path of `file`, one of [`Info::files`], under the torrent's
    /// name (empty for a single file).
    pub fn path(&self, file: &FileEntry) -> FilePath<'_> {
        match self.multi {
            true => FilePath::at(&self.bencoded, file.path as usize),
            false => FilePath::new(b""),
        }
    }

    /// True for a tree (a `files` list), even one of a single file.
    pub fn is_multi(&self) -> bool {
        self.multi
    }

    /// Files a user sees: pad files not counted.
    pub fn file_count(&self) -> usize {
        self.files.iter().filter(|f| !f.pad).count()
    }

    /// Concatenated 20-byte SHA1 hashes, one per piece.
    pub fn pieces(&self) -> &[u8] {
        &self.bencoded[self.pieces.clone()]
    }

    /// Where its pieces and blocks lie in the file.
    pub fn geometry(&self) -> Geometry {
        Geometry::new(self.piece_length, self.length)
    }

    pub fn num_pieces(&self) -> u32 {
        self.geometry().num_pieces()
    }

    /// The expected SHA1 of piece `index`, if it exists.
    pub fn piece_hash(&self, index: u32) -> Option<&[u8]> {
        let at = index as usize * 20;
        self.pieces().get(at..at + 20)
    }

    /// Bytes in piece `index` (the last one may be short).
    pub fn piece_size(&self, index: u32) -> u32 {
        self.geometry().piece_size(index)
    }
}

// libtorrent's SSL torrents (spec/tls.md): the info dict's `ssl-cert`
// holds the swarm CA's certificate, PEM. Kept apart from the BEP 3 keys.

/// The info dict key of an SSL torrent's CA certificate.
const SSL_CERT: &[u8] = b"ssl-cert";
/// BEP 27's key: `private` = 1 marks a file found only through its
/// trackers (no DHT, no PEX).
const PRIVATE: &[u8] = b"private";

/// The info dict of a tree, written while its files are listed: their
/// `files` entries go straight into the dict's bytes, which are all a
/// seeder keeps of them once [`TreeDict::finish`] has checked them; no
/// list of paths is held beside it (a tree of 100,000 files peaked at
/// both, bench/dirs.sh). Files come in torrent order.
pub struct TreeDict {
    out: Vec<u8>,
    count: usize,
    total: u64,
}

impl Default for TreeDict {
    fn default() -> TreeDict {
        TreeDict {
            out: b"d5:filesl".to_vec(),
            count: 0,
            total: 0,
        }
    }
}

impl TreeDict {
    /// Bytes [`TreeDict::push`] adds for such a file.
    pub fn entry_len(components: &[&str], length: u64) -> usize {
        let path: usize = components.iter().map(|c| bytes_len(c.len())).sum();
        b"d6:lengthie4:pathlee".len() + digits(length) + path
    }

    /// An empty dict with room for `entries` bytes of files (see
    /// [`TreeDict::entry_len`]) and the rest of the dict of `name`, in
    /// pieces of `piece_length` over `total` bytes. Written into its own
    /// size, it is never copied to grow: doubling, it held its old bytes
    /// and twice as many new ones at its last copy.
    pub fn with_room(entries: usize, name: &str, piece_length: u32, total: u64) -> TreeDict {
        // Beyond MAX_PIECES, `finish` refuses the dict: no room for them.
        let hashes = Geometry::new(piece_length.max(1), total)
            .piece_count()
            .min(MAX_PIECES.into())
            * 20;
        let rest = b"d5:fileslee4:name12:piece lengthie6:pieces:".len()
            + bytes_len(name.len())
            + digits(piece_length.into())
            + digits(hashes)
            + usize::try_from(hashes).unwrap_or(usize::MAX);
        // A dict past 4 GiB is refused anyway.
        let room = entries.saturating_add(rest).min(u32::MAX as usize);
        let mut out = Vec::with_capacity(room);
        out.extend_from_slice(b"d5:filesl");
        TreeDict {
            out,
            count: 0,
            total: 0,
        }
    }

    /// Adds the file at `components` (its path under the tree) of
    /// `length` bytes, after checking the path and the limits.
    pub fn push(&mut self, components: &[&str], length: u64) -> Result<(), InfoError> {
        let index = self.count;
        check_path(components).map_err(|error| InfoError::BadFile {
            index,
            error: FileError::Path(error),
        })?;
        if index >= MAX_FILES as usize {
            return Err(InfoError::TooManyFiles(index + 1));
        }
        self.total = self
            .total
            .checked_add(length)
            .filter(|&t| i64::try_from(t).is_ok())
            .ok_or(InfoError::BadLength(i64::MAX))?;
        self.out
            .extend_from_slice(format!("d6:lengthi{length}e4:pathl").as_bytes());
        for c in components {
            bytes_to(&mut self.out, c.as_bytes());
        }
        self.out.extend_from_slice(b"ee");
        if u32::try_from(self.out.len()).is_err() {
            return Err(InfoError::TooLarge(self.out.len()));
        }
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The dict of the tree `name`, checked as one read from the network
    /// is, its pieces zero until [`Info::with_hashes`].
    pub fn finish(mut self, name: &str, piece_length: u32) -> Result<Info, InfoError> {
        check_name(name).map_err(InfoError::BadName)?;
        if self.count == 0 {
            return Err(InfoError::NoFiles);
        }
        if self.total == 0 {
            return Err(InfoError::BadLength(0));
        }
        let piece_length = check_piece_length(piece_length.into())?;
        let pieces = Geometry::new(piece_length, self.total).piece_count();
        if pieces > MAX_PIECES.into() {
            return Err(InfoError::TooManyPieces(pieces));
        }
        let out = &mut self.out;
        out.extend_from_slice(b"e4:name");
        bytes_to(out, name.as_bytes());
        let hashes = pieces as usize * 20;
        out.extend_from_slice(
            format!("12:piece lengthi{piece_length}e6:pieces{hashes}:").as_bytes(),
        );
        out.resize(out.len() + hashes, 0);
        out.push(b'e');
        // Kept for as long as the share: no spare capacity.
        out.shrink_to_fit();
        Info::from_owned(self.out)
    }
}

impl Info {
    /// The CA certificate (PEM) of an SSL torrent: `ssl-cert`, at most
    /// `MAX_SSL_CERT` bytes (checked when the dict was read); `None` for
    /// a plain torrent.
    pub fn ssl_cert(&self) -> Option<&[u8]> {
        self.ssl_cert.clone().map(|r| &self.bencoded[r])
    }

    /// This dict with `ssl-cert` = `pem` (in its sorted place, replacing
    /// one it had): another info hash, since the key is hashed.
    pub fn with_ssl_cert(&self, pem: &[u8]) -> Result<Info, InfoError> {
        if pem.is_empty() {
            return Err(InfoError::Missing("ssl-cert"));
        }
        if pem.len() > crate::limits::MAX_SSL_CERT {
            return Err(InfoError::SslCertTooLarge(pem.len()));
        }
        let mut value = Vec::with_capacity(pem.len() + 8);
        bytes_to(&mut value, pem);
        self.with_key(SSL_CERT, &value)
    }

    /// Whether the dict carries `private` = 1 (BEP 27; any other value,
    /// or none, is a public file).
    pub fn private(&self) -> bool {
        self.private
    }

    /// This dict with `private` = 1: another info hash, since the key is
    /// hashed; itself if it is private already.
    pub fn with_private(&self) -> Result<Info, InfoError> {
        match self.private() {
            true => Ok(self.clone()),
            false => self.with_key(PRIVATE, b"i1e"),
        }
    }

    /// This dict with `key` = the bencoded `value`, in its sorted place
    /// (strict bencode wants keys sorted), replacing one it had.
    fn with_key(&self, key: &[u8], value: &[u8]) -> Result<Info, InfoError> {
        let b = &self.bencoded;
        let Some(top) = bencode::dict_at(b, 0, 0)? else {
            return Err(InfoError::NotADict);
        };
        // The new entry goes after the last smaller key; an old one is
        // cut from its `LEN:key` before its value.
        let key_len = format!("{}:", key.len()).len() + key.len();
        let (cut, resume) = match top.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => (v.start - key_len, v.end),
            None => {
                let at = top
                    .iter()
                    .take_while(|(k, _)| *k < key)
                    .last()
                    .map_or(1, |(_, v)| v.end);
                (at, at)
            }
        };
        let mut out = Vec::with_capacity(b.len() + key_len + value.len());
        out.extend_from_slice(&b[..cut]);
        bytes_to(&mut out, key);
        out.extend_from_slice(value);
        out.extend_from_slice(&b[resume..]);
        Info::from_owned(out)
    }
}

/// Where the bytes of `ssl-cert` lie in a validated dict.
/// The bytes of the string whose bencoded value is at `v`: `LEN:` then
/// the bytes.
fn string_bytes(bencoded: &[u8], v: Range<usize>) -> Option<Range<usize>> {
    let colon = bencoded.get(v.clone())?.iter().position(|&c| c == b':')?;
    Some(v.start + colon + 1..v.end)
}

/// `ssl-cert`, when present, is a non-empty string of at most
/// `MAX_SSL_CERT` bytes: a PEM certificate is about 600 bytes, and the
/// bound keeps a hostile dict from making every reader hold a huge one.
fn check_ssl_cert(v: Option<&Value<'_>>) -> Result<(), InfoError> {
    let Some(v) = v else {
        return Ok(());
    };
    match v.as_bytes() {
        Some(pem) if pem.len() > crate::limits::MAX_SSL_CERT => {
            Err(InfoError::SslCertTooLarge(pem.len()))
        }
        Some(pem) if !pem.is_empty() => Ok(()),
        _ => Err(InfoError::Missing("ssl-cert")),
    }
}

/// The entries of the `files` list at `range` of `dict` (validated
/// bencode), their paths checked one by one and against each other, laid
/// end to end. Each entry is decoded alone, then dropped.
fn parse_files(dict: &[u8], range: Range<usize>) -> Result<Files, InfoError> {
    // Counted first, to size the table and refuse too many: a list of
    // their places would cost 8 bytes a file more.
    let items = || bencode::list_items(dict, range.clone(), 1);
    let Some(list) = items()? else {
        return Err(InfoError::Missing("files"));
    };
    let mut count = 0usize;
    for item in list {
        item?;
        count += 1;
    }
    if count == 0 {
        return Err(InfoError::NoFiles);
    }
    if count > MAX_FILES as usize {
        return Err(InfoError::TooManyFiles(count));
    }
    if u32::try_from(dict.len()).is_err() {
        return Err(InfoError::TooLarge(dict.len()));
    }
    let mut files = Files::with_capacity(count);
    for (index, at) in items()?.into_iter().flatten().enumerate() {
        let at = at?;
        let bad = |error| InfoError::BadFile { index, error };
        let (v, _) = bencode::decode_at(dict, at, 2)?;
        let path_at = bencode::dict_at(dict, at, 2)?
            .and_then(|keys| keys.into_iter().find(|(k, _)| *k == b"path"))
            .map(|(_, at)| at);
        let file = parse_file(&v, files.total(), path_at).map_err(bad)?;
        push_file(&mut files, file.length, file.path, file.pad)?;
    }
    // Pad files never reach the disk; libtorrent names many of them alike.
    let has_pads = files.iter().any(|f| f.pad);
    let real: Vec<u32> = match has_pads {
        true => files.iter().filter(|f| !f.pad).map(|f| f.path).collect(),
        false => Vec::new(),
    };
    let path_start = |i: usize| match has_pads {
        true => real[i],
        false => files.get(i).map_or(0, |f| f.path),
    };
    let path = |i: usize| FilePath::at(dict, path_start(i) as usize).components();
    let real_count = if has_pads { real.len() } else { files.len() };
    check_tree(real_count, path).map_err(InfoError::BadPath)?;
    Ok(files)
}

/// One entry of `files`; `path_at`: where its `path` value lies in the
/// dict (below 4 GiB).
fn parse_file(
    v: &Value<'_>,
    offset: u64,
    path_at: Option<Range<usize>>,
) -> Result<FileEntry, FileError> {
    if !matches!(v, Value::Dict(_)) {
        return Err(FileError::NotADict);
    }
    let length = v
        .get(b"length")
        .and_then(Value::as_int)
        .ok_or(FileError::Missing("length"))?;
    if length < 0 {
        return Err(FileError::BadLength(length));
    }
    let (Some(Value::List(parts)), Some(at)) = (v.get(b"path"), path_at) else {
        return Err(FileError::Missing("path"));
    };
    let mut path = Vec::with_capacity(parts.len().min(crate::limits::MAX_PATH_DEPTH + 1));
    for part in parts {
        let bytes = part.as_bytes().ok_or(FileError::Missing("path"))?;
        path.push(std::str::from_utf8(bytes).map_err(|_| FileError::NotUtf8)?);
    }
    let attr = v.get(b"attr").and_then(Value::as_bytes).unwrap_or(b"");
    if attr.contains(&b'l') {
        return Err(FileError::Symlink);
    }
    check_path(&path).map_err(FileError::Path)?;
    Ok(FileEntry {
        path: at.start as u32,
        length: length as u64,
        offset,
        pad: attr.contains(&b'p'),
    })
}

/// Appends a file to `files`, whose lengths must add up to a length a
/// bencoded integer holds.
fn push_file(files: &mut Files, length: u64, path: u32, pad: bool) -> Result<(), InfoError> {
    let fits = files
        .total()
        .checked_add(length)
        .is_some_and(|end| i64::try_from(end).is_ok());
    match fits && files.push(length, path, pad) {
        true => Ok(()),
        false => Err(InfoError::BadLength(i64::MAX)),
    }
}

/// Checks that `pieces` holds one 20-byte hash per piece of `length`.
fn check_pieces(piece_length: u32, length: u64, pieces: &[u8]) -> Result<(), InfoError> {
    let expected = Geometry::new(piece_length, length).piece_count();
    if expected > MAX_PIECES.into() {
        return Err(InfoError::TooManyPieces(expected));
    }
    if !pieces.len().is_multiple_of(20) {
        return Err(InfoError::PiecesNotMultipleOf20(pieces.len()));
    }
    if pieces.len() as u64 / 20 != expected {
        return Err(InfoError::PieceCountMismatch {
            expected,
            found: pieces.len() / 20,
        });
    }
    Ok(())
}

/// Bytes of a bencoded string of `len` bytes.
fn bytes_len(len: usize) -> usize {
    digits(len as u64) + 1 + len
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Appends `bytes` as a bencoded string.
fn bytes_to(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(format!("{}:", bytes.len()).as_bytes());
    out.extend_from_slice(bytes);
}

fn length_as_i64(length: u64) -> Result<i64, InfoError> {
    i64::try_from(length).map_err(|_| InfoError::BadLength(i64::MAX))
}

/// Checks a piece length: a power of two within the allowed range.
pub fn check_piece_length(n: i64) -> Result<u32, InfoError> {
    if n <= 0 || (n & (n - 1)) != 0 {
        return Err(InfoError::PieceLengthNotPowerOfTwo(n));
    }
    if n < MIN_PIECE_LENGTH.into() || n > MAX_PIECE_LENGTH.into() {
        return Err(InfoError::PieceLengthOutOfRange(n));
    }
    Ok(n as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    NotUtf8,
    /// `/` or `\`: a name is one path component, never a path.
    Separator,
    /// `.` or `..`.
    DotName,
    ControlCharacter,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NameError::Empty => write!(f, "the name is empty"),
            NameError::TooLong(n) => {
                write!(f, "the name is {n} bytes, longer than {MAX_NAME_LEN}")
            }
            NameError::NotUtf8 => write!(f, "the name is not valid UTF-8"),
            NameError::Separator => write!(f, "the name contains a path separator"),
            NameError::DotName => write!(f, "'.' and '..' are not file names"),
            NameError::ControlCharacter => write!(f, "the name contains a control character"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a plain file name, safe to create in a directory.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator);
    }
    if name == "." || name == ".." {
        return Err(NameError::DotName);
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(())
}

pub use crate::wire::text::to_hex;

/// Parses 40 hex digits (either case) into an info hash.
pub fn from_hex(s: &str) -> Option<InfoHash> {
    crate::wire::text::from_hex_array(s)
}

#[cfg(test)]
mod private_tests {
    use super::*;

    fn file() -> Info {
        Info::new("a.bin", 40_000, 16_384, vec![7; 60]).unwrap()
    }

    #[test]
    fn a_plain_dict_is_public_and_private_changes_the_hash() {
        let public = file();
        assert!(!public.private());
        let private = public.with_private().unwrap();
        assert!(private.private());
        assert_ne!(private.info_hash, public.info_hash);
        assert!(
            private.bencoded.ends_with(
                b"6:pieces60:"
                    .as_slice()
                    .iter()
                    .chain([7u8; 60].iter())
                    .chain(b"7:privatei1ee")
                    .copied()
                    .collect::<Vec<u8>>()
                    .as_slice()
            )
        );
        assert_eq!(private.name, public.name);
        assert_eq!(private.num_pieces(), public.num_pieces());
        assert_eq!(private.with_private().unwrap(), private);
    }

    #[test]
    fn the_flag_sorts_before_later_keys_and_replaces_other_values() {
        let with_source = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa6:source3:labe";
        let info = Info::from_bencoded(with_source).unwrap();
        let p = info.with_private().unwrap();
        assert!(p.private());
        assert!(p.bencoded.ends_with(b"7:privatei1e6:source3:labe"));
        let zero = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei0ee";
        let info = Info::from_bencoded(zero).unwrap();
        assert!(!info.private(), "private=0 is public");
        let p = info.with_private().unwrap();
        assert!(p.private());
        assert!(p.bencoded.ends_with(b"7:privatei1ee"));
    }
}

#[cfg(test)]
mod tree_dict_tests {
    use super::*;

    #[test]
    fn a_dict_with_room_is_written_into_its_own_size() {
        let files: [(&[&str], u64); 3] = [(&["a"], 10), (&["d", "é"], 0), (&["z"], 99_999)];
        let entries = files.iter().map(|(c, n)| TreeDict::entry_len(c, *n)).sum();
        let total = files.iter().map(|(_, n)| n).sum();
        let mut dict = TreeDict::with_room(entries, "tree", 16_384, total);
        let room = dict.out.capacity();
        for (components, length) in files {
            dict.push(components, length).unwrap();
        }
        assert_eq!(dict.out.capacity(), room, "no copy to grow");
        let info = dict.finish("tree", 16_384).unwrap();
        assert_eq!(info.bencoded.len(), room, "sized exactly");
        let same = Info::new_tree(
            "tree",
            &[("a", 10), ("d/é", 0), ("z", 99_999)]
                .into_iter()
                .collect::<super::super::files::Listing>(),
            16_384,
            vec![0; 7 * 20],
        )
        .unwrap();
        assert_eq!(info.bencoded, same.bencoded);
        let hashed = info.with_hashes(&[3; 140]).unwrap();
        assert_eq!(hashed.piece_hash(6), Some(&[3; 20][..]));
        assert_eq!(
            hashed.info_hash,
            Info::from_bencoded(&hashed.bencoded).unwrap().info_hash
        );
        assert!(matches!(
            hashed.with_hashes(&[0; 20]),
            Err(InfoError::PieceCountMismatch { .. })
        ));
    }
}
