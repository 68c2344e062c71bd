//! Bytes written as text: lower-case hex (info hashes, info dicts in JSON)
//! and percent-encoding (control request words, magnet links, HTTP tracker
//! queries). One implementation, so every place accepts the same inputs:
//! hex digits and `%XX` in either case.

use std::fmt;

const UPPER: &[u8; 16] = b"0123456789ABCDEF";
const LOWER: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of `bytes`, two digits per byte.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(LOWER[usize::from(b >> 4)] as char);
        out.push(LOWER[usize::from(b & 15)] as char);
    }
    out
}

/// The bytes of an even number of hex digits (either case); `None` for
/// an odd length or any other character.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|pair| hex_pair(pair[0], pair[1]))
        .collect()
}

/// Exactly `N` bytes of hex (`2 * N` digits), e.g. a 40-digit info hash.
pub fn from_hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let bytes = s.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *o = hex_pair(pair[0], pair[1])?;
    }
    Some(out)
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    Some((hex_digit(hi)? << 4) | hex_digit(lo)?)
}

/// Which bytes stand for themselves when percent-encoding; every other
/// byte becomes `%XX` (upper-case, as RFC 3986 recommends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Printable ASCII but `%`: a word with no spaces that a person can
    /// still read (control request arguments).
    Graphic,
    /// RFC 3986 unreserved characters: safe in any part of a URI.
    Unreserved,
    /// No byte: every byte is escaped (binary ids in tracker queries).
    Nothing,
}

impl Keep {
    fn keeps(self, b: u8) -> bool {
        match self {
            Keep::Graphic => b.is_ascii_graphic() && b != b'%',
            Keep::Unreserved => b.is_ascii_alphanumeric() || b"-._~".contains(&b),
            Keep::Nothing => false,
        }
    }
}

/// `bytes` as printable ASCII, the bytes `keep` names as they are.
pub fn percent_encode(bytes: &[u8], keep: Keep) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if keep.keeps(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(UPPER[usize::from(b >> 4)] as char);
            out.push(UPPER[usize::from(b & 15)] as char);
        }
    }
    out
}

/// What a `+` means when percent-decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// Itself (control words, magnet parameters other than `dn`).
    Plus,
    /// A space, as in an HTML form's query string.
    Space,
}

/// A `%` at byte `at` that is not followed by two hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPercent {
    pub at: usize,
}

impl fmt::Display for BadPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'%' at byte {} is not followed by two hex digits",
            self.at
        )
    }
}

impl std::error::Error for BadPercent {}

/// Decodes `%XX` (either case) to the byte it names; other bytes stand for
/// themselves, but for `+` under [`Plus::Space`].
pub fn percent_decode(s: &[u8], plus: Plus) -> Result<Vec<u8>, BadPercent> {
    let mut out = Vec::with_capacity(s.len());
    percent_decode_into(s, plus, &mut out)?;
    Ok(out)
}

/// [`percent_decode`] into `out` (cleared first), to reuse one buffer.
pub fn percent_decode_into(s: &[u8], plus: Plus, out: &mut Vec<u8>) -> Result<(), BadPercent> {
    out.clear();
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        match c {
            b'%' => {
                let byte = match (s.get(i + 1), s.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => hex_pair(hi, lo),
                    _ => None,
                };
                out.push(byte.ok_or(BadPercent { at: i })?);
                i += 3;
            }
            b'+' if plus == Plus::Space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_in_either_case() {
        let bytes: Vec<u8> = (0..=255).collect();
        let hex = to_hex(&bytes);
        assert_eq!(&hex[..8], "00010203");
        assert_eq!(&hex[hex.len() - 4..], "feff");
        assert_eq!(from_hex(&hex), Some(bytes.clone()));
        assert_eq!(from_hex(&hex.to_uppercase()), Some(bytes));
        assert_eq!(from_hex(""), Some(Vec::new()));
    }

    #[test]
    fn bad_hex_is_refused() {
        for bad in ["0", "abc", "zz", "0g", "+1", " 1", "é1"] {
            assert_eq!(from_hex(bad), None, "{bad}");
        }
        let h = "ab".repeat(20);
        assert_eq!(from_hex_array::<20>(&h), Some([0xab; 20]));
        assert_eq!(from_hex_array::<20>(&h[..38]), None);
        assert_eq!(from_hex_array::<20>(&format!("{h}00")), None);
        assert_eq!(from_hex_array::<2>("x000"), None);
    }

    #[test]
    fn percent_encoding_keeps_what_it_is_told() {
        let s = b"a b%c/~\xff";
        assert_eq!(percent_encode(s, Keep::Graphic), "a%20b%25c/~%FF");
        assert_eq!(percent_encode(s, Keep::Unreserved), "a%20b%25c%2F~%FF");
        assert_eq!(percent_encode(b"a~", Keep::Nothing), "%61%7E");
    }

    #[test]
    fn percent_decoding_round_trips_and_reads_plus() {
        let all: Vec<u8> = (0..=255).collect();
        for keep in [Keep::Graphic, Keep::Unreserved, Keep::Nothing] {
            let text = percent_encode(&all, keep);
            assert_eq!(percent_decode(text.as_bytes(), Plus::Plus), Ok(all.clone()));
            // Graphic keeps `+`, which a form-style decoder reads as a space.
            if keep != Keep::Graphic {
                assert_eq!(
                    percent_decode(text.as_bytes(), Plus::Space),
                    Ok(all.clone())
                );
            }
        }
        assert_eq!(percent_decode(b"a+b%2b%2B", Plus::Plus).unwrap(), b"a+b++");
        assert_eq!(percent_decode(b"a+b%2b", Plus::Space).unwrap(), b"a b+");
        let mut buf = b"old".to_vec();
        percent_decode_into(b"%41", Plus::Plus, &mut buf).unwrap();
        assert_eq!(buf, b"A");
    }

    #[test]
    fn bad_percent_says_where() {
        for (bad, at) in [("%", 0), ("ab%4", 2), ("%zz", 0), ("x%4g", 1), ("%%41", 0)] {
            assert_eq!(
                percent_decode(bad.as_bytes(), Plus::Plus),
                Err(BadPercent { at }),
                "{bad}"
            );
        }
    }
}
