//! BEP 9's `ut_metadata`: the info dict, cut into pieces of
//! [`METADATA_PIECE`] bytes, asked for and sent over BEP 10 extended
//! messages. Each message is a bencoded dict (`msg_type`, `piece`, and for
//! data `total_size`); a data message has the piece's raw bytes right
//! after the dict. The decoder borrows the bytes and refuses what the
//! engine could not use: no length here is trusted beyond the bytes
//! present, and nothing is allocated but the dict's few entries.

use super::extension::{ExtError, frame};
use crate::meta::bencode::{self, Value};

/// Bytes per metadata piece (BEP 9); the last one may be shorter.
pub const METADATA_PIECE: usize = 16 * 1024;

pub const REQUEST: i64 = 0;
pub const DATA: i64 = 1;
pub const REJECT: i64 = 2;

/// One `ut_metadata` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataMsg<'a> {
    /// `msg_type` 0: send me piece `piece`.
    Request(u32),
    /// `msg_type` 1: piece `piece` of a dict of `total_size` bytes.
    Data {
        piece: u32,
        total_size: u64,
        data: &'a [u8],
    },
    /// `msg_type` 2: I will not send piece `piece`.
    Reject(u32),
}

fn bad(why: &str) -> ExtError {
    ExtError(format!("ut_metadata: {why}"))
}

impl<'a> MetadataMsg<'a> {
    /// Reads a message's body (what follows the extended id). A
    /// `msg_type` other than 0-2 is refused (BEP 9 says to ignore it,
    /// which the caller does with every error).
    pub fn decode(body: &'a [u8]) -> Result<MetadataMsg<'a>, ExtError> {
        let (dict, used) = bencode::decode_prefix(body).map_err(|e| bad(&e.to_string()))?;
        if !matches!(dict, Value::Dict(_)) {
            return Err(bad("not a dict"));
        }
        let int = |key: &[u8]| dict.get(key).and_then(Value::as_int);
        let msg_type = int(b"msg_type").ok_or_else(|| bad("no msg_type"))?;
        let piece = int(b"piece")
            .and_then(|p| u32::try_from(p).ok())
            .ok_or_else(|| bad("no piece, or one out of range"))?;
        let rest = &body[used..];
        match msg_type {
            DATA => {
                let total_size = int(b"total_size")
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad("a data message without total_size"))?;
                if rest.is_empty() || rest.len() > METADATA_PIECE {
                    return Err(bad("a data message's piece is empty or over 16 KiB"));
                }
                Ok(MetadataMsg::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            REQUEST | REJECT if !rest.is_empty() => Err(bad("bytes after a request or reject")),
            REQUEST => Ok(MetadataMsg::Request(piece)),
            REJECT => Ok(MetadataMsg::Reject(piece)),
            _ => Err(bad(&format!("unknown msg_type {msg_type}"))),
        }
    }

    /// Appends the message as a peer-wire frame, with `ext_id`, the id the
    /// receiver's `m` gave `ut_metadata`.
    pub fn encode(&self, ext_id: u8, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(64);
        let (msg_type, piece) = match *self {
            MetadataMsg::Request(p) => (REQUEST, p),
            MetadataMsg::Data { piece, .. } => (DATA, piece),
            MetadataMsg::Reject(p) => (REJECT, p),
        };
        body.extend_from_slice(format!("d8:msg_typei{msg_type}e5:piecei{piece}e").as_bytes());
        if let MetadataMsg::Data { total_size, .. } = self {
            body.extend_from_slice(format!("10:total_sizei{total_size}e").as_bytes());
        }
        body.push(b'e');
        if let MetadataMsg::Data { data, .. } = self {
            body.extend_from_slice(data);
        }
        frame(ext_id, &body, out);
    }
}

/// How many pieces a dict of `size` bytes is cut into.
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(METADATA_PIECE as u64)
}

/// The bytes of piece `piece` of a dict of `size` bytes, as an offset
/// range, or `None` if there is no such piece.
pub fn piece_span(size: u64, piece: u32) -> Option<std::ops::Range<usize>> {
    let start = u64::from(piece).checked_mul(METADATA_PIECE as u64)?;
    if start >= size {
        return None;
    }
    let end = (start + METADATA_PIECE as u64).min(size);
    Some(start as usize..end as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(m: MetadataMsg<'_>, want: &[u8]) {
        let mut out = Vec::new();
        m.encode(3, &mut out);
        assert_eq!(&out[6..], want);
        assert_eq!(&out[..6], &[0, 0, 0, (want.len() + 2) as u8, 20, 3]);
        assert_eq!(MetadataMsg::decode(&out[6..]), Ok(m));
    }

    #[test]
    fn the_three_messages_round_trip() {
        round(MetadataMsg::Request(0), b"d8:msg_typei0e5:piecei0ee");
        round(MetadataMsg::Reject(7), b"d8:msg_typei2e5:piecei7ee");
        round(
            MetadataMsg::Data {
                piece: 1,
                total_size: 16389,
                data: b"hello",
            },
            b"d8:msg_typei1e5:piecei1e10:total_sizei16389eehello",
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        for body in [
            &b""[..],
            b"le",
            b"d5:piecei0ee",
            b"d8:msg_typei0ee",
            b"d8:msg_typei0e5:piecei-1ee",
            b"d8:msg_typei0e5:piecei4294967296ee",
            b"d8:msg_typei0e5:piecei0eextra",
            b"d8:msg_typei1e5:piecei0ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei5ee",
            b"d8:msg_typei1e5:piecei0e10:total_sizei-5eex",
            b"d8:msg_typei9e5:piecei0ee",
            b"d8:msg_typei0e5:piecei0e",
        ] {
            assert!(MetadataMsg::decode(body).is_err(), "{body:?}");
        }
        let mut big = b"d8:msg_typei1e5:piecei0e10:total_sizei99999ee".to_vec();
        big.resize(big.len() + METADATA_PIECE + 1, 0);
        assert!(MetadataMsg::decode(&big).is_err());
    }

    #[test]
    fn pieces_cover_the_dict() {
        assert_eq!(piece_count(1), 1);
        assert_eq!(piece_count(16384), 1);
        assert_eq!(piece_count(16385), 2);
        assert_eq!(piece_span(16385, 0), Some(0..16384));
        assert_eq!(piece_span(16385, 1), Some(16384..16385));
        assert_eq!(piece_span(16385, 2), None);
        assert_eq!(piece_span(0, 0), None);
        assert_eq!(piece_span(u64::MAX, u32::MAX).map(|r| r.len()), Some(16384));
    }
}
