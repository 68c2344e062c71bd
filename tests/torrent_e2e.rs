//! Interoperability with BitTorrent clients, with the real binaries:
//! `sta torrent` writes a .torrent, `sta get` takes a .torrent or a magnet
//! link, `sta list`/`status` show magnet links, and a libtorrent leecher
//! downloads from a `sta-peerd` seeder with a .torrent `sta torrent` wrote.

mod common;

use common::*;
use sta::control::Reply;
use sta::meta::info::to_hex;
use sta::meta::torrent::Torrent;
use sta_kit::process::{Captured, Guard, Lines, Next};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SEED_TIMEOUT: Duration = Duration::from_secs(30);
const LENGTH: u64 = (3 << 20) + 12_345;

/// A tracker, a seeder of `name` and the seeder's FILE report.
fn swarm(tmp: &TempDir, name: &str) -> (Daemon, Peerd, std::path::PathBuf) {
    let t = tracker(&[]);
    let src = tmp.subdir("src").join(name);
    write_random_file(&src, LENGTH, 7);
    let seeder = spawn_peerd(t.addr, &tmp.subdir("seeder"), &[&src]);
    seeder.wait_seeding(name, SEED_TIMEOUT);
    wait_catalog(t.addr, name, 1, 1, SEED_TIMEOUT);
    (t, seeder, src)
}

