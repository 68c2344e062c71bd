//! The engine's rules, one engine at a time: bytes in, actions out, on an
//! in-memory disk and a clock that moves only when a test says so. Whole
//! swarms are the simulator's (tests/sim.rs).

use super::*;
use crate::meta::Info;
use crate::wire::peer::{Block, Handshake, Message};
use crate::wire::tracker::{Request, Response};
use sha1::{Digest, Sha1};
use std::path::Path;

pub(super) const PIECE: u32 = 32 * 1024;
const TRACKER: &str = "10.0.0.1:6969";
pub(super) const PEER: &str = "10.0.0.9:6881";

/// One engine, its disk and its clock; the tracker session is answered
/// by hand.
pub(super) struct Rig {
    pub(super) e: Engine<MemStorage>,
    pub(super) now: Time,
    pub(super) tracker: LinkId,
}

pub(super) fn config() -> Config {
    Config {
        trackers: vec![TRACKER.parse().unwrap()],
        listen_port: 6881,
        listen: "10.0.0.2:6881".parse().unwrap(),
        dir: "/dl".into(),
        piece_length: PIECE,
        max_peers: 50,
        upload_slots: 2,
        private_shares: false,
    }
}

/// A file of `pieces` pieces (the last one short) and its metadata.
pub(super) fn file(pieces: u32) -> (Vec<u8>, Info) {
    let len = (pieces * PIECE - 100) as usize;
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let hashes = bytes
        .chunks(PIECE as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    (
        bytes.clone(),
        Info::new("f.bin", len as u64, PIECE, hashes).unwrap(),
    )
}

impl Rig {
    /// An engine whose tracker session is up.
    pub(super) fn new(storage: MemStorage) -> Rig {
        let mut e = Engine::new(config(), storage, Rng::new(7), Time::ZERO);
        e.start(Time::ZERO, &[]).unwrap();
        let mut rig = Rig {
            e,
            now: Time::ZERO,
            tracker: 0,
        };
        let dials: Vec<LinkId> = rig
            .settle()
            .into_iter()
            .filter_map(|a| match a {
                Action::Dial { link, addr } if addr.to_string() == TRACKER => Some(link),
                _ => None,
            })
            .collect();
        assert_eq!(dials.len(), 1, "one dial of the tracker");
        let tracker = dials[0];
        rig.tracker = tracker;
        rig.e.link_opened(rig.now, tracker);
        let hello = rig.sent(tracker);
        assert!(matches!(
            Request::decode(&hello),
            Ok(Some((Request::Hello { .. }, _)))
        ));
        rig.answer(Response::Welcome {
            version: 1,
            idle_timeout_secs: 120,
        });
        // The AcceptDials that follows every welcome.
        rig.answer(Response::Ack);
        let asked = rig.sent(tracker);
        assert!(matches!(
            Request::decode(&asked),
            Ok(Some((Request::AcceptDials, _)))
        ));
        rig
    }

    /// A seeder of `f.bin` (hashed and announced).
    pub(super) fn seeder() -> (Rig, Vec<u8>, Info) {
        Rig::seeder_of(4)
    }

    fn seeder_of(pieces: u32) -> (Rig, Vec<u8>, Info) {
        let (bytes, info) = file(pieces);
        let mut disk = MemStorage::default();
        disk.fs.files.insert("/data/f.bin".into(), bytes.clone());
        let mut rig = Rig::new(disk);
        let control = rig.e.control_opened(rig.now);
        rig.input(control, b"share /data/f.bin\n");
        let reply = rig.sent(control);
        assert!(String::from_utf8_lossy(&reply).starts_with("{\"ok\":true"));
        (rig, bytes, info)
    }

    /// A leecher of `f.bin`, fetching it through a `.torrent`; returns the
    /// control session following it.
    fn leecher(disk: MemStorage) -> (Rig, LinkId, Vec<u8>, Info) {
        let (bytes, info) = file(4);
        let mut disk = disk;
        let torrent = crate::meta::torrent::Torrent::write(&info, &["udp://x/announce".into()]);
        disk.fs.files.insert("/t/f.torrent".into(), torrent);
        let mut rig = Rig::new(disk);
        let control = rig.e.control_opened(rig.now);
        rig.input(control, b"get-torrent /t/f.torrent\n");
        (rig, control, bytes, info)
    }

    /// Runs every job the engine asked for (at once, in order) and
    /// returns the other actions.
    pub(super) fn settle(&mut self) -> Vec<Action> {
        let mut out = Vec::new();
        while let Some(a) = self.e.poll_action() {
            match a {
                Action::Job(job) => {
                    let done = self.e.storage().run(&job);
                    self.e.job_done(self.now, done);
                }
                other => out.push(other),
            }
        }
        out
    }

    pub(super) fn input(&mut self, link: LinkId, bytes: &[u8]) -> usize {
        self.e.link_input(self.now, link, bytes)
    }

    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.e.poll_timeout().min(end);
            self.e.handle_timeout(self.now);
        }
    }

    /// The bytes queued on `link` since the last look (other actions are
    /// kept for [`Rig::pending`]).
    pub(super) fn sent(&mut self, link: LinkId) -> Vec<u8> {
        let mut bytes = Vec::new();
        for a in self.settle() {
            if let Action::Send { link: l, bytes: b } = a
                && l == link
            {
                bytes.extend(b);
            }
        }
        bytes
    }

    /// `control` was told the download is done, and `/dl/f.bin` holds
    /// exactly `bytes`.
    pub(super) fn assert_published(&mut self, control: LinkId, bytes: &[u8]) {
        let done = String::from_utf8(self.sent(control)).unwrap();
        assert!(done.contains("\"event\":\"done\""), "{done}");
        let file = self.e.storage().fs.files.get(Path::new("/dl/f.bin"));
        assert_eq!(file.map(Vec::as_slice), Some(bytes));
    }

    fn answer(&mut self, resp: Response) {
        let mut buf = Vec::new();
        resp.encode(&mut buf);
        let tracker = self.tracker;
        assert_eq!(self.input(tracker, &buf), buf.len());
    }

    /// A peer connects to us for `info` and says it has nothing.
    pub(super) fn incoming_peer(&mut self, info: &Info, id: u8) -> LinkId {
        let link = self.e.peer_accepted(self.now, PEER.parse().unwrap());
        let mut hello = Vec::new();
        Handshake::new(info.info_hash, [id; 20]).encode(&mut hello);
        Message::HaveNone.encode(&mut hello);
        assert_eq!(self.input(link, &hello), hello.len());
        link
    }
}

