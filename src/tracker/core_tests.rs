//! The STA rules of the tracker core (spec/tracker.md), with no socket:
//! requests go through `Tracker::handle` and the bytes it writes are
//! decoded with the real `Response::decode`. Lookups and sessions are in
//! `core_query_tests.rs`, the BitTorrent rules in `core_bt_tests.rs`; both
//! share the helpers here.

use super::*;
use crate::wire::tracker::PeerEntry;
use std::net::Ipv4Addr;

pub(super) const PIECE: u32 = 16 * 1024;

/// A file of `pieces` pieces; `seed` varies the piece hashes, so that two
/// files of the same name and size still differ.
pub(super) fn file(name: &str, pieces: u32, seed: u8) -> Info {
    let length = u64::from(pieces) * u64::from(PIECE);
    let hashes = (0..pieces * 20).map(|i| (i as u8) ^ seed).collect();
    Info::new(name, length, PIECE, hashes).unwrap()
}

/// The bitfield of a file of `n` pieces holding `held`.
pub(super) fn bits(n: u32, held: &[u32]) -> Vec<u8> {
    let mut b = Bitfield::new(n);
    for &i in held {
        b.set(i);
    }
    b.as_bytes().to_vec()
}

/// Session `conn` comes from 10.0.0.`conn`, with peer id [`conn`; 20].
pub(super) fn ip(conn: ConnId) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, conn as u8))
}

pub(super) fn port(conn: ConnId) -> u16 {
    6000 + conn as u16
}

/// What session `conn` (joined with [`Harness::join`]) looks like in a
/// Peers answer.
pub(super) fn entry(conn: ConnId, pieces: Pieces) -> PeerEntry {
    PeerEntry {
        peer_id: [conn as u8; 20],
        addr: SocketAddr::new(ip(conn), port(conn)),
        pieces,
    }
}

pub(super) fn hello(version: u16, conn: ConnId, listen_port: u16) -> Request {
    Request::Hello {
        version,
        peer_id: [conn as u8; 20],
        listen_port,
    }
}

pub(super) fn announce(f: &Info, pieces: Pieces) -> Request {
    Request::Announce {
        info: f.bencoded.clone(),
        pieces,
    }
}

pub(super) fn have(info_hash: InfoHash, piece: u32) -> Request {
    Request::Have { info_hash, piece }
}

pub(super) fn list(offset: u32, limit: u16, filter: &str) -> Request {
    Request::List {
        offset,
        limit,
        filter: filter.into(),
    }
}

pub(super) fn by_name(name: &str) -> Request {
    Request::GetMeta(Lookup::Name(name.into()))
}

pub(super) fn get_peers(info_hash: InfoHash, max: u16, piece: Option<u32>) -> Request {
    Request::GetPeers {
        info_hash,
        max,
        piece,
    }
}

pub(super) fn leave(info_hash: InfoHash) -> Request {
    Request::Leave { info_hash }
}

