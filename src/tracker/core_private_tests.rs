//! Private files (BEP 27 `private=1`): seen and served only by sessions
//! authenticated by TLS; hidden from the others without leaking that they
//! exist; refused to BitTorrent announces.

use super::tests::*;
use super::*;

/// Session 1 is authenticated and holds a private file and a public one;
/// session 2 is plain. Returns (private, public).
fn two_files(h: &mut Harness) -> (Info, Info) {
    h.join(1);
    h.t.authenticate(1);
    h.join(2);
    let private = file("secret.img", 2, 1).with_private().unwrap();
    let public = file("public.img", 2, 2);
    h.announce(1, &private, Pieces::All);
    h.announce(1, &public, Pieces::All);
    (private, public)
}

#[test]
fn a_private_file_is_listed_and_served_only_to_authenticated_sessions() {
    let mut h = Harness::new();
    let (private, public) = two_files(&mut h);
    assert!(h.t.is_private(&private.info_hash));
    assert!(!h.t.is_private(&public.info_hash));

    assert_eq!(h.list(1, 0, 10, "").total, 2);
    let plain = h.list(2, 0, 10, "");
    assert_eq!(plain.total, 1, "hidden, and not counted");
    assert_eq!(plain.names(), ["public.img"]);

    assert_eq!(h.meta(1, Lookup::Hash(private.info_hash)), private.bencoded);
    let by_hash = h.refused(
        2,
        Request::GetMeta(Lookup::Hash(private.info_hash)),
        ErrorCode::FILE_NOT_FOUND,
    );
    assert!(by_hash.contains("no file with info hash"), "{by_hash}");
    let by_name = h.refused(2, by_name("secret.img"), ErrorCode::FILE_NOT_FOUND);
    assert!(by_name.contains("no file named"), "{by_name}");
    h.refused(
        2,
        get_peers(private.info_hash, 10, None),
        ErrorCode::FILE_NOT_FOUND,
    );
    // The plain session is still served the public file.
    assert_eq!(h.meta(2, Lookup::Hash(public.info_hash)), public.bencoded);
}

#[test]
fn a_plain_session_cannot_announce_a_private_file() {
    let mut h = Harness::new();
    let (private, _) = two_files(&mut h);
    let msg = h.refused(2, announce(&private, Pieces::All), ErrorCode::PRIVATE_FILE);
    assert!(msg.contains("private file (BEP 27)"), "{msg}");
    let other = file("new.img", 1, 9).with_private().unwrap();
    h.refused(2, announce(&other, Pieces::All), ErrorCode::PRIVATE_FILE);
    assert!(!h.t.is_private(&other.info_hash));
}

#[test]
fn a_name_shared_by_a_private_and_a_public_file_is_not_ambiguous_to_plain_sessions() {
    let mut h = Harness::new();
    h.join(1);
    h.t.authenticate(1);
    h.join(2);
    let public = file("same.img", 2, 3);
    let private = public.with_private().unwrap();
    h.announce(1, &public, Pieces::All);
    h.announce(1, &private, Pieces::All);
    assert_eq!(h.meta(2, by_name_lookup("same.img")), public.bencoded);
    h.refused(1, by_name("same.img"), ErrorCode::AMBIGUOUS_NAME);
}

fn by_name_lookup(name: &str) -> Lookup {
    Lookup::Name(name.into())
}

#[test]
fn bittorrent_announces_and_scrapes_of_a_private_file_are_refused() {
    let mut h = Harness::new();
    let (private, public) = two_files(&mut h);
    let now = Instant::now();
    let mut peers = Vec::new();
    let a = |hash| BtAnnounce {
        info_hash: hash,
        peer_id: [0xb0; 20],
        addr: SocketAddr::from(([192, 0, 2, 1], 10_000)),
        left: 1000,
        event: Event::Started,
        numwant: None,
        same_family: false,
    };
    let e =
        h.t.bt_announce(&a(private.info_hash), now, &mut peers, &mut Vec::new());
    assert_eq!(e, Err(PRIVATE_BT_MESSAGE.to_owned()));
    assert!(peers.is_empty());
    assert_eq!(h.t.scrape(&private.info_hash), ScrapeStats::default());
    assert!(
        h.t.bt_announce(&a(public.info_hash), now, &mut peers, &mut Vec::new())
            .is_ok()
    );
    assert_eq!(peers.len(), 1, "session 1, which holds the public file");
}

#[test]
fn a_private_file_is_forgotten_when_it_leaves_the_catalog() {
    let mut h = Harness::new();
    let (private, _) = two_files(&mut h);
    h.leave(1, private.info_hash);
    assert!(!h.t.is_private(&private.info_hash));
    h.announce(1, &private, Pieces::All);
    assert!(h.t.is_private(&private.info_hash));
    h.t.disconnect(1);
    assert!(!h.t.is_private(&private.info_hash));
}

#[test]
fn a_bittorrent_announce_of_a_private_file_pushes_no_dial() {
    let mut h = Harness::new();
    let (private, _) = two_files(&mut h);
    assert_eq!(h.ask(1, Request::AcceptDials), Response::Ack);
    let mut dials = Vec::new();
    let a = BtAnnounce {
        info_hash: private.info_hash,
        peer_id: [0xb0; 20],
        addr: SocketAddr::from(([192, 0, 2, 1], 10_000)),
        left: 1000,
        event: Event::Started,
        numwant: None,
        same_family: false,
    };
    assert!(
        h.t.bt_announce(&a, Instant::now(), &mut Vec::new(), &mut dials)
            .is_err()
    );
    assert_eq!(dials, vec![]);
}
