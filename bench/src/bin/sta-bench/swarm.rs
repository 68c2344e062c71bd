//! `sta-bench swarm`: one seed and several leechers, each on an emulated
//! host of its own (`bench/netns.sh`: a network namespace whose egress is
//! shaped with tbf), the tracker (`sta-trackerd`) on the unshaped h0. STA
//! and libtorrent 2.0 run the same scenarios, alternated (STA, libtorrent,
//! STA, ...) so that the load of a shared machine falls on both alike.
//!
//! A run: fresh hosts, tracker, seed and leechers, all ready before the
//! clock starts; then every leecher is told to download at once (or 5 s
//! late, scenario c), and the clock stops when the last one has every
//! piece verified. Figures: that time over F/u (F the file, u the seed's
//! upload rate: the time the seed's link takes to send the file once),
//! and the seed's upload over F. Every copy is compared with the source.
//! A run that fails is reported as FAILED, with why, and the benchmark
//! goes on with the next one.

use crate::args::SwarmOpts;
use crate::harness::{Bench, remove_dir};
use crate::hosts::Hosts;
use crate::swarm_table::{Record, run_line, runs_table, summary_table};
use crate::{Failure, MARGIN, STARTUP, Step, failed, say};
use sta::cli::format::{human_bytes, size_text};
use sta_kit::files::free_bytes;
use sta_kit::procfs::loadavg;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The shared file's name (the .torrent's too).
pub const SWARM_NAME: &str = "swarm.bin";
/// A leecher not done this many times F/u after the `get`s (plus the
/// late start) has failed.
const DEADLINE_FACTOR: f64 = 6.0;
/// How often the seed's upload is read when it must leave at 1.0 x F: at
/// 50 Mbit/s, 50 ms is 0.3 MB, 0.5 % of a 64 MiB file.
const SEED_POLL: Duration = Duration::from_millis(50);
/// How often the race loop looks at its children and their lines.
pub const RACE_POLL: Duration = Duration::from_millis(10);

/// Which implementation a run uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Impl {
    Sta,
    Lt,
}

impl Impl {
    pub fn name(self) -> &'static str {
        match self {
            Impl::Sta => "STA",
            Impl::Lt => "libtorrent",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Impl::Sta => "sta",
            Impl::Lt => "lt",
        }
    }
}

/// One scenario: hosts, rates and what happens during the race.
pub struct Setup {
    pub letter: char,
    pub title: &'static str,
    /// Upload rate of hosts h1..hN (tc rates); h1 is the seed.
    pub rates: Vec<&'static str>,
    /// The seed's rate in bit/s, for F/u.
    pub seed_bits: f64,
    /// The last `late` leechers are told to download `late_by` after the
    /// others.
    pub late: usize,
    pub late_by: Duration,
    /// The seed's process is stopped once it has uploaded this many F.
    pub seed_leaves: Option<f64>,
}

impl Setup {
    pub fn of(letter: char) -> Setup {
        let even = |rate| vec![rate; 8];
        let base = Setup {
            letter,
            title: "",
            rates: even("50mbit"),
            seed_bits: 50e6,
            late: 0,
            late_by: Duration::ZERO,
            seed_leaves: None,
        };
        match letter {
            'b' => Setup {
                title: "1 seed + 5 leechers, mixed: h1-h3 100 Mbit/s (seed h1), h4-h6 20 Mbit/s",
                // 6 hosts, not 8: 8 at this mix would be 480 Mbit/s, over
                // the ~400 Mbit/s this 2-core machine shapes faithfully.
                rates: vec![
                    "100mbit", "100mbit", "100mbit", "20mbit", "20mbit", "20mbit",
                ],
                seed_bits: 100e6,
                ..base
            },
            'c' => Setup {
                title: "1 seed + 7 leechers, 50 Mbit/s, h6-h8 told 5 s late",
                late: 3,
                late_by: Duration::from_secs(5),
                ..base
            },
            'd' => Setup {
                title: "1 seed + 7 leechers, 50 Mbit/s, seed stopped at 1.0 x F up",
                seed_leaves: Some(1.0),
                ..base
            },
            _ => Setup {
                title: "1 seed + 7 leechers, 50 Mbit/s",
                ..base
            },
        }
    }

    pub fn leechers(&self) -> usize {
        self.rates.len() - 1
    }

    /// Leecher `k` (0-based; host k + 2) is told late.
    pub fn is_late(&self, k: usize) -> bool {
        k + self.late >= self.leechers()
    }

    /// F/u in seconds.
    pub fn f_over_u(&self, size: u64) -> f64 {
        size as f64 * 8.0 / self.seed_bits
    }

