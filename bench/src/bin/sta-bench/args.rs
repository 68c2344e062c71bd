//! The command line of `sta-bench`.

use sta::cli::format::parse_size;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
sta-bench: benchmarks of STA on this machine.

USAGE:
    sta-bench transfer [OPTIONS]

STA against libtorrent (python3-libtorrent, driven by bench/lt_peer.py) on
the same file, in the same run: hashing a file to share it, 1 seeder -> 1
leecher and 3 seeders -> 1 leecher (alternating STA and libtorrent, medians
of the rounds), then one STA seeder serving many STA leechers at once.
Files live under --dir (default /dev/shm), traffic on 127.0.0.1.
sta-peerd and sta-trackerd must be next to sta-bench (cargo build --release).

OPTIONS:
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

/// What the command line asks for.
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

pub fn parse_args() -> Result<Option<Opts>, String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        return Ok(None);
    }
    let e = |e: pico_args::Error| match e {
        pico_args::Error::Utf8ArgumentParsingFailed { cause, .. } => cause,
        e => e.to_string(),
    };
    match args.subcommand().map_err(e)?.as_deref() {
        Some("transfer") => {}
        Some(other) => return Err(format!("unknown benchmark '{other}' (there is `transfer`)")),
        None => return Err("which benchmark? `sta-bench transfer`".into()),
    }
    if args.contains(["-h", "--help"]) {
        return Ok(None);
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
    if rounds == 0 || scale_leechers == 0 || scale_rounds == 0 {
        return Err("--rounds, --scale-leechers and --scale-rounds must be at least 1".into());
    }
    let mut o = Opts {
        size: size.unwrap_or(1 << 30),
        rounds,
        scale_size: scale_size.unwrap_or(256 << 20),
        scale_leechers,
        scale_rounds,
        share: false,
        transfer: false,
        scale: false,
        base,
        python,
        script,
    };
    for p in phases.split(',') {
        match p {
            "share" => o.share = true,
            "transfer" => o.transfer = true,
            "scale" => o.scale = true,
            _ => return Err(format!("unknown phase '{p}' (share, transfer, scale)")),
        }
    }
    Ok(Some(o))
}
