//! `.torrent` files (BEP 3 metainfo), single-file v1 only, sans-IO: read
//! one into an [`Info`] and its trackers, write one from an [`Info`].
//!
//! Reading is strict bencode (see [`super::bencode`]), so the `info` value
//! re-encodes to exactly the bytes in the file and its SHA1 is the info
//! hash every BitTorrent client computes.

use super::bencode::{self, Value};
use super::info::Info;
use std::fmt;

/// Longest `.torrent` file read: the largest info dict (`MAX_PIECES`
/// hashes, 5 MiB) plus room for trackers and comments.
pub const MAX_TORRENT_FILE: u64 = 8 * 1024 * 1024;

/// A `.torrent` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torrent {
    /// `announce`, if present.
    pub announce: Option<String>,
    /// Every tracker URL: `announce`, then `announce-list`, without
    /// repeats.
    pub trackers: Vec<String>,
    pub info: Info,
}

/// Why a `.torrent` file was refused; the text says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorrentError(pub String);

impl fmt::Display for TorrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TorrentError {}

impl Torrent {
    /// Parses the bytes of a `.torrent` file.
    pub fn read(bytes: &[u8]) -> Result<Torrent, TorrentError> {
        let top = bencode::decode(bytes).map_err(|e| {
            TorrentError(format!("not a valid .torrent file (strict bencode): {e}"))
        })?;
        if !matches!(top, Value::Dict(_)) {
            return Err(TorrentError(
                "not a .torrent file: the top level is not a bencoded dict".into(),
            ));
        }
        let info = top
            .get(b"info")
            .ok_or_else(|| TorrentError("not a .torrent file: it has no 'info' dict".into()))?;
        if !matches!(info, Value::Dict(_)) {
            return Err(TorrentError(
                "not a .torrent file: 'info' is not a dict".into(),
            ));
        }
        if info.get(b"pieces").is_none() && info.get(b"meta version").is_some() {
            return Err(TorrentError(
                "this is a BitTorrent v2-only torrent; STA reads v1 (or hybrid) torrents".into(),
            ));
        }
        let info = Info::from_bencoded(&info.to_bytes())
            .map_err(|e| TorrentError(format!("unusable info dict: {e}")))?;
        let url = |v: &Value<'_>| {
            v.as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let announce = top.get(b"announce").and_then(url);
        let mut trackers: Vec<String> = announce.iter().cloned().collect();
        if let Some(Value::List(tiers)) = top.get(b"announce-list") {
            for tier in tiers {
                if let Value::List(urls) = tier {
                    for u in urls.iter().filter_map(url) {
                        if !trackers.contains(&u) {
                            trackers.push(u);
                        }
                    }
                }
            }
        }
        Ok(Torrent {
            announce,
            trackers,
            info,
        })
    }

