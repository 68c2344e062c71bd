//! End to end: the real `sta-trackerd` binary on 127.0.0.1 (port 0), real
//! TCP sessions speaking the tracker protocol through the crate's codec.
//! Every read has a timeout and every wait a deadline, so a broken tracker
//! fails these tests instead of hanging them.

mod common;

use common::*;
use sta::limits::MAX_TRACKER_FRAME;
use sta::meta::Info;
use sta::wire::tracker::{ErrorCode, ListEntry, Lookup, PeerEntry, Pieces, Request, Response};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

const PIECE: u32 = 16 * 1024;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn announce_req(info: &Info, pieces: Pieces) -> Request {
    Request::Announce {
        info: info.bencoded.clone(),
        pieces,
    }
}

/// A helloed session, for the "someone else is still served" checks.
fn session(addr: SocketAddr, n: u64) -> Client {
    let mut c = Client::connect(addr);
    c.hello(peer_id(n), 6000 + n as u16);
    c
}

/// The well-behaved session still gets answers (and the tracker lives).
fn assert_served(t: &mut Daemon, c: &mut Client) {
    t.assert_running();
    let page = c.list(0, 10, "");
    assert!(page.entries.len() as u32 <= page.total);
}

// ---------------------------------------------------------------- scenario

#[test]
fn seeds_scenario_announce_list_meta_peers_have() {
    let t = tracker(&[]);
    let data = random_bytes(3 * PIECE as usize + 1000, 1);
    let info = info_for("seeds.bin", &data, PIECE);
    assert_eq!(info.num_pieces(), 4);
    let hash = info.info_hash;
    assert_eq!(hash, sha1(&info.bencoded));

    // A shares pieces 0 and 2.
    let mut a = Client::connect(t.addr);
    assert_eq!(a.hello(peer_id(1), 40001), 120, "default idle timeout");
    let a_bits = bitfield(4, &[0, 2]);
    a.announce(&info, Pieces::Bitfield(a_bits.clone()));

    // B finds the file in the catalog, with the right fields.
    let mut b = Client::connect(t.addr);
    b.hello(peer_id(2), 40002);
    let page = b.list(0, 100, "");
    assert_eq!(page.total, 1);
    let entry = ListEntry {
        info_hash: hash,
        length: data.len() as u64,
        piece_length: PIECE,
        peers: 1,
        seeders: 0,
        name: "seeds.bin".into(),
    };
    assert_eq!(page.entries, vec![entry.clone()]);

    // Its metadata, by name and by hash: A's bytes exactly.
    let meta = b.get_meta(Lookup::Name("seeds.bin".into()));
    assert_eq!(meta, info.bencoded);
    assert_eq!(sha1(&meta), hash);
    assert_eq!(b.get_meta(Lookup::Hash(hash)), info.bencoded);
    // ... enough to verify every piece of the real data.
    let got = Info::from_bencoded(&meta).unwrap();
    for (i, piece) in data.chunks(PIECE as usize).enumerate() {
        assert_eq!(got.piece_hash(i as u32).unwrap(), sha1(piece));
    }

    // Peers: A at 127.0.0.1 + its announced port, with its bitfield.
    let a_entry = PeerEntry {
        peer_id: peer_id(1),
        addr: local(40001),
        pieces: Pieces::Bitfield(a_bits),
    };
    assert_eq!(b.get_peers(hash, 50, None), vec![a_entry.clone()]);
    assert_eq!(b.get_peers(hash, 50, Some(2)), vec![a_entry.clone()]);
    assert_eq!(b.get_peers(hash, 50, Some(1)), vec![]);
    assert_eq!(b.get_peers(hash, 0, None), vec![], "max 0: no peers");
    // The asking session is never in its own answer.
    assert_eq!(a.get_peers(hash, 50, None), vec![]);

    // A gets piece 1: B sees it.
    a.have(hash, 1);
    let a_entry = PeerEntry {
        pieces: Pieces::Bitfield(bitfield(4, &[0, 1, 2])),
        ..a_entry
    };
    assert_eq!(b.get_peers(hash, 50, Some(1)), vec![a_entry.clone()]);
    assert_eq!(b.get_peers(hash, 50, Some(3)), vec![]);
    assert_eq!(b.list(0, 100, "").entries[0].seeders, 0);

    // A completes: a seeder, sent as "all pieces".
    a.have(hash, 3);
    let a_seed = PeerEntry {
        pieces: Pieces::All,
        ..a_entry
    };
    assert_eq!(b.get_peers(hash, 50, Some(3)), vec![a_seed.clone()]);
    let e = &b.list(0, 100, "").entries[0];
    assert_eq!((e.peers, e.seeders), (1, 1));

    // B joins as a seeder, C with one piece: the counts follow.
    b.announce(&info, Pieces::All);
    let mut c = Client::connect(t.addr);
    c.hello(peer_id(3), 40003);
    c.announce(&info, Pieces::Bitfield(bitfield(4, &[3])));
    let e = &c.list(0, 100, "seeds").entries[0];
    assert_eq!((e.peers, e.seeders), (3, 2));
    let b_seed = PeerEntry {
        peer_id: peer_id(2),
        addr: local(40002),
        pieces: Pieces::All,
    };
    let mut seen: Vec<PeerEntry> = c.get_peers(hash, 50, Some(0));
    seen.sort_by_key(|p| p.addr);
    assert_eq!(seen, vec![a_seed.clone(), b_seed.clone()]);
    assert_eq!(c.get_peers(hash, 1, None).len(), 1, "max is honoured");
    assert_eq!(a.get_peers(hash, 50, Some(3)).len(), 2, "B and C have 3");

    // Re-announcing replaces B's piece set: no longer a seeder.
    b.announce(&info, Pieces::Bitfield(bitfield(4, &[1])));
    let e = &a.list(0, 100, "").entries[0];
    assert_eq!((e.peers, e.seeders), (3, 1));
    assert_eq!(a.get_peers(hash, 50, Some(1)).len(), 1);
}

