//! Two sta-peerd on 127.0.0.1 that share no tracker (each has its own
//! sta-trackerd) find each other through the DHT alone: the leecher joins
//! through the seeder's node (`--dht-bootstrap`), the seeder announces its
//! file, the leecher's lookup returns the seeder and `sta get FILE.torrent`
//! finishes. Then the leecher restarts with no bootstrap node and rejoins
//! from the table it saved.

mod common;

use common::*;
use std::time::Duration;

const LENGTH: u64 = (1 << 20) + 4321;
const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn peers_with_no_common_tracker_meet_through_the_dht() {
    let tmp = TempDir::new("dht-e2e");
    let (ta, tb) = (tracker(&[]), tracker(&[]));
    let src = tmp.subdir("src").join("d.bin");
    write_random_file(&src, LENGTH, 5);
    let seeder = spawn_peerd(ta.addr, &tmp.subdir("seeder"), &[&src]);
    seeder.wait_seeding("d.bin", TIMEOUT);
    let torrent = tmp.path().join("d.torrent");
    seeder
        .sta(&["torrent", "d.bin", "-o", torrent.to_str().unwrap()])
        .ok();

    let boot = seeder.listen.to_string();
    let leech_dir = tmp.subdir("leecher");
    let mut leecher = spawn_peerd_with(tb.addr, &leech_dir, &[], &["--dht-bootstrap", &boot]);
    let got = leecher.sta(&["get", torrent.to_str().unwrap()]).ok();
    let dest = leecher.dir.join("d.bin");
    assert_eq!(got.stdout.trim(), dest.to_str().unwrap(), "{got:?}");
    assert_same_file(&src, &dest);

    // Stopped, it saves its table; restarted without a bootstrap node, it
    // loads it and asks the seeder's node again.
    leecher.daemon.terminate();
    let table = leech_dir.join("sta-peerd.dht");
    let saved = std::fs::read(&table).expect("the leecher saved its DHT table");
    assert!(saved.len() > 23, "table of {} bytes", saved.len());
    let again = spawn_peerd(tb.addr, &leech_dir, &[]);
    wait_for("the saved nodes to be loaded", TIMEOUT, || {
        again.log().contains("nodes loaded from").then_some(())
    });
}
