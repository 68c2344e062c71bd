//! `sta-sim`: runs a described swarm on the simulator (real engines, the
//! real tracker core, a virtual network and clock) and prints how close
//! every leecher came to the lower bound.

use sta::sim::NetParams;
use sta::sim::dht::DhtScenario;
use sta::sim::report::{parse_duration, parse_rate, parse_size};
use sta::sim::scenario::{self, Scenario};
use std::process::ExitCode;
use std::time::Duration;

const HELP: &str = "\
sta-sim: simulate a swarm of STA peers and compare finish times with the
lower bound. Deterministic: the same options and --seed print the same
report, byte for byte (CPU figures go to stderr).

USAGE:
    sta-sim [OPTIONS]

SWARM:
    --peers N              leechers [default: 7]
    --seeders K            seeders, holding the file from the start [default: 1]
    --size SIZE            file size, bytes with K/M/G (binary) [default: 64M]
    --piece-size SIZE      piece size [default: 512K]
    --late N@T             N of the leechers join at T (e.g. 100@5s) rather
                           than at the start
    --seed-leaves-after X  each seeder leaves once it uploaded X times the
                           file (checked every 20 ms of simulated time)
    --free-riders N        N of the leechers never upload (no upload slot)
    --max-peers N          peers per file and engine [default: 50]
    --upload-slots N       peers served at once per file (a seed: one more
                           among more interested peers) [default: 4]

LINKS (rates as tc writes them: 50mbit = 50,000,000 BITS per second;
       6mbps = 6,000,000 BYTES per second):
    --up RATE              upload of every host [default: 50mbit]
    --seed-up RATE         upload of seeders [default: --up]
    --mix R1,R2,...        leechers' uploads drawn from these classes, one
                           per leecher (e.g. 10mbit,50mbit,100mbit)
    --down RATE|same|unlimited
                           download of every host; `same`: as its upload
                           (a symmetric port) [default: same]
    --latency D | D1-D2    one-way latency of each host to the core, drawn
                           uniformly; a path's delay is the sum of both
                           ends' [default: 1ms]
    --loss P               probability a segment is lost; a lost segment
                           delays its message by 200 ms + RTT [default: 0]
    --overhead BYTES       header bytes charged per 1448-byte segment: 52 for
                           IP+TCP, 66 if the shaper counts Ethernet too
                           (tc on veth does) [default: 52]
    --hash-rate RATE       a host's SHA1 throughput [default: 8gbit]

RUN:
    --seed S               seed of every random choice [default: 1]
    --limit T              give up after T simulated [default: 3600s]
    --summary              totals only, no line per leecher
    --usage T              also print, every T simulated, the share of
                           its download link each class of leechers used
    -h, --help             print this help

DHT (BEP 5) MODE:
    --dht                  simulate DHT nodes instead of a swarm: node 0
                           alone, the others bootstrapping from it; each
                           hash announced by a random node and looked up
                           from another. Uses --seed, --latency, --loss;
                           exits 1 if under 99% of lookups find the
                           announcer.
    --nodes N              DHT nodes [default: 1000]
    --hashes N             info hashes announced and looked up [default: 1000]

Prints, per leecher, its finish time (from when it asked) and the ratio to
the bound max(F/u_seed, F/d_min, N*F/(u_seed + sum of leechers' u)); then
the last finish over the bound, the seeders' upload over F, and (stderr)
the simulator's CPU time and events per second.
";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--dht") {
        return dht_main();
    }
    match parse() {
        Ok(None) => {
            print!("{HELP}");
            ExitCode::SUCCESS
        }
        Ok(Some((sc, per_peer))) => {
            let cpu0 = cpu_seconds();
            let r = match scenario::run(&sc) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sta-sim: {e}");
                    return ExitCode::from(2);
                }
            };
            let cpu = cpu_seconds() - cpu0;
            print!("{}", scenario::report(&sc, &r, per_peer));
            eprintln!(
                "cpu: {cpu:.2} s, {:.0} events/s, {:.1} simulated s per cpu s",
                r.events as f64 / cpu.max(1e-9),
                r.simulated.as_secs_f64() / cpu.max(1e-9)
            );
            match r.last {
                Some(_) => ExitCode::SUCCESS,
                None => ExitCode::from(1),
            }
        }
        Err(e) => {
            eprintln!("sta-sim: {e}\n(see sta-sim --help)");
            ExitCode::from(2)
        }
    }
}