// ------------------------------------------------------------------ errors

#[test]
fn file_not_found() {
    let t = tracker(&[]);
    let mut c = session(t.addr, 1);
    let unknown = [0x42; 20];
    let msg = c.call_err(
        &Request::GetMeta(Lookup::Hash(unknown)),
        ErrorCode::FILE_NOT_FOUND,
    );
    assert!(msg.contains(&hex(&unknown)), "{msg}");
    c.call_err(
        &Request::GetMeta(Lookup::Name("nothing.bin".into())),
        ErrorCode::FILE_NOT_FOUND,
    );
    for piece in [None, Some(0)] {
        c.call_err(
            &Request::GetPeers {
                info_hash: unknown,
                max: 10,
                piece,
            },
            ErrorCode::FILE_NOT_FOUND,
        );
    }
    c.call_err(
        &Request::Have {
            info_hash: unknown,
            piece: 0,
        },
        ErrorCode::FILE_NOT_FOUND,
    );
    c.call_err(
        &Request::Leave { info_hash: unknown },
        ErrorCode::FILE_NOT_FOUND,
    );

    // A file someone else holds: names match exactly, case-sensitively,
    // and a session cannot leave what it never announced.
    let f = make_file("Exact.bin", 1000, 2);
    let mut other = session(t.addr, 2);
    other.announce(&f, Pieces::All);
    assert_eq!(c.get_meta(Lookup::Name("Exact.bin".into())), f.bencoded);
    for name in ["exact.bin", "Exact", "Exact.bin ", ""] {
        c.call_err(
            &Request::GetMeta(Lookup::Name(name.into())),
            ErrorCode::FILE_NOT_FOUND,
        );
    }
    c.call_err(
        &Request::Leave {
            info_hash: f.info_hash,
        },
        ErrorCode::FILE_NOT_FOUND,
    );

    // Once its only holder leaves, the file is gone for everyone.
    other.leave(f.info_hash);
    c.call_err(
        &Request::GetMeta(Lookup::Hash(f.info_hash)),
        ErrorCode::FILE_NOT_FOUND,
    );
    c.call_err(
        &Request::GetPeers {
            info_hash: f.info_hash,
            max: 10,
            piece: None,
        },
        ErrorCode::FILE_NOT_FOUND,
    );
    other.call_err(
        &Request::Leave {
            info_hash: f.info_hash,
        },
        ErrorCode::FILE_NOT_FOUND,
    );
    assert_eq!(c.list(0, 10, "").total, 0);
}

#[test]
fn piece_index_out_of_range() {
    let t = tracker(&[]);
    let f = make_file("four.bin", 3 * PIECE as usize + 1, 3);
    let n = f.num_pieces();
    assert_eq!(n, 4);
    let mut a = session(t.addr, 1);
    a.announce(&f, Pieces::Bitfield(bitfield(n, &[0])));
    let mut b = session(t.addr, 2);

    for piece in [n, n + 1, u32::MAX] {
        let msg = b.call_err(
            &Request::GetPeers {
                info_hash: f.info_hash,
                max: 10,
                piece: Some(piece),
            },
            ErrorCode::PIECE_OUT_OF_RANGE,
        );
        assert!(msg.contains(&piece.to_string()), "{msg}");
        a.call_err(
            &Request::Have {
                info_hash: f.info_hash,
                piece,
            },
            ErrorCode::PIECE_OUT_OF_RANGE,
        );
    }
    // The last valid index works, and nothing was changed by the errors.
    assert_eq!(b.get_peers(f.info_hash, 10, Some(n - 1)), vec![]);
    a.have(f.info_hash, n - 1);
    let peers = b.get_peers(f.info_hash, 10, Some(n - 1));
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].pieces, Pieces::Bitfield(bitfield(n, &[0, n - 1])));
}

