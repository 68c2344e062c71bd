//! End to end: sta-peerd's rate limits with the real binaries on
//! 127.0.0.1. Only lower bounds on time are asserted (a limited transfer
//! cannot be faster than the limit allows, whatever the machine); how
//! close to the limit the rate gets is bench/ratelimit.sh's business.

mod common;

use common::*;
use std::time::{Duration, Instant};

const SEED_TIMEOUT: Duration = Duration::from_secs(25);

/// Seconds `bytes` take at `rate`, less 10 %: the least a limited
/// transfer may take (the bucket's burst is far below 10 %).
fn least(bytes: u64, rate: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 / rate as f64 * 0.9)
}

/// `sta limits --json` (with `args`): (upload, download).
fn limits(p: &Peerd, args: &[&str]) -> (u64, u64) {
    let mut all = vec!["limits", "--json"];
    all.extend_from_slice(args);
    let run = p.sta(&all).ok();
    let v = sta::json::parse(run.stdout.trim()).expect("limits --json is JSON");
    let field = |k: &str| v.get(k).and_then(|n| n.as_u64()).expect("a number");
    (field("upload"), field("download"))
}

#[test]
fn an_upload_limit_holds_a_download_back() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("rate-up");
    let src = tmp.subdir("src").join("up.bin");
    let length = 4u64 << 20;
    let rate = 2_000_000;
    write_random_file(&src, length, 7);
    let seeder = spawn_peerd_with(
        t.addr,
        &tmp.subdir("s"),
        &[&src],
        &["--max-upload-rate", "2M"],
    );
    assert_eq!(limits(&seeder, &[]), (rate, 0));
    let text = seeder.sta(&["limits"]).ok().stdout;
    assert_eq!(text, "upload    2 MB/s\ndownload  unlimited\n");
    wait_catalog(t.addr, "up.bin", 1, 1, SEED_TIMEOUT);
    // Its control socket and tracker session are not limited: the
    // leecher's requests and the seeder's answers come at once.
    let leecher = spawn_peerd(t.addr, &tmp.subdir("l"), &[]);
    let start = Instant::now();
    leecher.sta(&["get", "up.bin"]).ok();
    let took = start.elapsed();
    assert_same_file(&src, &leecher.dir.join("up.bin"));
    assert!(
        took >= least(length, rate),
        "{length} bytes in {took:?} through a {rate} B/s limit"
    );
    eprintln!("{length} bytes at most {rate} B/s: {took:?}");
}

#[test]
fn sta_limits_changes_the_download_limit_at_run_time() {
    let t = tracker(&[]);
    let tmp = TempDir::in_shm("rate-down");
    let src = tmp.subdir("src").join("down.bin");
    let length = 6u64 << 20;
    write_random_file(&src, length, 8);
    let _seeder = spawn_peerd(t.addr, &tmp.subdir("s"), &[&src]);
    wait_catalog(t.addr, "down.bin", 1, 1, SEED_TIMEOUT);
    let leecher = spawn_peerd_with(
        t.addr,
        &tmp.subdir("l"),
        &[],
        &["--max-download-rate", "4MiB/s"],
    );
    assert_eq!(limits(&leecher, &[]), (0, 4 << 20));

    let get = sta_in_background_for(&leecher.control, &["get", "down.bin"], STA_TIMEOUT);
    wait_for("the download to start", SEED_TIMEOUT, || {
        let got = leecher.file("down.bin").map_or(0, |f| f.downloaded);
        (got > 0).then_some(())
    });
    // Slower from now on: every byte still to read goes through it (bytes
    // in the kernel's buffers are read, and counted, here).
    let slow = 1_000_000;
    assert_eq!(limits(&leecher, &["--download", "1M"]), (0, slow));
    let changed = Instant::now();
    let got = leecher.file("down.bin").map_or(0, |f| f.downloaded);
    let left = length.saturating_sub(got);
    assert!(left > length / 2, "too fast to test: {got} of {length}");
    get.join().expect("sta get").ok();
    let took = changed.elapsed();
    assert_same_file(&src, &leecher.dir.join("down.bin"));
    assert!(
        took >= least(left, slow),
        "{left} bytes in {took:?} after lowering the limit to {slow} B/s"
    );
    // And lifted again: 0 is unlimited.
    assert_eq!(
        limits(&leecher, &["--download", "0", "--upload", "1.5k"]),
        (1500, 0)
    );
    eprintln!("{left} bytes at most {slow} B/s: {took:?}");
}
