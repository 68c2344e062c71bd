//! End to end: `sta list` and `sta ls` against a real `sta-trackerd` and
//! `sta-peerd` on 127.0.0.1. A shared single file goes through the whole
//! chain (share, announce, ListPage, GetMeta); directories, which
//! `sta-peerd` does not share yet, are announced by a test session of the
//! tracker protocol with a multi-file info dict.

mod common;

use common::*;
use serde_json::Value;
use sta::control::CatalogEntry;
use sta::json;
use sta::meta::Info;
use sta::meta::files::Listing;
use sta::meta::info::to_hex;
use sta::wire::tracker::Pieces;
use std::time::Duration;

const SEED_TIMEOUT: Duration = Duration::from_secs(25);

/// A directory's info dict: `files` as (path, length), 16 KiB pieces.
fn tree(name: &str, files: &[(&str, u64)], seed: u8) -> Info {
    let files: Listing = files.iter().copied().collect();
    let length: u64 = files.iter().map(|(_, n)| n).sum();
    let pieces = length.div_ceil(16384) as usize;
    let hashes = (0..pieces * 20).map(|i| (i as u8) ^ seed).collect();
    Info::new_tree(name, &files, 16384, hashes).expect("a valid tree")
}

/// `sta list --json`, parsed.
fn catalog(p: &Peerd) -> Vec<CatalogEntry> {
    let run = p.sta(&["list", "--json"]).ok();
    let v = json::parse(run.stdout.trim_end()).expect("list --json is JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|e| CatalogEntry::from_json(e).expect("a catalog entry"))
        .collect()
}

/// `sta ls --json` of `target`: name, directory, and (path, length) of
/// each file.
fn ls_json(p: &Peerd, target: &str) -> (String, bool, u64, Vec<(String, u64)>) {
    let run = p.sta(&["ls", target, "--json"]).ok();
    let v = json::parse(run.stdout.trim_end()).expect("ls --json is JSON");
    let files = v
        .get("files")
        .and_then(Value::as_array)
        .expect("files")
        .iter()
        .map(|f| {
            let path = f.get("path").and_then(Value::as_str).expect("path");
            let n = f.get("length").and_then(Value::as_u64).expect("length");
            (path.to_owned(), n)
        })
        .collect();
    (
        v.get("name").and_then(Value::as_str).expect("name").into(),
        v.get("directory").and_then(Value::as_bool).expect("bool"),
        v.get("length").and_then(Value::as_u64).expect("length"),
        files,
    )
}

#[test]
fn list_and_ls_show_files_and_directories() {
    let t = tracker(&[]);
    let tmp = TempDir::new("list-ls");
    let src = tmp.subdir("src").join("real.bin");
    std::fs::write(&src, random_bytes(1_000_000, 3)).unwrap();
    let seeder = spawn_peerd(t.addr, &tmp.subdir("s"), &[&src]);
    let hash = to_hex(&seeder.wait_seeding("real.bin", SEED_TIMEOUT).info_hash);
    wait_catalog(t.addr, "real.bin", 1, 1, SEED_TIMEOUT);
    let other = spawn_peerd(t.addr, &tmp.subdir("o"), &[]);

    // A single file: one file, no trailing `/`, from the tracker...
    let entries = catalog(&other);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0].file_count, entries[0].is_dir()), (1, false));
    assert_eq!(entries[0].length, 1_000_000);
    let run = other.sta(&["list"]).ok();
    let row = run.stdout.lines().nth(1).expect("a row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], ["real.bin", "1.0", "MB", "1"], "{run:?}");
    let run = other.sta(&["ls", "real.bin"]).ok();
    assert_eq!(
        run.stdout,
        format!("1.0 MB  real.bin\n1.0 MB  total: 1 file in real.bin, info hash {hash}\n")
    );
    let want = (
        "real.bin".to_owned(),
        false,
        1_000_000,
        vec![("real.bin".to_owned(), 1_000_000)],
    );
    assert_eq!(ls_json(&other, &hash), want);
    // ... and from the daemon that holds it.
    assert_eq!(ls_json(&seeder, "real.bin"), want);

    // Directories, announced over the tracker protocol.
    let photos = tree(
        "photos",
        &[("a.jpg", 1000), ("b.jpg", 2000), ("sub/c.jpg", 3000)],
        1,
    );
    let mut announcer = Client::connect(t.addr);
    announcer.hello(peer_id(1), 0);
    announcer.announce(&photos, Pieces::All);
    // Two different directories named dup: ambiguous.
    let dup1 = tree("dup", &[("x", 10), ("y", 20)], 2);
    let dup2 = tree("dup", &[("x", 10), ("z", 30)], 3);
    announcer.announce(&dup1, Pieces::All);
    let mut second = Client::connect(t.addr);
    second.hello(peer_id(2), 0);
    second.announce(&dup2, Pieces::Bitfield(vec![0]));

    // Entries come by name, then by info hash: sort the two dups here.
    let entries = catalog(&other);
    let mut shown: Vec<(&str, u32, bool, u64, u32)> = entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.file_count,
                e.is_dir(),
                e.length,
                e.seeders,
            )
        })
        .collect();
    shown.sort();
    assert_eq!(
        shown,
        [
            ("dup", 2, true, 30, 1),
            ("dup", 2, true, 40, 0),
            ("photos", 3, true, 6000, 1),
            ("real.bin", 1, false, 1_000_000, 1),
        ]
    );
    let run = other.sta(&["list"]).ok();
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("photos"))
        .expect("a photos row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], ["photos/", "6.0", "kB", "3"], "{run:?}");

    let run = other.sta(&["ls", "photos"]).ok();
    assert_eq!(
        run.stdout,
        format!(
            "1.0 kB  a.jpg\n2.0 kB  b.jpg\n3.0 kB  sub/c.jpg\n6.0 kB  total: 3 files in photos/, info hash {}\n",
            to_hex(&photos.info_hash)
        )
    );
    let files = [("a.jpg", 1000), ("b.jpg", 2000), ("sub/c.jpg", 3000)];
    let want = (
        "photos".to_owned(),
        true,
        6000,
        files.map(|(p, n)| (p.to_owned(), n)).to_vec(),
    );
    assert_eq!(ls_json(&other, &to_hex(&photos.info_hash)), want);

    // An ambiguous name: exit 1 and the very message of `sta get`, both
    // info hashes in it; each works by its info hash.
    let ls = other.sta(&["ls", "dup"]);
    let get = other.sta(&["get", "dup"]);
    assert_eq!(ls.code, Some(1), "{ls:?}");
    assert!(ls.stdout.is_empty(), "{ls:?}");
    for h in [&dup1.info_hash, &dup2.info_hash] {
        assert!(ls.stderr.contains(&to_hex(h)), "{ls:?}");
    }
    assert_eq!((get.code, &get.stderr), (Some(1), &ls.stderr), "{get:?}");
    assert_eq!(ls_json(&other, &to_hex(&dup2.info_hash)).3.len(), 2);

    // No such file: the message of `sta get` too.
    let ls = other.sta(&["ls", "nosuch.bin"]);
    let get = other.sta(&["get", "nosuch.bin"]);
    assert_eq!(ls.code, Some(1), "{ls:?}");
    assert!(ls.stderr.contains("sta list"), "{ls:?}");
    assert_eq!((get.code, &get.stderr), (Some(1), &ls.stderr), "{get:?}");

    // Once its only holder's session ends, a directory leaves the list.
    drop(announcer);
    wait_for("photos to leave the catalog", SEED_TIMEOUT, || {
        (!catalog(&other).iter().any(|e| e.name == "photos")).then_some(())
    });
    let ls = other.sta(&["ls", "photos"]);
    assert_eq!(ls.code, Some(1), "{ls:?}");
}

