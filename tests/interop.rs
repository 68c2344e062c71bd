//! Interoperability with real BitTorrent clients on 127.0.0.1, with the
//! real binaries: every peer finds the others through sta-trackerd's
//! BitTorrent UDP tracker (on by default, on the port of its TCP listener),
//! using the announce URL `sta torrent` writes. The clients are libtorrent
//! (through `bench/lt_peer.py`, no `connect_peer`) and aria2c. Every wait
//! is bounded, and every process is stopped by its pid when its guard is
//! dropped. The tests fail, with an install hint, when a client is missing.

mod common;

use common::proc::Proc;
use common::*;
use sta::meta::torrent::Torrent;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LENGTH: u64 = (2 << 20) + 54_321;
const SEED_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a BitTorrent client may take to download the file.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(25);

fn need_aria2() {
    match Command::new("aria2c").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        other => panic!("this test needs aria2c: `apt-get install aria2` ({other:?})"),
    }
}

fn read_torrent(path: &Path) -> Torrent {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Torrent::read(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `sta torrent TARGET -o OUT` on `peer` with the default announce URL,
/// which must be the tracker's UDP announce.
fn make_torrent(peer: &Peerd, tracker: SocketAddr, target: &str, out: &Path) {
    peer.sta(&["torrent", target, "-o", out.to_str().unwrap()])
        .ok();
    let t = read_torrent(out);
    assert_eq!(t.announce, Some(format!("udp://{tracker}/announce")));
}

/// A TCP port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    sta_kit::net::free_tcp_port().expect("a free port")
}

/// A seeding sta-peerd of a fresh random file `name`, the file's path and
/// the .torrent `sta torrent` wrote for it.
fn sta_seeder(tmp: &TempDir, t: &Daemon, name: &str, dir: &str) -> (Peerd, PathBuf, PathBuf) {
    let src = tmp.subdir("src").join(name);
    if !src.exists() {
        write_random_file(&src, LENGTH, 11);
    }
    let seeder = spawn_peerd(t.addr, &tmp.subdir(dir), &[&src]);
    seeder.wait_seeding(name, SEED_TIMEOUT);
    let torrent = tmp.path().join(format!("{name}.torrent"));
    make_torrent(&seeder, t.addr, name, &torrent);
    (seeder, src, torrent)
}

#[test]
fn libtorrent_leecher_finds_sta_seeders_through_the_tracker() {
    need_libtorrent();
    let tmp = TempDir::in_shm("interop-lt-leech");
    let t = bt_tracker();
    let (s1, src, torrent) = sta_seeder(&tmp, &t, "a.bin", "s1");
    let s2 = spawn_peerd(t.addr, &tmp.subdir("s2"), &[&src]);
    s2.wait_seeding("a.bin", SEED_TIMEOUT);
    wait_catalog(t.addr, "a.bin", 2, 2, SEED_TIMEOUT);

    let save = tmp.subdir("lt");
    let mut lt = Proc::lt("leech", &torrent, &save);
    lt.wait_line("finished", CLIENT_TIMEOUT);
    assert_same_file(&src, &save.join("a.bin"));
    let up = s1.file("a.bin").unwrap().uploaded + s2.file("a.bin").unwrap().uploaded;
    assert!(up >= LENGTH, "the STA seeders uploaded {up} bytes");
}

#[test]
fn sta_downloads_from_a_libtorrent_seeder() {
    need_libtorrent();
    let tmp = TempDir::in_shm("interop-lt-seed");
    let t = bt_tracker();
    let src = tmp.subdir("src").join("b.bin");
    write_random_file(&src, LENGTH, 12);
    let leecher = spawn_peerd(t.addr, &tmp.subdir("leecher"), &[]);
    // The .torrent of a local file, hashed by `sta` itself.
    let torrent = tmp.path().join("b.torrent");
    make_torrent(&leecher, t.addr, src.to_str().unwrap(), &torrent);

    let lt_dir = tmp.subdir("lt");
    std::fs::copy(&src, lt_dir.join("b.bin")).unwrap();
    let mut lt = Proc::lt("seed", &torrent, &lt_dir);
    lt.wait_line("seeding", SEED_TIMEOUT);

    // Only the libtorrent seeder has the file; the leecher's announce of the
    // metadata makes the tracker pair it with that BitTorrent seeder.
    let got = leecher.sta(&["get", torrent.to_str().unwrap()]).ok();
    let dest = leecher.dir.join("b.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
    assert!(lt.running(), "{}", lt.stderr());
}

#[test]
fn mixed_swarm_of_sta_and_libtorrent_peers() {
    need_libtorrent();
    let tmp = TempDir::in_shm("interop-mixed");
    let t = bt_tracker();
    let (_seeder, src, torrent) = sta_seeder(&tmp, &t, "c.bin", "seeder");
    let sta2 = spawn_peerd(t.addr, &tmp.subdir("sta2"), &[]);
    let save1 = tmp.subdir("lt1");
    let save2 = tmp.subdir("lt2");
    let mut lt1 = Proc::lt("leech", &torrent, &save1);
    let mut lt2 = Proc::lt("leech", &torrent, &save2);
    let got = sta2.sta(&["get", torrent.to_str().unwrap()]).ok();
    let dest = sta2.dir.join("c.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    lt1.wait_line("finished", CLIENT_TIMEOUT);
    lt2.wait_line("finished", CLIENT_TIMEOUT);
    assert_same_file(&src, &dest);
    assert_same_file(&src, &save1.join("c.bin"));
    assert_same_file(&src, &save2.join("c.bin"));
}

#[test]
fn aria2c_downloads_from_sta_peerd_through_the_tracker() {
    need_aria2();
    let tmp = TempDir::in_shm("interop-aria2");
    // aria2 speaks the UDP tracker protocol only with its DHT on, and is
    // slow to use what it learns that way: give it the HTTP announce.
    let mut t = tracker(&["--announce-interval", "1", "--http-listen", "127.0.0.1:0"]);
    let http = wait_for("the http listening line", Duration::from_secs(5), || {
        let line = t.next_stdout_line(Duration::from_millis(100))?;
        line.strip_prefix("http listening on ").map(str::to_owned)
    });
    let src = tmp.subdir("src").join("d.bin");
    write_random_file(&src, LENGTH, 11);
    let seeder = spawn_peerd(t.addr, &tmp.subdir("seeder"), &[&src]);
    seeder.wait_seeding("d.bin", SEED_TIMEOUT);
    let torrent = tmp.path().join("d.bin.torrent");
    let url = format!("http://{http}/announce");
    seeder
        .sta(&[
            "torrent",
            "d.bin",
            "-o",
            torrent.to_str().unwrap(),
            "--tracker-url",
            &url,
        ])
        .ok();
    assert_eq!(read_torrent(&torrent).announce, Some(url));
    let save = tmp.subdir("aria2");
    let mut aria = Proc::spawn(
        "aria2c",
        Command::new("aria2c")
            .arg(format!("--dir={}", save.display()))
            .args([
                "--seed-time=0",
                "--bt-enable-lpd=false",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-require-crypto=false",
                "--bt-tracker-connect-timeout=5",
                "--bt-tracker-timeout=5",
                "--bt-stop-timeout=55",
                "--file-allocation=none",
                "--summary-interval=0",
                "--console-log-level=warn",
                "--no-conf=true",
            ])
            .arg(format!("--listen-port={}", free_port()))
            .arg(&torrent),
    );
    let status = aria.wait_exit(Duration::from_secs(60));
    assert!(
        status.success(),
        "aria2c: {status}; stderr:\n{}",
        aria.stderr()
    );
    assert_same_file(&src, &save.join("d.bin"));
    let f = seeder.file("d.bin").unwrap();
    assert!(f.uploaded >= LENGTH, "{f:?}");
}
