//! The tracker core's lookups (get-meta, get-peers, list), leave, its
//! limits and the end of a session, with no socket (helpers in
//! `core_tests.rs`).

use super::tests::*;
use super::*;

// --------------------------------------------------------------- get-meta

#[test]
fn get_meta_by_hash_and_by_exact_name() {
    let mut h = Harness::new();
    let f = file("Exact.bin", 2, 9);
    h.join(1);
    h.join(2);
    h.announce(1, &f, Pieces::All);
    assert_eq!(h.meta(2, Lookup::Hash(f.info_hash)), f.bencoded);
    assert_eq!(h.meta(2, Lookup::Name("Exact.bin".into())), f.bencoded);
    for name in ["exact.bin", "Exact", "Exact.bin ", ""] {
        let msg = h.refused(2, by_name(name), ErrorCode::FILE_NOT_FOUND);
        assert_eq!(msg, format!("no file named '{name}'"));
    }
    let unknown = [0x42; 20];
    let req = Request::GetMeta(Lookup::Hash(unknown));
    let msg = h.refused(2, req, ErrorCode::FILE_NOT_FOUND);
    assert_eq!(msg, format!("no file with info hash {}", to_hex(&unknown)));
}

#[test]
fn get_meta_by_an_ambiguous_name_lists_every_hash() {
    let mut h = Harness::new();
    let f1 = file("same.bin", 2, 10);
    let f2 = file("same.bin", 2, 11);
    for conn in 1..=4 {
        h.join(conn);
    }
    // Two holders of one file are not ambiguous.
    h.announce(1, &f1, Pieces::All);
    h.announce(2, &f1, Pieces::All);
    assert_eq!(h.meta(4, Lookup::Name("same.bin".into())), f1.bencoded);
    h.announce(3, &f2, Pieces::All);
    let mut hashes = [to_hex(&f1.info_hash), to_hex(&f2.info_hash)];
    hashes.sort();
    let msg = h.refused(4, by_name("same.bin"), ErrorCode::AMBIGUOUS_NAME);
    let want = format!(
        "'same.bin' names 2 files: {}, {}; ask by info hash",
        hashes[0], hashes[1]
    );
    assert_eq!(msg, want);
    // Each is still there by hash; once one goes, the name is unique.
    assert_eq!(h.meta(4, Lookup::Hash(f2.info_hash)), f2.bencoded);
    h.leave(3, f2.info_hash);
    assert_eq!(h.meta(4, Lookup::Name("same.bin".into())), f1.bencoded);
}

// -------------------------------------------------------------- get-peers

#[test]
fn get_peers_never_gives_the_asker_nor_a_session_without_a_port() {
    let mut h = Harness::new();
    let f = file("who.bin", 2, 12);
    let hash = f.info_hash;
    h.join(1);
    h.join_on(2, 0); // downloads, accepts no connections
    h.join(3);
    for conn in 1..=3 {
        h.announce(conn, &f, Pieces::All);
    }
    assert_eq!(h.peers(1, hash, 10, None), vec![entry(3, Pieces::All)]);
    assert_eq!(h.peers(3, hash, 10, Some(1)), vec![entry(1, Pieces::All)]);
    let both = vec![entry(1, Pieces::All), entry(3, Pieces::All)];
    assert_eq!(h.peers(2, hash, 10, None), both);
    // The session without a port is not eligible, so it takes no slot:
    // one peer asked, the one eligible peer given, every time.
    for round in 0..50 {
        let got = h.peers(1, hash, 1, None);
        assert_eq!(got, vec![entry(3, Pieces::All)], "round {round}");
    }
}

#[test]
fn get_peers_answers_at_most_max_and_at_most_the_cap() {
    let mut h = Harness::new();
    let f = file("crowd.bin", 1, 13);
    let hash = f.info_hash;
    for conn in 1..=250 {
        h.join(conn);
        h.announce(conn, &f, Pieces::All);
    }
    let sample = |h: &mut Harness, max| -> Vec<u16> {
        let peers = h.peers(1, hash, max, None);
        let ports: Vec<u16> = peers.iter().map(|p| p.addr.port()).collect();
        for p in &peers {
            let conn = ConnId::from(p.addr.port() - 6000);
            assert_eq!(*p, entry(conn, Pieces::All));
        }
        assert!(!ports.contains(&port(1)), "the asker is not its own peer");
        ports
    };
    let first = sample(&mut h, 500);
    assert_eq!(first.len(), 200, "MAX_PEERS_PER_ANSWER");
    assert!(first.windows(2).all(|w| w[0] < w[1]), "distinct peers");
    assert_ne!(first, sample(&mut h, 500), "drawn afresh");
    assert_eq!(sample(&mut h, 10).len(), 10);
    assert_eq!(sample(&mut h, 0).len(), 0);
    // An operator's lower cap wins over what the request asks.
    let mut small = Harness::with(Config {
        max_peers_per_answer: 3,
        ..Config::default()
    });
    for conn in 1..=5 {
        small.join(conn);
        small.announce(conn, &f, Pieces::All);
    }
    assert_eq!(sample(&mut small, 10).len(), 3);
}