    fn deadline(&self, size: u64) -> Duration {
        let late = if self.late > 0 {
            self.late_by
        } else {
            Duration::ZERO
        };
        late + Duration::from_secs_f64(DEADLINE_FACTOR * self.f_over_u(size))
    }
}

/// What every run shares: the source file and the .torrent.
pub struct Ctx {
    pub src: PathBuf,
    pub torrent: PathBuf,
    pub size: u64,
}

/// How a race ended: each leecher's time, the seed's figures.
pub struct RaceEnd {
    pub done: Vec<f64>,
    pub seed_up: u64,
    pub seed_stopped: Option<f64>,
}

impl RaceEnd {
    pub fn new(race: Race, leave: Option<SeedLeave>, seed_up: u64) -> RaceEnd {
        let stopped = leave.and_then(|l| l.stopped);
        RaceEnd {
            done: race.into_done(),
            seed_up: stopped.map_or(seed_up, |(up, _)| up),
            seed_stopped: stopped.map(|(_, t)| t),
        }
    }

    pub fn figures(self) -> Figures {
        Figures {
            done: self.done,
            seed_up: self.seed_up,
            seed_stopped: self.seed_stopped,
        }
    }
}

/// What one successful run measured.
pub struct Figures {
    /// Seconds from the first `get` until each leecher was done.
    pub done: Vec<f64>,
    /// The seed's upload of the file, bytes: once the last leecher was
    /// done, or when the seed was stopped (scenario d).
    pub seed_up: u64,
    /// When the seed was stopped, seconds after the first `get`.
    pub seed_stopped: Option<f64>,
}

impl Figures {
    pub fn last(&self) -> f64 {
        self.done.iter().copied().fold(0.0, f64::max)
    }
}

/// The clock of a run and what is left to do in it.
pub struct Race {
    pub t0: Instant,
    deadline: Instant,
    limit: Duration,
    late_by: Duration,
    late_at: Option<Instant>,
    pub done: Vec<Option<f64>>,
    /// Each leecher's verified bytes, as last reported.
    bytes: Vec<u64>,
    /// When a leecher last reported more bytes (for the message of a
    /// missed deadline: a swarm that lost pieces with its seed stalls).
    moved: Instant,
}

impl Race {
    /// Starts the clock (call it just before the first `get`).
    pub fn start(setup: &Setup, size: u64) -> Race {
        let t0 = Instant::now();
        let limit = setup.deadline(size);
        let late = setup.late > 0;
        Race {
            t0,
            deadline: t0 + limit,
            limit,
            late_by: if late { setup.late_by } else { Duration::ZERO },
            late_at: late.then(|| t0 + setup.late_by),
            done: vec![None; setup.leechers()],
            bytes: vec![0; setup.leechers()],
            moved: t0,
        }
    }

    /// Leecher `k` reports `bytes` verified.
    pub fn progress(&mut self, k: usize, bytes: u64) {
        if let Some(b) = self.bytes.get_mut(k)
            && bytes > *b
        {
            *b = bytes;
            self.moved = Instant::now();
        }
    }

    /// Leecher `k` is done: `at` seconds after t0.
    pub fn finish(&mut self, k: usize, at: f64) {
        if let Some(d) = self.done.get_mut(k) {
            *d = Some(at);
            self.moved = Instant::now();
        }
    }

    /// True once, when the late leechers are to be told.
    pub fn late_due(&mut self) -> bool {
        match self.late_at {
            Some(at) if Instant::now() >= at => {
                self.late_at = None;
                true
            }
            _ => false,
        }
    }

    pub fn finished(&self) -> bool {
        self.done.iter().all(Option::is_some)
    }

    pub fn overdue(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// The failure of a missed deadline; `state[k]` says where unfinished
    /// leecher `k` is.
    pub fn missed(&self, state: &[String]) -> Failure {
        let left: Vec<String> = (0..self.done.len())
            .filter(|&k| self.done[k].is_none())
            .map(|k| format!("h{} {}", k + 2, state.get(k).map_or("", String::as_str)))
            .collect();
        let late = if self.late_by.is_zero() {
            String::new()
        } else {
            format!(" + the {:.0} s late start", self.late_by.as_secs_f64())
        };
        failed(format!(
            "{} leecher(s) not done within {:.1} s ({DEADLINE_FACTOR} x F/u{late}; the last \
             progress of any leecher at {:.1} s): {}",
            left.len(),
            self.limit.as_secs_f64(),
            self.moved.duration_since(self.t0).as_secs_f64(),
            left.join(", ")
        ))
    }

    pub fn into_done(self) -> Vec<f64> {
        self.done.into_iter().flatten().collect()
    }
}

/// Scenario d: the seed leaves once it has uploaded `threshold` bytes.
pub struct SeedLeave {
    pub threshold: u64,
    next: Instant,
    /// (uploaded, seconds after t0) when it was stopped.
    pub stopped: Option<(u64, f64)>,
}

impl SeedLeave {
    pub fn new(setup: &Setup, size: u64) -> Option<SeedLeave> {
        setup.seed_leaves.map(|x| SeedLeave {
            threshold: (x * size as f64).ceil() as u64,
            next: Instant::now(),
            stopped: None,
        })
    }