fn encode(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut buf = Vec::new();
    for m in msgs {
        m.encode(&mut buf);
    }
    buf
}

fn decode(mut bytes: &[u8]) -> Vec<Message<'_>> {
    let mut out = Vec::new();
    while let Ok(Some((m, n))) = Message::decode(bytes) {
        out.push(m);
        bytes = &bytes[n..];
    }
    assert!(bytes.is_empty(), "trailing bytes {bytes:?}");
    out
}

/// The blocks requested in `bytes` (messages as sent to a peer).
fn requests(bytes: &[u8]) -> Vec<Block> {
    decode(bytes)
        .into_iter()
        .filter_map(|m| match m {
            Message::Request(b) => Some(b),
            _ => None,
        })
        .collect()
}

pub(super) fn closes(actions: &[Action], link: LinkId) -> bool {
    actions.contains(&Action::Close { link })
}

#[test]
fn the_tracker_session_is_kept_alive_and_never_idle() {
    let mut rig = Rig::new(MemStorage::default());
    assert!(!rig.e.may_close_idle(rig.tracker));
    rig.advance(Duration::from_secs(39));
    assert!(rig.sent(rig.tracker).is_empty(), "nothing to say yet");
    rig.advance(Duration::from_secs(2));
    assert_eq!(
        rig.sent(rig.tracker),
        [0, 0, 0, 0],
        "a keep-alive after a third of 120 s"
    );
    // Keep-alives get no answer: the next response still goes to the next request.
    rig.advance(Duration::from_secs(3600));
    assert!(!rig.e.may_close_idle(rig.tracker));
    assert!(rig.e.status().tracker_connected);
}

#[test]
fn a_peer_that_dialed_in_tells_its_listen_port_in_its_extension_handshake() {
    let (mut rig, _, info) = Rig::seeder();
    let link = rig
        .e
        .peer_accepted(rig.now, "10.0.0.9:40123".parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, *b"-LT2080-MunAyFca4prF").encode(&mut hello);
    Message::HaveNone.encode(&mut hello);
    let offer = crate::wire::extension::Offer {
        port: 51413,
        client: "libtorrent/2.0.8",
        pex: true,
        metadata_size: None,
    };
    crate::wire::extension::ExtHandshake::encode(&offer, &mut hello);
    assert_eq!(rig.input(link, &hello), hello.len());
    rig.advance(Duration::from_millis(1100));
    let vouch = rig.sent(rig.tracker);
    let Ok(Some((Request::Vouch { peers, .. }, _))) = Request::decode(&vouch) else {
        panic!("the peer is vouched for at its listen port");
    };
    assert_eq!(peers[0].addr.to_string(), "10.0.0.9:51413");
    let p = rig.e.peers.get(&link).unwrap();
    assert_eq!(p.client.as_deref(), Some("libtorrent/2.0.8"));
}

