//! The BitTorrent rules of the tracker core (spec/bittorrent.md): announce
//! events, numwant, expiry, swarms shared with STA sessions, limits and
//! connection ids, with no socket and an explicit clock.

use super::tests::*;
use super::*;
use crate::wire::tracker::{PeerEntry, Vouched};

/// BitTorrent client `n` at 192.0.2.1, port 10000 + `n`: a leecher
/// starting on `hash`.
fn client(hash: InfoHash, n: u16) -> BtAnnounce {
    BtAnnounce {
        info_hash: hash,
        peer_id: [0xb0 ^ n as u8; 20],
        addr: SocketAddr::from(([192, 0, 2, 1], 10_000 + n)),
        left: 1000,
        event: Event::Started,
        numwant: None,
        same_family: false,
    }
}

fn seeder(hash: InfoHash, n: u16) -> BtAnnounce {
    BtAnnounce {
        left: 0,
        ..client(hash, n)
    }
}

fn with_event(a: &BtAnnounce, event: Event) -> BtAnnounce {
    BtAnnounce { event, ..a.clone() }
}

fn reply(seeders: u32, leechers: u32) -> BtReply {
    BtReply {
        interval: 60,
        seeders,
        leechers,
    }
}

fn stats(seeders: u32, completed: u32, leechers: u32) -> ScrapeStats {
    ScrapeStats {
        seeders,
        completed,
        leechers,
    }
}

const H: InfoHash = [0x77; 20];

impl Harness {
    /// A BitTorrent announce that succeeds: its counts, and its peers sorted.
    fn bt(&mut self, a: &BtAnnounce, now: Instant) -> (BtReply, Vec<SocketAddr>) {
        let mut peers = Vec::new();
        let r = self
            .t
            .bt_announce(a, now, &mut peers, &mut Vec::new())
            .unwrap();
        peers.sort();
        (r, peers)
    }

    fn bt_refused(&mut self, a: &BtAnnounce, now: Instant) -> String {
        let mut peers = vec![a.addr];
        let message = self
            .t
            .bt_announce(a, now, &mut peers, &mut Vec::new())
            .unwrap_err();
        assert_eq!(peers, vec![], "a refusal gives no peers");
        message
    }
}

#[test]
fn bt_announce_joins_refreshes_and_never_gives_the_announcer() {
    let mut h = Harness::new();
    let now = Instant::now();
    let (a, b) = (client(H, 1), seeder(H, 2));
    assert_eq!(h.bt(&a, now), (reply(0, 1), vec![]));
    assert_eq!(h.bt(&b, now), (reply(1, 1), vec![a.addr]));
    // The same address again replaces its entry: no new peer.
    let again = with_event(&a, Event::None);
    assert_eq!(h.bt(&again, now), (reply(1, 1), vec![b.addr]));
    let done = BtAnnounce { left: 0, ..again };
    assert_eq!(h.bt(&done, now), (reply(2, 0), vec![b.addr]));
    assert_eq!(h.t.scrape(&H), stats(2, 0, 0));
    assert_eq!(h.t.swarms().peers(), 2);
}

#[test]
fn bt_stopped_leaves_at_once_and_port_zero_may_only_stop() {
    let mut h = Harness::new();
    let now = Instant::now();
    let (a, b) = (client(H, 1), seeder(H, 2));
    h.bt(&a, now);
    h.bt(&b, now);
    assert_eq!(
        h.bt(&with_event(&a, Event::Stopped), now),
        (reply(1, 0), vec![])
    );
    assert_eq!(h.t.scrape(&H), stats(1, 0, 0));
    let mut zero = client(H, 3);
    zero.addr.set_port(0);
    let msg = h.bt_refused(&zero, now);
    assert_eq!(msg, "port 0 is not a port peers can connect to");
    let stop_zero = with_event(&zero, Event::Stopped);
    assert_eq!(h.bt(&stop_zero, now), (reply(1, 0), vec![]));
    // Stopping an unknown peer is harmless; the last one takes the swarm.
    h.bt(&with_event(&a, Event::Stopped), now);
    h.bt(&with_event(&b, Event::Stopped), now);
    assert!(h.t.swarms().get(&H).is_none());
    assert_eq!(h.t.scrape(&H), stats(0, 0, 0));
}

