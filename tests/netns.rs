//! A swarm on emulated hosts (bench/netns.sh): 1 seed and 4 leechers,
//! each on its own network namespace with a 50 Mbit/s upload link, the
//! tracker on an unshaped host. Every leecher must complete within the
//! deadline with the source's bytes.
//!
//! The figures printed: the last leecher's time over F/u (F the file, u
//! one host's upload rate; the lower bound for 4 leechers fed by one seed
//! is about F/u when leechers relay everything) and the seed's upload over
//! F (1.0 when every byte leaves the seed once and the leechers pass it
//! on). The issue "Swarm efficiency on real (emulated) hosts" targets at
//! most 1.3 x F, and the test fails above it (measured 1.09-1.16 x F on
//! 2026-12-01, last leecher 1.21-1.27 x F/u).
//!
//! Needs root and iproute2 (`ip netns`, `tc`); without them it fails,
//! saying so, rather than passing. The kernel here has no netem: links
//! have a rate but no delay.

mod common;

use common::netns::{Hosts, TRACKER_PORT};
use common::{ControlConn, TempDir, assert_same_file, write_random_file};
use sta::control::{FileState, Reply, StatusReport};
use std::net::{SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

const PIECE_SIZE: &str = "524288";
const RATE: &str = "50mbit";
const RATE_BITS: f64 = 50e6;
/// Every leecher of the CI test must be done this long after the `get`s
/// were sent (F/u is 2.7 s there).
const DEADLINE: Duration = Duration::from_secs(60);
/// How often the leechers' status is read while they download.
const POLL: Duration = Duration::from_millis(50);
/// The target for the seed's upload, in units of F.
const SEED_UPLOAD_TARGET: f64 = 1.3;

/// How many seeders the tracker lists for `name`, asked through `peer`.
fn listed_seeders(peer: &common::Peerd, name: &str) -> Option<u64> {
    let Reply::Ok(v) = peer.request("list\n").1 else {
        return None;
    };
    v.get("files")?
        .as_array()?
        .iter()
        .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))?
        .get("seeders")?
        .as_u64()
}

/// The seed's `uploaded` for `name`, from `sta status --json`.
fn seed_uploaded(seed: &common::Peerd, name: &str) -> u64 {
    let run = seed.sta(&["status", "--json"]).ok();
    let line = run.stdout.trim();
    let json = sta::json::parse(line)
        .unwrap_or_else(|e| panic!("`sta status --json` printed {line:?}: {e:?}"));
    let status = StatusReport::from_json(&json)
        .unwrap_or_else(|e| panic!("`sta status --json`: {e}; output {line:?}"));
    let file = status.files.iter().find(|f| f.name == name);
    file.unwrap_or_else(|| panic!("the seed does not list {name}"))
        .uploaded
}

/// What one swarm run measured.
struct Outcome {
    /// When each leecher was seen complete, from the `get`s.
    times: Vec<Duration>,
    /// The seed's `uploaded` once the last leecher completed.
    uploaded: u64,
    file_size: u64,
}

impl Outcome {
    fn last(&self) -> Duration {
        self.times.iter().max().copied().unwrap_or_default()
    }

    /// F/u: the time one host's upload link takes to send the file once.
    fn f_over_u(&self) -> f64 {
        self.file_size as f64 * 8.0 / RATE_BITS
    }

    fn upload_ratio(&self) -> f64 {
        self.uploaded as f64 / self.file_size as f64
    }

    fn print(&self) {
        println!(
            "1 seed + {} leechers, {} MiB, {RATE} up each: leechers done at {:?}",
            self.times.len(),
            self.file_size >> 20,
            self.times
                .iter()
                .map(|t| format!("{:.2}s", t.as_secs_f64()))
                .collect::<Vec<_>>()
        );
        println!(
            "last leecher {:.2} s = {:.2} x F/u (F/u = {:.2} s); seed uploaded {} B = {:.2} x F",
            self.last().as_secs_f64(),
            self.last().as_secs_f64() / self.f_over_u(),
            self.f_over_u(),
            self.uploaded,
            self.upload_ratio()
        );
    }
}

