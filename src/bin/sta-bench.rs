//! `sta-bench transfer`: STA against libtorrent on the same work, in the
//! same run, on one machine. Every file is under /dev/shm, every byte goes
//! through 127.0.0.1, every process is a child stopped by its pid at the
//! end (also on error or Ctrl-C), and every wait is bounded.
//!
//! Phases (see `bench/README.md` for the table format):
//! - share: hash the file and make it available (`share` over the control
//!   socket of a fresh `sta-peerd`; `create_torrent` + `set_piece_hashes`
//!   in `bench/lt_peer.py`);
//! - transfer: 1 seeder -> 1 leecher and 3 seeders -> 1 leecher, STA and
//!   libtorrent alternating, timed from the leecher's spawn until every
//!   piece is verified, with CPU from /proc;
//! - scale: one STA seeder, many STA leechers at once, against 1 -> 1.

use sta::cli::client::{CallError, Client, file_of};
use sta::cli::format::{human_bytes, parse_size, size_text, table};
use sta::control::{CatalogEntry, ControlRequest, FileReport, StatusReport};
use sta::json::JsonValue;
use sta::meta::info::to_hex;
use sta::rng::Rng;
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Display;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

const HELP: &str = "\
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

const PIECE_SIZE: u64 = 512 * 1024;
const FILE_NAME: &str = "bench.bin";
const SCALE_NAME: &str = "scale.bin";
/// A daemon may take this long to say it is ready (the machine is busy).
const STARTUP: Duration = Duration::from_secs(60);
/// No progress at all for this long: something is stuck, not slow.
const STALL: Duration = Duration::from_secs(180);
/// SIGTERM, then this long before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);
const CHUNK: usize = 4 << 20;
const GIB: f64 = (1u64 << 30) as f64;
/// Room kept free in the work directory and in memory.
const MARGIN: u64 = 512 << 20;

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sta-bench: {e}; see `sta-bench --help`");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("sta-bench: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut bench = Bench::new(opts, stop);
    let outcome = bench.run();
    let cleaned = bench.cleanup();
    if let Err(e) = &cleaned {
        eprintln!("sta-bench: {e}");
    }
    match outcome {
        Err(Failure::Interrupted) => {
            eprintln!("sta-bench: interrupted");
            ExitCode::from(130)
        }
        Err(Failure::Failed(m)) => {
            eprintln!("sta-bench: FAILED: {m}");
            ExitCode::FAILURE
        }
        Ok(()) if !bench.problems.is_empty() => {
            for p in &bench.problems {
                eprintln!("sta-bench: FAILED: {p}");
            }
            ExitCode::FAILURE
        }
        Ok(()) if cleaned.is_err() => ExitCode::FAILURE,
        Ok(()) => ExitCode::SUCCESS,
    }
}

// ------------------------------------------------------------- arguments

struct Opts {
    size: u64,
    rounds: usize,
    scale_size: u64,
    scale_leechers: usize,
    scale_rounds: usize,
    share: bool,
    transfer: bool,
    scale: bool,
    base: PathBuf,
    python: PathBuf,
    script: PathBuf,
}