/// libtorrent drops a seed whose one `have` completes what it knows of
/// it (see `Reveal::never_last_alone`): one piece goes in a bitfield.
#[test]
fn a_seed_of_one_piece_sends_its_bitfield() {
    let (mut rig, _, info) = Rig::seeder_of(1);
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20]).encode(&mut hello);
    rig.input(link, &hello);
    let reply = rig.sent(link);
    let (_, n) = Handshake::decode(&reply).unwrap().unwrap();
    let told = decode(&reply[n..]);
    assert_eq!(told[0], Message::Bitfield(&[0x80]), "{told:?}");
    assert!(!told.iter().any(|m| matches!(m, Message::Have(_))));
}

#[test]
fn a_seeder_answers_the_handshake_unchokes_and_serves_zero_copy() {
    let (mut rig, _, info) = Rig::seeder();
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20]).encode(&mut hello);
    assert_eq!(rig.input(link, &hello), hello.len());
    let reply = rig.sent(link);
    let (hs, n) = Handshake::decode(&reply).unwrap().unwrap();
    assert_eq!(hs.info_hash, info.info_hash);
    // A seed shows a few pieces at a time: here, with small pieces, all 4.
    let mut told = decode(&reply[n..]);
    assert_eq!(told.remove(0), Message::HaveNone);
    // Then, to a peer with the BEP 10 bit, our extension handshake.
    let Message::Unknown { id: 20, payload } = told.remove(0) else {
        panic!("an extension handshake");
    };
    let ext = crate::wire::extension::ExtHandshake::decode(payload).unwrap();
    assert_eq!(ext.and_then(|e| e.port), Some(6881));
    let mut shown: Vec<u32> = told
        .iter()
        .map(|m| match m {
            Message::Have(p) => *p,
            other => panic!("expected haves, got {other:?}"),
        })
        .collect();
    shown.sort();
    assert_eq!(shown, [0, 1, 2, 3]);

    let req = Block {
        index: 3,
        begin: 16384,
        length: 16384 - 100,
    };
    rig.input(link, &encode(&[Message::Interested, Message::Request(req)]));
    let actions = rig.settle();
    let unchoke = encode(&[Message::Unchoke]);
    assert_eq!(
        actions,
        [
            Action::Send {
                link,
                bytes: unchoke
            },
            Action::SendBlock {
                link,
                header: crate::wire::peer::piece_header(3, 16384, 16284),
                file: 1,
                offset: 3 * u64::from(PIECE) + 16384,
                len: 16284,
            }
        ]
    );
}

#[test]
fn upload_slots_are_limited_and_a_seed_deals_them_to_the_least_served() {
    let (mut rig, _, info) = Rig::seeder();
    let peers: Vec<LinkId> = (1..=3).map(|i| rig.incoming_peer(&info, i)).collect();
    rig.settle();
    for &p in &peers {
        rig.input(p, &encode(&[Message::Interested]));
    }
    let unchoked: Vec<LinkId> = rig
        .settle()
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { link, bytes } if decode(&bytes) == [Message::Unchoke] => Some(link),
            _ => None,
        })
        .collect();
    assert_eq!(unchoked, peers[..2], "two slots");
    // A choked peer's request is rejected (BEP 6), not served.
    let req = Message::Request(Block {
        index: 0,
        begin: 0,
        length: 16384,
    });
    rig.input(peers[2], &encode(&[req]));
    assert!(matches!(
        rig.sent(peers[2]).as_slice(),
        [_, _, _, _, 16, ..]
    ));
    // Peer 0 gets a block; 1 and 2 get nothing: at the round the seed
    // deals its two slots to the least served.
    rig.input(peers[0], &encode(&[req]));
    rig.settle();
    // Served is what left the host, as the shell reports it.
    rig.e.link_sent(rig.now, peers[0], u64::MAX);
    rig.advance(CHOKE_ROUND);
    let actions = rig.settle();
    let msgs = |link| {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { link: l, bytes } if *l == link => Some(decode(bytes)),
                _ => None,
            })
            .flatten()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        msgs(peers[0]),
        [Message::Choke],
        "the most served yields its slot"
    );
    assert_eq!(msgs(peers[2]), [Message::Unchoke]);
}

