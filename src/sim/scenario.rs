//! A described swarm, as `sta-sim` takes it on its command line: seeders
//! and leechers on link classes, late joiners, a seed that leaves. Runs
//! on [`RefStorage`] (blocks by reference), so size is no object.

use super::host::Outcome;
use super::net::{HostId, LinkSpec, NetParams};
use super::report::lower_bound;
use super::store::RefStorage;
use super::swarm::{Sim, World, host_ip, mix_seed};
use super::usage::{Leecher, Usage};
use crate::engine::Time;
use crate::rng::Rng;
use std::fmt::Write;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub leechers: usize,
    pub seeders: usize,
    pub size: u64,
    pub piece_length: u32,
    /// Upload of each seeder, bytes per second.
    pub seed_up: u64,
    /// Link classes of leechers (upload, bytes per second), drawn per
    /// leecher with the seed.
    pub classes: Vec<u64>,
    /// Download of every host, bytes per second: `None` for the same as
    /// its upload (a symmetric port), `Some(0)` for unlimited.
    pub down: Option<u64>,
    /// One-way latency of each host, drawn uniformly from this range.
    pub latency: (Duration, Duration),
    pub loss: f64,
    /// `n` leechers join at `t` rather than at the start.
    pub late: Option<(usize, Duration)>,
    /// Seeders leave once they uploaded this many times the file.
    pub seed_leaves_after: Option<f64>,
    /// This many of the leechers (the first ones) never upload.
    pub free_riders: usize,
    pub net: NetParams,
    pub max_peers: usize,
    pub upload_slots: usize,
    pub hash_rate: u64,
    /// Simulated time after which the run gives up.
    pub limit: Duration,
    /// Sample each class's use of its download links this often.
    pub usage: Option<Duration>,
}

/// What happened to one leecher.
#[derive(Debug, Clone)]
pub struct PeerResult {
    pub host: HostId,
    pub spec: LinkSpec,
    pub joined: Duration,
    /// Time from joining to done; `None` if it never finished.
    pub took: Option<Duration>,
    pub free_rider: bool,
}

#[derive(Debug, Clone)]
pub struct RunResult {
    pub peers: Vec<PeerResult>,
    /// Lower bound on the last finish, seconds.
    pub bound: f64,
    /// Bytes the seeders uploaded, over the file size.
    pub seed_upload: f64,
    /// When the last leecher finished (from time zero), seconds.
    pub last: Option<f64>,
    pub events: u64,
    pub simulated: Duration,
    /// Peer connections dialed, and distinct pairs of hosts among them.
    pub dials: usize,
    pub dialed_pairs: usize,
    /// When each seeder left, if it did.
    pub seed_left: Vec<Option<Duration>>,
    /// The classes' use of their download links, if sampled.
    pub usage: Option<Usage>,
}

fn draw_latency(rng: &mut Rng, (lo, hi): (Duration, Duration)) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_micros() as u64;
    lo + Duration::from_micros(rng.next_u64() % (span + 1))
}

/// A swarm in which no block moved for this long is stuck for good (its
/// pieces are gone with a seed, say): the run ends there.
pub const STALLED: Duration = Duration::from_secs(300);