#[test]
fn ambiguous_name() {
    let t = tracker(&[]);
    let f1 = make_file("same.bin", 5000, 10);
    let f2 = make_file("same.bin", 7000, 11);
    assert_ne!(f1.info_hash, f2.info_hash);
    let mut a = session(t.addr, 1);
    a.announce(&f1, Pieces::All);
    let mut c = session(t.addr, 3);

    // Two holders of the same file are not ambiguous.
    let mut twin = session(t.addr, 4);
    twin.announce(&f1, Pieces::All);
    assert_eq!(c.get_meta(Lookup::Name("same.bin".into())), f1.bencoded);

    let mut b = session(t.addr, 2);
    b.announce(&f2, Pieces::All);
    let msg = c.call_err(
        &Request::GetMeta(Lookup::Name("same.bin".into())),
        ErrorCode::AMBIGUOUS_NAME,
    );
    assert!(msg.contains(&hex(&f1.info_hash)), "{msg}");
    assert!(msg.contains(&hex(&f2.info_hash)), "{msg}");
    // Each is still reachable by hash, and both are listed, by hash order.
    assert_eq!(c.get_meta(Lookup::Hash(f1.info_hash)), f1.bencoded);
    assert_eq!(c.get_meta(Lookup::Hash(f2.info_hash)), f2.bencoded);
    let page = c.list(0, 10, "same.bin");
    assert_eq!(page.total, 2);
    let mut hashes = [f1.info_hash, f2.info_hash];
    hashes.sort();
    let listed: Vec<_> = page.entries.iter().map(|e| e.info_hash).collect();
    assert_eq!(listed, hashes);

    // B leaves: the name is unique again.
    b.leave(f2.info_hash);
    assert_eq!(c.get_meta(Lookup::Name("same.bin".into())), f1.bencoded);
}

#[test]
fn hello_required() {
    let t = tracker(&[]);
    let f = make_file("early.bin", 100, 4);
    let mut c = Client::connect(t.addr);
    // A keep-alive is fine before hello and gets no answer.
    c.send(&Request::KeepAlive);
    let early = [
        Request::List {
            offset: 0,
            limit: 10,
            filter: String::new(),
        },
        Request::GetMeta(Lookup::Hash(f.info_hash)),
        Request::GetPeers {
            info_hash: f.info_hash,
            max: 10,
            piece: None,
        },
        announce_req(&f, Pieces::All),
        Request::Have {
            info_hash: f.info_hash,
            piece: 0,
        },
        Request::Leave {
            info_hash: f.info_hash,
        },
    ];
    for r in &early {
        c.call_err(r, ErrorCode::HELLO_REQUIRED);
    }
    // The session goes on; hello works and so does everything after.
    assert_eq!(c.hello(peer_id(1), 7000), 120);
    assert_eq!(c.list(0, 10, "").total, 0, "the early announce was ignored");
    c.announce(&f, Pieces::All);
    // A second hello is refused; the first stays in force.
    c.call_err(&hello(peer_id(9), 7009), ErrorCode::INVALID_PARAMETERS);
    let mut d = session(t.addr, 2);
    let peers = d.get_peers(f.info_hash, 10, None);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, peer_id(1));
    assert_eq!(peers[0].addr, local(7000));
}

#[test]
fn unsupported_version_closes_the_session() {
    let mut t = tracker(&[]);
    let mut good = session(t.addr, 1);
    for version in [0u16, 2, u16::MAX] {
        let mut c = Client::connect(t.addr);
        let msg = c.call_err(
            &Request::Hello {
                version,
                peer_id: peer_id(2),
                listen_port: 7000,
            },
            ErrorCode::UNSUPPORTED_VERSION,
        );
        assert!(msg.contains(&version.to_string()), "{msg}");
        c.expect_eof();
        assert_served(&mut t, &mut good);
    }
}

#[test]
fn invalid_metadata() {
    let mut t = tracker(&[]);
    let mut c = session(t.addr, 1);
    let bad: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"de".to_vec(),
        b"not bencode at all".to_vec(),
        b"li1ei2ee".to_vec(),
        // 40000 bytes need 3 hashes, 1 given.
        [
            &b"d6:lengthi40000e4:name5:x.bin12:piece lengthi16384e6:pieces20:"[..],
            &[7u8; 20],
            b"e",
        ]
        .concat(),
        // Piece length not a power of two.
        [
            &b"d6:lengthi100e4:name5:x.bin12:piece lengthi10000e6:pieces20:"[..],
            &[7u8; 20],
            b"e",
        ]
        .concat(),
        // A multi-file dict.
        b"d5:filesld6:lengthi1e4:pathl1:aeee4:name1:x12:piece lengthi16384e6:pieces0:e".to_vec(),
        // A valid dict cut short.
        {
            let f = make_file("cut.bin", 100, 5);
            f.bencoded[..f.bencoded.len() - 1].to_vec()
        },
    ];
    for info in bad {
        c.call_err(
            &Request::Announce {
                info,
                pieces: Pieces::All,
            },
            ErrorCode::INVALID_METADATA,
        );
    }
    // Nothing entered the catalog, and the session goes on.
    assert_eq!(c.list(0, 10, "").total, 0);
    c.announce(&make_file("fine.bin", 100, 6), Pieces::All);
    assert_served(&mut t, &mut c);
}