    /// Whether the seed's upload should be read now.
    pub fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.stopped.is_some() || now < self.next {
            return false;
        }
        self.next = now + SEED_POLL;
        true
    }
}

/// CLOCK_MONOTONIC in seconds: the clock of `Instant` and of Python's
/// `time.monotonic()`, so `lt_peer.py`'s timestamps can be compared with
/// the harness's.
pub fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

impl Bench {
    /// The whole swarm benchmark.
    pub fn swarm(&mut self, opts: &SwarmOpts) -> Step<()> {
        if opts.kill_trackers {
            return self.kill_bench(opts.size, opts.runs);
        }
        let started = Instant::now();
        self.swarm_header(opts);
        self.swarm_preflight()?;
        let work = self.make_work_dir()?;
        let version = self.lt_version()?;
        let ctx = self.swarm_files(&work, opts)?;
        say(format_args!(
            "libtorrent {version}: uTP off, encryption off, DHT/LSD/UPnP/NAT-PMP off, \
             defaults otherwise (its seed uses libtorrent's default seed choker, \
             round robin, 8 unchoke slots)"
        ));
        say(
            "STA: sta-peerd defaults (4 upload slots per file, a seed 5 among more than 5 \
             interested peers), --piece-size 524288",
        );
        let mut records = Vec::new();
        for &letter in &opts.scenarios {
            let setup = Setup::of(letter);
            self.scenario(&setup, opts.runs, &ctx, &mut records)?;
        }
        say("");
        say(format_args!(
            "==== results ({:.0} s in all; load average now {}) ====",
            started.elapsed().as_secs_f64(),
            loadavg()
        ));
        say(summary_table(&records, opts, ctx.size));
        say(runs_table(&records, opts, ctx.size));
        let failures: Vec<String> = records.iter().filter_map(|r| r.failure_line()).collect();
        for f in &failures {
            say(format_args!("FAILED: {f}"));
        }
        self.problems.extend(failures);
        Ok(())
    }

    fn swarm_header(&self, opts: &SwarmOpts) {
        say("sta-bench swarm: STA vs libtorrent on emulated hosts (bench/netns.sh)");
        crate::harness::machine_lines();
        say(format_args!("load:    {}", loadavg()));
        say(format_args!(
            "work:    {} file, 512 KiB pieces, {} run(s) of each per scenario, \
             scenarios {}",
            size_text(opts.size),
            opts.runs,
            opts.scenarios.iter().collect::<String>()
        ));
    }

