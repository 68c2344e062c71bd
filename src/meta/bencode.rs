//! Bencode (BEP 3), strict: integers without leading zeros or `-0`, dict
//! keys in strictly ascending byte order, nothing after the value. A value
//! accepted here re-encodes to exactly the bytes it came from, which is
//! what makes an info hash computed from a decoded dict trustworthy.
//! Strings borrow from the input; nesting depth is capped, and no length
//! is trusted beyond the bytes actually present.

use crate::limits::MAX_BENCODE_DEPTH;
use std::ops::Range;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Entries in the order they appeared, which is sorted by key.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BencodeError {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here, at this offset.
    Unexpected {
        at: usize,
    },
    /// An integer that is malformed, not canonical, or beyond i64.
    BadInteger {
        at: usize,
    },
    /// A dict key equal to or less than the key before it.
    UnsortedKey {
        at: usize,
    },
    TooDeep,
    /// Bytes after the top-level value.
    TrailingData {
        at: usize,
    },
}

impl std::fmt::Display for BencodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BencodeError::UnexpectedEnd => write!(f, "bencode ends inside a value"),
            BencodeError::Unexpected { at } => write!(f, "unexpected byte at offset {at}"),
            BencodeError::BadInteger { at } => write!(f, "malformed integer at offset {at}"),
            BencodeError::UnsortedKey { at } => {
                write!(f, "dict key at offset {at} is out of order or repeated")
            }
            BencodeError::TooDeep => write!(f, "bencode nested deeper than {MAX_BENCODE_DEPTH}"),
            BencodeError::TrailingData { at } => write!(f, "trailing data at offset {at}"),
        }
    }
}

impl std::error::Error for BencodeError {}

/// Decodes exactly one value spanning all of `input`.
pub fn decode(input: &[u8]) -> Result<Value<'_>, BencodeError> {
    let (value, used) = decode_prefix(input)?;
    if used != input.len() {
        return Err(BencodeError::TrailingData { at: used });
    }
    Ok(value)
}

/// Decodes one value from the start of `input`, returning it and the bytes
/// it used.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), BencodeError> {
    let mut p = Parser { input, pos: 0 };
    let v = p.value(0)?;
    Ok((v, p.pos))
}

/// Checks that `input` is exactly one strict bencoded value, as [`decode`]
/// would, without building it: the same errors at the same offsets, and
/// no allocation whatever the nesting (an info dict of 100,000 files is a
/// `Value` tree of some 22 MB).
pub fn validate(input: &[u8]) -> Result<(), BencodeError> {
    let mut p = Parser { input, pos: 0 };
    p.skip(0)?;
    if p.pos != input.len() {
        return Err(BencodeError::TrailingData { at: p.pos });
    }
    Ok(())
}

/// Decodes the value at `pos` of `input`, nested `depth` deep (for the
/// depth limit); returns it and the offset where it ends. Errors name
/// offsets of `input`.
pub fn decode_at(
    input: &[u8],
    pos: usize,
    depth: usize,
) -> Result<(Value<'_>, usize), BencodeError> {
    let mut p = Parser { input, pos };
    let v = p.value(depth)?;
    Ok((v, p.pos))
}

/// A dict's keys, each with where its value lies.
pub type Entries<'a> = Vec<(&'a [u8], Range<usize>)>;

/// The entries of the dict at `pos` of `input` (nested `depth` deep), each
/// key with where its value lies, without decoding the values; `None` if
/// no dict starts there. `input` must have passed [`validate`].
pub fn dict_at(
    input: &[u8],
    pos: usize,
    depth: usize,
) -> Result<Option<Entries<'_>>, BencodeError> {
    let mut p = Parser { input, pos };
    if p.peek()? != b'd' {
        return Ok(None);
    }
    p.pos += 1;
    let mut out = Vec::new();
    while p.peek()? != b'e' {
        let key = p.bytes()?;
        let start = p.pos;
        p.skip(depth + 1)?;
        out.push((key, start..p.pos));
    }
    Ok(Some(out))
}

/// Where each item of the list at `range` of `input` lies (nested
/// `depth` deep); `None` if it is not a list. `input` must have passed
/// [`validate`].
pub fn list_at(
    input: &[u8],
    range: Range<usize>,
    depth: usize,
) -> Result<Option<Vec<usize>>, BencodeError> {
    list_items(input, range, depth)?
        .map(Iterator::collect)
        .transpose()
}

/// Like [`list_at`], one item at a time: a list of 100,000 entries is
/// read without a vector of their places.
pub fn list_items(
    input: &[u8],
    range: Range<usize>,
    depth: usize,
) -> Result<Option<ListItems<'_>>, BencodeError> {
    let mut p = Parser {
        input: &input[..range.end],
        pos: range.start,
    };
    if p.peek()? != b'l' {
        return Ok(None);
    }
    p.pos += 1;
    Ok(Some(ListItems { p, depth }))
}

/// See [`list_items`].
pub struct ListItems<'a> {
    p: Parser<'a>,
    depth: usize,
}