#[test]
fn a_request_beyond_the_piece_ends_a_session_without_fast() {
    let (mut rig, _, info) = Rig::seeder();
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    let mut hs = Handshake::new(info.info_hash, [9; 20]);
    hs.reserved = [0; 8];
    hs.encode(&mut hello);
    let bad = Block {
        index: 0,
        begin: PIECE - 10,
        length: 16384,
    };
    hello.extend(encode(&[Message::Request(bad)]));
    rig.input(link, &hello);
    assert!(closes(&rig.settle(), link));
}

#[test]
fn an_unknown_file_or_our_own_id_is_refused() {
    let (mut rig, _, info) = Rig::seeder();
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new([1; 20], [9; 20]).encode(&mut hello);
    rig.input(link, &hello);
    assert!(closes(&rig.settle(), link));
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, *rig.e.peer_id()).encode(&mut hello);
    rig.input(link, &hello);
    assert!(closes(&rig.settle(), link));
}

/// A leecher with one seeding peer that unchoked it: returns the peer's
/// link and the blocks requested.
pub(super) fn leecher_with_peer(disk: MemStorage) -> (Rig, LinkId, LinkId, Vec<u8>, Vec<Block>) {
    let (mut rig, control, bytes, info) = Rig::leecher(disk);
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20]).encode(&mut hello);
    hello.extend(encode(&[Message::HaveAll, Message::Unchoke]));
    rig.input(link, &hello);
    let sent = rig.sent(link);
    let (_, n) = Handshake::decode(&sent).unwrap().unwrap();
    let blocks = requests(&sent[n..]);
    (rig, control, link, bytes, blocks)
}

pub(super) fn piece_msg(bytes: &[u8], b: Block) -> Vec<u8> {
    let at = (b.index * PIECE + b.begin) as usize;
    encode(&[Message::Piece {
        index: b.index,
        begin: b.begin,
        block: &bytes[at..at + b.length as usize],
    }])
}