/// A tracker and the sessions of one test.
pub(super) struct Harness {
    pub t: Tracker,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(Config::default())
    }

    pub fn with(config: Config) -> Harness {
        Harness {
            t: Tracker::new(config, Rng::new(7)),
        }
    }

    /// Handles `req` on `conn`: the one response written (none for a
    /// keep-alive) and what the session does next.
    pub fn send(&mut self, conn: ConnId, req: Request) -> (Option<Response>, Next) {
        let mut out = Vec::new();
        let next = self.t.handle(conn, req, &mut out);
        if out.is_empty() {
            return (None, next);
        }
        let (response, used) = Response::decode(&out).unwrap().unwrap();
        assert_eq!(used, out.len(), "one response, nothing after it");
        (Some(response), next)
    }

    /// The response to `req`, after which the session goes on.
    pub fn ask(&mut self, conn: ConnId, req: Request) -> Response {
        match self.send(conn, req) {
            (Some(response), Next::Continue) => response,
            other => panic!("session {conn}: {other:?}"),
        }
    }

    /// The message of the error `code` that answers `req`.
    pub fn refused(&mut self, conn: ConnId, req: Request, code: ErrorCode) -> String {
        match self.ask(conn, req) {
            Response::Error { code: got, message } if got == code => message,
            other => panic!("session {conn}: expected error {code}, got {other:?}"),
        }
    }

    /// Session `conn` opens and says hello, listening on [`port`].
    pub fn join(&mut self, conn: ConnId) {
        self.join_on(conn, port(conn));
    }

    pub fn join_on(&mut self, conn: ConnId, listen_port: u16) {
        self.t.connect(conn, ip(conn));
        let welcome = Response::Welcome {
            version: TRACKER_PROTOCOL_VERSION,
            idle_timeout_secs: self.t.config().idle_timeout_secs,
        };
        assert_eq!(self.ask(conn, hello(1, conn, listen_port)), welcome);
    }

    pub fn announce(&mut self, conn: ConnId, f: &Info, pieces: Pieces) {
        let announced = Response::Announced {
            info_hash: f.info_hash,
        };
        assert_eq!(self.ask(conn, announce(f, pieces)), announced);
    }

    pub fn have(&mut self, conn: ConnId, hash: InfoHash, piece: u32) {
        assert_eq!(self.ask(conn, have(hash, piece)), Response::Ack);
    }

    pub fn leave(&mut self, conn: ConnId, hash: InfoHash) {
        assert_eq!(self.ask(conn, leave(hash)), Response::Ack);
    }

    pub fn list(&mut self, conn: ConnId, offset: u32, limit: u16, filter: &str) -> ListPage {
        match self.ask(conn, list(offset, limit, filter)) {
            Response::ListPage { total, entries } => ListPage { total, entries },
            other => panic!("list: {other:?}"),
        }
    }

    /// (peers, seeders) of the one file matching `filter`.
    pub fn counts(&mut self, conn: ConnId, filter: &str) -> (u32, u32) {
        let page = self.list(conn, 0, 10, filter);
        assert_eq!(page.entries.len(), 1, "{filter}: {page:?}");
        (page.entries[0].peers, page.entries[0].seeders)
    }

    pub fn meta(&mut self, conn: ConnId, lookup: Lookup) -> Vec<u8> {
        match self.ask(conn, Request::GetMeta(lookup)) {
            Response::Meta { info } => info,
            other => panic!("get-meta: {other:?}"),
        }
    }

    /// A Peers answer, sorted by address.
    pub fn peers(
        &mut self,
        conn: ConnId,
        hash: InfoHash,
        max: u16,
        piece: Option<u32>,
    ) -> Vec<PeerEntry> {
        match self.ask(conn, get_peers(hash, max, piece)) {
            Response::Peers {
                info_hash,
                mut peers,
            } if info_hash == hash => {
                peers.sort_by_key(|p| p.addr);
                peers
            }
            other => panic!("get-peers: {other:?}"),
        }
    }
}

#[derive(Debug)]
pub(super) struct ListPage {
    pub total: u32,
    pub entries: Vec<ListEntry>,
}