#[test]
fn bad_bitfield_length() {
    let t = tracker(&[]);
    let f = make_file("bits.bin", 3 * PIECE as usize + 5, 7); // 4 pieces
    let mut a = session(t.addr, 1);
    for bits in [vec![], vec![0x80, 0x00], vec![0x08], vec![0x81]] {
        let msg = a.call_err(
            &announce_req(&f, Pieces::Bitfield(bits.clone())),
            ErrorCode::INVALID_PARAMETERS,
        );
        assert!(!msg.is_empty(), "bitfield {bits:?}");
    }
    let mut b = session(t.addr, 2);
    assert_eq!(
        b.list(0, 10, "").total,
        0,
        "refused announces left no trace"
    );
    // The right length works; every bit set means a seeder.
    a.announce(&f, Pieces::Bitfield(vec![0x80]));
    a.announce(&f, Pieces::Bitfield(vec![0xf0]));
    let e = &b.list(0, 10, "").entries[0];
    assert_eq!((e.peers, e.seeders), (1, 1));
    assert_eq!(b.get_peers(f.info_hash, 10, None)[0].pieces, Pieces::All);
}

#[test]
fn list_paging_filter_and_total() {
    let t = tracker(&[]);
    let names = [
        "gamma.txt",
        "beta.ISO",
        "Alpha.iso",
        "epsilon.bin",
        "delta.iso",
    ];
    let mut a = session(t.addr, 1);
    for (i, name) in names.iter().enumerate() {
        a.announce(&make_file(name, 1000 + i, 20 + i as u64), Pieces::All);
    }
    let mut b = session(t.addr, 2);
    // Listing order: by name, bytewise ("A" sorts before "b").
    let all = [
        "Alpha.iso",
        "beta.ISO",
        "delta.iso",
        "epsilon.bin",
        "gamma.txt",
    ];
    let page = b.list(0, 100, "");
    assert_eq!((page.total, page.names()), (5, all.to_vec()));
    for (offset, limit, want) in [
        (0, 2, &all[0..2]),
        (2, 2, &all[2..4]),
        (4, 2, &all[4..5]),
        (1, 3, &all[1..4]),
        (5, 2, &[][..]),
        (1000, 10, &[][..]),
        (u32::MAX, 10, &[][..]),
        (0, 0, &[][..]),
        (0, 1000, &all[..]),
    ] {
        let page = b.list(offset, limit, "");
        assert_eq!(page.total, 5, "offset {offset} limit {limit}");
        assert_eq!(page.names(), want.to_vec(), "offset {offset} limit {limit}");
    }
    // The filter is a case-insensitive substring; total counts matches.
    let isos = ["Alpha.iso", "beta.ISO", "delta.iso"];
    for filter in ["iso", "ISO", "Iso", ".iSo"] {
        let page = b.list(0, 100, filter);
        assert_eq!((page.total, page.names()), (3, isos.to_vec()), "{filter}");
    }
    let page = b.list(1, 1, "ISO");
    assert_eq!((page.total, page.names()), (3, vec!["beta.ISO"]));
    let page = b.list(0, 100, "ALPHA");
    assert_eq!((page.total, page.names()), (1, vec!["Alpha.iso"]));
    let page = b.list(0, 100, "zzz");
    assert_eq!((page.total, page.names().len()), (0, 0));
    // Entries carry the real lengths.
    let page = b.list(0, 1, "gamma");
    assert_eq!(page.entries[0].length, 1000);
    assert_eq!(page.entries[0].piece_length, PIECE);
}

#[test]
fn limit_reached_files_per_peer_and_catalog() {
    let t = tracker(&["--max-files-per-peer", "2"]);
    let files: Vec<Info> = (0..3)
        .map(|i| make_file(&format!("f{i}.bin"), 100 + i, 30 + i as u64))
        .collect();
    let mut a = session(t.addr, 1);
    a.announce(&files[0], Pieces::All);
    a.announce(&files[1], Pieces::All);
    let msg = a.call_err(
        &announce_req(&files[2], Pieces::All),
        ErrorCode::LIMIT_REACHED,
    );
    assert!(msg.contains('2'), "{msg}");
    // The session goes on; re-announcing a held file is no new file.
    a.announce(&files[0], Pieces::Bitfield(vec![0x80]));
    assert_eq!(a.list(0, 10, "").total, 2);
    // The limit is per session.
    let mut b = session(t.addr, 2);
    b.announce(&files[2], Pieces::All);
    assert_eq!(b.list(0, 10, "").total, 3);
    // Leaving frees a slot.
    a.leave(files[0].info_hash);
    a.announce(&files[2], Pieces::All);
    let page = b.list(0, 10, "f2");
    assert_eq!(page.entries[0].peers, 2);
    drop(t);

    // The catalog's own limit: new files are refused, known ones are not.
    let t = tracker(&["--max-files", "2"]);
    let mut a = session(t.addr, 1);
    a.announce(&files[0], Pieces::All);
    a.announce(&files[1], Pieces::All);
    let mut b = session(t.addr, 2);
    b.call_err(
        &announce_req(&files[2], Pieces::All),
        ErrorCode::LIMIT_REACHED,
    );
    b.announce(&files[1], Pieces::All);
    assert_eq!(b.list(0, 10, "").total, 2);
}