#[test]
fn a_leecher_requests_verifies_and_publishes() {
    let (mut rig, control, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    assert_eq!(blocks.len(), 8, "every block of the 4 pieces, in one batch");
    for b in &blocks {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.assert_published(control, &bytes);
    assert!(
        !rig.e
            .storage()
            .fs
            .files
            .contains_key(Path::new("/dl/f.bin.part.info"))
    );
}

#[test]
fn a_peer_that_sends_corrupt_pieces_twice_is_banned() {
    let (mut rig, _, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    let mut bad = bytes.clone();
    for b in bad.iter_mut() {
        *b ^= 0xff;
    }
    // Piece 0 fails: a strike, the session stays.
    for b in blocks.iter().filter(|b| b.index == 0) {
        rig.input(link, &piece_msg(&bad, *b));
    }
    assert!(!closes(&rig.settle(), link));
    for b in blocks.iter().filter(|b| b.index == 1) {
        rig.input(link, &piece_msg(&bad, *b));
    }
    assert!(closes(&rig.settle(), link), "second strike: dropped");
    let again = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(file(4).1.info_hash, [9; 20]).encode(&mut hello);
    rig.input(again, &hello);
    assert!(closes(&rig.settle(), again), "banned for good");
}

#[test]
fn a_peer_that_stops_answering_is_dropped_and_its_blocks_freed() {
    let (mut rig, _, link, _, blocks) = leecher_with_peer(MemStorage::default());
    assert!(!blocks.is_empty());
    rig.advance(wire::STALL_TIMEOUT + Duration::from_secs(1));
    assert!(closes(&rig.settle(), link));
}

#[test]
fn after_a_full_disk_the_next_get_resumes_keeping_verified_pieces() {
    let (mut rig, control, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    for b in blocks.iter().filter(|b| b.index == 0) {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.e.storage_mut().full = true;
    let b1 = blocks.iter().find(|b| b.index == 1).copied().unwrap();
    rig.input(link, &piece_msg(&bytes, b1));
    let failed = String::from_utf8(rig.sent(control)).unwrap();
    assert!(
        failed.contains("\"code\":\"io\"") && failed.contains("cannot write"),
        "{failed}"
    );

    rig.e.storage_mut().full = false;
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"get f.bin\n");
    rig.advance(Duration::from_secs(1));
    let sent = rig.sent(link);
    let again = requests(&sent);
    assert!(!again.iter().any(|b| b.index == 0), "piece 0 is kept");
    assert!(again.contains(&b1), "the lost block is asked again");
    for b in &again {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.assert_published(control, &bytes);
}

#[test]
fn get_into_a_missing_directory_creates_it() {
    let (_, info) = file(4);
    let mut rig = Rig::new(MemStorage::default());
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"get f.bin /new/dir\n");
    assert!(
        rig.e
            .storage()
            .fs
            .dirs
            .iter()
            .any(|d| d == Path::new("/new/dir"))
    );
    let ask = rig.sent(rig.tracker);
    assert!(matches!(
        Request::decode(&ask),
        Ok(Some((Request::GetMeta(_), _)))
    ));
    rig.answer(Response::Meta {
        info: info.bencoded.clone(),
    });
    assert!(
        rig.e
            .storage()
            .fs
            .files
            .contains_key(Path::new("/new/dir/f.bin.part"))
    );
}

#[test]
fn remove_stops_sharing_tells_the_tracker_and_may_delete() {
    let (mut rig, _, info) = Rig::seeder();
    let peer = rig.incoming_peer(&info, 1);
    rig.settle();
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"remove f.bin delete\n");
    let actions = rig.settle();
    assert!(closes(&actions, peer));
    let leave = actions.iter().find_map(|a| match a {
        Action::Send { link, bytes } if *link == rig.tracker => Some(bytes.clone()),
        _ => None,
    });
    let leave = leave.expect("the tracker is told");
    assert_eq!(
        Request::decode(&leave).unwrap().unwrap().0,
        Request::Leave {
            info_hash: info.info_hash
        }
    );
    assert!(
        !rig.e
            .storage()
            .fs
            .files
            .contains_key(Path::new("/data/f.bin"))
    );
    assert!(rig.e.status().files.is_empty());
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"remove f.bin\n");
    let reply = String::from_utf8(rig.sent(control)).unwrap();
    assert!(reply.contains("\"code\":\"not_found\""), "{reply}");
}

#[test]
fn a_resumed_download_fetches_only_what_is_missing() {
    let (bytes, info) = file(4);
    let mut disk = MemStorage::default();
    let mut part = bytes.clone();
    part[(2 * PIECE) as usize..].fill(0); // pieces 2 and 3 never arrived
    disk.fs.files.insert("/dl/f.bin.part".into(), part);
    disk.fs
        .files
        .insert("/dl/f.bin.part.info".into(), info.bencoded.clone());
    let rig = Rig::new(disk);
    let status = rig.e.status();
    assert_eq!(status.files.len(), 1);
    assert_eq!(status.files[0].have, 2, "pieces 0 and 1 verified from disk");
}

#[test]
fn a_peer_that_dialed_in_is_known_by_its_listen_address() {
    use crate::wire::tracker::{PeerEntry, Pieces};
    let (mut rig, _, _, info) = Rig::leecher(MemStorage::default());
    let link = rig
        .e
        .peer_accepted(rig.now, "10.0.0.9:40000".parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20]).encode(&mut hello);
    rig.input(link, &hello);
    rig.settle();
    rig.answer(Response::Announced {
        info_hash: info.info_hash,
    });
    let peers = |ip: &str| Response::Peers {
        info_hash: info.info_hash,
        peers: vec![PeerEntry {
            peer_id: [9; 20],
            addr: ip.parse().unwrap(),
            pieces: Pieces::All,
        }],
    };
    rig.answer(peers(PEER));
    let dials = rig
        .settle()
        .into_iter()
        .filter(|a| matches!(a, Action::Dial { .. }))
        .count();
    assert_eq!(dials, 0, "already connected to 10.0.0.9:6881");
    // The same id at another address is another peer: dialed.
    rig.advance(Duration::from_secs(3));
    let ask = rig.sent(rig.tracker);
    // It is vouched for first (its id is not STA's): answered in order.
    let Ok(Some((Request::Vouch { peers: v, .. }, n))) = Request::decode(&ask) else {
        panic!("a vouch for the peer that dialed in");
    };
    assert_eq!(v[0].addr.to_string(), PEER);
    assert!(matches!(
        Request::decode(&ask[n..]),
        Ok(Some((Request::GetPeers { .. }, _)))
    ));
    rig.answer(Response::Ack);
    rig.answer(peers("10.0.0.8:6881"));
    assert!(
        rig.settle()
            .iter()
            .any(|a| matches!(a, Action::Dial { addr, .. } if addr.to_string() == "10.0.0.8:6881"))
    );
}

/// The pieces a seed announced in `reply` (after the handshake, if any).
fn haves(reply: &[u8]) -> Vec<u32> {
    let body = match Handshake::decode(reply) {
        Ok(Some((_, n))) => &reply[n..],
        _ => reply,
    };
    decode(body)
        .into_iter()
        .filter_map(|m| match m {
            Message::Have(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[test]
fn a_seed_shows_each_piece_to_one_peer_before_it_shows_any_to_two() {
    // 160 pieces of 32 KiB: 64 shown to each peer at a time.
    let (mut rig, _, info) = Rig::seeder_of(160);
    let mut hello = |id: u8| {
        let link = rig
            .e
            .peer_accepted(rig.now, format!("10.0.0.{id}:6881").parse().unwrap());
        let mut bytes = Vec::new();
        Handshake::new(info.info_hash, [id; 20]).encode(&mut bytes);
        rig.input(link, &bytes);
        (link, haves(&rig.sent(link)))
    };
    let (a, shown_a) = hello(21);
    let (_, shown_b) = hello(22);
    assert_eq!((shown_a.len(), shown_b.len()), (64, 64));
    assert!(
        shown_a.iter().all(|p| !shown_b.contains(p)),
        "no piece shown to both while others were never shown"
    );
    // Asking for a shown piece makes room for one more.
    let req = Block {
        index: shown_a[0],
        begin: 0,
        length: 16384,
    };
    rig.input(a, &encode(&[Message::Interested, Message::Request(req)]));
    let more = haves(&rig.sent(a));
    assert_eq!(more.len(), 1);
    assert!(!shown_a.contains(&more[0]) && !shown_b.contains(&more[0]));
}

#[test]
fn a_choke_from_a_fast_peer_keeps_its_requests_until_it_answers_them() {
    // BEP 6: the peer answers each request (block or reject) even across
    // a choke; asking another peer meanwhile would fetch blocks twice.
    let (mut rig, control, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    rig.input(link, &encode(&[Message::Choke, Message::Unchoke]));
    assert!(
        requests(&rig.sent(link)).is_empty(),
        "nothing asked again after choke and unchoke"
    );
    // Served after all, but for the last block, which is rejected: that
    // one is asked again, once the peer's backoff for it is over.
    let (last, served) = blocks.split_last().unwrap();
    for b in served {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.input(link, &encode(&[Message::Reject(*last)]));
    assert!(
        requests(&rig.sent(link)).is_empty(),
        "not asked again at once"
    );
    rig.advance(crate::engine::refused::BACKOFF);
    assert_eq!(requests(&rig.sent(link)), [*last]);
    rig.input(link, &piece_msg(&bytes, *last));
    rig.assert_published(control, &bytes);
}

#[test]
fn rejects_of_blocks_never_asked_for_are_ignored() {
    // A peer may send any reject; only those of our own requests hold a
    // piece back, so a flood of made-up ones costs no memory.
    let (mut rig, control, link, bytes, blocks) = leecher_with_peer(MemStorage::default());
    let made_up: Vec<Message> = (0..10_000u32)
        .map(|i| {
            Message::Reject(Block {
                index: 1_000 + i,
                begin: 0,
                length: 16_384,
            })
        })
        .collect();
    rig.input(link, &encode(&made_up));
    let odd = Block {
        begin: blocks[0].begin + 1,
        ..blocks[0]
    };
    rig.input(link, &encode(&[Message::Reject(odd)]));
    assert!(rig.e.peers[&link].refused.is_empty());
    rig.input(link, &encode(&[Message::Reject(blocks[0])]));
    assert_eq!(rig.e.peers[&link].refused.len(), 1, "our own request");
    for b in &blocks[1..] {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    rig.advance(crate::engine::refused::BACKOFF);
    assert_eq!(requests(&rig.sent(link)), [blocks[0]]);
    rig.input(link, &piece_msg(&bytes, blocks[0]));
    rig.assert_published(control, &bytes);
}

/// A tree of three files over 4 pieces: `a` fills pieces 0 and 1, `b` the
/// first half of piece 2, `c` the rest.
fn tree() -> (Vec<u8>, Info) {
    let len = (4 * PIECE - 100) as usize;
    let bytes: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
    let hashes = bytes
        .chunks(PIECE as usize)
        .flat_map(|c| Sha1::digest(c).to_vec())
        .collect();
    let (a, b) = (u64::from(2 * PIECE), u64::from(PIECE / 2));
    let files = vec![("a", a), ("d/b", b), ("c", len as u64 - a - b)];
    (
        bytes,
        Info::new_tree(
            "t",
            &files.into_iter().collect::<crate::meta::files::Listing>(),
            PIECE,
            hashes,
        )
        .unwrap(),
    )
}

#[test]
fn get_only_fetches_the_pieces_of_the_selected_files_and_resumes_with_them() {
    let (bytes, info) = tree();
    let mut disk = MemStorage::default();
    let torrent = crate::meta::torrent::Torrent::write(&info, &["udp://x/announce".into()]);
    disk.fs.files.insert("/t/t.torrent".into(), torrent);
    let mut rig = Rig::new(disk);
    let control = rig.e.control_opened(rig.now);
    rig.input(control, b"get-torrent /t/t.torrent /dl only d/%2A\n");
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20]).encode(&mut hello);
    hello.extend(encode(&[Message::HaveAll, Message::Unchoke]));
    rig.input(link, &hello);
    let sent = rig.sent(link);
    let (_, n) = Handshake::decode(&sent).unwrap().unwrap();
    let blocks = requests(&sent[n..]);
    assert!(!blocks.is_empty());
    assert!(
        blocks.iter().all(|b| b.index == 2),
        "only piece 2 holds bytes of d/b: {blocks:?}"
    );
    let progress = String::from_utf8(rig.sent(control)).unwrap();
    assert!(
        progress.is_empty() || progress.contains("\"files\":1"),
        "{progress}"
    );
    // The globs are kept for a restart.
    let saved = rig.e.storage().fs.files[Path::new("/dl/t.part.info")].clone();
    assert!(saved.starts_with(b"d4:infod"), "{saved:?}");
    let (_, only) = super::files::resume_decode(&saved).unwrap();
    assert_eq!(only, ["d/*"]);
    for b in &blocks {
        rig.input(link, &piece_msg(&bytes, *b));
    }
    let done = String::from_utf8(rig.sent(control)).unwrap();
    assert!(done.contains("\"event\":\"done\""), "{done}");
    let status = rig.e.status();
    assert_eq!(status.files[0].have, 1, "piece 2 alone");
}

#[test]
fn with_a_dht_port_the_handshake_says_so_and_a_port_message_follows() {
    let (mut rig, _, info) = Rig::seeder();
    rig.e.set_dht_port(7000);
    let link = rig.e.peer_accepted(rig.now, PEER.parse().unwrap());
    let mut hello = Vec::new();
    Handshake::new(info.info_hash, [9; 20])
        .with_dht()
        .encode(&mut hello);
    // Their PORT message: their DHT node is at their IP, port 6881.
    hello.extend_from_slice(&crate::wire::peer::port_message(6881));
    rig.input(link, &hello);
    let sent = rig.sent(link);
    let (ours, used) = Handshake::decode(&sent).unwrap().unwrap();
    assert!(ours.supports_dht());
    let msgs = decode(&sent[used..]);
    let port = Message::Unknown {
        id: 9,
        payload: &[0x1b, 0x58],
    };
    // After the piece set and the extension handshake (BEP 6 wants the
    // piece set first).
    assert_eq!(msgs.get(2), Some(&port), "{msgs:?}");
    let heard = rig.e.take_dht_nodes();
    let want: std::net::SocketAddr = PEER.parse().unwrap();
    assert_eq!(heard, [std::net::SocketAddr::new(want.ip(), 6881)]);
}

/// Requests for every block of pieces `0..pieces` (all whole).
fn blocks_of(pieces: u32) -> Vec<Block> {
    (0..pieces)
        .flat_map(|index| {
            (0..PIECE / 16384).map(move |i| Block {
                index,
                begin: i * 16384,
                length: 16384,
            })
        })
        .collect()
}

fn block_count(actions: &[Action], link: LinkId) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::SendBlock { link: l, .. } if *l == link))
        .count()
}

fn uploaded(rig: &Rig) -> u64 {
    rig.e.status().files.iter().map(|f| f.uploaded).sum()
}

/// An unchoked peer of a 40-piece seed, and its 76 requests (1.2 MiB).
fn seed_with_requests() -> (Rig, LinkId, Vec<Block>) {
    let (mut rig, _, info) = Rig::seeder_of(40);
    let link = rig.incoming_peer(&info, 1);
    rig.input(link, &encode(&[Message::Interested]));
    rig.settle();
    let blocks = blocks_of(38);
    let asks: Vec<Message> = blocks.iter().map(|b| Message::Request(*b)).collect();
    rig.input(link, &encode(&asks));
    (rig, link, blocks)
}

#[test]
fn a_seed_hands_blocks_as_its_socket_drains_and_counts_what_left() {
    let (mut rig, link, blocks) = seed_with_requests();
    let first = block_count(&rig.settle(), link);
    // 1 MiB of blocks waits unsent at most: 64 of 16 KiB with headers.
    assert_eq!(first, 64);
    assert_eq!(uploaded(&rig), 0, "nothing has left yet");
    // Half of it left: that much more is handed over.
    rig.e.link_sent(rig.now, link, 32 * (16384 + 13));
    assert_eq!(uploaded(&rig), 31 * 16384, "blocks wholly out count");
    let more = block_count(&rig.settle(), link);
    assert_eq!(first + more, blocks.len(), "room for the rest");
    rig.e.link_sent(rig.now, link, u64::MAX);
    assert_eq!(uploaded(&rig), blocks.len() as u64 * 16384);
}

#[test]
fn a_cancel_or_our_choke_withdraws_what_was_not_sent_with_a_reject_each() {
    let (mut rig, link, blocks) = seed_with_requests();
    assert_eq!(block_count(&rig.settle(), link), 64);
    // A cancel of a request still waiting: BEP 6 wants its reject.
    rig.input(link, &encode(&[Message::Cancel(blocks[70])]));
    assert_eq!(decode(&rig.sent(link)), [Message::Reject(blocks[70])]);
    // One already handed to the socket goes out all the same.
    rig.input(link, &encode(&[Message::Cancel(blocks[0])]));
    assert!(rig.sent(link).is_empty());
    // Losing interest loses the slot: the rest is rejected, not sent.
    rig.input(link, &encode(&[Message::NotInterested]));
    let mut expected = vec![Message::Choke];
    for b in blocks[64..].iter().filter(|b| **b != blocks[70]) {
        expected.push(Message::Reject(*b));
    }
    assert_eq!(decode(&rig.sent(link)), expected);
    rig.e.link_sent(rig.now, link, u64::MAX);
    assert_eq!(block_count(&rig.settle(), link), 0);
}

/// Two connections with one peer (each side dialed the other at once):
/// both sides must keep the same one, so the rule is libtorrent's: the
/// connection dialed by the greater peer id stays. (With opposite rules
/// each side closes a different one, and neither is left.)
#[test]
fn of_two_connections_with_a_peer_the_one_dialed_by_the_greater_id_stays() {
    use crate::wire::tracker::{PeerEntry, Pieces};
    for theirs in [
        *b"-ST0100-\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        *b"-ST0100-\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        let (mut rig, _, _, info) = Rig::leecher(MemStorage::default());
        let ours = *rig.e.peer_id();
        rig.settle();
        rig.answer(Response::Announced {
            info_hash: info.info_hash,
        });
        rig.answer(Response::Peers {
            info_hash: info.info_hash,
            peers: vec![PeerEntry {
                peer_id: theirs,
                addr: PEER.parse().unwrap(),
                pieces: Pieces::All,
            }],
        });
        let dialed = rig
            .settle()
            .into_iter()
            .find_map(|a| match a {
                Action::Dial { link, addr } if addr.to_string() == PEER => Some(link),
                _ => None,
            })
            .expect("the peer is dialed");
        rig.e.link_opened(rig.now, dialed);
        let mut hello = Vec::new();
        Handshake::new(info.info_hash, theirs).encode(&mut hello);
        Message::HaveAll.encode(&mut hello);
        rig.input(dialed, &hello);
        rig.settle();
        // Meanwhile it dialed us too.
        let accepted = rig
            .e
            .peer_accepted(rig.now, "10.0.0.9:40000".parse().unwrap());
        rig.input(accepted, &hello);
        let actions = rig.settle();
        let (kept, closed) = match theirs > ours {
            true => (accepted, dialed),
            false => (dialed, accepted),
        };
        assert!(
            closes(&actions, closed),
            "the connection {closed} dialed by the lesser id is closed"
        );
        assert!(
            !closes(&actions, kept),
            "the one {kept} dialed by the greater id stays"
        );
    }
}
