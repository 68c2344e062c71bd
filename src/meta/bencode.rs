//! Bencode (BEP 3), strict: integers without leading zeros or `-0`, dict
//! keys in strictly ascending byte order, nothing after the value. A value
//! accepted here re-encodes to exactly the bytes it came from, which is
//! what makes an info hash computed from a decoded dict trustworthy.
//! Strings borrow from the input; nesting depth is capped, and no length
//! is trusted beyond the bytes actually present.

use crate::limits::MAX_BENCODE_DEPTH;

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
