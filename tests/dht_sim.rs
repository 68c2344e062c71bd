//! 1,000 DHT nodes on the simulator (src/sim/dht.rs): each of 1,000 random
//! info hashes is announced by one random node and looked up from another;
//! at least 99% of the lookups must return the announcer. Prints the
//! report (median and p90 queries per lookup, times).

use sta::sim::dht::{self, DhtScenario};
use std::time::{Duration, Instant};

fn run(sc: &DhtScenario, want: f64) {
    let t0 = Instant::now();
    let r = dht::run(sc);
    let report = r.render(sc);
    println!("{report}wall: {:.2} s", t0.elapsed().as_secs_f64());
    assert!(
        r.success_rate() >= want,
        "success {:.3} below {want}:\n{report}",
        r.success_rate()
    );
}

#[test]
fn thousand_nodes_find_99_percent_of_announcers() {
    run(&DhtScenario::default(), 0.99);
}

#[test]
fn with_5_percent_loss_still_99_percent() {
    let sc = DhtScenario {
        loss: 0.05,
        latency: (Duration::from_millis(5), Duration::from_millis(150)),
        seed: 2,
        ..DhtScenario::default()
    };
    run(&sc, 0.99);
}