fn parse_args() -> Result<Option<Opts>, String> {
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
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/lt_peer.py"));
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

// -------------------------------------------------------------- failures

enum Failure {
    Interrupted,
    Failed(String),
}

type Step<T> = Result<T, Failure>;

fn failed(m: impl Into<String>) -> Failure {
    Failure::Failed(m.into())
}

fn say(text: impl Display) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

// ---------------------------------------------------------------- figures

/// One timed download.
#[derive(Clone, Copy)]
struct Run {
    wall: f64,
    leech_cpu: f64,
    seed_cpu: f64,
}

/// The figures of the scale phase.
struct Scale {
    size: u64,
    leechers: usize,
    ref_wall: f64,
    ref_seed_cpu: f64,
    wall: f64,
    finish: Vec<f64>,
    seed_cpu: f64,
    served: u64,
    leechers_cpu: f64,
    /// The leechers' system-time share of `leechers_cpu`.
    leechers_sys: f64,
    tracker_cpu: f64,
    rss_anon_peak: u64,
    rss_anon_before: u64,
    rss_anon_end: u64,
    rss_peak: u64,
    /// Piece payload the leechers received (duplicates included).
    received: u64,
}

// --------------------------------------------------------------- processes

struct Proc {
    name: String,
    pid: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    log: PathBuf,
    exited: Option<ExitStatus>,
    /// Exits by itself (`lt_peer.py make`): not a failure.
    may_exit: bool,
}

impl Proc {
    fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// SIGTERM, unless reaped already (an unreaped child keeps its pid, so
    /// the signal cannot reach another process).
    fn terminate(&mut self) {
        self.stdin = None;
        if self.exit_status().is_none()
            && let Ok(pid) = libc::pid_t::try_from(self.pid)
        {
            // SAFETY: kill(2) only sends a signal, to our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }

    fn reap(&mut self, deadline: Instant) -> Result<(), String> {
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(10));
        }
        say(format_args!(
            "  {} (pid {}) ignored SIGTERM; killing it",
            self.name, self.pid
        ));
        match self.child.kill().and_then(|()| self.child.wait()) {
            Ok(st) => {
                self.exited = Some(st);
                Ok(())
            }
            Err(e) => Err(format!("cannot stop {} (pid {}): {e}", self.name, self.pid)),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(10)..];
        if tail.is_empty() {
            String::new()
        } else {
            format!("; its last log lines:\n    {}", tail.join("\n    "))
        }
    }
}

/// A running `sta-peerd`.
struct StaPeer {
    id: usize,
    dir: PathBuf,
    client: Client,
}

/// A running `lt_peer.py seed`.
struct LtSeeder {
    id: usize,
    addr: SocketAddr,
}

/// What a control request on its own thread reports.
enum Event {
    Progress(u64),
    Done(Result<JsonValue, CallError>),
}

// ------------------------------------------------------------------ bench

struct Bench {
    opts: Opts,
    stop: Arc<AtomicBool>,
    work: Option<PathBuf>,
    procs: Vec<Option<Proc>>,
    trackerd: PathBuf,
    peerd: PathBuf,
    tracker: Option<SocketAddr>,
    tracker_id: Option<usize>,
    ticks: f64,
    serial: usize,
    problems: Vec<String>,
}

impl Bench {
    fn new(opts: Opts, stop: Arc<AtomicBool>) -> Bench {
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Bench {
            opts,
            stop,
            work: None,
            procs: Vec::new(),
            trackerd: PathBuf::new(),
            peerd: PathBuf::new(),
            tracker: None,
            tracker_id: None,
            ticks: if ticks > 0 { ticks as f64 } else { 100.0 },
            serial: 0,
            problems: Vec::new(),
        }
    }

    fn run(&mut self) -> Step<()> {
        let started = Instant::now();
        self.header();
        self.find_binaries()?;
        let work = self.make_work_dir()?;
        let src = work.join("src");
        mkdir(&src)?;
        let mut shares: Vec<(f64, f64)> = Vec::new();
        let mut transfers: Vec<(&str, Vec<Run>, Vec<Run>)> = Vec::new();
        let mut scale = None;
        self.start_tracker()?;
        if self.opts.share || self.opts.transfer {
            let file = src.join(FILE_NAME);
            self.generate(&file, self.opts.size)?;
            let torrent = work.join("bench.torrent");
            let (sta_file, lt_hash) = self.share_phase(&file, &torrent, &mut shares)?;
            if lt_hash != to_hex(&sta_file.info_hash) {
                self.problems.push(format!(
                    "info hashes differ for the same file, name and piece size: STA {}, libtorrent {lt_hash}",
                    to_hex(&sta_file.info_hash)
                ));
                say("  WARNING: STA's info hash differs from libtorrent's v1 info hash");
            } else {
                say(format_args!(
                    "  info hash {lt_hash}: the same for STA and libtorrent"
                ));
            }
            if self.opts.transfer {
                transfers = self.transfer_phase(&file, &torrent, &sta_file)?;
            }
            std::fs::remove_file(&file).map_err(|e| failed(format!("rm: {e}")))?;
        }
        if self.opts.scale {
            scale = self.scale_rounds(&src)?;
        }
        say("");
        say(format_args!(
            "==== results ({:.0} s in all; load average now {}) ====",
            started.elapsed().as_secs_f64(),
            loadavg()
        ));
        if !shares.is_empty() {
            say(share_table(self.opts.size, &shares));
        }
        for (label, sta, lt) in &transfers {
            say(transfer_table(label, self.opts.size, sta, lt));
        }
        if let Some((s, ratios)) = &scale {
            say(scale_table(s, ratios));
        }
        Ok(())
    }

    fn header(&self) {
        let date = Command::new("date")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or("unknown", |(_, m)| m.trim());
        let cores = thread::available_parallelism().map_or(0, |n| n.get());
        say("sta-bench transfer: STA vs libtorrent");
        say(format_args!("date:    {}", date.trim()));
        say(format_args!("kernel:  {}", kernel.trim()));
        say(format_args!("cpu:     {model}, {cores} cores"));
        say(format_args!("load:    {}", loadavg()));
        say(format_args!(
            "work:    size {}, {} pieces of 512 KiB, {} round(s); scale {} x {}, {} round(s)",
            size_text(self.opts.size),
            self.opts.size.div_ceil(PIECE_SIZE),
            self.opts.rounds,
            self.opts.scale_leechers,
            size_text(self.opts.scale_size),
            self.opts.scale_rounds
        ));
    }

    fn check_stop(&self) -> Step<()> {
        if self.stop.load(Ordering::SeqCst) {
            Err(Failure::Interrupted)
        } else {
            Ok(())
        }
    }

    fn find_binaries(&mut self) -> Step<()> {
        let exe =
            std::env::current_exe().map_err(|e| failed(format!("where is sta-bench? {e}")))?;
        for (name, slot) in [
            ("sta-trackerd", &mut self.trackerd),
            ("sta-peerd", &mut self.peerd),
        ] {
            let p = exe.with_file_name(name);
            if !p.is_file() {
                return Err(failed(format!(
                    "{} is missing; run `cargo build --release` first",
                    p.display()
                )));
            }
            *slot = p;
        }
        if !self.opts.script.is_file() {
            return Err(failed(format!(
                "{} is missing (--lt-script)",
                self.opts.script.display()
            )));
        }
        Ok(())
    }

    fn make_work_dir(&mut self) -> Step<PathBuf> {
        let need = if self.opts.share || self.opts.transfer {
            2 * self.opts.size + MARGIN
        } else {
            MARGIN
        };
        let free = free_bytes(&self.opts.base).unwrap_or(0);
        if free < need {
            return Err(failed(format!(
                "{} has {} free; this needs {} (two copies of the file): try a smaller --size",
                self.opts.base.display(),
                human_bytes(free),
                human_bytes(need)
            )));
        }
        let dir = self
            .opts
            .base
            .join(format!("sta-bench-{}", std::process::id()));
        mkdir(&dir)?;
        say(format_args!("dir:     {}", dir.display()));
        self.work = Some(dir.clone());
        Ok(dir)
    }

    fn fresh_dir(&mut self, name: &str) -> Step<PathBuf> {
        self.serial += 1;
        let work = self.work.clone().ok_or_else(|| failed("no work dir"))?;
        let dir = work.join(format!("{name}-{}", self.serial));
        mkdir(&dir)?;
        Ok(dir)
    }

    fn generate(&self, path: &Path, size: u64) -> Step<()> {
        let t = Instant::now();
        let mut f = File::create_new(path)
            .map_err(|e| failed(format!("cannot create {}: {e}", path.display())))?;
        let mut rng = Rng::from_entropy();
        let mut buf = vec![0u8; CHUNK];
        let mut left = size;
        while left > 0 {
            self.check_stop()?;
            let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
            for w in buf[..n].chunks_mut(8) {
                let r = rng.next_u64().to_le_bytes();
                w.copy_from_slice(&r[..w.len()]);
            }
            f.write_all(&buf[..n])
                .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))?;
            left -= n as u64;
        }
        say(format_args!(
            "generated {} ({}) in {:.1} s",
            path.display(),
            size_text(size),
            t.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    // ------------------------------------------------------- processes

    fn spawn(&mut self, name: &str, program: &Path, args: &[OsString]) -> Step<usize> {
        let work = self.work.clone().ok_or_else(|| failed("no work dir"))?;
        let log = work.join(format!("{name}.log"));
        let log_file = File::create(&log).map_err(|e| failed(format!("{}: {e}", log.display())))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .process_group(0);
        for (key, _) in std::env::vars_os() {
            if key.as_bytes().starts_with(b"STA_") {
                cmd.env_remove(key);
            }
        }
        // SAFETY: prctl(2) is async-signal-safe; the child is told to stop
        // if the harness dies without cleaning up.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("cannot start {}: {e}", program.display())))?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout"))?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("bench-stdout".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| failed(format!("cannot start a thread: {e}")))?;
        self.procs.push(Some(Proc {
            name: name.to_owned(),
            pid,
            child,
            stdin,
            lines: rx,
            log,
            exited: None,
            may_exit: false,
        }));
        Ok(self.procs.len() - 1)
    }

    fn proc(&self, id: usize) -> Step<&Proc> {
        self.procs
            .get(id)
            .and_then(Option::as_ref)
            .ok_or_else(|| failed("internal: process already stopped"))
    }

    /// Fails when a process exited while it should run.
    fn check_children(&mut self) -> Step<()> {
        for p in self.procs.iter_mut().flatten() {
            if p.may_exit {
                continue;
            }
            if let Some(st) = p.exit_status() {
                return Err(failed(format!(
                    "{} (pid {}) exited unexpectedly ({st}){}",
                    p.name,
                    p.pid,
                    p.log_tail()
                )));
            }
        }
        self.check_stop()
    }

    /// The next stdout line of process `id`.
    fn next_line(&mut self, id: usize, deadline: Instant, what: &str) -> Step<String> {
        loop {
            self.check_children()?;
            if Instant::now() >= deadline {
                let p = self.proc(id)?;
                return Err(failed(format!(
                    "{what}: nothing from {} in time{}",
                    p.name,
                    p.log_tail()
                )));
            }
            match self.proc(id)?.lines.recv_timeout(POLL) {
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Its stdout closed: an exit a check above did not
                    // catch (a process that may exit) ends the wait here.
                    if let Some(Some(p)) = self.procs.get_mut(id)
                        && let Some(st) = p.exit_status()
                    {
                        return Err(failed(format!(
                            "{what}: {} exited ({st}){}",
                            p.name,
                            p.log_tail()
                        )));
                    }
                    thread::sleep(POLL);
                }
            }
        }
    }

    fn wait_line(&mut self, id: usize, prefix: &str, deadline: Instant) -> Step<String> {
        let what = format!("waiting for `{prefix}...`");
        loop {
            let line = self.next_line(id, deadline, &what)?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_owned());
            }
        }
    }

    /// Stops the processes (SIGTERM, then SIGKILL after a shared deadline).
    fn stop_procs(&mut self, ids: &[usize]) -> Result<(), String> {
        let mut taken: Vec<Proc> = ids
            .iter()
            .filter_map(|&i| self.procs.get_mut(i).and_then(Option::take))
            .collect();
        for p in &mut taken {
            p.terminate();
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let errors: Vec<String> = taken
            .iter_mut()
            .filter_map(|p| p.reap(deadline).err())
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn stop_step(&mut self, ids: &[usize]) -> Step<()> {
        self.stop_procs(ids).map_err(failed)
    }

    fn cleanup(&mut self) -> Result<(), String> {
        let live: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.procs[i].is_some())
            .collect();
        let mut problems = Vec::new();
        if !live.is_empty() {
            say(format_args!("stopping {} processes...", live.len()));
            if let Err(e) = self.stop_procs(&live) {
                problems.push(e);
            }
        }
        if let Some(dir) = self.work.take()
            && let Err(e) = std::fs::remove_dir_all(&dir)
        {
            problems.push(format!("cannot remove {}: {e}", dir.display()));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn cpu(&self, id: usize) -> Step<f64> {
        let p = self.proc(id)?;
        proc_cpu_ticks(p.pid)
            .map(|t| t as f64 / self.ticks)
            .ok_or_else(|| failed(format!("cannot read /proc/{}/stat", p.pid)))
    }

    fn cpu_sum(&self, ids: &[usize]) -> Step<f64> {
        ids.iter().map(|&i| self.cpu(i)).sum()
    }

    // ---------------------------------------------------------- STA

    fn start_tracker(&mut self) -> Step<()> {
        let args = ["--listen", "127.0.0.1:0", "--log-level", "warn"].map(OsString::from);
        let trackerd = self.trackerd.clone();
        let id = self.spawn("tracker", &trackerd, &args)?;
        let text = self.wait_line(id, "listening on ", Instant::now() + STARTUP)?;
        let addr: SocketAddr = text
            .parse()
            .map_err(|_| failed(format!("tracker printed `listening on {text}`")))?;
        say(format_args!(
            "tracker: pid {} on {addr}",
            self.proc(id)?.pid
        ));
        self.tracker = Some(addr);
        self.tracker_id = Some(id);
        Ok(())
    }

    fn spawn_peerd(&mut self, name: &str) -> Step<(usize, PathBuf)> {
        let dir = self.fresh_dir(name)?;
        let tracker = self.tracker.ok_or_else(|| failed("no tracker"))?;
        let mut args: Vec<OsString> = [
            "--tracker",
            &tracker.to_string(),
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "warn",
            "--dir",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(dir.clone().into_os_string());
        let peerd = self.peerd.clone();
        let log_name = dir.file_name().unwrap_or(OsStr::new(name)).to_owned();
        Ok((self.spawn(&log_name.to_string_lossy(), &peerd, &args)?, dir))
    }

    fn peerd_ready(&mut self, id: usize, dir: PathBuf, deadline: Instant) -> Step<StaPeer> {
        let socket = PathBuf::from(self.wait_line(id, "control on ", deadline)?);
        Ok(StaPeer {
            id,
            dir,
            client: Client::from_socket(socket),
        })
    }

    fn start_peerd(&mut self, name: &str) -> Step<StaPeer> {
        let (id, dir) = self.spawn_peerd(name)?;
        self.peerd_ready(id, dir, Instant::now() + STARTUP)
    }

    /// Sends `request` from a thread; its events arrive on `tx` tagged `tag`.
    fn call(
        &self,
        client: &Client,
        request: ControlRequest,
        tag: usize,
        tx: Sender<(usize, Event)>,
    ) -> Step<()> {
        let client = client.clone();
        thread::Builder::new()
            .name("bench-control".into())
            .spawn(move || {
                let r = client.call(&request, |p| {
                    let _ = tx.send((tag, Event::Progress(p.bytes)));
                });
                let _ = tx.send((tag, Event::Done(r)));
            })
            .map(|_| ())
            .map_err(|e| failed(format!("cannot start a thread: {e}")))
    }

    /// The next event on `rx`, watching the children, the signal flag and
    /// the deadline.
    fn next_event(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        deadline: Instant,
        what: &str,
    ) -> Step<(usize, Event)> {
        loop {
            self.check_children()?;
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "{what}: no progress for {} s",
                    STALL.as_secs()
                )));
            }
            match rx.recv_timeout(POLL) {
                Ok(ev) => return Ok(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(failed(format!("{what}: the request ended without a reply")));
                }
            }
        }
    }

    /// One request, its final `ok` reply.
    fn request(&mut self, peer: &StaPeer, request: ControlRequest, what: &str) -> Step<JsonValue> {
        let (tx, rx) = mpsc::channel();
        self.call(&peer.client, request, 0, tx)?;
        let deadline = Instant::now() + STALL;
        loop {
            if let (_, Event::Done(r)) = self.next_event(&rx, deadline, what)? {
                return r.map_err(|e| failed(format!("{what}: {e}")));
            }
        }
    }

    fn share(&mut self, peer: &StaPeer, file: &Path) -> Step<FileReport> {
        let v = self.request(peer, ControlRequest::Share(file.to_path_buf()), "share")?;
        file_of(&v).map_err(|e| failed(format!("share: {e}")))
    }

    /// Waits until the tracker lists `n` seeders of the file.
    fn wait_listed(&mut self, peer: &StaPeer, file: &FileReport, n: u32) -> Step<()> {
        let deadline = Instant::now() + STARTUP;
        loop {
            let v = self.request(peer, ControlRequest::List, "list")?;
            let seen = v
                .get("files")
                .and_then(JsonValue::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| CatalogEntry::from_json(e).ok())
                .filter(|e| e.info_hash == file.info_hash)
                .map(|e| e.seeders)
                .max()
                .unwrap_or(0);
            if seen >= n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "the tracker lists {seen} seeders, not {n}, after {} s",
                    STARTUP.as_secs()
                )));
            }
            thread::sleep(Duration::from_millis(100));
            self.check_stop()?;
        }
    }

    /// Bytes `peer` uploaded of the file.
    fn uploaded(&mut self, peer: &StaPeer, file: &FileReport) -> Step<u64> {
        let v = self.request(peer, ControlRequest::Status, "status")?;
        let st = StatusReport::from_json(&v).map_err(|e| failed(format!("status: {e}")))?;
        Ok(st
            .files
            .iter()
            .filter(|f| f.info_hash == file.info_hash)
            .map(|f| f.uploaded)
            .sum())
    }

    /// Starts seeders `name1..` that share `file`; waits until all are
    /// listed (with `already` seeders listed before).
    fn sta_seeders(
        &mut self,
        prefix: &str,
        range: std::ops::RangeInclusive<usize>,
        file: &Path,
        already: u32,
    ) -> Step<(Vec<StaPeer>, Option<FileReport>)> {
        let mut peers = Vec::new();
        for i in range {
            peers.push(self.start_peerd(&format!("{prefix}{i}"))?);
        }
        let (tx, rx) = mpsc::channel();
        for (i, p) in peers.iter().enumerate() {
            self.call(
                &p.client,
                ControlRequest::Share(file.to_path_buf()),
                i,
                tx.clone(),
            )?;
        }
        drop(tx);
        let mut report = None;
        for _ in 0..peers.len() {
            let deadline = Instant::now() + STALL;
            loop {
                if let (_, Event::Done(r)) = self.next_event(&rx, deadline, "share")? {
                    let v = r.map_err(|e| failed(format!("share: {e}")))?;
                    report = Some(file_of(&v).map_err(|e| failed(format!("share: {e}")))?);
                    break;
                }
            }
        }
        if let (Some(f), Some(p)) = (&report, peers.first()) {
            self.wait_listed(p, f, already + peers.len() as u32)?;
        }
        Ok((peers, report))
    }

    /// One STA download: spawn the leecher, `get`, until `done`.
    fn sta_run(&mut self, seeders: &[usize], file: &FileReport, source: &Path) -> Step<Run> {
        let seed0 = self.cpu_sum(seeders)?;
        let t0 = Instant::now();
        let (id, dir) = self.spawn_peerd("sta-leech")?;
        let leecher = self.peerd_ready(id, dir, t0 + STARTUP)?;
        let (tx, rx) = mpsc::channel();
        let get = ControlRequest::Get {
            target: to_hex(&file.info_hash),
            out_dir: Some(leecher.dir.clone()),
        };
        self.call(&leecher.client, get, 0, tx)?;
        let mut deadline = Instant::now() + STALL;
        let got = loop {
            match self.next_event(&rx, deadline, "STA download")? {
                (_, Event::Progress(_)) => deadline = Instant::now() + STALL,
                (_, Event::Done(r)) => {
                    let v = r.map_err(|e| failed(format!("STA download: {e}")))?;
                    break file_of(&v).map_err(|e| failed(format!("STA download: {e}")))?;
                }
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let leech_cpu = self.cpu(id)?;
        let seed_cpu = self.cpu_sum(seeders)? - seed0;
        self.stop_step(&[id])?;
        self.verify(source, &got.path)?;
        remove_dir(&leecher.dir)?;
        Ok(Run {
            wall,
            leech_cpu,
            seed_cpu,
        })
    }

    // --------------------------------------------------- libtorrent

    fn python_args(&self, mode: &str, rest: &[&OsStr]) -> Vec<OsString> {
        let mut a = vec![self.opts.script.clone().into_os_string(), mode.into()];
        a.extend(rest.iter().map(|s| s.to_os_string()));
        a
    }

    /// `lt_peer.py make`: seconds (timed in the script), info hash, version.
    fn lt_make(&mut self, file: &Path, torrent: &Path) -> Step<(f64, String, String)> {
        let _ = std::fs::remove_file(torrent);
        let piece = PIECE_SIZE.to_string();
        let args = self.python_args(
            "make",
            &[
                "--file".as_ref(),
                file.as_os_str(),
                "--piece-size".as_ref(),
                piece.as_ref(),
                "--out".as_ref(),
                torrent.as_os_str(),
            ],
        );
        let python = self.opts.python.clone();
        let id = self.spawn("lt-make", &python, &args)?;
        if let Some(Some(p)) = self.procs.get_mut(id) {
            p.may_exit = true;
        }
        let line = self.wait_line(id, "hashed ", Instant::now() + STALL)?;
        // It exits by itself once it printed the line.
        let deadline = Instant::now() + STOP_TIMEOUT;
        if let Some(Some(p)) = self.procs.get_mut(id) {
            while p.exit_status().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
        }
        self.stop_step(&[id])?;
        let mut words = line.split_whitespace();
        let secs: f64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| failed(format!("lt_peer.py make printed `hashed {line}`")))?;
        let hash = words.next().unwrap_or("").to_owned();
        let version = words.next().unwrap_or("?").to_owned();
        Ok((secs, hash, version))
    }

    fn lt_seeders(
        &mut self,
        range: std::ops::RangeInclusive<usize>,
        torrent: &Path,
        save: &Path,
    ) -> Step<Vec<LtSeeder>> {
        let python = self.opts.python.clone();
        let timeout = STALL.as_secs().to_string();
        let mut ids = Vec::new();
        for i in range {
            let args = self.python_args(
                "seed",
                &[
                    "--torrent".as_ref(),
                    torrent.as_os_str(),
                    "--save".as_ref(),
                    save.as_os_str(),
                    "--timeout".as_ref(),
                    timeout.as_ref(),
                ],
            );
            ids.push(self.spawn(&format!("lt-seed{i}"), &python, &args)?);
        }
        let mut seeders = Vec::new();
        for id in ids {
            let text = self.wait_line(id, "listening on ", Instant::now() + STARTUP)?;
            let addr = text
                .parse()
                .map_err(|_| failed(format!("lt_peer.py printed `listening on {text}`")))?;
            self.wait_line(id, "seeding", Instant::now() + STALL)?;
            seeders.push(LtSeeder { id, addr });
        }
        Ok(seeders)
    }

    /// One libtorrent download: from the spawn of the leecher until it
    /// says every piece is verified.
    fn lt_run(&mut self, seeders: &[LtSeeder], torrent: &Path, source: &Path) -> Step<Run> {
        let ids: Vec<usize> = seeders.iter().map(|s| s.id).collect();
        let dir = self.fresh_dir("lt-leech")?;
        let timeout = (STALL.as_secs() * 10).to_string();
        let mut rest: Vec<OsString> = vec![
            "--torrent".into(),
            torrent.into(),
            "--save".into(),
            dir.clone().into(),
            "--timeout".into(),
            timeout.into(),
        ];
        for s in seeders {
            rest.push("--peer".into());
            rest.push(s.addr.to_string().into());
        }
        let rest: Vec<&OsStr> = rest.iter().map(OsString::as_os_str).collect();
        let args = self.python_args("leech", &rest);
        let python = self.opts.python.clone();
        let seed0 = self.cpu_sum(&ids)?;
        let t0 = Instant::now();
        let id = self.spawn("lt-leech", &python, &args)?;
        let mut deadline = t0 + STALL;
        loop {
            let line = self.next_line(id, deadline, "libtorrent download")?;
            if line.starts_with("finished") {
                break;
            }
            if line.starts_with("progress") {
                deadline = Instant::now() + STALL;
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        let leech_cpu = self.cpu(id)?;
        let seed_cpu = self.cpu_sum(&ids)? - seed0;
        self.stop_step(&[id])?;
        let name = source.file_name().unwrap_or_default();
        self.verify(source, &dir.join(name))?;
        remove_dir(&dir)?;
        Ok(Run {
            wall,
            leech_cpu,
            seed_cpu,
        })
    }

    fn verify(&self, source: &Path, copy: &Path) -> Step<()> {
        match compare_files(source, copy, &self.stop)? {
            None => Ok(()),
            Some(at) => Err(failed(format!(
                "{} differs from {} at byte {at}: the download did not verify",
                copy.display(),
                source.display()
            ))),
        }
    }

    // ---------------------------------------------------------- phases

    /// Shares the file `rounds` times each way; returns STA's report of the
    /// file and libtorrent's info hash, and leaves the torrent at `torrent`.
    fn share_phase(
        &mut self,
        file: &Path,
        torrent: &Path,
        out: &mut Vec<(f64, f64)>,
    ) -> Step<(FileReport, String)> {
        let rounds = if self.opts.share { self.opts.rounds } else { 1 };
        say("");
        say(format_args!(
            "== share: hash {} and make it available ({rounds} round(s)) ==",
            size_text(self.opts.size)
        ));
        let mut result = None;
        for r in 1..=rounds {
            let peer = self.start_peerd("sharer")?;
            let t = Instant::now();
            let report = self.share(&peer, file)?;
            let sta = t.elapsed().as_secs_f64();
            self.stop_step(&[peer.id])?;
            remove_dir(&peer.dir)?;
            let (lt, hash, version) = self.lt_make(file, torrent)?;
            say(format_args!(
                "  round {r}: STA {sta:.3} s, libtorrent {version} {lt:.3} s"
            ));
            out.push((sta, lt));
            result = Some((report, hash));
        }
        if !self.opts.share {
            out.clear();
        }
        result.ok_or_else(|| failed("no share round"))
    }

    #[allow(clippy::type_complexity)]
    fn transfer_phase(
        &mut self,
        file: &Path,
        torrent: &Path,
        sta_file: &FileReport,
    ) -> Step<Vec<(&'static str, Vec<Run>, Vec<Run>)>> {
        let size = self.opts.size;
        let save = file.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut results = Vec::new();
        let mut sta_seeders: Vec<StaPeer> = Vec::new();
        let mut lt_seeders: Vec<LtSeeder> = Vec::new();
        for (label, n) in [("1->1", 1usize), ("3->1", 3)] {
            say("");
            say(format_args!(
                "== transfer {label}: {} from {n} seeder(s) to 1 leecher ({} round(s)) ==",
                size_text(size),
                self.opts.rounds
            ));
            let have = sta_seeders.len();
            let t = Instant::now();
            let (more, _) = self.sta_seeders("sta-seed", have + 1..=n, file, have as u32)?;
            sta_seeders.extend(more);
            let more = self.lt_seeders(lt_seeders.len() + 1..=n, torrent, &save)?;
            lt_seeders.extend(more);
            say(format_args!(
                "  seeders ready in {:.1} s (STA: shared and listed by the tracker; libtorrent: checked, seeding)",
                t.elapsed().as_secs_f64()
            ));
            let ids: Vec<usize> = sta_seeders.iter().map(|s| s.id).collect();
            let (mut sta, mut lt) = (Vec::new(), Vec::new());
            for r in 1..=self.opts.rounds {
                let s = self.sta_run(&ids, sta_file, file)?;
                say(format_args!(
                    "  round {r} STA:        {}",
                    run_line(&s, size)
                ));
                sta.push(s);
                let l = self.lt_run(&lt_seeders, torrent, file)?;
                say(format_args!(
                    "  round {r} libtorrent: {}",
                    run_line(&l, size)
                ));
                lt.push(l);
            }
            results.push((label, sta, lt));
        }
        let mut ids: Vec<usize> = sta_seeders.iter().map(|s| s.id).collect();
        ids.extend(lt_seeders.iter().map(|s| s.id));
        self.stop_step(&ids)?;
        for s in &sta_seeders {
            remove_dir(&s.dir)?;
        }
        Ok(results)
    }

    /// The scale size that fits in the work directory and in memory, with
    /// the file once more for the seeder.
    fn scale_fit(&self) -> Option<u64> {
        let n = self.opts.scale_leechers as u64 + 1;
        let free = free_bytes(&self.opts.base).unwrap_or(0);
        let mem = mem_available().unwrap_or(u64::MAX);
        let room = free.min(mem).saturating_sub(MARGIN) / 10 * 8;
        let mut size = self.opts.scale_size;
        while size.saturating_mul(n) > room {
            size /= 2;
            if size < 16 << 20 {
                return None;
            }
        }
        Some(size)
    }

    /// Runs the scale phase `--scale-rounds` times; returns the round with
    /// the median aggregate / 1->1 ratio, and every round's ratio. Each
    /// round is one figure of a noisy machine, hence rounds and a median.
    fn scale_rounds(&mut self, src: &Path) -> Step<Option<(Scale, Vec<f64>)>> {
        let mut rounds = Vec::new();
        for round in 1..=self.opts.scale_rounds {
            let Some(s) = self.scale_phase(src, round)? else {
                return Ok(None);
            };
            rounds.push(s);
        }
        let mut ratios: Vec<f64> = rounds.iter().map(Scale::ratio).collect();
        let mid = median(ratios.clone());
        ratios.sort_by(f64::total_cmp);
        let Some(pick) = rounds
            .into_iter()
            .min_by(|a, b| (a.ratio() - mid).abs().total_cmp(&(b.ratio() - mid).abs()))
        else {
            return Ok(None);
        };
        Ok(Some((pick, ratios)))
    }

    fn scale_phase(&mut self, src: &Path, round: usize) -> Step<Option<Scale>> {
        let leechers = self.opts.scale_leechers;
        say("");
        let Some(size) = self.scale_fit() else {
            say(format_args!(
                "== scale: skipped: not enough room in {} or memory for {leechers} copies ==",
                self.opts.base.display()
            ));
            return Ok(None);
        };
        say(format_args!(
            "== scale: 1 STA seeder, {leechers} STA leechers at once, {} (round {round} of {}) ==",
            size_text(size),
            self.opts.scale_rounds
        ));
        if size != self.opts.scale_size {
            say(format_args!(
                "  (--scale-size {} does not fit {leechers} times in {} and memory: using {})",
                size_text(self.opts.scale_size),
                self.opts.base.display(),
                size_text(size)
            ));
        }
        let file = src.join(SCALE_NAME);
        self.generate(&file, size)?;
        let (mut seeders, report) = self.sta_seeders("scale-seed", 1..=1, &file, 0)?;
        let seeder = seeders.pop().ok_or_else(|| failed("no seeder"))?;
        let report = report.ok_or_else(|| failed("no share report"))?;
        let target = to_hex(&report.info_hash);

        // 1 -> 1 with the same method: leecher ready, timed from `get`.
        let leecher = self.start_peerd("scale-ref")?;
        let cpu0 = self.cpu(seeder.id)?;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        let get = |dir: &Path| ControlRequest::Get {
            target: target.clone(),
            out_dir: Some(dir.to_path_buf()),
        };
        self.call(&leecher.client, get(&leecher.dir), 0, tx)?;
        let got = self.follow_gets(&rx, 1, size, None, || {})?;
        let ref_wall = t0.elapsed().as_secs_f64();
        let ref_seed_cpu = self.cpu(seeder.id)? - cpu0;
        self.stop_step(&[leecher.id])?;
        self.verify(&file, &got[0].1.path)?;
        remove_dir(&leecher.dir)?;
        say(format_args!(
            "  1 -> 1: {:.2} s, {:.1} MB/s, seeder CPU {:.2} s/GiB",
            ref_wall,
            size as f64 / ref_wall / 1e6,
            ref_seed_cpu / (size as f64 / GIB)
        ));

        // n leechers, all started and ready before the clock starts.
        let t = Instant::now();
        let mut spawned = Vec::new();
        for i in 1..=leechers {
            spawned.push(self.spawn_peerd(&format!("scale-leech{i}"))?);
        }
        let deadline = Instant::now() + STARTUP * 2;
        let mut peers = Vec::new();
        for (i, (id, dir)) in spawned.into_iter().enumerate() {
            peers.push(self.peerd_ready(id, dir, deadline)?);
            if (i + 1) % 10 == 0 || i + 1 == leechers {
                say(format_args!(
                    "  {}/{leechers} leechers ready ({:.1} s)",
                    i + 1,
                    t.elapsed().as_secs_f64()
                ));
            }
        }
        let up0 = self.uploaded(&seeder, &report)?;
        let rss_anon_before = proc_status(self.proc(seeder.id)?.pid, "RssAnon").unwrap_or(0);
        let tracker_id = self.tracker_id.ok_or_else(|| failed("no tracker"))?;
        let tracker0 = self.cpu(tracker_id)?;
        let cpu0 = self.cpu(seeder.id)?;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel();
        for (i, p) in peers.iter().enumerate() {
            self.call(&p.client, get(&p.dir), i, tx.clone())?;
        }
        drop(tx);
        let seeder_pid = self.proc(seeder.id)?.pid;
        let mut rss_anon_peak = rss_anon_before;
        let mut rss_peak = 0;
        let got = self.follow_gets(&rx, leechers, size, Some(t0), || {
            rss_anon_peak = rss_anon_peak.max(proc_status(seeder_pid, "RssAnon").unwrap_or(0));
            rss_peak = rss_peak.max(proc_status(seeder_pid, "VmRSS").unwrap_or(0));
        })?;
        let wall = t0.elapsed().as_secs_f64();
        let seed_cpu = self.cpu(seeder.id)? - cpu0;
        let tracker_cpu = self.cpu(tracker_id)? - tracker0;
        let rss_anon_end = proc_status(seeder_pid, "RssAnon").unwrap_or(0);
        let leecher_ids: Vec<usize> = peers.iter().map(|p| p.id).collect();
        let leechers_cpu = self.cpu_sum(&leecher_ids)?;
        let mut leechers_sys = 0.0;
        for &i in &leecher_ids {
            let pid = self.proc(i)?.pid;
            leechers_sys += proc_cpu_split(pid).map_or(0.0, |(_, s)| s as f64 / self.ticks);
        }
        let served = self.uploaded(&seeder, &report)? - up0;
        let mut finish: Vec<f64> = got.iter().map(|g| g.0).collect();
        finish.sort_by(f64::total_cmp);
        say(format_args!(
            "  all {leechers} done in {wall:.1} s; stopping the leechers and checking the copies..."
        ));
        self.stop_step(&leecher_ids)?;
        for (_, f) in &got {
            self.verify(&file, &f.path)?;
        }
        let received = got.iter().map(|g| g.1.downloaded).sum();
        for p in &peers {
            remove_dir(&p.dir)?;
        }
        self.stop_step(&[seeder.id])?;
        remove_dir(&seeder.dir)?;
        std::fs::remove_file(&file).map_err(|e| failed(format!("rm: {e}")))?;
        let scale = Scale {
            size,
            leechers,
            ref_wall,
            ref_seed_cpu,
            wall,
            finish,
            seed_cpu,
            served,
            leechers_cpu,
            leechers_sys,
            tracker_cpu,
            rss_anon_peak,
            rss_anon_before,
            rss_anon_end,
            rss_peak,
            received,
        };
        say(format_args!(
            "  round {round}: aggregate {:.1} MB/s, {:.1}% of 1 -> 1",
            scale.aggregate() / 1e6,
            scale.ratio() * 100.0
        ));
        Ok(Some(scale))
    }

    /// Follows `n` gets until each is done: (seconds since `t0`, path) by
    /// tag. Prints progress every 5 s when `t0` is given; `sample` runs on
    /// every poll.
    fn follow_gets(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        n: usize,
        size: u64,
        t0: Option<Instant>,
        mut sample: impl FnMut(),
    ) -> Step<Vec<(f64, FileReport)>> {
        let start = t0.unwrap_or_else(Instant::now);
        let mut bytes = vec![0u64; n];
        let mut done: Vec<Option<(f64, FileReport)>> = vec![None; n];
        let mut left = n;
        let mut deadline = Instant::now() + STALL;
        let mut next_report = Instant::now() + Duration::from_secs(5);
        while left > 0 {
            sample();
            if t0.is_some() && Instant::now() >= next_report {
                next_report += Duration::from_secs(5);
                let total: u64 = bytes.iter().sum();
                say(format_args!(
                    "  {:6.1} s: {}/{n} done, {} of {} verified",
                    start.elapsed().as_secs_f64(),
                    n - left,
                    human_bytes(total),
                    human_bytes(size * n as u64)
                ));
            }
            let (tag, ev) = match self.next_event_short(rx, deadline, "download")? {
                Some(ev) => ev,
                None => continue,
            };
            let Some(slot) = bytes.get_mut(tag) else {
                continue;
            };
            match ev {
                Event::Progress(b) => {
                    if b > *slot {
                        deadline = Instant::now() + STALL;
                    }
                    *slot = b;
                }
                Event::Done(r) => {
                    let v = r.map_err(|e| failed(format!("download {tag}: {e}")))?;
                    let f = file_of(&v).map_err(|e| failed(format!("download {tag}: {e}")))?;
                    *slot = size;
                    done[tag] = Some((start.elapsed().as_secs_f64(), f));
                    left -= 1;
                    deadline = Instant::now() + STALL;
                }
            }
        }
        Ok(done.into_iter().flatten().collect())
    }

    /// Like `next_event` but returns `None` after one poll interval, so
    /// that the caller can sample /proc.
    fn next_event_short(
        &mut self,
        rx: &Receiver<(usize, Event)>,
        deadline: Instant,
        what: &str,
    ) -> Step<Option<(usize, Event)>> {
        self.check_children()?;
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "{what}: no progress for {} s",
                STALL.as_secs()
            )));
        }
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(ev) => Ok(Some(ev)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(failed(format!(
                "{what}: the requests ended without a reply"
            ))),
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.cleanup();
    }
}

