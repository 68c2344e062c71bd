//! Swarm scenarios on the simulator: real engines, the real tracker core,
//! a virtual network and clock (see src/sim).

use sta::engine::{MemStorage, Time};
use sta::sim::{HostId, LinkSpec, Outcome, RefStorage, Sim, SimStorage, World};
use std::time::Duration;

const MBIT: u64 = 1_000_000 / 8;

fn link(mbit: u64, ms: u64) -> LinkSpec {
    LinkSpec {
        up: mbit * MBIT,
        down: 0,
        latency: Duration::from_millis(ms),
        loss: 0.0,
    }
}

fn secs(s: u64) -> Time {
    Time::from_micros(s * 1_000_000)
}

fn world(seed: u64, piece_length: u32) -> World {
    World {
        seed,
        piece_length,
        ..World::default()
    }
}

/// A world with `seeders` holding NAME (`size` bytes) and `leechers`
/// asked to get it, all on `spec`.
fn swarm<S: SimStorage>(
    w: World,
    size: u64,
    seeders: usize,
    leechers: usize,
    spec: LinkSpec,
) -> (Sim<S>, Vec<HostId>, Vec<HostId>) {
    let mut sim = Sim::new(w, link(1000, 1));
    let seeds: Vec<HostId> = (0..seeders).map(|_| sim.add_host(spec.clone())).collect();
    for &s in &seeds {
        let path = sim.create_file(s, NAME, size, 7);
        sim.start(s, &[path]).expect("seeder starts");
    }
    // The seeders hash and announce first, as a user would share first.
    sim.run_until(secs(1));
    let leeches: Vec<HostId> = (0..leechers).map(|_| sim.add_host(spec.clone())).collect();
    for &l in &leeches {
        sim.start(l, &[]).expect("leecher starts");
        sim.get(l, NAME);
    }
    (sim, seeds, leeches)
}

const NAME: &str = "data.bin";

/// The bytes of NAME on `h`'s disk, finished.
fn file_of(sim: &Sim<MemStorage>, h: HostId) -> Option<&Vec<u8>> {
    let s = sim.hosts[h].storage()?;
    s.fs.files.get(&Sim::<MemStorage>::path(h, NAME))
}

fn assert_all_done<S: SimStorage>(sim: &Sim<S>, hosts: &[HostId]) {
    for &h in hosts {
        assert!(
            matches!(sim.hosts[h].outcome, Outcome::Done(_)),
            "host {h}: {:?}",
            sim.hosts[h].outcome
        );
    }
}

#[test]
fn leechers_get_the_exact_bytes() {
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(1, 64 * 1024), 1 << 20, 1, 3, link(50, 2));
    assert!(sim.run_until_settled(&leeches, secs(60)));
    assert_all_done(&sim, &leeches);
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    for &l in &leeches {
        assert!(file_of(&sim, l) == Some(&source), "host {l} differs");
    }
}

fn listen(sim: &Sim<MemStorage>, h: HostId) -> std::net::SocketAddr {
    sim.hosts[h].listen
}

fn engine(sim: &Sim<MemStorage>, h: HostId) -> &sta::engine::Engine<MemStorage> {
    sim.hosts[h].engine.as_ref().expect("host runs")
}

/// Pieces of NAME `h` has verified.
fn have(sim: &Sim<MemStorage>, h: HostId) -> u32 {
    let status = engine(sim, h).status();
    status.files.first().map_or(0, |f| f.have)
}

#[test]
fn a_liar_is_banned_and_honest_peers_finish_with_correct_bytes() {
    let w = world(2, 32 * 1024);
    let mut sim: Sim<MemStorage> = Sim::new(w, link(1000, 1));
    let seed = sim.add_host(link(20, 2));
    let liar = sim.add_host(link(100, 1));
    sim.hosts[liar].liar = true;
    for h in [seed, liar] {
        let path = sim.create_file(h, NAME, 1 << 20, 7);
        sim.start(h, &[path]).expect("starts");
    }
    sim.run_until(secs(1));
    let leeches: Vec<HostId> = (0..3).map(|_| sim.add_host(link(20, 3))).collect();
    for &l in &leeches {
        sim.start(l, &[]).expect("starts");
        sim.get(l, NAME);
    }
    assert!(sim.run_until_settled(&leeches, secs(120)));
    assert_all_done(&sim, &leeches);
    let source = file_of(&sim, seed).expect("source").clone();
    let liar_addr = listen(&sim, liar);
    let mut banned = 0;
    for &l in &leeches {
        assert!(
            file_of(&sim, l) == Some(&source),
            "host {l} has wrong bytes"
        );
        banned += usize::from(engine(&sim, l).is_banned(&liar_addr));
        for &h in leeches.iter().chain([&seed]) {
            let a = listen(&sim, h);
            assert!(!engine(&sim, l).is_banned(&a), "{l} banned honest {h}");
        }
    }
    // The liar is fast and unchokes everyone it can: leechers met it.
    assert!(banned >= 1, "nobody banned the liar");
}

