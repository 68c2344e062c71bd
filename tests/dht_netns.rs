//! The DHT against libtorrent 2.0.8, between network namespaces (a private
//! /24, bench/netns.sh), with no tracker on either side's path to the
//! other: libtorrent gets a .torrent with no announce URL (made by
//! lt_peer.py, the same info dict and hash as STA's), and sta-peerd's
//! tracker is one libtorrent never hears of. libtorrent runs with
//! `dht_bootstrap_nodes` set to the other side's node and
//! `dht_restrict_routing_ips` / `dht_restrict_search_ips` off (it never
//! stores a bootstrap node in its table, so each side must find the other
//! by what the other announces or answers).
//!
//! 1. A libtorrent leecher finds an sta-peerd seeder through the DHT.
//! 2. `sta get MAGNET` finds a libtorrent seeder through the DHT (and gets
//!    the info dict from it, BEP 9).
//!
//! Needs root, iproute2 and python3-libtorrent; fails saying so otherwise.

mod common;

use common::netns::{Hosts, PEER_PORT, TRACKER_PORT};
use common::proc::Proc;
use common::*;
use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

const LENGTH: u64 = (2 << 20) + 777;
const TIMEOUT: Duration = Duration::from_secs(60);

fn need_libtorrent() {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import libtorrent"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs libtorrent's Python binding: `apt-get install python3-libtorrent`"
    );
}

/// A v1 .torrent of `file` without announce URL, by libtorrent; returns
/// its info hash (hex).
fn lt_torrent(file: &Path, out: &Path) -> String {
    let mut p = Proc::lt_peer(&[
        "make",
        "--file",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = p.wait_line("hashed", TIMEOUT);
    line.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no info hash in {line:?}"))
        .to_owned()
}

/// `lt_peer.py MODE` inside host `host`'s namespace, listening on its
/// peer port, its DHT joining through `boot`.
fn lt_in(hosts: &Hosts, host: usize, mode: &str, torrent: &Path, save: &Path, boot: &str) -> Proc {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lt_peer.py");
    let listen = SocketAddrV4::new(hosts.ip(host), PEER_PORT).to_string();
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", &hosts.namespace(host), PYTHON])
        .arg(script)
        .args([
            mode,
            "--timeout",
            "90",
            "--reannounce",
            "2",
            "--listen",
            &listen,
        ])
        .args(["--dht-bootstrap", boot, "--torrent"])
        .arg(torrent)
        .arg("--save")
        .arg(save);
    Proc::spawn(&format!("lt_peer.py {mode} on h{host}"), &mut cmd)
}

#[test]
fn libtorrent_and_sta_find_each_other_through_the_dht() {
    common::netns::require();
    need_libtorrent();
    let tmp = TempDir::new("dht-netns");
    let hosts = Hosts::up(3, "1gbit");
    let _tracker = hosts.tracker();
    let tracker = SocketAddrV4::new(hosts.ip(0), TRACKER_PORT).into();
    let node = |h: usize| SocketAddrV4::new(hosts.ip(h), PEER_PORT).to_string();

    // 1. sta-peerd on h1 seeds; libtorrent on h2 joins through its node.
    let src = tmp.subdir("src").join("n.bin");
    write_random_file(&src, LENGTH, 21);
    let torrent = tmp.path().join("n.torrent");
    lt_torrent(&src, &torrent);
    let seeder = hosts.peerd(
        1,
        tracker,
        &tmp.subdir("seeder"),
        &["--share", src.to_str().unwrap()],
    );
    seeder.wait_seeding("n.bin", TIMEOUT);
    let save = tmp.subdir("lt-leech");
    let mut leecher = lt_in(&hosts, 2, "leech", &torrent, &save, &node(1));
    leecher.wait_line("finished", TIMEOUT);
    assert_same_file(&src, &save.join("n.bin"));
    drop(leecher);
    drop(seeder);

    // 2. libtorrent on h2 seeds m.bin; `sta get MAGNET` on h1 finds it
    //    through the DHT and fetches the info dict from it (BEP 9). Each
    //    side's DHT names the other as its bootstrap node.
    let src = tmp.subdir("src2").join("m.bin");
    write_random_file(&src, LENGTH, 22);
    let torrent = tmp.path().join("m.torrent");
    let hash = lt_torrent(&src, &torrent);
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=m.bin");
    let sta = hosts.peerd(
        1,
        tracker,
        &tmp.subdir("sta-leech"),
        &["--dht-bootstrap", &node(2)],
    );
    let mut lt_seed = lt_in(&hosts, 2, "seed", &torrent, src.parent().unwrap(), &node(1));
    lt_seed.wait_line("seeding", TIMEOUT);
    let got = sta.sta(&["get", &magnet]).ok();
    let dest = sta.dir.join("m.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
}