/// One seed on h1 and `leechers` leechers on h2.., every host's upload
/// shaped to [`RATE`], the tracker on the unshaped h0; a `file_size` file
/// of [`PIECE_SIZE`] pieces. Every leecher must complete by `deadline`
/// (from the `get`s) with the source's bytes. Hosts, daemons and files
/// are removed on return, also when it panics.
fn run_swarm(leechers: usize, file_size: u64, deadline: Duration) -> Outcome {
    common::netns::require();
    // Declared first, so dropped last: the daemons below stop (by pid)
    // before the namespaces go.
    let hosts = Hosts::up(1 + leechers, RATE);
    let tmp = TempDir::in_shm("netns");
    let tracker = hosts.tracker();
    let tracker_addr = SocketAddr::V4(SocketAddrV4::new(hosts.ip(0), TRACKER_PORT));
    assert_eq!(tracker.addr, tracker_addr);

    let name = "swarm.bin";
    let seed_dir = tmp.subdir("seed");
    let source = seed_dir.join(name);
    write_random_file(&source, file_size, 7);
    let source_s = source.to_str().expect("UTF-8 path");
    let seed = hosts.peerd(
        1,
        tracker_addr,
        &seed_dir,
        &["--piece-size", PIECE_SIZE, "--share", source_s],
    );
    let shared = seed.wait_seeding(name, Duration::from_secs(60));
    let info_hash = common::hex(&shared.info_hash);

    let peers: Vec<_> = (0..leechers)
        .map(|i| {
            let dir = tmp.subdir(&format!("leecher{}", i + 1));
            hosts.peerd(2 + i, tracker_addr, &dir, &["--piece-size", PIECE_SIZE])
        })
        .collect();
    // The tracker is reachable only inside the namespaces, so its catalog
    // is read through a leecher (`list`), not from here.
    common::wait_for(
        "the tracker to list the seed",
        Duration::from_secs(10),
        || listed_seeders(&peers[0], name).filter(|&n| n >= 1),
    );

    // The clock starts as the `get`s go out; each is confirmed by its
    // first reply (an error fails the test), then the connection is
    // dropped: the download goes on (spec/control.md) and is followed by
    // polling `status`, which bounds every wait by the deadline.
    let start = Instant::now();
    let request = format!("get {info_hash}\n");
    for (i, l) in peers.iter().enumerate() {
        let mut conn = ControlConn::open(&l.control, request.as_bytes());
        match conn.next_reply() {
            Some(Reply::Err(e)) => panic!("leecher {}: get failed: {e:?}", i + 1),
            Some(_) => {}
            None => panic!("leecher {}: control socket closed after get", i + 1),
        }
    }
    let mut done: Vec<Option<Duration>> = vec![None; leechers];
    while done.iter().any(Option::is_none) {
        assert!(
            start.elapsed() < deadline,
            "not every leecher completed within {deadline:?}: {done:?}; (have, pieces): {:?}",
            peers
                .iter()
                .map(|l| l.file(name).map(|f| (f.have, f.pieces)))
                .collect::<Vec<_>>()
        );
        for (i, l) in peers.iter().enumerate() {
            if done[i].is_none() && l.file(name).is_some_and(|f| f.state == FileState::Seeding) {
                done[i] = Some(start.elapsed());
            }
        }
        thread::sleep(POLL);
    }
    let outcome = Outcome {
        times: done.into_iter().flatten().collect(),
        uploaded: seed_uploaded(&seed, name),
        file_size,
    };
    outcome.print();

    for l in &peers {
        assert_same_file(&source, &l.dir.join(name));
    }
    // Every piece must leave the seed at least once: less is a miscount.
    assert!(
        outcome.uploaded >= file_size,
        "the seed reports {} B uploaded, less than the file ({file_size} B)",
        outcome.uploaded
    );
    outcome
}

