//! Directory shares end to end, on the real binaries: a tree download
//! interrupted and resumed by a restarted daemon, and a file of a shared
//! tree cut short under the seeder.

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const PIECE: u32 = 512 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

/// `root/a` (4 whole pieces), `root/sub/b` and `root/sub/c`, random bytes.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    write_random_file(&root.join("a"), 4 * u64::from(PIECE), 1);
    write_random_file(&root.join("sub/b"), 1_000_123, 2);
    write_random_file(&root.join("sub/c"), 700_000, 3);
}

fn assert_same_tree(want: &Path, got: &Path) {
    for rel in ["a", "sub/b", "sub/c"] {
        assert_same_file(&want.join(rel), &got.join(rel));
    }
}

#[test]
fn a_restarted_daemon_resumes_a_tree_and_fetches_only_what_is_missing() {
    let t = tracker(&[]);
    let tmp = TempDir::new("tree-resume");
    let src = tmp.subdir("src").join("tree");
    make_tree(&src);
    let info = sta::cli::torrent::hash_file(&src, PIECE).unwrap();
    assert!(info.is_multi());
    // What an interrupted daemon leaves: the staging directory with the
    // first file complete, and the metadata beside it.
    let dir = tmp.subdir("leech");
    std::fs::create_dir_all(dir.join("tree.part")).unwrap();
    std::fs::copy(src.join("a"), dir.join("tree.part/a")).unwrap();
    std::fs::write(dir.join("tree.part.info"), &info.bencoded).unwrap();
    let leecher = spawn_peerd(t.addr, &dir, &[]);
    let resumed = wait_for("the resume check", TIMEOUT, || {
        leecher.file("tree").filter(|f| f.have == 4)
    });
    assert_eq!(resumed.pieces, info.num_pieces());
    assert!(!dir.join("tree").exists(), "not published before complete");

    let seeder = spawn_peerd_with(t.addr, &tmp.subdir("seed"), &[&src], &[]);
    seeder.wait_seeding("tree", TIMEOUT);
    let got = leecher.sta(&["get", "tree"]).ok();
    assert_eq!(got.stdout.trim(), dir.join("tree").to_str().unwrap());
    assert_same_tree(&src, &dir.join("tree"));
    assert!(!dir.join("tree.part").exists());
    assert!(!dir.join("tree.part.info").exists());
    let up = seeder.file("tree").unwrap().uploaded;
    let missing = info.length - 4 * u64::from(PIECE);
    assert!(
        up <= missing + u64::from(PIECE),
        "the seeder sent {up} bytes; only {missing} were missing"
    );
}

#[test]
fn a_file_cut_short_in_a_shared_tree_stops_the_share_not_the_daemon() {
    let t = tracker(&[]);
    let tmp = TempDir::new("tree-shrink");
    let src = tmp.subdir("src").join("tree");
    make_tree(&src);
    let mut seeder = spawn_peerd_with(t.addr, &tmp.subdir("seed"), &[&src], &[]);
    seeder.wait_seeding("tree", TIMEOUT);
    std::fs::OpenOptions::new()
        .write(true)
        .open(src.join("sub/b"))
        .unwrap()
        .set_len(10)
        .unwrap();
    let leecher = spawn_peerd(t.addr, &tmp.subdir("leech"), &[]);
    let get = sta_in_background_for(&leecher.control, &["get", "tree"], TIMEOUT);
    wait_for("the seeder to stop sharing the tree", TIMEOUT, || {
        seeder
            .log()
            .contains("changed size on disk; no longer sharing it")
            .then_some(())
    });
    seeder.daemon.assert_running();
    assert!(seeder.file("tree").is_none());
    // The leecher never publishes a tree with the cut file's bytes.
    leecher.sta(&["remove", "tree"]).ok();
    let run = get.join().unwrap();
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(!leecher.dir.join("tree").exists());
}
