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
    s.disk.get(&Sim::<MemStorage>::path(h, NAME))
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