impl Iterator for ListItems<'_> {
    type Item = Result<usize, BencodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.p.pos;
        match self.p.peek() {
            Ok(b'e') => None,
            Ok(_) => Some(self.p.skip(self.depth + 1).map(|_| at)),
            Err(e) => {
                // Once: what follows a broken item cannot be found.
                self.p.pos = self.p.input.len();
                Some(Err(e))
            }
        }
    }
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::UnexpectedEnd)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        if depth > MAX_BENCODE_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                Ok(Value::Int(self.integer(b'e')?))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.bytes()?)),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
                while self.peek()? != b'e' {
                    let at = self.pos;
                    let key = match self.peek()? {
                        b'0'..=b'9' => self.bytes()?,
                        _ => return Err(BencodeError::Unexpected { at }),
                    };
                    if let Some((prev, _)) = entries.last()
                        && *prev >= key
                    {
                        return Err(BencodeError::UnsortedKey { at });
                    }
                    entries.push((key, self.value(depth + 1)?));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(BencodeError::Unexpected { at: self.pos }),
        }
    }

    /// As [`Parser::value`], without building the value.
    fn skip(&mut self, depth: usize) -> Result<(), BencodeError> {
        if depth > MAX_BENCODE_DEPTH {
            return Err(BencodeError::TooDeep);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.integer(b'e').map(|_| ())
            }
            b'0'..=b'9' => self.bytes().map(|_| ()),
            b'l' => {
                self.pos += 1;
                while self.peek()? != b'e' {
                    self.skip(depth + 1)?;
                }
                self.pos += 1;
                Ok(())
            }
            b'd' => {
                self.pos += 1;
                let mut prev: Option<&[u8]> = None;
                while self.peek()? != b'e' {
                    let at = self.pos;
                    let key = match self.peek()? {
                        b'0'..=b'9' => self.bytes()?,
                        _ => return Err(BencodeError::Unexpected { at }),
                    };
                    if prev.is_some_and(|p| p >= key) {
                        return Err(BencodeError::UnsortedKey { at });
                    }
                    prev = Some(key);
                    self.skip(depth + 1)?;
                }
                self.pos += 1;
                Ok(())
            }
            _ => Err(BencodeError::Unexpected { at: self.pos }),
        }
    }

    /// Reads a canonical decimal integer up to `end`, consuming `end`.
    fn integer(&mut self, end: u8) -> Result<i64, BencodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(BencodeError::UnexpectedEnd)?;
        let digits = &rest[..len];
        let bad = BencodeError::BadInteger { at: start };
        let unsigned = digits.strip_prefix(b"-").unwrap_or(digits);
        let canonical = !unsigned.is_empty()
            && unsigned.iter().all(u8::is_ascii_digit)
            && (unsigned == b"0" || unsigned[0] != b'0')
            && !(digits[0] == b'-' && unsigned == b"0")
            && (end == b'e' || digits.len() == unsigned.len());
        if !canonical {
            return Err(bad);
        }
        let text = std::str::from_utf8(digits).map_err(|_| bad)?;
        let n = text.parse::<i64>().map_err(|_| bad)?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let n = self.integer(b':')?;
        let n = usize::try_from(n).map_err(|_| BencodeError::BadInteger { at })?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or(BencodeError::UnexpectedEnd)?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

impl<'a> Value<'a> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(out, b),
            Value::List(items) => {
                out.push(b'l');
                for v in items {
                    v.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (k, v) in entries {
                    encode_bytes(out, k);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// The value under `key`, if this is a dict that has it.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

fn encode_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_agrees_with_decode() {
        let deep = format!(
            "{}{}",
            "l".repeat(MAX_BENCODE_DEPTH + 1),
            "e".repeat(MAX_BENCODE_DEPTH + 1)
        );
        let cases: [&[u8]; 14] = [
            b"d1:ai1e1:bl1:x1:yee",
            b"d1:bi1e1:ai2ee",
            b"d1:ai1e1:ai2ee",
            b"i-0e",
            b"i03e",
            b"4:abc",
            b"le",
            b"li1e",
            b"d1:a",
            b"di1ei2ee",
            b"i1ei2e",
            b"x",
            b"d5:filesld6:lengthi3e4:pathl1:aeeee",
            deep.as_bytes(),
        ];
        for case in cases {
            assert_eq!(
                validate(case),
                decode(case).map(|_| ()),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        let input = b"d5:filesld6:lengthi3e4:pathl1:aeed6:lengthi4e4:pathl1:beee4:name1:te";
        let top = dict_at(input, 0, 0).unwrap().unwrap();
        assert_eq!(
            top.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [&b"files"[..], b"name"]
        );
        let items = list_at(input, top[0].1.clone(), 1).unwrap().unwrap();
        let (first, _) = decode_at(input, items[0], 2).unwrap();
        assert_eq!(first.get(b"length").and_then(Value::as_int), Some(3));
        assert_eq!(items.len(), 2);
        assert!(dict_at(b"le", 0, 0).unwrap().is_none());
    }
}