    /// The bytes of a `.torrent` file for `info`:
    /// `d8:announce<URL>10:created by<sta VERSION>4:info<the info dict>e`.
    /// A `.torrent` of `info` announcing to `urls`: the first is
    /// `announce`; with more than one, all of them form the one tier of
    /// `announce-list` (BEP 12), so a client tries them in turn.
    pub fn write(info: &Info, urls: &[String]) -> Vec<u8> {
        let mut out = Vec::with_capacity(info.bencoded.len() + 128 * urls.len() + 64);
        out.push(b'd');
        if let Some(first) = urls.first() {
            Value::Bytes(b"announce").encode(&mut out);
            Value::Bytes(first.as_bytes()).encode(&mut out);
        }
        if urls.len() > 1 {
            Value::Bytes(b"announce-list").encode(&mut out);
            out.extend_from_slice(b"ll");
            for u in urls {
                Value::Bytes(u.as_bytes()).encode(&mut out);
            }
            out.extend_from_slice(b"ee");
        }
        Value::Bytes(b"created by").encode(&mut out);
        Value::Bytes(concat!("sta ", env!("CARGO_PKG_VERSION")).as_bytes()).encode(&mut out);
        Value::Bytes(b"info").encode(&mut out);
        out.extend_from_slice(&info.bencoded);
        out.push(b'e');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use crate::meta::info::to_hex;
    use serde_json::Value;
    use std::path::Path;

    fn data(name: &str) -> Vec<u8> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn libtorrent_vectors_give_their_info_hash() {
        let text = String::from_utf8(data("info_hashes.json")).unwrap();
        let vectors = json::parse(&text).unwrap();
        let vectors = vectors.as_array().unwrap();
        assert_eq!(vectors.len(), 5);
        for v in vectors {
            let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap().to_owned();
            let t = Torrent::read(&data(&field("torrent_file"))).unwrap();
            assert_eq!(to_hex(&t.info.info_hash), field("info_hash_hex"));
            assert_eq!(to_hex(&t.info.bencoded), field("info_dict_bencoded_hex"));
            assert_eq!(t.info.name, field("name"));
            assert_eq!(Some(t.info.length), v.get("length").and_then(Value::as_u64));
            // Written again, it reads back the same.
            let again = Torrent::read(&Torrent::write(&t.info, &["http://x:6969/announce".into()]))
                .unwrap();
            assert_eq!(again.info, t.info);
        }
    }

    #[test]
    fn written_torrents_round_trip() {
        let info = Info::new("disk 1.img", 40_000, 16_384, vec![7; 60]).unwrap();
        let bytes = Torrent::write(&info, &["http://tracker.lab:6969/announce".into()]);
        assert!(bytes.starts_with(b"d8:announce32:http://tracker.lab:6969/announce10:created by"));
        assert!(bytes.ends_with(&[&b"4:info"[..], &info.bencoded, b"e"].concat()));
        let t = Torrent::read(&bytes).unwrap();
        assert_eq!(t.info, info);
        assert_eq!(
            t.announce.as_deref(),
            Some("http://tracker.lab:6969/announce")
        );
        assert_eq!(t.trackers, ["http://tracker.lab:6969/announce"]);
    }

    #[test]
    fn several_trackers_make_one_tier() {
        let info = Info::new("a", 1, 16_384, vec![1; 20]).unwrap();
        let urls = ["udp://a:1/announce".to_owned(), "udp://b:2/announce".into()];
        let bytes = Torrent::write(&info, &urls);
        let head = b"d8:announce18:udp://a:1/announce13:announce-listll18:udp://a:1/announce18:udp://b:2/announceee10:created by";
        assert!(
            bytes.starts_with(head),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let t = Torrent::read(&bytes).unwrap();
        assert_eq!(t.trackers, urls);
        assert_eq!(t.announce.as_deref(), Some("udp://a:1/announce"));
    }

    #[test]
    fn reads_announce_list() {
        let info = Info::new("a", 1, 16_384, vec![1; 20]).unwrap();
        let mut b = b"d8:announce3:u:113:announce-listll3:u:13:u:2el3:u:3ee4:info".to_vec();
        b.extend_from_slice(&info.bencoded);
        b.push(b'e');
        let t = Torrent::read(&b).unwrap();
        assert_eq!(t.trackers, ["u:1", "u:2", "u:3"]);
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        let multi = b"d4:infod5:filesld6:lengthi1e4:pathl1:aeee4:name1:d12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let t = Torrent::read(multi).unwrap();
        assert!(t.info.is_multi());
        let hostile = b"d4:infod5:filesld6:lengthi1e4:pathl2:..1:aeee4:name1:d12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let e = Torrent::read(hostile).unwrap_err();
        assert!(e.0.contains("'.' and '..'"), "{e}");
        let v2 =
            b"d4:infod9:file treede6:lengthi1e12:meta versioni2e4:name1:a12:piece lengthi16384eee";
        assert!(Torrent::read(v2).unwrap_err().0.contains("v2-only"));
        for (bytes, why) in [
            (&b"hello"[..], "strict bencode"),
            (b"le", "not a bencoded dict"),
            (b"d8:announce1:xe", "no 'info'"),
            (b"d4:infoi1ee", "'info' is not a dict"),
            (b"d4:infod4:name1:aee", "unusable info dict"),
            // Keys out of order: not canonical bencode, refused.
            (b"d4:infode8:announce1:xe", "strict bencode"),
        ] {
            let e = Torrent::read(bytes).unwrap_err();
            assert!(e.0.contains(why), "{bytes:?}: {e}");
        }
    }
}