#[test]
fn a_seeder_vanishing_midway_leaves_the_job_to_another_holder() {
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(3, 32 * 1024), 2 << 20, 2, 3, link(20, 2));
    // 2 MiB at 2 x 20 Mbit/s takes about 0.5 s; stop the first seeder
    // early in the transfer.
    sim.run_until(Time::from_micros(1_300_000));
    // What went on the wire: the engine's own count includes blocks
    // still queued for sending.
    let before = sim.net.block_sent(seeds[1]);
    let gone_up = sim.net.block_sent(seeds[0]);
    sim.kill(seeds[0]);
    assert!(
        leeches.iter().all(|&l| have(&sim, l) < 64),
        "killed too late"
    );
    assert!(sim.run_until_settled(&leeches, secs(120)));
    assert_all_done(&sim, &leeches);
    assert!(gone_up < 2 << 20, "the seeder had served the whole file");
    let after = sim.net.block_sent(seeds[1]);
    assert!(after > before, "the other seeder served nothing after");
    let source = file_of(&sim, seeds[1]).expect("source").clone();
    for &l in &leeches {
        assert!(file_of(&sim, l) == Some(&source), "host {l} differs");
    }
}

#[test]
fn end_game_asks_several_peers_for_the_last_blocks() {
    let mut w = world(4, 64 * 1024);
    w.count_dups = true;
    // Big enough that end-game (64 blocks in flight per peer) is the end
    // of the transfer, not all of it.
    let (mut sim, seeds, leeches) = swarm::<MemStorage>(w, 16 << 20, 3, 1, link(20, 5));
    assert!(sim.run_until_settled(&leeches, secs(60)));
    assert_all_done(&sim, &leeches);
    let l = &sim.hosts[leeches[0]];
    eprintln!(
        "end-game: {} of {} block bytes duplicated",
        l.dup_bytes, l.block_bytes
    );
    // Duplicates are end-game's: the same block asked of two seeders.
    assert!(l.dup_bytes > 0, "no block was received twice");
    assert!(
        l.dup_bytes < l.block_bytes / 4,
        "end-game wasted {} of {}",
        l.dup_bytes,
        l.block_bytes
    );
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    assert!(file_of(&sim, leeches[0]) == Some(&source));
}

#[test]
fn peers_dialing_each_other_at_once_keep_one_connection() {
    let (mut sim, _, leeches) =
        swarm::<MemStorage>(world(5, 32 * 1024), 4 << 20, 1, 2, link(10, 2));
    let (a, b) = (leeches[0], leeches[1]);
    sim.run_until(secs(2));
    for h in [a, b] {
        sim.kill(h);
    }
    sim.run_until(secs(3));
    // Restarted together, both re-check their pieces before the tracker
    // session is up, announce on its welcome and ask for peers at the
    // same tick: each learns of the other at once and both dial.
    let restart = sim.now();
    for h in [a, b] {
        sim.start(h, &[]).expect("restarts");
        sim.get(h, NAME);
    }
    assert!(sim.run_until_settled(&leeches, secs(120)));
    assert_all_done(&sim, &leeches);
    let dials = |x: HostId, y: HostId| -> Vec<Time> {
        sim.dials
            .iter()
            .filter(|d| (d.1, d.2) == (x, y) && d.0 >= restart)
            .map(|d| d.0)
            .collect()
    };
    let (ab, ba) = (dials(a, b), dials(b, a));
    // Crossing: each dialed before the other's connection reached it.
    let rtt = sim.net.rtt(a, b).as_micros() as u64;
    let crossed = ab.iter().any(|x| {
        ba.iter()
            .any(|y| x.as_micros().abs_diff(y.as_micros()) < rtt)
    });
    assert!(crossed, "no crossing dials: {ab:?} {ba:?}");
    for (x, y) in [(a, b), (b, a)] {
        let id = *engine(&sim, y).peer_id();
        let n = engine(&sim, x)
            .peer_sessions()
            .iter()
            .filter(|(_, p)| *p == id)
            .count();
        assert_eq!(n, 1, "host {x} has {n} sessions with {y}");
    }
}

