//! Multi-file info dicts: an accepted tree has only paths that pass
//! `check_path`, no two real files in one place, files laid end to end
//! whose lengths add up to the torrent's. The first byte chooses the
//! input: even, the rest is the info dict as is; odd, the rest describes a
//! tree that `Value` spells as a structurally valid `files` dict, so the
//! fuzzer spends its time on paths, attrs and lengths, not on bencode.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha1::{Digest, Sha1};
use sta::meta::Info;
use sta::meta::bencode::Value;
use sta::meta::paths::check_path;
use std::collections::HashSet;

/// Components worth trying, picked by index; the fuzzer may also write
/// its own bytes.
const PIECES: &[&[u8]] = &[
    b"a",
    b"b",
    b"A",
    b"..",
    b".",
    b"",
    b"/",
    b"\\",
    b"a/b",
    b"/etc",
    b"\0",
    b"\n",
    b"\x7f",
    b"\xc2\x85",
    b"caf\xc3\xa9",
    b"cafe\xcc\x81",
    b"\xff",
    b".pad",
    b"16383",
    b"...",
    b"C:",
    b"\xef\xbc\x8e\xef\xbc\x8e",
];

/// Bytes read one at a time; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

/// One component: a piece, a piece repeated to a long length, or bytes
/// straight from the input.
fn component(input: &mut Input<'_>) -> Vec<u8> {
    let b = input.byte();
    match b >> 6 {
        0 | 1 => PIECES[b as usize % PIECES.len()].to_vec(),
        2 => {
            // Around MAX_NAME_LEN (255): 250..=257 bytes.
            let n = 250 + (b as usize & 7);
            vec![b'x'; n]
        }
        _ => input.bytes(b as usize & 15).to_vec(),
    }
}

/// One entry of `files`: `attr`, `length`, `path`.
type Entry = (Option<&'static [u8]>, i64, Vec<Vec<u8>>);

/// A tree described by the input: its entries, and whether the dict also
/// gets a `length` (refused with `files`).
fn describe(input: &mut Input<'_>) -> (Vec<Entry>, bool) {
    let head = input.byte();
    let count = 1 + (head as usize & 7);
    let mut files = Vec::new();
    for _ in 0..count {
        let flags = input.byte();
        let mut length = i64::from(u16::from_le_bytes([input.byte(), input.byte()]));
        match flags & 3 {
            0 => length &= 0xff,
            1 => length = 0,
            2 if flags & 4 != 0 => length = -length - 1,
            _ => {}
        }
        let depth = match flags >> 5 {
            7 => 60 + (input.byte() as usize & 7), // around MAX_PATH_DEPTH
            n => n as usize % 4,
        };
        let path = (0..depth).map(|_| component(input)).collect();
        let attr: Option<&'static [u8]> = match (flags >> 3) & 3 {
            0 => None,
            1 => Some(b"p"),
            2 => Some(b"l"),
            _ => Some(b"x"),
        };
        files.push((attr, length, path));
    }
    (files, head & 8 != 0)
}

/// The tree as a bencoded info dict with as many (zero) piece hashes of
/// 16 KiB as its lengths need.
fn encode(files: &[Entry], with_length: bool) -> Vec<u8> {
    let total: u64 = files.iter().map(|f| f.1.max(0) as u64).sum();
    let pieces = vec![0u8; total.div_ceil(16384) as usize * 20];
    let list = files
        .iter()
        .map(|(attr, length, path)| {
            let mut entry: Vec<(&[u8], Value<'_>)> = Vec::new();
            if let Some(attr) = attr {
                entry.push((b"attr", Value::Bytes(attr)));
            }
            entry.push((b"length", Value::Int(*length)));
            let path = path.iter().map(|c| Value::Bytes(c)).collect();
            entry.push((b"path", Value::List(path)));
            Value::Dict(entry)
        })
        .collect();
    let mut dict: Vec<(&[u8], Value<'_>)> = vec![(b"files", Value::List(list))];
    if with_length {
        dict.push((b"length", Value::Int(total as i64)));
    }
    dict.push((b"name", Value::Bytes(b"dir")));
    dict.push((b"piece length", Value::Int(16384)));
    dict.push((b"pieces", Value::Bytes(&pieces)));
    Value::Dict(dict).to_bytes()
}

fn check(data: &[u8]) {
    let Ok(info) = Info::from_bencoded(data) else {
        return;
    };
    assert_eq!(info.bencoded, data);
    let hash: [u8; 20] = Sha1::digest(data).into();
    assert_eq!(info.info_hash, hash);
    let files = info.files();
    assert!(!files.is_empty());
    assert!(info.length >= 1);
    assert_eq!(info.pieces().len(), info.num_pieces() as usize * 20);
    if !info.is_multi() {
        assert_eq!(files.len(), 1);
        let Some(file) = files.get(0) else {
            unreachable!("one file")
        };
        assert!(info.path(&file).is_empty() && !file.pad);
        assert_eq!((file.offset, file.length), (0, info.length));
        return;
    }
    let mut at = 0u64;
    let mut real = HashSet::new();
    let mut dirs = HashSet::new();
    for f in files.iter() {
        let path: Vec<String> = info.path(&f).components().map(str::to_owned).collect();
        assert_eq!(f.offset, at, "{f:?}");
        at += f.length;
        // Pad files never reach the disk, but obey the component rules.
        assert_eq!(check_path(&path), Ok(()), "{f:?}");
        for c in &path {
            let mut parts = std::path::Path::new(c).components();
            assert!(matches!(
                parts.next(),
                Some(std::path::Component::Normal(_))
            ));
            assert!(parts.next().is_none(), "{c:?}");
        }
        if !f.pad {
            for i in 1..path.len() {
                dirs.insert(path[..i].to_vec());
            }
            assert!(real.insert(path), "duplicate {f:?}");
        }
    }
    assert_eq!(at, info.length);
    assert!(real.is_disjoint(&dirs), "a file is another's directory");
    assert_eq!(info.file_count(), real.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        check(rest);
    } else {
        let (files, with_length) = describe(&mut Input(rest));
        check(&encode(&files, with_length));
    }
});