#[test]
fn bt_completed_counts_each_download_once_while_the_swarm_lives() {
    let mut h = Harness::new();
    let now = Instant::now();
    let a = client(H, 1);
    h.bt(&a, now);
    let completed = BtAnnounce {
        left: 0,
        ..with_event(&a, Event::Completed)
    };
    h.bt(&completed, now);
    h.bt(&completed, now); // a seeder already: not a second download
    h.bt(&with_event(&seeder(H, 2), Event::Completed), now);
    assert_eq!(h.t.scrape(&H), stats(2, 2, 0));
    for n in [1, 2] {
        h.bt(&with_event(&client(H, n), Event::Stopped), now);
    }
    h.bt(&a, now);
    assert_eq!(h.t.scrape(&H), stats(0, 0, 1), "the count restarts");
}

#[test]
fn bt_numwant_defaults_to_50_and_is_capped() {
    let mut h = Harness::new();
    let now = Instant::now();
    for n in 1..=260 {
        h.bt(&client(H, n), now);
    }
    let asking = client(H, 0);
    for (numwant, want) in [(None, 50), (Some(10), 10), (Some(1000), 200), (Some(0), 0)] {
        let (r, peers) = h.bt(
            &BtAnnounce {
                numwant,
                ..asking.clone()
            },
            now,
        );
        assert_eq!(r, reply(0, 261));
        assert_eq!(peers.len(), want, "numwant {numwant:?}");
        assert!(peers.windows(2).all(|w| w[0] < w[1]), "distinct peers");
        assert!(!peers.contains(&asking.addr));
    }
    let mut small = Harness::with(Config {
        max_peers_per_answer: 3,
        ..Config::default()
    });
    for n in 1..=5 {
        small.bt(&client(H, n), now);
    }
    assert_eq!(small.bt(&asking, now).1.len(), 3);
}

#[test]
fn bt_same_family_gives_only_peers_of_the_announcer_family() {
    let mut h = Harness::new();
    let now = Instant::now();
    let v4 = client(H, 1);
    let v6 = BtAnnounce {
        addr: "[2001:db8::1]:6881".parse().unwrap(),
        ..client(H, 2)
    };
    h.bt(&v4, now);
    h.bt(&v6, now);
    let asking = client(H, 3);
    assert_eq!(h.bt(&asking, now).1, vec![v4.addr, v6.addr]);
    let udp = BtAnnounce {
        same_family: true,
        ..asking
    };
    assert_eq!(h.bt(&udp, now).1, vec![v4.addr]);
}

#[test]
fn bt_peers_expire_twice_the_interval_after_their_last_announce() {
    let mut h = Harness::new();
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let (a, b) = (client(H, 1), client(H, 2));
    h.bt(&a, t0);
    h.bt(&b, t0);
    h.bt(&b, at(100)); // b refreshes
    assert_eq!(h.t.sweep(at(120) - Duration::from_millis(1)), 0);
    assert_eq!(h.t.sweep(at(120)), 1);
    assert_eq!(h.t.scrape(&H), stats(0, 0, 1));
    assert_eq!(h.t.sweep(at(219)), 0);
    assert_eq!(h.t.sweep(at(220)), 1);
    assert!(h.t.swarms().is_empty());
    // The interval is the operator's.
    let mut slow = Harness::with(Config {
        announce_interval_secs: 600,
        ..Config::default()
    });
    assert_eq!(slow.bt(&a, t0).0.interval, 600);
    assert_eq!(slow.t.sweep(at(1199)), 0);
    assert_eq!(slow.t.sweep(at(1200)), 1);
}