impl ListPage {
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

// ------------------------------------------------------------------ hello

#[test]
fn keep_alive_is_never_answered() {
    let mut h = Harness::new();
    h.t.connect(1, ip(1));
    assert_eq!(h.send(1, Request::KeepAlive), (None, Next::Continue));
    h.join_on(2, 7000);
    assert_eq!(h.send(2, Request::KeepAlive), (None, Next::Continue));
}

#[test]
fn requests_before_hello_are_refused_and_ignored() {
    let mut h = Harness::new();
    let f = file("early.bin", 2, 1);
    let hash = f.info_hash;
    h.t.connect(1, ip(1));
    let early = [
        list(0, 10, ""),
        Request::GetMeta(Lookup::Hash(hash)),
        get_peers(hash, 10, None),
        announce(&f, Pieces::All),
        have(hash, 0),
        leave(hash),
    ];
    for req in early.iter().cloned() {
        let msg = h.refused(1, req, ErrorCode::HELLO_REQUIRED);
        assert_eq!(msg, "send hello before any other request");
    }
    // A session the tracker never saw open is refused the same way.
    let msg = h.refused(9, hello(1, 9, 7009), ErrorCode::HELLO_REQUIRED);
    assert_eq!(msg, "session unknown to the tracker");
    // The session goes on: hello works, and the early announce left nothing.
    let welcome = Response::Welcome {
        version: 1,
        idle_timeout_secs: 120,
    };
    assert_eq!(h.ask(1, hello(1, 1, 7001)), welcome);
    assert_eq!(h.list(1, 0, 10, "").total, 0);
    assert!(h.t.catalog().is_empty());
}

#[test]
fn unsupported_version_is_refused_and_closes_the_session() {
    let mut h = Harness::new();
    for (conn, version) in [(1, 0u16), (2, 2), (3, u16::MAX)] {
        h.t.connect(conn, ip(conn));
        let (response, next) = h.send(conn, hello(version, conn, 7000));
        let message = format!("protocol version {version} is not supported; this tracker speaks 1");
        let error = Response::Error {
            code: ErrorCode::UNSUPPORTED_VERSION,
            message,
        };
        assert_eq!((response, next), (Some(error), Next::Close));
        // Nothing was taken from that hello.
        h.refused(conn, list(0, 1, ""), ErrorCode::HELLO_REQUIRED);
    }
    // Also after a good hello: the version is checked first.
    h.join(4);
    let (response, next) = h.send(4, hello(2, 4, 7000));
    assert!(matches!(
        response,
        Some(Response::Error {
            code: ErrorCode::UNSUPPORTED_VERSION,
            ..
        })
    ));
    assert_eq!(next, Next::Close);
}

#[test]
fn a_second_hello_is_refused_and_the_first_stays() {
    let mut h = Harness::new();
    let f = file("twice.bin", 1, 2);
    h.join(1);
    let msg = h.refused(1, hello(1, 9, 7009), ErrorCode::INVALID_PARAMETERS);
    assert_eq!(msg, "hello was already sent on this session");
    h.announce(1, &f, Pieces::All);
    h.join(2);
    let peers = h.peers(2, f.info_hash, 10, None);
    assert_eq!(peers, vec![entry(1, Pieces::All)]);
}

// --------------------------------------------------------------- announce

#[test]
fn announce_derives_the_hash_and_enters_the_catalog() {
    let mut h = Harness::new();
    let f = file("seeds.bin", 3, 3);
    h.join(1);
    h.announce(1, &f, Pieces::All);
    h.join(2);
    let page = h.list(2, 0, 10, "");
    let listed = ListEntry {
        info_hash: f.info_hash,
        length: 3 * u64::from(PIECE),
        piece_length: PIECE,
        peers: 1,
        seeders: 1,
        files: 1,
        name: "seeds.bin".into(),
    };
    assert_eq!((page.total, page.entries), (1, vec![listed]));
    // The same bytes from another session: the same file, one more holder.
    h.announce(2, &f, Pieces::Bitfield(bits(3, &[1])));
    assert_eq!(h.t.catalog().len(), 1);
    assert_eq!(h.counts(1, ""), (2, 1));
}

/// spec/tracker.md, ListPage: a directory lists its total length and its
/// files, pad files not counted; `photos` is the spec's example.
#[test]
fn a_directory_lists_its_files_without_pad_files() {
    use sha1::Digest;
    let pieces = sha1::Sha1::digest([0u8; 6000]).to_vec();
    let files = [("a.jpg", 1000), ("b.jpg", 2000), ("sub/c.jpg", 3000)];
    let photos = Info::new_tree(
        "photos",
        &files.into_iter().collect::<crate::meta::files::Listing>(),
        PIECE,
        pieces,
    )
    .unwrap();
    assert_eq!(
        to_hex(&photos.info_hash),
        "078989fc626fc79a112f6cd82f611dfcbf7f954d"
    );
    // a.jpg, a pad file up to the piece boundary, b.jpg: 2 files.
    let mut padded = b"d5:filesld6:lengthi1000e4:pathl5:a.jpgee".to_vec();
    padded.extend_from_slice(b"d4:attr1:p6:lengthi15384e4:pathl4:.pad5:15384ee");
    padded.extend_from_slice(b"d6:lengthi10e4:pathl5:b.jpgeee");
    padded.extend_from_slice(b"4:name6:padded12:piece lengthi16384e6:pieces40:");
    padded.extend_from_slice(&[7; 40]);
    padded.push(b'e');
    let padded = Info::from_bencoded(&padded).unwrap();
    assert_eq!((padded.files().len(), padded.file_count()), (3, 2));

    let mut h = Harness::new();
    h.join(1);
    h.announce(1, &photos, Pieces::All);
    h.announce(1, &padded, Pieces::Bitfield(bits(2, &[0])));
    h.announce(1, &file("single.bin", 1, 1), Pieces::All);
    h.join(2);
    let page = h.list(2, 0, 10, "");
    let got: Vec<(&str, u64, u32, bool)> = page
        .entries
        .iter()
        .map(|e| (e.name.as_str(), e.length, e.files, e.is_dir()))
        .collect();
    assert_eq!(
        got,
        [
            ("padded", 16384 + 10, 2, true),
            ("photos", 6000, 3, true),
            ("single.bin", u64::from(PIECE), 1, false),
        ]
    );
}

#[test]
fn announce_with_invalid_metadata_is_refused() {
    let mut h = Harness::new();
    h.join(1);
    let cut = file("cut.bin", 1, 4).bencoded;
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"de".to_vec(),
        b"not bencode at all".to_vec(),
        b"li1ei2ee".to_vec(),
        // 40000 bytes need 3 hashes, 1 given.
        [
            &b"d6:lengthi40000e4:name5:x.bin12:piece lengthi16384e6:pieces20:"[..],
            &[7; 20],
            b"e",
        ]
        .concat(),
        // A multi-file dict.
        b"d5:filesld6:lengthi1e4:pathl1:aeee4:name1:x12:piece lengthi16384e6:pieces0:e".to_vec(),
        cut[..cut.len() - 1].to_vec(),
    ];
    for info in bad {
        let req = Request::Announce {
            info: info.clone(),
            pieces: Pieces::All,
        };
        let msg = h.refused(1, req, ErrorCode::INVALID_METADATA);
        assert!(!msg.is_empty(), "{info:?}");
    }
    assert!(h.t.catalog().is_empty());
}