fn dht_main() -> ExitCode {
    let sc = match parse_dht() {
        Ok(sc) => sc,
        Err(e) => {
            eprintln!("sta-sim: {e}\n(see sta-sim --help)");
            return ExitCode::from(2);
        }
    };
    let cpu0 = cpu_seconds();
    let r = sta::sim::dht::run(&sc);
    print!("{}", r.render(&sc));
    eprintln!("cpu: {:.2} s", cpu_seconds() - cpu0);
    if r.success_rate() >= 0.99 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn parse_dht() -> Result<DhtScenario, String> {
    let mut args = pico_args::Arguments::from_env();
    args.contains("--dht");
    let d = DhtScenario::default();
    let sc = DhtScenario {
        nodes: opt(&mut args, "--nodes", number)?.unwrap_or(d.nodes),
        hashes: opt(&mut args, "--hashes", number)?.unwrap_or(d.hashes),
        seed: opt(&mut args, "--seed", number)?.unwrap_or(d.seed),
        latency: opt(&mut args, "--latency", latency)?.unwrap_or(d.latency),
        loss: opt(&mut args, "--loss", loss)?.unwrap_or(d.loss),
        ..d
    };
    if let Some(a) = args.finish().first() {
        return Err(format!("unknown argument {a:?} with --dht"));
    }
    Ok(sc)
}

fn latency(s: &str) -> Result<(Duration, Duration), String> {
    match s.split_once('-') {
        Some((a, b)) => Ok((parse_duration(a)?, parse_duration(b)?)),
        None => parse_duration(s).map(|d| (d, d)),
    }
}

fn loss(s: &str) -> Result<f64, String> {
    let p: f64 = number(s)?;
    if !(0.0..1.0).contains(&p) {
        return Err("a probability from 0 to below 1".into());
    }
    Ok(p)
}

/// User plus system CPU time of this process.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given and nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn opt<T>(
    args: &mut pico_args::Arguments,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let text: Option<String> = args
        .opt_value_from_str(name)
        .map_err(|e| format!("{name}: {e}"))?;
    text.map(|s| parse(&s).map_err(|e| format!("{name}: {e}")))
        .transpose()
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("'{s}' is not a number"))
}

fn parse() -> Result<Option<(Scenario, bool)>, String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        return Ok(None);
    }
    let up = opt(&mut args, "--up", parse_rate)?.unwrap_or(50_000_000 / 8);
    let seed_up = opt(&mut args, "--seed-up", parse_rate)?.unwrap_or(up);
    let classes = opt(&mut args, "--mix", |s| {
        s.split(',')
            .map(parse_rate)
            .collect::<Result<Vec<u64>, _>>()
    })?
    .unwrap_or_else(|| vec![up]);
    let down = opt(&mut args, "--down", |s| match s {
        "same" => Ok(None),
        "unlimited" => Ok(Some(0)),
        r => parse_rate(r).map(Some),
    })?
    .flatten();
    let latency = opt(&mut args, "--latency", latency)?
        .unwrap_or((Duration::from_millis(1), Duration::from_millis(1)));
    let loss: f64 = opt(&mut args, "--loss", loss)?.unwrap_or(0.0);
    let late = opt(&mut args, "--late", |s| {
        let (n, t) = s.split_once('@').ok_or("expected N@TIME, e.g. 100@5s")?;
        Ok((number(n)?, parse_duration(t)?))
    })?;
    let piece = opt(&mut args, "--piece-size", parse_size)?.unwrap_or(512 << 10);
    let piece_length = sta::meta::info::check_piece_length(piece as i64)
        .map_err(|e| format!("--piece-size: {e}"))?;
    let size = opt(&mut args, "--size", parse_size)?.unwrap_or(64 << 20);
    if size == 0 {
        return Err("--size: the file must not be empty".into());
    }
    let sc = Scenario {
        seed: opt(&mut args, "--seed", number)?.unwrap_or(1),
        leechers: opt(&mut args, "--peers", number)?.unwrap_or(7),
        seeders: opt(&mut args, "--seeders", number)?.unwrap_or(1).max(1),
        size,
        piece_length,
        seed_up,
        classes,
        down,
        latency,
        loss,
        late,
        seed_leaves_after: opt(&mut args, "--seed-leaves-after", number)?,
        free_riders: opt(&mut args, "--free-riders", number)?.unwrap_or(0),
        net: NetParams {
            overhead: opt(&mut args, "--overhead", number)?.unwrap_or(52),
            ..NetParams::default()
        },
        max_peers: opt(&mut args, "--max-peers", number)?.unwrap_or(50),
        upload_slots: opt(&mut args, "--upload-slots", number)?.unwrap_or(4),
        hash_rate: opt(&mut args, "--hash-rate", parse_rate)?.unwrap_or(1_000_000_000),
        limit: opt(&mut args, "--limit", parse_duration)?.unwrap_or(Duration::from_secs(3600)),
        usage: opt(&mut args, "--usage", parse_duration)?,
    };
    let per_peer = !args.contains("--summary");
    let rest = args.finish();
    if let Some(a) = rest.first() {
        return Err(format!("unknown argument {a:?}"));
    }
    Ok(Some((sc, per_peer)))
}