#[test]
fn get_peers_with_a_piece_gives_only_its_holders() {
    let mut h = Harness::new();
    let f = file("filter.bin", 10, 14);
    let hash = f.info_hash;
    for conn in 1..=4 {
        h.join(conn);
        h.announce(conn, &f, Pieces::Bitfield(bits(10, &[conn as u32 - 1])));
    }
    h.join(5);
    h.announce(5, &f, Pieces::All);
    h.join(6);
    let want = vec![
        entry(1, Pieces::Bitfield(bits(10, &[0]))),
        entry(5, Pieces::All),
    ];
    assert_eq!(h.peers(6, hash, 10, Some(0)), want);
    assert_eq!(h.peers(6, hash, 10, Some(9)), vec![entry(5, Pieces::All)]);
    assert_eq!(h.peers(6, hash, 10, None).len(), 5, "no filter: everyone");
    let hex = to_hex(&hash);
    for piece in [10, u32::MAX] {
        let req = get_peers(hash, 10, Some(piece));
        let msg = h.refused(6, req, ErrorCode::PIECE_OUT_OF_RANGE);
        assert_eq!(
            msg,
            format!("piece {piece} is out of range: {hex} has 10 pieces")
        );
    }
    for piece in [None, Some(0)] {
        h.refused(
            6,
            get_peers([0x42; 20], 10, piece),
            ErrorCode::FILE_NOT_FOUND,
        );
    }
}

// ------------------------------------------------------------------- list

#[test]
fn list_orders_pages_and_filters_the_catalog() {
    let mut h = Harness::new();
    h.join(1);
    let names = [
        "gamma.txt",
        "beta.ISO",
        "Alpha.iso",
        "epsilon.bin",
        "delta.iso",
    ];
    for (i, name) in names.iter().enumerate() {
        h.announce(1, &file(name, 1 + i as u32, 20 + i as u8), Pieces::All);
    }
    // By name, bytewise ("A" sorts before "b").
    let all = [
        "Alpha.iso",
        "beta.ISO",
        "delta.iso",
        "epsilon.bin",
        "gamma.txt",
    ];
    for (offset, limit, want) in [
        (0, 100, &all[..]),
        (0, 2, &all[0..2]),
        (2, 2, &all[2..4]),
        (4, 2, &all[4..5]),
        (1, 3, &all[1..4]),
        (5, 2, &[][..]),
        (u32::MAX, 10, &[][..]),
        (0, 0, &[][..]),
        (0, MAX_LIST_PAGE, &all[..]),
    ] {
        let page = h.list(1, offset, limit, "");
        assert_eq!(
            (page.total, page.names()),
            (5, want.to_vec()),
            "{offset} {limit}"
        );
    }
    // A case-insensitive substring; total counts every match.
    let isos = vec!["Alpha.iso", "beta.ISO", "delta.iso"];
    for filter in ["iso", "ISO", ".iSo"] {
        let page = h.list(1, 0, 100, filter);
        assert_eq!((page.total, page.names()), (3, isos.clone()), "{filter}");
    }
    let page = h.list(1, 1, 1, "ISO");
    assert_eq!((page.total, page.names()), (3, vec!["beta.ISO"]));
    assert_eq!(h.list(1, 0, 100, "zzz").total, 0);
    let gamma = &h.list(1, 0, 1, "GAMMA").entries[0];
    assert_eq!(
        (gamma.length, gamma.piece_length),
        (u64::from(PIECE), PIECE)
    );
}

#[test]
fn list_refuses_a_page_above_the_maximum() {
    let mut h = Harness::new();
    h.join(1);
    let msg = h.refused(1, list(0, 1001, ""), ErrorCode::INVALID_PARAMETERS);
    assert_eq!(msg, "a page holds at most 1000 entries, 1001 asked");
    assert_eq!(h.list(1, 0, MAX_LIST_PAGE, "").total, 0);
}

// ------------------------------------------------------------------ leave

