//! Magnet links (BEP 9 `magnet:?xt=urn:btih:...`), sans-IO: read one into
//! an info hash, a display name and trackers; write one for a file.
//!
//! Only what STA can use is read: the v1 info hash (`xt=urn:btih:`, 40 hex
//! digits or 32 base32 characters), `dn`, `tr` and `x.pe` (BEP 9: a peer
//! to fetch the file and its metadata from). Other parameters are
//! ignored; a link without a v1 info hash is refused.

use super::info::{InfoHash, from_hex};
use crate::wire::text::{Keep, Plus, percent_decode, percent_encode, to_hex};
use std::fmt;

/// What a magnet link says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    pub info_hash: InfoHash,
    /// `dn`, the display name, if given.
    pub name: Option<String>,
    /// Every `tr` (tracker URL), in order.
    pub trackers: Vec<String>,
    /// Every `x.pe` (a peer, `HOST:PORT`, `[IPv6]:PORT`), in order.
    pub peers: Vec<String>,
}

/// Why a magnet link was refused; the text says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagnetError(pub String);

impl fmt::Display for MagnetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MagnetError {}

fn bad(message: impl Into<String>) -> MagnetError {
    MagnetError(message.into())
}

/// True if `s` looks like a magnet link (scheme `magnet:`, any case).
pub fn is_magnet(s: &str) -> bool {
    s.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:"))
}

impl Magnet {
    /// Parses a magnet link. Values are percent-decoded (`+` in `dn` is a
    /// space, as in a query string).
    pub fn parse(link: &str) -> Result<Magnet, MagnetError> {
        if !is_magnet(link) {
            return Err(bad("a magnet link starts with `magnet:?`"));
        }
        let query = link[7..]
            .strip_prefix('?')
            .ok_or_else(|| bad("a magnet link starts with `magnet:?`"))?;
        let mut info_hash = None;
        let mut other_xt = false;
        let mut name = None;
        let mut trackers = Vec::new();
        let mut peers = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            match key {
                "xt" => {
                    let value = utf8(decode(value, Plus::Plus)?, "xt")?;
                    let Some(hash) = strip_prefix_ci(&value, "urn:btih:") else {
                        other_xt = true;
                        continue;
                    };
                    let hash = parse_btih(hash)?;
                    if info_hash.is_some_and(|h| h != hash) {
                        return Err(bad("the magnet link names two different v1 info hashes"));
                    }
                    info_hash = Some(hash);
                }
                "dn" => name = Some(utf8(decode(value, Plus::Space)?, "dn")?),
                "tr" => trackers.push(utf8(decode(value, Plus::Plus)?, "tr")?),
                "x.pe" => peers.push(utf8(decode(value, Plus::Plus)?, "x.pe")?),
                _ => {}
            }
        }
        let Some(info_hash) = info_hash else {
            return Err(bad(if other_xt {
                "the magnet link has no v1 info hash (xt=urn:btih:...); BitTorrent v2-only \
                 links are not supported"
            } else {
                "the magnet link has no info hash (xt=urn:btih:...)"
            }));
        };
        Ok(Magnet {
            info_hash,
            name,
            trackers,
            peers,
        })
    }

    /// `magnet:?xt=urn:btih:HEX[&dn=NAME][&tr=URL]...`, values
    /// percent-encoded.
    pub fn to_link(&self) -> String {
        let mut s = format!("magnet:?xt=urn:btih:{}", to_hex(&self.info_hash));
        if let Some(name) = &self.name {
            s.push_str("&dn=");
            s.push_str(&encode(name));
        }
        for tr in &self.trackers {
            s.push_str("&tr=");
            s.push_str(&encode(tr));
        }
        for pe in &self.peers {
            s.push_str("&x.pe=");
            s.push_str(&encode(pe));
        }
        s
    }
}