fn read_torrent(path: &Path) -> Torrent {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Torrent::read(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn torrent_of_a_shared_file_then_get_it() {
    let tmp = TempDir::in_shm("torrent");
    let (t, seeder, src) = swarm(&tmp, "shared file.bin");
    let hash = seeder.file("shared file.bin").unwrap().info_hash;

    // By name, from the seeder's own metadata; default announce URL.
    let out = tmp.path().join("by-name.torrent");
    let run = seeder
        .sta(&["torrent", "shared file.bin", "-o", out.to_str().unwrap()])
        .ok();
    assert!(run.stdout.contains(&to_hex(&hash)), "{run:?}");
    assert!(run.stdout.contains("magnet:?xt=urn:btih:"), "{run:?}");
    let by_name = read_torrent(&out);
    assert_eq!(by_name.info.info_hash, hash);
    assert_eq!(by_name.announce, Some(format!("udp://{}/announce", t.addr)));

    // By info hash on a peer that does not hold it: from the tracker.
    let leecher = spawn_peerd(t.addr, &tmp.subdir("leecher"), &[]);
    let by_hash_path = tmp.path().join("by-hash.torrent");
    leecher
        .sta(&[
            "torrent",
            &to_hex(&hash),
            "-o",
            by_hash_path.to_str().unwrap(),
            "--tracker-url",
            "udp://tracker.example:1337/announce",
        ])
        .ok();
    let by_hash = read_torrent(&by_hash_path);
    assert_eq!(by_hash.info, by_name.info);
    assert_eq!(
        by_hash.trackers,
        ["udp://tracker.example:1337/announce".to_owned()]
    );

    // A local file hashed by the CLI itself: the same info dict.
    let local = tmp.path().join("local.torrent");
    leecher
        .sta(&[
            "torrent",
            src.to_str().unwrap(),
            "-o",
            local.to_str().unwrap(),
            "--piece-size",
            "512K",
        ])
        .ok();
    assert_eq!(read_torrent(&local).info, by_name.info);

    // The .torrent drives a download on another peer.
    let got = leecher.sta(&["get", out.to_str().unwrap()]).ok();
    let dest = leecher.dir.join("shared file.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);

    // list and status show magnet links, in text and JSON.
    let magnet = format!("magnet:?xt=urn:btih:{}&dn=shared%20file.bin", to_hex(&hash));
    let list = leecher.sta(&["list"]).ok();
    assert!(list.stdout.contains(&magnet), "{list:?}");
    let list = leecher.sta(&["list", "--json"]).ok();
    let v = sta::json::parse(list.stdout.trim()).unwrap();
    assert_eq!(
        v.as_array().unwrap()[0]
            .get("magnet")
            .and_then(|m| m.as_str()),
        Some(magnet.as_str())
    );
    let status = leecher.sta(&["status"]).ok();
    assert!(status.stdout.contains(&magnet), "{status:?}");
    let status = leecher.sta(&["status", "--json"]).ok();
    let v = sta::json::parse(status.stdout.trim()).unwrap();
    let files = v.get("files").and_then(|f| f.as_array()).unwrap();
    assert_eq!(
        files[0].get("magnet").and_then(|m| m.as_str()),
        Some(magnet.as_str())
    );
}

#[test]
fn get_a_magnet_link() {
    let tmp = TempDir::in_shm("magnet");
    let (t, seeder, src) = swarm(&tmp, "m.bin");
    let hash = seeder.file("m.bin").unwrap().info_hash;
    let leecher = spawn_peerd(t.addr, &tmp.subdir("leecher"), &[]);
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=m.bin&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce",
        to_hex(&hash).to_uppercase()
    );
    let got = leecher.sta(&["get", &link]).ok();
    let dest = leecher.dir.join("m.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);
}

#[test]
fn bad_magnets_and_torrents_are_refused() {
    let tmp = TempDir::new("bad-torrent");
    let t = tracker(&[]);
    let peer = spawn_peerd(t.addr, &tmp.subdir("p"), &[]);
    let fails = |args: &[&str], why: &str| {
        let run = peer.sta(args);
        assert_eq!(run.code, Some(1), "{args:?}: {run:?}");
        assert!(run.stderr.contains(why), "{args:?}: {run:?}");
    };
    fails(&["get", "magnet:?xt=urn:btih:1234"], "bad magnet link");
    fails(&["get", "magnet:?dn=x"], "no info hash");
    fails(&["get", "magnet:?xt=urn:btih:%zz"], "percent-encoding");

    let garbage = tmp.path().join("garbage.torrent");
    std::fs::write(&garbage, b"this is not bencode").unwrap();
    fails(&["get", garbage.to_str().unwrap()], "strict bencode");
    // A tree with a path that climbs out of its directory.
    let multi = tmp.path().join("multi.torrent");
    std::fs::write(
        &multi,
        b"d4:infod5:filesld6:lengthi1e4:pathl2:..1:aeee4:name1:d12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
    )
    .unwrap();
    let climbs = "'.' and '..' are not file names";
    fails(&["get", multi.to_str().unwrap()], climbs);
    assert_eq!(
        std::fs::read_dir(&peer.dir).unwrap().count(),
        1,
        "only the control socket is in the daemon's directory"
    );
    // An unknown file has no metadata to make a .torrent from.
    let out = tmp.path().join("x.torrent");
    fails(
        &["torrent", &"ab".repeat(20), "-o", out.to_str().unwrap()],
        "sta list",
    );
    assert!(!out.exists());

    // The daemon checks too, whoever sends the request.
    let (_, reply) = peer.request(&format!("get-torrent {}\n", multi.display()));
    let e = expect_error(reply);
    assert_eq!(e.code, "bad_request");
    assert!(e.message.contains(climbs), "{e:?}");
    let (_, reply) = peer.request("get-torrent /nonexistent/x.torrent\n");
    assert_eq!(expect_error(reply).code, "not_found");
    let (_, reply) = peer.request("meta nothing.bin\n");
    assert_eq!(expect_error(reply).code, "not_found");
    let (_, reply) = peer.request("meta a%2Fb\n");
    assert!(matches!(reply, Reply::Err(e) if e.code == "bad_name"));
}

#[test]
fn libtorrent_downloads_from_sta_peerd_with_sta_torrent() {
    need_libtorrent();
    let tmp = TempDir::in_shm("libtorrent");
    let (_t, seeder, src) = swarm(&tmp, "lt.bin");
    let torrent = tmp.path().join("lt.torrent");
    seeder
        .sta(&["torrent", "lt.bin", "-o", torrent.to_str().unwrap()])
        .ok();
    let save = tmp.subdir("lt-save");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lt_peer.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(&script)
        .args(["leech", "--timeout", "60", "--torrent"])
        .arg(&torrent)
        .arg("--save")
        .arg(&save)
        .arg("--peer")
        .arg(seeder.listen.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Stopped by its pid (stdin closed first) when the guard drops.
    let mut lt = Guard::spawn("lt_peer.py", &mut cmd).expect("start lt_peer.py");
    let child = lt.child_mut();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let lines = Lines::spawn(stdout.expect("piped stdout")).expect("a stdout thread");
    let stderr = Captured::spawn(stderr.expect("piped stderr")).expect("a stderr thread");
    let deadline = Instant::now() + Duration::from_secs(90);
    let finished = loop {
        match lines.next_by(deadline) {
            Next::Line(line) if line.starts_with("finished") => break true,
            Next::Line(_) => continue,
            Next::TimedOut | Next::Closed => break false,
        }
    };
    drop(lt);
    assert!(
        finished,
        "libtorrent did not finish; its stderr:\n{}\nsta-peerd:\n{}",
        stderr.text_at_end(Duration::from_secs(5)),
        seeder.log()
    );
    assert_same_file(&src, &save.join("lt.bin"));
    let f = seeder.file("lt.bin").unwrap();
    assert!(f.uploaded >= LENGTH, "{f:?}");
}