pub fn run(sc: &Scenario) -> Result<RunResult, String> {
    let world = World {
        seed: sc.seed,
        net: sc.net.clone(),
        piece_length: sc.piece_length,
        max_peers: sc.max_peers,
        upload_slots: sc.upload_slots,
        hash_rate: sc.hash_rate,
        count_dups: false,
        no_trackers: false,
    };
    let mut rng = Rng::new(mix_seed(sc.seed ^ 0x5eed));
    let tracker_link = LinkSpec {
        up: 125_000_000,
        down: 0,
        latency: Duration::from_micros(500),
        loss: 0.0,
    };
    let mut sim: Sim<RefStorage> = Sim::new(world, tracker_link);
    let name = "file.bin";
    let spec = |rng: &mut Rng, up: u64| LinkSpec {
        up,
        down: sc.down.unwrap_or(up),
        latency: draw_latency(rng, sc.latency),
        loss: sc.loss,
    };
    let mut seeds = Vec::new();
    for _ in 0..sc.seeders {
        let s = spec(&mut rng, sc.seed_up);
        let h = sim.add_host(s);
        let path = sim.create_file(h, name, sc.size, 1);
        sim.start(h, &[path])
            .map_err(|e| format!("the seeder cannot share the file: {e}"))?;
        seeds.push(h);
    }
    // Leechers ask once the seeders have hashed and announced the file,
    // as users do; at 1 s at the earliest.
    let shared = |sim: &Sim<RefStorage>| {
        seeds.iter().all(|&h| {
            sim.hosts[h]
                .engine
                .as_ref()
                .is_some_and(|e| !e.status().files.is_empty())
        })
    };
    sim.run_until(Time::from_duration(Duration::from_secs(1)));
    while !shared(&sim) {
        if sim.now() > Time::from_duration(sc.limit) {
            return Err("the seeders did not finish sharing the file".into());
        }
        let next = sim.now() + Duration::from_millis(100);
        sim.run_until(next);
    }
    let t0 = Duration::from_micros(sim.now().as_micros()) + Duration::from_millis(100);
    sim.run_until(Time::from_duration(t0));
    let late = sc.late.map_or(0, |(n, _)| n.min(sc.leechers));
    let mut leechers = Vec::new();
    for i in 0..sc.leechers {
        let up = match sc.classes.len() {
            0 => sc.seed_up,
            n => sc.classes[rng.below(n)],
        };
        let h = sim.add_host(spec(&mut rng, up));
        if let Some(host) = sim.hosts.get_mut(h) {
            host.free_rider = i < sc.free_riders;
        }
        let joins = match (i >= sc.leechers - late, sc.late) {
            (true, Some((_, at))) => t0 + at,
            _ => t0,
        };
        leechers.push((h, joins));
    }
    let f = sc.size as f64;
    let mut pending: Vec<(HostId, Duration)> = leechers.clone();
    pending.sort_by_key(|&(h, t)| (t, h));
    pending.reverse();
    let mut seed_left = vec![None; seeds.len()];
    // Block bytes each seeder served, kept when it leaves.
    let mut seed_sent = vec![0u64; seeds.len()];
    let hosts: Vec<HostId> = leechers.iter().map(|&(h, _)| h).collect();
    let limit = Time::from_duration(t0 + sc.limit);
    let step = Duration::from_millis(20);
    // Block bytes received by all leechers, and when that last changed.
    let mut last_moved = (0u64, Time::ZERO);
    let mut usage = sc
        .usage
        .map(|every| Usage::new(every, Time::from_duration(t0)));
    loop {
        let now = sim.now();
        if let Some(u) = usage.as_mut() {
            u.tick(
                now,
                hosts.iter().map(|&h| Leecher {
                    host: h,
                    down: sim.hosts[h].spec.down,
                    received: sim.hosts[h].block_bytes,
                    done: sim.hosts[h].outcome != Outcome::Running,
                }),
            );
        }
        while let Some(&(h, at)) = pending.last() {
            if Time::from_duration(at) > now {
                break;
            }
            pending.pop();
            let _ = sim.start(h, &[]);
            sim.get(h, name);
        }
        for (i, &s) in seeds.iter().enumerate() {
            if sim.hosts[s].engine.is_none() {
                continue;
            }
            // What went on the wire: the engine counts blocks when it
            // queues them, and a seed that leaves takes its queue along.
            seed_sent[i] = sim.net.block_sent(s);
            if sc
                .seed_leaves_after
                .is_some_and(|x| seed_sent[i] as f64 >= x * f)
            {
                sim.kill(s);
                seed_left[i] = Some(Duration::from_micros(now.as_micros()) - t0);
            }
        }
        let moved: u64 = hosts.iter().map(|&h| sim.hosts[h].block_bytes).sum();
        if moved != last_moved.0 {
            last_moved = (moved, now);
        }
        let stalled = pending.is_empty() && now.since(last_moved.1) > STALLED;
        let settled = stalled
            || pending.is_empty()
                && hosts
                    .iter()
                    .all(|&h| sim.hosts[h].outcome != Outcome::Running);
        if settled || now >= limit {
            break;
        }
        sim.run_until(now + step);
    }
    for (i, &s) in seeds.iter().enumerate() {
        seed_sent[i] = sim.net.block_sent(s);
    }
    let seed_bytes: u64 = seed_sent.iter().sum();
    let peers: Vec<PeerResult> = leechers
        .iter()
        .map(|&(h, joined)| {
            let host = &sim.hosts[h];
            let took = host
                .finish_time()
                .zip(host.asked)
                .map(|(done, asked)| Duration::from_micros(done.as_micros() - asked.as_micros()));
            PeerResult {
                host: h,
                spec: host.spec.clone(),
                joined: joined - t0,
                took,
                free_rider: host.free_rider,
            }
        })
        .collect();
    let u_seed = (sc.seed_up * sc.seeders as u64) as f64;
    // Unlimited downloads (0) bound nothing.
    let d_min = peers
        .iter()
        .map(|p| p.spec.down)
        .filter(|&d| d > 0)
        .min()
        .unwrap_or(0) as f64;
    let pairs: std::collections::HashSet<(HostId, HostId)> = sim
        .dials
        .iter()
        .map(|&(_, a, b)| (a.min(b), a.max(b)))
        .collect();
    let sum_up: f64 = peers.iter().map(|p| p.spec.up as f64).sum();
    let last = peers
        .iter()
        .map(|p| p.took.map(|t| (p.joined + t).as_secs_f64()))
        .try_fold(0.0f64, |m, t| t.map(|t| m.max(t)));
    Ok(RunResult {
        bound: lower_bound(f, u_seed, d_min, peers.len(), sum_up),
        seed_upload: seed_bytes as f64 / f,
        last,
        events: sim.agenda.handled,
        dials: sim.dials.len(),
        dialed_pairs: pairs.len(),
        simulated: Duration::from_micros(sim.now().as_micros()) - t0,
        peers,
        seed_left,
        usage,
    })
}