#[test]
fn a_restarted_tracker_relearns_the_swarm() {
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(6, 32 * 1024), 2 << 20, 1, 2, link(10, 2));
    sim.run_until(secs(2));
    sim.kill(sta::sim::swarm::TRACKER);
    sim.run_until(secs(4));
    sim.start_tracker();
    let sessions0 = sim.tracker().map_or(0, |t| t.sessions());
    // Engines redial with backoff (at most 10 s) and re-announce.
    sim.run_until(secs(16));
    let sessions = sim.tracker().map_or(0, |t| t.sessions());
    assert_eq!(sessions0, 0);
    assert_eq!(sessions, 3, "not every peer came back");
    let late: Vec<HostId> = (0..2).map(|_| sim.add_host(link(10, 2))).collect();
    for &l in &late {
        sim.start(l, &[]).expect("starts");
        sim.get(l, NAME);
    }
    let all: Vec<HostId> = leeches.iter().chain(&late).copied().collect();
    assert!(sim.run_until_settled(&all, secs(120)));
    assert_all_done(&sim, &all);
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    for &l in &all {
        assert!(file_of(&sim, l) == Some(&source), "host {l} differs");
    }
}

#[test]
fn a_restarted_leecher_fetches_only_what_it_lacked() {
    let size = 4u64 << 20;
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(7, 64 * 1024), size, 1, 1, link(10, 2));
    let l = leeches[0];
    // 4 MiB at 10 Mbit/s: about 3.4 s; stop it half way.
    sim.run_until(Time::from_micros(2_700_000));
    let kept = u64::from(have(&sim, l)) * 64 * 1024;
    assert!(kept > size / 4 && kept < size * 3 / 4, "kept {kept}");
    sim.kill(l);
    sim.run_until(secs(4));
    let before = sim.hosts[l].block_bytes;
    sim.start(l, &[]).expect("restarts");
    sim.get(l, NAME);
    assert!(sim.run_until_settled(&leeches, secs(60)));
    assert_all_done(&sim, &leeches);
    let fetched = sim.hosts[l].block_bytes - before;
    eprintln!("resume: kept {kept}, fetched {fetched} after restart");
    assert!(
        fetched <= size - kept,
        "fetched {fetched} after restart; lacked {}",
        size - kept
    );
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    assert!(file_of(&sim, l) == Some(&source));
}

#[test]
fn a_full_disk_fails_the_get_and_a_retry_keeps_verified_pieces() {
    let size = 4u64 << 20;
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(8, 64 * 1024), size, 1, 1, link(10, 2));
    let l = leeches[0];
    sim.run_until(Time::from_micros(2_500_000));
    if let Some(s) = sim.hosts[l].storage_mut() {
        s.full = true;
    }
    assert!(sim.run_until_settled(&leeches, secs(30)));
    let Outcome::Failed(line) = sim.hosts[l].outcome.clone() else {
        panic!("the get did not fail: {:?}", sim.hosts[l].outcome);
    };
    assert!(
        line.contains("\"code\":\"io\"") && line.contains("cannot write"),
        "{line}"
    );
    let kept = u64::from(have(&sim, l)) * 64 * 1024;
    assert!(kept > 0);
    if let Some(s) = sim.hosts[l].storage_mut() {
        s.full = false;
    }
    // Blocks requested before the failure still arrive for a while and
    // are thrown away; count what the engine took.
    let downloaded = |sim: &Sim<MemStorage>| engine(sim, l).status().files[0].downloaded;
    let before = downloaded(&sim);
    sim.get(l, NAME);
    assert!(sim.run_until_settled(&leeches, secs(60)));
    assert_all_done(&sim, &leeches);
    let fetched = downloaded(&sim) - before;
    eprintln!("disk full: {line}\nkept {kept}, fetched {fetched} after the retry");
    assert!(
        fetched <= size - kept,
        "fetched {fetched}, lacked {}",
        size - kept
    );
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    assert!(file_of(&sim, l) == Some(&source));
}