/// A directory shared with `sta share DIR`: listed with its files by
/// another daemon, from the tracker, and by its own.
#[test]
fn a_shared_directory_is_listed_with_its_files() {
    let t = tracker(&[]);
    let tmp = TempDir::new("list-dir");
    let album = tmp.subdir("src").join("album");
    std::fs::create_dir_all(album.join("disc 2")).unwrap();
    std::fs::write(album.join("cover.jpg"), random_bytes(70_000, 1)).unwrap();
    std::fs::write(
        album.join("disc 2").join("track.flac"),
        random_bytes(300_000, 2),
    )
    .unwrap();
    std::fs::write(album.join("empty.txt"), b"").unwrap();
    let seeder = spawn_peerd(t.addr, &tmp.subdir("s"), &[]);
    let shared = seeder.sta(&[std::ffi::OsStr::new("share"), album.as_os_str()]);
    assert_eq!(shared.code, Some(0), "{shared:?}");
    let hash = to_hex(&seeder.wait_seeding("album", SEED_TIMEOUT).info_hash);
    wait_catalog(t.addr, "album", 1, 1, SEED_TIMEOUT);
    let other = spawn_peerd(t.addr, &tmp.subdir("o"), &[]);

    let entries = catalog(&other);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(
        (e.name.as_str(), e.file_count, e.is_dir()),
        ("album", 3, true)
    );
    assert_eq!(e.length, 370_000);
    let run = other.sta(&["list"]).ok();
    let row = run.stdout.lines().nth(1).expect("a row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], ["album/", "370.0", "kB", "3"], "{run:?}");

    let files = [
        ("cover.jpg", 70_000),
        ("disc 2/track.flac", 300_000),
        ("empty.txt", 0),
    ];
    let want = (
        "album".to_owned(),
        true,
        370_000,
        files.map(|(p, n)| (p.to_owned(), n)).to_vec(),
    );
    assert_eq!(ls_json(&other, "album"), want);
    assert_eq!(ls_json(&seeder, &hash), want);
    let run = other.sta(&["ls", "album"]).ok();
    assert_eq!(
        run.stdout,
        format!(
            " 70.0 kB  cover.jpg\n300.0 kB  disc 2/track.flac\n     0 B  empty.txt\n370.0 kB  total: 3 files in album/, info hash {hash}\n"
        )
    );
}