impl RunResult {
    /// The median time to finish of the free riders (`riders`) or of the
    /// other leechers; `None` if none of them finished.
    pub fn median_took(&self, riders: bool) -> Option<f64> {
        let mut t: Vec<f64> = self
            .peers
            .iter()
            .filter(|p| p.free_rider == riders)
            .filter_map(|p| p.took.map(|t| t.as_secs_f64()))
            .collect();
        t.sort_by(f64::total_cmp);
        t.get(t.len() / 2).copied()
    }
}

/// A rate as `tc` writes it (bytes per second in, `50mbit` out).
pub(super) fn rate_text(bytes_per_sec: u64) -> String {
    match bytes_per_sec {
        0 => "unlimited".into(),
        b => format!("{}mbit", b as f64 * 8.0 / 1e6),
    }
}

/// The report `sta-sim` prints: one line per leecher, then the totals.
/// A pure function of the result, so equal seeds print equal text.
pub fn report(sc: &Scenario, r: &RunResult, per_peer: bool) -> String {
    let mut out = String::new();
    let f = sc.size as f64;
    let _ = writeln!(
        out,
        "swarm: {} seeder(s) at {}, {} leechers, file {} bytes, pieces {} bytes, seed {}",
        sc.seeders,
        rate_text(sc.seed_up),
        sc.leechers,
        sc.size,
        sc.piece_length,
        sc.seed
    );
    let _ = writeln!(
        out,
        "lower bound max(F/u_seed, F/d_min, N*F/(u_seed + sum u)) = {:.3} s (F/u_seed = {:.3} s)",
        r.bound,
        f / (sc.seed_up * sc.seeders as u64) as f64
    );
    if per_peer {
        for p in &r.peers {
            let took = match p.took {
                Some(t) => format!(
                    "{:9.3} s  {:5.3} x bound",
                    t.as_secs_f64(),
                    t.as_secs_f64() / r.bound
                ),
                None => "  did not finish".into(),
            };
            let _ = writeln!(
                out,
                "peer {:<13} up {:>10} down {:>10} latency {:>6.1} ms joined {:6.2} s  {took}{}",
                host_ip(p.host).to_string(),
                rate_text(p.spec.up),
                rate_text(p.spec.down),
                p.spec.latency.as_secs_f64() * 1e3,
                p.joined.as_secs_f64(),
                if p.free_rider { "  (free rider)" } else { "" },
            );
        }
    }
    if let (Some(honest), Some(riders)) = (r.median_took(false), r.median_took(true)) {
        let _ = writeln!(
            out,
            "free riders: median {riders:.3} s against {honest:.3} s for the others ({:.2} x)",
            riders / honest
        );
    }
    let mut took: Vec<f64> = r
        .peers
        .iter()
        .filter_map(|p| p.took.map(|t| t.as_secs_f64()))
        .collect();
    took.sort_by(f64::total_cmp);
    let q = |x: f64| {
        took.get(((took.len() as f64 - 1.0) * x).round() as usize)
            .copied()
    };
    if let (Some(p50), Some(p90)) = (q(0.5), q(0.9)) {
        let _ = writeln!(out, "finish times: median {p50:.3} s, p90 {p90:.3} s");
    }
    let done = took.len();
    let _ = writeln!(out, "finished: {done} of {}", r.peers.len());
    match r.last {
        Some(last) => {
            let _ = writeln!(
                out,
                "last finish: {last:.3} s = {:.3} x bound = {:.3} x F/u_seed",
                last / r.bound,
                last / (f / (sc.seed_up * sc.seeders as u64) as f64)
            );
        }
        None => {
            let _ = writeln!(out, "last finish: none (not every leecher finished)");
        }
    }
    let _ = writeln!(out, "seed upload: {:.3} x F", r.seed_upload);
    for (i, left) in r.seed_left.iter().enumerate() {
        if let Some(t) = left {
            let _ = writeln!(out, "seeder {i} left at {:.3} s", t.as_secs_f64());
        }
    }
    let _ = writeln!(
        out,
        "peer dials: {} for {} pairs of hosts",
        r.dials, r.dialed_pairs
    );
    let _ = writeln!(
        out,
        "simulated {:.3} s, {} events",
        r.simulated.as_secs_f64(),
        r.events
    );
    if let Some(u) = &r.usage {
        out.push_str(&u.report());
    }
    out
}