#[test]
fn sta_and_bt_peers_share_one_swarm() {
    let mut h = Harness::new();
    let now = Instant::now();
    let f = file("mixed.bin", 4, 60);
    let hash = f.info_hash;
    h.join(1);
    h.join_on(2, 0);
    h.join(3);
    h.announce(1, &f, Pieces::All);
    h.announce(2, &f, Pieces::Bitfield(bits(4, &[0])));
    let (s, l) = (seeder(hash, 1), client(hash, 2));
    h.bt(&s, now);
    // A BitTorrent leecher gets the STA holder that accepts connections.
    let sta_1 = SocketAddr::new(ip(1), port(1));
    assert_eq!(h.bt(&l, now), (reply(2, 2), vec![sta_1, s.addr]));
    assert_eq!(h.t.scrape(&hash), stats(2, 0, 2));
    // STA sees BitTorrent peers: a seeder as all pieces, a leecher as none.
    let bt_entry = |a: &BtAnnounce, pieces| PeerEntry {
        peer_id: a.peer_id,
        addr: a.addr,
        pieces,
    };
    let everyone = vec![
        entry(1, Pieces::All),
        bt_entry(&s, Pieces::All),
        bt_entry(&l, Pieces::Bitfield(vec![0])),
    ];
    assert_eq!(h.peers(3, hash, 10, None), everyone);
    let with_piece = vec![entry(1, Pieces::All), bt_entry(&s, Pieces::All)];
    assert_eq!(h.peers(3, hash, 10, Some(0)), with_piece);
    // STA counts in List are STA sessions only.
    assert_eq!(h.counts(3, "mixed"), (2, 1));
    // When the STA file goes, the BitTorrent swarm stays on its own.
    h.t.disconnect(1);
    h.t.disconnect(2);
    assert_eq!(h.t.scrape(&hash), stats(1, 0, 1));
    assert_eq!(h.bt(&l, now).1, vec![s.addr]);
}

#[test]
fn a_bt_only_swarm_is_invisible_to_sta() {
    let mut h = Harness::new();
    let now = Instant::now();
    h.bt(&seeder(H, 1), now);
    h.join(1);
    assert_eq!(h.list(1, 0, 10, "").total, 0);
    for req in [
        Request::GetMeta(Lookup::Hash(H)),
        get_peers(H, 10, None),
        have(H, 0),
        leave(H),
    ] {
        h.refused(1, req, ErrorCode::FILE_NOT_FOUND);
    }
    assert_eq!(h.t.scrape(&H), stats(1, 0, 0));
}

#[test]
fn bt_peers_are_limited_across_all_swarms() {
    let mut h = Harness::with(Config {
        max_bt_peers: 2,
        ..Config::default()
    });
    let now = Instant::now();
    h.bt(&client(H, 1), now);
    h.bt(&client([0x78; 20], 2), now);
    let full = "the tracker is full (2 BitTorrent peers)";
    assert_eq!(h.bt_refused(&client(H, 3), now), full);
    assert_eq!(h.bt_refused(&client([0x79; 20], 3), now), full);
    assert_eq!(h.t.swarms().len(), 2, "no empty swarm left behind");
    // Known peers still refresh.
    assert_eq!(h.bt(&seeder(H, 1), now).0, reply(1, 0));
}

#[test]
fn bt_swarms_count_against_max_files_with_the_catalog() {
    let mut h = Harness::with(Config {
        max_files: 2,
        ..Config::default()
    });
    let now = Instant::now();
    let (f, g) = (file("sta.bin", 1, 61), file("bt-first.bin", 1, 62));
    h.join(1);
    h.announce(1, &f, Pieces::All);
    h.bt(&client(g.info_hash, 1), now); // a BitTorrent-only swarm: 2 files
    let msg = h.bt_refused(&client(H, 2), now);
    assert_eq!(msg, "the tracker is full (2 files)");
    // A swarm of a file the catalog knows is no new file.
    assert_eq!(h.bt(&client(f.info_hash, 3), now).0, reply(1, 1));
    // Over STA too, the BitTorrent-only swarm holds a place...
    let new = announce(&file("new.bin", 1, 63), Pieces::All);
    let msg = h.refused(1, new, ErrorCode::LIMIT_REACHED);
    assert_eq!(msg, "the catalog is full (2 files)");
    // ... and announcing its file is no new file.
    h.announce(1, &g, Pieces::All);
    assert_eq!(h.list(1, 0, 10, "").total, 2);
}