#[test]
fn limit_reached_max_connections() {
    let mut t = tracker(&["--max-connections", "5"]);
    let mut five: Vec<Client> = (0..5).map(|i| session(t.addr, i)).collect();
    // The sixth gets error 8 in place of anything else, then the close.
    let mut sixth = Client::connect(t.addr);
    let msg = sixth.expect_error(ErrorCode::LIMIT_REACHED);
    assert!(!msg.is_empty());
    sixth.expect_eof();
    // Also when the client speaks first: error 8, not Welcome. (The
    // tracker closes with the Hello unread, which may end in a reset.)
    let mut eager = Client::connect(t.addr);
    eager.send(&hello(peer_id(6), 7006));
    eager.expect_error(ErrorCode::LIMIT_REACHED);
    eager.expect_closed();
    for c in &mut five {
        assert_served(&mut t, c);
    }
    // A slot frees once a session closes (when the tracker has seen it).
    drop(five.pop());
    let mut again = wait_for("a free connection slot", Duration::from_secs(5), || {
        let mut c = Client::connect(t.addr);
        c.send(&hello(peer_id(9), 7009));
        match c.next() {
            Incoming::Frame(Response::Welcome { .. }) => Some(c),
            Incoming::Frame(Response::Error {
                code: ErrorCode::LIMIT_REACHED,
                ..
            })
            | Incoming::Eof
            | Incoming::Failed(_) => None,
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_served(&mut t, &mut again);
}

// ---------------------------------------------------------- hostile bytes

#[test]
fn hostile_garbage_bytes() {
    let mut t = tracker(&[]);
    let mut good = session(t.addr, 1);
    good.announce(&make_file("good.bin", 100, 1), Pieces::All);

    // Unframed junk: whatever the tracker makes of it, it answers only
    // with well-formed frames (checked by the client) and stays up.
    for seed in 0..20u64 {
        let mut c = Client::connect(t.addr);
        c.set_read_timeout(Duration::from_millis(200));
        let junk = random_bytes(64 + seed as usize * 97, 1000 + seed);
        c.send_raw(&junk);
        while let Incoming::Frame(r) = c.next() {
            assert!(matches!(r, Response::Error { .. }), "{r:?}");
        }
        drop(c);
        assert_served(&mut t, &mut good);
    }

    // Framed junk (intact lengths, random ids and payloads): exactly one
    // answer per frame, in order, and the session survives, before and
    // after hello. Id 1 (Hello) is left out: a random version closes.
    for seed in 0..10u64 {
        let mut c = Client::connect(t.addr);
        for helloed in [false, true] {
            let mut bytes = Vec::new();
            let count = 200;
            let mut rand =
                random_bytes(count * 64, 2000 + seed * 2 + u64::from(helloed)).into_iter();
            for _ in 0..count {
                let mut id = rand.next().unwrap();
                if id == 1 {
                    id = 0x42;
                }
                let len = (rand.next().unwrap() % 40) as usize;
                let payload: Vec<u8> = rand.by_ref().take(len).collect();
                bytes.extend_from_slice(&frame(id, &payload));
            }
            c.send_raw(&bytes);
            for i in 0..count {
                let r = c.recv();
                if !helloed {
                    match r {
                        Response::Error { code, .. } => assert!(
                            [2, 6, 9].contains(&code.0),
                            "frame {i}: unexpected error {code}"
                        ),
                        other => panic!("frame {i} before hello: {other:?}"),
                    }
                }
            }
            if !helloed {
                c.hello(peer_id(100 + seed), 7100);
            }
        }
        assert_eq!(c.list(0, 10, "good").total, 1);
        assert_served(&mut t, &mut good);
    }
}

#[test]
fn hostile_frame_length_4gib() {
    let mut t = tracker(&[]);
    let mut good = session(t.addr, 1);
    for (helloed, length) in [
        (false, u32::MAX),
        (true, u32::MAX),
        (true, MAX_TRACKER_FRAME + 1),
    ] {
        let mut c = Client::connect(t.addr);
        if helloed {
            c.hello(peer_id(2), 7002);
        }
        let mut bytes = length.to_be_bytes().to_vec();
        bytes.push(0x04);
        c.send_raw(&bytes);
        let msg = c.expect_error(ErrorCode::FRAME_TOO_LARGE);
        assert!(msg.contains(&length.to_string()), "{msg}");
        c.expect_eof();
        assert_served(&mut t, &mut good);
    }
}

#[test]
fn hostile_half_frame_then_silence_hits_idle_timeout() {
    let mut t = tracker(&["--idle-timeout", "2"]);
    let mut good = Client::connect(t.addr);
    assert_eq!(
        good.hello(peer_id(1), 7001),
        2,
        "Welcome carries the timeout"
    );

    let mut bytes = Vec::new();
    hello(peer_id(2), 7002).encode(&mut bytes);
    let mut half = session(t.addr, 2);
    half.send_raw(&bytes[..bytes.len() / 2]);
    let silent = Client::connect(t.addr); // never says anything
    let start = Instant::now();

    struct Watch {
        name: &'static str,
        c: Client,
        error_at: Option<Duration>,
        closed: bool,
    }
    let mut watched = [
        Watch {
            name: "half frame",
            c: half,
            error_at: None,
            closed: false,
        },
        Watch {
            name: "silent",
            c: silent,
            error_at: None,
            closed: false,
        },
    ];
    for w in &mut watched {
        w.c.set_read_timeout(Duration::from_millis(100));
    }
    let deadline = start + Duration::from_secs(8);
    while watched.iter().any(|w| !w.closed) {
        assert!(Instant::now() < deadline, "idle sessions were not closed");
        // The well-behaved session is served all along (and stays alive
        // by asking).
        assert_served(&mut t, &mut good);
        for w in watched.iter_mut().filter(|w| !w.closed) {
            match w.c.next() {
                Incoming::Frame(Response::Error {
                    code: ErrorCode::IDLE_TIMEOUT,
                    ..
                }) if w.error_at.is_none() => w.error_at = Some(start.elapsed()),
                Incoming::TimedOut => {}
                Incoming::Eof | Incoming::Failed(_) if w.error_at.is_some() => w.closed = true,
                other => panic!("{}: unexpected {other:?}", w.name),
            }
        }
    }
    for w in &watched {
        let at = w.error_at.unwrap();
        assert!(
            at >= Duration::from_millis(1500) && at <= Duration::from_secs(6),
            "{}: idle error after {at:?}, timeout 2 s",
            w.name
        );
    }
    assert_served(&mut t, &mut good);
}

#[test]
fn hostile_unknown_message_id() {
    let mut t = tracker(&[]);
    let mut good = session(t.addr, 1);
    let mut c = Client::connect(t.addr);
    // Before hello: error 6, and the session continues.
    c.send_raw(&frame(0x08, &[]));
    let msg = c.expect_error(ErrorCode::UNKNOWN_MESSAGE);
    assert!(msg.contains("0x08"), "{msg}");
    c.hello(peer_id(2), 7002);
    // After hello: unknown ids (with or without payload, a response id)
    // each get error 6 in their place in the answer order.
    for id in [0x00, 0x08, 0x80, 0x81, 0xff] {
        let mut bytes = Vec::new();
        Request::List {
            offset: 0,
            limit: 1,
            filter: String::new(),
        }
        .encode(&mut bytes);
        bytes.extend_from_slice(&frame(id, b"payload"));
        Request::GetMeta(Lookup::Name("x".into())).encode(&mut bytes);
        c.send_raw(&bytes);
        assert!(matches!(c.recv(), Response::ListPage { .. }));
        let msg = c.expect_error(ErrorCode::UNKNOWN_MESSAGE);
        assert!(msg.contains(&format!("0x{id:02x}")), "{msg}");
        c.expect_error(ErrorCode::FILE_NOT_FOUND);
        assert_served(&mut t, &mut good);
    }
    assert_served(&mut t, &mut c);
}

// ---------------------------------------------------------------- sessions

#[test]
fn session_drop_removes_the_peer_everywhere() {
    let t = tracker(&[]);
    let only_a = make_file("only-a.bin", 40_000, 40);
    let shared = make_file("shared.bin", 40_000, 41);
    let mut a = session(t.addr, 1);
    a.announce(&only_a, Pieces::All);
    a.announce(&shared, Pieces::Bitfield(bitfield(3, &[0])));
    let mut c = session(t.addr, 3);
    c.announce(&shared, Pieces::All);

    let mut b = session(t.addr, 2);
    assert_eq!(b.list(0, 10, "").total, 2);
    assert_eq!(b.get_peers(only_a.info_hash, 10, None).len(), 1);
    assert_eq!(b.get_peers(shared.info_hash, 10, None).len(), 2);

    drop(a); // the socket closes; nothing else is said
    let page = wait_for("A's session to end", Duration::from_secs(5), || {
        let page = b.list(0, 10, "");
        (page.total == 1).then_some(page)
    });
    assert_eq!(page.names(), vec!["shared.bin"]);
    assert_eq!((page.entries[0].peers, page.entries[0].seeders), (1, 1));
    let peers = b.get_peers(shared.info_hash, 10, None);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].peer_id, peer_id(3));
    assert_eq!(b.get_peers(shared.info_hash, 10, Some(0)).len(), 1);
    for r in [
        Request::GetMeta(Lookup::Hash(only_a.info_hash)),
        Request::GetMeta(Lookup::Name("only-a.bin".into())),
        Request::GetPeers {
            info_hash: only_a.info_hash,
            max: 10,
            piece: None,
        },
    ] {
        b.call_err(&r, ErrorCode::FILE_NOT_FOUND);
    }

    // An explicit Leave does the same for one file; C's session goes on.
    c.leave(shared.info_hash);
    assert_eq!(b.list(0, 10, "").total, 0);
    c.announce(&shared, Pieces::All);
    assert_eq!(b.list(0, 10, "").total, 1);
}

#[test]
fn pipelined_and_split_requests() {
    let t = tracker(&[]);
    let f = make_file("pipe.bin", 2 * PIECE as usize, 50);
    let mut c = Client::connect(t.addr);
    // Many requests in one write: one answer each, in order.
    let mut reqs = vec![hello(peer_id(1), 7001), announce_req(&f, Pieces::All)];
    for i in 0..50u32 {
        reqs.push(Request::KeepAlive);
        reqs.push(Request::Have {
            info_hash: f.info_hash,
            piece: i % 3, // 2 is out of range
        });
    }
    c.send_all(&reqs);
    assert!(matches!(c.recv(), Response::Welcome { .. }));
    assert_eq!(
        c.recv(),
        Response::Announced {
            info_hash: f.info_hash
        }
    );
    for i in 0..50 {
        match c.recv() {
            Response::Ack if i % 3 != 2 => {}
            Response::Error {
                code: ErrorCode::PIECE_OUT_OF_RANGE,
                ..
            } if i % 3 == 2 => {}
            other => panic!("answer {i}: {other:?}"),
        }
    }
    // One request dribbled a byte at a time: answered once complete.
    let mut bytes = Vec::new();
    Request::GetMeta(Lookup::Name("pipe.bin".into())).encode(&mut bytes);
    for b in &bytes {
        c.send_raw(std::slice::from_ref(b));
        thread::sleep(Duration::from_millis(1)); // pacing: separate segments
    }
    assert_eq!(c.recv(), Response::Meta { info: f.bencoded });
}

#[test]
fn pipelined_requests_with_large_answers_are_all_answered() {
    // Answers beyond the tracker's per-read output batch (1 MiB) must not
    // leave the remaining requests unread.
    let t = tracker(&[]);
    let n = 10_000u32; // a 200 KB info dict
    let info = Info::new(
        "big.bin",
        u64::from(n) * u64::from(PIECE),
        PIECE,
        random_bytes(n as usize * 20, 60),
    )
    .unwrap();
    let mut c = session(t.addr, 1);
    c.announce(&info, Pieces::All);
    let count = 40; // 8 MB of answers: past the 4 MiB high-water mark too
    let reqs = vec![Request::GetMeta(Lookup::Hash(info.info_hash)); count];
    c.send_all(&reqs);
    for i in 0..count {
        match c.recv() {
            Response::Meta { info: got } => assert!(got == info.bencoded, "answer {i}"),
            other => panic!("answer {i}: {other:?}"),
        }
    }
    assert_eq!(c.list(0, 1, "").total, 1);
}

#[test]
fn largest_announce_fits_the_frame_limit() {
    let t = tracker(&[]);
    let n = sta::limits::MAX_PIECES;
    let info = Info::new(
        "huge.img",
        u64::from(n) * u64::from(PIECE),
        PIECE,
        random_bytes(n as usize * 20, 70),
    )
    .unwrap();
    let mut bits = bitfield(n, &[0, n - 1]);
    bits[1000] = 0xff;
    let mut a = session(t.addr, 1);
    a.announce(&info, Pieces::Bitfield(bits.clone()));
    let mut b = session(t.addr, 2);
    assert_eq!(b.get_meta(Lookup::Hash(info.info_hash)), info.bencoded);
    let peers = b.get_peers(info.info_hash, 10, Some(8003));
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].pieces, Pieces::Bitfield(bits));
}