// ---------------------------------------------------------------- tables

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn run_line(r: &Run, size: u64) -> String {
    let gib = size as f64 / GIB;
    format!(
        "{:7.3} s  {:7.1} MB/s  leecher CPU {:.3} s/GiB  seeders CPU {:.3} s/GiB",
        r.wall,
        size as f64 / r.wall / 1e6,
        r.leech_cpu / gib,
        r.seed_cpu / gib
    )
}

/// WALL s, MB/s, leecher and seeders CPU s/GiB: medians of the rounds.
fn medians(runs: &[Run], size: u64) -> [f64; 4] {
    let gib = size as f64 / GIB;
    [
        median(runs.iter().map(|r| r.wall).collect()),
        median(runs.iter().map(|r| size as f64 / r.wall / 1e6).collect()),
        median(runs.iter().map(|r| r.leech_cpu / gib).collect()),
        median(runs.iter().map(|r| r.seed_cpu / gib).collect()),
    ]
}

fn transfer_table(label: &str, size: u64, sta: &[Run], lt: &[Run]) -> String {
    let (s, l) = (medians(sta, size), medians(lt, size));
    let row = |test: &str, imp: &str, v: [f64; 4], prec: [usize; 4]| {
        let mut r = vec![test.to_owned(), imp.to_owned()];
        r.extend(v.iter().zip(prec).map(|(x, p)| format!("{x:.p$}")));
        r
    };
    let ratio = [0, 1, 2, 3].map(|i| s[i] / l[i]);
    let text = table(
        &[
            "TEST",
            "IMPL",
            "WALL s",
            "MB/s",
            "LEECHER CPU s/GiB",
            "SEEDERS CPU s/GiB",
        ],
        &[false, false, true, true, true, true],
        vec![
            row(label, "STA", s, [3, 1, 3, 3]),
            row(label, "libtorrent", l, [3, 1, 3, 3]),
            row(label, "STA/lt", ratio, [2, 2, 2, 2]),
        ],
    );
    format!(
        "transfer {label}: {} file, 512 KiB pieces, medians of {} round(s)\n{text}",
        size_text(size),
        sta.len()
    )
}

