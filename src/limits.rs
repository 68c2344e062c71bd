//! Every limit of the system, by name. `spec/limits.md` lists the same
//! values; a conformance test checks that the two agree.

/// Largest frame (length prefix excluded) on a tracker session. Sized for
/// an announce of the largest file: `MAX_PIECES` hashes (5 MiB), its
/// bitfield (32 KiB) and a name, with room to spare.
pub const MAX_TRACKER_FRAME: u32 = 8 * 1024 * 1024;

/// Largest frame (length prefix excluded) on the peer wire. Covers a
/// piece message carrying the largest block we accept and the bitfield of
/// the largest file.
pub const MAX_PEER_FRAME: u32 = 256 * 1024;

/// Block size STA requests (it serves blocks up to `MAX_REQUEST_LEN`).
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// Largest block length a peer may request from us (BEP 3 peers commonly
/// stop at 16 KiB; we allow up to 128 KiB from others).
pub const MAX_REQUEST_LEN: u32 = 128 * 1024;

/// Smallest and largest piece length; piece lengths are powers of two.
pub const MIN_PIECE_LENGTH: u32 = 16 * 1024;
pub const MAX_PIECE_LENGTH: u32 = 16 * 1024 * 1024;
/// Piece length used when the user does not choose one.
pub const DEFAULT_PIECE_LENGTH: u32 = 512 * 1024;

/// Most pieces a file may have (5 MiB of hashes, a 32 KiB bitfield).
pub const MAX_PIECES: u32 = 262_144;

/// Longest `ssl-cert` of an info dict (the swarm CA's certificate, PEM,
/// about 600 bytes for STA's ECDSA P-256 CA; room for an RSA-4096 chain).
pub const MAX_SSL_CERT: usize = 8 * 1024;

/// Longest file name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;

/// Most files in a multi-file torrent (pad files included).
pub const MAX_FILES: u32 = 1_000_000;

/// Most components in the path of a file of a multi-file torrent.
pub const MAX_PATH_DEPTH: usize = 64;

/// Longest path of a file of a multi-file torrent, in bytes of UTF-8 with
/// its components joined by `/` (the torrent's name and the output
/// directory not counted; Linux's PATH_MAX is 4096).
pub const MAX_PATH_LEN: usize = 3072;

/// Deepest nesting the bencode decoder follows before refusing input.
pub const MAX_BENCODE_DEPTH: usize = 32;

/// Longest name filter in a catalog listing, in bytes.
pub const MAX_FILTER_LEN: usize = 255;

/// Most entries one catalog page holds.
pub const MAX_LIST_PAGE: u16 = 1000;

/// Longest info dict fetched from peers (BEP 9 `metadata_size`): a
/// larger claim is refused before anything is allocated. 16 MiB holds the
/// hashes of `MAX_PIECES` pieces (5 MiB) beside a tree of some 300,000
/// files (a 100,000-file tree's dict is about 3.5 MB); libtorrent's
/// default cap is 30 MiB, but a dict that large could not be announced to
/// an STA tracker (`MAX_TRACKER_FRAME`) nor resumed cheaply.
pub const MAX_METADATA_SIZE: u64 = 16 * 1024 * 1024;

/// Most peers one BEP 11 PEX message adds (sent, or read: the rest of a
/// longer list is skipped), and most it drops; libtorrent 2.0.8 sends at
/// most 100 added peers per message.
pub const MAX_PEX_PEERS: usize = 100;

/// Most addresses a torrent remembers from peer sources other than the
/// tracker (magnet `x.pe`, PEX, DHT), to dial and redial.
pub const MAX_KNOWN_PEERS: usize = 2000;

/// Most peers one get-peers answer holds.
pub const MAX_PEERS_PER_ANSWER: u16 = 200;

/// Most BitTorrent peers one Vouch names (spec/tracker.md).
pub const MAX_VOUCHED_PER_REQUEST: usize = 50;

