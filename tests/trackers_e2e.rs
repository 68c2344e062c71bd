//! Several trackers (issue "No single tracker to lose"), with the real
//! binaries on loopback: every tracker killed in turn in the middle of a
//! swarm, a restarted one learning the catalog back, `sta list` while one
//! is up; and libtorrent 2.0.8 (its defaults for trackers: one at a time
//! from one tier, BEP 12; uTP and encryption off as in the other interop
//! tests, since STA speaks neither) and STA peers finding each other
//! through whichever tracker is left.

mod common;

use common::proc::Proc;
use common::*;
use sta::meta::torrent::Torrent;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

const PIECE: &str = "65536";
const SWARM_TIMEOUT: Duration = Duration::from_secs(90);

/// `sta-trackerd` on `listen` (port 0: the system picks), its UDP
/// BitTorrent tracker on the same port.
fn tracker_on(listen: &str) -> Daemon {
    let mut t = Daemon::spawn(
        env!("CARGO_BIN_EXE_sta-trackerd"),
        &["--listen", listen, "--announce-interval", "1"],
    );
    let line = t
        .next_stdout_line(STARTUP_TIMEOUT)
        .expect("udp listening line");
    assert_eq!(line, format!("udp listening on {}", t.addr));
    t
}

/// A peer daemon with every tracker of `trackers`.
fn peerd(trackers: &[SocketAddr], dir: &Path, shares: &[&Path], extra: &[&str]) -> Peerd {
    let mut args: Vec<String> = Vec::new();
    for t in &trackers[1..] {
        args.extend(["--tracker".into(), t.to_string()]);
    }
    args.extend(["--piece-size".into(), PIECE.into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_peerd_with(trackers[0], dir, shares, &args)
}

/// The tracker's catalog as a fresh session sees it: (name, peers) of
/// each file.
fn catalog(tracker: SocketAddr) -> Vec<(String, u32)> {
    let mut c = Client::connect(tracker);
    c.hello(peer_id(900), 0);
    c.list(0, 100, "")
        .entries
        .into_iter()
        .map(|e| (e.name, e.peers))
        .collect()
}

#[test]
fn every_tracker_killed_in_turn_mid_swarm_and_list_while_one_is_up() {
    let tmp = TempDir::new("trackers-kill");
    let mut trackers: Vec<Daemon> = (0..3).map(|_| tracker_on("127.0.0.1:0")).collect();
    let addrs: Vec<SocketAddr> = trackers.iter().map(|t| t.addr).collect();
    let src = tmp.path().join("data.bin");
    write_random_file(&src, 6 << 20, 41);
    // The seeder uploads 1.5 MB/s: the download lasts about 4 s, time for
    // each tracker to die and come back while it runs.
    let seeder = peerd(
        &addrs,
        &tmp.subdir("seed"),
        &[&src],
        &["--max-upload-rate", "1.5M"],
    );
    seeder.wait_seeding("data.bin", SWARM_TIMEOUT);
    let leechers: Vec<Peerd> = (0..2)
        .map(|i| peerd(&addrs, &tmp.subdir(&format!("leech{i}")), &[], &[]))
        .collect();
    let gets: Vec<_> = leechers
        .iter()
        .map(|l| sta_in_background_for(&l.control, &["get", "data.bin"], SWARM_TIMEOUT))
        .collect();
    // Each tracker in turn: killed, then back on its address, where the
    // peers' sessions find it and announce everything again.
    let mut relearn = Vec::new();
    for (i, t) in trackers.iter_mut().enumerate() {
        std::thread::sleep(Duration::from_millis(600));
        t.sigkill();
        std::thread::sleep(Duration::from_millis(300));
        let back = Instant::now();
        *t = tracker_on(&addrs[i].to_string());
        wait_for(
            "the restarted tracker to list all 3 peers",
            SWARM_TIMEOUT,
            || {
                catalog(addrs[i])
                    .iter()
                    .any(|(name, peers)| name == "data.bin" && *peers == 3)
                    .then_some(())
            },
        );
        relearn.push(back.elapsed());
    }
    eprintln!("a restarted tracker listed all 3 peers again after {relearn:?}");
    for (g, l) in gets.into_iter().zip(&leechers) {
        let run = g.join().expect("sta get thread");
        assert_eq!(run.code, Some(0), "{run:?}\n{}", l.log());
        assert_same_file(&src, &l.dir.join("data.bin"));
    }
    // `sta list` works while any one tracker is up, and says which it
    // tried when none is.
    let l = &leechers[0];
    trackers[0].sigkill();
    trackers[2].sigkill();
    wait_for(
        "the leecher to see two trackers gone",
        SWARM_TIMEOUT,
        || {
            let s = l.status();
            (s.trackers.iter().filter(|t| t.connected).count() == 1).then_some(())
        },
    );
    let list = l.sta(&["list"]).ok();
    assert!(list.stdout.contains("data.bin"), "{list:?}");
    trackers[1].sigkill();
    wait_for(
        "the leecher to see every tracker gone",
        SWARM_TIMEOUT,
        || (!l.status().tracker_connected).then_some(()),
    );
    let none = l.sta(&["list"]);
    assert_ne!(none.code, Some(0), "{none:?}");
    assert!(none.stderr.contains(&addrs[1].to_string()), "{none:?}");
}

/// libtorrent seeds the file; it announced to tracker A only. An STA
/// peer fetching it through A and B vouches for it, so once A is dead a
/// second STA peer still finds it through B. A libtorrent leecher whose
/// torrent lists A first moves on to B (BEP 12) and finds the STA peers.
#[test]
fn libtorrent_and_sta_find_each_other_after_a_tracker_dies() {
    need_libtorrent();
    let tmp = TempDir::new("trackers-lt");
    let mut a = tracker_on("127.0.0.1:0");
    let b = tracker_on("127.0.0.1:0");
    let addrs = [a.addr, b.addr];
    let src = tmp.path().join("shared.bin");
    write_random_file(&src, 4 << 20, 42);

    // `sta torrent` puts both trackers into one tier of announce-list.
    let maker = peerd(&addrs, &tmp.subdir("maker"), &[], &[]);
    let both = tmp.path().join("both.torrent");
    maker
        .sta(&[
            "torrent",
            src.to_str().unwrap(),
            "-o",
            both.to_str().unwrap(),
            "--piece-size",
            PIECE,
        ])
        .ok();
    let t = Torrent::read(&std::fs::read(&both).unwrap()).unwrap();
    let url = |addr: SocketAddr| format!("udp://{addr}/announce");
    assert_eq!(t.trackers, [url(a.addr), url(b.addr)]);
    drop(maker);
    // The same info dict announcing to A alone: the libtorrent seeder's.
    let only_a = tmp.path().join("only-a.torrent");
    std::fs::write(&only_a, Torrent::write(&t.info, &[url(a.addr)])).unwrap();

    let seed_dir = tmp.subdir("lt-seed");
    std::fs::copy(&src, seed_dir.join("shared.bin")).unwrap();
    // 300 KB/s: the first STA peer is still fetching (and connected to
    // it) when the second comes.
    let mut lt_seed = Proc::lt_peer(&[
        "seed",
        "--timeout",
        "120",
        "--upload-limit",
        "300000",
        "--torrent",
        only_a.to_str().unwrap(),
        "--save",
        seed_dir.to_str().unwrap(),
    ]);
    let lt_addr: SocketAddr = lt_seed
        .wait_line("listening on ", SWARM_TIMEOUT)
        .trim_start_matches("listening on ")
        .parse()
        .expect("lt_peer.py listen address");
    lt_seed.wait_line("announced", SWARM_TIMEOUT);

    let torrent_arg = both.to_str().unwrap();
    let p1 = peerd(&addrs, &tmp.subdir("p1"), &[], &[]);
    let get1 = sta_in_background_for(&p1.control, &["get", torrent_arg], SWARM_TIMEOUT);
    wait_for(
        "the first STA peer to fetch from libtorrent",
        SWARM_TIMEOUT,
        || {
            p1.file("shared.bin").filter(|f| {
                f.from_peers
                    .iter()
                    .any(|p| p.addr == lt_addr && p.bytes > 0)
            })
        },
    );
    // It vouches within a second; then A dies.
    std::thread::sleep(Duration::from_millis(1500));
    a.sigkill();

    let p2 = peerd(&addrs, &tmp.subdir("p2"), &[], &[]);
    p2.sta(&["get", torrent_arg]).ok();
    assert_same_file(&src, &p2.dir.join("shared.bin"));
    let from = p2.file("shared.bin").expect("p2 holds it").from_peers;
    assert!(
        from.iter().any(|p| p.addr == lt_addr && p.bytes > 0),
        "the second STA peer found libtorrent through B: {from:?}\n{}",
        p2.log()
    );
    let run = get1.join().expect("sta get thread");
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_same_file(&src, &p1.dir.join("shared.bin"));

    // A libtorrent leecher with both trackers, A dead: it moves on to B
    // and fetches from the STA peers it finds there.
    let leech_dir = tmp.subdir("lt-leech");
    let mut lt_leech = Proc::lt_peer(&[
        "leech",
        "--timeout",
        "60",
        "--torrent",
        torrent_arg,
        "--save",
        leech_dir.to_str().unwrap(),
    ]);
    lt_leech.wait_line("finished", SWARM_TIMEOUT);
    lt_leech.wait_line("flushed", SWARM_TIMEOUT);
    assert_same_file(&src, &leech_dir.join("shared.bin"));
    drop(b);
}

/// A libtorrent leecher that knows tracker A only dials the STA seeder;
/// its extension handshake (BEP 10 `p`) tells the seeder where it listens,
/// so the seeder vouches for it to tracker B, which gives it to STA peers.
#[test]
fn a_libtorrent_peer_that_dialed_in_is_vouched_for_at_its_listen_port() {
    need_libtorrent();
    let tmp = TempDir::new("trackers-lt-in");
    let a = tracker_on("127.0.0.1:0");
    let b = tracker_on("127.0.0.1:0");
    let addrs = [a.addr, b.addr];
    let src = tmp.path().join("incoming.bin");
    write_random_file(&src, 2 << 20, 43);
    // Slow, so that libtorrent is still connected while B is asked.
    let seeder = peerd(
        &addrs,
        &tmp.subdir("seed"),
        &[&src],
        &["--max-upload-rate", "200k"],
    );
    let info = seeder.wait_seeding("incoming.bin", SWARM_TIMEOUT);
    let mut c = Client::connect(a.addr);
    c.hello(peer_id(901), 0);
    let meta = c.get_meta(sta::wire::tracker::Lookup::Hash(info.info_hash));
    let info = sta::meta::Info::from_bencoded(&meta).expect("metadata");
    let only_a = tmp.path().join("only-a.torrent");
    let url = format!("udp://{}/announce", a.addr);
    std::fs::write(&only_a, Torrent::write(&info, &[url])).unwrap();

    let save = tmp.subdir("lt");
    let mut lt = Proc::lt_peer(&[
        "leech",
        "--timeout",
        "60",
        "--wait-go",
        "--listen",
        "127.0.0.1:0",
        "--torrent",
        only_a.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    let lt_addr: SocketAddr = lt
        .wait_line("listening on ", SWARM_TIMEOUT)
        .trim_start_matches("listening on ")
        .parse()
        .expect("lt_peer.py listen address");
    lt.send_line("go");
    let mut asker = Client::connect(b.addr);
    asker.hello(peer_id(902), 0);
    wait_for(
        "tracker B to give libtorrent's listen address",
        SWARM_TIMEOUT,
        || {
            asker
                .get_peers(info.info_hash, 50, None)
                .iter()
                .any(|p| p.addr == lt_addr)
                .then_some(())
        },
    );
    lt.wait_line("finished", SWARM_TIMEOUT);
    drop((a, b));
}
