//! End to end: the real `sta-trackerd` binary on 127.0.0.1 (port 0), real
//! TCP sessions speaking the tracker protocol through the crate's codec.
//! Every read has a timeout and every wait a deadline, so a broken tracker
//! fails these tests instead of hanging them. The protocol's rules are
//! unit-tested in `src/tracker/core_*tests.rs`, without sockets; these are
//! the cases that need the binary: a whole scenario, hostile bytes,
//! timeouts, limits on connections, pipelining, many sessions, signals.

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
        files: 1,
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

// ---------------------------------------------------------------- closing

/// The rule is the core's (unit-tested there); this is the reactor really
/// closing the socket when the core says so.
#[test]
fn unsupported_version_closes_the_session() {
    let mut t = tracker(&[]);
    let mut good = session(t.addr, 1);
    let mut c = Client::connect(t.addr);
    let bad = Request::Hello {
        version: 2,
        peer_id: peer_id(2),
        listen_port: 7000,
    };
    c.call_err(&bad, ErrorCode::UNSUPPORTED_VERSION);
    c.expect_eof();
    assert_served(&mut t, &mut good);
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
    c.send_raw(&frame(0x0a, &[]));
    let msg = c.expect_error(ErrorCode::UNKNOWN_MESSAGE);
    assert!(msg.contains("0x0a"), "{msg}");
    c.hello(peer_id(2), 7002);
    // After hello: unknown ids (with or without payload, a response id)
    // each get error 6 in their place in the answer order.
    for id in [0x00, 0x0a, 0x80, 0x81, 0xff] {
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