#[test]
fn leave_drops_one_file_and_its_last_holder_takes_it_away() {
    let mut h = Harness::new();
    let (f, g) = (file("f.bin", 2, 15), file("g.bin", 2, 16));
    h.join(1);
    h.join(2);
    h.announce(1, &f, Pieces::All);
    h.announce(1, &g, Pieces::All);
    h.announce(2, &g, Pieces::All);
    let msg = h.refused(2, leave(f.info_hash), ErrorCode::FILE_NOT_FOUND);
    assert_eq!(
        msg,
        format!("no file with info hash {}", to_hex(&f.info_hash))
    );
    h.leave(1, f.info_hash);
    h.refused(1, leave(f.info_hash), ErrorCode::FILE_NOT_FOUND);
    for req in [
        Request::GetMeta(Lookup::Hash(f.info_hash)),
        by_name("f.bin"),
        get_peers(f.info_hash, 10, None),
        have(f.info_hash, 0),
    ] {
        h.refused(2, req, ErrorCode::FILE_NOT_FOUND);
    }
    // g stays while session 2 holds it; session 1 keeps its session.
    h.leave(1, g.info_hash);
    assert_eq!(h.list(2, 0, 10, "").names(), vec!["g.bin"]);
    assert_eq!(h.counts(2, "g.bin"), (1, 1));
    h.announce(1, &f, Pieces::All);
    assert_eq!(h.list(2, 0, 10, "").total, 2);
}

// ----------------------------------------------------------------- limits

/// Sessions 1 and 2 under `config`, of three files f0.bin, f1.bin and
/// f2.bin; session 1 holds the first two.
fn two_of_three_held(config: Config) -> (Harness, Vec<Info>) {
    let mut h = Harness::with(config);
    let files: Vec<Info> = (0..3)
        .map(|i| file(&format!("f{i}.bin"), 1, 30 + i))
        .collect();
    h.join(1);
    h.join(2);
    h.announce(1, &files[0], Pieces::All);
    h.announce(1, &files[1], Pieces::All);
    (h, files)
}

#[test]
fn a_session_holds_at_most_max_files_per_peer() {
    let (mut h, files) = two_of_three_held(Config {
        max_files_per_peer: 2,
        ..Config::default()
    });
    let msg = h.refused(
        1,
        announce(&files[2], Pieces::All),
        ErrorCode::LIMIT_REACHED,
    );
    assert_eq!(msg, "a session may hold at most 2 files");
    // Re-announcing a held file is no new file; the limit is per session.
    h.announce(1, &files[0], Pieces::Bitfield(vec![0]));
    h.announce(2, &files[2], Pieces::All);
    // Leaving frees a slot.
    h.leave(1, files[0].info_hash);
    h.announce(1, &files[2], Pieces::All);
    assert_eq!(h.counts(2, "f2"), (2, 2));
}

#[test]
fn the_catalog_holds_at_most_max_files() {
    let (mut h, files) = two_of_three_held(Config {
        max_files: 2,
        ..Config::default()
    });
    let msg = h.refused(
        2,
        announce(&files[2], Pieces::All),
        ErrorCode::LIMIT_REACHED,
    );
    assert_eq!(msg, "the catalog is full (2 files)");
    // A known file is no new file; a file that goes makes room.
    h.announce(2, &files[1], Pieces::All);
    h.leave(1, files[0].info_hash);
    h.announce(2, &files[2], Pieces::All);
    assert_eq!(h.list(2, 0, 10, "").names(), vec!["f1.bin", "f2.bin"]);
}

// ---------------------------------------------------------------- session

#[test]
fn disconnect_removes_the_session_everywhere() {
    let mut h = Harness::new();
    let only_a = file("only-a.bin", 3, 50);
    let shared = file("shared.bin", 3, 51);
    for conn in 1..=3 {
        h.join(conn);
    }
    h.announce(1, &only_a, Pieces::All);
    h.announce(1, &shared, Pieces::Bitfield(bits(3, &[0])));
    h.announce(3, &shared, Pieces::All);
    assert_eq!(h.t.sessions(), 3);
    assert_eq!(h.counts(2, "shared"), (2, 1));

    h.t.disconnect(1);
    assert_eq!(h.t.sessions(), 2);
    assert_eq!(h.list(2, 0, 10, "").names(), vec!["shared.bin"]);
    assert_eq!(h.counts(2, "shared"), (1, 1));
    let seeder = vec![entry(3, Pieces::All)];
    assert_eq!(h.peers(2, shared.info_hash, 10, None), seeder);
    assert_eq!(h.peers(2, shared.info_hash, 10, Some(0)), seeder);
    for req in [
        Request::GetMeta(Lookup::Hash(only_a.info_hash)),
        by_name("only-a.bin"),
        get_peers(only_a.info_hash, 10, None),
    ] {
        h.refused(2, req, ErrorCode::FILE_NOT_FOUND);
    }
    // The id is free; a session that reuses it starts from nothing.
    h.t.connect(1, ip(1));
    h.refused(1, list(0, 1, ""), ErrorCode::HELLO_REQUIRED);
    h.t.disconnect(1);
    h.t.disconnect(1); // twice is harmless
    h.t.disconnect(3);
    assert!(h.t.catalog().is_empty());
    assert_eq!(h.t.sessions(), 1);
}
