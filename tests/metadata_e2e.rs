//! A magnet link with no tracker at all, both ways with libtorrent 2.0.8
//! on 127.0.0.1: the info dict travels over the peer wire (BEP 9
//! ut_metadata over the BEP 10 extension protocol), is checked against
//! the info hash, and the file follows. Every sta-peerd here runs with no
//! `--tracker`. The tests fail, with an install hint, without libtorrent.

mod common;

use common::proc::Proc;
use common::*;
use sta::meta::info::to_hex;
use std::time::Duration;

/// With pieces of 16 KiB, 1,540 piece hashes: an info dict of some 30 KB,
/// two metadata pieces (the last one short).
const LENGTH: u64 = (24 << 20) + 54_321;
const PIECE: &str = "16384";
const SEED_TIMEOUT: Duration = Duration::from_secs(20);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn libtorrent_fetches_the_info_dict_from_a_trackerless_sta_seeder() {
    need_libtorrent();
    let tmp = TempDir::in_shm("meta-lt-from-sta");
    let src = tmp.subdir("src").join("a.bin");
    write_random_file(&src, LENGTH, 21);
    let seeder = spawn_peerd_trackerless(&tmp.subdir("s"), &[&src], &["--piece-size", PIECE]);
    let f = seeder.wait_seeding("a.bin", SEED_TIMEOUT);
    let hash = to_hex(&f.info_hash);
    let status = seeder.sta(&["status"]).ok();
    assert!(
        status.stdout.contains("tracker   none"),
        "{}",
        status.stdout
    );

    let save = tmp.subdir("lt");
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=a.bin");
    let peer = seeder.listen.to_string();
    let mut lt = lt_magnet_leecher(&magnet, &save, &peer);
    let line = lt.wait_line("metadata", CLIENT_TIMEOUT);
    assert!(line.starts_with(&format!("metadata {hash} ")), "{line}");
    lt.wait_line("finished", CLIENT_TIMEOUT);
    assert_same_file(&src, &save.join("a.bin"));
}

#[test]
fn sta_get_magnet_fetches_the_info_dict_from_a_libtorrent_seeder() {
    need_libtorrent();
    let tmp = TempDir::in_shm("meta-sta-from-lt");
    let src_dir = tmp.subdir("src");
    let src = src_dir.join("b.bin");
    write_random_file(&src, LENGTH, 22);
    let torrent = tmp.path().join("b.torrent");
    let torrent_s = torrent.to_str().unwrap();
    let made = Proc::lt_peer(&[
        "make",
        "--file",
        src.to_str().unwrap(),
        "--piece-size",
        PIECE,
        "--out",
        torrent_s,
    ])
    .lines_to_end(SEED_TIMEOUT);
    let hash = made[0]
        .split(' ')
        .nth(2)
        .expect("hashed SECS HASH VERSION")
        .to_owned();
    let mut seed = Proc::lt_peer(&[
        "seed",
        "--timeout",
        "60",
        "--torrent",
        torrent_s,
        "--save",
        src_dir.to_str().unwrap(),
    ]);
    let listening = seed.wait_line("listening on", SEED_TIMEOUT);
    let lt_addr = listening.trim_start_matches("listening on ").to_owned();
    seed.wait_line("seeding", SEED_TIMEOUT);

    let leecher = spawn_peerd_trackerless(&tmp.subdir("l"), &[], &[]);
    let out = tmp.subdir("out");
    let magnet = format!("magnet:?xt=urn:btih:{hash}&x.pe={lt_addr}");
    let run = leecher
        .sta(&["get", &magnet, "--out", out.to_str().unwrap()])
        .ok();
    assert!(run.stdout.trim_end().ends_with("b.bin"), "{run:?}");
    assert_same_file(&src, &out.join("b.bin"));
    let log = leecher.log();
    assert!(log.contains("got its info dict"), "{log}");
}

#[test]
fn without_a_tracker_list_and_get_by_name_say_why_they_cannot_work() {
    let tmp = TempDir::new("meta-no-tracker");
    let peer = spawn_peerd_trackerless(&tmp.subdir("p"), &[], &[]);
    let hash = "0123456789abcdef0123456789abcdef01234567";
    for args in [&["list"][..], &["get", "some-name.iso"], &["get", hash]] {
        let run = peer.sta(args);
        assert_ne!(run.code, Some(0), "{args:?}: {run:?}");
        assert!(run.stderr.contains("no tracker"), "{args:?}: {run:?}");
    }
}

/// PEX between STA and libtorrent: a trackerless STA seeder, slowed down,
/// serves a libtorrent leecher and a trackerless STA leecher, each given
/// only the seeder's address. The seeder's PEX tells each of the other:
/// the STA leecher ends up with verified bytes from a peer no one gave it,
/// and libtorrent kept its sessions (it drops a peer sending PEX too often).
#[test]
fn pex_introduces_a_libtorrent_leecher_and_an_sta_leecher() {
    need_libtorrent();
    let tmp = TempDir::in_shm("meta-pex-lt");
    let src = tmp.subdir("src").join("c.bin");
    write_random_file(&src, LENGTH, 23);
    let extra = ["--piece-size", PIECE, "--max-upload-rate", "2M"];
    let seeder = spawn_peerd_trackerless(&tmp.subdir("s"), &[&src], &extra);
    let f = seeder.wait_seeding("c.bin", SEED_TIMEOUT);
    let hash = to_hex(&f.info_hash);
    let peer = seeder.listen.to_string();
    let save = tmp.subdir("lt");
    let magnet = format!("magnet:?xt=urn:btih:{hash}");
    let mut lt = lt_magnet_leecher(&magnet, &save, &peer);
    lt.wait_line("metadata", CLIENT_TIMEOUT);

    let leecher = spawn_peerd_trackerless(&tmp.subdir("l"), &[], &[]);
    let out = tmp.subdir("out");
    let magnet = format!("{magnet}&x.pe={peer}");
    leecher
        .sta(&["get", &magnet, "--out", out.to_str().unwrap()])
        .ok();
    assert_same_file(&src, &out.join("c.bin"));
    lt.wait_line("finished", CLIENT_TIMEOUT);
    assert_same_file(&src, &save.join("c.bin"));
    let got = leecher.file("c.bin").expect("the download");
    let others: Vec<_> = got
        .from_peers
        .iter()
        .filter(|p| p.addr != seeder.listen && p.bytes > 0)
        .collect();
    eprintln!(
        "the STA leecher's verified bytes by peer: {:?}",
        got.from_peers
    );
    assert!(
        !others.is_empty(),
        "PEX brought the STA leecher another peer: {:?}",
        got.from_peers
    );
}

/// A libtorrent leecher given only `magnet` and one peer to ask.
fn lt_magnet_leecher(magnet: &str, save: &std::path::Path, peer: &str) -> Proc {
    Proc::lt_peer(&[
        "leech",
        "--timeout",
        "60",
        "--magnet",
        magnet,
        "--save",
        save.to_str().unwrap(),
        "--peer",
        peer,
    ])
}