/// Most sessions one BitTorrent announce makes the tracker send a Dial
/// to (spec/tracker.md): an announce costs at most this many frames.
pub const MAX_DIALS_PER_ANNOUNCE: usize = 50;

/// Seconds during which `sta-peerd` dials a pushed address at most once
/// (per file), however many Dials name it.
pub const DIAL_PUSH_INTERVAL_SECS: u64 = 60;

/// Milliseconds `sta-peerd` waits before dialing a pushed address: the
/// client got our address in the same announce and is most likely dialing
/// us already (spec/tracker.md, "Dial").
pub const DIAL_PUSH_DELAY_MS: u64 = 1000;

/// Most (file, address) pairs `sta-peerd` remembers having dialed on a
/// Dial; past it the memory is cleared (a bound, not a cache).
pub const MAX_PUSHED_DIALS: usize = 10_000;

/// Most vouched-for BitTorrent peers a tracker keeps for one file, over
/// all sessions: further vouches for that file are kept only up to it.
pub const MAX_VOUCHED_PER_FILE: usize = 1000;

/// Most source addresses a tracker keeps a request-rate bucket for; a
/// new address past it is rate limited until quiet ones are forgotten.
pub const MAX_RATE_TRACKED_ADDRESSES: usize = 100_000;

/// Longest error message text, in bytes.
pub const MAX_ERROR_MESSAGE: usize = 1024;

/// Most uTP resets `sta-peerd` sends per second (its answer to a uTP
/// SYN, spec/bittorrent.md): a cap on what spoofed SYNs can make it send.
pub const MAX_UTP_RESETS_PER_SEC: u32 = 100;

/// Tracker protocol version spoken by this build.
pub const TRACKER_PROTOCOL_VERSION: u16 = 1;

/// Largest KRPC (DHT, BEP 5) datagram accepted; larger ones are dropped
/// unread. BEP 5 messages fit one Ethernet frame (1472 bytes of UDP
/// payload); the slack covers extensions such as `nodes6`.
pub const MAX_KRPC_DATAGRAM: usize = 2048;

/// Longest KRPC transaction id accepted (libtorrent sends 2 bytes,
/// others up to 8); a longer one is dropped, since echoing it would let a
/// sender make our answers as large as it likes.
pub const MAX_KRPC_TID: usize = 16;

/// Longest DHT token accepted (STA sends 8 bytes, libtorrent 4).
pub const MAX_KRPC_TOKEN: usize = 64;

/// Nodes per routing-table bucket, and nodes per find_node or get_peers
/// answer (BEP 5's k).
pub const DHT_K: usize = 8;

/// Info hashes the DHT node stores peers for, on behalf of others.
pub const DHT_MAX_HASHES: usize = 5000;

/// Peers stored per info hash; past it the entry closest to expiry goes.
pub const DHT_MAX_PEERS_PER_HASH: usize = 200;

/// Peers one get_peers answer holds (50 x 8 bytes keeps the answer well
/// inside one Ethernet frame beside 8 nodes).
pub const DHT_MAX_VALUES: usize = 50;

/// Queries one source IPv4 address may have answered per second, and the
/// burst allowed above that.
pub const DHT_QUERIES_PER_SEC: u64 = 20;
pub const DHT_QUERY_BURST: u64 = 50;

/// Source addresses with a query-rate bucket; a new address past it is
/// not answered until quiet ones are forgotten.
pub const DHT_MAX_RATE_TRACKED: usize = 10_000;

/// Lookups a DHT node runs at once (get_peers, announce, refresh).
pub const DHT_MAX_LOOKUPS: usize = 256;

/// Nodes one lookup keeps as candidates, closest first.
pub const DHT_LOOKUP_CANDIDATES: usize = 64;

/// Queries a DHT node has in flight at once.
pub const DHT_MAX_TRANSACTIONS: usize = 1024;

/// Nodes written to (and read from) the saved routing table.
pub const DHT_MAX_SAVED_NODES: usize = 1280;