#[test]
fn peers_join_and_leave_while_the_swarm_runs() {
    let (mut sim, seeds, leeches) =
        swarm::<MemStorage>(world(9, 32 * 1024), 2 << 20, 1, 5, link(10, 3));
    sim.run_until(secs(2));
    let late: Vec<HostId> = (0..3).map(|_| sim.add_host(link(10, 3))).collect();
    for &l in &late {
        sim.start(l, &[]).expect("starts");
        sim.get(l, NAME);
    }
    sim.run_until(Time::from_micros(2_500_000));
    let (gone, stay) = leeches.split_at(2);
    for &g in gone {
        sim.kill(g);
    }
    let all: Vec<HostId> = stay.iter().chain(&late).copied().collect();
    assert!(sim.run_until_settled(&all, secs(120)));
    assert_all_done(&sim, &all);
    let source = file_of(&sim, seeds[0]).expect("source").clone();
    for &l in &all {
        assert!(file_of(&sim, l) == Some(&source), "host {l} differs");
    }
}

fn scenario(seed: u64, leechers: usize, size: u64) -> sta::sim::scenario::Scenario {
    sta::sim::scenario::Scenario {
        seed,
        leechers,
        seeders: 1,
        size,
        piece_length: 256 * 1024,
        seed_up: 50 * MBIT,
        classes: vec![10 * MBIT, 50 * MBIT, 100 * MBIT],
        down: None,
        latency: (Duration::from_millis(1), Duration::from_millis(50)),
        loss: 0.001,
        late: Some((3, Duration::from_secs(2))),
        seed_leaves_after: None,
        free_riders: 0,
        net: sta::sim::NetParams::default(),
        max_peers: 50,
        upload_slots: 4,
        hash_rate: 1_000_000_000,
        limit: Duration::from_secs(600),
        usage: None,
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    use sta::sim::scenario::{report, run};
    let sc = scenario(11, 12, 8 << 20);
    let (a, b) = (run(&sc).expect("runs"), run(&sc).expect("runs"));
    assert_eq!(report(&sc, &a, true), report(&sc, &b, true));
    assert_eq!(a.events, b.events);
    assert!(a.last.is_some(), "{}", report(&sc, &a, true));
    let other = scenario(12, 12, 8 << 20);
    let c = run(&other).expect("runs");
    assert_ne!(report(&sc, &a, true), report(&other, &c, true));
}

#[test]
fn nobody_beats_the_lower_bound() {
    use sta::sim::scenario::run;
    let mut sc = scenario(13, 10, 16 << 20);
    sc.late = None;
    sc.loss = 0.0;
    let r = run(&sc).expect("runs");
    let last = r.last.expect("all finish");
    assert!(last >= r.bound, "last {last} under the bound {}", r.bound);
    // The one seeder sends every piece at least once.
    assert!(r.seed_upload >= 1.0, "seed upload {}", r.seed_upload);
}

#[test]
fn one_transfer_takes_the_link_time_with_tcp_overhead() {
    // One seeder, one leecher, 8 MiB over 10 Mbit/s: the payload plus 52
    // header bytes per 1448 takes 8 MiB * 1500/1448 / 1.25 MB/s = 6.95 s.
    let w = world(14, 256 * 1024);
    let (mut sim, _, leeches) = swarm::<RefStorage>(w, 8 << 20, 1, 1, link(10, 1));
    assert!(sim.run_until_settled(&leeches, secs(60)));
    let h = &sim.hosts[leeches[0]];
    let took = h.finish_time().expect("done").as_micros() - h.asked.expect("asked").as_micros();
    let ideal = (8u64 << 20) as f64 * 1500.0 / 1448.0 / (10.0 * MBIT as f64);
    let took = took as f64 / 1e6;
    assert!(
        took >= ideal && took < ideal * 1.05,
        "took {took:.3} s, ideal {ideal:.3} s"
    );
}

#[test]
fn a_liar_is_banned_with_blocks_by_reference() {
    let w = world(15, 64 * 1024);
    let mut sim: Sim<RefStorage> = Sim::new(w, link(1000, 1));
    let seed = sim.add_host(link(20, 2));
    let liar = sim.add_host(link(100, 1));
    sim.hosts[liar].liar = true;
    for h in [seed, liar] {
        let path = sim.create_file(h, NAME, 4 << 20, 7);
        sim.start(h, &[path]).expect("starts");
    }
    sim.run_until(secs(1));
    let leeches: Vec<HostId> = (0..4).map(|_| sim.add_host(link(20, 3))).collect();
    for &l in &leeches {
        sim.start(l, &[]).expect("starts");
        sim.get(l, NAME);
    }
    assert!(sim.run_until_settled(&leeches, secs(120)));
    assert_all_done(&sim, &leeches);
    let liar_addr = sim.hosts[liar].listen;
    let mut banned = 0;
    for &l in &leeches {
        let path = Sim::<RefStorage>::path(l, NAME);
        let good = sim.hosts[l].storage().and_then(|s| s.good_blocks(&path));
        assert_eq!(good, Some(256), "host {l}: not every block is good");
        let e = sim.hosts[l].engine.as_ref().expect("runs");
        banned += usize::from(e.is_banned(&liar_addr));
    }
    assert!(banned >= 1, "nobody banned the liar");
}

#[test]
fn agrees_with_the_network_namespace_measurement() {
    // 1 seed + 7 leechers, 64 MiB, 512 KiB pieces, 50 Mbit/s egress per
    // host (tc on veth, so Ethernet headers count): on real namespaces the
    // last leecher finished in 12.75, 12.57 and 12.57 s (median 12.57 s,
    // 2026-12-01, the seed showing pieces a few at a time and fast peers'
    // requests kept across a choke; before, 14.56 s with the end-game gate
    // and 16.6-17.0 s without, which the simulator matched too). An engine
    // change that moves this
    // figure needs a new measurement: `cargo test --release --test netns
    // table_setup_a -- --ignored --nocapture`.
    use sta::sim::scenario::run;
    let mut sc = scenario(1, 7, 64 << 20);
    sc.piece_length = 512 * 1024;
    sc.classes = vec![50 * MBIT];
    sc.down = Some(0);
    sc.latency = (Duration::from_micros(50), Duration::from_micros(50));
    sc.loss = 0.0;
    sc.late = None;
    sc.net.overhead = 66;
    let last = run(&sc).expect("runs").last.expect("all finish");
    assert!(
        (last - 12.57).abs() / 12.57 < 0.15,
        "last finish {last:.2} s"
    );
}

#[test]
fn a_seed_leaving_after_twice_the_file_leaves_a_complete_swarm() {
    use sta::sim::scenario::run;
    let mut sc = scenario(16, 10, 8 << 20);
    sc.loss = 0.0;
    sc.seed_leaves_after = Some(2.0);
    let r = run(&sc).expect("runs");
    assert!(r.seed_left[0].is_some(), "the seed never left");
    assert!(r.last.is_some(), "not every leecher finished");
    // Checked every 20 ms: at 50 Mbit/s the seed overshoots by < 1/8 F.
    assert!(
        r.seed_upload >= 2.0 && r.seed_upload < 2.125,
        "seed upload {}",
        r.seed_upload
    );
}

#[test]
fn sta_sim_prints_the_same_report_for_the_same_seed() {
    let run = |seed: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sta-sim"))
            .args(["--peers", "4", "--size", "4M", "--piece-size", "256K"])
            .args([
                "--mix",
                "10mbit,50mbit",
                "--latency",
                "1ms-20ms",
                "--seed",
                seed,
            ])
            .output()
            .expect("sta-sim runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("text")
    };
    let a = run("3");
    assert!(a.contains("finished: 4 of 4"), "{a}");
    assert!(
        a.lines().filter(|l| l.starts_with("peer 10.")).count() == 4,
        "{a}"
    );
    assert_eq!(a, run("3"));
}

#[test]
fn free_riders_finish_later_than_peers_that_upload() {
    // 40 leechers on equal 20 Mbit/s links, 10 of them never upload (no
    // upload slot): tit-for-tat serves those that send first, and the
    // seed those that pass its pieces on. Measured (seeds 1, 3, 5): free
    // riders' median finish 1.10, 1.24 and 1.20 x the others'.
    use sta::sim::scenario::run;
    let mut ratios = Vec::new();
    for seed in [1, 3, 5] {
        let mut sc = scenario(seed, 40, 64 << 20);
        sc.classes = vec![20 * MBIT];
        sc.seed_up = 20 * MBIT;
        sc.free_riders = 10;
        sc.late = None;
        sc.loss = 0.0;
        let r = run(&sc).expect("runs");
        assert!(r.last.is_some(), "every leecher finishes, free riders too");
        let (riders, honest) = (r.median_took(true), r.median_took(false));
        ratios.push(riders.unwrap_or(f64::NAN) / honest.unwrap_or(f64::NAN));
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    println!("free riders' median finish over the others': {ratios:.2?}");
    assert!(
        ratios.iter().all(|&r| r > 1.0) && mean >= 1.1,
        "free riders' median finish over the others': {ratios:?}"
    );
}

/// 1 seed + 7 leechers with three trackers: (last leecher's time, whether
/// every copy is the seed's), with or without each tracker killed in turn
/// (for 2 s each, one at a time) while the leechers fetch.
fn three_trackers(kill: bool, seed: u64) -> (Time, bool) {
    let mut sim: Sim<MemStorage> = Sim::with_trackers(world(seed, 64 * 1024), link(1000, 1), 3);
    let seed = sim.add_host(link(20, 5));
    let path = sim.create_file(seed, NAME, 4 << 20, 7);
    sim.start(seed, &[path]).expect("seeder starts");
    sim.run_until(secs(1));
    let leeches: Vec<HostId> = (0..7).map(|_| sim.add_host(link(20, 5))).collect();
    for &l in &leeches {
        sim.start(l, &[]).expect("leecher starts");
        sim.get(l, NAME);
    }
    // F/u = 4 MiB at 20 Mbit/s = 1.7 s: kills at 1.3, 1.9 and 2.5 s.
    let start = sim.now();
    if kill {
        for t in 0..3 {
            let at = start.as_micros() + 300_000 + 600_000 * t as u64;
            sim.run_until(Time::from_micros(at));
            sim.kill(t);
            sim.run_until(Time::from_micros(at + 200_000));
            assert!(
                (0..3).filter(|&k| sim.tracker_at(k).is_some()).count() == 2,
                "one tracker down at a time"
            );
            sim.start_tracker_at(t);
        }
    }
    assert!(sim.run_until_settled(&leeches, secs(120)));
    assert_all_done(&sim, &leeches);
    let last = leeches
        .iter()
        .filter_map(|&l| match sim.hosts[l].outcome {
            Outcome::Done(t) => Some(t),
            _ => None,
        })
        .max()
        .expect("done times");
    let source = file_of(&sim, seed).expect("source").clone();
    let same = leeches.iter().all(|&l| file_of(&sim, l) == Some(&source));
    // Every restarted tracker relearns every peer within its backoff.
    sim.run_until(Time::from_micros(last.as_micros() + 12_000_000));
    for t in 0..3 {
        let sessions = sim.tracker_at(t).map_or(0, |x| x.sessions());
        assert_eq!(sessions, 8, "tracker {t} knows {sessions} peers");
    }
    (
        Time::from_micros(last.as_micros() - start.as_micros()),
        same,
    )
}

/// The target (at most 1.1 x) is for the median: a 4 MiB swarm
/// lasts under 3 s, so one unlucky choke decision moves a single run by
/// 15 % either way (seeds 1-10: 0.90 to 1.13 x with the choker of
/// 2026-12-02, 0.91 to 1.16 x with a seed's extra slot).
#[test]
fn three_trackers_each_killed_in_turn_cost_the_swarm_little() {
    let mut ratios = Vec::new();
    for seed in 1..=5 {
        let (calm, same) = three_trackers(false, seed);
        assert!(same, "a copy differs (no kill, seed {seed})");
        let (killed, same) = three_trackers(true, seed);
        assert!(same, "a copy differs (kills, seed {seed})");
        ratios.push(killed.as_micros() as f64 / calm.as_micros() as f64);
    }
    eprintln!("last leecher with kills over without, seeds 1-5: {ratios:.3?}");
    let mut sorted = ratios.clone();
    sorted.sort_by(f64::total_cmp);
    assert!(sorted[2] <= 1.1, "kills slowed the swarm by {ratios:.3?}");
    assert!(sorted[4] <= 1.2, "kills slowed one run by {ratios:.3?}");
}

/// No tracker at all: a leecher with only the info hash and the seeder's
/// address (a magnet's x.pe) gets the info dict from it (BEP 9) and the
/// file; a second leecher given only the first leecher's address gets the
/// dict from that leecher, learns of the seeder through its PEX (BEP 11),
/// which no tracker told anyone, and downloads from both.
#[test]
fn without_a_tracker_magnets_fetch_the_dict_from_peers_and_pex_spreads_the_seeder() {
    let w = World {
        no_trackers: true,
        ..world(9, 64 * 1024)
    };
    let mut sim: Sim<MemStorage> = Sim::new(w, link(1000, 1));
    let seed = sim.add_host(link(20, 5));
    // 16 MiB at 20 Mbit/s: longer than PEX's first message takes.
    let path = sim.create_file(seed, NAME, 16 << 20, 7);
    sim.start(seed, &[path]).expect("seeder starts");
    sim.run_until(secs(1));
    let hash = sta::meta::info::to_hex(&engine(&sim, seed).status().files[0].info_hash);
    let first = sim.add_host(link(20, 5));
    sim.start(first, &[]).expect("starts");
    sim.get(first, &format!("{hash} peer {}", listen(&sim, seed)));
    // The first leecher holds the dict (and some pieces) before the
    // second asks it.
    sim.run_until(secs(3));
    assert!(
        have(&sim, first) > 0,
        "the first leecher got the dict and started"
    );
    let second = sim.add_host(link(20, 5));
    sim.start(second, &[]).expect("starts");
    sim.get(second, &format!("{hash} peer {}", listen(&sim, first)));
    assert!(sim.run_until_settled(&[first, second], secs(120)));
    assert_all_done(&sim, &[first, second]);
    let source = file_of(&sim, seed).expect("source").clone();
    for h in [first, second] {
        assert_eq!(file_of(&sim, h), Some(&source), "host {h}");
    }
    let from = &engine(&sim, second).status().files[0].from_peers;
    eprintln!("the second leecher's verified bytes by peer: {from:?}");
    let seed_addr = listen(&sim, seed);
    assert!(
        from.iter().any(|p| p.addr == seed_addr && p.bytes > 0),
        "the second leecher downloaded from the seeder it learned of by PEX: {from:?}"
    );
}

#[test]
fn a_seed_leaving_after_one_copy_of_the_file_leaves_a_complete_swarm() {
    // Scenario (d) of bench/swarm.sh: 1 seed + 7 leechers at 50 Mbit/s,
    // the seed gone once one F of blocks is out. Every piece must leave it
    // once before any leaves twice, whatever its sockets hold. Seeds 7,
    // 13, 15 and 16 stranded a piece before: the leecher shown it had all its
    // requests taken by second copies the seed held back, and the seed
    // then sent those instead (now it rejects them,
    // `wire::turn_seconds_away`, and holds the others' longer,
    // `reveal::UNASKED_PATIENCE`). Seeds 1-16 all complete.
    use sta::sim::scenario::run;
    for seed in [1, 2, 3, 7, 13, 15, 16] {
        let mut sc = scenario(seed, 7, 64 << 20);
        sc.piece_length = 512 * 1024;
        sc.classes = vec![50 * MBIT];
        sc.latency = (Duration::from_millis(1), Duration::from_millis(1));
        sc.loss = 0.0;
        sc.late = None;
        sc.net.overhead = 66;
        sc.seed_leaves_after = Some(1.0);
        let r = run(&sc).expect("runs");
        assert!(r.seed_left[0].is_some(), "seed {seed}: the seed never left");
        assert!(r.seed_upload < 1.01, "seed {seed}: {}", r.seed_upload);
        assert!(r.last.is_some(), "seed {seed}: not every leecher finished");
    }
}
