//! The command line of `sta-bench`.

use sta::cli::format::parse_size;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
sta-bench: benchmarks of STA on this machine.

USAGE:
    sta-bench transfer [OPTIONS]
    sta-bench swarm [OPTIONS]

transfer: STA against libtorrent (python3-libtorrent, driven by
bench/lt_peer.py) on the same file, in the same run: hashing a file to share
it, 1 seeder -> 1 leecher and 3 seeders -> 1 leecher (alternating STA and
libtorrent, medians of the rounds), then one STA seeder serving many STA
leechers at once. Files live under --dir (default /dev/shm), traffic on
127.0.0.1. sta-peerd and sta-trackerd must be next to sta-bench (cargo
build --release).

swarm: STA and libtorrent swarms on emulated hosts (network namespaces);
`sta-bench swarm --help` has its options.

OPTIONS (transfer):
    --size SIZE            file for share and transfer [default: 1G]
    --rounds N             rounds of share and transfer [default: 3]
    --scale-size SIZE      file for the scale phase [default: 256M]
    --scale-leechers N     concurrent leechers in the scale phase [default: 50]
    --scale-rounds N       rounds of the scale phase (the median is shown) [default: 3]
    --phases LIST          comma-separated: share, transfer, scale [default: all]
    --dir DIR              where the work directory goes [default: /dev/shm]
    --python PATH          python with libtorrent [default: /usr/bin/python3]
    --lt-script PATH       [default: bench/lt_peer.py of this source tree]
    -h, --help             print this help

SIZE: bytes, or a number with K, M or G (powers of 1024).
Exit status: 0 figures printed, 1 something is broken (a download did not
verify, a process died, nothing moved for 3 minutes), 2 wrong usage,
130 interrupted.
";

pub const SWARM_HELP: &str = "\
sta-bench swarm: a swarm on emulated hosts (bench/netns.sh), STA and
libtorrent alternated (STA, libtorrent, STA, ...), medians of the runs.

USAGE:
    sta-bench swarm [OPTIONS]

Every run brings up fresh network namespaces (hosts h1..hN, egress shaped
with tbf; the tracker, sta-trackerd, on the unshaped h0), starts one seed
on h1 and a leecher on each other host, tells the leechers to download at
once, and times the last leecher from then. Needs root, iproute2 and
python3-libtorrent (bench/lt_peer.py). Scenarios:

    a  1 seed + 7 leechers, every host 50 Mbit/s up
    b  1 seed + 5 leechers, mixed links: h1..h3 (the seed and 2 leechers)
       100 Mbit/s, h4..h6 20 Mbit/s (6 hosts, not 8: 360 Mbit/s in all
       stays within what 2 cores shape faithfully, about 400)
    c  as (a), but 3 of the 7 leechers (h6..h8) told to download 5 s late
    d  as (a), but the seed is stopped once it has uploaded 1.0 x F

With --kill-trackers: no libtorrent and no scenarios; swarm (a) with 3
sta-trackerd on h0 (ports 6969-6971, every sta-peerd given all three),
runs with no tracker killed alternated with runs where each tracker in
turn is SIGKILLed at 15 %, 40 % and 65 % of F/u and restarted on the same
address 2 s later (never two down at once); also how long a restarted
tracker takes to list the file with every peer again (its --http API).

OPTIONS:
    --runs N               runs of each implementation per scenario [default: 3]
    --kill-trackers        the tracker-kill benchmark above (no libtorrent needed)
    --scenarios LIST       comma-separated: a, b, c, d [default: a,b,c,d]
    --size SIZE            the file [default: 64M]
    --dir DIR              where the work directory goes [default: /dev/shm]
    --python PATH          python with libtorrent [default: /usr/bin/python3]
    --lt-script PATH       [default: bench/lt_peer.py of this source tree]
    -h, --help             print this help

Exit status: 0 every run succeeded, 1 a run FAILED (the tables say which
and why) or the benchmark could not run, 2 wrong usage, 130 interrupted.
";

/// The options of `sta-bench transfer` (and, for `swarm`, the common ones:
/// `base`, `python`, `script`).
pub struct Opts {
    pub size: u64,
    pub rounds: usize,
    pub scale_size: u64,
    pub scale_leechers: usize,
    pub scale_rounds: usize,
    pub share: bool,
    pub transfer: bool,
    pub scale: bool,
    pub base: PathBuf,
    pub python: PathBuf,
    pub script: PathBuf,
}

/// The options of `sta-bench swarm`.
pub struct SwarmOpts {
    pub runs: usize,
    /// Scenario letters, in the order given, each once.
    pub scenarios: Vec<char>,
    pub size: u64,
    /// `--kill-trackers`: the tracker-kill benchmark instead.
    pub kill_trackers: bool,
}

