//! The JSON shapes of the daemons' HTTP API (`/api/v1/...`, see
//! spec/http.md), as plain structs serialized with serde. The engine and
//! the tracker core fill them; the HTTP routers send them. Byte counts
//! and rates are integers (bytes, bytes per second); info hashes, peer
//! ids and bitfields are lower-case hex.

use serde::Serialize;

/// `GET /api/v1/status` of `sta-peerd`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub daemon: DaemonInfo,
    /// The first tracker with a session up, else the first configured.
    pub tracker: TrackerLink,
    /// Every tracker, in configured order.
    pub trackers: Vec<TrackerLink>,
    pub totals: Traffic,
    pub files: Vec<FileSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonInfo {
    pub program: &'static str,
    pub version: &'static str,
    /// Our peer id, hex.
    pub peer_id: String,
    /// Our peer id where it is printable (`-ST0100-...`).
    pub client: Option<String>,
    pub listen: String,
    pub uptime_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackerLink {
    pub addr: String,
    pub connected: bool,
}

/// Bytes and rates, summed over files or for one file.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Traffic {
    pub bytes_uploaded: u64,
    pub bytes_downloaded: u64,
    pub rate_up: u64,
    pub rate_down: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub info_hash: String,
    pub name: String,
    /// `checking`, `downloading`, `seeding` or `failed`.
    pub state: &'static str,
    pub error: Option<ApiError>,
    pub path: String,
    pub length: u64,
    pub piece_length: u32,
    pub pieces: u32,
    pub have: u32,
    /// Files in the share (1 for a single file; pad files not counted).
    pub files: u32,
    pub peers: u32,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// `GET /api/v1/files/INFOHASH` of `sta-peerd`.
#[derive(Debug, Clone, Serialize)]
pub struct FileDetail {
    pub file: FileSummary,
    /// Our verified pieces, a BEP 3 bitfield (piece 0 is the high bit of
    /// the first byte), hex.
    pub have_bitfield: String,
    /// How many connected peers hold each piece, by piece index.
    pub availability: Vec<u32>,
    pub peers: Vec<PeerSummary>,
    /// Verified bytes received from each source peer, most first.
    pub sources: Vec<Source>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerSummary {
    /// The peer's listen address when known, else its remote address.
    pub addr: String,
    pub remote: String,
    pub incoming: bool,
    pub peer_id: Option<String>,
    pub client: Option<String>,
    /// The pieces it holds, hex bitfield (empty before its bitfield).
    pub pieces: String,
    pub pieces_held: u32,
    pub seed: bool,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rate_up: u64,
    pub rate_down: u64,
    pub am_choking: bool,
    pub am_interested: bool,
    pub peer_choking: bool,
    pub peer_interested: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub addr: String,
    pub bytes: u64,
}

/// The `error` object of a failed request.
#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// `GET /api/v1/status` of `sta-trackerd`.
#[derive(Debug, Clone, Serialize)]
pub struct TrackerStatus {
    pub daemon: TrackerDaemon,
    pub sessions: usize,
    pub files: usize,
    pub entries: usize,
    pub bittorrent_peers: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackerDaemon {
    pub program: &'static str,
    pub version: &'static str,
    pub listen: String,
    pub uptime_seconds: f64,
}

/// `GET /api/v1/catalog` of `sta-trackerd`.
#[derive(Debug, Clone, Serialize)]
pub struct Catalog {
    /// Files in the catalog (the page may hold fewer).
    pub total: usize,
    pub offset: usize,
    pub files: Vec<CatalogEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogEntry {
    pub info_hash: String,
    pub name: String,
    pub length: u64,
    pub piece_length: u32,
    pub pieces: u32,
    pub files: u32,
    pub peers: u32,
    pub seeders: u32,
}

/// `GET /api/v1/swarms/INFOHASH` of `sta-trackerd`.
#[derive(Debug, Clone, Serialize)]
pub struct Swarm {
    pub info_hash: String,
    /// `null` for a hash only BitTorrent clients announced (no metadata).
    pub file: Option<CatalogEntry>,
    pub holders: Vec<Holder>,
    /// How many holders hold each piece.
    pub availability: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    /// `sta` (a session of the STA protocol) or `bittorrent` (UDP or HTTP
    /// announces, whose pieces the tracker does not know).
    pub kind: &'static str,
    pub addr: String,
    pub peer_id: String,
    pub client: Option<String>,
    pub pieces: String,
    pub pieces_held: u32,
    pub seeder: bool,
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The printable form of a peer id in Azureus style (`-ST0100-...`,
/// `-lt2080-...`), if it is one.
pub fn client_of(peer_id: &[u8; 20]) -> Option<String> {
    let printable = peer_id.iter().all(|b| b.is_ascii_graphic());
    if peer_id[0] == b'-'
        && peer_id[7] == b'-'
        && peer_id[1..7].iter().all(u8::is_ascii_alphanumeric)
    {
        let tail = if printable {
            String::from_utf8_lossy(&peer_id[8..]).into_owned()
        } else {
            hex(&peer_id[8..])
        };
        return Some(format!("{}{tail}", String::from_utf8_lossy(&peer_id[..8])));
    }
    printable.then(|| String::from_utf8_lossy(peer_id).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_clients() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
        assert_eq!(
            client_of(b"-ST0100-abcdefghijkl").as_deref(),
            Some("-ST0100-abcdefghijkl")
        );
        let mut id = *b"-lt2080-\0\0\0\0\0\0\0\0\0\0\0\x01";
        assert_eq!(
            client_of(&id).as_deref(),
            Some("-lt2080-000000000000000000000001")
        );
        id[0] = 0;
        assert_eq!(client_of(&id), None);
    }
}