fn share_table(size: u64, shares: &[(f64, f64)]) -> String {
    let s = median(shares.iter().map(|x| x.0).collect());
    let l = median(shares.iter().map(|x| x.1).collect());
    let mb = |t: f64| size as f64 / t / 1e6;
    let text = table(
        &["IMPL", "SECONDS", "MB/s"],
        &[false, true, true],
        vec![
            vec!["STA".into(), format!("{s:.3}"), format!("{:.1}", mb(s))],
            vec![
                "libtorrent".into(),
                format!("{l:.3}"),
                format!("{:.1}", mb(l)),
            ],
            vec![
                "STA/lt".into(),
                format!("{:.2}", s / l),
                format!("{:.2}", mb(s) / mb(l)),
            ],
        ],
    );
    format!(
        "share: hash {} and make it available, medians of {} round(s)\n{text}",
        size_text(size),
        shares.len()
    )
}

impl Scale {
    /// Bytes per second received by all the leechers together.
    fn aggregate(&self) -> f64 {
        (self.size * self.leechers as u64) as f64 / self.wall
    }

    /// Aggregate rate over the 1 -> 1 rate.
    fn ratio(&self) -> f64 {
        self.aggregate() / (self.size as f64 / self.ref_wall)
    }
}

fn scale_table(s: &Scale, ratios: &[f64]) -> String {
    let total = s.size * s.leechers as u64;
    let gib = |b: u64| b as f64 / GIB;
    let ref_rate = s.size as f64 / s.ref_wall / 1e6;
    let agg = s.aggregate() / 1e6;
    let pct = |x: f64| format!("{x:.1}%");
    let n = s.finish.len();
    let rows: Vec<(String, String)> = vec![
        (
            "1->1 rate (same file, leecher ready, timed from get)".into(),
            format!("{ref_rate:.1} MB/s ({:.2} s)", s.ref_wall),
        ),
        (
            "1->1 seeder CPU per GiB served".into(),
            format!("{:.3} s", s.ref_seed_cpu / gib(s.size)),
        ),
        (
            format!("1->{} wall time until the last leecher is done", s.leechers),
            format!("{:.2} s", s.wall),
        ),
        (
            format!("1->{} aggregate rate (total bytes / wall)", s.leechers),
            format!("{agg:.1} MB/s ({} in all)", human_bytes(total)),
        ),
        (
            "aggregate / 1->1 rate (target >= 80%)".into(),
            pct(s.ratio() * 100.0),
        ),
        (
            format!("... in each of the {} round(s), sorted", ratios.len()),
            ratios
                .iter()
                .map(|r| pct(r * 100.0))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        (
            "leecher finish times min / median / max".into(),
            format!(
                "{:.1} / {:.1} / {:.1} s",
                s.finish.first().copied().unwrap_or(0.0),
                median(s.finish.clone()),
                s.finish.get(n.saturating_sub(1)).copied().unwrap_or(0.0)
            ),
        ),
        (
            "leechers received / delivered (duplicate blocks)".into(),
            format!(
                "{} / {} ({})",
                human_bytes(s.received),
                human_bytes(total),
                pct(s.received as f64 * 100.0 / total as f64)
            ),
        ),
        (
            "seeder served (its upload; the rest went leecher to leecher)".into(),
            format!(
                "{} ({} of the total)",
                human_bytes(s.served),
                pct(s.served as f64 * 100.0 / total as f64)
            ),
        ),
        (
            "seeder CPU per GiB served".into(),
            format!(
                "{:.3} s ({:.2} s in all)",
                s.seed_cpu / gib(s.served).max(1e-9),
                s.seed_cpu
            ),
        ),
        (
            "leechers' CPU per GiB received (all leechers, whole life)".into(),
            format!(
                "{:.3} s ({:.0}% system time)",
                s.leechers_cpu / gib(total),
                s.leechers_sys * 100.0 / s.leechers_cpu.max(1e-9)
            ),
        ),
        (
            "tracker CPU during the 1->N download".into(),
            format!("{:.2} s", s.tracker_cpu),
        ),
        (
            "seeder RssAnon before / peak / end".into(),
            format!(
                "{} / {} / {}",
                kib_text(s.rss_anon_before),
                kib_text(s.rss_anon_peak),
                kib_text(s.rss_anon_end)
            ),
        ),
        (
            "seeder VmRSS peak (the mapped file included)".into(),
            kib_text(s.rss_peak),
        ),
    ];
    let text = table(
        &["FIGURE", "VALUE"],
        &[false, false],
        rows.into_iter().map(|(a, b)| vec![a, b]).collect(),
    );
    format!(
        "scale: 1 STA seeder, {} STA leechers at once, {} file; the round with the median ratio of {}\n{text}",
        s.leechers,
        size_text(s.size),
        ratios.len()
    )
}

fn kib_text(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------- system

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A value in kB from /proc/PID/status.
fn proc_status(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// utime + stime of the whole process (all its threads), in clock ticks.
fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    proc_cpu_split(pid).map(|(u, s)| u + s)
}

/// (utime, stime) of the whole process, in clock ticks.
fn proc_cpu_split(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    Some((f.get(11)?.parse().ok()?, f.get(12)?.parse().ok()?))
}

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

fn free_bytes(path: &Path) -> Option<u64> {
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a valid out pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    #[allow(clippy::unnecessary_cast)]
    (r == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn mkdir(dir: &Path) -> Step<()> {
    std::fs::create_dir(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))
}

fn remove_dir(dir: &Path) -> Step<()> {
    std::fs::remove_dir_all(dir)
        .map_err(|e| failed(format!("cannot remove {}: {e}", dir.display())))
}

/// The first offset where the files differ, or `None` when identical.
fn compare_files(a: &Path, b: &Path, stop: &AtomicBool) -> Step<Option<u64>> {
    use sta_kit::files::{CompareError, first_difference};
    first_difference(a, b, stop).map_err(|e| match e {
        CompareError::Interrupted => Failure::Interrupted,
        CompareError::Io(message) => failed(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }

    #[test]
    fn own_cpu_is_readable() {
        assert!(proc_cpu_ticks(std::process::id()).is_some());
        assert!(proc_status(std::process::id(), "VmRSS").is_some());
    }
}