    /// Root, netns.sh and the daemons: without them nothing can run.
    pub fn swarm_preflight(&mut self) -> Step<()> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err(failed(
                "sta-bench swarm needs root (network namespaces, veth pairs and tc)",
            ));
        }
        if !crate::hosts::script().is_file() {
            return Err(failed(format!(
                "{} is missing",
                crate::hosts::script().display()
            )));
        }
        self.find_binaries()
    }

    /// libtorrent's version, or a clear failure if Python cannot import it.
    fn lt_version(&mut self) -> Step<String> {
        let python = self.opts.python.clone();
        let probe = "import libtorrent; print('libtorrent', libtorrent.__version__)";
        let args = ["-c", probe].map(OsString::from);
        let id = self.spawn("lt-probe", &python, &args)?;
        if let Some(Some(p)) = self.procs.get_mut(id) {
            p.may_exit = true;
        }
        let got = self.wait_line(id, "libtorrent ", Instant::now() + STARTUP);
        self.stop_step(&[id])?;
        got.map_err(|e| match e {
            Failure::Interrupted => Failure::Interrupted,
            Failure::Failed(m) => failed(format!(
                "{} cannot import libtorrent (Debian: apt-get install -y python3-libtorrent): {m}",
                python.display()
            )),
        })
    }

    /// The source file and its .torrent (announced to h0's sta-trackerd
    /// over UDP, BEP 15), once for the whole benchmark.
    fn swarm_files(&mut self, work: &Path, opts: &SwarmOpts) -> Step<Ctx> {
        let most = 8; // hosts of the largest scenario, each with a copy
        let need = (most + 1) * opts.size + MARGIN;
        let free = free_bytes(&self.opts.base).unwrap_or(0);
        if free < need {
            return Err(failed(format!(
                "{} has {} free; this needs {}: try a smaller --size",
                self.opts.base.display(),
                human_bytes(free),
                human_bytes(need)
            )));
        }
        let src_dir = work.join("src");
        crate::harness::mkdir(&src_dir)?;
        let src = src_dir.join(SWARM_NAME);
        self.generate(&src, opts.size)?;
        let torrent = work.join("swarm.torrent");
        let url = format!("udp://{}/announce", Hosts::tracker_addr());
        let (_, hash, _) = self.lt_make(&src, &torrent, Some(&url))?;
        say(format_args!(
            "torrent: v1 only, info hash {hash}, announce {url}"
        ));
        Ok(Ctx {
            src,
            torrent,
            size: opts.size,
        })
    }

    fn scenario(
        &mut self,
        setup: &Setup,
        runs: usize,
        ctx: &Ctx,
        records: &mut Vec<Record>,
    ) -> Step<()> {
        say("");
        say(format_args!(
            "== ({}) {}; {}, F/u = {:.2} s (the seed's rate); load {} ==",
            setup.letter,
            setup.title,
            size_text(ctx.size),
            setup.f_over_u(ctx.size),
            loadavg()
        ));
        for run in 1..=runs {
            for imp in [Impl::Sta, Impl::Lt] {
                let outcome = self.one_run(setup, imp, run, ctx)?;
                let record = Record {
                    letter: setup.letter,
                    imp,
                    run,
                    outcome,
                };
                say(format_args!(
                    "  ({}) run {run} {:<11} {}",
                    setup.letter,
                    format!("{}:", imp.name()),
                    run_line(&record, ctx.size, setup)
                ));
                records.push(record);
            }
        }
        Ok(())
    }

    /// One run on fresh hosts; a failure is its outcome, not an error
    /// (only Ctrl-C stops the benchmark). Whatever happens, the run's
    /// processes are stopped by pid and its hosts removed.
    fn one_run(
        &mut self,
        setup: &Setup,
        imp: Impl,
        run: usize,
        ctx: &Ctx,
    ) -> Step<Result<Figures, String>> {
        self.check_stop()?;
        let first = self.procs.len();
        let tag = format!("{}{run}-{}", setup.letter, imp.short());
        let dir = self.fresh_dir(&tag)?;
        let prefix = format!("sta-{}-{tag}", std::process::id());
        let result = match Hosts::up(&prefix, &setup.rates) {
            Err(e) => Err(failed(format!("cannot make the emulated hosts: {e}"))),
            Ok(mut hosts) => {
                let r = match imp {
                    Impl::Sta => self.sta_swarm(setup, &hosts, ctx, &dir, &tag),
                    Impl::Lt => self.lt_swarm(setup, &hosts, ctx, &dir, &tag),
                };
                self.end_run(first, &mut hosts);
                r
            }
        };
        if let Err(Failure::Failed(m)) = remove_dir(&dir) {
            self.problems.push(m);
        }
        match result {
            Ok(f) => Ok(Ok(f)),
            Err(Failure::Failed(m)) => Ok(Err(m)),
            Err(Failure::Interrupted) => Err(Failure::Interrupted),
        }
    }

    /// Stops the processes the run started (from id `first` on), then
    /// removes its hosts; what fails here is a problem of the benchmark.
    pub fn end_run(&mut self, first: usize, hosts: &mut Hosts) {
        let live: Vec<usize> = (first..self.procs.len())
            .filter(|&i| self.procs[i].is_some())
            .collect();
        if let Err(Failure::Failed(m)) = self.stop_step(&live) {
            say(format_args!("  cleanup: {m}"));
            self.problems.push(m);
        }
        if let Err(m) = hosts.down() {
            say(format_args!("  cleanup: {m}"));
            self.problems.push(m);
        }
    }

    /// Starts `program args...` on `host` as a child (`ip netns exec`).
    pub fn spawn_on(
        &mut self,
        hosts: &Hosts,
        host: usize,
        name: &str,
        program: &Path,
        args: &[OsString],
    ) -> Step<usize> {
        let all = hosts.exec_args(host, program, args);
        self.spawn(name, Path::new("ip"), &all)
    }

    /// `sta-trackerd` on h0, ready for STA sessions (TCP) and BitTorrent
    /// announces (UDP, BEP 15) on the same port.
    pub fn swarm_tracker(&mut self, hosts: &Hosts, tag: &str) -> Step<usize> {
        let args = ["--listen", &Hosts::tracker_addr(), "--log-level", "warn"].map(OsString::from);
        let trackerd = self.trackerd.clone();
        let id = self.spawn_on(hosts, 0, &format!("{tag}-tracker"), &trackerd, &args)?;
        let deadline = Instant::now() + STARTUP;
        self.wait_line(id, "listening on ", deadline)?;
        self.wait_line(id, "udp listening on ", deadline)?;
        Ok(id)
    }
}