/// A client that sends its requests and then shuts down its write side
/// must still get every answer: the reactor flushes queued answers before
/// it closes on EOF.
#[test]
fn half_closed_client_still_gets_its_answers() {
    let t = tracker(&[]);
    for round in 0..20 {
        let mut c = Client::connect(t.addr);
        c.send_all(&[
            hello(peer_id(1), 7001),
            Request::List {
                offset: 0,
                limit: 1,
                filter: String::new(),
            },
        ]);
        c.shutdown_write();
        match c.next() {
            Incoming::Frame(Response::Welcome { .. }) => {}
            other => panic!("round {round}: expected Welcome, got {other:?}"),
        }
        assert!(matches!(c.recv(), Response::ListPage { .. }));
        c.expect_eof();
    }
}

#[test]
fn thousands_of_concurrent_sessions() {
    const WANTED: usize = 3000;
    // This process holds one socket per session and so does the tracker
    // (it inherits our limit); keep room for other tests and stdio.
    let limit = sta_kit::procfs::open_files_limit().unwrap_or(u64::MAX);
    let n = if limit >= WANTED as u64 + 500 {
        WANTED
    } else {
        let n = limit.saturating_sub(500) as usize;
        eprintln!(
            "open files limit is {limit}, below {} needed: testing {n} sessions instead of {WANTED}",
            WANTED + 500
        );
        n
    };
    assert!(
        n >= 200,
        "open files limit {limit} is too low for this test"
    );
    let start = Instant::now();
    let mut t = tracker(&[]);
    let port = |i: usize| 10_000 + i as u16;

    // Even sessions share one file (every fourth one seeds it, the others
    // hold pieces 0 and 1); odd sessions each announce a file of their own.
    let shared = make_file("shared.iso", 5 * PIECE as usize, 80);
    let unique = |i: usize| make_file(&format!("unique-{i:05}.bin"), 100 + i, i as u64);
    let shared_pieces = |i: usize| {
        if i.is_multiple_of(4) {
            Pieces::All
        } else {
            Pieces::Bitfield(bitfield(5, &[0, 1]))
        }
    };
    let mut sessions: Vec<Client> = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    // Batches keep the connections not yet accepted below the listen
    // backlog (128, mio's default): past it, SYNs are dropped and each
    // such connect waits a 1 s retransmission.
    for batch in all.chunks(100) {
        let mut opened = Vec::with_capacity(batch.len());
        for &i in batch {
            let mut c = Client::connect(t.addr);
            let (info, pieces) = if i.is_multiple_of(2) {
                (shared.clone(), shared_pieces(i))
            } else {
                (unique(i), Pieces::All)
            };
            c.send_all(&[
                hello(peer_id(i as u64), port(i)),
                announce_req(&info, pieces),
            ]);
            opened.push((c, info.info_hash));
        }
        for (c, hash) in &mut opened {
            assert!(matches!(c.recv(), Response::Welcome { .. }));
            assert_eq!(c.recv(), Response::Announced { info_hash: *hash });
        }
        sessions.extend(opened.into_iter().map(|(c, _)| c));
    }
    let opened_in = start.elapsed();
    let holders = (0..n).filter(|i| i.is_multiple_of(2)).count();
    let seeders = (0..n).filter(|i| i.is_multiple_of(4)).count();
    let uniques = n - holders;

    let mut q = session(t.addr, 999_999);
    let page = q.list(0, 10, "");
    assert_eq!(page.total as usize, 1 + uniques);
    let page = q.list(0, 10, "SHARED");
    assert_eq!(page.total, 1);
    let e = &page.entries[0];
    assert_eq!((e.peers as usize, e.seeders as usize), (holders, seeders));
    // Paging through every unique file sees each exactly once, in order.
    let mut names = Vec::new();
    let mut offset = 0;
    loop {
        let page = q.list(offset, 1000, "unique-");
        assert_eq!(page.total as usize, uniques);
        if page.entries.is_empty() {
            break;
        }
        offset += page.entries.len() as u32;
        names.extend(page.entries.into_iter().map(|e| e.name));
    }
    let want: Vec<String> = (0..n)
        .filter(|i| !i.is_multiple_of(2))
        .map(|i| format!("unique-{i:05}.bin"))
        .collect();
    assert_eq!(names, want);

    // GetPeers: a full answer of distinct, correct holders, sampled afresh.
    let check = |peers: &[PeerEntry]| -> BTreeSet<u16> {
        assert_eq!(peers.len(), holders.min(200));
        let mut ports = BTreeSet::new();
        for p in peers {
            let i = (p.addr.port() - 10_000) as usize;
            assert!(i < n && i.is_multiple_of(2), "{p:?} does not hold the file");
            assert_eq!(p.addr, local(port(i)));
            assert_eq!(p.peer_id, peer_id(i as u64));
            assert_eq!(p.pieces, shared_pieces(i));
            assert!(ports.insert(p.addr.port()), "{p:?} twice");
        }
        ports
    };
    let first = check(&q.get_peers(shared.info_hash, 500, None));
    let second = check(&q.get_peers(shared.info_hash, 500, None));
    if holders > 200 {
        assert_ne!(first, second, "two samples of 200 out of {holders}");
    }
    // Piece 4: only the seeders have it.
    let peers = q.get_peers(shared.info_hash, 200, Some(4));
    assert_eq!(peers.len(), seeders.min(200));
    assert!(peers.iter().all(|p| p.pieces == Pieces::All));
    // One unique file: its one holder.
    let peers = q.get_peers(unique(n - 1 - n % 2).info_hash, 10, None);
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].addr, local(port(n - 1 - n % 2)));

    // Close them all: the catalog empties.
    drop(sessions);
    wait_for("every session to be gone", Duration::from_secs(10), || {
        (q.list(0, 0, "").total == 0).then_some(())
    });
    t.assert_running();
    let elapsed = start.elapsed();
    eprintln!("{n} sessions: opened in {opened_in:?}, whole test {elapsed:?}");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn sigterm_exits_zero_and_closes_sessions() {
    let mut t = tracker(&[]);
    let mut a = session(t.addr, 1);
    a.announce(&make_file("term.bin", 100, 90), Pieces::All);
    let mut b = session(t.addr, 2);
    let mut fresh = Client::connect(t.addr); // no hello yet
    assert_served(&mut t, &mut b);
    let status = t.terminate();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    for c in [&mut a, &mut b, &mut fresh] {
        c.expect_eof();
    }
    let log = t.log();
    assert!(!log.contains("panicked"), "{log}");
}