#[test]
fn announce_with_a_bad_bitfield_is_refused() {
    let mut h = Harness::new();
    let f = file("bits.bin", 4, 5);
    h.join(1);
    for (bad, msg) in [
        (vec![], "bitfield of 0 bytes, expected 1"),
        (vec![0x80, 0x00], "bitfield of 2 bytes, expected 1"),
        (vec![0x08], "bitfield has spare bits set"),
        (vec![0x81], "bitfield has spare bits set"),
    ] {
        let req = announce(&f, Pieces::Bitfield(bad));
        assert_eq!(h.refused(1, req, ErrorCode::INVALID_PARAMETERS), msg);
    }
    assert!(h.t.catalog().is_empty(), "refused announces leave no trace");
}

#[test]
fn announce_all_or_a_bitfield_and_reannounce_replaces() {
    let mut h = Harness::new();
    let f = file("pieces.bin", 4, 6);
    let hash = f.info_hash;
    h.join(1);
    h.join(2);
    h.announce(1, &f, Pieces::Bitfield(bits(4, &[0, 2])));
    assert_eq!(h.counts(2, ""), (1, 0));
    let partial = entry(1, Pieces::Bitfield(bits(4, &[0, 2])));
    assert_eq!(h.peers(2, hash, 10, None), vec![partial]);
    // Every bit set is a seeder, given out as "all pieces".
    h.announce(1, &f, Pieces::Bitfield(vec![0xf0]));
    assert_eq!(h.counts(2, ""), (1, 1));
    assert_eq!(h.peers(2, hash, 10, None), vec![entry(1, Pieces::All)]);
    // Re-announcing replaces the piece set: no longer a seeder.
    h.announce(1, &f, Pieces::Bitfield(bits(4, &[3])));
    assert_eq!(h.counts(2, ""), (1, 0));
    assert_eq!(h.peers(2, hash, 10, Some(0)), vec![]);
    assert_eq!(h.peers(2, hash, 10, Some(3)).len(), 1);
}

// ------------------------------------------------------------------- have

#[test]
fn have_adds_a_piece_and_completing_makes_a_seeder() {
    let mut h = Harness::new();
    let f = file("have.bin", 3, 7);
    let hash = f.info_hash;
    h.join(1);
    h.join(2);
    h.announce(1, &f, Pieces::Bitfield(bits(3, &[0])));
    h.have(1, hash, 2);
    h.have(1, hash, 2); // twice the same piece counts once
    let got = entry(1, Pieces::Bitfield(bits(3, &[0, 2])));
    assert_eq!(h.peers(2, hash, 10, Some(2)), vec![got]);
    assert_eq!(h.counts(2, ""), (1, 0));
    h.have(1, hash, 1);
    assert_eq!(h.counts(2, ""), (1, 1));
    assert_eq!(h.peers(2, hash, 10, Some(1)), vec![entry(1, Pieces::All)]);
    h.have(1, hash, 0); // a seeder stays one
    assert_eq!(h.counts(2, ""), (1, 1));
}

#[test]
fn have_refuses_a_bad_piece_an_unknown_file_and_a_file_not_announced() {
    let mut h = Harness::new();
    let f = file("four.bin", 4, 8);
    let hash = f.info_hash;
    let hex = to_hex(&hash);
    h.join(1);
    h.join(2);
    h.announce(1, &f, Pieces::Bitfield(bits(4, &[0])));
    for piece in [4, 5, u32::MAX] {
        let msg = h.refused(1, have(hash, piece), ErrorCode::PIECE_OUT_OF_RANGE);
        assert_eq!(
            msg,
            format!("piece {piece} is out of range: {hex} has 4 pieces")
        );
    }
    let unknown = [0x42; 20];
    let msg = h.refused(1, have(unknown, 0), ErrorCode::FILE_NOT_FOUND);
    assert_eq!(msg, format!("no file with info hash {}", to_hex(&unknown)));
    // A have never joins a swarm.
    let msg = h.refused(2, have(hash, 1), ErrorCode::INVALID_PARAMETERS);
    assert_eq!(msg, format!("announce {hex} before sending have for it"));
    assert_eq!(h.counts(2, ""), (1, 0));
    // The errors changed nothing; the last piece works.
    h.have(1, hash, 3);
    let got = entry(1, Pieces::Bitfield(bits(4, &[0, 3])));
    assert_eq!(h.peers(2, hash, 10, None), vec![got]);
}