/// What the command line asks for.
pub enum Command {
    /// `--help`: print this text.
    Help(&'static str),
    Transfer(Opts),
    /// The swarm benchmark; `Opts` holds the options common to both.
    Swarm(Opts, SwarmOpts),
}

fn arg_error(e: pico_args::Error) -> String {
    match e {
        pico_args::Error::Utf8ArgumentParsingFailed { cause, .. } => cause,
        e => e.to_string(),
    }
}

pub fn parse_args() -> Result<Command, String> {
    // `--help` before the benchmark's name is the general help; after it,
    // that benchmark's (`contains` would find it anywhere).
    let first = std::env::args_os().nth(1);
    if first.as_deref().is_some_and(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help(HELP));
    }
    let mut args = pico_args::Arguments::from_env();
    let e = arg_error;
    let swarm = match args.subcommand().map_err(e)?.as_deref() {
        Some("transfer") => false,
        Some("swarm") => true,
        Some(other) => {
            return Err(format!(
                "unknown benchmark '{other}' (there are `transfer` and `swarm`)"
            ));
        }
        None => return Err("which benchmark? `sta-bench transfer` or `sta-bench swarm`".into()),
    };
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help(if swarm { SWARM_HELP } else { HELP }));
    }
    if swarm {
        let s = parse_swarm(&mut args)?;
        let o = parse_common(args)?;
        return Ok(Command::Swarm(o, s));
    }
    let size = args.opt_value_from_fn("--size", parse_size).map_err(e)?;
    let scale_size = args
        .opt_value_from_fn("--scale-size", parse_size)
        .map_err(e)?;
    let rounds: usize = args.opt_value_from_str("--rounds").map_err(e)?.unwrap_or(3);
    let scale_leechers: usize = args
        .opt_value_from_str("--scale-leechers")
        .map_err(e)?
        .unwrap_or(50);
    let scale_rounds: usize = args
        .opt_value_from_str("--scale-rounds")
        .map_err(e)?
        .unwrap_or(3);
    let phases: String = args
        .opt_value_from_str("--phases")
        .map_err(e)?
        .unwrap_or_else(|| "share,transfer,scale".into());
    if rounds == 0 || scale_leechers == 0 || scale_rounds == 0 {
        return Err("--rounds, --scale-leechers and --scale-rounds must be at least 1".into());
    }
    let mut o = parse_common(args)?;
    o.size = size.unwrap_or(1 << 30);
    o.rounds = rounds;
    o.scale_size = scale_size.unwrap_or(256 << 20);
    o.scale_leechers = scale_leechers;
    o.scale_rounds = scale_rounds;
    for p in phases.split(',') {
        match p {
            "share" => o.share = true,
            "transfer" => o.transfer = true,
            "scale" => o.scale = true,
            _ => return Err(format!("unknown phase '{p}' (share, transfer, scale)")),
        }
    }
    Ok(Command::Transfer(o))
}

fn parse_swarm(args: &mut pico_args::Arguments) -> Result<SwarmOpts, String> {
    let e = arg_error;
    let size = args.opt_value_from_fn("--size", parse_size).map_err(e)?;
    let runs: usize = args.opt_value_from_str("--runs").map_err(e)?.unwrap_or(3);
    let kill_trackers = args.contains("--kill-trackers");
    let list: Option<String> = args.opt_value_from_str("--scenarios").map_err(e)?;
    if kill_trackers && list.is_some() {
        return Err("--kill-trackers runs swarm (a) only; leave out --scenarios".into());
    }
    let list = list.unwrap_or_else(|| "a,b,c,d".into());
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let mut scenarios = Vec::new();
    for name in list.split(',') {
        let letter = match name.trim() {
            "a" => 'a',
            "b" => 'b',
            "c" => 'c',
            "d" => 'd',
            other => return Err(format!("unknown scenario '{other}' (a, b, c, d)")),
        };
        if !scenarios.contains(&letter) {
            scenarios.push(letter);
        }
    }
    let size = size.unwrap_or(64 << 20);
    if size < 1 << 20 {
        return Err("--size must be at least 1M".into());
    }
    Ok(SwarmOpts {
        runs,
        scenarios,
        size,
        kill_trackers,
    })
}

/// `--dir`, `--python`, `--lt-script`; then nothing may be left. The
/// transfer fields get their defaults with every phase off.
fn parse_common(mut args: pico_args::Arguments) -> Result<Opts, String> {
    let e = arg_error;
    let base: PathBuf = args
        .opt_value_from_os_str("--dir", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(e)?
        .unwrap_or_else(|| "/dev/shm".into());
    let python: PathBuf = args
        .opt_value_from_os_str("--python", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(e)?
        .unwrap_or_else(|| "/usr/bin/python3".into());
    let script: PathBuf = args
        .opt_value_from_os_str("--lt-script", |s| Ok::<_, String>(PathBuf::from(s)))
        .map_err(e)?
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("lt_peer.py"));
    if let Some(extra) = args.finish().first() {
        return Err(format!("unexpected argument '{}'", extra.to_string_lossy()));
    }
    Ok(Opts {
        size: 1 << 30,
        rounds: 3,
        scale_size: 256 << 20,
        scale_leechers: 50,
        scale_rounds: 3,
        share: false,
        transfer: false,
        scale: false,
        base,
        python,
        script,
    })
}
