//! What `sta torrent` and `sta get FILE.torrent|MAGNET` need on the client
//! side: hashing a local file into an info dict, the default announce URL,
//! and magnet links added to JSON output.

use crate::control::{CatalogEntry, FileReport};
use crate::meta::info::check_piece_length;
use crate::meta::magnet::magnet_link;
use crate::meta::{Geometry, Info};
use sha1::{Digest, Sha1};
use std::path::Path;

/// Default piece size of `sta torrent FILE`: 512 KiB.
pub const DEFAULT_PIECE_SIZE: u32 = 512 * 1024;

/// Port of the default announce URL when the tracker address has none:
/// sta-trackerd's default port (its UDP tracker shares the TCP port).
pub const DEFAULT_ANNOUNCE_PORT: u16 = 6969;

/// `udp://HOST:PORT/announce` for the tracker address `HOST:PORT`
/// (brackets kept around an IPv6 address): sta-trackerd serves the BEP 15
/// UDP tracker on the port number of its TCP listener by default.
pub fn default_announce_url(tracker_addr: &str) -> String {
    let (host, port) = match tracker_addr.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty()
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.ends_with(']')) =>
        {
            (host, port.to_owned())
        }
        _ => (tracker_addr, DEFAULT_ANNOUNCE_PORT.to_string()),
    };
    format!("udp://{host}:{port}/announce")
}

/// A piece size: a number of bytes, or with a `K`/`M` suffix (KiB, MiB),
/// a power of two within the allowed range.
pub fn parse_piece_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => return Err(format!("piece size '{s}': unknown unit '{unit}'")),
    };
    let n = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("piece size '{s}' is not a size"))?;
    check_piece_length(i64::try_from(n).unwrap_or(i64::MAX))
        .map_err(|e| format!("piece size '{s}': {e}"))
}

/// The info dict of the local file or directory at `path`, hashed here
/// piece by piece (a directory as the daemon shares it: see
/// [`crate::storage::content`]).
pub fn hash_file(path: &Path, piece_length: u32) -> Result<Info, String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{}: the file name is not valid UTF-8", path.display()))?;
    let content =
        crate::storage::Content::open_shared(path, piece_length).map_err(|e| e.to_string())?;
    let geometry = Geometry::new(piece_length, content.length());
    if geometry.piece_count() > u64::from(crate::limits::MAX_PIECES) {
        return Err(format!(
            "{} needs {} pieces; use a larger --piece-size",
            path.display(),
            geometry.piece_count()
        ));
    }
    let mut hashes = Vec::with_capacity(geometry.num_pieces() as usize * 20);
    for piece in 0..geometry.num_pieces() {
        let mut h = Sha1::new();
        let size = geometry.piece_size(piece).into();
        content
            .read(geometry.piece_offset(piece), size, |b| h.update(b))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        hashes.extend_from_slice(&h.finalize());
    }
    let length = content.length();
    match content.into_draft() {
        Some(draft) => draft.with_hashes(&hashes),
        None => Info::new(name, length, piece_length, hashes),
    }
    .map_err(|e| format!("cannot describe {}: {e}", path.display()))
}

/// A FILE or CATALOG_ENTRY with its `magnet` link added after its
/// fields, as `sta list --json` and `sta status --json` print them.
#[derive(serde::Serialize)]
pub struct WithMagnet<'a, T> {
    #[serde(flatten)]
    pub item: &'a T,
    pub magnet: String,
}

impl<'a> WithMagnet<'a, CatalogEntry> {
    pub fn entry(item: &'a CatalogEntry) -> Self {
        let magnet = magnet_link(&item.info_hash, &item.name);
        WithMagnet { item, magnet }
    }
}

impl<'a> WithMagnet<'a, FileReport> {
    pub fn file(item: &'a FileReport) -> Self {
        let magnet = magnet_link(&item.info_hash, &item.name);
        WithMagnet { item, magnet }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_urls() {
        assert_eq!(
            default_announce_url("tracker.lab:7000"),
            "udp://tracker.lab:7000/announce"
        );
        assert_eq!(
            default_announce_url("127.0.0.1:40000"),
            "udp://127.0.0.1:40000/announce"
        );
        assert_eq!(
            default_announce_url("[::1]:6969"),
            "udp://[::1]:6969/announce"
        );
        assert_eq!(
            default_announce_url("tracker.lab"),
            "udp://tracker.lab:6969/announce"
        );
    }

    #[test]
    fn piece_sizes() {
        assert_eq!(parse_piece_size("524288"), Ok(524_288));
        assert_eq!(parse_piece_size("512K"), Ok(524_288));
        assert_eq!(parse_piece_size("1M"), Ok(1 << 20));
        assert!(parse_piece_size("1000").is_err());
        assert!(parse_piece_size("1G").is_err());
        assert!(parse_piece_size("x").is_err());
    }

    #[test]
    fn magnets_are_added() {
        let entry = CatalogEntry {
            name: "a b".into(),
            info_hash: [0xab; 20],
            length: 1,
            piece_length: 16384,
            peers: 1,
            seeders: 1,
            file_count: 1,
            local: false,
        };
        let text = crate::json::to_string(&WithMagnet::entry(&entry));
        assert!(
            text.starts_with(r#"{"name":"a b","info_hash":"abab"#),
            "{text}"
        );
        assert!(
            text.ends_with(&format!(
                r#""local":false,"magnet":"magnet:?xt=urn:btih:{}&dn=a%20b"}}"#,
                "ab".repeat(20)
            )),
            "{text}"
        );
    }
}