#[test]
fn connection_ids_are_valid_in_their_window_and_the_next() {
    let mut h = Harness::new();
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    let from = SocketAddr::from(([192, 0, 2, 1], 6881));
    let other = SocketAddr::from(([192, 0, 2, 1], 6882));
    let id = h.t.connection_id(from, t0);
    assert_eq!(h.t.connection_id(from, at(59)), id, "one id per window");
    assert_ne!(h.t.connection_id(from, at(60)), id);
    assert_ne!(h.t.connection_id(other, t0), id);
    for secs in [0, 59, 60, 119] {
        assert!(
            h.t.connection_id_valid(id, from, at(secs)),
            "after {secs} s"
        );
    }
    assert!(!h.t.connection_id_valid(id, from, at(120)));
    assert!(
        !h.t.connection_id_valid(id, other, t0),
        "ids are per address"
    );
    assert!(!h.t.connection_id_valid(id ^ 1, from, t0));
    // An id of the second window lives until the end of the third.
    let late = h.t.connection_id(from, at(119));
    assert!(h.t.connection_id_valid(late, from, at(179)));
    assert!(!h.t.connection_id_valid(late, from, at(180)));
    // Another tracker (another key) does not know this one's ids.
    let mut fresh = Harness::new();
    assert!(!fresh.t.connection_id_valid(id, from, t0));
}

fn vouch(hash: InfoHash, peers: &[(&BtAnnounce, bool)]) -> Request {
    Request::Vouch {
        info_hash: hash,
        peers: peers
            .iter()
            .map(|(a, seeder)| Vouched {
                peer_id: a.peer_id,
                addr: a.addr,
                seeder: *seeder,
            })
            .collect(),
    }
}

#[test]
fn vouched_peers_reach_sta_sessions_and_die_with_the_voucher() {
    let mut h = Harness::new();
    let now = Instant::now();
    let f = file("vouched.bin", 4, 61);
    let hash = f.info_hash;
    for c in 1..=3 {
        h.join(c);
    }
    h.announce(1, &f, Pieces::Bitfield(bits(4, &[])));
    h.announce(2, &f, Pieces::Bitfield(bits(4, &[])));
    // Session 1 is connected to two BitTorrent peers another tracker knows.
    let (s, l) = (seeder(hash, 1), client(hash, 2));
    assert_eq!(
        h.ask(1, vouch(hash, &[(&s, true), (&l, false)])),
        Response::Ack
    );
    let vouched = |a: &BtAnnounce, pieces| PeerEntry {
        peer_id: a.peer_id,
        addr: a.addr,
        pieces,
    };
    let bt_s = vouched(&s, Pieces::All);
    let bt_l = vouched(&l, Pieces::Bitfield(vec![0]));
    assert_eq!(
        h.peers(2, hash, 10, None),
        vec![
            entry(1, Pieces::Bitfield(vec![0])),
            bt_s.clone(),
            bt_l.clone()
        ]
    );
    assert_eq!(h.peers(2, hash, 10, Some(1)), vec![bt_s.clone()]);
    // Not given back to the voucher; never given to BitTorrent clients.
    assert_eq!(
        h.peers(1, hash, 10, None),
        vec![entry(2, Pieces::Bitfield(vec![0]))]
    );
    let other = client(hash, 9);
    assert!(!h.bt(&other, now).1.contains(&s.addr));
    // A peer that announces here itself is not given twice.
    h.bt(&s, now);
    assert_eq!(h.peers(2, hash, 10, None).len(), 4, "1, s, l and client 9");
    // A new vouch replaces the last; leaving or ending the session drops it.
    assert_eq!(h.ask(1, vouch(hash, &[(&l, false)])), Response::Ack);
    h.bt(&with_event(&s, Event::Stopped), now);
    h.bt(&with_event(&other, Event::Stopped), now);
    assert_eq!(
        h.peers(2, hash, 10, None),
        vec![entry(1, Pieces::Bitfield(vec![0])), bt_l]
    );
    h.t.disconnect(1);
    assert_eq!(h.peers(2, hash, 10, None), vec![]);
}

#[test]
fn a_vouch_is_refused_for_a_file_not_announced_or_too_long() {
    let mut h = Harness::new();
    let f = file("v.bin", 4, 62);
    h.join(1);
    let a = client(f.info_hash, 1);
    let m = h.refused(
        1,
        vouch(f.info_hash, &[(&a, false)]),
        ErrorCode::FILE_NOT_FOUND,
    );
    assert!(m.contains("announced"), "{m}");
    h.announce(1, &f, Pieces::All);
    let many: Vec<BtAnnounce> = (0..51).map(|n| client(f.info_hash, n)).collect();
    let many: Vec<(&BtAnnounce, bool)> = many.iter().map(|a| (a, false)).collect();
    let m = h.refused(1, vouch(f.info_hash, &many), ErrorCode::INVALID_PARAMETERS);
    assert!(m.contains("at most 50"), "{m}");
    let zero = BtAnnounce {
        addr: SocketAddr::from(([192, 0, 2, 1], 0)),
        ..a
    };
    h.refused(
        1,
        vouch(f.info_hash, &[(&zero, false)]),
        ErrorCode::INVALID_PARAMETERS,
    );
    assert_eq!(h.ask(1, vouch(f.info_hash, &many[..50])), Response::Ack);
}