/// The magnet link of a file: `magnet:?xt=urn:btih:HEX&dn=NAME`.
pub fn magnet_link(info_hash: &InfoHash, name: &str) -> String {
    Magnet {
        info_hash: *info_hash,
        name: Some(name.to_owned()),
        trackers: Vec::new(),
        peers: Vec::new(),
    }
    .to_link()
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn utf8(bytes: Vec<u8>, key: &str) -> Result<String, MagnetError> {
    String::from_utf8(bytes).map_err(|_| bad(format!("the magnet's `{key}` is not UTF-8")))
}

/// A btih: 40 hex digits, or 32 base32 characters (RFC 4648, either case).
fn parse_btih(s: &str) -> Result<InfoHash, MagnetError> {
    match s.len() {
        40 => from_hex(s).ok_or_else(|| bad(format!("info hash '{s}' is not 40 hex digits"))),
        32 => base32(s).ok_or_else(|| bad(format!("info hash '{s}' is not 32 base32 characters"))),
        n => Err(bad(format!(
            "info hash '{}' has {n} characters; a v1 info hash is 40 hex digits (or 32 base32)",
            s.chars().take(64).collect::<String>()
        ))),
    }
}

fn base32(s: &str) -> Option<InfoHash> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            n += 1;
        }
    }
    (n == 20).then_some(out)
}

/// Percent-decodes a query value; `%` must be followed by two hex digits.
fn decode(value: &str, plus: Plus) -> Result<Vec<u8>, MagnetError> {
    percent_decode(value.as_bytes(), plus).map_err(|e| {
        bad(format!(
            "bad percent-encoding in the magnet link at '{}': '%' must be \
             followed by two hex digits",
            value[e.at..].chars().take(8).collect::<String>()
        ))
    })
}

fn encode(s: &str) -> String {
    percent_encode(s.as_bytes(), Keep::Unreserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c4cb89b1c43d9c648b32e9a3d723e6e2b194189b";

    #[test]
    fn reads_hex_and_base32() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{}&dn=hello+world%2Etxt&tr=http%3A%2F%2Ft%3A6969%2Fannounce&x.pe=1",
            HEX.to_uppercase()
        ))
        .unwrap();
        assert_eq!(to_hex(&m.info_hash), HEX);
        assert_eq!(m.name.as_deref(), Some("hello world.txt"));
        assert_eq!(m.trackers, ["http://t:6969/announce"]);
        assert_eq!(m.peers, ["1"]);
        // The same hash in base32 (RFC 4648).
        let b32 = Magnet::parse("MAGNET:?xt=URN:BTIH:YTFYTMOEHWOGJCZS5GR5OI7G4KYZIGE3").unwrap();
        assert_eq!(to_hex(&b32.info_hash), HEX);
        assert_eq!(b32.name, None);
    }

    #[test]
    fn writes_and_reads_back() {
        let link = magnet_link(&[0xab; 20], "my file (1)/ü&x=y.iso");
        assert_eq!(
            link,
            format!(
                "magnet:?xt=urn:btih:{}&dn=my%20file%20%281%29%2F%C3%BC%26x%3Dy.iso",
                "ab".repeat(20)
            )
        );
        let m = Magnet::parse(&link).unwrap();
        assert_eq!(m.info_hash, [0xab; 20]);
        assert_eq!(m.name.as_deref(), Some("my file (1)/ü&x=y.iso"));
        let full = Magnet {
            info_hash: [1; 20],
            name: None,
            trackers: vec!["udp://a:1".into(), "http://b/announce?x=1&y=2".into()],
            peers: vec!["10.0.0.1:6881".into(), "[::1]:51413".into()],
        };
        assert_eq!(Magnet::parse(&full.to_link()), Ok(full));
    }

    #[test]
    fn refuses_bad_links() {
        for (link, why) in [
            ("http://x", "magnet:?"),
            ("magnet:xt=urn:btih:00", "magnet:?"),
            ("magnet:?dn=x", "no info hash"),
            ("magnet:?xt=urn:btmh:1220abcd", "v2-only"),
            ("magnet:?xt=urn:btih:1234", "4 characters"),
            (
                "magnet:?xt=urn:btih:zz34567890123456789012345678901234567890",
                "hex",
            ),
            (
                "magnet:?xt=urn:btih:11111111111111111111111111111111",
                "base32",
            ),
            (&format!("magnet:?xt=urn:btih:{HEX}&dn=a%zz"), "percent"),
            (&format!("magnet:?xt=urn:btih:{HEX}&dn=%ff"), "UTF-8"),
            (
                &format!("magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}", "0".repeat(40)),
                "two",
            ),
        ] {
            let e = Magnet::parse(link).unwrap_err();
            assert!(e.0.contains(why), "{link}: {e}");
        }
        assert!(is_magnet("Magnet:?x"));
        assert!(!is_magnet("magnet"));
    }
}
