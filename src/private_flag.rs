//! BEP 27's `private` flag of an info dict: `private=1` marks a file that
//! is found only through its trackers (no DHT, no PEX). The flag is part
//! of the dict, so setting it changes the info hash.
//!
//! Kept out of `meta::info` while that module is being reworked
//! (`ssl-cert`); it reads the exact bytes `Info` keeps.

use crate::meta::Info;
use crate::meta::bencode::{self, Value};
use crate::meta::info::InfoError;

/// What `Info::private()` will be: reads the flag from `info`'s dict.
pub trait PrivateFlag {
    /// Whether the info dict carries `private` = 1 (BEP 27; any other
    /// value, or none, is a public file).
    fn private(&self) -> bool;
}

impl PrivateFlag for Info {
    fn private(&self) -> bool {
        is_private(&self.bencoded)
    }
}

/// Whether the bencoded info dict `bencoded` has `private` = 1.
pub fn is_private(bencoded: &[u8]) -> bool {
    let Ok(Some(top)) = bencode::dict_at(bencoded, 0, 0) else {
        return false;
    };
    top.iter()
        .find(|(k, _)| *k == b"private")
        .and_then(|(_, r)| bencode::decode_at(bencoded, r.start, 1).ok())
        .is_some_and(|(v, _)| matches!(v, Value::Int(1)))
}

/// `info` with `private` = 1 in its dict (a new info hash); `info` itself
/// if it has it already. Keys stay sorted, as strict bencode wants: the
/// flag goes before the first key that sorts after it.
pub fn make_private(info: &Info) -> Result<Info, InfoError> {
    if info.private() {
        return Ok(info.clone());
    }
    let bytes = &info.bencoded;
    let top = bencode::dict_at(bytes, 0, 0)?.ok_or(InfoError::NotADict)?;
    let mut out = Vec::with_capacity(bytes.len() + 12);
    let mut at = bytes.len() - 1; // before the dict's closing `e`
    for (key, range) in &top {
        if *key == b"private" {
            // `private` with another value: replaced.
            out.extend_from_slice(&bytes[..key_start(range.start, key)]);
            out.extend_from_slice(b"7:privatei1e");
            out.extend_from_slice(&bytes[range.end..]);
            return Info::from_bencoded(&out);
        }
        if *key > &b"private"[..] {
            at = key_start(range.start, key);
            break;
        }
    }
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(b"7:privatei1e");
    out.extend_from_slice(&bytes[at..]);
    Info::from_bencoded(&out)
}

/// Where the bencoded key `key` whose value starts at `value_start` begins
/// (`<len>:<key>`).
fn key_start(value_start: usize, key: &[u8]) -> usize {
    value_start - key.len() - 1 - key.len().to_string().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Info {
        Info::new("a.bin", 40_000, 16_384, vec![7; 60]).unwrap()
    }

    #[test]
    fn a_plain_dict_is_public_and_private_changes_the_hash() {
        let public = file();
        assert!(!public.private());
        let private = make_private(&public).unwrap();
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
        assert_eq!(make_private(&private).unwrap(), private);
    }

    #[test]
    fn the_flag_sorts_before_later_keys_and_replaces_other_values() {
        let with_source = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa6:source3:labe";
        let info = Info::from_bencoded(with_source).unwrap();
        let p = make_private(&info).unwrap();
        assert!(p.private());
        assert!(p.bencoded.ends_with(b"7:privatei1e6:source3:labe"));
        let zero = b"d6:lengthi3e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei0ee";
        let info = Info::from_bencoded(zero).unwrap();
        assert!(!info.private(), "private=0 is public");
        let p = make_private(&info).unwrap();
        assert!(p.private());
        assert!(p.bencoded.ends_with(b"7:privatei1ee"));
    }

    #[test]
    fn garbage_is_public() {
        assert!(!is_private(b"not bencode"));
        assert!(!is_private(b"le"));
    }
}