impl Harness {
    /// The Dials a BitTorrent announce (that succeeds) asks for, by session.
    fn dials(&mut self, a: &BtAnnounce, now: Instant) -> Vec<ConnId> {
        let mut dials = Vec::new();
        self.t
            .bt_announce(a, now, &mut Vec::new(), &mut dials)
            .unwrap();
        for d in &dials {
            assert_eq!((d.info_hash, d.addr), (a.info_hash, a.addr));
        }
        let mut conns: Vec<ConnId> = dials.iter().map(|d| d.conn).collect();
        conns.sort();
        conns
    }

    fn accept_dials(&mut self, conn: ConnId) {
        assert_eq!(self.ask(conn, Request::AcceptDials), Response::Ack);
    }
}

#[test]
fn a_new_bittorrent_leecher_is_pushed_to_the_sessions_that_hold_pieces_and_accept_dials() {
    let mut h = Harness::new();
    let f = file("pushed.bin", 4, 1);
    let other = file("other.bin", 4, 2);
    // 1 seeds, 2 holds piece 0, 3 holds nothing yet, 4 seeds but never
    // sent AcceptDials (an older peer), 5 seeds another file only.
    for conn in 1..=5 {
        h.join(conn);
    }
    for conn in [1, 2, 3, 5] {
        h.accept_dials(conn);
    }
    h.announce(1, &f, Pieces::All);
    h.announce(2, &f, Pieces::Bitfield(bits(4, &[0])));
    h.announce(3, &f, Pieces::Bitfield(bits(4, &[])));
    h.announce(4, &f, Pieces::All);
    h.announce(5, &other, Pieces::All);
    let now = Instant::now();
    let leecher = client(f.info_hash, 1);
    assert_eq!(h.dials(&leecher, now), vec![1, 2]);
    // Its regular announces push nothing more; a new `started` does.
    assert_eq!(
        h.dials(&with_event(&leecher, Event::None), now),
        Vec::<ConnId>::new()
    );
    assert_eq!(h.dials(&leecher, now), vec![1, 2]);
    // A BitTorrent seeder is pushed to those missing pieces.
    assert_eq!(h.dials(&seeder(f.info_hash, 2), now), vec![2, 3]);
    // A file no session holds: nobody to push to.
    assert_eq!(h.dials(&client(H, 3), now), Vec::<ConnId>::new());
    // The frame the shell writes.
    let d = DialPush {
        conn: 1,
        info_hash: f.info_hash,
        addr: leecher.addr,
    };
    let expect = Response::Dial {
        info_hash: f.info_hash,
        addr: leecher.addr,
    };
    assert_eq!(Response::decode(&d.frame()).unwrap().unwrap().0, expect);
}

#[test]
fn a_session_is_not_pushed_its_own_address_and_pushes_are_bounded() {
    let mut h = Harness::new();
    let f = file("many.bin", 2, 3);
    let n = MAX_DIALS_PER_ANNOUNCE as ConnId + 10;
    for conn in 1..=n {
        h.join(conn);
        h.accept_dials(conn);
        h.announce(conn, &f, Pieces::All);
    }
    let now = Instant::now();
    assert_eq!(
        h.dials(&client(f.info_hash, 1), now).len(),
        MAX_DIALS_PER_ANNOUNCE
    );
    // Session 1's own client announcing (same address and port).
    let own = BtAnnounce {
        addr: SocketAddr::new(ip(1), port(1)),
        ..client(f.info_hash, 2)
    };
    let mut h1 = Harness::new();
    h1.join(1);
    h1.accept_dials(1);
    h1.announce(1, &f, Pieces::All);
    assert_eq!(h1.dials(&own, now), Vec::<ConnId>::new());
}