#[test]
fn one_seed_four_leechers_on_shaped_hosts() {
    let outcome = run_swarm(4, 16 << 20, DEADLINE);
    seed_upload(outcome.upload_ratio());
}

/// The table, setup (a): 1 seed + 7 leechers, 64 MiB, 3 runs (8 x
/// 50 Mbit/s is as much as this 2-core machine shapes faithfully). A
/// benchmark, not a check: `cargo test --release --test netns -- --ignored
/// --nocapture`; bench/README.md has the figures.
#[test]
#[ignore = "benchmark, about a minute: run with --ignored"]
fn table_setup_a_one_seed_seven_leechers() {
    let runs: Vec<Outcome> = (0..3)
        .map(|_| run_swarm(7, 64 << 20, Duration::from_secs(120)))
        .collect();
    println!("setup (a), 3 runs:");
    for (i, o) in runs.iter().enumerate() {
        println!(
            "  run {}: last leecher {:.2} s = {:.2} x F/u; seed upload {:.2} x F",
            i + 1,
            o.last().as_secs_f64(),
            o.last().as_secs_f64() / o.f_over_u(),
            o.upload_ratio()
        );
    }
}

/// IPv6 between namespaces: the tracker listens on both families (two
/// sockets), the peers reach it and each other over IPv6 (fd77::/64),
/// and the bytes arrive from the seed's IPv6 address.
#[test]
fn a_transfer_over_ipv6_between_namespaces() {
    common::netns::require();
    let hosts = Hosts::up(2, "200mbit");
    let tmp = TempDir::in_shm("netns-v6");
    let v4 = SocketAddrV4::new(hosts.ip(0), TRACKER_PORT).to_string();
    let v6 = std::net::SocketAddrV6::new(hosts.ip6(0), TRACKER_PORT, 0, 0);
    let v6_s = v6.to_string();
    let _tracker = hosts.spawn_daemon(
        0,
        env!("CARGO_BIN_EXE_sta-trackerd"),
        &["--listen", &v4, "--listen-v6", &v6_s],
    );
    let seed_dir = tmp.subdir("seed");
    let source = seed_dir.join("six.bin");
    write_random_file(&source, 4 << 20, 6);
    let listen6 = |h: usize| format!("[{}]:6881", hosts.ip6(h));
    let seed_v6 = listen6(1);
    let seed = hosts.peerd(
        1,
        SocketAddr::V6(v6),
        &seed_dir,
        &["--listen-v6", &seed_v6, "--share", source.to_str().unwrap()],
    );
    seed.wait_seeding("six.bin", Duration::from_secs(30));
    let leech_v6 = listen6(2);
    let leecher = hosts.peerd(
        2,
        SocketAddr::V6(v6),
        &tmp.subdir("leech"),
        &["--listen-v6", &leech_v6],
    );
    leecher.sta(&["get", "six.bin"]).ok();
    assert_same_file(&source, &leecher.dir.join("six.bin"));
    let status = leecher.status();
    let f = status.files.iter().find(|f| f.name == "six.bin").unwrap();
    let want: SocketAddr = seed_v6.parse().unwrap();
    assert!(
        !f.from_peers.is_empty() && f.from_peers.iter().all(|p| p.addr == want),
        "bytes came from {:?}, not {want}",
        f.from_peers
    );
}

/// The target: the seed uploads at most 1.3 x F.
fn seed_upload(ratio: f64) {
    assert!(
        ratio <= SEED_UPLOAD_TARGET,
        "the seed uploaded {ratio:.2} x F, above the target {SEED_UPLOAD_TARGET} x F"
    );
    println!("seed upload target met: {ratio:.2} x F <= {SEED_UPLOAD_TARGET} x F");
}
